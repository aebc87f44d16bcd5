"""Local cluster benchmarks.

1. `devcluster up` / `down` / `up` again from the cache in a private state dir, through the real CLI:
   wall time of each, plus the reuse path (`up` on a running cluster). Target: the second `up` after a
   `down` under 15 s. Baseline: the first `up` of the same run.
2. Fake-kubelet signal latency: pod created -> status written (containerStatuses present), over N pods.
   Target: under 200 ms. Baseline: a plain GET of a pod against the same apiserver.

Run: ``.venv/bin/python -m benchmarks.devcluster_startup [--pods 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config

from octo_devtools.devcluster.controlplane import ClusterState
from octo_devtools.devcluster.kubelet import FakeKubelet
from octo_devtools.devcluster.prepare import prepare

CLI = [sys.executable, "-m", "octo_devtools.devcluster.cli"]


def timed_cli(*args: str) -> float:
    started = time.monotonic()
    subprocess.run([*CLI, *args], check=True, capture_output=True, text=True)
    return time.monotonic() - started


async def kubelet_latency(kubeconfig: Path, pods: int) -> tuple[list[float], list[float]]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        core: Any = client.CoreV1Api(api)
        await core.create_namespace({"metadata": {"name": "bench"}})
        latencies, gets = [], []
        async with FakeKubelet(api, namespace="bench") as kubelet:
            await kubelet.wait_synced()
            for index in range(pods):
                name = f"p{index}"
                body = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
                await core.create_namespaced_pod("bench", body)
                created = time.monotonic()
                while True:
                    before = time.monotonic()
                    pod = await core.read_namespaced_pod(name, "bench")
                    gets.append(time.monotonic() - before)
                    if pod.status.container_statuses:
                        break
                latencies.append(time.monotonic() - created)
        return latencies, gets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=20)
    args = parser.parse_args()
    prepare()  # not timed: the cached build/fetch
    with tempfile.TemporaryDirectory(prefix="devcluster-bench.") as tmp:
        state = ["--state-dir", str(Path(tmp) / "state")]
        try:
            first_up = timed_cli(*state, "up")
            reuse_up = timed_cli(*state, "up")
            down = timed_cli(*state, "down")
            second_up = timed_cli(*state, "up")
            loaded = ClusterState.load(Path(tmp) / "state")
            assert loaded is not None
            latencies, gets = asyncio.run(kubelet_latency(loaded.kubeconfig, args.pods))
        finally:
            final_down = timed_cli(*state, "down")
    print(f"first up (from cache):      {first_up:6.2f} s")
    print(f"up on a running cluster:    {reuse_up:6.2f} s")
    print(f"down:                       {down:6.2f} s")
    print(
        f"second up after down:       {second_up:6.2f} s  (target < 15 s; ratio to first up "
        f"{second_up / first_up:.2f})"
    )
    print(f"final down:                 {final_down:6.2f} s")
    print(
        f"pod created -> status, median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms over {len(latencies)} pods (target < 200 ms)"
    )
    print(
        f"baseline pod GET, median {statistics.median(gets) * 1000:.1f} ms "
        f"(latency ratio {statistics.median(latencies) / statistics.median(gets):.1f})"
    )


if __name__ == "__main__":
    main()
