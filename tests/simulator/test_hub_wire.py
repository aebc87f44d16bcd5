"""The simulator's SignalR transport, seen through a raw WebSocket: negotiate, upgrade, handshake,
dispatch, keep-alive, close kinds, limits, auth and faults."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest

from octo_devtools.controller_sim import RunningSimulator
from octo_devtools.testing.simulator import SimulatorFactory
from tests.simulator.wire import RS, RawHubClient, records

HANDSHAKE = '{"protocol":"json","version":1}' + RS


async def negotiate(session: aiohttp.ClientSession, hub_url: str, query: str = "?negotiateVersion=1") -> dict:
    async with session.post(hub_url + "/negotiate" + query) as response:
        assert response.status == 200
        return dict(await response.json())


async def upgrade_status(session: aiohttp.ClientSession, url: str) -> int:
    """HTTP status with which the server refuses a WebSocket upgrade (fails the test if it accepts)."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await session.ws_connect(url)
    return refused.value.status


async def test_negotiate_v1_answers_id_and_token_and_only_websockets(
    controller_sim: RunningSimulator,
) -> None:
    async with aiohttp.ClientSession() as session:
        body = await negotiate(session, controller_sim.hub_url, "?negotiateVersion=1")
        newer = await negotiate(session, controller_sim.hub_url, "?negotiateVersion=7")
    assert body["negotiateVersion"] == 1
    assert newer["negotiateVersion"] == 1  # the highest version the server supports
    assert body["connectionId"] != body["connectionToken"]
    assert body["availableTransports"] == [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
    assert "useStatefulReconnect" not in body


async def test_negotiate_v0_id_doubles_as_transport_id(controller_sim: RunningSimulator) -> None:
    async with aiohttp.ClientSession() as session:
        body = await negotiate(session, controller_sim.hub_url, "")
        assert set(body) == {"connectionId", "availableTransports"}
        async with session.ws_connect(f"{controller_sim.hub_url}?id={body['connectionId']}") as ws:
            await ws.send_str(HANDSHAKE)
            assert (await ws.receive(timeout=5)).data == "{}" + RS
            await ws.send_str(
                json.dumps(
                    {"type": 1, "invocationId": "1", "target": "RegisterOperatorAsync", "arguments": [None]}
                )
                + RS
            )
            assert records((await ws.receive(timeout=5)).data) == [
                {"type": 3, "invocationId": "1", "result": []}
            ]
        state = await controller_sim.admin.state()
    assert state["operators"] == []  # the connection is gone again after the socket closed


async def test_unknown_and_stale_ids_get_404_and_duplicates_409(controller_sim: RunningSimulator) -> None:
    hub = controller_sim.hub_url
    async with aiohttp.ClientSession() as session:
        assert await upgrade_status(session, f"{hub}?id=never-negotiated") == 404
        token = (await negotiate(session, hub))["connectionToken"]
        async with session.ws_connect(f"{hub}?id={token}") as ws:
            assert await upgrade_status(session, f"{hub}?id={token}") == 409
            await ws.send_str(HANDSHAKE)
            await ws.receive(timeout=5)
        # After the socket closed, the id is stale: a client that retries it must renegotiate.
        assert await upgrade_status(session, f"{hub}?id={token}") == 404


async def test_negotiated_tokens_that_never_connect_expire(controller_sim_factory: SimulatorFactory) -> None:
    sim = await controller_sim_factory(negotiate_timeout=0.2)
    async with aiohttp.ClientSession() as session:
        token = (await negotiate(session, sim.hub_url))["connectionToken"]
        await asyncio.sleep(0.4)
        assert await upgrade_status(session, f"{sim.hub_url}?id={token}") == 404


async def test_skip_negotiation_and_binary_frames(controller_sim: RunningSimulator) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(controller_sim.hub_url) as ws:
        invocation = {"type": 1, "invocationId": "1", "target": "RegisterOperatorAsync", "arguments": [True]}
        # Handshake and first invocation in one binary frame: JSON is accepted in either frame type.
        await ws.send_bytes((HANDSHAKE + json.dumps(invocation) + RS).encode())
        frames = [await ws.receive(timeout=5), await ws.receive(timeout=5)]
    assert [f.type for f in frames] == [aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.TEXT]  # replies are Text
    assert frames[0].data == "{}" + RS
    assert records(frames[1].data) == [{"type": 3, "invocationId": "1", "result": []}]


@pytest.mark.parametrize(
    ("options", "handshake", "error"),
    [
        (
            {},
            '{"protocol":"json","version":3}',
            "The server does not support version 3 of the 'json' protocol.",
        ),
        ({}, '{"protocol":"messagepack","version":1}', "The protocol 'messagepack' is not supported."),
        ({}, '{"protocol":"json"}', "An unexpected error occurred during connection handshake."),
        (
            {"legacy_version_check": True},
            '{"protocol":"json","version":0}',
            "The server does not support version 0 of the 'json' protocol.",
        ),
    ],
)
async def test_handshake_errors_are_sent_then_the_socket_closes(
    controller_sim_factory: SimulatorFactory, options: dict, handshake: str, error: str
) -> None:
    sim = await controller_sim_factory(**options)
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.hub_url) as ws:
        await ws.send_str(handshake + RS)
        reply = await ws.receive(timeout=5)
        assert records(reply.data) == [{"error": error}]
        assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE


async def test_handshake_timeout_cancels_the_handshake(controller_sim_factory: SimulatorFactory) -> None:
    sim = await controller_sim_factory(handshake_timeout=0.3)
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.hub_url) as ws:
        reply = await ws.receive(timeout=5)
        assert records(reply.data) == [{"error": "Handshake was canceled."}]


async def test_completions_and_error_texts(controller_sim: RunningSimulator) -> None:
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        assert await client.invoke("RegisterOperatorAsync", True) == {
            "type": 3,
            "invocationId": "1",
            "result": [],
        }
        # Void methods answer "result": null, and method names match case-insensitively.
        assert await client.invoke("unregisteroperatorasync") == {
            "type": 3,
            "invocationId": "2",
            "result": None,
        }
        bad_id = await client.invoke("RegisterPoolAsync", "t", "p9")
        assert bad_id["error"] == (
            "An unexpected error occurred invoking 'RegisterPoolAsync' on the server. "
            "HubException: 'p9' is not a valid pool runtime id (expected 24 hexadecimal characters)."
        )
        assert "result" not in bad_id
        unknown = await client.invoke("NoSuchMethod")
        assert unknown["error"] == (
            "Failed to invoke 'NoSuchMethod' due to an error on the server. "
            "HubException: Method does not exist."
        )
        arity = await client.invoke("RegisterPoolAsync", "t")
        assert arity["error"] == "Failed to invoke 'RegisterPoolAsync' due to an error on the server."
        wrong_type = await client.invoke("RegisterOperatorAsync", "yes")
        assert (
            wrong_type["error"] == "Failed to invoke 'RegisterOperatorAsync' due to an error on the server."
        )
        streaming = {"type": 4, "invocationId": "s1", "target": "RegisterOperatorAsync", "arguments": [True]}
        await client.send(streaming)
        assert (await client.next_message())["error"] == (
            "The client attempted to invoke the non-streaming 'RegisterOperatorAsync' method "
            "with a streaming invocation."
        )


async def test_detailed_errors_append_the_binding_failure(controller_sim_factory: SimulatorFactory) -> None:
    sim = await controller_sim_factory(detailed_errors=True)
    async with await RawHubClient.connect(sim.hub_url) as client:
        arity = await client.invoke("RegisterPoolAsync", "t")
    assert arity["error"] == (
        "Failed to invoke 'RegisterPoolAsync' due to an error on the server. "
        "InvalidDataException: Invocation provides 1 argument(s) but target expects 2."
    )


async def test_several_records_per_frame_and_non_blocking_calls(controller_sim: RunningSimulator) -> None:
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        await client.send(
            {"type": 1, "target": "RegisterOperatorAsync", "arguments": [True], "headers": {"x": "y"}},
            {"type": 6},
            {"type": 1, "invocationId": "a", "target": "RegisterPoolAsync", "arguments": ["t", "bad"]},
            {"type": 1, "target": "RegisterPoolAsync", "arguments": ["t", "bad"]},  # fails silently
            {
                "type": 1,
                "invocationId": "b",
                "target": "RegisterOperatorAsync",
                "arguments": [None],
                "extra": 1,
            },
        )
        answers = [await client.next_message(), await client.next_message()]
        await client.no_message(0.3)
    assert [a["invocationId"] for a in answers] == ["a", "b"]  # nothing for the non-blocking ones
    calls = await controller_sim.admin.calls()
    assert [(c["method"], c["invocationId"]) for c in calls] == [
        ("RegisterOperatorAsync", None),
        ("RegisterPoolAsync", "a"),
        ("RegisterPoolAsync", None),
        ("RegisterOperatorAsync", "b"),
    ]
    assert calls[2]["error"] is not None


async def test_ping_after_send_idleness(controller_sim: RunningSimulator) -> None:
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await client.next_message(3, skip_pings=False) == {"type": 6}
        elapsed = loop.time() - started
    # ping_interval is 0.5 s in the fixture: not at once, and long before the 3 s wait ends (a loaded
    # machine may run the server's timer late, so no tighter bound).
    assert 0.3 < elapsed < 2.5


async def test_silent_client_is_dropped_with_allow_reconnect(
    controller_sim_factory: SimulatorFactory,
) -> None:
    sim = await controller_sim_factory(client_timeout=0.6, ping_interval=5)
    async with (
        await RawHubClient.connect(sim.hub_url) as talker,
        await RawHubClient.connect(sim.hub_url) as silent,
    ):
        for _ in range(6):  # the talker pings every 0.2 s and so stays connected
            await talker.send({"type": 6})
            await asyncio.sleep(0.2)
        assert await silent.next_message(2) == {"type": 7, "allowReconnect": True}
        with pytest.raises(ConnectionError):
            await silent.next_message(2)
        assert (await talker.invoke("RegisterOperatorAsync", None))["result"] == []


@pytest.mark.parametrize(
    ("kind", "close"),
    [
        ("close-error", {"type": 7, "error": "Connection closed with an error."}),
        ("close-reconnect", {"type": 7, "allowReconnect": True}),
    ],
)
async def test_close_faults_send_the_close_message(
    controller_sim: RunningSimulator, kind: str, close: dict
) -> None:
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        assert await controller_sim.admin.fault(kind) == 1
        assert await client.next_message() == close
        with pytest.raises(ConnectionError, match="CLOSE"):
            await client.next_message()


async def test_drop_ends_the_socket_without_a_close_message(controller_sim: RunningSimulator) -> None:
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        await controller_sim.admin.fault("drop")
        with pytest.raises(ConnectionError) as ended:
            await client.next_message(skip_pings=False)
    assert '"type": 7' not in str(ended.value)
    assert (await controller_sim.admin.state())["connections"] == []


async def test_graceful_stop_asks_clients_to_reconnect(controller_sim_factory: SimulatorFactory) -> None:
    sim = await controller_sim_factory()
    async with await RawHubClient.connect(sim.hub_url) as client:
        stopping = asyncio.create_task(sim.simulator.stop())
        assert await client.next_message() == {"type": 7, "allowReconnect": True}
        await stopping


async def test_oversized_message_closes_with_an_error(controller_sim_factory: SimulatorFactory) -> None:
    sim = await controller_sim_factory(max_message_size=1024)
    async with await RawHubClient.connect(sim.hub_url) as client:
        assert (await client.invoke("RegisterPoolAsync", "t", "x" * 900))[
            "error"
        ]  # under the limit: answered
        await client.send(
            {"type": 1, "invocationId": "big", "target": "RegisterPoolAsync", "arguments": ["t", "x" * 2000]}
        )
        assert await client.next_message() == {"type": 7, "error": "Connection closed with an error."}
    detailed = await controller_sim_factory(max_message_size=1024, detailed_errors=True)
    async with await RawHubClient.connect(detailed.hub_url) as client:
        await client.send({"type": 1, "target": "X", "arguments": ["x" * 2000]})
        assert (await client.next_message())["error"] == (
            "Connection closed with an error. "
            "InvalidDataException: The maximum message size of 1024B was exceeded."
        )


async def test_malformed_record_closes_with_an_error(controller_sim: RunningSimulator) -> None:
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        await client.ws.send_str('{"type":1,"invocationId":"1","arguments":[]}' + RS)
        assert await client.next_message() == {"type": 7, "error": "Connection closed with an error."}


async def test_bearer_token_required_on_negotiate_and_websocket(
    controller_sim_factory: SimulatorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="octo_devtools")
    token = "s3cr3t-bearer"
    sim = await controller_sim_factory(token=token)
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.post(sim.hub_url + "/negotiate?negotiateVersion=1") as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"] == "Bearer"
        async with anonymous.post(
            sim.hub_url + "/negotiate", headers={"Authorization": "Bearer wrong"}
        ) as response:
            assert response.status == 401
        assert await upgrade_status(anonymous, sim.hub_url) == 401
        # Browsers cannot set headers on a WebSocket, so the hub also takes ?access_token=.
        async with anonymous.ws_connect(f"{sim.hub_url}?access_token={token}") as ws:
            await ws.send_str(HANDSHAKE)
            assert (await ws.receive(timeout=5)).data == "{}" + RS
    async with await RawHubClient.connect(sim.hub_url, token=token) as client:
        assert (await client.invoke("RegisterOperatorAsync", None))["result"] == []
    await sim.admin.fault("reject-auth")
    with pytest.raises(AssertionError, match="401"):
        await RawHubClient.connect(sim.hub_url, token=token)
    await sim.admin.fault("accept-auth")
    await (await RawHubClient.connect(sim.hub_url, token=token)).close()
    assert "opened" in caplog.text
    assert token not in caplog.text


async def test_freeze_stops_pings_and_answers_until_thaw(controller_sim: RunningSimulator) -> None:
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        await controller_sim.admin.fault("freeze")
        await client.send(
            {"type": 1, "invocationId": "1", "target": "RegisterOperatorAsync", "arguments": [True]}
        )
        with pytest.raises(TimeoutError):
            await client.next_message(1.2, skip_pings=False)  # > 2 ping intervals: not even a Ping
        await controller_sim.admin.fault("thaw")
        assert await client.next_message() == {"type": 3, "invocationId": "1", "result": []}


async def test_restart_drops_connections_and_keeps_pools(controller_sim: RunningSimulator) -> None:
    admin = controller_sim.admin
    pool = await admin.create_pool("t", "p")
    await admin.deploy_pool(pool)
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        await client.invoke("RegisterOperatorAsync", True)
        await client.invoke("RegisterPoolAsync", "t", pool)
        old_id = client.connection_id
        await admin.fault("restart")
        with pytest.raises(ConnectionError):
            await client.next_message(skip_pings=False)
    state = await admin.state()
    assert state["operators"] == []
    assert state["pools"][0]["deploymentState"] == "Deployed"
    async with await RawHubClient.connect(controller_sim.hub_url) as client:
        assert client.connection_id != old_id
        result = await client.invoke("RegisterOperatorAsync", True)
    assert result["result"] == [{"tenantId": "t", "poolRtId": pool}]
