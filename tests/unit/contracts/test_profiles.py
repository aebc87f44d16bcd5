"""The DeploymentSite-era naming profile over the pool-era contract (profiles.py, hub/generations.py)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from communication_operator.contracts.profiles import Contract, ContractSelector, from_wire, to_wire
from communication_operator.hub.errors import HubError
from communication_operator.hub.generations import invoke_in_contract, push_in_cp_names

RT = "65f0c0ffee0000000000aaaa"
UNKNOWN = "Failed to invoke '{}' due to an error on the server. HubException: Method does not exist."


def test_outgoing_calls_are_respelled_for_a_deployment_site_controller() -> None:
    assert to_wire(Contract.DEPLOYMENT_SITES, "RegisterPoolAsync", ["acme", RT]) == (
        "RegisterDeploymentSiteAsync",
        ["acme", RT],
    )
    report = [{"tenantId": "acme", "poolRtId": RT, "poolName": "", "workloadRtIds": []}]
    assert to_wire(Contract.DEPLOYMENT_SITES, "ReportDeployedStateAsync", [report]) == (
        "ReportDeployedStateAsync",
        [[{"tenantId": "acme", "deploymentSiteRtId": RT, "deploymentSiteName": "", "workloadRtIds": []}]],
    )
    status = {"tenantId": "acme", "poolName": "", "workloadRtId": RT, "success": True}
    assert to_wire(Contract.DEPLOYMENT_SITES, "ReportWorkloadDeploymentStatusAsync", [status])[1] == [status]
    assert to_wire(Contract.POOLS, "RegisterPoolAsync", ["acme", RT]) == ("RegisterPoolAsync", ["acme", RT])


def test_pushes_of_either_generation_arrive_in_pool_names() -> None:
    ds = from_wire("DeploymentSiteDeployedAsync", [{"tenantId": "acme", "deploymentSiteRtId": RT}])
    assert ds == ("PoolDeployedAsync", [{"tenantId": "acme", "poolRtId": RT}], True)
    workload = from_wire("WorkloadDeployedAsync", [{"deploymentSiteRtId": RT, "workloadRtId": RT}])
    assert workload == ("WorkloadDeployedAsync", [{"poolRtId": RT, "workloadRtId": RT}], True)
    cp = from_wire("PoolUndeployedAsync", ["acme", RT])
    assert cp == ("PoolUndeployedAsync", ["acme", RT], False)


class FakeController:
    """Answers like an ASP.NET Core hub of one generation (names only)."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.calls: list[str] = []

    async def invoke(self, method: str, arguments: list[Any], timeout: float) -> Any:
        self.calls.append(method)
        pool_era = self.contract is Contract.POOLS
        unknown = {"RegisterDeploymentSiteAsync"} if pool_era else {"RegisterPoolAsync"}
        if method in unknown:
            raise HubError(method, UNKNOWN.format(method))
        if method == "RegisterOperatorAsync":
            return [{"tenantId": "acme", ("poolRtId" if pool_era else "deploymentSiteRtId"): RT}]
        return None


async def test_auto_detects_a_deployment_site_controller_by_method_does_not_exist(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    selector = ContractSelector("auto")
    controller = FakeController(Contract.DEPLOYMENT_SITES)

    await invoke_in_contract(selector, controller, "RegisterPoolAsync", ["acme", RT], 5)
    await invoke_in_contract(selector, controller, "RegisterPoolAsync", ["acme", RT], 5)

    assert controller.calls == [
        "RegisterPoolAsync",
        "RegisterDeploymentSiteAsync",
        "RegisterDeploymentSiteAsync",
    ]
    assert selector.current is Contract.DEPLOYMENT_SITES
    detected = [r.getMessage() for r in caplog.records if "contract" in r.getMessage()]
    assert detected == [
        "the controller speaks the DeploymentSite contract (RegisterPoolAsync: Method does not exist)"
    ]


async def test_auto_learns_the_generation_from_a_result_and_forgets_it_on_a_new_connection() -> None:
    selector = ContractSelector("auto")
    controller = FakeController(Contract.DEPLOYMENT_SITES)

    result = await invoke_in_contract(selector, controller, "RegisterOperatorAsync", [False], 5)

    assert result == [{"tenantId": "acme", "poolRtId": RT}]
    assert selector.current is Contract.DEPLOYMENT_SITES
    selector.connection_opened()
    assert selector.current is None
    pool_era = FakeController(Contract.POOLS)
    await invoke_in_contract(selector, pool_era, "RegisterPoolAsync", ["acme", RT], 5)
    assert pool_era.calls == ["RegisterPoolAsync"]
    assert selector.current is Contract.POOLS


async def test_a_controller_downgraded_under_a_decided_connection_is_followed() -> None:
    selector = ContractSelector("auto")
    selector.decide(Contract.DEPLOYMENT_SITES, "test")
    controller = FakeController(Contract.POOLS)

    await invoke_in_contract(selector, controller, "RegisterPoolAsync", ["acme", RT], 5)

    assert controller.calls == ["RegisterDeploymentSiteAsync", "RegisterPoolAsync"]
    assert selector.current is Contract.POOLS


async def test_a_fixed_contract_never_switches() -> None:
    selector = ContractSelector("pools")
    with pytest.raises(HubError, match="Method does not exist"):
        await invoke_in_contract(
            selector, FakeController(Contract.DEPLOYMENT_SITES), "RegisterPoolAsync", ["a", RT], 5
        )
    assert selector.current is Contract.POOLS
    assert push_in_cp_names(selector, "DeploymentSiteUndeployedAsync", ["a", RT]) == (
        "PoolUndeployedAsync",
        ["a", RT],
    )
    assert selector.current is Contract.POOLS


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="auto, pools, deploymentsites"):
        ContractSelector("sites")
