"""Everything the demo runs on this machine, started in order and stopped in reverse, even on failure.

1. the local cluster (``devcluster`` code path, its own state directory under the work directory),
   with the real node (containerd, kubelet, kube-scheduler: real pods) or, with ``node="fake"``, none;
2. the CommunicationPool CRD (``communication-operator crds | kubectl apply``) and the pool namespace;
3. a loopback chart repository serving ``tests/charts/testapp`` (the node's local test image) on the
   real node, ``tests/charts/web`` on the fake one;
4. with the fake node only: the fake kubelet, with the rule ``example.invalid/*`` → ``image-pull-backoff``;
5. the controller simulator as a child process with a state file (so a kill + start keeps its pools);
6. the operator, ``communication-operator run`` in central mode, configured only through ``OPERATOR__*``
   environment variables, as a user would run it.

Processes are stopped by PID (the operator and the simulator: SIGTERM, then SIGKILL; the cluster:
``devcluster down``'s recorded PIDs). The control plane and the operator also get ``PR_SET_PDEATHSIG``,
so a ``kill -9`` of the demo does not leave them behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config

from communication_operator.resources import communication_pool_crd
from octo_devtools.controller_sim import SimulatorOptions, SimulatorProcess
from octo_devtools.demo.story import BOGUS_IMAGE_GLOB
from octo_devtools.devcluster import lifecycle
from octo_devtools.devcluster.chartrepo import ChartRepository
from octo_devtools.devcluster.controlplane import KubeRest, tool_path_dirs, wait_for_default_token
from octo_devtools.devcluster.images import TEST_IMAGE
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.devcluster.lifecycle import NodeKind
from octo_devtools.devcluster.paths import Toolchain
from octo_devtools.devcluster.realnode import NODE_NAME
from octo_devtools.devcluster.rules import make_rule

Progress = Callable[[str], None]

POOL_NAMESPACE = "octo-demo"
TENANT = "demo"
#: What the summary table says ran the pods.
NODE_DESCRIPTIONS = {
    "real": "real (kubelet 1.20.2, containerd, runc, CNI bridge, kube-scheduler: real pods and pod IPs)",
    "fake": "fake (the fake kubelet writes pod statuses; nothing runs)",
}
#: The real node's crashing workload: the good image (testapp) told to exit 1.
CRASH_VALUES = 'args: ["exit", "1"]\n'
#: The operator gives a crash loop up after this many restarts (the real kubelet backs off 10 s, 20 s).
REAL_NODE_CRASH_LOOP_RESTARTS = 2
CRD_NAME = "communicationpools.octo-mesh.meshmakers.io"
OPERATOR_STOP_GRACE_S = 20.0


class DemoSetupError(RuntimeError):
    """A component of the demo did not start; the message names it and where its log is."""


def repository_root() -> Path:
    """The checkout this package runs from (editable install): ``operator/octo_devtools/demo`` → root."""
    return Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG(SIGKILL): the operator must not outlive a demo that was killed with -9.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.is_file():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class LocalEnvironment:
    """What the story needs, plus the handles cleanup and the restart step use."""

    work_dir: Path
    kubeconfig: Path
    env: dict[str, str]  # KUBECONFIG, PATH with helm/kubectl, helm homes
    toolchain: Toolchain
    namespace: str
    chart_repo_url: str
    simulator: SimulatorProcess
    operator_log: Path
    health_port: int
    api: client.ApiClient
    node: NodeKind = "real"
    chart_name: str = "testapp"
    operator_pid: int | None = None

    async def show_pods(self) -> str:
        """`kubectl get pods -o wide` of the pool namespace (pod IPs and the node, on the real node)."""
        return await _run(
            [str(self.toolchain.kubectl), "get", "pods", "-o", "wide", "-n", self.namespace], self.env
        )

    async def operator_health(self) -> dict[str, Any] | None:
        """The operator's ``/healthz`` body, or None while it does not answer 200."""
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
                http.get(f"http://127.0.0.1:{self.health_port}/healthz") as response,
            ):
                if response.status == 200:
                    return dict(await response.json())
        except (aiohttp.ClientError, TimeoutError):
            return None
        return None

    async def restart_controller(self) -> str:
        """SIGKILL the simulator, wait until the operator has noticed, start it again on the same port
        with the same state file (pools and workloads kept, connections and call log gone)."""
        old_pid = self.simulator.pid
        await self.simulator.kill()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            health = await self.operator_health()
            if health is not None and not (health.get("hub") or {}).get("connected"):
                break
            await asyncio.sleep(0.2)
        else:
            raise DemoSetupError("the operator did not notice that the controller went away within 20 s")
        await self.simulator.start()
        return f"pid {old_pid} killed with SIGKILL, pid {self.simulator.pid} started with the same state file"


async def _run(
    argv: list[str], env: dict[str, str], *, stdin: str | None = None, timeout: float = 60.0
) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(stdin.encode() if stdin else None), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise DemoSetupError(
            f"{Path(argv[0]).name} {' '.join(argv[1:3])} did not finish in {timeout:g} s"
        ) from None
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise DemoSetupError(f"{Path(argv[0]).name} {' '.join(argv[1:])} failed: {text.strip()}")
    return text


def _operator_command() -> list[str]:
    """The installed ``communication-operator`` next to this interpreter (what a user runs)."""
    script = Path(sys.executable).with_name("communication-operator")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "communication_operator.cli"]


def operator_environment(
    base: dict[str, str],
    controller_url: str,
    namespace: str,
    health_port: int,
    helm: Path,
    node: NodeKind = "fake",
) -> dict[str, str]:
    """The process environment of the central operator: ``OPERATOR__*`` only, nothing on the command line."""
    env = {k: v for k, v in base.items() if not k.upper().startswith("OPERATOR__")}
    env.update(
        {
            "OPERATOR__COMMUNICATIONCONTROLLERURI": controller_url,
            "OPERATOR__AUTOMANAGEPOOLS": "true",
            "OPERATOR__POOLNAMESPACE": namespace,
            "OPERATOR__WATCHNAMESPACE": namespace,
            "OPERATOR__BROKERUSER": "demo-broker",
            "OPERATOR__BROKERPASSWORD": secrets.token_urlsafe(12),
            "OPERATOR__POOLREGISTRATIONRETRYSECONDS": "5",
            "OPERATOR__SHUTDOWNDRAINSECONDS": "2",
            "OPERATOR__HELM__BINARY": str(helm),
            # Fail-fast ends the bad-image deploy much sooner; this bounds it if it did not.
            "OPERATOR__HELM__TIMEOUTSECONDS": "60",
            "OPERATOR__HEALTH__PORT": str(health_port),
            "OPERATOR__METRICS__PORT": "0",
            "OPERATOR__LOG__FORMAT": "text",
        }
    )
    if node == "real":
        env["OPERATOR__HELM__FAILFASTCRASHLOOPRESTARTS"] = str(REAL_NODE_CRASH_LOOP_RESTARTS)
    return env


@contextlib.asynccontextmanager
async def local_environment(
    work_dir: Path, progress: Progress, *, chart_dir: Path | None = None, node: NodeKind = "real"
) -> AsyncIterator[LocalEnvironment]:
    """Bring everything up (see the module text); tear it down in reverse order on exit."""
    chart_dir = chart_dir or repository_root() / "tests" / "charts" / ("testapp" if node == "real" else "web")
    if not (chart_dir / "Chart.yaml").is_file():
        raise DemoSetupError(f"no chart at {chart_dir} (the demo runs from a checkout of this repository)")
    if node == "real" and os.geteuid() != 0:
        raise DemoSetupError(
            "the real node needs root (mount namespace, cgroups, a bridge); run `./scripts/demo --node fake`"
        )
    work_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    cluster_dir = work_dir / "cluster"
    async with contextlib.AsyncExitStack() as stack:
        # 1. Cluster. Called on this (the main) thread: PR_SET_PDEATHSIG fires when the *thread* that
        # started a child exits, so a worker thread would take the control plane down with it.
        progress(f"starting the local cluster with the {node} node (state in {cluster_dir})")
        stack.callback(lifecycle.down, cluster_dir, lambda line: progress(line))
        up = lifecycle.up(cluster_dir, lambda line: progress(f"    {line}"), die_with_parent=True, node=node)
        state, toolchain = up.state, up.toolchain
        env = dict(os.environ)
        env.update(lifecycle.environment(state, toolchain))
        env["PATH"] = os.pathsep.join([*tool_path_dirs(toolchain), env.get("PATH", "")])
        progress(f"cluster ready at {state.server}")

        # 2. CRD and namespace, the way the install guide does it.
        kubectl = str(toolchain.kubectl)
        await _run([kubectl, "apply", "-f", "-"], env, stdin=communication_pool_crd())
        await _run([kubectl, "wait", "--for=condition=established", f"crd/{CRD_NAME}", "--timeout=30s"], env)
        await _run([kubectl, "create", "namespace", POOL_NAMESPACE], env)
        if state.service_account_tokens:  # the workload pods' account needs its token first
            await asyncio.to_thread(
                wait_for_default_token, KubeRest(state.server, state.token), POOL_NAMESPACE
            )
        progress(f"CommunicationPool CRD installed, namespace {POOL_NAMESPACE} created")

        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(state.kubeconfig), client_configuration=configuration)
        api = client.ApiClient(configuration)
        stack.push_async_callback(api.close)

        # 3. Chart repository.
        helm_env = dict(env)
        for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            helm_env[name] = str(work_dir / "chart-repo-helm" / name.lower())
        repo = ChartRepository([chart_dir], work_dir / "chart-repo", toolchain.helm, helm_env).start()
        stack.callback(repo.stop)
        progress(
            f"chart repository at {repo.url} serving {', '.join(f'{k} {v}' for k, v in repo.charts.items())}"
        )

        # 4. The fake kubelet, when the control plane has no real node.
        if node == "fake":
            kubelet = FakeKubelet(
                api, namespace=POOL_NAMESPACE, rules=[make_rule(BOGUS_IMAGE_GLOB, "image-pull-backoff")]
            )
            await kubelet.start()
            stack.push_async_callback(kubelet.stop)
            await kubelet.wait_synced()
            progress(f"fake kubelet running: {BOGUS_IMAGE_GLOB} → ImagePullBackOff, any other image → Ready")
        else:
            progress(
                f"real node {NODE_NAME} Ready: containerd + kubelet run the pods; local image "
                f"{TEST_IMAGE}, any other image really fails to pull"
            )

        # 5. Controller simulator.
        simulator = SimulatorProcess(SimulatorOptions(state_file=str(work_dir / "controller-state.json")))
        stack.push_async_callback(_stop_simulator, simulator, work_dir / "controller-sim.log")
        await simulator.start()
        assert simulator.base_url is not None
        progress(f"controller simulator pid {simulator.pid} at {simulator.base_url}")

        # 6. The operator.
        health_port = free_port()
        operator_log = work_dir / "operator.log"
        environment = LocalEnvironment(
            work_dir=work_dir,
            kubeconfig=state.kubeconfig,
            env=env,
            toolchain=toolchain,
            namespace=POOL_NAMESPACE,
            chart_repo_url=repo.url,
            simulator=simulator,
            operator_log=operator_log,
            health_port=health_port,
            api=api,
            node=node,
            chart_name=chart_dir.name,
        )
        operator_env = operator_environment(
            env, simulator.base_url, POOL_NAMESPACE, health_port, toolchain.helm, node
        )
        with operator_log.open("ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                *_operator_command(),
                "run",
                f"--kubeconfig={state.kubeconfig}",
                env=operator_env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops the operator in order
                preexec_fn=_die_with_parent,
            )
        environment.operator_pid = process.pid
        stack.push_async_callback(_stop_operator, process, progress)
        progress(f"operator pid {process.pid} starting in central mode (log: {operator_log})")
        await _wait_operator_connected(environment, process)
        progress("operator connected to the controller (/healthz: hub connected)")
        yield environment
        progress("stopping everything the demo started")


async def _wait_operator_connected(
    environment: LocalEnvironment, process: asyncio.subprocess.Process
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise DemoSetupError(
                f"the operator exited with {process.returncode} while starting; its log "
                f"({environment.operator_log}):\n{log_tail(environment.operator_log)}"
            )
        health = await environment.operator_health()
        if health is not None and (health.get("hub") or {}).get("connected"):
            return
        await asyncio.sleep(0.2)
    raise DemoSetupError(
        f"the operator did not connect within 60 s; its log ({environment.operator_log}):\n"
        + log_tail(environment.operator_log)
    )


async def _stop_operator(process: asyncio.subprocess.Process, progress: Progress) -> None:
    if process.returncode is not None:
        progress(f"operator pid {process.pid} had already exited ({process.returncode})")
        return
    process.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.wait_for(process.wait(), OPERATOR_STOP_GRACE_S)
        progress(f"operator pid {process.pid} stopped (exit {code})")
    except TimeoutError:
        process.kill()
        await process.wait()
        progress(f"operator pid {process.pid} killed after {OPERATOR_STOP_GRACE_S:g} s")


async def _stop_simulator(simulator: SimulatorProcess, keep_log: Path) -> None:
    await simulator.stop()
    # Keep the simulator's log with the others in the work directory.
    with contextlib.suppress(OSError):
        shutil.move(simulator.log_path, keep_log)
