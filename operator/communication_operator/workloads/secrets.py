"""The per-release Secret ``{release}-octo-secrets`` (octo-spec §4.7).

It holds the plaintext of every secret-flagged override and injected secret of one workload, one data
key per dotted path (:attr:`RenderedValues.secret_data`); the values files only reference it. On every
deploy it is replaced as a whole when there is secret data and deleted when there is none, so a secret
removed from the workload disappears from the cluster too. Undeploy deletes it.

The Secret is not versioned with the release: when an upgrade fails and helm rolls back, the deploy
puts back what :meth:`ReleaseSecrets.read` saw before it changed the Secret (:meth:`restore`), so
the rolled-back pods find the keys they were started with (see docs/workloads.md).

Values never reach a log line: only names and key counts are logged.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from communication_operator.kube.client import DEFAULT_REQUEST_TIMEOUT
from communication_operator.workloads.errors import DeployFailed
from communication_operator.workloads.naming import ANNOTATION_WORKLOAD_NAME

log = logging.getLogger(__name__)

#: Failures of the request itself (connection refused or dropped, request timeout), not the API's answer.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (aiohttp.ClientError, TimeoutError, OSError)
_REQUEST_ERRORS: tuple[type[Exception], ...] = (ApiException, *TRANSPORT_ERRORS)


class SecretStore(Protocol):
    """What the workload service needs for per-release Secrets (a fake in unit tests)."""

    async def apply(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        labels: Mapping[str, str],
        workload_name: str,
    ) -> None: ...

    async def delete(self, namespace: str, name: str) -> bool: ...

    async def read(self, namespace: str, name: str) -> SecretSnapshot | None: ...

    async def restore(self, namespace: str, name: str, snapshot: SecretSnapshot | None) -> None: ...


@dataclass(frozen=True)
class SecretSnapshot:
    """A per-release Secret as it was (``data`` base64-encoded as stored; never shown in a repr)."""

    data: Mapping[str, str] = field(repr=False)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


class ReleaseSecrets:
    """Per-release Secrets through kubernetes-asyncio."""

    def __init__(self, api: client.ApiClient, request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
        # Any: the generated stubs want V1Secret models; a plain dict body is what we send.
        self._core: Any = client.CoreV1Api(api)
        self._timeout = request_timeout

    async def apply(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        labels: Mapping[str, str],
        workload_name: str,
    ) -> None:
        """Create the Secret, or replace it whole (keys no longer present go away)."""
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(labels),
                "annotations": {ANNOTATION_WORKLOAD_NAME: workload_name},
            },
            "data": {key: base64.b64encode(value.encode()).decode("ascii") for key, value in data.items()},
        }
        try:
            await self._core.create_namespaced_secret(namespace, body, _request_timeout=self._timeout)
            log.info("created Secret %s/%s with %d key(s)", namespace, name, len(data))
            return
        except ApiException as exc:
            if exc.status != 409:
                raise SecretError(namespace, name, "create", exc) from None
        except TRANSPORT_ERRORS as exc:
            raise SecretError(namespace, name, "create", exc) from None
        try:
            # PUT without a resourceVersion: last writer wins, which is right for an object only we own.
            await self._core.replace_namespaced_secret(name, namespace, body, _request_timeout=self._timeout)
        except _REQUEST_ERRORS as exc:
            raise SecretError(namespace, name, "replace", exc) from None
        log.info("replaced Secret %s/%s with %d key(s)", namespace, name, len(data))

    async def delete(self, namespace: str, name: str) -> bool:
        """Delete the Secret; False when it did not exist."""
        try:
            await self._core.delete_namespaced_secret(name, namespace, _request_timeout=self._timeout)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise SecretError(namespace, name, "delete", exc) from None
        except TRANSPORT_ERRORS as exc:
            raise SecretError(namespace, name, "delete", exc) from None
        log.info("deleted Secret %s/%s", namespace, name)
        return True

    async def read(self, namespace: str, name: str) -> SecretSnapshot | None:
        """The Secret's current content, None when it does not exist."""
        try:
            response = await self._core.read_namespaced_secret(
                name, namespace, _preload_content=False, _request_timeout=self._timeout
            )
            body = await response.json()
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise SecretError(namespace, name, "read", exc) from None
        except TRANSPORT_ERRORS as exc:
            raise SecretError(namespace, name, "read", exc) from None
        metadata = body.get("metadata") or {}
        return SecretSnapshot(
            data=dict(body.get("data") or {}),
            labels=dict(metadata.get("labels") or {}),
            annotations=dict(metadata.get("annotations") or {}),
        )

    async def restore(self, namespace: str, name: str, snapshot: SecretSnapshot | None) -> None:
        """Put the Secret back as ``snapshot`` saw it: deleted when it did not exist."""
        if snapshot is None:
            await self.delete(namespace, name)
            return
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(snapshot.labels),
                "annotations": dict(snapshot.annotations),
            },
            "data": dict(snapshot.data),
        }
        try:
            await self._core.replace_namespaced_secret(name, namespace, body, _request_timeout=self._timeout)
        except ApiException as exc:
            if exc.status != 404:
                raise SecretError(namespace, name, "restore", exc) from None
            try:
                await self._core.create_namespaced_secret(namespace, body, _request_timeout=self._timeout)
            except _REQUEST_ERRORS as exc2:
                raise SecretError(namespace, name, "restore", exc2) from None
        except TRANSPORT_ERRORS as exc:
            raise SecretError(namespace, name, "restore", exc) from None
        log.info("restored Secret %s/%s to its content before the failed upgrade", namespace, name)


class SecretError(DeployFailed):
    """A per-release Secret operation failed (refused, or the API server unreachable); names the Secret."""

    def __init__(self, namespace: str, name: str, operation: str, exc: Exception) -> None:
        # The API's reason only (never the body, which could echo the data we sent).
        if isinstance(exc, ApiException):
            cause = f"HTTP {exc.status} {exc.reason}"
            self.status: int | None = exc.status
        else:
            cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.status = None
        super().__init__(f"could not {operation} Secret {namespace}/{name}: {cause}")


async def restore_after_failure(
    restore: Callable[[], Awaitable[None]], on_error: Callable[[Exception], None]
) -> None:
    """Put the Secret back after a failed or stopped upgrade, never raising (review finding 11).

    Runs inside the ``except`` that re-raises the deploy's own outcome (a cancellation, helm's
    failure): an error here must not replace it, or a cancelled deploy would report a failure.
    """
    try:
        await restore()
    except Exception as exc:
        on_error(exc)
