"""Release, secret, CR and label names: upstream-compatible where they fit, collision-free where not."""

from __future__ import annotations

import itertools

import pytest

from communication_operator.contracts import WorkloadDeployedDto
from communication_operator.workloads.naming import (
    LABEL_MANAGED_BY,
    LABEL_POOL_RT_ID,
    LABEL_TENANT,
    LABEL_WORKLOAD_RT_ID,
    NamingError,
    dns_name,
    is_dns_label,
    label_value,
    release_labels,
    release_name,
    release_secret_name,
)

RT_ID = "65f0c0ffee0000000000aaaa"


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("acme", RT_ID), f"acme-{RT_ID}"),
        (("Acme",), "acme"),
        (("Communication Pool",), "communication-pool"),
        (("--a__b..c--",), "a-b-c"),
        (("tenant_1", "x"), "tenant-1-x"),
        (("ä-tenant",), "tenant"),
        (("a" * 60,), "a" * 53),
        (("a" * 52 + "-b",), "a" * 52),  # the cut lands after a dash, which is trimmed
        (("acme", ""), "acme"),
    ],
)
def test_dns_name_follows_upstream(parts: tuple[str, ...], expected: str) -> None:
    assert dns_name(*parts) == expected


@pytest.mark.parametrize("parts", [("",), ("   ",), ("--__..",), ("äöü",)])
def test_dns_name_refuses_input_without_usable_characters(parts: tuple[str, ...]) -> None:
    with pytest.raises(NamingError):
        dns_name(*parts)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("acme", "acme"),
        ("Communication Pool", "Communication-Pool"),
        ("meshtest Adapter", "meshtest-Adapter"),
        ("a_b.c-d", "a_b.c-d"),
        ("", "unknown"),
        ("...", "unknown"),
        ("äöü", "unknown"),
        ("-_.x._-", "x"),
        ("x" * 70, "x" * 63),
        ("x" * 62 + ".y", "x" * 62),  # trailing punctuation after the cut is trimmed
    ],
)
def test_label_value(value: str, expected: str) -> None:
    result = label_value(value)
    assert result == expected
    assert len(result) <= 63


@pytest.mark.parametrize(
    ("tenant", "rt_id"),
    [("acme", RT_ID), ("Meshtest", RT_ID), ("a" * 28, RT_ID), ("tenant.with_dots", "x1")],
)
def test_release_name_is_the_upstream_name_when_it_fits(tenant: str, rt_id: str) -> None:
    assert release_name(tenant, rt_id) == dns_name(tenant, rt_id)


LONG_TENANTS = [
    "a-very-long-tenant-identifier-for-a-big-customer",
    "a-very-long-tenant-identifier-for-a-big-customer-2",
    "a-very-long-tenant-identifier-for-a-big-customer-3",
    "x" * 200,
    "y" * 29,
]
RT_IDS = [RT_ID, "65f0c0ffee0000000000aaab", "65f0c0ffee0000000000aaac", "z" * 80, "z" * 81]


def test_long_names_are_distinct_valid_and_at_most_53() -> None:
    names = {}
    for tenant, rt_id in itertools.product(LONG_TENANTS, RT_IDS):
        name = release_name(tenant, rt_id)
        assert len(name) <= 53, name
        assert is_dns_label(name), name
        names[(tenant, rt_id)] = name
    assert len(set(names.values())) == len(names)


@pytest.mark.parametrize("tenant", LONG_TENANTS)
def test_long_tenant_keeps_the_whole_24_char_rt_id_and_a_readable_prefix(tenant: str) -> None:
    name = release_name(tenant, RT_ID)
    assert RT_ID in name
    assert name.startswith(dns_name(tenant)[:8])


def test_release_name_is_stable() -> None:
    assert release_name(LONG_TENANTS[0], RT_ID) == release_name(LONG_TENANTS[0], RT_ID)


def test_upstream_would_have_collided_here() -> None:
    # Upstream truncates at 53: both rt ids lose their distinguishing last character.
    tenant = LONG_TENANTS[0]
    a, b = "65f0c0ffee0000000000aaaa", "65f0c0ffee0000000000aaab"
    assert dns_name(tenant, a) == dns_name(tenant, b)
    assert release_name(tenant, a) != release_name(tenant, b)


@pytest.mark.parametrize(("tenant", "rt_id"), [("", RT_ID), ("acme", ""), ("  ", RT_ID), ("acme", " ")])
def test_release_name_refuses_blank_ids(tenant: str, rt_id: str) -> None:
    with pytest.raises(NamingError, match="blank"):
        release_name(tenant, rt_id)


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("acme-x", "acme-x-octo-secrets"),
        ("a" * 50, "a" * 50 + "-octo-secrets"),
    ],
)
def test_secret_name_keeps_the_upstream_form_when_it_fits(release: str, expected: str) -> None:
    assert release_secret_name(release) == expected


def test_secret_name_of_a_long_release_is_short_valid_and_distinct() -> None:
    releases = [release_name(tenant, rt_id) for tenant, rt_id in itertools.product(LONG_TENANTS, RT_IDS)]
    secrets = [release_secret_name(release) for release in releases]
    for secret in secrets:
        assert len(secret) <= 63, secret
        assert is_dns_label(secret), secret
        assert secret.endswith("-octo-secrets")
    assert len(set(secrets)) == len(secrets)


def test_release_labels() -> None:
    dto = WorkloadDeployedDto(
        tenant_id="Meshtest Tenant", pool_rt_id=RT_ID, workload_rt_id="65f0c0ffee0000000000bbbb"
    )
    assert release_labels(dto) == {
        LABEL_TENANT: "Meshtest-Tenant",
        LABEL_POOL_RT_ID: RT_ID,
        LABEL_WORKLOAD_RT_ID: "65f0c0ffee0000000000bbbb",
        LABEL_MANAGED_BY: "communication-operator",
    }


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("a", True),
        ("a-b", True),
        ("-a", False),
        ("a-", False),
        ("A", False),
        ("a" * 63, True),
        ("a" * 64, False),
        ("a\n", False),
    ],
)
def test_is_dns_label(name: str, valid: bool) -> None:
    assert is_dns_label(name) is valid
