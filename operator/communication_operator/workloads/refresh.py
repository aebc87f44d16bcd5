"""``helm repo add`` / ``repo update`` (or ``registry login``) before a deploy, once per repository at a time.

``repo add`` rewrites repositories.yaml in place, and a helm of another deploy reading it at that
moment finds no entry ("repo … not found"). So: one refresh per repository alias at a time (a lock),
``repo add`` only when the alias is new or its credentials changed (``repo update`` replaces only the
index file, atomically), and no refresh at all when another deploy refreshed the alias after this one
asked.

The concurrency slot (``OPERATOR__HELM__MAXCONCURRENT``) is taken inside the lock, only for the helm
runs (review finding 13): deploys waiting for a slow repository hold no slot, so deploys from other
repositories go on. Locks of idle aliases are dropped and at most :data:`REFRESHED_ALIASES_KEPT`
refresh records are kept, so neither grows with every repository ever seen (finding 20).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from communication_operator.workloads.ports import HelmPort
from communication_operator.workloads.repository import ChartSource, RepositoryKind

REFRESHED_ALIASES_KEPT = 256


class RepositoryRefresher:
    def __init__(self, helm: HelmPort, slot: Callable[[], AbstractAsyncContextManager[None]]) -> None:
        self._helm = helm
        self._slot = slot
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}
        # alias -> (credentials fingerprint, monotonic time the last successful refresh started)
        self._refreshed: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._locks)

    async def prepare(self, source: ChartSource, username: str | None, password: str | None) -> None:
        """Make ``source``'s chart resolvable; raises :class:`HelmError` (naming the alias, never the URL)."""
        if source.kind is RepositoryKind.OCI:
            if username and password and source.registry_host:
                async with self._slot():
                    await self._helm.registry_login(source.registry_host, username, password)
            return
        alias = source.alias
        assert alias is not None
        fingerprint = _fingerprint(source.repository_url, username, password)
        requested = time.monotonic()
        lock = self._locks.setdefault(alias, asyncio.Lock())
        self._waiting[alias] = self._waiting.get(alias, 0) + 1
        try:
            async with lock:
                await self._refresh(alias, source.repository_url, username, password, fingerprint, requested)
        finally:
            self._waiting[alias] -= 1
            if self._waiting[alias] == 0:
                del self._waiting[alias]
                del self._locks[alias]

    async def _refresh(
        self,
        alias: str,
        url: str,
        username: str | None,
        password: str | None,
        fingerprint: str,
        requested: float,
    ) -> None:
        known = self._refreshed.get(alias)
        if known is not None and known[0] == fingerprint and known[1] >= requested:
            return  # another deploy refreshed it after we asked: fresh enough
        async with self._slot():
            refresh_started = time.monotonic()
            try:
                if known is None or known[0] != fingerprint:
                    await self._helm.repo_add(alias, url, username, password)
                await self._helm.repo_update(alias)
            except BaseException:
                self._refreshed.pop(alias, None)
                raise
        self._refreshed[alias] = (fingerprint, refresh_started)
        self._refreshed.move_to_end(alias)
        while len(self._refreshed) > REFRESHED_ALIASES_KEPT:
            self._refreshed.popitem(last=False)


def _fingerprint(url: str, username: str | None, password: str | None) -> str:
    material = "\0".join((url, username or "", password or ""))
    return hashlib.sha256(material.encode()).hexdigest()
