"""Pools: the CommunicationPool resource, its registration with the controller, and central-mode provisioning.

Plain async services, usable without kopf: :class:`PoolRegistry` (owned pools and where each one's
registration stands), :class:`PoolRegistrationService` (register/unregister, connect hook, retry loop,
tenant updates),
:class:`PoolProvisioner` (central mode: objects for deployed pools) and :class:`PoolStatusWriter`
(status and Events on the objects). They are built and bound to the hub in
:mod:`communication_operator.runtime.pools`.
"""

from communication_operator.pools.model import (
    API_VERSION,
    FINALIZER,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    CommunicationPoolSpec,
    PoolKey,
    PoolRef,
)
from communication_operator.pools.provisioner import PoolProvisioner
from communication_operator.pools.registration import HubPort, PoolRegistrationService, UnregisterResult
from communication_operator.pools.registry import PoolEntry, PoolRegistry, PoolState
from communication_operator.pools.reports import DeployedWorkloadsSource, NoDeployedWorkloads
from communication_operator.pools.status import (
    IN_PROGRESS_DELAY,
    PoolStatusWriter,
    Reason,
    RegistrationOutcome,
    RegistrationState,
)

__all__ = [
    "API_VERSION",
    "FINALIZER",
    "GROUP",
    "IN_PROGRESS_DELAY",
    "KIND",
    "PLURAL",
    "VERSION",
    "CommunicationPoolSpec",
    "DeployedWorkloadsSource",
    "HubPort",
    "NoDeployedWorkloads",
    "PoolEntry",
    "PoolKey",
    "PoolProvisioner",
    "PoolRef",
    "PoolRegistrationService",
    "PoolRegistry",
    "PoolState",
    "PoolStatusWriter",
    "Reason",
    "RegistrationOutcome",
    "RegistrationState",
    "UnregisterResult",
]
