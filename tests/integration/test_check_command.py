"""``communication-operator check`` against the local cluster and the simulator."""

from __future__ import annotations

import io
from typing import Any

import pytest

from communication_operator import check
from communication_operator.settings import Settings
from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.cluster import KubeCluster

pytestmark = pytest.mark.cluster


def settings_for(url: str, cluster: KubeCluster, **extra: Any) -> Settings:
    return Settings.model_validate(
        {
            "OPERATOR__COMMUNICATIONCONTROLLERURI": url,
            "OPERATOR__POOLNAMESPACE": "default",
            "OPERATOR__HELM": {"binary": str(cluster.helm)},
            **extra,
        }
    )


async def test_everything_passes_with_a_reachable_controller_and_admin_rights(
    kube_cluster: KubeCluster, controller_sim: RunningSimulator, pool_crd: dict[str, Any]
) -> None:
    settings = settings_for(controller_sim.base_url, kube_cluster, OPERATOR__AUTOMANAGEPOOLS=True)
    results = await check.run_checks(settings, kube_cluster.kubeconfig)
    out = io.StringIO()
    check.render(results, out)
    assert all(r.ok for r in results), out.getvalue()
    names = [r.name for r in results]
    assert names[:4] == ["settings", "controller", "kubernetes API", "CRD"]
    assert "rbac: create communicationpools.octo-mesh.meshmakers.io" in names
    assert names[-1] == "helm"
    assert f"{len(results)} passed, 0 failed" in out.getvalue()


async def test_an_unreachable_controller_and_a_missing_helm_fail_with_reasons(
    kube_cluster: KubeCluster,
) -> None:
    settings = settings_for(
        "http://127.0.0.1:9", kube_cluster, OPERATOR__HELM={"binary": "/nonexistent/helm"}
    )
    results = {r.name: r for r in await check.run_checks(settings, kube_cluster.kubeconfig)}
    assert not results["controller"].ok
    assert "cannot reach the controller" in results["controller"].detail
    assert not results["helm"].ok
    assert "not found" in results["helm"].detail
    assert results["kubernetes API"].ok
    # Edge mode does not need to create pools.
    assert "rbac: create communicationpools.octo-mesh.meshmakers.io" not in results


def test_settings_errors_are_reported_in_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPERATOR__POOLREGISTRATIONRETRYSECONDS", "soon")
    out = io.StringIO()
    assert check.main(out) == 1
    assert "FAIL  settings  OPERATOR__POOLREGISTRATIONRETRYSECONDS" in out.getvalue()


async def test_both_pool_kinds_are_checked(
    kube_cluster: KubeCluster, controller_sim: RunningSimulator, pool_crd: dict[str, Any]
) -> None:
    settings = settings_for(controller_sim.base_url, kube_cluster, OPERATOR__AUTOMANAGEPOOLS=True)
    results = await check.run_checks(settings, kube_cluster.kubeconfig)
    assert [(r.detail, r.ok) for r in results if r.name == "CRD"] == [
        ("communicationpools.octo-mesh.meshmakers.io (v1alpha1)", True),
        ("deploymentsites.octo-mesh.meshmakers.io (v1)", True),
    ]
    names = {r.name for r in results}
    assert "rbac: watch deploymentsites.octo-mesh.meshmakers.io" in names
    assert "rbac: patch deploymentsites/status.octo-mesh.meshmakers.io" in names
    assert "rbac: create deploymentsites.octo-mesh.meshmakers.io" in names
