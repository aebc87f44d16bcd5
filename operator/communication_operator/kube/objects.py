"""The handful of API operations the pool services need, with 404/409 folded into booleans.

Every call carries a request timeout (kubernetes-asyncio has none by default). Custom-object patches
send ``application/merge-patch+json`` explicitly: with a dict body kubernetes-asyncio would pick
json-patch, which the API server rejects.
"""

from __future__ import annotations

import logging
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from communication_operator.kube.client import DEFAULT_REQUEST_TIMEOUT

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
REPORTING_COMPONENT = "communication-operator"
_MAX_EVENT_MESSAGE = 1024


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class SecretMetadata:
    uid: str
    labels: dict[str, str]


@dataclass(frozen=True)
class ObjectRef:
    """Enough of an object to post an Event about it."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str = ""


class KubeObjects:
    """Custom objects, secrets and events through one shared ``ApiClient``."""

    def __init__(self, api: client.ApiClient, request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._timeout = request_timeout
        self._instance = socket.gethostname()

    # -- custom objects ------------------------------------------------------------------------------

    async def get_custom(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> Any | None:
        try:
            return await self._custom.get_namespaced_custom_object(
                group, version, namespace, plural, name, _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def list_custom(
        self, group: str, version: str, plural: str, namespace: str
    ) -> list[dict[str, Any]]:
        listing = await self._custom.list_namespaced_custom_object(
            group, version, namespace, plural, _request_timeout=self._timeout
        )
        return list(listing.get("items") or [])

    async def create_custom(
        self, group: str, version: str, plural: str, namespace: str, body: dict[str, Any]
    ) -> bool:
        """True if created, False if an object of that name already exists."""
        try:
            await self._custom.create_namespaced_custom_object(
                group, version, namespace, plural, body, _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def delete_custom(self, group: str, version: str, plural: str, namespace: str, name: str) -> bool:
        """True if a delete was issued, False if the object was already gone."""
        try:
            await self._custom.delete_namespaced_custom_object(
                group, version, namespace, plural, name, _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def patch_custom_status(
        self, group: str, version: str, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> bool:
        """Merge-patch ``status`` through the status subresource; False if the object is gone."""
        try:
            await self._custom.patch_namespaced_custom_object_status(
                group,
                version,
                namespace,
                plural,
                name,
                {"status": status},
                _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # supported, missing from the stubs
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- secrets -------------------------------------------------------------------------------------

    async def secret_exists(self, namespace: str, name: str) -> bool:
        try:
            await self._core.read_namespaced_secret(name, namespace, _request_timeout=self._timeout)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def create_secret(self, namespace: str, body: dict[str, Any]) -> bool:
        """True if created, False if a secret of that name already exists (it is left as it is)."""
        raw: Any = body  # plain dicts are sent as they are; the stubs only know the model classes
        try:
            await self._core.create_namespaced_secret(namespace, raw, _request_timeout=self._timeout)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def secret_metadata(self, namespace: str, name: str) -> SecretMetadata | None:
        """The Secret's uid and labels (never its data), or None if there is none of that name."""
        try:
            secret = await self._core.read_namespaced_secret(name, namespace, _request_timeout=self._timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return SecretMetadata(uid=secret.metadata.uid or "", labels=dict(secret.metadata.labels or {}))

    async def delete_secret(self, namespace: str, name: str, uid: str | None = None) -> bool:
        """True if deleted; False if gone or, with ``uid``, replaced by another object meanwhile."""
        options: Any = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)) if uid else None
        try:
            await self._core.delete_namespaced_secret(
                name, namespace, body=options, _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status == 404 or (uid and exc.status == 409):
                return False
            raise
        return True

    # -- events --------------------------------------------------------------------------------------

    async def post_event(self, ref: ObjectRef, event_type: EventType, reason: str, message: str) -> None:
        """A core/v1 Event about ``ref`` (works on every API server version we support)."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body: Any = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{ref.name}.{secrets.token_hex(8)}", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": ref.api_version,
                "kind": ref.kind,
                "name": ref.name,
                "namespace": ref.namespace,
                **({"uid": ref.uid} if ref.uid else {}),
            },
            "type": str(event_type),
            "reason": reason,
            "message": message[:_MAX_EVENT_MESSAGE],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": REPORTING_COMPONENT},
            "reportingComponent": REPORTING_COMPONENT,
            "reportingInstance": self._instance,
        }
        await self._core.create_namespaced_event(ref.namespace, body, _request_timeout=self._timeout)
