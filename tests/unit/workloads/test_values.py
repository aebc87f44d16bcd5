"""The three values documents, their quoting, override paths, and where secrets go."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from communication_operator.contracts import ValueOverrideDto, WorkloadDeployedDto
from communication_operator.workloads.values import (
    ClusterDependencies,
    ClusterSecrets,
    IngressDefaults,
    OperatorContext,
    ValuesError,
    build_context,
    build_overrides,
    dump_quoted,
    render_values,
    secret_key_for,
    secret_values,
    split_path,
)

TENANT = "meshtest"
WORKLOAD_RT_ID = "650000000000000000000001"  # all digits: YAML would read it as a number unquoted
POOL_RT_ID = "65f0c0ffee0000000000aaaa"
BROKER_PASSWORD = "broker-pw-123"
DB_USER_PASSWORD = "db-user-pw"
DB_ADMIN_PASSWORD = "db-admin-pw"
STREAM_PASSWORD = "stream-pw"
ROOT_CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

FULL_CONTEXT = OperatorContext(
    pool_namespace="octo",
    instance_prefix="dev",
    communication_controller_uri="https://controller.example",
    reporting_service_uri="https://reporting.example",
    auth_uri="https://auth.example",
    image_registry="registry.example:5000",
    additional_valid_issuers=("https://issuer-a.example", " ", "https://issuer-b.example"),
    cluster_dependencies=ClusterDependencies(
        mongodb_host="mongo:27017",
        mongodb_replica_set="rs0",
        rabbit_mq_host="rabbitmq",
        rabbit_mq_user="octo",
        stream_data_host="crate",
        stream_data_user="crate",
        system_database_name="octosystem",
        stream_data_schema_instance_prefix="dev_",
    ),
    ingress=IngressDefaults(
        class_name="nginx",
        cluster_issuer="letsencrypt",
        tls=True,
        annotations=(("nginx.ingress.kubernetes.io/proxy-body-size", "10m"), ("empty", " ")),
    ),
    broker_password=BROKER_PASSWORD,
    root_ca_certificate=ROOT_CA,
    cluster_secrets=ClusterSecrets(
        mongodb_user_password=DB_USER_PASSWORD,
        mongodb_admin_password=DB_ADMIN_PASSWORD,
        stream_data_password=STREAM_PASSWORD,
    ),
)


def dto(**changes: Any) -> WorkloadDeployedDto:
    fields: dict[str, Any] = {
        "tenant_id": TENANT,
        "pool_rt_id": POOL_RT_ID,
        "workload_name": "web",
        "workload_rt_id": WORKLOAD_RT_ID,
        "repository_url": "https://charts.example",
        "chart_name": "web",
    }
    fields.update(changes)
    return WorkloadDeployedDto(**fields)


def override(path: str, value: str, secret: bool = False) -> ValueOverrideDto:
    return ValueOverrideDto(path=path, value=value, is_secret=secret)


# --- context document ---------------------------------------------------------------------


def test_full_context_document() -> None:
    assert build_context(dto(ingress_enabled=True, hostname="web.example"), FULL_CONTEXT) == {
        "tenantId": TENANT,
        "adapterRtId": WORKLOAD_RT_ID,
        "instancePrefix": "dev",
        "communicationControllerServiceUri": "https://controller.example",
        "reportingServiceUri": "https://reporting.example",
        "authUri": "https://auth.example",
        "additionalValidIssuers": ["https://issuer-a.example", "https://issuer-b.example"],
        "image": {"privateRegistry": "registry.example:5000"},
        "clusterDependencies": {
            "mongodbHost": "mongo:27017",
            "mongodbReplicaSet": "rs0",
            "rabbitMqHost": "rabbitmq",
            "rabbitMqUser": "octo",
            "streamDataHost": "crate",
            "streamDataUser": "crate",
            "systemDatabaseName": "octosystem",
            "streamDataSchemaInstancePrefix": "dev_",
        },
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "tls": True,
            "annotations": {
                "cert-manager.io/cluster-issuer": "letsencrypt",
                "nginx.ingress.kubernetes.io/proxy-body-size": "10m",
            },
        },
        "publicUri": "https://web.example",
    }


@pytest.mark.parametrize(
    ("ingress_enabled", "hostname", "public"),
    [(True, "web.example", True), (True, None, False), (True, "  ", False), (False, "web.example", False)],
)
def test_ingress_and_public_uri_need_both_the_flag_and_a_hostname(
    ingress_enabled: bool, hostname: str | None, public: bool
) -> None:
    values = build_context(dto(ingress_enabled=ingress_enabled, hostname=hostname), OperatorContext())
    assert ("publicUri" in values) is public
    assert ("ingress" in values) is public
    if public:
        assert values["ingress"] == {"enabled": True}


def test_minimal_context_has_only_the_identity() -> None:
    assert build_context(dto(), OperatorContext()) == {"tenantId": TENANT, "adapterRtId": WORKLOAD_RT_ID}


@pytest.mark.parametrize(
    ("shared", "workload", "projected"),
    [
        ("https://a.example", None, "https://a.example"),
        ("https://a.example", "https://b.example", "https://b.example"),
        ("https://a.example", "  ", "https://a.example"),
        (None, "https://b.example", "https://b.example"),
    ],
)
def test_workload_controller_uri_takes_precedence(
    shared: str | None, workload: str | None, projected: str
) -> None:
    context = OperatorContext(
        communication_controller_uri=shared, workload_communication_controller_uri=workload
    )
    assert build_context(dto(), context)["communicationControllerServiceUri"] == projected


def test_cluster_issuer_annotation_can_be_replaced_by_an_explicit_annotation() -> None:
    context = OperatorContext(
        ingress=IngressDefaults(cluster_issuer="a", annotations=(("cert-manager.io/cluster-issuer", "b"),))
    )
    assert build_context(dto(), context)["ingress"] == {
        "annotations": {"cert-manager.io/cluster-issuer": "b"}
    }


# --- quoting ------------------------------------------------------------------------------

TRICKY = [
    "0123",
    "1e5",
    "true",
    "False",
    "yes",
    "off",
    "null",
    "~",
    "",
    "123456789012345678901234",
    WORKLOAD_RT_ID,
    "0x1F",
    "0o17",
    "1_000",
    ".inf",
    "-.5",
    "2024-01-01",
    "12:30:00",
    "key: value",
    "# not a comment",
    "- not a list",
    "&anchor",
    "*alias",
    "!tag",
    "'single'",
    'dou"ble',
    "back\\slash",
    "  padded  ",
    "tab\there",
    "multi\nline\n",
    ROOT_CA,
    "ünïcödé ✓",
    "nel\x85line",
    "x" * 300,
]


def _scalar_nodes(node: yaml.Node) -> list[yaml.ScalarNode]:
    if isinstance(node, yaml.ScalarNode):
        return [node]
    if isinstance(node, yaml.MappingNode):
        return [
            scalar for key, value in node.value for scalar in (*_scalar_nodes(key), *_scalar_nodes(value))
        ]
    if isinstance(node, yaml.SequenceNode):
        return [scalar for item in node.value for scalar in _scalar_nodes(item)]
    return []


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_round_trip_as_strings_and_are_double_quoted(text: str) -> None:
    # Keys are tried too; PyYAML writes keys over 128 characters or with line breaks in the explicit
    # "? key" form, which no override path produces, so those are kept out of the key position.
    key = text.replace("\n", " ").replace("\x85", " ")[:100] or "empty"
    data = {key: text, "nested": {key: [text]}, "n": 3, "b": False}
    document = dump_quoted(data)
    assert yaml.safe_load(document) == data
    strings = [node for node in _scalar_nodes(yaml.compose(document)) if node.tag.endswith(":str")]
    # Every string, key or value, is double-quoted: a string to any YAML parser, helm's included.
    assert strings
    assert all(node.style == '"' for node in strings)
    assert document.count("\n") == 6  # one line per key or item: no string is folded or block-styled


def test_numbers_and_booleans_stay_plain() -> None:
    assert dump_quoted({"replicaCount": 0, "enabled": True}) == '"replicaCount": 0\n"enabled": true\n'


def test_empty_mapping_gives_an_empty_document() -> None:
    assert dump_quoted({}) == ""


def test_shared_objects_are_not_written_as_anchors() -> None:
    shared = {"a": "b"}
    assert "&" not in dump_quoted({"x": shared, "y": shared})


# --- override paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("a", ("a",)),
        ("image.tag", ("image", "tag")),
        ("a.b.c.d", ("a", "b", "c", "d")),
        (
            r"ingress.annotations.cert-manager\.io/cluster-issuer",
            ("ingress", "annotations", "cert-manager.io/cluster-issuer"),
        ),
        (r"a\\.b", ("a\\", "b")),
        (r"a\b", ("a\\b",)),
        ("a\\", ("a\\",)),
        ("weird key.x", ("weird key", "x")),
    ],
)
def test_split_path(path: str, segments: tuple[str, ...]) -> None:
    assert split_path(path) == segments


@pytest.mark.parametrize("path", [".a", "a.", "a..b", "."])
def test_split_path_refuses_empty_segments(path: str) -> None:
    with pytest.raises(ValuesError, match="empty segment"):
        split_path(path)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([override("replicaCount", "2")], {"replicaCount": "2"}),
        (
            [override("image.tag", "1.0"), override("image.repository", "web"), override("a.b.c", "x")],
            {"image": {"tag": "1.0", "repository": "web"}, "a": {"b": {"c": "x"}}},
        ),
        ([override("image.tag", "1.0"), override("image.tag", "2.0")], {"image": {"tag": "2.0"}}),
        ([override("", "x"), override("  ", "y"), override("a", "z")], {"a": "z"}),
        (
            [override(r"podAnnotations.example\.com/team", "core")],
            {"podAnnotations": {"example.com/team": "core"}},
        ),
    ],
)
def test_overrides_nest_and_later_wins(entries: list[ValueOverrideDto], expected: dict[str, Any]) -> None:
    values, secret_data = build_overrides(entries, "rel-octo-secrets")
    assert values == expected
    assert secret_data == {}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("image", "image.tag"),
        ("image.tag", "image"),
        ("a.b", "a.b.c.d"),
        ("secrets.x", "secrets.x.valueFrom"),
    ],
)
def test_conflicting_paths_are_an_error_naming_both(first: str, second: str) -> None:
    with pytest.raises(ValuesError) as error:
        build_overrides([override(first, "1"), override(second, "2")], "s")
    assert repr(first) in str(error.value)
    assert repr(second) in str(error.value)


def test_secret_override_is_a_reference_and_its_value_goes_to_the_secret() -> None:
    values, secret_data = build_overrides(
        [override("secrets.apiKey", "k-123456", secret=True), override("plain", "p")], "rel-octo-secrets"
    )
    assert values == {
        "secrets": {
            "apiKey": {"valueFrom": {"secretKeyRef": {"name": "rel-octo-secrets", "key": "secrets.apiKey"}}}
        },
        "plain": "p",
    }
    assert secret_data == {"secrets.apiKey": "k-123456"}


def test_a_later_plain_value_replaces_an_earlier_secret_at_the_same_path() -> None:
    values, secret_data = build_overrides(
        [override("secrets.rabbitmq", "injected", secret=True), override("secrets.rabbitmq", "mine")], "s"
    )
    assert values == {"secrets": {"rabbitmq": "mine"}}
    assert secret_data == {}


@pytest.mark.parametrize(
    ("path", "valid_as_is"),
    [("secrets.rabbitmq", True), ("a-b_c.D9", True), (r"a\.b", False), ("a/b", False), ("x" * 300, False)],
)
def test_secret_keys_are_valid_secret_data_keys(path: str, valid_as_is: bool) -> None:
    key = secret_key_for(path)
    assert (key == path) is valid_as_is
    assert len(key) <= 253
    assert all(c.isalnum() or c in "-._" for c in key)


def test_distinct_invalid_paths_get_distinct_keys() -> None:
    assert secret_key_for("a/b") != secret_key_for("a?b")


def test_hibernation_pins_replica_count_zero_over_any_override() -> None:
    values, _ = build_overrides([override("replicaCount", "3")], "s", hibernated=True)
    assert values == {"replicaCount": 0}
    assert '"replicaCount": 0\n' in dump_quoted(values)


# --- the whole render ---------------------------------------------------------------------


def test_render_full_workload() -> None:
    workload = dto(
        values_yaml="image:\n  tag: '1.2'\n",
        values=[
            override("image.tag", "1.3"),
            override("secrets.serviceAccountClientSecret", "sa-secret", secret=True),
        ],
        receives_cluster_secrets=True,
        hibernated=False,
    )
    rendered = render_values(workload, FULL_CONTEXT)
    assert rendered.release == f"{TENANT}-{WORKLOAD_RT_ID}"
    assert rendered.secret_name == f"{TENANT}-{WORKLOAD_RT_ID}-octo-secrets"
    assert rendered.base_yaml == "image:\n  tag: '1.2'\n"
    assert [name for name, _ in rendered.files()] == [
        "values-context.yaml",
        "values-base.yaml",
        "values-overrides.yaml",
    ]

    def ref(key: str) -> dict[str, Any]:
        return {"valueFrom": {"secretKeyRef": {"name": rendered.secret_name, "key": key}}}

    assert yaml.safe_load(rendered.overrides_yaml) == {
        "secrets": {
            "rabbitmq": ref("secrets.rabbitmq"),
            "rootCa": ROOT_CA,
            "databaseUser": ref("secrets.databaseUser"),
            "databaseAdmin": ref("secrets.databaseAdmin"),
            "streamDataPassword": ref("secrets.streamDataPassword"),
            "serviceAccountClientSecret": ref("secrets.serviceAccountClientSecret"),
        },
        "image": {"tag": "1.3"},
    }
    assert rendered.secret_data == {
        "secrets.rabbitmq": BROKER_PASSWORD,
        "secrets.databaseUser": DB_USER_PASSWORD,
        "secrets.databaseAdmin": DB_ADMIN_PASSWORD,
        "secrets.streamDataPassword": STREAM_PASSWORD,
        "secrets.serviceAccountClientSecret": "sa-secret",
    }
    assert yaml.safe_load(rendered.context_yaml)["adapterRtId"] == WORKLOAD_RT_ID  # a string, not a number
    for document in rendered.documents:
        for secret in secret_values(workload, FULL_CONTEXT):
            assert secret not in document


def test_cluster_secrets_only_with_receives_cluster_secrets() -> None:
    rendered = render_values(dto(receives_cluster_secrets=False), FULL_CONTEXT)
    assert set(rendered.secret_data) == {"secrets.rabbitmq"}
    assert set(yaml.safe_load(rendered.overrides_yaml)["secrets"]) == {"rabbitmq", "rootCa"}


def test_workload_override_wins_over_injected_entry() -> None:
    rendered = render_values(dto(values=[override("secrets.rabbitmq", "own-pw", secret=True)]), FULL_CONTEXT)
    assert rendered.secret_data["secrets.rabbitmq"] == "own-pw"


def test_minimal_render_omits_empty_documents() -> None:
    rendered = render_values(dto(values_yaml="  \n"), OperatorContext())
    assert rendered.base_yaml == ""
    assert rendered.overrides_yaml == ""
    assert rendered.secret_data == {}
    assert [name for name, _ in rendered.files()] == ["values-context.yaml"]
    assert rendered.documents[1:] == ("", "")


def test_hibernated_render() -> None:
    rendered = render_values(dto(hibernated=True), OperatorContext())
    assert yaml.safe_load(rendered.overrides_yaml) == {"replicaCount": 0}


def test_render_refuses_a_workload_without_rt_id() -> None:
    with pytest.raises(ValueError, match="workloadRtId"):
        render_values(dto(workload_rt_id=""), OperatorContext())


def test_secret_values_cover_every_secret_and_nothing_else() -> None:
    workload = dto(
        repository_password="repo-pw",
        values=[
            override("a", "visible"),
            override("b", "hidden-1", secret=True),
            override("c", "", secret=True),
        ],
    )
    assert secret_values(workload, FULL_CONTEXT) == {
        "repo-pw",
        BROKER_PASSWORD,
        DB_USER_PASSWORD,
        DB_ADMIN_PASSWORD,
        STREAM_PASSWORD,
        "hidden-1",
    }


def test_reprs_do_not_show_secrets() -> None:
    rendered = render_values(dto(receives_cluster_secrets=True), FULL_CONTEXT)
    for text in (repr(rendered), repr(FULL_CONTEXT)):
        for secret in (BROKER_PASSWORD, DB_USER_PASSWORD, DB_ADMIN_PASSWORD, STREAM_PASSWORD):
            assert secret not in text
