"""Long-lived background tasks, watched: one that dies makes the operator report itself unhealthy.

Each loop handles what a single item may raise (a poison report, a bad push) and goes on; this is the
net under that. A supervised task that ends with an exception is logged once with its traceback,
counted in ``communication_operator_background_task_failures_total{task=...}`` and listed by
:meth:`TaskSupervisor.problems`, which the ``/healthz`` probe turns into HTTP 500, so the kubelet
restarts a process that would otherwise look alive while delivering nothing. A task cancelled on
purpose (stop, shutdown) or one that returns is not a failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from communication_operator.redaction import redact_and_bound

if TYPE_CHECKING:
    from communication_operator.metrics import OperatorMetrics

log = logging.getLogger(__name__)

TASK_DIED = "background task %s died (%s); /healthz now fails so that the pod is restarted"
#: What one dead task contributes to the failing probe's message.
PROBLEM = "{task} died: {error}"
_ERROR_TEXT_LIMIT = 300


class TaskSupervisor:
    """Starts long-lived tasks and remembers which of them died."""

    def __init__(self, metrics: OperatorMetrics | None = None) -> None:
        self._metrics = metrics
        self._names: dict[asyncio.Task[None], str] = {}
        self._failures: dict[str, str] = {}

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``work`` as a task called ``name`` (a stable name: it labels the failure metric)."""
        task = asyncio.create_task(work, name=name)
        self._names[task] = name
        task.add_done_callback(self._ended)
        return task

    @property
    def healthy(self) -> bool:
        return not self._failures

    def problems(self) -> list[str]:
        """One line per dead task, in the order they died."""
        return [PROBLEM.format(task=name, error=error) for name, error in self._failures.items()]

    def _ended(self, task: asyncio.Task[None]) -> None:
        name = self._names.pop(task, task.get_name())
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            return
        # Redacted before it is cut: the text goes to /healthz, which no log formatter sees.
        self._failures[name] = redact_and_bound(
            f"{type(error).__name__}: {error}", _ERROR_TEXT_LIMIT, keep_end=False
        )
        log.critical(TASK_DIED, name, type(error).__name__, exc_info=error)
        if self._metrics is not None:
            self._metrics.record_task_failure(name)
