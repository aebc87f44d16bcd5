"""The command line: crds, version, and configuration errors as one line with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from communication_operator.cli import main
from communication_operator.resources import communication_pool_crd


def test_crds_prints_the_packaged_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    assert capsys.readouterr().out == communication_pool_crd()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip()


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("OPERATOR__")}
    return subprocess.run(
        [sys.executable, "-m", "communication_operator.cli", "run"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_invalid_configuration_is_one_line_naming_the_variable_and_exit_2() -> None:
    result = _run(
        {
            "OPERATOR__COMMUNICATIONCONTROLLERURI": "http://127.0.0.1:1",
            "OPERATOR__POOLREGISTRATIONRETRYSECONDS": "often",
        }
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "communication-operator: configuration error: OPERATOR__POOLREGISTRATIONRETRYSECONDS: "
        "Input should be a valid number, unable to parse string as a number"
    ]


def test_missing_controller_uri_stops_run_with_exit_2() -> None:
    result = _run({})
    assert result.returncode == 2
    assert "OPERATOR__COMMUNICATIONCONTROLLERURI: required" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("deploymentsite", ["deploymentsites.octo-mesh.meshmakers.io"]),
        (
            "all",
            ["communicationpools.octo-mesh.meshmakers.io", "deploymentsites.octo-mesh.meshmakers.io"],
        ),
    ],
)
def test_crds_prints_the_deployment_site_crd_on_request(
    kind: str, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["crds", "--kind", kind]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["metadata"]["name"] for d in documents] == expected
