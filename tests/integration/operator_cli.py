"""Start `communication-operator run` as a process for integration tests that need the real CLI."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path


def operator_cli_env(controller_uri: str, namespace: str, **settings: str) -> dict[str, str]:
    """This process's environment without the host's ``OPERATOR__*``, plus the given operator settings
    (keys without the ``OPERATOR__`` prefix, e.g. ``HEALTH__PORT="8080"``), logging as text."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("OPERATOR__")}
    env.update(
        {
            "OPERATOR__COMMUNICATIONCONTROLLERURI": controller_uri,
            "OPERATOR__WATCHNAMESPACE": namespace,
            "OPERATOR__POOLNAMESPACE": namespace,
            "OPERATOR__LOG__FORMAT": "text",
        }
    )
    env.update({f"OPERATOR__{key}": value for key, value in settings.items()})
    return env


async def start_operator_cli(kubeconfig: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    """The operator process, stdout and stderr merged into one pipe that the caller drains."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "communication_operator.cli",
        "run",
        f"--kubeconfig={kubeconfig}",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    return process
