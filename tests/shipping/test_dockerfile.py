"""Static checks of the Dockerfile (Docker is not available on CI machines; scripts/check-image.sh
checks a built image where it is)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
WRITABLE_DIR = "/tmp/operator"
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "curl", "wget", "git", "python3-dev")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args_of(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.args_of("ENV"):
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                values[key] = value
        return values


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comments inside a continued RUN
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(
                r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE
            )
            assert match, f"cannot parse FROM {args!r}"
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        elif not stages:
            if keyword == "ARG":
                key, _, value = args.partition("=")
                global_args[key.strip()] = value.strip()
        else:
            stages[-1].instructions.append((keyword, args.strip()))
    return global_args, stages


def resolve(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), value)


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_parser_understands_continuations_and_stages() -> None:
    # The checks below are only as good as the parser; pin its behaviour on a small sample.
    global_args, stages = parse_dockerfile(
        "ARG BASE=python:3.11-slim\nFROM ${BASE} AS b\n# c\n"
        "RUN a \\\n  # inner\n  && b\nFROM ${BASE}\nUSER 1:1\n"
    )
    assert global_args == {"BASE": "python:3.11-slim"}
    assert [(s.base, s.name) for s in stages] == [("${BASE}", "b"), ("${BASE}", None)]
    assert stages[0].args_of("RUN") == ["a  && b"]
    assert stages[1].args_of("USER") == ["1:1"]


def test_multi_stage_with_slim_python_bases(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    global_args, stages = dockerfile
    assert len(stages) >= 2, "the image must be built in a builder stage and copied into a final stage"
    for stage in stages:
        base = resolve(stage.base, global_args)
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base), f"stage {stage.name}: base {base} is not slim"


def test_final_stage_copies_the_venv_from_the_builder(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = dockerfile
    builder, final = stages[0], stages[-1]
    copies = final.args_of("COPY")
    assert any(c.startswith(f"--from={builder.name} ") and "/opt/venv" in c for c in copies), copies
    # The wheel is built from the project and installed into that venv in the builder.
    builder_runs = " ".join(builder.args_of("RUN"))
    assert "pip wheel" in builder_runs
    assert "python -m venv /opt/venv" in builder_runs
    assert final.env().get("PATH", "").startswith("/opt/venv/bin:")


def test_final_stage_runs_as_numeric_non_root_user(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    final = dockerfile[1][-1]
    users = final.args_of("USER")
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    # Numeric, so the kubelet can enforce runAsNonRoot without resolving names.
    assert uid.isdigit(), users[-1]
    assert int(uid) != 0, users[-1]
    assert gid == "" or gid.isdigit(), users[-1]
    assert gid != "0", users[-1]
    assert uid == "65532", "the chart's podSecurityContext.runAsUser expects 65532"


def test_tini_is_the_entrypoint_and_run_the_default_command(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    final = dockerfile[1][-1]
    assert final.args_of("ENTRYPOINT")[-1] == '["tini", "--", "communication-operator"]'
    assert final.args_of("CMD")[-1] == '["run"]'
    assert any("/usr/bin/tini" in c for c in final.args_of("COPY")), "tini is not copied into the final stage"


def test_helm_is_pinned_by_version_and_sha256(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    builder = dockerfile[1][0]
    args = dict(a.partition("=")[::2] for a in builder.args_of("ARG"))
    assert re.fullmatch(r"v\d+\.\d+\.\d+", args.get("HELM_VERSION", "")), (
        "HELM_VERSION must be an exact version"
    )
    for arch in ("AMD64", "ARM64"):
        assert re.fullmatch(r"[0-9a-f]{64}", args.get(f"HELM_SHA256_{arch}", "")), (
            f"HELM_SHA256_{arch} unpinned"
        )
    download = next(r for r in builder.args_of("RUN") if "get.helm.sh" in r)
    assert "helm-${HELM_VERSION}-linux-${TARGETARCH}.tar.gz" in download
    assert "sha256sum -c" in download
    # The check runs before the archive is unpacked.
    assert download.index("sha256sum -c") < download.index("tar -xzf")
    final = dockerfile[1][-1]
    assert any(c.startswith("--from=") and "/usr/local/bin/helm" in c for c in final.args_of("COPY"))


def test_no_build_tools_installed_in_the_final_stage(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    final = dockerfile[1][-1]
    for run in final.args_of("RUN"):
        assert "apt-get install" not in run, f"final stage installs packages: {run}"
        assert "pip install" not in run, f"final stage installs packages: {run}"
        for tool in BUILD_TOOLS:
            assert not re.search(rf"(^|\s){re.escape(tool)}(\s|$)", run), (
                f"final stage mentions {tool}: {run}"
            )


def test_writable_paths_live_under_the_emptydir(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    env = dockerfile[1][-1].env()
    for key in ("HOME", "TMPDIR", "HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        assert env.get(key, "").startswith(WRITABLE_DIR), f"{key}={env.get(key)} is not under {WRITABLE_DIR}"
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1", "a read-only root cannot take __pycache__ writes"
    chart_values = (ROOT / "charts/communication-operator/templates/deployment.yaml").read_text()
    assert f"mountPath: {WRITABLE_DIR}" in chart_values, (
        "the chart must mount an emptyDir at the writable dir"
    )


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "**/node_modules", "**/__pycache__"} <= ignored


def test_check_image_script_is_executable_and_checks_the_promised_properties() -> None:
    script = ROOT / "scripts/check-image.sh"
    assert script.stat().st_mode & 0o111, "scripts/check-image.sh must be executable"
    text = script.read_text()
    for needle in ("--read-only", "--tmpfs /tmp/operator", "helm", "tini", "id", "docker"):
        assert needle in text, f"check-image.sh does not check {needle!r}"


def test_the_image_ships_helm_4_as_upstream_does(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    args = dict(a.partition("=")[::2] for a in dockerfile[1][0].args_of("ARG"))
    assert args["HELM_VERSION"].startswith("v4."), args["HELM_VERSION"]
