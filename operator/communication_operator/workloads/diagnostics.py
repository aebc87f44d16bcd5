"""The diagnostics texts the controller shows: upstream's lines for a release's pods and events.

Formats (octo-spec §4.11, upstream ``WorkloadDiagnosticsCollector``), one line per finding:

* ``Pod <pod> container '<name>' waiting: <Reason> — <message>`` for a waiting reason other than
  ``ContainerCreating``/``PodInitializing``;
* ``Pod <pod> container '<name>' previously terminated: exit code <n> (<reason>) — <message>`` for a
  non-zero last termination, also while the container runs again (`` (<reason>)`` only when there is
  a reason); ``initContainer`` instead of ``container`` for init containers, whose lines follow the
  regular containers' lines of the same pod;
* ``Event <Kind>/<name>: <reason> — <message>`` for each distinct Warning event of the release
  (``<unknown>`` kind, ``<no-reason>`` reason when missing), after all pod lines.

`` — <message>`` ends a line only when there is a message, on pod and event lines alike: octo-spec
is silent on an empty message, upstream omits the dash on pod lines only (decision 0002).

Ours adds ``Pod <pod> container '<name>' terminated: exit code <n> (<reason>) — <message>`` for a
container that has stopped with a non-zero exit and is not restarted (a Job's pod), which upstream
leaves out (docs/decisions/0002-differences-from-upstream.md).

Every text from the cluster is redacted of the deploy's secrets *before* its whitespace is collapsed
(which keeps one finding on one line), before lines are joined and before anything is cut; the
collapsed text is redacted again (a secret written with other whitespace becomes literal only then),
and so is the joined and the bounded text. :func:`redact_api_object` applies the same to pod and
event objects as they arrive, so the fail-fast classification never sees a secret either.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from communication_operator.redaction import redact, truncate_middle
from communication_operator.workloads.signals.events import event_concerns_release, event_time
from communication_operator.workloads.signals.fields import get_path
from communication_operator.workloads.signals.pods import BENIGN_WAITING_REASONS
from communication_operator.workloads.signals.text import clean_text

DIAGNOSTICS_HEADER = "\n\nPod diagnostics:\n"
CONTAINER_WAITING = "Pod {pod} {kind} '{name}' waiting: {reason}"
CONTAINER_PREVIOUSLY_TERMINATED = "Pod {pod} {kind} '{name}' previously terminated: exit code {exit_code}"
CONTAINER_TERMINATED = "Pod {pod} {kind} '{name}' terminated: exit code {exit_code}"
TERMINATION_REASON = " ({reason})"
WITH_MESSAGE = " — {message}"
WARNING_EVENT = "Event {kind}/{name}: {reason}"
CONTAINER = "container"
INIT_CONTAINER = "initContainer"
UNKNOWN = "<unknown>"
NO_REASON = "<no-reason>"
MORE_LINES = "... and {count} more"
FAIL_FAST = (
    "helm upgrade --install {release} stopped early (fail-fast) instead of waiting up to "
    "{timeout_seconds:g} s: {causes}"
)
FAIL_FAST_NO_CAUSE = "a fatal failure signal"

#: Keys of pod and event objects whose values are free text (messages) or may quote it (reasons).
_TEXT_KEYS = frozenset({"message", "note", "reason"})


def redact_api_object(obj: Mapping[str, Any], secrets: Iterable[str]) -> dict[str, Any]:
    """A copy of a pod or event whose messages and reasons are redacted one-line texts."""
    secret_list = [s for s in secrets if s]
    return _redact_value(obj, secret_list, None)  # type: ignore[no-any-return]


def pod_lines(pod: Mapping[str, Any], secrets: Iterable[str] = (), *, redacted: bool = False) -> list[str]:
    """The lines for one pod: its regular containers, then its init containers, in status order.

    ``redacted``: the pod comes from :func:`redact_api_object` (its texts are used as they are).
    """
    text = _cleaner(secrets, redacted)
    pod_name = text(get_path(pod, "metadata", "name")) or UNKNOWN
    deleting = get_path(pod, "metadata", "deletionTimestamp") is not None
    lines: list[str] = []
    for kind, key in ((CONTAINER, "containerStatuses"), (INIT_CONTAINER, "initContainerStatuses")):
        statuses = get_path(pod, "status", key)
        for status in statuses if isinstance(statuses, list) else []:
            if isinstance(status, Mapping):
                lines += _container_lines(pod_name, kind, status, text, deleting=deleting)
    return lines


def event_line(
    event: Mapping[str, Any], secrets: Iterable[str] = (), *, redacted: bool = False
) -> str | None:
    """The line for a Warning event, or ``None`` (not a Warning, or no involved-object name)."""
    if event.get("type") != "Warning":
        return None
    involved = _map(event.get("involvedObject") or event.get("regarding"))
    text = _cleaner(secrets, redacted)
    name = text(involved.get("name"))
    if not name:
        return None
    line = WARNING_EVENT.format(
        kind=text(involved.get("kind")) or UNKNOWN, name=name, reason=text(event.get("reason")) or NO_REASON
    )
    message = text(event.get("message") or event.get("note"))
    return (line + WITH_MESSAGE.format(message=message) if message else line).rstrip()


def diagnostic_lines(
    pods: Iterable[Mapping[str, Any]] | None,
    events: Iterable[Mapping[str, Any]] | None,
    *,
    release: str,
    since: datetime | None = None,
    secrets: Iterable[str] = (),
    known_pods: Collection[str] = (),
    redacted: bool = False,
) -> list[str]:
    """All findings: pod lines (pods by name), then the release's distinct Warning event lines.

    ``None`` for a part whose query failed leaves that part out. Events about other releases'
    objects, and events last seen before ``since`` (the deploy's start), are left out. ``redacted``:
    the objects come from :func:`redact_api_object`; their texts are used as they are (the caller
    redacts the joined lines before bounding them, :func:`fit_lines`).
    """
    secret_list = list(secrets)
    lines: list[str] = []
    pod_list = sorted(pods or (), key=lambda pod: str(get_path(pod, "metadata", "name") or ""))
    for pod in pod_list:
        lines += pod_lines(pod, secret_list, redacted=redacted)
    pod_names = {str(get_path(pod, "metadata", "name") or "") for pod in pod_list} | set(known_pods)
    relevant = []
    for event in events or ():
        if not event_concerns_release(event, release, pod_names):
            continue
        observed = event_time(event)
        if since is not None and observed is not None and observed < since:
            continue
        relevant.append(event)
    seen: set[str] = set()
    for event in sorted(relevant, key=_event_order):
        line = event_line(event, secret_list, redacted=redacted)
        if line is not None and line not in seen:
            seen.add(line)
            lines.append(line)
    return lines


def fit_lines(lines: Sequence[str], limit: int, secrets: Iterable[str] = ()) -> str:
    """``lines`` joined, at most ``limit`` characters: whole lines, then ``... and N more``.

    The lines are redacted together (a secret spanning two lines included) before anything is cut;
    the result is redacted once more, so not even a secret containing the marker's text can appear.
    """
    secret_list = list(secrets)
    if not lines or limit <= 0:
        return ""
    lines = redact("\n".join(lines), secret_list).split("\n")
    if not lines or limit <= 0:
        return ""
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        remaining_after = len(lines) - index - 1
        reserve = len("\n" + MORE_LINES.format(count=remaining_after)) if remaining_after else 0
        needed = len(line) + (1 if kept else 0)
        if used + needed + reserve > limit:
            break
        kept.append(line)
        used += needed
    if not kept:
        tail = "\n" + MORE_LINES.format(count=len(lines) - 1) if len(lines) > 1 else ""
        first = truncate_middle(lines[0], max(limit - len(tail), 0), separator=" ")
        text = (first + tail)[:limit]
    else:
        omitted = len(lines) - len(kept)
        text = "\n".join(kept) + ("\n" + MORE_LINES.format(count=omitted) if omitted else "")
    return redact(text, secret_list)


def with_diagnostics(head: str, snapshot: str, *, limit: int, secrets: Iterable[str] = ()) -> str:
    """``head`` (helm's error or our fail-fast line), then ``Pod diagnostics:`` and the snapshot's lines.

    With no findings the text is ``head`` alone. At most ``limit`` characters: the diagnostics get
    at least half of the room (whole lines and ``... and N more``); a longer head is cut in its
    middle. Everything is redacted before it is joined or cut.
    """
    secret_list = list(secrets)
    head = redact(head, secret_list)
    lines = [line for line in redact(snapshot, secret_list).split("\n") if line.strip()]
    room = limit - len(DIAGNOSTICS_HEADER)
    if not lines or room < 2:
        return redact(truncate_middle(head, limit), secret_list)
    body_length = len("\n".join(lines))
    head_room = max(room - body_length, room // 2)
    if len(head) > head_room:
        head = truncate_middle(head, head_room)
    body = fit_lines(lines, room - len(head), secret_list)
    return redact(head + DIAGNOSTICS_HEADER + body, secret_list)


def fail_fast_head(release: str, causes: Sequence[str], timeout_seconds: float) -> str:
    """Our classification's first line of a deploy stopped early (the causes already redacted)."""
    return FAIL_FAST.format(
        release=release, timeout_seconds=timeout_seconds, causes="; ".join(causes) or FAIL_FAST_NO_CAUSE
    )


# ---------------------------------------------------------------------------------------------


_Text = Callable[[Any], str]


def _cleaner(secrets: Iterable[str], redacted: bool) -> _Text:
    if redacted:
        return lambda value: value.rstrip() if isinstance(value, str) else ""
    secret_list = list(secrets)
    return lambda value: clean_text(value, secret_list)


def _container_lines(
    pod: str, kind: str, status: Mapping[str, Any], text: _Text, *, deleting: bool
) -> list[str]:
    name = text(status.get("name")) or UNKNOWN
    state = _map(status.get("state"))
    lines = []
    waiting = _map(state.get("waiting"))
    reason = text(waiting.get("reason"))
    if reason and reason not in BENIGN_WAITING_REASONS:
        line = CONTAINER_WAITING.format(pod=pod, kind=kind, name=name, reason=reason)
        lines.append(line + _message_suffix(waiting, text))
    last = _map(_map(status.get("lastState")).get("terminated"))
    if _exit_code(last):
        template = CONTAINER_PREVIOUSLY_TERMINATED
        lines.append(_terminated_line(template, pod, kind, name, last, text))
    current = _map(state.get("terminated"))
    if _exit_code(current) and not deleting:
        # A pod being deleted (an old replica, a rollback) is stopped on purpose; its exit says nothing.
        lines.append(_terminated_line(CONTAINER_TERMINATED, pod, kind, name, current, text))
    return [line.rstrip() for line in lines]


def _terminated_line(
    template: str, pod: str, kind: str, name: str, terminated: Mapping[str, Any], text: _Text
) -> str:
    line = template.format(pod=pod, kind=kind, name=name, exit_code=_exit_code(terminated))
    reason = text(terminated.get("reason"))
    if reason:
        line += TERMINATION_REASON.format(reason=reason)
    return line + _message_suffix(terminated, text)


def _message_suffix(state: Mapping[str, Any], text: _Text) -> str:
    message = text(state.get("message"))
    return WITH_MESSAGE.format(message=message) if message else ""


def _exit_code(terminated: Mapping[str, Any]) -> int:
    code = terminated.get("exitCode")
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


def _event_order(event: Mapping[str, Any]) -> tuple[str, str]:
    """First occurrence, then name: a stable order that does not move when an event repeats."""
    metadata = _map(event.get("metadata"))
    first = event.get("firstTimestamp") or event.get("eventTime") or metadata.get("creationTimestamp")
    return (first if isinstance(first, str) else "", str(metadata.get("name") or ""))


def _redact_value(value: Any, secrets: list[str], key: str | None) -> Any:
    if isinstance(value, Mapping):
        return {k: _redact_value(v, secrets, k) for k, v in value.items() if k != "managedFields"}
    if isinstance(value, list):
        return [_redact_value(item, secrets, key) for item in value]
    if isinstance(value, str) and key in _TEXT_KEYS:
        return clean_text(value, secrets)
    return value


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
