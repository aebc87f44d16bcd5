"""Classifying pods and events, the fail-fast policy, the live signal set and the progress text."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import pytest

from communication_operator.workloads.diagnostics import fit_lines
from communication_operator.workloads.signals.events import (
    classify_event,
    event_concerns_release,
    event_count,
    event_time,
    pull_failure_from_event,
)
from communication_operator.workloads.signals.model import Signal, SignalKind, sort_key
from communication_operator.workloads.signals.pods import classify_pod
from communication_operator.workloads.signals.policy import FailFastPolicy, is_fatal
from communication_operator.workloads.signals.signalset import SignalSet
from communication_operator.workloads.signals.text import describe

from .kube_objects import POD, RELEASE, REPLICASET, T0, T1, T2, container, event, pod, ready_conditions

K = SignalKind
NOT_FOUND = (
    'rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/nope:1": '
    'failed to resolve reference "docker.io/library/nope:1": docker.io/library/nope:1: not found'
)
BACK_OFF = 'Back-off pulling image "nope:1"'
UNSCHEDULABLE = (
    "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
    "3 No preemption victims found for incoming pod."
)
CRASH = f"back-off 40s restarting failed container=web pod={POD}_octo(uid-{POD})"
QUOTA = (
    f'Error creating: pods "{REPLICASET}-" is forbidden: exceeded quota: compute-resources, '
    "requested: limits.cpu=2, used: limits.cpu=0, limited: limits.cpu=1"
)


def pull_backoff_pod(**kwargs: Any) -> dict[str, Any]:
    return pod(containers=[container(image="nope:1", waiting=("ImagePullBackOff", BACK_OFF))], **kwargs)


def err_pull_pod() -> dict[str, Any]:
    return pod(containers=[container(image="nope:1", waiting=("ErrImagePull", NOT_FOUND))])


def crash_pod(restarts: int, *, code: int = 137, reason: str = "OOMKilled") -> dict[str, Any]:
    return pod(
        phase="Running",
        containers=[
            container(restarts=restarts, waiting=("CrashLoopBackOff", CRASH), last_terminated=(code, reason))
        ],
    )


def running_pod(*, ready: bool, restarts: int = 0, last: tuple[int, str] | None = None) -> dict[str, Any]:
    return pod(
        phase="Running",
        containers=[container(ready=ready, running=True, restarts=restarts, last_terminated=last)],
        conditions=ready_conditions() if ready else None,
    )


def unschedulable_pod() -> dict[str, Any]:
    return pod(
        node=None,
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": UNSCHEDULABLE,
                "lastTransitionTime": T0,
            }
        ],
    )


def creating_pod() -> dict[str, Any]:
    return pod(containers=[container(waiting=("ContainerCreating", ""))])


def summary(signals: list[Signal]) -> list[tuple[Any, ...]]:
    return [(s.kind, s.reason, s.container, s.init_container) for s in signals]


# --- pods -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            pull_backoff_pod(), [(K.IMAGE_PULL_BACK_OFF, "ImagePullBackOff", "web", False)], id="backoff"
        ),
        pytest.param(err_pull_pod(), [(K.ERR_IMAGE_PULL, "ErrImagePull", "web", False)], id="errimagepull"),
        pytest.param(
            pod(
                containers=[
                    container(
                        image="Nope::1",
                        waiting=(
                            "InvalidImageName",
                            'Failed to apply default image tag "Nope::1": '
                            'couldn\'t parse image name "Nope::1": '
                            "invalid reference format",
                        ),
                    )
                ]
            ),
            [(K.INVALID_IMAGE_NAME, "InvalidImageName", "web", False)],
            id="invalid-image-name",
        ),
        pytest.param(
            crash_pod(4), [(K.CRASH_LOOP_BACK_OFF, "CrashLoopBackOff", "web", False)], id="crashloop"
        ),
        pytest.param(
            pod(
                containers=[
                    container(waiting=("CreateContainerConfigError", 'secret "web-secret" not found'))
                ]
            ),
            [(K.CREATE_CONTAINER_CONFIG_ERROR, "CreateContainerConfigError", "web", False)],
            id="config-error",
        ),
        pytest.param(
            pod(
                containers=[
                    container(
                        waiting=(
                            "CreateContainerError",
                            'failed to generate container "6c1d" spec: failed to generate spec: '
                            'path "/data" is mounted '
                            'on "/" but it is not a shared mount',
                        )
                    )
                ]
            ),
            [(K.CREATE_CONTAINER_ERROR, "CreateContainerError", "web", False)],
            id="create-error",
        ),
        pytest.param(
            pod(
                phase="Running",
                containers=[
                    container(
                        restarts=1,
                        waiting=(
                            "RunContainerError",
                            "failed to create containerd task: failed to create shim task: "
                            "OCI runtime create failed: runc create failed: "
                            "unable to start container process: "
                            'exec: "/bin/nope": stat /bin/nope: '
                            "no such file or directory: unknown",
                        ),
                        last_terminated=(128, "StartError"),
                    )
                ],
            ),
            [(K.RUN_CONTAINER_ERROR, "RunContainerError", "web", False)],
            id="run-error",
        ),
        pytest.param(
            pod(
                containers=[container(waiting=("PodInitializing", ""))],
                init_containers=[
                    container(
                        "migrate",
                        restarts=3,
                        waiting=(
                            "CrashLoopBackOff",
                            f"back-off 40s restarting failed container=migrate pod={POD}",
                        ),
                        last_terminated=(1, "Error"),
                    )
                ],
            ),
            [(K.CRASH_LOOP_BACK_OFF, "CrashLoopBackOff", "migrate", True)],
            id="init-crashloop",
        ),
        pytest.param(
            pod(
                containers=[container(waiting=("PodInitializing", ""))],
                init_containers=[
                    container("fetch", waiting=("ImagePullBackOff", 'Back-off pulling image "f:1"'))
                ],
            ),
            [(K.IMAGE_PULL_BACK_OFF, "ImagePullBackOff", "fetch", True)],
            id="init-pull",
        ),
        pytest.param(
            unschedulable_pod(), [(K.UNSCHEDULABLE, "Unschedulable", None, False)], id="unschedulable"
        ),
        pytest.param(
            pod(
                phase="Failed",
                reason="Evicted",
                message="The node was low on resource: memory. "
                "Threshold quantity: 100Mi, available: 51200Ki. "
                "Container web was using 300Mi, request is 0, has larger consumption of memory.",
                containers=[container(terminated=(137, "ContainerStatusUnknown"))],
            ),
            [(K.EVICTED, "Evicted", None, False)],
            id="evicted",
        ),
        pytest.param(
            pod(
                phase="Failed",
                reason="OutOfcpu",
                node="node-1",
                containers=[],
                message="Pod Node didn't have enough resource: cpu, "
                "requested: 4000, used: 100, capacity: 2000",
            ),
            [(K.POD_FAILED, "OutOfcpu", None, False)],
            id="kubelet-admission",
        ),
        pytest.param(
            pod(phase="Failed", containers=[container(terminated=(1, "Error"), message="panic: boom")]),
            [(K.CONTAINER_FAILED, "Error", "web", False)],
            id="job-pod-failed",
        ),
        pytest.param(
            pod(
                containers=[
                    container(
                        waiting=(
                            "ErrImageNeverPull",
                            'Container image "web:1" is not present with pull policy of Never',
                        )
                    )
                ]
            ),
            [(K.CONTAINER_WAITING, "ErrImageNeverPull", "web", False)],
            id="other-waiting-reason",
        ),
        pytest.param(creating_pod(), [], id="creating"),
        pytest.param(running_pod(ready=True), [], id="ready"),
        pytest.param(
            running_pod(ready=False, restarts=2, last=(1, "Error")), [], id="running-between-crashes"
        ),
        pytest.param(
            pod(phase="Succeeded", containers=[container(terminated=(0, "Completed"))]), [], id="completed"
        ),
        pytest.param(
            pod(phase="Running", deleting=True, containers=[container(terminated=(143, "Error"))]),
            [],
            id="terminating",
        ),
        pytest.param({"metadata": {"name": "x"}}, [], id="no-status"),
        pytest.param(
            {"metadata": {"name": "x"}, "status": {"containerStatuses": "garbage"}}, [], id="malformed"
        ),
    ],
)
def test_classify_pod(obj: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    assert summary(classify_pod(obj)) == expected


def test_crash_loop_carries_exit_code_reason_and_restarts() -> None:
    [signal] = classify_pod(crash_pod(4))
    assert (signal.exit_code, signal.termination_reason, signal.restart_count) == (137, "OOMKilled", 4)
    assert signal.pod == POD
    assert signal.message == CRASH


def test_messages_are_flattened_to_one_line() -> None:
    [signal] = classify_pod(
        pod(containers=[container(waiting=("CreateContainerError", "line one\n  line two"))])
    )
    assert signal.message == "line one line two"


# --- events -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            event(
                reason="FailedScheduling",
                message=UNSCHEDULABLE,
                component="default-scheduler",
                count=3,
                new_style=True,
            ),
            (K.UNSCHEDULABLE, "Pod", POD, None, False, 3),
            id="failed-scheduling",
        ),
        pytest.param(
            event(
                reason="FailedMount",
                count=4,
                message='MountVolume.SetUp failed for volume "config" : configmap "web-config" not found',
            ),
            (K.VOLUME_FAILURE, "Pod", POD, None, False, 4),
            id="failed-mount",
        ),
        pytest.param(
            event(
                reason="FailedAttachVolume",
                component="attachdetach-controller",
                message='AttachVolume.Attach failed for volume "pvc-0c1e" : '
                "rpc error: code = Internal desc = "
                "volume attachment limit exceeded",
            ),
            (K.VOLUME_FAILURE, "Pod", POD, None, False, 1),
            id="failed-attach",
        ),
        pytest.param(
            event(
                reason="FailedCreate",
                kind="ReplicaSet",
                name=REPLICASET,
                component="replicaset-controller",
                count=7,
                message=QUOTA,
            ),
            (K.ADMISSION_REFUSED, "ReplicaSet", REPLICASET, None, False, 7),
            id="quota-replicaset",
        ),
        pytest.param(
            event(
                reason="FailedCreate",
                kind="Job",
                name=f"{RELEASE}-migrate",
                component="job-controller",
                message=f'Error creating: pods "{RELEASE}-migrate-7xk2p" is forbidden: violates PodSecurity '
                '"restricted:latest": allowPrivilegeEscalation != false (container "migrate" must set '
                "securityContext.allowPrivilegeEscalation=false)",
            ),
            (K.ADMISSION_REFUSED, "Job", f"{RELEASE}-migrate", None, False, 1),
            id="podsecurity-job",
        ),
        pytest.param(
            event(
                reason="FailedCreate",
                kind="StatefulSet",
                name=f"{RELEASE}-db",
                component="statefulset-controller",
                message=f"create Pod {RELEASE}-db-0 in StatefulSet {RELEASE}-db failed error: pods "
                f'"{RELEASE}-db-0" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=10, '
                "limited: pods=10",
            ),
            (K.ADMISSION_REFUSED, "StatefulSet", f"{RELEASE}-db", None, False, 1),
            id="quota-statefulset",
        ),
        pytest.param(
            event(
                reason="Unhealthy",
                field_path="spec.containers{web}",
                count=12,
                message="Readiness probe failed: HTTP probe failed with statuscode: 503",
            ),
            (K.PROBE_FAILED, "Pod", POD, "web", False, 12),
            id="probe",
        ),
        pytest.param(
            event(
                reason="FailedCreatePodSandBox",
                message="Failed to create pod sandbox: rpc error: code = Unknown desc = "
                "failed to setup network",
            ),
            (K.WARNING, "Pod", POD, None, False, 1),
            id="other-warning",
        ),
        pytest.param(
            event(
                reason="BackoffLimitExceeded",
                kind="Job",
                name=f"{RELEASE}-migrate",
                component="job-controller",
                message="Job has reached the specified backoff limit",
            ),
            (K.WARNING, "Job", f"{RELEASE}-migrate", None, False, 1),
            id="job-failed",
        ),
    ],
)
def test_classify_event(obj: dict[str, Any], expected: tuple[Any, ...]) -> None:
    signal = classify_event(obj)
    assert signal is not None
    assert (
        signal.kind,
        signal.object_kind,
        signal.object_name,
        signal.container,
        signal.init_container,
        signal.occurrences,
    ) == expected
    assert signal.message == obj["message"]


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(
            event(
                reason="Failed",
                field_path="spec.containers{web}",
                message=f'Failed to pull image "nope:1": {NOT_FOUND}',
            ),
            id="pull-failed-echo",
        ),
        pytest.param(
            event(reason="Failed", field_path="spec.containers{web}", message="Error: ErrImagePull"),
            id="error-echo",
        ),
        pytest.param(
            event(reason="BackOff", field_path="spec.containers{web}", message=BACK_OFF), id="backoff-echo"
        ),
        pytest.param(
            event(
                reason="BackOff",
                field_path="spec.containers{web}",
                message=f"Back-off restarting failed container web in pod {POD}",
            ),
            id="crash-echo",
        ),
        pytest.param(
            event(reason="Scheduled", event_type="Normal", message="Successfully assigned octo/x to n"),
            id="normal",
        ),
        pytest.param({"type": "Warning", "reason": "X"}, id="no-object"),
    ],
)
def test_events_that_give_no_signal(obj: dict[str, Any]) -> None:
    assert classify_event(obj) is None


def test_init_container_events_name_the_init_container() -> None:
    signal = classify_event(event(reason="Unhealthy", field_path="spec.initContainers{migrate}", message="x"))
    assert signal is not None
    assert (signal.container, signal.init_container) == ("migrate", True)


def test_pull_failure_event_gives_count_and_message() -> None:
    obj = event(
        reason="Failed",
        field_path="spec.containers{web}",
        count=5,
        message=f'Failed to pull image "nope:1": {NOT_FOUND}',
    )
    assert pull_failure_from_event(obj) == (POD, "web", False, 5, obj["message"])
    assert pull_failure_from_event(event(reason="Failed", message="Error: ErrImagePull")) is None


@pytest.mark.parametrize(
    ("obj", "count", "time"),
    [
        (event(reason="X", message="m", count=4, last=T1), 4, T1),
        (event(reason="X", message="m", count=6, last=T2, new_style=True), 6, T2),
        (event(reason="X", message="m", new_style=True), 1, T0),
    ],
)
def test_event_count_and_time(obj: dict[str, Any], count: int, time: str) -> None:
    assert event_count(obj) == count
    assert event_time(obj) == datetime.fromisoformat(time)


@pytest.mark.parametrize(
    ("name", "known", "concerns"),
    [
        (RELEASE, (), True),
        (POD, (), True),
        (f"{RELEASE}x-1", (), False),
        ("other-pod", ("other-pod",), True),
        ("other-pod", (), False),
    ],
)
def test_event_concerns_release(name: str, known: tuple[str, ...], concerns: bool) -> None:
    assert event_concerns_release(event(reason="X", message="m", name=name), RELEASE, known) is concerns


# --- policy -----------------------------------------------------------------------------------


def sig(kind: SignalKind, message: str = "", **fields: Any) -> Signal:
    return Signal(kind, "Pod", POD, kind.value, message, container="web", **fields)


@pytest.mark.parametrize(
    ("signal", "persisted", "fatal"),
    [
        (sig(K.INVALID_IMAGE_NAME), 0, True),
        (sig(K.IMAGE_PULL_BACK_OFF, BACK_OFF), 10, False),
        (sig(K.IMAGE_PULL_BACK_OFF, BACK_OFF), 119, False),
        (sig(K.IMAGE_PULL_BACK_OFF, BACK_OFF), 120, True),
        (sig(K.IMAGE_PULL_BACK_OFF, BACK_OFF, occurrences=3), 10, False),
        (sig(K.IMAGE_PULL_BACK_OFF, BACK_OFF, occurrences=4), 10, True),
        (sig(K.ERR_IMAGE_PULL, NOT_FOUND), 19, False),
        (sig(K.ERR_IMAGE_PULL, NOT_FOUND), 20, True),
        (
            sig(K.IMAGE_PULL_BACK_OFF, BACK_OFF, detail="pull access denied, repository does not exist"),
            20,
            True,
        ),
        (sig(K.ERR_IMAGE_PULL, "unauthorized: authentication required"), 25, True),
        (sig(K.ERR_IMAGE_PULL, "toomanyrequests: rate limit"), 25, False),
        (sig(K.CRASH_LOOP_BACK_OFF, restart_count=2), 1000, False),
        (sig(K.CRASH_LOOP_BACK_OFF, restart_count=3), 0, True),
        (sig(K.CREATE_CONTAINER_CONFIG_ERROR, 'secret "x" not found'), 59, False),
        (sig(K.CREATE_CONTAINER_CONFIG_ERROR, 'secret "x" not found'), 60, True),
        (sig(K.RUN_CONTAINER_ERROR), 60, True),
        (sig(K.CONTAINER_WAITING), 60, True),
        (sig(K.UNSCHEDULABLE), 119, False),
        (sig(K.UNSCHEDULABLE), 120, True),
        (sig(K.VOLUME_FAILURE), 120, True),
        (sig(K.ADMISSION_REFUSED), 60, True),
        (sig(K.EVICTED), 10_000, False),
        (sig(K.POD_FAILED), 10_000, False),
        (sig(K.CONTAINER_FAILED, exit_code=1), 10_000, False),
        (sig(K.PROBE_FAILED), 10_000, False),
        (sig(K.WARNING), 10_000, False),
    ],
)
def test_default_policy(signal: Signal, persisted: float, fatal: bool) -> None:
    assert is_fatal(signal, persisted, FailFastPolicy()) is fatal


@pytest.mark.parametrize(
    ("policy", "signal", "persisted", "fatal"),
    [
        (FailFastPolicy(enabled=False), sig(K.INVALID_IMAGE_NAME), 0, False),
        (FailFastPolicy(enabled=False), sig(K.CRASH_LOOP_BACK_OFF, restart_count=99), 0, False),
        (FailFastPolicy(unschedulable_grace_seconds=None), sig(K.UNSCHEDULABLE), 10_000, False),
        (
            FailFastPolicy(crash_loop_restarts=None, crash_loop_grace_seconds=30),
            sig(K.CRASH_LOOP_BACK_OFF),
            30,
            True,
        ),
        (FailFastPolicy(image_pull_failures=None), sig(K.IMAGE_PULL_BACK_OFF, occurrences=99), 10, False),
        (FailFastPolicy(hard_image_pull_grace_seconds=None), sig(K.ERR_IMAGE_PULL, NOT_FOUND), 60, False),
        (FailFastPolicy(image_pull_grace_seconds=5), sig(K.ERR_IMAGE_PULL, NOT_FOUND), 5, True),
    ],
)
def test_configured_policy(policy: FailFastPolicy, signal: Signal, persisted: float, fatal: bool) -> None:
    assert is_fatal(signal, persisted, policy) is fatal


# --- the live set -----------------------------------------------------------------------------


def test_set_reports_changes_only() -> None:
    signals = SignalSet()
    assert signals.observe_pod(creating_pod(), 0) is False
    assert signals.observe_pod(pull_backoff_pod(), 1) is True
    assert signals.observe_pod(pull_backoff_pod(), 2) is False
    assert summary(list(signals.signals(2))) == [(K.IMAGE_PULL_BACK_OFF, "ImagePullBackOff", "web", False)]


def test_ready_pod_clears_its_signals_and_events() -> None:
    signals = SignalSet()
    signals.observe_pod(creating_pod(), 0)
    signals.observe_event(
        event(reason="Unhealthy", field_path="spec.containers{web}", message="probe failed"), 1
    )
    signals.observe_pod(pull_backoff_pod(), 1)
    assert len(signals.signals(1)) == 2
    assert signals.observe_pod(running_pod(ready=True), 2) is True
    assert signals.signals(2) == ()


def test_deleted_pod_clears_its_signals_and_events() -> None:
    signals = SignalSet()
    signals.observe_pod(pull_backoff_pod(), 0)
    signals.observe_event(event(reason="FailedMount", message="MountVolume.SetUp failed"), 0)
    assert signals.forget_pod(POD, 1) is True
    assert signals.signals(1) == ()
    assert signals.forget_pod(POD, 2) is False


def test_scheduling_event_and_condition_are_one_signal_and_clear_once_scheduled() -> None:
    signals = SignalSet()
    signals.observe_pod(unschedulable_pod(), 0)
    assert (
        signals.observe_event(
            event(
                reason="FailedScheduling",
                message=UNSCHEDULABLE,
                component="default-scheduler",
                new_style=True,
            ),
            1,
        )
        is False
    )
    assert [s.kind for s in signals.signals(1)] == [K.UNSCHEDULABLE]
    assert signals.observe_pod(creating_pod(), 2) is True
    assert signals.signals(2) == ()


def test_scheduling_event_before_the_pod_is_seen_is_shown() -> None:
    signals = SignalSet()
    assert (
        signals.observe_event(event(reason="FailedScheduling", message=UNSCHEDULABLE, new_style=True), 0)
        is True
    )
    assert [s.kind for s in signals.signals(0)] == [K.UNSCHEDULABLE]


def test_mount_failure_clears_when_containers_start() -> None:
    signals = SignalSet()
    signals.observe_pod(creating_pod(), 0)
    signals.observe_event(event(reason="FailedMount", message='configmap "web-config" not found'), 1)
    assert [s.kind for s in signals.signals(1)] == [K.VOLUME_FAILURE]
    assert signals.observe_pod(running_pod(ready=False), 2) is True
    assert signals.signals(2) == ()


def test_failed_create_clears_only_when_the_owner_creates_a_pod_afterwards() -> None:
    refusal = event(reason="FailedCreate", kind="ReplicaSet", name=REPLICASET, message=QUOTA, last=T1)
    signals = SignalSet()
    signals.observe_event(refusal, 0)
    signals.observe_pod(creating_pod(), 1)  # created at T0, before the refusal: some replicas still refused
    assert [s.kind for s in signals.signals(1)] == [K.ADMISSION_REFUSED]
    assert signals.observe_pod(pod(name=f"{REPLICASET}-b", created=T2, containers=[]), 2) is True
    assert signals.signals(2) == ()


def test_events_older_than_the_deploy_are_ignored() -> None:
    signals = SignalSet(since=datetime.fromisoformat(T2))
    assert signals.observe_event(event(reason="FailedMount", message="old", last=T1), 0) is False
    assert signals.signals(0) == ()


def test_event_updates_count_as_changes() -> None:
    signals = SignalSet()
    signals.observe_event(event(reason="Unhealthy", message="probe", uid="e1", count=1), 0)
    assert signals.observe_event(event(reason="Unhealthy", message="probe", uid="e1", count=2), 1) is True
    assert signals.signals(1)[0].occurrences == 2
    assert signals.forget_event(event(reason="Unhealthy", message="probe", uid="e1"), 2) is True
    assert signals.signals(2) == ()


def test_failed_pulls_are_counted_across_back_offs_until_fatal() -> None:
    signals = SignalSet(
        FailFastPolicy(
            image_pull_failures=3, image_pull_grace_seconds=None, hard_image_pull_grace_seconds=None
        )
    )
    now = 0.0
    for expected_count in (1, 2, 3):
        signals.observe_pod(err_pull_pod(), now)
        signals.observe_pod(pull_backoff_pod(), now + 1)
        now += 10
        [signal] = signals.signals(now)
        assert signal.occurrences == expected_count
        assert signal.detail == NOT_FOUND  # the back-off keeps the registry's answer
        assert signal.fatal is (expected_count == 3)


def test_pull_failure_events_raise_the_count() -> None:
    signals = SignalSet(FailFastPolicy(image_pull_failures=4))
    signals.observe_pod(pull_backoff_pod(), 0)
    signals.observe_event(
        event(
            reason="Failed",
            field_path="spec.containers{web}",
            count=5,
            message=f'Failed to pull image "nope:1": {NOT_FOUND}',
        ),
        1,
    )
    [signal] = signals.signals(1)
    assert signal.occurrences == 5
    assert signal.fatal


def test_hard_pull_error_becomes_fatal_at_its_deadline_without_new_events() -> None:
    signals = SignalSet()
    signals.observe_pod(err_pull_pod(), 100)
    signals.observe_pod(pull_backoff_pod(), 101)
    assert signals.next_deadline(101) == 120  # first seen at 100, hard pull error grace 20 s
    assert signals.fatal_signals(119.9) == ()
    [fatal] = signals.fatal_signals(120)
    assert fatal.kind is K.IMAGE_PULL_BACK_OFF
    assert signals.next_deadline(120) is None  # already fatal: nothing left to wait for


def test_no_deadline_for_signals_time_cannot_make_fatal() -> None:
    signals = SignalSet()
    signals.observe_pod(pod(phase="Failed", reason="Evicted", message="m"), 0)
    assert signals.next_deadline(0) is None
    signals.observe_pod(
        pod(name="other", containers=[container(waiting=("CreateContainerConfigError", "x"))]), 5
    )
    assert signals.next_deadline(5) == 65


def test_crash_loop_stays_reported_between_crashes_and_turns_fatal_on_restarts() -> None:
    signals = SignalSet()
    signals.observe_pod(crash_pod(2), 0)
    assert signals.fatal_signals(0) == ()
    # The kubelet restarts the container: for a moment it runs (not ready), then dies again.
    assert signals.observe_pod(running_pod(ready=False, restarts=3, last=(137, "OOMKilled")), 10) is True
    [signal] = signals.signals(10)
    assert (signal.kind, signal.restart_count, signal.fatal) == (K.CRASH_LOOP_BACK_OFF, 3, True)
    died = pod(phase="Running", containers=[container(restarts=3, terminated=(1, "Error"))])
    signals.observe_pod(died, 11)
    [signal] = signals.signals(11)
    assert (signal.kind, signal.exit_code, signal.termination_reason) == (K.CRASH_LOOP_BACK_OFF, 1, "Error")


def test_a_running_container_without_a_crash_loop_before_is_not_a_signal() -> None:
    signals = SignalSet()
    assert signals.observe_pod(running_pod(ready=False, restarts=1, last=(1, "Error")), 0) is False


def test_persistence_clock_survives_pull_state_flapping_and_restarts_after_ready() -> None:
    signals = SignalSet(FailFastPolicy(image_pull_failures=None, hard_image_pull_grace_seconds=None))
    signals.observe_pod(pull_backoff_pod(), 0)
    signals.observe_pod(creating_pod(), 50)
    signals.observe_pod(pull_backoff_pod(), 60)
    assert signals.next_deadline(60) == 120
    signals.observe_pod(running_pod(ready=True), 70)
    signals.observe_pod(pull_backoff_pod(), 80)
    assert signals.next_deadline(80) == 200


def test_evicted_pod_is_reported_until_deleted() -> None:
    signals = SignalSet()
    signals.observe_pod(pod(phase="Failed", reason="Evicted", message="low on memory"), 0)
    assert [s.kind for s in signals.signals(0)] == [K.EVICTED]
    signals.forget_pod(POD, 1)
    assert signals.signals(1) == ()


def test_pod_of_the_same_name_can_return() -> None:
    signals = SignalSet()
    signals.observe_pod(unschedulable_pod(), 0)
    signals.forget_pod(POD, 1)
    assert signals.observe_pod(unschedulable_pod(), 2) is True


# --- presentation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signal", "line"),
    [
        (
            Signal(
                K.IMAGE_PULL_BACK_OFF, "Pod", "web-7d9f-abc", "ImagePullBackOff", BACK_OFF, container="web"
            ),
            'ImagePullBackOff: pod web-7d9f-abc container web: Back-off pulling image "nope:1"',
        ),
        (
            Signal(
                K.IMAGE_PULL_BACK_OFF,
                "Pod",
                "p",
                "ImagePullBackOff",
                BACK_OFF,
                container="web",
                occurrences=3,
                detail="not found",
            ),
            'ImagePullBackOff: pod p container web: Back-off pulling image "nope:1"; last error: not found '
            "(failed pulls: 3)",
        ),
        (
            Signal(
                K.CRASH_LOOP_BACK_OFF,
                "Pod",
                "p",
                "CrashLoopBackOff",
                "back-off 40s",
                container="web",
                exit_code=137,
                termination_reason="OOMKilled",
                restart_count=4,
            ),
            "CrashLoopBackOff: pod p container web: back-off 40s "
            "(restarts: 4, last exit code 137, OOMKilled)",
        ),
        (
            Signal(K.CONTAINER_FAILED, "Pod", "p", "Error", "terminated", container="job", exit_code=2),
            "Error: pod p container job: terminated (exit code 2)",
        ),
        (
            Signal(
                K.CRASH_LOOP_BACK_OFF,
                "Pod",
                "p",
                "CrashLoopBackOff",
                "back-off",
                container="migrate",
                init_container=True,
                restart_count=1,
            ),
            "CrashLoopBackOff: pod p initContainer migrate: back-off (restarts: 1)",
        ),
        (
            Signal(K.ADMISSION_REFUSED, "ReplicaSet", "rs", "FailedCreate", QUOTA, occurrences=7),
            f"FailedCreate: replicaset rs: {QUOTA} (seen 7 times)",
        ),
        (Signal(K.UNSCHEDULABLE, "Pod", "p", "Unschedulable", ""), "Unschedulable: pod p: (no message)"),
    ],
)
def test_describe(signal: Signal, line: str) -> None:
    assert describe(signal) == line


def test_progress_is_ordered_by_fatality_then_severity_then_object_regardless_of_input_order() -> None:
    signals = [
        Signal(K.WARNING, "Pod", "a", "X", "m"),
        Signal(K.UNSCHEDULABLE, "Pod", "b", "Unschedulable", "m"),
        Signal(K.IMAGE_PULL_BACK_OFF, "Pod", "c", "ImagePullBackOff", "m", container="web"),
        Signal(K.IMAGE_PULL_BACK_OFF, "Pod", "b", "ImagePullBackOff", "m", container="web"),
        Signal(
            K.IMAGE_PULL_BACK_OFF, "Pod", "b", "ImagePullBackOff", "m", container="init", init_container=True
        ),
        Signal(K.EVICTED, "Pod", "z", "Evicted", "m", fatal=True),
    ]
    expected = [
        "Evicted: pod z: m",
        "ImagePullBackOff: pod b initContainer init: m",
        "ImagePullBackOff: pod b container web: m",
        "ImagePullBackOff: pod c container web: m",
        "Unschedulable: pod b: m",
        "X: pod a: m",
    ]
    for seed in range(5):
        shuffled = signals[:]
        random.Random(seed).shuffle(shuffled)
        lines = [describe(signal) for signal in sorted(shuffled, key=sort_key)]
        assert fit_lines(lines, 4000).split("\n") == expected


def test_progress_is_empty_without_signals() -> None:
    assert fit_lines([], 4000) == ""


@pytest.mark.parametrize(("count", "limit"), [(1, 4000), (50, 4000), (500, 4000), (3, 120), (40, 1000)])
def test_progress_is_bounded_and_counts_what_it_left_out(count: int, limit: int) -> None:
    signals = [
        Signal(K.CRASH_LOOP_BACK_OFF, "Pod", f"pod-{i:04d}", "CrashLoopBackOff", "x" * 200, container="web")
        for i in range(count)
    ]
    text = fit_lines([describe(signal) for signal in signals], limit)
    assert len(text) <= limit
    lines = text.split("\n")
    assert all(line.startswith("CrashLoopBackOff: pod pod-") for line in lines[:-1])
    if lines[-1].startswith("... and "):
        shown = len(lines) - 1
        assert lines[-1] == f"... and {count - shown} more"
    else:
        assert len(lines) == count


def test_a_single_huge_line_is_cut_to_the_limit() -> None:
    text = fit_lines([describe(Signal(K.WARNING, "Pod", "a", "X", "y" * 10_000), limit=20_000)], 300)
    assert len(text) <= 300
    assert text.startswith("X: pod a: ")


def test_progress_redacts_before_cutting() -> None:
    secret = "Sup3rS3cretValue"
    # Slide the secret across the point where the over-long line is cut; no part of it may survive.
    for offset in range(240, 320, 3):
        message = "a" * offset + secret + "b" * 400
        # The line unredacted, as the secret's owner might pass it: fit_lines redacts before it cuts.
        line = describe(Signal(K.WARNING, "Pod", "p", "X", message), limit=20_000)
        text = fit_lines([line], 600, [secret])
        assert "characters omitted" in text
        assert all(secret[i : i + 5] not in text for i in range(len(secret) - 4)), offset


def test_a_replica_older_than_the_deploy_is_reported_but_never_fails_it_fast() -> None:
    # The old replica of a crash-looping revision keeps crashing while the new, fixed one rolls out;
    # it says nothing about the deploy and must not stop helm. If the rollout never replaces it,
    # helm's own timeout decides.
    signals = SignalSet(FailFastPolicy(crash_loop_restarts=3), since=datetime.fromisoformat(T1))
    old = crash_pod(7)  # created at T0, before the deploy
    signals.observe_pod(old, 0)
    [signal] = signals.signals(0)
    assert (signal.kind, signal.restart_count, signal.fatal) == (K.CRASH_LOOP_BACK_OFF, 7, False)
    signals.observe_pod(crash_pod(10), 120)
    assert signals.fatal_signals(600) == ()
    assert signals.next_deadline(120) is None
    [signal] = signals.signals(600)
    assert signal.restart_count == 10


def test_restarts_of_a_replica_created_by_the_deploy_count_from_zero() -> None:
    signals = SignalSet(FailFastPolicy(crash_loop_restarts=3), since=datetime.fromisoformat(T1))
    new = pod(
        phase="Running",
        created=T2,
        containers=[
            container(restarts=3, waiting=("CrashLoopBackOff", CRASH), last_terminated=(137, "OOMKilled"))
        ],
    )
    signals.observe_pod(new, 0)
    [fatal] = signals.fatal_signals(0)
    assert fatal.restart_count == 3
