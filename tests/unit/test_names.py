"""Names of pools and releases (octo-spec §3.2, §4.5): upstream's where they fit, never colliding."""

from __future__ import annotations

import itertools

import pytest

from communication_operator import names
from communication_operator.names import NamingError, dns_name, is_dns_label, pool_cr_name, release_name

POOL_A = "65f0c0ffee0000000000aaaa"
POOL_B = "65f0c0ffee0000000000aaab"
LONG_TENANT = "a-very-long-tenant-identifier-for-a-big-customer"  # 48 characters


@pytest.mark.parametrize(
    ("tenant", "pool", "expected"),
    [
        ("acme", POOL_A, f"acme-{POOL_A}"),
        ("Acme Corp", POOL_A, f"acme-corp-{POOL_A}"),
        ("t" * 28, POOL_A, f"{'t' * 28}-{POOL_A}"),  # exactly 53: still upstream's name
    ],
)
def test_pool_cr_name_is_upstreams_when_it_fits(tenant: str, pool: str, expected: str) -> None:
    assert pool_cr_name(tenant, pool) == expected == dns_name(tenant, pool)


def test_two_pools_of_a_long_tenant_get_distinct_valid_cr_names() -> None:
    # Upstream's DnsName cuts both to the same 53 characters.
    assert dns_name(LONG_TENANT, POOL_A) == dns_name(LONG_TENANT, POOL_B)
    first, second = pool_cr_name(LONG_TENANT, POOL_A), pool_cr_name(LONG_TENANT, POOL_B)
    assert first != second
    for name in (first, second):
        assert len(name) <= 53, name
        assert is_dns_label(name), name
        assert name.startswith(LONG_TENANT[:8])
    assert POOL_A in first
    assert POOL_B in second
    assert pool_cr_name(LONG_TENANT, POOL_A) == first  # stable


def test_cr_names_of_many_long_tenants_and_pools_are_distinct() -> None:
    tenants = [LONG_TENANT, LONG_TENANT + "-2", "x" * 29, "x" * 200, "y" * 60]
    pools = [POOL_A, POOL_B, "65f0c0ffee0000000000aaac"]
    cr_names = [pool_cr_name(t, p) for t, p in itertools.product(tenants, pools)]
    assert len(set(cr_names)) == len(cr_names)
    assert all(len(n) <= 53 for n in cr_names)
    assert all(is_dns_label(n) for n in cr_names)
    # The broker Secret of every one of them is still a valid object name.
    assert all(is_dns_label(names.broker_secret_name(n), 253) for n in cr_names)


@pytest.mark.parametrize(
    ("build", "tenant", "other", "component", "what"),
    [
        (release_name, "***", "65f0c0ffee0000000000bbbb", "tenantId", "helm release"),
        (release_name, "äöü", "65f0c0ffee0000000000bbbb", "tenantId", "helm release"),
        (release_name, "acme", "--", "workloadRtId", "helm release"),
        (pool_cr_name, "***", POOL_A, "tenantId", "CommunicationPool"),
    ],
)
def test_an_id_that_sanitises_to_nothing_is_refused_naming_the_component(
    build: object, tenant: str, other: str, component: str, what: str
) -> None:
    assert callable(build)
    with pytest.raises(NamingError) as excinfo:
        build(tenant, other)
    message = str(excinfo.value)
    assert message.startswith(f"{component} ")
    assert "no letters or digits" in message
    assert what in message


@pytest.mark.parametrize(("tenant", "rt_id"), [("", POOL_A), ("  ", POOL_A), ("acme", "")])
def test_blank_ids_are_refused_as_blank(tenant: str, rt_id: str) -> None:
    with pytest.raises(NamingError, match="is blank"):
        pool_cr_name(tenant, rt_id)


def test_one_error_type_for_every_naming_rule() -> None:
    # pools and workloads used to raise different errors for the same rule.
    from communication_operator.pools import naming as pool_naming
    from communication_operator.workloads import naming as workload_naming

    assert workload_naming.dns_name is dns_name
    assert pool_naming.broker_secret_name is names.broker_secret_name
    with pytest.raises(NamingError):
        dns_name("__", "--")


def test_managed_by_label_is_recognised() -> None:
    assert names.is_managed(names.pool_labels("acme", POOL_A))
    assert not names.is_managed({})
    assert not names.is_managed(None)
    assert not names.is_managed({names.LABEL_MANAGED_BY: "someone-else"})
