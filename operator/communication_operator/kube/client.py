"""Kubernetes API client setup shared by kopf (login) and our own kubernetes-asyncio calls."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import kopf
from kubernetes_asyncio import client, config

log = logging.getLogger(__name__)

# Without an explicit timeout kubernetes-asyncio waits forever on a stuck request.
DEFAULT_REQUEST_TIMEOUT = 30.0
# kopf's own session has no connection limit: a burst of object events (a thousand CommunicationPools
# created at once, or listed at start) opens one TLS connection per concurrent patch. Measured with
# `benchmarks/pool_scale.py`: about 200 connections for 1,000 new objects, ~100 MB of RSS in TLS
# buffers and a TLS handshake per request on both sides. A bounded, reused pool serves the same
# load with less CPU; the watch streams hold one connection each, the rest queue for a free one.
KOPF_MAX_CONNECTIONS = 16


async def load_configuration(
    kubeconfig: Path | None = None, context: str | None = None
) -> client.Configuration:
    """In-cluster service account when running in a pod (and no kubeconfig is given), else a kubeconfig."""
    configuration = client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        log.debug("kubernetes client: in-cluster service account")
    else:
        await config.load_kube_config(
            config_file=str(kubeconfig) if kubeconfig else None,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
        log.debug("kubernetes client: kubeconfig %s", kubeconfig or "(default)")
    return configuration


async def connection_info(configuration: client.Configuration) -> kopf.ConnectionInfo:
    """The same credentials for kopf's own API calls, so both clients talk to one cluster as one user."""
    header = await configuration.get_api_key_with_prefix("BearerToken")
    scheme: str | None = None
    token: str | None = None
    if header:
        parts = str(header).split(" ", 1)
        scheme, token = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    if not configuration.host:
        raise ValueError("the Kubernetes client configuration names no API server")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


async def kopf_session(
    configuration: client.Configuration, max_connections: int = KOPF_MAX_CONNECTIONS
) -> kopf.AiohttpSession:
    """kopf's credentials as a ready session: :func:`connection_info`'s TLS and auth, but at most
    ``max_connections`` connections to the API server, kept alive and reused."""
    info = await connection_info(configuration)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
    )
    return kopf.AiohttpSession(server=info.server, aiohttp_session=session)


@dataclass
class KubeClient:
    """One ``ApiClient`` for the process; closed at shutdown."""

    configuration: client.Configuration
    api: client.ApiClient

    @classmethod
    async def create(cls, kubeconfig: Path | None = None, context: str | None = None) -> KubeClient:
        configuration = await load_configuration(kubeconfig, context)
        return cls(configuration, client.ApiClient(configuration))

    async def close(self) -> None:
        await self.api.close()
