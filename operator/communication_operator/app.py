"""The whole operator in one asyncio process: the runtime (:mod:`.runtime`) under kopf (:mod:`.handlers`).

:func:`run_operator` is the whole operator. ``communication-operator run`` calls it with the process
environment; tests call it as an asyncio task with a kubeconfig, a controller URL and a stop flag::

    stop = asyncio.Event()
    task = asyncio.create_task(run_operator(settings, stop_flag=stop, ready_flag=ready, kubeconfig=path))
    ...
    stop.set(); await task

or on a thread and event loop of its own with ``octo_devtools.testing.operator_thread.OperatorThread``.

Order at start: kopf runs the startup handler (hub started, retry loop started), logs in with our
credentials, then watches CommunicationPools. Order at stop (SIGTERM or the stop flag): kopf stops
watching and lets running handlers finish or cancels them, then the cleanup handler stops the pool
services, drains queued reports to the controller for up to ``OPERATOR__SHUTDOWNDRAINSECONDS`` and closes
the connection. Pools are not unregistered: the controller marks them Offline on disconnect, and the
next operator process registers them again.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import kopf

from communication_operator.handlers import build_registry, configure_kopf
from communication_operator.pools import DeployedWorkloadsSource
from communication_operator.runtime import build_runtime
from communication_operator.settings import Settings

LIVENESS_URL = "http://0.0.0.0:{port}/healthz"


async def run_operator(
    settings: Settings,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    kubeconfig: Path | None = None,
    kube_context: str | None = None,
    workloads: DeployedWorkloadsSource | None = None,
    liveness: bool = True,
) -> None:
    """Run the operator until SIGTERM/SIGINT or until ``stop_flag`` is set.

    With a ``stop_flag`` the operator runs "in process" (tests, embedding): kopf does not arm its
    last-resort self-SIGKILL. ``ready_flag`` is set once kopf has started (startup handler done).

    kopf treats the event loop as its own: at shutdown it cancels every task created after it started,
    whoever created it. Next to other work on one loop (a test, an in-process simulator), run the
    operator on a loop of its own (``OperatorThread`` in ``octo_devtools.testing``).
    """
    in_process = stop_flag is not None
    runtime = await build_runtime(
        settings, kubeconfig=kubeconfig, kube_context=kube_context, workloads=workloads, in_process=in_process
    )
    liveness_endpoint = (
        LIVENESS_URL.format(port=settings.health.port) if liveness and settings.health.port else None
    )
    kopf_settings = kopf.OperatorSettings()
    configure_kopf(kopf_settings, in_process=in_process)
    try:
        await kopf.operator(
            registry=build_registry(),
            settings=kopf_settings,
            memo=kopf.Memo(context=runtime),
            standalone=True,
            clusterwide=not settings.watch_namespace,
            namespaces=[settings.watch_namespace] if settings.watch_namespace else (),
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            liveness_endpoint=liveness_endpoint,
        )
    finally:
        # kopf runs cleanup only after a successful start; close whatever is still open.
        await runtime.stop()
