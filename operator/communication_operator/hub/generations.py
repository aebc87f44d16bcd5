"""Invocations and pushes in the generation the controller speaks (contracts/profiles.py)."""

from __future__ import annotations

from typing import Any, Protocol

from communication_operator.contracts.profiles import (
    Contract,
    ContractSelector,
    from_wire,
    is_cp_only_fallback,
    is_ds_only_fallback,
    to_wire,
)
from communication_operator.hub.errors import HubError


class RawInvoker(Protocol):
    async def invoke(self, method: str, arguments: list[Any], timeout: float) -> Any: ...


async def invoke_in_contract(
    selector: ContractSelector, session: RawInvoker, method: str, arguments: list[Any], timeout: float
) -> Any:
    """``method`` (a CP name, JSON ``arguments``) as the connection's generation spells it; the result
    comes back in CP names. In ``auto``, "Method does not exist" for a renamed method switches the
    generation and sends the call once more under the other name."""
    contract = selector.speaking
    name, wire_arguments = to_wire(contract, method, arguments)
    try:
        result = await session.invoke(name, wire_arguments, timeout)
    except HubError as exc:
        if selector.setting != "auto":
            raise
        if contract is Contract.POOLS and is_ds_only_fallback(method, exc.error):
            selector.decide(Contract.DEPLOYMENT_SITES, f"{method}: Method does not exist")
        elif contract is Contract.DEPLOYMENT_SITES and is_cp_only_fallback(name, exc.error):
            selector.decide(Contract.POOLS, f"{name}: Method does not exist")
        else:
            raise
        name, wire_arguments = to_wire(selector.speaking, method, arguments)
        result = await session.invoke(name, wire_arguments, timeout)
    else:
        if contract is Contract.POOLS and method in ("RegisterPoolAsync", "UnregisterPoolAsync"):
            selector.decide(Contract.POOLS, f"{method} exists")
    _, result, ds_spelled = from_wire(method, result)
    if ds_spelled:
        selector.decide(Contract.DEPLOYMENT_SITES, f"{method} answered with DeploymentSite fields")
    return result


def push_in_cp_names(selector: ContractSelector, target: str, arguments: Any) -> tuple[str, Any]:
    """A push of either generation, in CP names; a DS-spelled one decides the generation (``auto``)."""
    cp_target, cp_arguments, ds_spelled = from_wire(target, arguments)
    if ds_spelled:
        selector.decide(
            Contract.DEPLOYMENT_SITES, f"the controller pushed {target} with DeploymentSite names"
        )
    return cp_target, cp_arguments
