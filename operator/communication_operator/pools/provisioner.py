"""Central mode: the controller's ``PoolDeployedAsync``/``PoolUndeployedAsync`` become objects here.

For a deployed pool the operator creates the broker connection secret ``{name}-octo-mesh-connection``
and then the pool resource ``{name}`` of the kind the controller's generation expects (``kind_for``:
a ``CommunicationPool`` for a pool-era controller, a ``DeploymentSite`` for a DeploymentSite-era one,
:mod:`~communication_operator.pools.kinds`) (``name`` from :func:`~communication_operator.names.pool_cr_name`:
upstream's ``DnsName(tenantId-poolRtId)`` when it fits, else hashed so pools never share a name) in the
pool namespace; kopf then registers the pool like any other. Undeploy deletes the CommunicationPool
first (its finalizer unregisters the pool) and then the secret. Everything is idempotent: an existing
object is left as it is and a missing one is not an error. Objects without our managed-by label were
not made by an operator and are never deleted or overwritten.

Both kinds count when looking for a pool's existing resource, and an undeploy removes the managed
resources of either kind: a pool provisioned before the controller was upgraded keeps its
CommunicationPool (the wire contract does not depend on the kind) and loses it when the DeploymentSite
controller undeploys the pool. Where the DeploymentSite CRD is not installed, a CommunicationPool is
created instead, with a warning: it registers the same way.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any, Protocol

from communication_operator.contracts import DeployedPoolDto
from communication_operator.kube.objects import EventType, ObjectRef, SecretMetadata
from communication_operator.logs import log_context
from communication_operator.names import NamingError, is_managed
from communication_operator.pools.kinds import COMMUNICATION_POOL, KINDS, PoolKind
from communication_operator.pools.model import FINALIZER, POOL_RT_ID_PATTERN, PoolKey
from communication_operator.pools.naming import broker_secret_name, pool_resource_name
from communication_operator.pools.status import object_ref

log = logging.getLogger(__name__)

#: Log formats (pool key, namespace, reason) and the Event posted on an object holding a pool's name.
NOT_PROVISIONED = "cannot create the %s for pool %s in %s: %s"
NAME_TAKEN = "cannot create the {kind} for pool {pool}: {namespace}/{name} already exists for pool {holder}"
#: A kind the API server does not serve us (kind, why, kind): logged once, then CommunicationPools serve.
KIND_UNAVAILABLE = (
    "%s resources are unavailable (%s), so central mode creates CommunicationPools instead; "
    "install the operator chart's CRDs and RBAC to have %s resources"
)
CRD_NOT_INSTALLED = "the CRD {crd} is not installed"
NOT_PERMITTED = "the operator may not use {plural}"
NAME_TAKEN_REASON = "PoolNameTaken"
UNMANAGED_LEFT_ALONE = "leaving %s %s/%s of pool %s alone: it has no managed-by label, so it is not ours"
PROVISION_RACED = "pool %s: %s/%s existed and was gone a moment later; it is created at the next reconnect"
UNMANAGED_KEPT = "pool %s: broker secret %s/%s exists without our managed-by label; it is used as it is"

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

    async def secret_metadata(self, namespace: str, name: str) -> SecretMetadata | None: ...

    async def delete_secret(self, namespace: str, name: str, uid: str | None = None) -> bool: ...

    async def post_event(self, ref: ObjectRef, event_type: EventType, reason: str, message: str) -> None: ...


class PoolProvisioner:
    def __init__(
        self,
        kube: ProvisionerPort,
        *,
        namespace: str,
        broker_user: str | None,
        broker_password: str | None,
        kind_for: Callable[[], PoolKind] = lambda: COMMUNICATION_POOL,
    ) -> None:
        self._kube = kube
        self.namespace = namespace
        # The kind to create now: the controller's generation decides (app.py wires the hub's).
        self._kind_for = kind_for
        self._unavailable_warned: set[str] = set()
        self._broker_user = broker_user or ""
        self._broker_password = broker_password or ""

    async def provisioned_pools(self) -> set[PoolKey]:
        """Pools that have a live resource (either kind) in the pool namespace, whatever its name."""
        keys = set()
        for kind in KINDS:
            for item in await self._list(kind):
                if (item.get("metadata") or {}).get("deletionTimestamp"):
                    continue
                key = kind.key_of(item.get("spec"))
                if key is not None:
                    keys.add(key)
        return keys

    async def _list(self, kind: PoolKind) -> list[dict[str, Any]]:
        """The kind's resources in the pool namespace; none when the kind is unavailable here."""
        try:
            return await self._kube.list_custom(*kind.resource, self.namespace)
        except Exception as exc:
            if not self._unavailable(kind, exc):
                raise
            return []

    def _unavailable(self, kind: PoolKind, exc: Exception) -> bool:
        """True (and a warning, once per kind) when ``exc`` says the API server does not serve us
        ``kind``: its CRD is not installed (404), or the operator's RBAC predates it (403). The
        CommunicationPool is never unavailable: without it there is nothing to fall back to."""
        status = getattr(exc, "status", None)
        if kind is COMMUNICATION_POOL or status not in (403, 404):
            return False
        why = (CRD_NOT_INSTALLED if status == 404 else NOT_PERMITTED).format(
            crd=kind.crd_name, plural=kind.plural
        )
        level = logging.DEBUG if kind.kind in self._unavailable_warned else logging.WARNING
        self._unavailable_warned.add(kind.kind)
        log.log(level, KIND_UNAVAILABLE, kind.kind, why, kind.kind)
        return True

    async def pool_deployed(self, pool: DeployedPoolDto, *, provisioned: set[PoolKey] | None = None) -> bool:
        """Make sure the pool's secret and CommunicationPool exist; True if the latter was created now.

        A pool that some CommunicationPool in the pool namespace already names (for instance one an
        administrator created by hand under another name) gets no second one. ``provisioned`` is that
        set when the caller already listed it (the connect hook lists once for all pools). A pool whose
        CommunicationPool cannot be created is logged as an error (and, when another object holds its
        name, posted as a Warning Event on that object); the next reconnect tries again.
        """
        key = PoolKey(pool.tenant_id, pool.pool_rt_id)
        if not pool.tenant_id or not re.match(POOL_RT_ID_PATTERN, pool.pool_rt_id):
            log.warning(
                "not provisioning pool %s: tenantId must be set and poolRtId be 24 lower-case hex digits", key
            )
            return False
        kind = self._kind_for()
        try:
            name = pool_resource_name(key)
        except NamingError as exc:
            log.error(NOT_PROVISIONED, kind.kind, key, self.namespace, exc, extra=self._context(key, ""))
            return False
        if provisioned is None:
            provisioned = await self.provisioned_pools()
        if key in provisioned:
            log.debug("pool %s already has a pool resource in %s", key, self.namespace)
            return False
        # Create first and look only when the name is taken: a burst of hundreds of pools saves a
        # round trip per pool, and the rare collision is undone below.
        secret_created = await self._kube.create_secret(self.namespace, self._secret_body(key, name, kind))
        if not secret_created:
            await self._check_existing_secret(key, name)
        try:
            kind, created = await self._create_resource(key, name, kind)
        except Exception as exc:
            reason = api_reason(exc)
            log.error(NOT_PROVISIONED, kind.kind, key, self.namespace, reason, extra=self._context(key, name))
            return False
        if not created:
            existing = await self._kube.get_custom(*kind.resource, self.namespace, name)
            if existing is None or _is_other(existing, key, kind):
                if secret_created:
                    # The name belongs to another object (or one being deleted): the secret made just
                    # now would be nobody's.
                    await self._delete_managed_secret(key, name)
                if existing is None:
                    log.warning(PROVISION_RACED, key, self.namespace, name, extra=self._context(key, name))
                    return False
                return await self._name_taken(key, name, existing, kind)
        log.info(
            "provisioned pool %s as %s %s/%s (secret %s, resource %s)",
            key,
            kind.kind,
            self.namespace,
            name,
            "created" if secret_created else "existed",
            "created" if created else "existed",
            extra=self._context(key, name),
        )
        return created

    async def _create_resource(self, key: PoolKey, name: str, kind: PoolKind) -> tuple[PoolKind, bool]:
        """Create the pool resource; an unavailable kind falls back to a CommunicationPool."""
        try:
            return kind, await self._kube.create_custom(
                *kind.resource, self.namespace, self._pool_body(key, name, kind)
            )
        except Exception as exc:
            if not self._unavailable(kind, exc):
                raise
        fallback = COMMUNICATION_POOL
        return fallback, await self._kube.create_custom(
            *fallback.resource, self.namespace, self._pool_body(key, name, fallback)
        )

    async def pool_undeployed(self, tenant_id: str, pool_rt_id: str) -> bool:
        """Delete the pool's resources (of either kind), then their secrets; True if anything was deleted.

        Only objects that carry our managed-by label are deleted; anything else of the same name (a
        Secret an administrator made, a hand-made CommunicationPool) is left alone and logged.
        Besides the name :func:`pool_resource_name` gives, every managed resource whose spec names the
        pool is removed (one created under upstream's truncated name, for instance).
        """
        key = PoolKey(tenant_id, pool_rt_id)
        try:
            computed = pool_resource_name(key)
        except NamingError as exc:
            log.warning("ignoring undeploy of pool %s: %s", key, exc)
            return False
        deleted = await self._unprovision(key, computed)
        for name in await self._other_pool_names(key, computed):
            deleted = await self._unprovision(key, name) or deleted
        return deleted

    async def _unprovision(self, key: PoolKey, name: str) -> bool:
        found: list[PoolKind] = []
        for kind in KINDS:
            try:
                existing = await self._kube.get_custom(*kind.resource, self.namespace, name)
            except Exception as exc:
                if not self._unavailable(kind, exc):
                    raise
                continue
            if existing is None:
                continue
            if not is_managed((existing.get("metadata") or {}).get("labels")):
                log.warning(UNMANAGED_LEFT_ALONE, kind.kind, self.namespace, name, key)
                return False
            found.append(kind)
        pool_deleted = False
        for kind in found:
            deleted = await self._kube.delete_custom(*kind.resource, self.namespace, name)
            pool_deleted = deleted or pool_deleted
        secret_deleted = await self._delete_managed_secret(key, name)
        log.info(
            "unprovisioned pool %s (%s/%s: resource %s, secret %s)",
            key,
            self.namespace,
            name,
            "deleted" if pool_deleted else "absent",
            "deleted" if secret_deleted else "absent or not ours",
            extra=self._context(key, name),
        )
        return pool_deleted or secret_deleted

    async def _other_pool_names(self, key: PoolKey, computed: str) -> list[str]:
        """Names of managed resources (either kind) of ``key`` other than ``computed`` (upstream's
        truncated one, say)."""
        names: list[str] = []
        for kind in KINDS:
            for item in await self._list(kind):
                name = (item.get("metadata") or {}).get("name")
                if (
                    name not in (None, computed, *names)
                    and kind.key_of(item.get("spec")) == key
                    and is_managed(item["metadata"].get("labels"))
                ):
                    names.append(str(name))
        return names

    async def _delete_managed_secret(self, key: PoolKey, pool_name: str) -> bool:
        secret_name = broker_secret_name(pool_name)
        found = await self._kube.secret_metadata(self.namespace, secret_name)
        if found is None:
            return False
        if not is_managed(found.labels):
            log.warning(UNMANAGED_LEFT_ALONE, "Secret", self.namespace, secret_name, key)
            return False
        # The uid precondition: a Secret someone put there since we looked is not deleted either.
        return await self._kube.delete_secret(self.namespace, secret_name, uid=found.uid or None)

    async def _check_existing_secret(self, key: PoolKey, name: str) -> None:
        secret_name = broker_secret_name(name)
        found = await self._kube.secret_metadata(self.namespace, secret_name)
        if found is not None and not is_managed(found.labels):
            log.warning(UNMANAGED_KEPT, key, self.namespace, secret_name)

    async def _name_taken(self, key: PoolKey, name: str, existing: Any, kind: PoolKind) -> bool:
        metadata = existing.get("metadata") or {}
        if metadata.get("deletionTimestamp"):
            log.warning(
                "pool %s was deployed again while %s/%s is still being deleted; "
                "it is created at the next reconnect",
                key,
                self.namespace,
                name,
            )
        elif kind.key_of(existing.get("spec")) not in (None, key):
            holder = kind.key_of(existing.get("spec"))
            message = NAME_TAKEN.format(
                kind=kind.kind, pool=key, namespace=self.namespace, name=name, holder=holder
            )
            log.error(message, extra=self._context(key, name))
            ref = kind.ref(self.namespace, name, str(metadata.get("uid") or ""))
            try:
                await self._kube.post_event(object_ref(ref), EventType.WARNING, NAME_TAKEN_REASON, message)
            except Exception as exc:
                log.warning("could not post event %s on %s: %s", NAME_TAKEN_REASON, ref, exc)
        else:
            log.debug("pool %s is already provisioned as %s/%s", key, self.namespace, name)
        return False

    def _context(self, key: PoolKey, name: str) -> dict[str, str]:
        return log_context(tenant=key.tenant_id, pool=key.pool_rt_id, namespace=self.namespace, name=name)

    def _pool_body(self, key: PoolKey, name: str, kind: PoolKind) -> dict[str, Any]:
        return {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": kind.labels(key),
                # kopf would add it with a patch of its own (and a second round of handling) before
                # registering the pool; created with it, the object is handled on its first event.
                "finalizers": [FINALIZER],
            },
            "spec": kind.spec_body(key),
        }

    def _secret_body(self, key: PoolKey, name: str, kind: PoolKind) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": broker_secret_name(name),
                "namespace": self.namespace,
                "labels": kind.labels(key),
            },
            "stringData": {
                BROKER_USERNAME_KEY: self._broker_user,
                BROKER_PASSWORD_KEY: self._broker_password,
            },
        }


def _is_other(existing: Any, key: PoolKey, kind: PoolKind) -> bool:
    """True if the object holding a pool's name is being deleted or names another pool."""
    metadata = existing.get("metadata") or {}
    return bool(metadata.get("deletionTimestamp")) or kind.key_of(existing.get("spec")) not in (None, key)


def api_reason(exc: Exception) -> str:
    """What the API server said (``HTTP 422: <message>``), else the exception text."""
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    if status is not None:
        message = ""
        if isinstance(body, (str, bytes)):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                message = str(parsed.get("message") or "")
        return f"HTTP {status}: {message or getattr(exc, 'reason', '') or 'error'}"
    return str(exc) or type(exc).__name__
