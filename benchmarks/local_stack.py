"""The local cluster, a chart repository of ``tests/charts`` and an API client, for the workload benchmarks.

The same code path as ``devcluster up`` in a private state dir, torn down (by PID) afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from kubernetes_asyncio import client, config

from octo_devtools.devcluster import lifecycle
from octo_devtools.devcluster.chartrepo import ChartRepository
from octo_devtools.devcluster.controlplane import KubeRest, tool_path_dirs, wait_for_default_token
from octo_devtools.devcluster.paths import Toolchain

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LocalStack:
    state_dir: Path
    toolchain: Toolchain
    env: dict[str, str]  # KUBECONFIG and PATH with helm/kubectl, for subprocesses
    helm_env: dict[str, str]  # env plus helm homes private to this run
    repo: ChartRepository
    api: client.ApiClient


def _progress(line: str) -> None:
    logging.info("%s", line)


@asynccontextmanager
async def local_stack(
    prefix: str, namespace: str, node: lifecycle.NodeKind = "fake"
) -> AsyncIterator[LocalStack]:
    """Start everything (with the real node if asked), create ``namespace``, yield; stop it all again."""
    state_dir = Path(tempfile.mkdtemp(prefix=prefix))
    result = lifecycle.up(state_dir, _progress, die_with_parent=True, node=node)
    try:
        env = {**lifecycle.environment(result.state, result.toolchain)}
        env["PATH"] = ":".join([*tool_path_dirs(result.toolchain), "/usr/bin:/bin"])
        helm_env = {
            **env,
            **{
                f"HELM_{kind}_HOME": str(state_dir / "helm" / kind.lower())
                for kind in ("CACHE", "CONFIG", "DATA")
            },
        }
        charts = sorted(p.parent for p in (ROOT / "tests" / "charts").glob("*/Chart.yaml"))
        repo = ChartRepository(charts, state_dir / "repo", result.toolchain.helm, env).start()
        try:
            configuration = client.Configuration()
            await config.load_kube_config(
                config_file=str(result.state.kubeconfig), client_configuration=configuration
            )
            api = client.ApiClient(configuration)
            try:
                body = client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
                await client.CoreV1Api(api).create_namespace(body)
                if result.state.service_account_tokens:  # the real node: pods need their token first
                    rest = KubeRest(result.state.server, result.state.token)
                    await asyncio.to_thread(wait_for_default_token, rest, namespace)
                yield LocalStack(state_dir, result.toolchain, env, helm_env, repo, api)
            finally:
                await api.close()
        finally:
            repo.stop()
    finally:
        lifecycle.down(state_dir, _progress)
