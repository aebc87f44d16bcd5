"""One action per release at a time: the order in which deploys, undeploys and scales of a release run.

:class:`ReleaseScheduler` knows releases by name and actions as coroutines; it knows nothing of helm,
DTOs or the hub (the workloads front, :mod:`.service`, schedules; the pipeline steps do the work).

Rules it keeps:

* Newest wins. A newer ``deploy`` of a release cancels the older one; an ``undeploy`` cancels an
  in-flight deploy the same way. The newer action starts only after every earlier action of the
  release has settled (a cancelled helm needs its SIGTERM grace period to stop).
* An ``undeploy`` is never cancelled (a killed ``helm uninstall`` leaves the release ``uninstalling``):
  what comes after it waits.
* A ``scale`` cancels nothing and is never cancelled (its ack is awaited); it is queued behind every
  earlier action, and a newer deploy cancels the action it was queued behind, not the scale.
* At most ``max_concurrent`` actions hold a concurrency slot (:meth:`slot`) at once.
* After :meth:`shutdown` nothing is scheduled any more; every action is cancelled and awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

log = logging.getLogger(__name__)

ActionKind = Literal["deploy", "undeploy", "scale"]

SUPERSEDED_BY_DEPLOY: Final = "superseded by a newer deploy"
CANCELLED_BY_UNDEPLOY: Final = "cancelled by an undeploy"
CANCELLED: Final = "cancelled"
SHUTDOWN: Final = "shutdown"


@dataclass(eq=False)
class ScheduledAction:
    """The latest scheduled action of one release."""

    kind: ActionKind
    task: asyncio.Task[None]
    payload: object = None  # what the scheduler's caller wants to compare a newer push with
    cancel_reason: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)  # ``extra=`` of its log lines
    predecessors: tuple[asyncio.Task[None], ...] = ()  # earlier actions of the release it waits for
    behind: ScheduledAction | None = None  # the action a scale was queued behind

    @property
    def running(self) -> bool:
        """Scheduled and neither finished nor asked to stop."""
        return self.cancel_reason is None and not self.task.done()

    def cancel_once(self, reason: str) -> None:
        # Cancelling twice could interrupt helm's SIGTERM grace period and leave it running unobserved.
        if self.cancel_reason is None and not self.task.done():
            self.cancel_reason = reason
            self.task.cancel()


class ReleaseScheduler:
    """Runs each release's actions one after another, newest wins, under a concurrency bound."""

    def __init__(self, max_concurrent: int, on_slot_change: Callable[[int], None] | None = None) -> None:
        self._slots = asyncio.Semaphore(max_concurrent)
        self._actions: dict[str, ScheduledAction] = {}
        self._closing = False
        self._on_slot_change = on_slot_change
        self.running = 0  # actions holding a slot now
        self.peak_running = 0  # the most that ever held one at once

    @property
    def closing(self) -> bool:
        return self._closing

    def current(self, release: str) -> ScheduledAction | None:
        """The newest action scheduled for ``release`` and not yet finished."""
        return self._actions.get(release)

    def busy_releases(self) -> list[str]:
        return sorted(self._actions)

    def schedule(
        self,
        release: str,
        kind: ActionKind,
        work: Callable[[], Awaitable[None]],
        *,
        context: Mapping[str, str] | None = None,
        payload: object = None,
    ) -> bool:
        """Run ``work`` after every earlier action of ``release``; False (nothing runs) after shutdown."""
        if self._closing:
            return False
        context = context or {}
        previous = self._actions.get(release)
        if kind != "scale":
            self._supersede(release, kind, _last_cancellable(previous), context)
        # Every earlier action still going, not just the latest: a queued action cancelled before its
        # predecessor's helm has stopped ends at once, and its successor must still wait for that helm.
        predecessors: tuple[asyncio.Task[None], ...] = ()
        if previous is not None:
            predecessors = tuple(t for t in (*previous.predecessors, previous.task) if not t.done())

        async def after_previous() -> None:
            for earlier in predecessors:
                await settle(earlier)  # their own errors are their own; only the order matters
            await work()

        task = asyncio.create_task(after_previous(), name=f"{kind}-{release}")
        action = ScheduledAction(kind, task, payload, context=context, predecessors=predecessors)
        if kind == "scale" and previous is not None and not previous.task.done():
            action.behind = previous
        self._actions[release] = action
        task.add_done_callback(lambda _: self._finished(release, action))
        return True

    def _supersede(
        self, release: str, kind: ActionKind, superseded: ScheduledAction | None, context: Mapping[str, str]
    ) -> None:
        if superseded is None:
            return
        if superseded.kind == "undeploy":
            # Never cancelled: a killed `helm uninstall` leaves the release `uninstalling`, which no
            # later deploy can install over. The newer action waits for it (as a predecessor).
            if not superseded.task.done():
                log.info("release %s: %s waits for the running undeploy", release, kind, extra=context)
            return
        reason = SUPERSEDED_BY_DEPLOY if kind == "deploy" else CANCELLED_BY_UNDEPLOY
        if not superseded.task.done():
            log.info(
                "release %s: %s %s; stopping it", release, superseded.kind, reason, extra=superseded.context
            )
        superseded.cancel_once(reason)

    def _finished(self, release: str, action: ScheduledAction) -> None:
        if self._actions.get(release) is action:
            del self._actions[release]
        action.behind = None
        task = action.task
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "%s of release %s crashed",
                action.kind,
                release,
                exc_info=task.exception(),
                extra=action.context,
            )

    def cancel_reason(self, release: str) -> str:
        """Why the running action of ``release`` was cancelled (by now it may have a successor)."""
        action = self._actions.get(release)
        if action is None:
            return CANCELLED
        if action.task is asyncio.current_task():
            return action.cancel_reason or CANCELLED
        return SUPERSEDED_BY_DEPLOY if action.kind == "deploy" else CANCELLED_BY_UNDEPLOY

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``max_concurrent`` slots while the body runs."""
        async with self._slots:
            self._count_slot(+1)
            try:
                yield
            finally:
                self._count_slot(-1)

    def _count_slot(self, change: int) -> None:
        self.running += change
        self.peak_running = max(self.peak_running, self.running)
        if self._on_slot_change is not None:
            self._on_slot_change(self.running)

    async def shutdown(self) -> None:
        """Cancel every action and wait until all have stopped; nothing is scheduled afterwards."""
        self._closing = True
        actions = list(self._actions.values())
        for action in actions:
            action.cancel_once(SHUTDOWN)
        if actions:
            log.info("stopping %d workload run(s)", len(actions))
            await asyncio.gather(*(action.task for action in actions), return_exceptions=True)

    async def wait_idle(self) -> None:
        """Wait until no action is scheduled (tests and benchmarks)."""
        while self._actions:
            await asyncio.gather(*(a.task for a in list(self._actions.values())), return_exceptions=True)


def _last_cancellable(action: ScheduledAction | None) -> ScheduledAction | None:
    """The newest deploy or undeploy at or behind ``action``, skipping queued scales."""
    while action is not None and action.kind == "scale":
        action = action.behind
    return action


async def settle(task: asyncio.Task[None], *, expected: tuple[type[BaseException], ...] = ()) -> None:
    """Wait until ``task`` has finished, even through our own cancellation (re-raised afterwards).

    helm's SIGTERM grace period runs inside that task; leaving early would let the next helm of the
    same release start while this one still runs. Its errors are its own (``expected`` ones are not
    even logged at debug level).
    """
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if not task.cancelled():
        exc = task.exception()
        if exc is not None and not isinstance(exc, expected):
            log.debug("task %s ended with %r", task.get_name(), exc)
    if cancelled:
        raise asyncio.CancelledError
