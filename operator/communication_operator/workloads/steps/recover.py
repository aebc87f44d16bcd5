"""Step *recover*: a release stuck in ``pending-*`` unlocked before the upgrade (:mod:`..recovery`
does it, best effort), and the user told so in a progress report."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from communication_operator.redaction import redact
from communication_operator.workloads.ports import Delivery, HelmPort
from communication_operator.workloads.recovery import Recovery, recover_pending_release

log = logging.getLogger(__name__)

RECOVERED_LOG: Final = "release %s: %s"


async def recover(
    helm: HelmPort,
    release: str,
    namespace: str,
    *,
    timeout_seconds: float,
    secrets: frozenset[str],
    progress: Callable[[str], Awaitable[Delivery]],
    context: Mapping[str, str],
) -> Recovery | None:
    """The recovery done, if the release was stuck (reported as progress), else ``None``."""
    recovery = await recover_pending_release(helm, release, namespace, timeout_seconds=timeout_seconds)
    if recovery is not None:
        log.warning(RECOVERED_LOG, release, redact(recovery.message, secrets), extra=context)
        await progress(recovery.message)
    return recovery
