"""pytest plugin: the Communication Controller simulator as fixtures.

* ``controller_sim`` — a fresh in-process simulator per test with fast keep-alive settings (Ping after
  0.5 s idle, client dropped after 2 s of silence). Yields a :class:`RunningSimulator`: ``.base_url``
  is the controller URI, ``.hub_url`` the hub, ``.admin`` the typed admin client.
* ``controller_sim_factory`` — ``await controller_sim_factory(token="t", ...)`` starts more simulators
  with custom :class:`SimulatorOptions` fields (the fast settings stay unless overridden).
* ``controller_sim_process_factory`` — the same as a child process (:class:`SimulatorProcess`), for
  tests that kill -9 or SIGTERM the controller.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio

from octo_devtools.controller_sim import (
    RunningSimulator,
    SimulatorOptions,
    SimulatorProcess,
    running_simulator,
)

FAST_KEEPALIVE: dict[str, Any] = {"ping_interval": 0.5, "client_timeout": 2.0}

SimulatorFactory = Callable[..., Awaitable[RunningSimulator]]
ProcessFactory = Callable[..., Awaitable[SimulatorProcess]]


def fast_options(**overrides: Any) -> SimulatorOptions:
    return SimulatorOptions(**{**FAST_KEEPALIVE, **overrides})


@pytest_asyncio.fixture
async def controller_sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(fast_options()) as sim:
        yield sim


@pytest_asyncio.fixture
async def controller_sim_factory() -> AsyncIterator[SimulatorFactory]:
    async with contextlib.AsyncExitStack() as stack:

        async def start(**options: Any) -> RunningSimulator:
            return await stack.enter_async_context(running_simulator(fast_options(**options)))

        yield start


@pytest_asyncio.fixture
async def controller_sim_process_factory() -> AsyncIterator[ProcessFactory]:
    async with contextlib.AsyncExitStack() as stack:

        async def start(**options: Any) -> SimulatorProcess:
            return await stack.enter_async_context(SimulatorProcess(fast_options(**options)))

        yield start
