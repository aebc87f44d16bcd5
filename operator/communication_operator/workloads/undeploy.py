"""One undeploy: ``helm uninstall`` (never cancelled halfway), then the per-release Secret.

The contract has no undeploy status: the outcome goes to the log (and the metrics), and the
controller's next attempt is all that follows a failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Final

from communication_operator.contracts import WorkloadUndeployedDto
from communication_operator.metrics import OperatorMetrics
from communication_operator.redaction import redact
from communication_operator.workloads.context import workload_context
from communication_operator.workloads.helm import HelmError
from communication_operator.workloads.naming import release_secret_name
from communication_operator.workloads.options import WorkloadOptions
from communication_operator.workloads.ports import HelmPort
from communication_operator.workloads.recovery import uninstall_to_completion
from communication_operator.workloads.secrets import SecretError, SecretStore
from communication_operator.workloads.steps.helm_upgrade import timed_helm_run

log = logging.getLogger(__name__)

UNDEPLOYING_LOG: Final = "undeploying workload %s: release %s"
CANCELLED_LOG: Final = "undeploy of release %s cancelled"
FAILED_LOG: Final = "undeploy of workload %s (release %s) failed: %s"
UNDEPLOYED_LOG: Final = "undeployed workload %s: release %s uninstalled%s"
SECRET_DELETED: Final = ", Secret {name} deleted"


async def undeploy(
    helm: HelmPort,
    store: SecretStore,
    options: WorkloadOptions,
    metrics: OperatorMetrics,
    slot: Callable[[], AbstractAsyncContextManager[None]],
    dto: WorkloadUndeployedDto,
    release: str,
) -> None:
    """Uninstall ``release`` and delete its Secret; failures are logged, cancellation re-raised."""
    namespace = options.namespace_for(dto.workload_type)
    secret_name = release_secret_name(release)
    context = workload_context(dto, release)
    log.info(UNDEPLOYING_LOG, dto.workload_rt_id, release, extra=context)
    try:
        async with slot():
            secret_deleted = await remove_release(helm, store, metrics, release, namespace, secret_name)
    except asyncio.CancelledError:
        log.info(CANCELLED_LOG, release, extra=context)
        raise
    except (HelmError, SecretError) as exc:
        metrics.record_undeploy(failed=True)
        log.error(FAILED_LOG, dto.workload_rt_id, release, redact(str(exc)), extra=context)
        return
    metrics.record_undeploy(failed=False)
    deleted = SECRET_DELETED.format(name=secret_name) if secret_deleted else ""
    log.info(UNDEPLOYED_LOG, dto.workload_rt_id, release, deleted, extra=context)


async def remove_release(
    helm: HelmPort,
    store: SecretStore,
    metrics: OperatorMetrics,
    release: str,
    namespace: str,
    secret_name: str,
) -> bool:
    """``helm uninstall``, never cancelled halfway, then the per-release Secret whatever helm said:
    its plaintext values must not outlive the workload. True when the Secret existed."""
    uninstall_error: HelmError | None = None
    try:
        with timed_helm_run(metrics, "uninstall"):
            await uninstall_to_completion(helm, release, namespace)
    except HelmError as exc:
        uninstall_error = exc
    finally:
        # Also when cancelled (shutdown) after helm finished: the deletion is one API call.
        secret_deleted = await store.delete(namespace, secret_name)
    if uninstall_error is not None:
        raise uninstall_error
    return secret_deleted
