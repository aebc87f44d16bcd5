"""kopf handlers: thin adapters from CommunicationPool and DeploymentSite events to the pool services.

Both kinds get the same handlers (:mod:`communication_operator.pools.kinds`); kopf's ``resource``
tells them apart. Each resource handler validates the spec into :class:`CommunicationPoolSpec`, calls
one service method and returns nothing (kopf writes no handler results into ``status``; the services
own the status). Handlers are registered on a fresh :class:`kopf.OperatorRegistry` by
:func:`build_registry`, so tests can run several operators one after another in one process.

The services live in an :class:`~communication_operator.app.OperatorContext` under ``memo.context``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import kopf

from communication_operator.hub import NotConnected
from communication_operator.kube import kopf_session
from communication_operator.kube.objects import EventType
from communication_operator.pools import (
    FINALIZER,
    GROUP,
    PLURAL,
    VERSION,
    CommunicationPoolSpec,
    Reason,
)
from communication_operator.pools.kinds import KINDS, InvalidSpec, PoolKind, kind_of_plural

if TYPE_CHECKING:
    from communication_operator.app import OperatorContext

log = logging.getLogger(__name__)

POOLS = (GROUP, VERSION, PLURAL)
# kopf's own bookkeeping (progress, last-handled spec) goes into annotations with our prefix, never
# into status: the CRD's status schema is structural and would prune it.
ANNOTATION_PREFIX = "communication-operator.octo-mesh.meshmakers.io"
# How long a deleted CommunicationPool may wait for the controller to take the unregistration before
# the finalizer is released anyway (the controller then keeps the pool Offline, not Unregistered).
UNREGISTER_GIVE_UP_SECONDS = 300.0
UNREGISTER_RETRY_SECONDS = 10.0
WAIT_FOR_CONNECTION_SECONDS = 15.0
BACKGROUND_TASKS_DIED = "background task(s) died, restart needed: {problems}"


def context_of(memo: Any) -> OperatorContext:
    from communication_operator.app import OperatorContext

    context = getattr(memo, "context", None)
    if not isinstance(context, OperatorContext):
        raise kopf.PermanentError(
            "the operator context is missing from kopf's memo (started outside app.py?)"
        )
    return context


def configure_kopf(settings: kopf.OperatorSettings, *, in_process: bool = False) -> None:
    """kopf settings this operator needs; see docs/pools.md."""
    settings.peering.standalone = True  # one replica; no KopfPeering objects
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX, v1=False
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our services post the meaningful Events themselves
    settings.watching.connect_timeout = 10
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    settings.networking.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.execution.default_backoff = 30
    settings.queueing.exit_timeout = 5
    if in_process:
        # Stopped by a flag, never by a signal: no self-SIGKILL safety net inside a test process.
        settings.process.ultimate_exiting_timeout = None


def _kind(resource: Any) -> PoolKind:
    """The kind of the object a handler is called for (kopf passes its ``resource``)."""
    return kind_of_plural(str(getattr(resource, "plural", PLURAL)))


def _spec(spec: Any, kind: PoolKind) -> CommunicationPoolSpec:
    try:
        return kind.parse_spec(spec)
    except InvalidSpec as exc:
        raise kopf.PermanentError(str(exc)) from None


# -- activity handlers -------------------------------------------------------------------------------


async def startup(memo: Any, **_: Any) -> None:
    """Start the hub and the pool services (kopf settings were applied by :func:`configure_kopf`)."""
    await context_of(memo).start()


async def login(memo: Any, **_: Any) -> kopf.AiohttpSession:
    return await kopf_session(context_of(memo).kube.configuration)


async def cleanup(memo: Any, **_: Any) -> None:
    """After kopf stopped its watchers: drain queued reports, close the hub. Pools stay registered."""
    await context_of(memo).stop()


def probe_hub(memo: Any, **_: Any) -> dict[str, Any]:
    context = context_of(memo)
    return {
        "connected": context.hub.connected,
        "pools": len(context.registry),
        "outbox": context.hub.outbox_depth,
    }


def probe_background_tasks(memo: Any, **_: Any) -> dict[str, Any]:
    """Fails (HTTP 500 on /healthz) once a long-lived task died: the process would look alive while
    delivering nothing, so the kubelet should restart it. Registered with ``errors=PERMANENT``."""
    problems = context_of(memo).supervisor.problems()
    if problems:
        raise kopf.PermanentError(BACKGROUND_TASKS_DIED.format(problems="; ".join(problems)))
    return {"alive": True}


# -- resource handlers -------------------------------------------------------------------------------


async def register_pool(
    *,
    spec: Any,
    status: Any,
    meta: Any,
    name: str,
    namespace: str | None,
    uid: str,
    memo: Any,
    resource: Any = None,
    **_: Any,
) -> None:
    """create / resume / spec update: own the pool and register it (or leave it to the connect hook)."""
    kind = _kind(resource)
    pool = _spec(spec, kind)
    await context_of(memo).registration.ensure_registered(
        kind.ref(namespace or "", name, uid),
        pool,
        generation=meta.get("generation"),
        current_status=dict(status or {}),
    )


async def unregister_pool(
    *,
    spec: Any,
    name: str,
    namespace: str | None,
    uid: str,
    memo: Any,
    resource: Any = None,
    **_: Any,
) -> None:
    """delete (our finalizer holds the object until this succeeds): unregister the pool.

    A controller refusal is a soft failure (the tenant may be gone): logged and posted as an Event.
    While the controller is unreachable the handler waits a little, then retries via kopf, and after
    ``UNREGISTER_GIVE_UP_SECONDS`` releases the object anyway.
    """
    context = context_of(memo)
    kind = _kind(resource)
    ref = kind.ref(namespace or "", name, uid)
    try:
        pool = kind.parse_spec(spec)
    except InvalidSpec:
        log.warning("%s has no valid spec; nothing to unregister", ref)
        return
    try:
        result = await context.registration.release(ref, pool)
    except NotConnected:
        try:
            await context.hub.wait_connected(WAIT_FOR_CONNECTION_SECONDS)
            result = await context.registration.release(ref, pool)
        except (TimeoutError, NotConnected):
            raise kopf.TemporaryError(
                "waiting for the Communication Controller to unregister the pool",
                delay=UNREGISTER_RETRY_SECONDS,
            ) from None
    if result.unregistered:
        await context.status.post_event(ref, EventType.NORMAL, Reason.UNREGISTERED, result.message)
    else:
        await context.status.post_event(ref, EventType.WARNING, Reason.UNREGISTER_FAILED, result.message)


def build_registry() -> kopf.OperatorRegistry:
    """A registry with every handler of this operator."""
    registry = kopf.OperatorRegistry()
    kopf.on.startup(registry=registry, id="startup")(startup)
    kopf.on.login(registry=registry, id="login")(login)
    kopf.on.cleanup(registry=registry, id="cleanup", errors=kopf.ErrorsMode.IGNORED)(cleanup)
    kopf.on.probe(registry=registry, id="hub", errors=kopf.ErrorsMode.IGNORED)(probe_hub)
    kopf.on.probe(registry=registry, id="tasks", errors=kopf.ErrorsMode.PERMANENT)(probe_background_tasks)
    for kind in KINDS:  # CommunicationPool and DeploymentSite: the same handlers
        kopf.on.resume(*kind.resource, registry=registry, id="register")(register_pool)
        kopf.on.create(*kind.resource, registry=registry, id="register")(register_pool)
        kopf.on.update(*kind.resource, registry=registry, id="register", field="spec")(register_pool)
        kopf.on.delete(
            *kind.resource, registry=registry, id="unregister", timeout=UNREGISTER_GIVE_UP_SECONDS
        )(unregister_pool)
    return registry


__all__ = ["POOLS", "build_registry", "configure_kopf", "context_of"]
