"""The scale verb (octo-spec §4.13): ``ScaleWorkloadAsync`` → replicas → ``ReportWorkloadScaleStatusAsync``.

The controller hibernates a workload with a scale to 0 and wakes it with a scale to 1, and waits for
the acknowledgement: without it the workload stays "Draining" and a wake-up times out. So every scale
push gets exactly one ack, success or not (except at shutdown, when the controller re-sends it).

A scale is an action on the release like a deploy: it is queued behind every deploy and undeploy of
the release already scheduled (:meth:`WorkloadService.schedule_scale`) and never runs next to a helm
run of it, so a scale that arrives during a deploy applies after it (the controller's last word wins).
It is never cancelled by a later deploy: it is short, and its ack is awaited.

The patch is a JSON merge patch of ``spec.replicas`` on every Deployment and StatefulSet labelled
``app.kubernetes.io/instance=<release>`` in the release namespace (resource names are never derived),
with the field manager ``octo-communication-operator``, so that helm 4's server-side apply sees our
ownership of the field (see docs/workloads.md, "Replica pin").
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from prometheus_client import Counter, Histogram

from communication_operator.contracts import (
    InvalidPush,
    ScaleWorkloadDto,
    ServerMethod,
    WorkloadScaleStatusDto,
)
from communication_operator.kube.client import DEFAULT_REQUEST_TIMEOUT
from communication_operator.logs import log_context
from communication_operator.metrics import NAMESPACE, SIGNAL_TO_REPORT_BUCKETS, OperatorMetrics
from communication_operator.redaction import redact, truncate_middle
from communication_operator.workloads.errors import INVALID_WORKLOAD
from communication_operator.workloads.naming import NamingError, release_name
from communication_operator.workloads.ports import ReportPort
from communication_operator.workloads.service import WorkloadService

log = logging.getLogger(__name__)

FIELD_MANAGER: Final = "octo-communication-operator"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
MERGE_PATCH: Final = "application/merge-patch+json"

SCALED = "Scaled {targets} of release {release} to {replicas} replica(s)"
NO_RELEASE = "No Deployments found for release {release} in namespace {namespace}: the release does not exist"
NOTHING_TO_SCALE = (
    "No Deployments found for release {release} in namespace {namespace}: "
    "the release has no Deployment or StatefulSet to scale"
)
SCALE_FAILED = "Scaling release {release} to {replicas} replica(s) failed: {error}"
INVALID_REPLICAS = "Invalid scale: replicas must be 0 or more, got {replicas}"


class ScaleOutcome:
    SUCCESS: Final = "success"
    FAILURE: Final = "failure"  # a patch or a read failed
    NOT_FOUND: Final = "not_found"  # no release, or nothing in it to scale
    INVALID: Final = "invalid"  # ids or replicas the operator cannot act on


@dataclass(frozen=True)
class ScaleTarget:
    kind: str  # "Deployment" or "StatefulSet"
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


class NothingToScale(Exception):
    """Nothing carries the release label; ``release_exists`` says whether helm knows the release."""

    def __init__(self, release_exists: bool) -> None:
        super().__init__("nothing to scale")
        self.release_exists = release_exists


class ReplicaPatcher(Protocol):
    """What the scale handler needs from the cluster (a kube-apiserver in tests, not a fake)."""

    async def scale_release(self, namespace: str, release: str, replicas: int) -> list[ScaleTarget]: ...


class KubeReplicaPatcher:
    """Merge-patches ``spec.replicas`` through kubernetes-asyncio."""

    def __init__(self, api: client.ApiClient, request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._apps: Any = client.AppsV1Api(api)
        self._core: Any = client.CoreV1Api(api)
        self._timeout = request_timeout

    async def scale_release(self, namespace: str, release: str, replicas: int) -> list[ScaleTarget]:
        selector = f"{INSTANCE_LABEL}={release}"
        targets = await self.targets(namespace, selector)
        if not targets:
            raise NothingToScale(await self._release_exists(namespace, release))
        body = {"spec": {"replicas": replicas}}
        for target in targets:
            patch = (
                self._apps.patch_namespaced_deployment
                if target.kind == "Deployment"
                else self._apps.patch_namespaced_stateful_set
            )
            await patch(
                target.name,
                namespace,
                body,
                field_manager=FIELD_MANAGER,
                _content_type=MERGE_PATCH,
                _request_timeout=self._timeout,
            )
        return targets

    async def targets(self, namespace: str, selector: str) -> list[ScaleTarget]:
        deployments = await self._apps.list_namespaced_deployment(
            namespace, label_selector=selector, _request_timeout=self._timeout
        )
        stateful_sets = await self._apps.list_namespaced_stateful_set(
            namespace, label_selector=selector, _request_timeout=self._timeout
        )
        return [ScaleTarget("Deployment", d.metadata.name) for d in deployments.items] + [
            ScaleTarget("StatefulSet", s.metadata.name) for s in stateful_sets.items
        ]

    async def _release_exists(self, namespace: str, release: str) -> bool:
        """helm keeps each revision in a Secret labelled ``owner=helm,name=<release>`` (helm 3 and 4)."""
        secrets = await self._core.list_namespaced_secret(
            namespace, label_selector=f"owner=helm,name={release}", limit=1, _request_timeout=self._timeout
        )
        return bool(secrets.items)


class ScaleMetrics:
    """Scale requests by outcome, and the time from the push to the controller having the ack."""

    def __init__(self, metrics: OperatorMetrics) -> None:
        self.requests = Counter(
            "scale_requests",
            "ScaleWorkloadAsync pushes handled, by outcome (success, failure, not_found, invalid).",
            ["outcome"],
            namespace=NAMESPACE,
            registry=metrics.registry,
        )
        self.push_to_ack = Histogram(
            "scale_push_to_ack_seconds",
            "Time from a ScaleWorkloadAsync push to its ReportWorkloadScaleStatusAsync delivered.",
            buckets=SIGNAL_TO_REPORT_BUCKETS,
            namespace=NAMESPACE,
            registry=metrics.registry,
        )


class ScaleHandler:
    """Handles ``ScaleWorkloadAsync``: schedules the patch on the release, then acknowledges it."""

    def __init__(
        self,
        service: WorkloadService,
        hub: ReportPort,
        patcher: ReplicaPatcher,
        *,
        metrics: OperatorMetrics | None = None,
    ) -> None:
        self._service = service
        self._hub = hub
        self._patcher = patcher
        self._metrics = ScaleMetrics(metrics) if metrics is not None else None

    async def on_scale_workload(self, dto: ScaleWorkloadDto) -> None:
        """Schedule the scale behind the release's runs and return (pushes are handled one at a time)."""
        received = time.monotonic()
        context = log_context(tenant=dto.tenant_id, pool=dto.pool_rt_id, workload=dto.workload_rt_id)
        try:
            release = release_name(dto.tenant_id, dto.workload_rt_id)
        except NamingError as exc:
            log.error("refusing scale of workload %r: %s", dto.workload_rt_id, exc, extra=context)
            await self._ack(dto, False, INVALID_WORKLOAD.format(problem=exc), ScaleOutcome.INVALID, received)
            return
        context = {**context, **log_context(release=release)}
        if dto.replicas < 0:
            message = INVALID_REPLICAS.format(replicas=dto.replicas)
            log.error("refusing scale of release %s: %s", release, message, extra=context)
            await self._ack(dto, False, message, ScaleOutcome.INVALID, received)
            return
        namespace = self._service.namespace_for(dto.workload_type)
        scheduled = self._service.schedule_scale(
            release,
            lambda: self._scale(dto, release, namespace, received, context),
            context,
        )
        if not scheduled:
            log.warning(
                "ignoring scale of workload %s: the operator is shutting down",
                dto.workload_rt_id,
                extra=context,
            )

    async def scale_refused(self, refused: InvalidPush) -> None:
        """A scale push that failed validation (hub/dispatch.py): a failed ack when the ids are readable."""
        ids = refused.ids
        problems = "; ".join(refused.problems)
        if not ids.readable or ids.tenant_id is None or ids.workload_rt_id is None:
            log.error("refusing a scale: %s; no ack can be sent (ids not readable)", problems)
            return
        log.error("refusing scale of workload %s: %s; acknowledging it failed", ids.workload_rt_id, problems)
        dto = ScaleWorkloadDto(
            tenant_id=ids.tenant_id, workload_rt_id=ids.workload_rt_id, workload_name=ids.workload_name or ""
        )
        message = INVALID_WORKLOAD.format(problem=problems)
        await self._ack(dto, False, message, ScaleOutcome.INVALID, time.monotonic())

    async def _scale(
        self, dto: ScaleWorkloadDto, release: str, namespace: str, received: float, context: dict[str, str]
    ) -> None:
        log.info("scaling release %s in %s to %d replica(s)", release, namespace, dto.replicas, extra=context)
        try:
            targets = await self._patcher.scale_release(namespace, release, dto.replicas)
        except NothingToScale as exc:
            template = NOTHING_TO_SCALE if exc.release_exists else NO_RELEASE
            message = template.format(release=release, namespace=namespace)
            log.warning("%s", message, extra=context)
            await self._ack(dto, False, message, ScaleOutcome.NOT_FOUND, received)
        except ApiException as exc:
            message = SCALE_FAILED.format(release=release, replicas=dto.replicas, error=_api_error(exc))
            log.warning("%s", redact(message), extra=context)
            await self._ack(dto, False, message, ScaleOutcome.FAILURE, received)
        except (OSError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            message = SCALE_FAILED.format(release=release, replicas=dto.replicas, error=error)
            log.warning("%s", redact(message), extra=context)
            await self._ack(dto, False, message, ScaleOutcome.FAILURE, received)
        else:
            message = SCALED.format(targets=_join(targets), release=release, replicas=dto.replicas)
            log.info("%s", message, extra=context)
            await self._ack(dto, True, message, ScaleOutcome.SUCCESS, received)

    async def _ack(
        self, dto: ScaleWorkloadDto, success: bool, text: str, outcome: str, received: float
    ) -> None:
        # Redact before bounding: a cut could leave part of a secret unrecognisable.
        message = truncate_middle(redact(text), self._service.options.status_limit)
        if self._metrics is not None:
            self._metrics.requests.labels(outcome=outcome).inc()
        settled = await self._hub.report(
            ServerMethod.REPORT_WORKLOAD_SCALE_STATUS,
            WorkloadScaleStatusDto(
                tenant_id=dto.tenant_id,
                workload_rt_id=dto.workload_rt_id,
                workload_name=dto.workload_name,
                replicas=dto.replicas,
                success=success,
                status_message=message,
            ),
        )
        if settled is not None and self._metrics is not None:
            histogram = self._metrics.push_to_ack

            def observe(future: asyncio.Future[bool]) -> None:
                if not future.cancelled() and future.result():
                    histogram.observe(time.monotonic() - received)

            settled.add_done_callback(observe)


def _join(targets: Sequence[ScaleTarget]) -> str:
    return ", ".join(str(t) for t in targets)


def _api_error(exc: ApiException) -> str:
    """``403 Forbidden: <the API server's message>``; the body's message, not the whole JSON."""
    detail = ""
    try:
        body = json.loads(exc.body or "")
        if isinstance(body, dict):
            detail = str(body.get("message") or "")
    except ValueError:
        detail = str(exc.body or "")[:500]
    head = f"{exc.status} {exc.reason}".strip()
    return f"{head}: {detail}" if detail else head
