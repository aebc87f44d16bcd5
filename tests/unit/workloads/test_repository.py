"""Repository alias, URL classification and the chart reference passed to helm."""

from __future__ import annotations

import pytest

from communication_operator.workloads.repository import (
    RepositoryError,
    RepositoryKind,
    chart_source,
    classify_repository_url,
    repository_alias,
    validate_chart_name,
    validate_chart_version,
)


@pytest.mark.parametrize(
    ("url", "alias"),
    [
        # SHA-1 of the URL's UTF-8 bytes, first 12 hex digits (octo-spec §4.2).
        ("https://meshmakers.github.io/charts", "octo-d339a612abb5"),
        ("https://charts.bitnami.com/bitnami", "octo-cc54f5167101"),
    ],
)
def test_alias_is_upstreams(url: str, alias: str) -> None:
    assert repository_alias(url) == alias


def test_alias_is_sensitive_to_every_character_as_upstream() -> None:
    assert repository_alias("https://x.example/charts") != repository_alias("https://x.example/charts/")


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://meshmakers.github.io/charts", RepositoryKind.INDEX),
        ("http://127.0.0.1:8879/charts", RepositoryKind.INDEX),
        ("HTTPS://Example.com", RepositoryKind.INDEX),
        ("oci://registry.example.com/charts", RepositoryKind.OCI),
        ("oci://localhost:5000/a/b", RepositoryKind.OCI),
        ("oci://ghcr.io", RepositoryKind.OCI),
    ],
)
def test_classify(url: str, kind: RepositoryKind) -> None:
    assert classify_repository_url(url) is kind


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("", "blank"),
        ("   ", "blank"),
        (" https://x.example", "whitespace"),
        ("--kubeconfig=/etc/passwd", "scheme"),
        ("ftp://x.example/charts", "scheme"),
        ("file:///tmp/charts", "scheme"),
        ("charts.example.com", "scheme"),
        ("https://", "no host"),
        ("https://x.example/a b", "whitespace"),
        ("https://x.example:99999/", "not a valid URL"),
        ("oci://user:pw@registry.example.com/x", "credentials"),
        ("oci://registry.example.com/x?tag=1", "query"),
    ],
)
def test_classify_refuses_with_a_reason(url: str, complaint: str) -> None:
    with pytest.raises(RepositoryError, match=complaint):
        classify_repository_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://u:s3cr3t/pw@x.example/charts",
        "https://u:s3cr3t#pw@x.example/charts",
        "https://u:s3cr3t-pw@x.example:99999/charts",
        "https://u:s3cr3t-pw@x.example:port/charts",
        "https://u:s3cr3t-pw@[::1/charts",
        "ftp://u:s3cr3t-pw@x.example/charts",
        "u:s3cr3t-pw@x.example/charts",
        "oci://u:s3cr3t-pw@x.example/charts?tag=1",
        "https://u:s3cr3t-pw@x.example/a b",
        "https://u:s3cr3t-pw@x.example/charts\n",
    ],
)
def test_a_refusal_never_echoes_the_password_of_the_url(url: str) -> None:
    with pytest.raises(RepositoryError) as refused:
        classify_repository_url(url)
    assert "s3cr3t" not in str(refused.value)
    assert "u:***@" in str(refused.value)


def test_index_chart_source() -> None:
    source = chart_source("https://meshmakers.github.io/charts", "octo-mesh-adapter")
    assert source.kind is RepositoryKind.INDEX
    assert source.alias == "octo-d339a612abb5"
    assert source.chart_ref == "octo-d339a612abb5/octo-mesh-adapter"
    assert source.needs_repo_add
    assert source.registry_host is None


@pytest.mark.parametrize(
    ("url", "ref", "host"),
    [
        (
            "oci://registry.example.com/charts",
            "oci://registry.example.com/charts/web",
            "registry.example.com",
        ),
        ("oci://localhost:5000/charts/", "oci://localhost:5000/charts/web", "localhost:5000"),
        ("oci://ghcr.io", "oci://ghcr.io/web", "ghcr.io"),
    ],
)
def test_oci_chart_source(url: str, ref: str, host: str) -> None:
    source = chart_source(url, "web")
    assert source.kind is RepositoryKind.OCI
    assert source.chart_ref == ref
    assert source.registry_host == host
    assert source.alias is None
    assert not source.needs_repo_add


@pytest.mark.parametrize("name", ["", "-x", "--post-renderer=evil", "a/b", "a b", "../x", ".hidden", "web\n"])
def test_bad_chart_names(name: str) -> None:
    with pytest.raises(RepositoryError, match="chartName"):
        validate_chart_name(name)


@pytest.mark.parametrize("name", ["web", "octo-mesh-adapter", "Chart_1.x"])
def test_good_chart_names(name: str) -> None:
    assert validate_chart_name(name) == name


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("", None),
        ("  ", None),
        ("1.2.3", "1.2.3"),
        (" 0.1.0-rc.1+build ", "0.1.0-rc.1+build"),
        ("^1.2", "^1.2"),
        (">=1.0.0 <2.0.0", ">=1.0.0 <2.0.0"),
        ("~1.2.x", "~1.2.x"),
    ],
)
def test_chart_versions(version: str, expected: str | None) -> None:
    assert validate_chart_version(version) == expected


@pytest.mark.parametrize("version", ["--set=x", "-1", "1.0;rm -rf", "1.0\n2.0", "$(id)", "1.0\tx"])
def test_bad_chart_versions(version: str) -> None:
    with pytest.raises(RepositoryError, match="chartVersion"):
        validate_chart_version(version)


@pytest.mark.parametrize(
    ("url", "clean", "username", "password"),
    [
        ("https://bot:s3cr%40t@charts.example/x", "https://charts.example/x", "bot", "s3cr@t"),
        ("http://bot:pw@127.0.0.1:8080/charts/", "http://127.0.0.1:8080/charts/", "bot", "pw"),
        ("https://token@[::1]:8443/", "https://[::1]:8443/", "token", None),
        ("https://charts.example/x", "https://charts.example/x", None, None),
    ],
)
def test_credentials_in_an_index_url_move_out_of_the_url(
    url: str, clean: str, username: str | None, password: str | None
) -> None:
    source = chart_source(url, "web")
    assert source.repository_url == clean
    assert (source.url_username, source.url_password) == (username, password)
    assert source.alias == repository_alias(url)
    if password:
        assert password not in repr(source)
