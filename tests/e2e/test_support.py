"""The host-side pieces of the e2e suite, checked here without kind: gateway lookup, image parsing, the
chart values (rendered by the real chart), the restartable simulator and the chart repository."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from octo_devtools.controller_sim.admin_client import AdminClient
from octo_devtools.devcluster.paths import Toolchain
from octo_devtools.devcluster.prepare import ensure_tools
from tests.e2e.support import (
    E2ESetupError,
    HostSimulator,
    host_chart_repo,
    image_parts,
    ipv4_gateway,
    operator_chart_values,
)

ROOT = Path(__file__).resolve().parents[2]


def test_gateway_is_the_first_ipv4_of_the_kind_network() -> None:
    config = [
        {"Subnet": "fc00:f853:ccd:e793::/64", "Gateway": "fc00:f853:ccd:e793::1"},
        {"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"},
    ]
    assert ipv4_gateway(config) == "172.18.0.1"
    with pytest.raises(E2ESetupError, match="no IPv4 gateway"):
        ipv4_gateway([{"Subnet": "fc00::/64", "Gateway": "fc00::1"}, {"Subnet": "10.0.0.0/8"}])


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("communication-operator:e2e", ("communication-operator", "e2e")),
        ("localhost:5000/team/op:1.2", ("localhost:5000/team/op", "1.2")),
        ("localhost:5000/team/op", ("localhost:5000/team/op", "latest")),
        ("op", ("op", "latest")),
    ],
)
def test_image_parts(image: str, expected: tuple[str, str]) -> None:
    assert image_parts(image) == expected


def test_operator_values_render_with_the_real_chart() -> None:
    ensure_tools()
    values = operator_chart_values(
        image="communication-operator:e2e",
        controller_uri="http://172.18.0.1:5099",
        pool_namespace="octo-e2e",
        broker_password="pw",
    )
    result = subprocess.run(
        [
            str(Toolchain.from_cache().helm),
            "template",
            "op",
            str(ROOT / "charts" / "communication-operator"),
            "-f",
            "-",
        ],
        input=yaml.safe_dump(values),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    manifests = [m for m in yaml.safe_load_all(result.stdout) if m]
    [deployment] = [m for m in manifests if m["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "communication-operator:e2e"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OPERATOR__COMMUNICATIONCONTROLLERURI"] == "http://172.18.0.1:5099"
    assert env["OPERATOR__AUTOMANAGEPOOLS"] == "true"
    assert env["OPERATOR__POOLNAMESPACE"] == "octo-e2e"


async def test_host_simulator_restarts_on_its_port_and_keeps_its_pools(tmp_path: Path) -> None:
    simulator = HostSimulator(state_file=tmp_path / "state.json", log_path=tmp_path / "sim.log")
    simulator.start()
    try:
        assert simulator.controller_uri("172.18.0.1") == f"http://172.18.0.1:{simulator.port}"
        async with AdminClient(simulator.admin_url) as admin:
            rt_id = await admin.create_pool("e2e", "p", "Cloud")
        first = simulator.pid
        described = simulator.restart()
        assert simulator.pid != first
        assert f"pid {first} killed" in described
        async with AdminClient(simulator.admin_url) as admin:
            assert (await admin.pool(rt_id))["name"] == "p"
            assert await admin.calls() == []  # a new process: a fresh call log, as the story expects
    finally:
        simulator.stop()
    assert simulator._process is not None
    assert simulator._process.poll() is not None


def test_chart_repository_indexes_charts_under_the_host_url(tmp_path: Path) -> None:
    ensure_tools()
    repo = host_chart_repo(
        [ROOT / "tests" / "charts" / "web"],
        tmp_path / "charts",
        str(Toolchain.from_cache().helm),
        "127.0.0.1",
    ).start()
    try:
        with urllib.request.urlopen(f"{repo.local_url}/index.yaml", timeout=5) as response:
            index = yaml.safe_load(response.read())
        [entry] = index["entries"]["web"]
        assert entry["urls"][0].startswith(repo.url + "/web-")
        with urllib.request.urlopen(
            entry["urls"][0].replace(repo.url, repo.local_url), timeout=5
        ) as response:
            assert response.status == 200
    finally:
        repo.stop()
