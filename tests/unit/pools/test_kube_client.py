"""kopf and our kubernetes-asyncio client get the same credentials from one kubeconfig."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from communication_operator.kube import connection_info, kopf_session, load_configuration


def _kubeconfig(tmp_path: Path) -> Path:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "dev",
                        "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True},
                    }
                ],
                "users": [{"name": "admin", "user": {"token": "test-token-123"}}],
                "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "admin"}}],
                "current-context": "dev",
            }
        )
    )
    return kubeconfig


async def test_kubeconfig_token_is_shared_with_kopf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    configuration = await load_configuration(_kubeconfig(tmp_path))
    info = await connection_info(configuration)
    assert info.server == "https://127.0.0.1:6443"
    assert (info.scheme, info.token) == ("Bearer", "test-token-123")
    assert info.insecure is True


async def test_kopf_session_reuses_a_bounded_pool_of_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    configuration = await load_configuration(_kubeconfig(tmp_path))
    credentials = await kopf_session(configuration, max_connections=7)
    session = credentials.aiohttp_session
    try:
        assert credentials.server == "https://127.0.0.1:6443"
        assert session.headers["Authorization"] == "Bearer test-token-123"
        assert session.connector is not None
        assert session.connector.limit == 7
    finally:
        await session.close()
