"""Fake-kubelet rules: which image gets which behaviour (ready, ImagePullBackOff, CrashLoopBackOff, ...).

A rule is an image glob, a behaviour and its parameters. Rules come from Python
(``make_rule("example.invalid/*", "image-pull-backoff")``), a YAML/JSON file, or a ConfigMap key
``rules.yaml``, all with the same document shape::

    rules:
      - image: "example.invalid/*"
        behaviour: image-pull-backoff
      - image: "*/crashy:*"
        behaviour: crash-loop-backoff
        exitCode: 137
        reason: OOMKilled

The first rule whose glob matches a container's image wins. Parameter names may be snake_case or
camelCase; unknown behaviours or parameters are errors that name the rule.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel


class RuleError(ValueError):
    """A rule document or rule is invalid; the message names the rule and the field."""


class Behaviour(StrEnum):
    READY = "ready"
    NOT_READY = "not-ready"
    IMAGE_PULL_BACKOFF = "image-pull-backoff"
    CRASH_LOOP_BACKOFF = "crash-loop-backoff"
    CREATE_CONTAINER_CONFIG_ERROR = "create-container-config-error"
    INVALID_IMAGE_NAME = "invalid-image-name"
    UNSCHEDULABLE = "unschedulable"
    RUN_TO_COMPLETION = "run-to-completion"
    IGNORE = "ignore"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class ReadyParams(_Params):
    delay: float = Field(0.0, ge=0, description="seconds in ContainerCreating before Running/Ready")


class NotReadyParams(_Params):
    message: str = "Readiness probe failed: HTTP probe failed with statuscode: 503"


class ImagePullBackOffParams(_Params):
    message: str | None = Field(None, description="the pull error; default: a registry 'not found'")
    backoff_after: float = Field(0.5, ge=0, description="seconds from ErrImagePull to ImagePullBackOff")


class CrashLoopBackOffParams(_Params):
    exit_code: int = 1
    reason: str = "Error"
    restart_count: int = Field(3, ge=1, description="restarts reported at once")
    restart_interval: float | None = Field(None, gt=0, description="seconds between further restarts")
    message: str | None = Field(None, description="the terminated container's termination message")


class CreateContainerConfigErrorParams(_Params):
    message: str = 'secret "app-secret" not found'


class InvalidImageNameParams(_Params):
    message: str | None = None


class UnschedulableParams(_Params):
    message: str = "0/1 nodes are available: 1 Insufficient cpu."


class RunToCompletionParams(_Params):
    exit_code: int = 0
    run_seconds: float = Field(0.5, ge=0)


class IgnoreParams(_Params):
    pass


PARAMS_BY_BEHAVIOUR: dict[Behaviour, type[_Params]] = {
    Behaviour.READY: ReadyParams,
    Behaviour.NOT_READY: NotReadyParams,
    Behaviour.IMAGE_PULL_BACKOFF: ImagePullBackOffParams,
    Behaviour.CRASH_LOOP_BACKOFF: CrashLoopBackOffParams,
    Behaviour.CREATE_CONTAINER_CONFIG_ERROR: CreateContainerConfigErrorParams,
    Behaviour.INVALID_IMAGE_NAME: InvalidImageNameParams,
    Behaviour.UNSCHEDULABLE: UnschedulableParams,
    Behaviour.RUN_TO_COMPLETION: RunToCompletionParams,
    Behaviour.IGNORE: IgnoreParams,
}

# Kubernetes' own reason names are accepted too; OOMKilled is a crash loop with the OOM defaults.
_ALIASES: dict[str, tuple[Behaviour, dict[str, Any]]] = {
    "errimagepull": (Behaviour.IMAGE_PULL_BACKOFF, {}),
    "imagepullbackoff": (Behaviour.IMAGE_PULL_BACKOFF, {}),
    "crashloopbackoff": (Behaviour.CRASH_LOOP_BACKOFF, {}),
    "oomkilled": (Behaviour.CRASH_LOOP_BACKOFF, {"exit_code": 137, "reason": "OOMKilled"}),
    "createcontainerconfigerror": (Behaviour.CREATE_CONTAINER_CONFIG_ERROR, {}),
    "invalidimagename": (Behaviour.INVALID_IMAGE_NAME, {}),
    "running": (Behaviour.READY, {}),
    "completed": (Behaviour.RUN_TO_COMPLETION, {}),
    "succeeded": (Behaviour.RUN_TO_COMPLETION, {}),
    "pending": (Behaviour.IGNORE, {}),
}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


_BY_KEY: dict[str, tuple[Behaviour, dict[str, Any]]] = {
    **{_key(b.value): (b, {}) for b in Behaviour},
    **_ALIASES,
}


@dataclass(frozen=True)
class Rule:
    image: str
    behaviour: Behaviour
    params: _Params

    def matches(self, image: str) -> bool:
        """Glob match against the image as written in the pod spec or fully qualified."""
        return fnmatch.fnmatchcase(image, self.image) or fnmatch.fnmatchcase(
            qualified_image(image), self.image
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "behaviour": self.behaviour.value,
            **self.params.model_dump(by_alias=True),
        }


def make_rule(image_glob: str, behaviour: str | Behaviour, **params: Any) -> Rule:
    """Build a validated rule, e.g. ``make_rule("bad/*", "crash-loop-backoff", exit_code=137)``."""
    if not isinstance(image_glob, str) or not image_glob:
        raise RuleError(f"image glob must be a non-empty string, got {image_glob!r}")
    entry = _BY_KEY.get(_key(str(behaviour)))
    if entry is None:
        known = ", ".join(b.value for b in Behaviour)
        raise RuleError(f"unknown behaviour {behaviour!r} for image {image_glob!r} (known: {known})")
    resolved, defaults = entry
    model = PARAMS_BY_BEHAVIOUR[resolved]
    try:
        validated = model.model_validate({**defaults, **params})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in error.errors()
        )
        raise RuleError(f"rule {image_glob!r} ({resolved.value}): {problems}") from None
    return Rule(image=image_glob, behaviour=resolved, params=validated)


def parse_rules(document: Any) -> list[Rule]:
    """Rules from a parsed document: ``{"rules": [...]}`` or a bare list (``None`` means none)."""
    if document is None:
        return []
    if isinstance(document, Mapping):
        unknown = set(document) - {"rules"}
        if unknown:
            raise RuleError(f"unknown top-level keys {sorted(unknown)}; expected only 'rules'")
        document = document.get("rules") or []
    if not isinstance(document, list):
        raise RuleError(f"rules must be a list, got {type(document).__name__}")
    rules = []
    for index, entry in enumerate(document):
        if not isinstance(entry, Mapping):
            raise RuleError(f"rules[{index}] must be a mapping, got {type(entry).__name__}")
        fields = dict(entry)
        image = fields.pop("image", None)
        behaviour = fields.pop("behaviour", fields.pop("behavior", None))
        if image is None or behaviour is None:
            raise RuleError(f"rules[{index}] needs both 'image' and 'behaviour'")
        try:
            rules.append(make_rule(image, behaviour, **fields))
        except RuleError as error:
            raise RuleError(f"rules[{index}]: {error}") from None
    return rules


def parse_rules_text(text: str, source: str = "rules") -> list[Rule]:
    """Rules from YAML or JSON text (JSON is parsed as YAML)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RuleError(f"{source}: not valid YAML/JSON: {error}") from None
    try:
        return parse_rules(document)
    except RuleError as error:
        raise RuleError(f"{source}: {error}") from None


def load_rules_file(path: Path) -> list[Rule]:
    return parse_rules_text(path.read_text(), source=str(path))


def dump_rules(rules: Iterable[Rule]) -> str:
    return json.dumps({"rules": [r.to_document() for r in rules]}, indent=2)


def qualified_image(image: str) -> str:
    """``nginx:1.25`` -> ``docker.io/library/nginx:1.25`` (what the kubelet reports in status)."""
    name, at, digest = image.partition("@")
    first, slash, _ = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}" if slash else f"docker.io/library/{name}"
    if not at and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}{at}{digest}"


def select_rule(rules: Iterable[Rule], image: str) -> Rule | None:
    return next((rule for rule in rules if rule.matches(image)), None)
