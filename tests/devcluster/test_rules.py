"""Unit tests: fake-kubelet rule parsing and validation (no cluster)."""

from pathlib import Path

import pytest

from octo_devtools.devcluster.rules import (
    Behaviour,
    CrashLoopBackOffParams,
    RuleError,
    dump_rules,
    load_rules_file,
    make_rule,
    parse_rules,
    parse_rules_text,
    qualified_image,
    select_rule,
)


def test_make_rule_applies_defaults_and_params() -> None:
    rule = make_rule("bad/*", "crash-loop-backoff", exit_code=2, restart_count=5)
    assert rule.behaviour is Behaviour.CRASH_LOOP_BACKOFF
    assert rule.params == CrashLoopBackOffParams(exit_code=2, reason="Error", restart_count=5)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ImagePullBackOff", Behaviour.IMAGE_PULL_BACKOFF),
        ("ErrImagePull", Behaviour.IMAGE_PULL_BACKOFF),
        ("image_pull_backoff", Behaviour.IMAGE_PULL_BACKOFF),
        ("CrashLoopBackOff", Behaviour.CRASH_LOOP_BACKOFF),
        ("CreateContainerConfigError", Behaviour.CREATE_CONTAINER_CONFIG_ERROR),
        ("InvalidImageName", Behaviour.INVALID_IMAGE_NAME),
        ("Unschedulable", Behaviour.UNSCHEDULABLE),
        ("Running", Behaviour.READY),
        ("Completed", Behaviour.RUN_TO_COMPLETION),
        ("Pending", Behaviour.IGNORE),
    ],
)
def test_kubernetes_reason_names_are_accepted(name: str, expected: Behaviour) -> None:
    assert make_rule("*", name).behaviour is expected


def test_oomkilled_alias_is_a_crash_loop_with_exit_137() -> None:
    rule = make_rule("*", "OOMKilled")
    assert rule.behaviour is Behaviour.CRASH_LOOP_BACKOFF
    assert isinstance(rule.params, CrashLoopBackOffParams)
    assert (rule.params.exit_code, rule.params.reason) == (137, "OOMKilled")


def test_unknown_behaviour_names_the_rule_and_lists_known_ones() -> None:
    with pytest.raises(RuleError, match=r"unknown behaviour 'explode' for image 'x/\*' \(known: ready,"):
        make_rule("x/*", "explode")


def test_unknown_parameter_is_rejected_with_its_name() -> None:
    with pytest.raises(RuleError, match=r"image-pull-backoff.*exitCode: Extra inputs are not permitted"):
        make_rule("x", "image-pull-backoff", exitCode=1)


def test_parameter_types_are_validated() -> None:
    with pytest.raises(RuleError, match="restart_count"):
        make_rule("x", "crash-loop-backoff", restart_count=0)


def test_document_with_camel_case_params_and_positions_in_errors() -> None:
    rules = parse_rules_text(
        """
rules:
  - image: "example.invalid/*"
    behaviour: ImagePullBackOff
    backoffAfter: 2
  - image: "*/crashy:*"
    behavior: crash-loop-backoff
    exitCode: 137
    reason: OOMKilled
"""
    )
    assert [r.behaviour for r in rules] == [Behaviour.IMAGE_PULL_BACKOFF, Behaviour.CRASH_LOOP_BACKOFF]
    assert rules[0].params.model_dump()["backoff_after"] == 2
    assert rules[1].params.model_dump()["exit_code"] == 137
    with pytest.raises(RuleError, match=r"rules\[1\] needs both 'image' and 'behaviour'"):
        parse_rules({"rules": [{"image": "a", "behaviour": "ready"}, {"image": "b"}]})
    with pytest.raises(RuleError, match=r"unknown top-level keys \['rule'\]"):
        parse_rules({"rule": []})
    with pytest.raises(RuleError, match="rules must be a list"):
        parse_rules({"rules": {"image": "a"}})
    assert parse_rules(None) == []


def test_json_file_round_trip(tmp_path: Path) -> None:
    rules = [make_rule("a/*", "unschedulable", message="0/1 nodes are available: 1 Insufficient memory.")]
    path = tmp_path / "rules.json"
    path.write_text(dump_rules(rules))
    assert load_rules_file(path) == rules


def test_invalid_yaml_names_the_source() -> None:
    with pytest.raises(RuleError, match=r"my\.yaml: not valid YAML"):
        parse_rules_text("rules: [", source="my.yaml")


@pytest.mark.parametrize(
    ("image", "qualified"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.25", "docker.io/library/nginx:1.25"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
        ("ghcr.io/org/app:v1", "ghcr.io/org/app:v1"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("example.invalid/nope@sha256:abc", "example.invalid/nope@sha256:abc"),
    ],
)
def test_qualified_image(image: str, qualified: str) -> None:
    assert qualified_image(image) == qualified


def test_first_matching_rule_wins_and_globs_match_qualified_names() -> None:
    rules = [make_rule("docker.io/library/nginx:*", "not-ready"), make_rule("*", "image-pull-backoff")]
    first = select_rule(rules, "nginx:1.25")
    assert first is not None
    assert first.behaviour is Behaviour.NOT_READY
    fallback = select_rule(rules, "busybox")
    assert fallback is not None
    assert fallback.behaviour is Behaviour.IMAGE_PULL_BACKOFF
    assert select_rule(rules[:1], "busybox") is None
