"""The simulator as a pool-era (CP) or DeploymentSite-era (DS) controller (``--contract``).

The state speaks CP names; in DS mode the hub respells at the wire with the product's own mapping
(``communication_operator.contracts.profiles``): DS method names in, DS callbacks and fields out, and
the CP-only methods (``RegisterPoolAsync``, ``UnregisterPoolAsync``) do not exist, as on the real DS
controller, which kept no aliases.
"""

from __future__ import annotations

from typing import Any

from communication_operator.contracts.profiles import (
    DS_CLIENT_METHODS,
    DS_SERVER_METHODS,
    Contract,
    ds_spelling,
    from_wire,
)

_CP_ONLY = {name.casefold() for name in DS_SERVER_METHODS}
_DS_ONLY = {name.casefold() for name in DS_SERVER_METHODS.values()}


class SimulatedGeneration:
    def __init__(self, contract: Contract | str = Contract.POOLS) -> None:
        self.contract = Contract(contract)

    @property
    def ds(self) -> bool:
        return self.contract is Contract.DEPLOYMENT_SITES

    def serves(self, target: str) -> bool:
        """Whether this generation has a hub method of that (wire) name."""
        return target.casefold() not in (_CP_ONLY if self.ds else _DS_ONLY)

    def incoming(self, target: str, arguments: list[Any]) -> tuple[str, list[Any]]:
        if not self.ds:
            return target, arguments
        cp_target, cp_arguments, _ = from_wire(target, arguments)
        return cp_target, list(cp_arguments)

    def result(self, result: Any) -> Any:
        return ds_spelling(result) if self.ds else result

    def push(self, target: str, arguments: list[Any]) -> tuple[str, list[Any]]:
        if not self.ds:
            return target, arguments
        return DS_CLIENT_METHODS.get(target, target), list(ds_spelling(arguments))
