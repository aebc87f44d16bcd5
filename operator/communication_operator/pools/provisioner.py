"""Central mode: the controller's ``PoolDeployedAsync``/``PoolUndeployedAsync`` become objects here.

For a deployed pool the operator creates the broker connection secret ``{name}-octo-mesh-connection``
and then the CommunicationPool ``{name}`` (``name = DnsName(tenantId-poolRtId)``) in the pool namespace;
kopf then registers the pool like any other. Undeploy deletes the CommunicationPool first (its
finalizer unregisters the pool) and then the secret. Everything is idempotent: an existing object is
left as it is and a missing one is not an error.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

from communication_operator.contracts import DeployedPoolDto
from communication_operator.logs import log_context
from communication_operator.pools.model import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    POOL_RT_ID_PATTERN,
    VERSION,
    PoolKey,
)
from communication_operator.pools.naming import broker_secret_name, pool_labels, pool_resource_name

log = logging.getLogger(__name__)

BROKER_USERNAME_KEY = "brokerusername"
BROKER_PASSWORD_KEY = "brokerpassword"


class ProvisionerPort(Protocol):
    """The Kubernetes calls the provisioner needs (:class:`communication_operator.kube.KubeObjects`)."""

    async def get_custom(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> Any | None: ...

    async def list_custom(
        self, group: str, version: str, plural: str, namespace: str
    ) -> list[dict[str, Any]]: ...

    async def create_custom(
        self, group: str, version: str, plural: str, namespace: str, body: dict[str, Any]
    ) -> bool: ...

    async def delete_custom(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> bool: ...

    async def create_secret(self, namespace: str, body: dict[str, Any]) -> bool: ...

    async def delete_secret(self, namespace: str, name: str) -> bool: ...


class PoolProvisioner:
    def __init__(
        self, kube: ProvisionerPort, *, namespace: str, broker_user: str | None, broker_password: str | None
    ) -> None:
        self._kube = kube
        self.namespace = namespace
        self._broker_user = broker_user or ""
        self._broker_password = broker_password or ""

    async def provisioned_pools(self) -> set[PoolKey]:
        """Pools that already have a (live) CommunicationPool in the pool namespace, whatever its name."""
        keys = set()
        for item in await self._kube.list_custom(GROUP, VERSION, PLURAL, self.namespace):
            if (item.get("metadata") or {}).get("deletionTimestamp"):
                continue
            spec = item.get("spec") or {}
            if spec.get("tenantId") and spec.get("poolRtId"):
                keys.add(PoolKey(str(spec["tenantId"]), str(spec["poolRtId"])))
        return keys

    async def pool_deployed(self, pool: DeployedPoolDto, *, provisioned: set[PoolKey] | None = None) -> bool:
        """Make sure the pool's secret and CommunicationPool exist; True if the latter was created now.

        A pool that some CommunicationPool in the pool namespace already names (for instance one an
        administrator created by hand under another name) gets no second one. ``provisioned`` is that
        set when the caller already listed it (the connect hook lists once for all pools).
        """
        key = PoolKey(pool.tenant_id, pool.pool_rt_id)
        if not pool.tenant_id or not re.match(POOL_RT_ID_PATTERN, pool.pool_rt_id):
            log.warning(
                "not provisioning pool %s: tenantId must be set and poolRtId be 24 lower-case hex digits", key
            )
            return False
        if provisioned is None:
            provisioned = await self.provisioned_pools()
        if key in provisioned:
            log.debug("pool %s already has a CommunicationPool in %s", key, self.namespace)
            return False
        name = pool_resource_name(key)
        existing = await self._kube.get_custom(GROUP, VERSION, PLURAL, self.namespace, name)
        if existing is not None:
            if (existing.get("metadata") or {}).get("deletionTimestamp"):
                log.warning(
                    "pool %s was deployed again while %s/%s is still being deleted; "
                    "it is created at the next reconnect",
                    key,
                    self.namespace,
                    name,
                )
            else:
                log.debug("pool %s is already provisioned as %s/%s", key, self.namespace, name)
            return False
        secret_created = await self._kube.create_secret(self.namespace, self._secret_body(key, name))
        created = await self._kube.create_custom(
            GROUP, VERSION, PLURAL, self.namespace, self._pool_body(key, name)
        )
        log.info(
            "provisioned pool %s as %s/%s (secret %s, resource %s)",
            key,
            self.namespace,
            name,
            "created" if secret_created else "existed",
            "created" if created else "existed",
            extra=self._context(key, name),
        )
        return created

    async def pool_undeployed(self, tenant_id: str, pool_rt_id: str) -> bool:
        """Delete the pool's CommunicationPool, then its secret; True if anything was deleted."""
        key = PoolKey(tenant_id, pool_rt_id)
        try:
            name = pool_resource_name(key)
        except ValueError:
            log.warning("ignoring undeploy of pool %s: no usable resource name", key)
            return False
        pool_deleted = await self._kube.delete_custom(GROUP, VERSION, PLURAL, self.namespace, name)
        secret_deleted = await self._kube.delete_secret(self.namespace, broker_secret_name(name))
        log.info(
            "unprovisioned pool %s (%s/%s: resource %s, secret %s)",
            key,
            self.namespace,
            name,
            "deleted" if pool_deleted else "absent",
            "deleted" if secret_deleted else "absent",
            extra=self._context(key, name),
        )
        return pool_deleted or secret_deleted

    def _context(self, key: PoolKey, name: str) -> dict[str, str]:
        return log_context(tenant=key.tenant_id, pool=key.pool_rt_id, namespace=self.namespace, name=name)

    def _pool_body(self, key: PoolKey, name: str) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "namespace": self.namespace, "labels": pool_labels(key)},
            "spec": {"tenantId": key.tenant_id, "poolRtId": key.pool_rt_id},
        }

    def _secret_body(self, key: PoolKey, name: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": broker_secret_name(name),
                "namespace": self.namespace,
                "labels": pool_labels(key),
            },
            "stringData": {
                BROKER_USERNAME_KEY: self._broker_user,
                BROKER_PASSWORD_KEY: self._broker_password,
            },
        }
