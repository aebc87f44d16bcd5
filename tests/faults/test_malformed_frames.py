"""Malformed frames from a scripted hub (issue 13, items 12-14).

The simulator sends raw text frames (``/admin/raw``), exactly as written, over the operator's live
connection. Promise for each: the operator logs it once (a bounded line that names it, with no
secret), keeps the connection (no reconnect), and for a push whose tenant and workload ids can be
read, reports one failed status and runs no helm.

Attribution of log lines: a record the operator cannot parse has no ids, so each is sent in one frame
together with a *barrier*, an invocation with an id (a client-results request) that the operator
answers with a Completion after it has handled everything before it in the frame. The warnings
written between sending the frame and the barrier's answer belong to the malformed record.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field

import pytest

from communication_operator.contracts import ServerMethod
from octo_devtools.testing.waiting import eventually
from tests.faults.conftest import READY_IMAGE, TENANT, FaultRig, image_values
from tests.faults.leaks import find_leaks, plant

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]

TARGET = "WorkloadDeployedAsync"
BARRIER_TARGET = "FaultBarrier"
LINE_LIMIT = 2000  # a log line about one bad record; the records here are up to 200 kB
LEVEL = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")


def warning_lines(lines: list[str]) -> list[str]:
    return [
        line for line in lines if (m := LEVEL.match(line)) and m.group(1) in ("WARNING", "ERROR", "CRITICAL")
    ]


@dataclass
class Outcome:
    name: str
    marker: str = field(default_factory=lambda: f"fault-{secrets.token_hex(6)}")
    workload: str = ""  # the workloadRtId of a push whose ids can be read
    log_offset: int = 0  # log lines before the frame was sent
    problems: list[str] = field(default_factory=list)


def _deploy_dto(rig: FaultRig, workload_rt_id: str, name: str, password: str, **changes: object) -> dict:
    """A deploy the operator could carry out (a reachable chart, an image that becomes Ready), so a
    push it wrongly accepts shows up as a helm release."""
    body: dict[str, object] = {
        "tenantId": TENANT,
        "poolRtId": rig.pool_rt_id,
        "workloadName": name,
        "workloadRtId": workload_rt_id,
        "workloadType": 0,
        "repositoryUrl": rig.repo.url,
        "repositoryUsername": "reader",
        "repositoryPassword": password,
        "chartName": "web",
        "chartVersion": "",
        "isReconciliation": False,
        "valuesYaml": image_values(READY_IMAGE),
        "values": [],
        "receivesClusterSecrets": False,
        "ingressEnabled": False,
        "hostname": None,
    }
    body.update(changes)
    return body


async def _connections(rig: FaultRig) -> list[str]:
    return [c["connectionId"] for c in (await rig.sim.admin.state())["connections"]]


async def _single_connection(rig: FaultRig) -> list[str] | None:
    connections = await _connections(rig)
    return connections if len(connections) == 1 else None


async def _statuses(rig: FaultRig, workload_rt_id: str) -> list[dict[str, object]]:
    """The status reports the controller received for ``workload_rt_id`` (known to it or not)."""
    return [
        call["arguments"][0]
        for call in await rig.sim.admin.calls(ServerMethod.REPORT_WORKLOAD_DEPLOYMENT_STATUS)
        if call["arguments"][0].get("workloadRtId") == workload_rt_id
    ]


async def test_malformed_frames_are_logged_once_and_the_connection_stays(rig: FaultRig) -> None:
    operator = await rig.start_operator()
    sim = rig.sim
    admin = sim.admin
    password = plant("frame-password")
    registrations_before = len(await admin.calls("RegisterOperatorAsync"))
    outcomes: list[Outcome] = []
    current = await _connections(rig)

    async def connection_kept(outcome: Outcome) -> bool:
        """Whether the operator still uses the connection it had; if not, wait for its new one."""
        nonlocal current
        now = await _connections(rig)
        if now == current:
            return True
        outcome.problems.append(f"the connection was lost or replaced ({len(current)} -> {len(now)})")
        await operator.wait_connected(timeout=30)
        await rig.wait_pool_online()
        current = await eventually(lambda: _single_connection(rig), timeout=15, what="one connection")
        return False

    # --- records the JSON parser rejects: no ids, nothing to report --------------------------------
    unparsable = {
        "5000-digit integer": '"arguments":[' + "7" * 5000 + "]}",
        "deeply nested arrays": '"arguments":' + "[" * 100_000 + "]" * 100_000 + "}",
        "invalid JSON": f'"repositoryPassword":"{password.value}","arguments":[{{"tenantId":,,]',
    }
    for name, tail in unparsable.items():
        outcome = Outcome(name)
        outcomes.append(outcome)
        marker = outcome.marker
        record = f'{{"faultMarker":"{marker}","type":1,"target":"{TARGET}",{tail}'
        barrier_id = f"barrier-{marker}"
        barrier = json.dumps(
            {"type": 1, "invocationId": barrier_id, "target": BARRIER_TARGET, "arguments": []}
        )
        before = len(operator.log_lines())
        sent = await admin.send_raw(record, barrier)  # one frame: the barrier follows the record
        assert sent == 1, f"{name}: the operator was not connected"

        async def handled(barrier_id: str = barrier_id) -> bool:
            answered = any(c["invocationId"] == barrier_id for c in await admin.completions())
            return answered or await _connections(rig) != current

        await eventually(
            handled, timeout=15, interval=0.1, what="the barrier answered or the connection lost"
        )
        if not await connection_kept(outcome):
            continue
        lines = [line for line in warning_lines(operator.log_lines()[before:]) if BARRIER_TARGET not in line]
        if len(lines) != 1:
            outcome.problems.append(
                f"{len(lines)} warning line(s) instead of one: {[line[:200] for line in lines]}"
            )
        for line in lines:
            # An excerpt of the record shows at least its target; its strings may all be masked.
            if TARGET not in line:
                outcome.problems.append(f"the warning does not show the record (no excerpt): {line[:200]!r}")
            if len(line) > LINE_LIMIT:
                outcome.problems.append(f"the warning is {len(line)} characters long")

    # --- pushes whose ids can be read: refused with one failed status, no helm -------------------
    unknown_type = await rig.create_workload("unknown-type")
    readable = {
        "workloadRtId ../../etc": ("../../etc", {}),
        "uppercase workloadRtId": ("ABCDEF0123456789ABCDEF01", {}),
        "23-character workloadRtId": ("abcdef0123456789abcdef0", {}),
        "unknown workloadType": (unknown_type, {"workloadType": 99}),
    }
    for name, (workload_rt_id, changes) in readable.items():
        outcome = Outcome(name, workload=workload_rt_id, log_offset=len(operator.log_lines()))
        outcomes.append(outcome)
        dto = _deploy_dto(rig, workload_rt_id, outcome.marker, password.value, **changes)
        assert await admin.push(TARGET, [dto]) == 1, f"{name}: the operator was not connected"
        try:
            await eventually(
                lambda o=outcome: _statuses(rig, o.workload), timeout=10, interval=0.1, what="a failed status"
            )
        except AssertionError:
            outcome.problems.append("no status reported for a push whose ids can be read")
        await connection_kept(outcome)

    # Every frame has been handled by now; check what each push left behind.
    for outcome in outcomes[len(unparsable) :]:
        reports = await _statuses(rig, outcome.workload)
        if reports and (len(reports) != 1 or reports[0]["success"] is not False):
            outcome.problems.append(
                f"statuses {[(r['success'], r['statusMessage']) for r in reports]}, expected one failed"
            )
        lines = [
            line
            for line in warning_lines(operator.log_lines()[outcome.log_offset :])
            if outcome.marker in line or outcome.workload in line
        ]
        if len(lines) != 1:
            outcome.problems.append(
                f"{len(lines)} warning line(s) naming the workload instead of one: {[x[:200] for x in lines]}"
            )
        outcome.problems += [f"the warning is {len(x)} characters long" for x in lines if len(x) > LINE_LIMIT]

    problems = [f"{o.name}: {p}" for o in outcomes for p in o.problems]
    releases = [r["name"] for r in await rig.releases()]
    if releases:
        problems.append(f"helm ran for a refused push: releases {releases}")
    if len(await admin.calls("RegisterOperatorAsync")) != registrations_before:
        problems.append("the operator registered again (it reconnected)")
    problems += [
        f"log line of {len(line)} characters: {line[:120]}…"
        for line in operator.log_lines()
        if len(line) > 20_000
    ]
    problems += find_leaks({"operator log": operator.log_text()}, [password])
    assert not problems, "\n".join(problems)
