"""Two controller generations, one operator: the pool-era (CP) and DeploymentSite-era (DS) wire names.

The DS controller renamed the pool methods, callbacks and DTO fields (octo-spec §0.3,
upstream-delta §2) and kept everything else. The operator's logic speaks the CP names; this module
translates at the wire boundary, so nothing of the pool or workload code exists twice:

* :func:`to_wire` renames an outgoing invocation (method and the JSON of its arguments);
* :func:`from_wire` renames an incoming push or result back to CP names. Both generations' pushes are
  understood at once, whatever generation the connection speaks.

:class:`ContractSelector` holds the generation of the current connection. ``OPERATOR__CONTRACT``:
``pools`` or ``deploymentsites`` fix it; ``auto`` (the default) starts every connection undecided,
speaking CP names, and decides on the first sign: a DS callback or DTO field from the controller, or
``HubException: Method does not exist`` for a CP-only method (then the call is sent again with the DS
name; both answers have no side effects on the controller). A controller upgraded under us is
detected again after the reconnect.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from communication_operator.settings import CONTRACT_SETTINGS

log = logging.getLogger(__name__)

METHOD_DOES_NOT_EXIST = "Method does not exist"


class Contract(StrEnum):
    POOLS = "pools"
    DEPLOYMENT_SITES = "deploymentsites"


# CP name → DS name, for methods whose names differ.
DS_SERVER_METHODS = {
    "RegisterPoolAsync": "RegisterDeploymentSiteAsync",
    "UnregisterPoolAsync": "UnregisterDeploymentSiteAsync",
}
DS_CLIENT_METHODS = {
    "PoolDeployedAsync": "DeploymentSiteDeployedAsync",
    "PoolUndeployedAsync": "DeploymentSiteUndeployedAsync",
}
# CP field → DS field in every DTO; ``poolName`` only in the deployed-state report.
DS_FIELDS = {"poolRtId": "deploymentSiteRtId"}
DS_REPORT_FIELDS = {**DS_FIELDS, "poolName": "deploymentSiteName"}
REPORT_DEPLOYED_STATE = "ReportDeployedStateAsync"

_CP_CLIENT_BY_DS = {ds.casefold(): cp for cp, ds in DS_CLIENT_METHODS.items()}
_CP_SERVER_BY_DS = {ds.casefold(): cp for cp, ds in DS_SERVER_METHODS.items()}
_CP_FIELD_BY_DS = {ds.casefold(): cp for cp, ds in DS_REPORT_FIELDS.items()}

CONTRACT_DETECTED = "the controller speaks the {name} contract ({reason})"
CONTRACT_NAMES = {Contract.POOLS: "CommunicationPool", Contract.DEPLOYMENT_SITES: "DeploymentSite"}


def to_wire(contract: Contract, method: str, arguments: list[Any]) -> tuple[str, list[Any]]:
    """An invocation in CP names as the ``contract`` generation spells it."""
    if contract is Contract.POOLS:
        return method, arguments
    fields = DS_REPORT_FIELDS if method == REPORT_DEPLOYED_STATE else DS_FIELDS
    return DS_SERVER_METHODS.get(method, method), [_rename(a, fields) for a in arguments]


def from_wire(target: str, arguments: Any) -> tuple[str, Any, bool]:
    """A push (or a result, with ``target`` its method) in CP names; the flag says it was DS-spelled."""
    cp_target = _CP_CLIENT_BY_DS.get(target.casefold()) or _CP_SERVER_BY_DS.get(target.casefold())
    renamed = _rename_back(arguments)
    return cp_target or target, renamed, cp_target is not None or renamed != arguments


def is_ds_only_fallback(method: str, error: str) -> bool:
    """True when the controller does not know a CP-only method: it speaks the DS contract."""
    return method in DS_SERVER_METHODS and METHOD_DOES_NOT_EXIST in error


def is_cp_only_fallback(method: str, error: str) -> bool:
    """True when a DS name is unknown: the controller (downgraded or misdetected) speaks CP."""
    return method in DS_SERVER_METHODS.values() and METHOD_DOES_NOT_EXIST in error


def ds_spelling(value: Any) -> Any:
    """JSON in CP field names, respelled for a DS peer (a result, or a push's arguments)."""
    return _rename(value, DS_FIELDS)


def _rename(value: Any, fields: dict[str, str]) -> Any:
    if isinstance(value, list):
        return [_rename(v, fields) for v in value]
    if isinstance(value, dict):
        return {fields.get(k, k) if isinstance(k, str) else k: v for k, v in value.items()}
    return value


def _rename_back(value: Any) -> Any:
    if isinstance(value, list):
        return [_rename_back(v) for v in value]
    if isinstance(value, dict):
        return {
            (_CP_FIELD_BY_DS.get(k.casefold(), k) if isinstance(k, str) else k): v for k, v in value.items()
        }
    return value


class ContractSelector:
    """The generation the current connection speaks (``None`` while undecided in ``auto``)."""

    def __init__(self, setting: str = "pools") -> None:
        if setting not in CONTRACT_SETTINGS:
            raise ValueError(f"contract must be one of {', '.join(CONTRACT_SETTINGS)}, got {setting!r}")
        self.setting = setting
        self.current: Contract | None = None if setting == "auto" else Contract(setting)
        self._logged: Contract | None = None

    @property
    def speaking(self) -> Contract:
        """The names to send now (CP while undecided)."""
        return self.current or Contract.POOLS

    def connection_opened(self) -> None:
        """Forget what the previous connection spoke (the controller may have been upgraded)."""
        if self.setting == "auto":
            self.current = None

    def decide(self, contract: Contract, reason: str) -> None:
        """Remember ``contract`` for this connection (``auto`` only); logged when it changes."""
        if self.setting != "auto" or self.current is contract:
            return
        self.current = contract
        text = CONTRACT_DETECTED.format(name=CONTRACT_NAMES[contract], reason=reason)
        if self._logged is not contract:
            log.info("%s", text)
            self._logged = contract
        else:
            log.debug("%s", text)
