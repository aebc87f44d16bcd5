"""Render the operator chart with the real helm binaries (helpers shared by the chart tests)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from octo_devtools.devcluster.paths import Toolchain

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "communication-operator"
CANONICAL_CRD = ROOT / "crds" / "communicationpool.yaml"
CHART_CRD = CHART / "files" / "crds" / "communicationpool.yaml"
CANONICAL_DEPLOYMENT_SITE_CRD = ROOT / "crds" / "deploymentsite.yaml"
CHART_DEPLOYMENT_SITE_CRD = CHART / "files" / "crds" / "deploymentsite.yaml"

CONTROLLER_URI = "https://octo.example.com/communication"

# Representative values for the two modes (what docs/install.md shows).
CENTRAL_VALUES: dict[str, Any] = {
    "operator": {
        "controllerUri": CONTROLLER_URI,
        "autoManagePools": True,
        "poolNamespace": "octo",
        "instancePrefix": "prod",
        "clusterDependencies": {"mongodbHost": "mongo.octo.svc", "rabbitmqHost": "rabbit.octo.svc"},
        "ingress": {
            "className": "nginx",
            "tls": True,
            "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt", "a.example/b": "c"},
        },
        "helm": {"timeoutSeconds": 600},
    },
    "broker": {"host": "rabbit.octo.svc", "username": "octo", "password": "broker-secret-value"},
    "authentication": {
        "issuerUri": "https://identity.example.com",
        "clientId": "communication-operator",
        "clientSecret": "client-secret-value",
        "tenantId": "OctoSystem",
    },
    "clusterSecrets": {"streamDataPassword": "stream-secret-value"},
}
EDGE_VALUES: dict[str, Any] = {
    "operator": {
        "controllerUri": CONTROLLER_URI,
        "autoManagePools": False,
        "watchNamespace": "edge-pools",
        "poolNamespace": "edge-pools",
        "log": {"format": "text", "level": "DEBUG"},
    },
    "rbac": {"scope": "namespace"},
    "credentials": {"existingSecret": "edge-operator-credentials"},
    "authentication": {"issuerUri": "https://identity.example.com", "clientId": "edge-operator"},
}


def toolchain() -> Toolchain:
    tools = Toolchain.from_cache()
    missing = [str(p) for p in (tools.helm, tools.helm3, tools.kubectl) if not p.is_file()]
    if missing:
        pytest.fail(
            f"helm/kubectl not found: {', '.join(missing)}; run scripts/bootstrap (devcluster prepare)"
        )
    return tools


def helm_env(tmp: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """helm's config and cache in a temp dir, so tests neither read nor write the user's."""
    env = dict(base if base is not None else os.environ)
    for key in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[key] = str(tmp / key.lower())
    env["KUBECACHEDIR"] = str(tmp / "kube-cache")
    return env


def write_values(tmp: Path, values: Mapping[str, Any], name: str = "values.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(dict(values)))
    return path


def run_helm(
    helm: Path, args: Sequence[str], tmp: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, env=helm_env(tmp, env), timeout=120, check=False
    )


def template(
    values: Mapping[str, Any],
    tmp: Path,
    *,
    helm: Path | None = None,
    release: str = "op",
    namespace: str = "operators",
    extra: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """`helm template` the chart and return the manifests (fails the test with helm's stderr)."""
    result = run_helm(
        helm or toolchain().helm,
        [
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "-f",
            str(write_values(tmp, values)),
            *extra,
        ],
        tmp,
    )
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def template_error(values: Mapping[str, Any], tmp: Path, *, helm: Path | None = None) -> str:
    """Render values that must be rejected; returns helm's error output."""
    result = run_helm(
        helm or toolchain().helm,
        ["template", "op", str(CHART), "-f", str(write_values(tmp, values))],
        tmp,
    )
    assert result.returncode != 0, f"helm accepted values that must be rejected: {values}"
    return result.stderr


def by_kind(manifests: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: Iterable[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container_env(deployment: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container["env"]}


def merged(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge value layers (later wins), like helm's -f files."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = dict(value) if isinstance(value, Mapping) else value
    return out
