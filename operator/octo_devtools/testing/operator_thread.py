"""The whole operator (``run_operator``) on a thread and event loop of its own, driven from async tests.

kopf treats its event loop as its own: at shutdown it cancels every task created after it started,
whoever created it. A test that runs a simulator, a cluster client or a second operator on its loop
runs the operator here instead.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from communication_operator.app import run_operator
from communication_operator.pools import DeployedWorkloadsSource
from communication_operator.settings import Settings


class OperatorThread:
    """The operator on its own thread and event loop, started and stopped from async code (tests).

    ``await runner.start()`` returns once kopf is ready (or raises what stopped it);
    ``await runner.stop()`` sets the stop flag and waits for a clean shutdown.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        kubeconfig: Path | None = None,
        kube_context: str | None = None,
        workloads: DeployedWorkloadsSource | None = None,
        name: str = "communication-operator",
    ) -> None:
        self.settings = settings
        self._kwargs: dict[str, Any] = {
            "kubeconfig": kubeconfig,
            "kube_context": kube_context,
            "workloads": workloads,
        }
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._done = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._done.is_set()

    def _main(self) -> None:
        try:
            asyncio.run(
                run_operator(
                    self.settings,
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                    liveness=False,
                    **self._kwargs,
                )
            )
        except BaseException as exc:
            self.error = exc
        finally:
            self._done.set()

    def _wait_ready_or_done(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready.wait(0.05) or self._done.is_set():
                return True
        return False

    async def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        if not await asyncio.to_thread(self._wait_ready_or_done, timeout):
            raise TimeoutError(f"the operator was not ready within {timeout:g} s")
        if self._done.is_set():
            raise RuntimeError("the operator stopped while starting") from self.error

    async def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        finished = await asyncio.to_thread(self._done.wait, timeout)
        if not finished:
            raise TimeoutError(f"the operator did not stop within {timeout:g} s")
        await asyncio.to_thread(self._thread.join, 5.0)
        if self.error is not None:
            raise RuntimeError("the operator failed") from self.error
