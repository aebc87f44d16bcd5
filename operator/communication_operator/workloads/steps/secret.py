"""Step *Secret*: the per-release Secret holding the secret values, applied before the upgrade and put
back as it was when the upgrade fails or is stopped (helm rolled back; its pods read the old one)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from communication_operator.contracts import WorkloadDeployedDto
from communication_operator.redaction import redact
from communication_operator.workloads.naming import release_labels
from communication_operator.workloads.secrets import SecretSnapshot, SecretStore, restore_after_failure
from communication_operator.workloads.values import RenderedValues

log = logging.getLogger(__name__)

RESTORE_FAILED_LOG: Final = "release %s: could not restore Secret %s after the failed upgrade: %s"


async def apply_secret(
    store: SecretStore, namespace: str, dto: WorkloadDeployedDto, rendered: RenderedValues
) -> SecretSnapshot | None:
    """Make the Secret hold ``rendered``'s secret data (deleted when there is none); returns what it
    held before. Raises :class:`~..secrets.SecretError` (a :class:`DeployFailed`)."""
    before = await store.read(namespace, rendered.secret_name)
    if rendered.secret_data:
        await store.apply(
            namespace, rendered.secret_name, rendered.secret_data, release_labels(dto), dto.workload_name
        )
    else:
        await store.delete(namespace, rendered.secret_name)
    return before


async def restore_secret(
    store: SecretStore,
    namespace: str,
    release: str,
    name: str,
    before: SecretSnapshot | None,
    context: Mapping[str, str],
) -> None:
    """Put the Secret back as it was; never raises (the deploy's own outcome is what counts)."""

    def log_failure(exc: Exception) -> None:
        # The deploy's own outcome is what the controller must see; this one goes to the log.
        log.error(RESTORE_FAILED_LOG, release, name, redact(str(exc)), extra=context)

    await restore_after_failure(lambda: store.restore(namespace, name, before), log_failure)
