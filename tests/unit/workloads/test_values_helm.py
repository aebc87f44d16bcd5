"""Helm itself reads our quoted values documents back with every string still a string.

``helm template`` renders a one-file chart that echoes ``.Values`` as JSON; the JSON must equal what
we wrote. Runs against each cached helm (3.x and 4.x), a few hundred milliseconds each.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from communication_operator.workloads.values import dump_quoted

from .test_values import TRICKY


def _helm_binaries() -> list[Path]:
    cache = Path(
        os.environ.get("COMMUNICATION_OPERATOR_CACHE", Path.home() / ".cache" / "communication-operator")
    )
    found = sorted((cache / "tools").glob("helm-*/helm"))
    on_path = shutil.which("helm")
    if on_path:
        found.append(Path(on_path))
    return found


HELMS = _helm_binaries()

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: probe\nversion: 0.1.0\n",
    "templates/probe.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\n"
        "data:\n  values: {{ .Values.probe | toJson | quote }}\n"
    ),
}


@pytest.mark.skipif(not HELMS, reason="no helm binary cached (run `devcluster prepare`) or on PATH")
@pytest.mark.parametrize("helm", HELMS, ids=[p.parent.name for p in HELMS])
def test_helm_reads_every_quoted_string_as_a_string(helm: Path, tmp_path: Path) -> None:
    chart = tmp_path / "probe"
    for name, text in CHART.items():
        (chart / name).parent.mkdir(parents=True, exist_ok=True)
        (chart / name).write_text(text)
    probe: dict[str, Any] = {f"k{index}": text for index, text in enumerate(TRICKY)}
    probe.update({"0123": "key is digits", "true": "key is a bool word", "int": 0, "bool": True})
    values = tmp_path / "values.yaml"
    values.write_text(dump_quoted({"probe": probe}), encoding="utf-8")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(tmp_path / "c"),
        "HELM_CONFIG_HOME": str(tmp_path / "g"),
        "HELM_DATA_HOME": str(tmp_path / "d"),
    }
    result = subprocess.run(
        [str(helm), "template", "probe", str(chart), "-f", str(values)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert json.loads(rendered["data"]["values"]) == probe
