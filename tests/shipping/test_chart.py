"""The operator's Helm chart, rendered by the real helm binaries (no cluster needed).

The API-server checks of the rendered manifests are in test_chart_cluster.py.
"""

from __future__ import annotations

import base64
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from communication_operator.settings import Settings, load_settings

from .chart import (
    CANONICAL_CRD,
    CENTRAL_VALUES,
    CHART,
    CHART_CRD,
    CONTROLLER_URI,
    EDGE_VALUES,
    by_kind,
    container_env,
    merged,
    one,
    run_helm,
    template,
    template_error,
    toolchain,
    write_values,
)

HELMS = ["helm4", "helm3"]


def _helm(which: str) -> Path:
    tools = toolchain()
    return tools.helm if which == "helm4" else tools.helm3


def test_chart_crd_is_a_byte_identical_copy_of_the_canonical_crd() -> None:
    assert CANONICAL_CRD.is_file(), f"the canonical CRD {CANONICAL_CRD} is missing"
    assert CHART_CRD.read_bytes() == CANONICAL_CRD.read_bytes(), (
        f"{CHART_CRD.relative_to(CHART.parents[1])} differs from crds/communicationpool.yaml; "
        "sync it with: cp crds/communicationpool.yaml charts/communication-operator/files/crds/"
    )


@pytest.mark.parametrize("which", HELMS)
@pytest.mark.parametrize("values", [CENTRAL_VALUES, EDGE_VALUES], ids=["central", "edge"])
def test_helm_lint_strict_passes(which: str, values: dict[str, Any], tmp_path: Path) -> None:
    result = run_helm(
        _helm(which), ["lint", "--strict", str(CHART), "-f", str(write_values(tmp_path, values))], tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"helm lint --strict failed:\n{output}"
    assert "[WARNING]" not in output, output
    assert "[ERROR]" not in output, output


# --- central mode ---------------------------------------------------------------------------------


@pytest.fixture
def central(tmp_path: Path) -> list[dict[str, Any]]:
    return template(CENTRAL_VALUES, tmp_path)


def test_central_deployment_shape(central: list[dict[str, Any]]) -> None:
    deployment = one(central, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    # helm timeout 600 s + 60 s to report and exit.
    assert pod["terminationGracePeriodSeconds"] == 660
    assert pod["serviceAccountName"] == one(central, "ServiceAccount")["metadata"]["name"]
    container = pod["containers"][0]
    assert container["image"] == "communication-operator:0.1.0"
    assert container["args"] == ["run"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert "readinessProbe" not in container
    assert container["resources"]["limits"]["memory"] == "512Mi"


def test_restricted_security_context(central: list[dict[str, Any]]) -> None:
    pod = one(central, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]["securityContext"]
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    mounts = pod["containers"][0]["volumeMounts"]
    assert {"name": "operator-tmp", "mountPath": "/tmp/operator"} in mounts
    volume = next(v for v in pod["volumes"] if v["name"] == "operator-tmp")
    assert "emptyDir" in volume


def test_central_env_maps_values_to_operator_settings(central: list[dict[str, Any]]) -> None:
    env = container_env(one(central, "Deployment"))
    plain = {name: e["value"] for name, e in env.items() if "value" in e}
    assert plain["OPERATOR__COMMUNICATIONCONTROLLERURI"] == CONTROLLER_URI
    assert plain["OPERATOR__AUTOMANAGEPOOLS"] == "true"
    assert plain["OPERATOR__POOLNAMESPACE"] == "octo"
    assert plain["OPERATOR__HELM__TIMEOUTSECONDS"] == "600"
    assert plain["OPERATOR__BROKERHOST"] == "rabbit.octo.svc"
    assert plain["OPERATOR__AUTHENTICATION__TENANTID"] == "OctoSystem"
    assert plain["OPERATOR__CLUSTERDEPENDENCIES__MONGODBHOST"] == "mongo.octo.svc"
    # Annotations become an indexed list, in key order.
    assert plain["OPERATOR__INGRESS__ANNOTATIONS__0__NAME"] == "a.example/b"
    assert plain["OPERATOR__INGRESS__ANNOTATIONS__1__NAME"] == "cert-manager.io/cluster-issuer"
    assert plain["OPERATOR__INGRESS__ANNOTATIONS__1__VALUE"] == "letsencrypt"
    assert plain["OPERATOR__LOG__FORMAT"] == "json"
    # Unset optional settings are not rendered, so the operator's defaults apply.
    assert "OPERATOR__REPORTINGSERVICEURI" not in env


def test_central_credentials_come_from_the_chart_managed_secret(central: list[dict[str, Any]]) -> None:
    secret = one(central, "Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {
        "broker-password": "broker-secret-value",
        "client-secret": "client-secret-value",
        "stream-data-password": "stream-secret-value",
    }
    env = container_env(one(central, "Deployment"))
    refs = {
        name: e["valueFrom"]["secretKeyRef"]
        for name, e in env.items()
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs == {
        "OPERATOR__BROKERPASSWORD": {"name": secret["metadata"]["name"], "key": "broker-password"},
        "OPERATOR__AUTHENTICATION__CLIENTSECRET": {
            "name": secret["metadata"]["name"],
            "key": "client-secret",
        },
        "OPERATOR__CLUSTERSECRETS__STREAMDATAPASSWORD": {
            "name": secret["metadata"]["name"],
            "key": "stream-data-password",
        },
    }
    # No credential appears as a plain value anywhere outside the Secret.
    rendered = yaml.safe_dump_all([m for m in central if m["kind"] != "Secret"])
    for value in data.values():
        assert value not in rendered
    annotations = one(central, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/credentials" in annotations


def test_cluster_scope_rbac(central: list[dict[str, Any]]) -> None:
    assert not by_kind(central, "Role")
    assert not by_kind(central, "RoleBinding")
    role = one(central, "ClusterRole")
    binding = one(central, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": one(central, "ServiceAccount")["metadata"]["name"],
            "namespace": "operators",
        }
    ]
    grants = _grants(role["rules"])
    for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
        assert ("octo-mesh.meshmakers.io", "communicationpools", verb) in grants
        assert ("", "secrets", verb) in grants  # helm's release storage
        assert ("apps", "deployments", verb) in grants
    assert ("octo-mesh.meshmakers.io", "communicationpools/status", "patch") in grants
    assert ("octo-mesh.meshmakers.io", "communicationpools/finalizers", "update") in grants
    assert ("", "events", "create") in grants
    assert ("apiextensions.k8s.io", "customresourcedefinitions", "watch") in grants
    # Read-only where the operator only observes.
    for resource in ("pods", "pods/log", "namespaces", "customresourcedefinitions", "replicasets"):
        assert not {v for g, r, v in grants if r == resource} - {"get", "list", "watch"}, resource
    assert not any("*" in (g, r, v) for g, r, v in grants), "no wildcard grants"


def _grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_crd_is_rendered_from_the_canonical_file_and_kept_on_uninstall(central: list[dict[str, Any]]) -> None:
    # The chart ships the DeploymentSite CRD too (test_chart_deployment_site.py): pick the pool one.
    [crd] = [
        m
        for m in by_kind(central, "CustomResourceDefinition")
        if m["metadata"]["name"] == "communicationpools.octo-mesh.meshmakers.io"
    ]
    assert crd == yaml.safe_load(CANONICAL_CRD.read_text())
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


# --- edge mode ------------------------------------------------------------------------------------


@pytest.fixture
def edge(tmp_path: Path) -> list[dict[str, Any]]:
    return template(EDGE_VALUES, tmp_path)


def test_edge_env_and_existing_secret(edge: list[dict[str, Any]]) -> None:
    assert not by_kind(edge, "Secret"), "with credentials.existingSecret the chart must not create a Secret"
    env = container_env(one(edge, "Deployment"))
    assert env["OPERATOR__AUTOMANAGEPOOLS"]["value"] == "false"
    assert env["OPERATOR__WATCHNAMESPACE"]["value"] == "edge-pools"
    assert env["OPERATOR__LOG__FORMAT"]["value"] == "text"
    # The client secret is required (authentication is configured); cluster secrets are optional keys.
    client_secret = env["OPERATOR__AUTHENTICATION__CLIENTSECRET"]["valueFrom"]["secretKeyRef"]
    assert client_secret == {"name": "edge-operator-credentials", "key": "client-secret"}
    stream = env["OPERATOR__CLUSTERSECRETS__STREAMDATAPASSWORD"]["valueFrom"]["secretKeyRef"]
    assert stream == {"name": "edge-operator-credentials", "key": "stream-data-password", "optional": True}
    # No broker user configured, so no broker password reference that would block the pod.
    assert "OPERATOR__BROKERPASSWORD" not in env
    annotations = one(edge, "Deployment")["spec"]["template"]["metadata"].get("annotations") or {}
    assert "checksum/credentials" not in annotations


def test_namespace_scope_rbac(edge: list[dict[str, Any]], tmp_path: Path) -> None:
    roles = by_kind(edge, "Role")
    assert [r["metadata"]["namespace"] for r in roles] == ["edge-pools"]  # pool == watch namespace
    assert [b["metadata"]["namespace"] for b in by_kind(edge, "RoleBinding")] == ["edge-pools"]
    assert ("", "secrets", "create") in _grants(roles[0]["rules"])
    # The only cluster-wide grant is read-only discovery of cluster-scoped resources.
    cluster_role = one(edge, "ClusterRole")
    grants = _grants(cluster_role["rules"])
    assert {r for _, r, _ in grants} == {"customresourcedefinitions", "namespaces"}
    assert {v for _, _, v in grants} == {"get", "list", "watch"}

    distinct = template(merged(EDGE_VALUES, {"operator": {"poolNamespace": "octo"}}), tmp_path)
    assert sorted(r["metadata"]["namespace"] for r in by_kind(distinct, "Role")) == ["edge-pools", "octo"]


# --- the chart only sets variables the settings know, and the settings accept them --------------------


def _known_env_name(name: str) -> bool:
    """Whether OPERATOR__A__B... names a field of Settings (nested sections and list indexes included)."""
    parts = name.split("__")
    if parts[0] != "OPERATOR" or len(parts) < 2:
        return False
    model: type[BaseModel] | None = Settings
    for i, part in enumerate(parts[1:]):
        if model is None:
            return False
        if part.isdigit():
            continue
        wanted = f"OPERATOR__{part}" if i == 0 else part
        field = next(
            (f for n, f in model.model_fields.items() if (f.alias or n).casefold() == wanted.casefold()),
            None,
        )
        if field is None:
            return False
        model = _model_in(field.annotation)
    return model is None  # the name must end at a scalar, not at a section


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def test_known_env_name_check_can_fail() -> None:
    assert _known_env_name("OPERATOR__HELM__TIMEOUTSECONDS")
    assert _known_env_name("OPERATOR__INGRESS__ANNOTATIONS__3__VALUE")
    assert not _known_env_name("OPERATOR__HELM__TIMEOUT")
    assert not _known_env_name("OPERATOR__CONTROLLERURI")
    assert not _known_env_name("OPERATOR__HELM")


@pytest.mark.parametrize("values", [CENTRAL_VALUES, EDGE_VALUES], ids=["central", "edge"])
def test_rendered_env_is_understood_by_the_settings(
    values: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = template(values, tmp_path)
    env = container_env(one(manifests, "Deployment"))
    unknown = [n for n in env if n.startswith("OPERATOR__") and not _known_env_name(n)]
    assert not unknown, f"the chart sets variables settings.py does not define: {unknown}"

    secrets = {
        m["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in m.get("data", {}).items()}
        for m in by_kind(manifests, "Secret")
    }
    for name in [n for n in os.environ if n.upper().startswith("OPERATOR__")]:
        monkeypatch.delenv(name)
    for name, entry in env.items():
        if "value" in entry:
            monkeypatch.setenv(name, entry["value"])
        elif ref := entry["valueFrom"].get("secretKeyRef"):
            # An existing Secret is the user's; stand in a value as the kubelet would inject it.
            monkeypatch.setenv(name, secrets.get(ref["name"], {}).get(ref["key"], f"from-{ref['key']}"))
    settings = load_settings()
    assert settings.communication_controller_uri == CONTROLLER_URI
    assert settings.auto_manage_pools is values["operator"]["autoManagePools"]
    assert settings.pool_namespace == values["operator"]["poolNamespace"]
    assert settings.metrics.port == 9090
    assert settings.health.port == 8080
    assert settings.authentication.enabled
    assert settings.authentication.client_secret is not None
    if values is CENTRAL_VALUES:
        assert settings.helm.timeout_seconds == 600
        assert settings.broker_password is not None
        assert settings.broker_password.get_secret_value() == "broker-secret-value"
        assert [(a.name, a.value) for a in settings.ingress.annotations] == [
            ("a.example/b", "c"),
            ("cert-manager.io/cluster-issuer", "letsencrypt"),
        ]
        assert settings.ingress.tls is True
    else:
        assert settings.watch_namespace == "edge-pools"
        assert settings.log.format == "text"


def test_fail_fast_values_reach_the_workload_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from communication_operator.runtime.workloads import workload_options
    from communication_operator.workloads.signals.policy import FailFastPolicy

    def policy_for(values: dict[str, Any]) -> FailFastPolicy:
        env = container_env(one(template(values, tmp_path), "Deployment"))
        for name in [n for n in os.environ if n.upper().startswith("OPERATOR__")]:
            monkeypatch.delenv(name)
        for name, entry in env.items():
            if "value" in entry:
                monkeypatch.setenv(name, entry["value"])
        return workload_options(load_settings()).fail_fast

    # The chart's defaults are the operator's defaults.
    assert policy_for(CENTRAL_VALUES) == FailFastPolicy()
    tuned = policy_for(
        merged(
            EDGE_VALUES,
            {
                "operator": {
                    "helm": {
                        "failFast": {
                            "enabled": False,
                            "imagePullSeconds": 300,
                            "imageNotFoundSeconds": 45.5,
                            "crashLoopRestarts": 6,
                            "unschedulableSeconds": 600,
                        }
                    }
                }
            },
        )
    )
    assert tuned == FailFastPolicy(
        enabled=False,
        image_pull_grace_seconds=300,
        hard_image_pull_grace_seconds=45.5,
        crash_loop_restarts=6,
        unschedulable_grace_seconds=600,
    )


# --- bad values fail at install time with a message that names the value -------------------------

SCHEMA_REJECTIONS = [
    ({"rbac": {"scope": "cluster-wide"}}, "/rbac/scope"),
    ({"operator": {"controllerUri": "octo.example.com"}}, "/operator/controllerUri"),
    ({"operator": {"autoManagePools": "yes"}}, "/operator/autoManagePools"),
    ({"operator": {"controllerURI": CONTROLLER_URI}}, "controllerURI"),
    ({"operator": {"log": {"format": "xml"}}}, "/operator/log/format"),
    ({"operator": {"poolNamespace": "Octo_Pools"}}, "/operator/poolNamespace"),
    ({"operator": {"helm": {"timeoutSeconds": 0}}}, "/operator/helm/timeoutSeconds"),
    (
        {"operator": {"helm": {"failFast": {"crashLoopRestarts": 0}}}},
        "/operator/helm/failFast/crashLoopRestarts",
    ),
    ({"operator": {"helm": {"failFast": {"enabled": "no"}}}}, "/operator/helm/failFast/enabled"),
    ({"metrics": {"port": 70000}}, "/metrics/port"),
    ({"crds": {"install": "false"}}, "/crds/install"),
]


@pytest.mark.parametrize("which", HELMS)
@pytest.mark.parametrize(("bad", "names"), SCHEMA_REJECTIONS, ids=[n for _, n in SCHEMA_REJECTIONS])
def test_schema_rejects_bad_values(which: str, bad: dict[str, Any], names: str, tmp_path: Path) -> None:
    values = merged({"operator": {"controllerUri": CONTROLLER_URI}}, bad)
    error = template_error(values, tmp_path, helm=_helm(which))
    assert "values don't meet the specifications of the schema" in error, error
    assert names in error, error


TEMPLATE_REJECTIONS = [
    ({}, "operator.controllerUri is required"),
    ({"operator": {"autoManagePools": True}}, "needs broker.host and broker.username"),
    (
        {"operator": {"autoManagePools": True}, "broker": {"host": "rabbit", "username": "octo"}},
        "needs the broker password",
    ),
    (
        {"authentication": {"clientId": "op"}},
        "authentication.clientId is set but authentication.issuerUri is not",
    ),
    (
        {"authentication": {"issuerUri": "https://id.example.com", "clientId": "op"}},
        "there is no client secret",
    ),
    (
        {"credentials": {"existingSecret": "mine"}, "broker": {"password": "x"}},
        "credentials.existingSecret (mine) is set",
    ),
    ({"rbac": {"scope": "namespace"}}, "rbac.scope=namespace needs operator.watchNamespace"),
    ({"terminationGracePeriodSeconds": 100}, "must be greater than operator.helm.timeoutSeconds"),
    (
        {"metrics": {"serviceMonitor": {"enabled": True}, "service": {"enabled": False}}},
        "needs metrics.service",
    ),
]


@pytest.mark.parametrize("which", HELMS)
@pytest.mark.parametrize(("bad", "message"), TEMPLATE_REJECTIONS, ids=[m for _, m in TEMPLATE_REJECTIONS])
def test_inconsistent_values_fail_with_a_clear_message(
    which: str, bad: dict[str, Any], message: str, tmp_path: Path
) -> None:
    base = {} if bad == {} else {"operator": {"controllerUri": CONTROLLER_URI}}
    error = template_error(merged(base, bad), tmp_path, helm=_helm(which))
    assert message in error, error


# --- toggles --------------------------------------------------------------------------------------


def test_toggles(tmp_path: Path) -> None:
    base = {"operator": {"controllerUri": CONTROLLER_URI}}
    minimal = template(base, tmp_path)
    assert by_kind(minimal, "CustomResourceDefinition")
    assert not by_kind(minimal, "Secret"), "no credentials set, so no Secret"
    assert not by_kind(minimal, "ServiceMonitor")
    assert one(minimal, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 360

    toggled = template(
        merged(
            base,
            {
                "crds": {"install": False},
                "rbac": {"create": False},
                "serviceAccount": {"create": False, "name": "preexisting"},
                "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
                "terminationGracePeriodSeconds": 900,
            },
        ),
        tmp_path,
    )
    kinds = {m["kind"] for m in toggled}
    assert kinds == {"Deployment", "Service", "ServiceMonitor"}
    monitor = one(toggled, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    pod = one(toggled, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "preexisting"
    assert pod["terminationGracePeriodSeconds"] == 900


def test_helm3_and_helm4_render_the_same_manifests(tmp_path: Path) -> None:
    tools = toolchain()
    assert template(CENTRAL_VALUES, tmp_path, helm=tools.helm) == template(
        CENTRAL_VALUES, tmp_path, helm=tools.helm3
    )


def test_chart_version_matches_the_project() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((CHART.parents[1] / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"], "Chart.yaml appVersion must match pyproject's version"


def test_platform_namespace_is_passed_on_and_granted(tmp_path: Path) -> None:
    values = merged(EDGE_VALUES, {"operator": {"platformNamespace": "octo-platform"}})
    rendered = template(values, tmp_path)
    env = {
        e["name"]: e.get("value")
        for e in one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["OPERATOR__PLATFORMNAMESPACE"] == "octo-platform"
    assert sorted(r["metadata"]["namespace"] for r in by_kind(rendered, "Role")) == [
        "edge-pools",
        "octo-platform",
    ]


def test_force_conflicts_is_passed_on_only_when_asked(tmp_path: Path) -> None:
    def env_of(values: dict[str, Any]) -> dict[str, Any]:
        deployment = one(template(values, tmp_path), "Deployment")
        return {
            e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }

    assert "OPERATOR__HELM__FORCECONFLICTS" not in env_of(EDGE_VALUES)
    forced = env_of(merged(EDGE_VALUES, {"operator": {"helm": {"forceConflicts": True}}}))
    assert forced["OPERATOR__HELM__FORCECONFLICTS"] == "true"
