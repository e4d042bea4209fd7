"""Stage replica pools through the real gateway process: two fake STT replicas behind one S2S_GATEWAY_STT_URL.

A replica killed mid-session: the session's link moves to the other and its next turn is answered, with at most one
error event. Replicas at their limit: the next session is told ``session_limit_reached`` at once (no connect tried)
and the socket closes (1013). A replica failing its health checks gets no new session.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tests.fast.conftest import STAGE_TIMEOUT_S, Gateway
from tests.fast.fake_replicas import FakeSttReplica, Replicas
from tests.fast.fake_stages import FakeStages
from tests.fast.realtime_client import Realtime, open_realtime, until
from tests.fast.test_reconnects import answered_turn, gateway_log_on_failure
from tests.procs import free_port, start_logged, stop, wait_healthy


@dataclass
class Pooled:
    gateway: Gateway
    replicas: Replicas
    health_url: str

    def stt_replicas(self) -> list[dict[str, Any]]:
        """The gateway's view of its STT replicas (its /healthz polls them afresh)."""
        return list(httpx.get(self.health_url, timeout=5).json()["replicas"]["stt"])

    def state_of(self, replica: FakeSttReplica) -> dict[str, Any]:
        return next(r for r in self.stt_replicas() if r["url"] == replica.url)


@pytest.fixture
def pooled(fakes: FakeStages) -> Iterator[Pooled]:
    """A gateway of its own whose STT is a pool of two fresh replicas (the other stages are the shared fakes)."""
    replicas = Replicas(fakes, 2)
    port, token = free_port(), secrets.token_hex(8)
    env = {
        "S2S_GATEWAY_HOST": "127.0.0.1",
        "S2S_GATEWAY_PORT": str(port),
        "S2S_GATEWAY_TOKEN": token,
        "S2S_GATEWAY_STAGE_TIMEOUT_S": str(STAGE_TIMEOUT_S),
        "S2S_GATEWAY_CONNECT_TIMEOUT_S": "3",
        "S2S_GATEWAY_HEALTH_INTERVAL_S": "0.5",
        **{f"S2S_GATEWAY_{stage.upper()}_URL": url for stage, url in fakes.urls().items()},
        "S2S_GATEWAY_STT_URL": ",".join(replicas.urls),
    }
    proc, log = start_logged([sys.executable, "-m", "services.gateway"], env)
    try:
        health = f"http://127.0.0.1:{port}/healthz"
        wait_healthy(health, proc, log, timeout_s=30)
        yield Pooled(Gateway(f"ws://127.0.0.1:{port}/v1/realtime", token, log), replicas, health)
    finally:
        stop(proc, timeout_s=10)
        replicas.close()
    assert proc.returncode in (0, -15), f"gateway exited with {proc.returncode}:\n{log.read_text()[-3000:]}"


async def test_a_replica_killed_mid_session_the_next_turn_is_answered_by_another(pooled: Pooled) -> None:
    """Two sessions, one on each replica; one replica dies. Its session moves to the other (which then looks the
    more loaded: only the lost link's preference for another replica, or a second attempt, gets it there)."""
    gateway, replicas = pooled.gateway, pooled.replicas
    clients = [await open_realtime(gateway.url, gateway.token) for _ in range(2)]
    try:
        with gateway_log_on_failure(gateway):
            assert [len(r.live()) for r in replicas] == [1, 1], "the sessions' STT links are spread"
            hit, spared = clients
            assert await answered_turn(hit, "alpha bravo") == ("alpha bravo", "You said alpha bravo. That is all.")
            dead = next(r for r in replicas if r.connections[0].messages.count("stt.commit"))
            other = next(r for r in replicas if r is not dead)
            begin = [c.mark() for c in clients]
            replicas.kill(dead)
            await until(lambda: len(other.live()) == 2, "the lost STT link moving to the other replica")
            for client, words in ((hit, "charlie delta"), (spared, "echo foxtrot")):
                heard = await answered_turn(client, words)
                assert heard == (words, f"You said {words}. That is all."), client.summary()
            errors = hit.find("error", begin[0])
            assert len(errors) <= 1, hit.summary(begin[0])
            assert {e["error"]["code"] for _, e in errors} <= {"upstream_lost"}, hit.summary(begin[0])
            assert not spared.find("error", begin[1]), spared.summary(begin[1])
            assert pooled.state_of(dead)["state"].startswith("unreachable")
    finally:
        for client in clients:
            await client.close()


async def refused(gateway: Gateway) -> tuple[dict[str, Any], int | None]:
    """Opens a session that must be refused: its first event, and the close code that follows."""
    headers = {"Authorization": f"Bearer {gateway.token}"}
    async with ws_connect(gateway.url, additional_headers=headers) as ws:
        first = json.loads(await ws.recv())
        try:
            extra = await ws.recv()
            raise AssertionError(f"the refused session went on: {extra!r}")
        except ConnectionClosed as closed:
            return first, closed.rcvd.code if closed.rcvd else None


async def test_replicas_at_their_limit_the_next_session_is_refused_at_once(pooled: Pooled) -> None:
    for replica in pooled.replicas:
        replica.max_sessions = 1
    await until(
        lambda: all(r["max_sessions"] == 1 for r in pooled.stt_replicas()), "the gateway seeing the replicas' limits"
    )
    gateway = pooled.gateway
    sessions: list[Realtime] = []
    try:
        with gateway_log_on_failure(gateway):
            sessions = [await open_realtime(gateway.url, gateway.token) for _ in range(2)]
            assert [len(r.live()) for r in pooled.replicas] == [1, 1], "one session on each replica"
            handshakes = [len(r.accepted_at) for r in pooled.replicas]
            error, code = await refused(gateway)
            assert error["type"] == "error" and error["error"]["code"] == "session_limit_reached", error
            assert "stt" in error["error"]["message"]
            assert code == 1013
            # Refused from what the pool knew: no replica was even asked.
            assert [len(r.accepted_at) for r in pooled.replicas] == handshakes
            assert sum(r.refused_full for r in pooled.replicas) == 0

            await sessions.pop().close()  # a slot frees up: the next session gets it
            await until(lambda: sum(len(r.live()) for r in pooled.replicas) == 1, "the closed session's link gone")
            # A health check sent while that link was closing may still count it, until the next; wait for one after.
            await until(lambda: sum(r["sessions"] for r in pooled.stt_replicas()) == 1, "the gateway seeing it gone")
            sessions.append(await open_realtime(gateway.url, gateway.token))
            assert await answered_turn(sessions[-1], "echo golf") == ("echo golf", "You said echo golf. That is all.")
    finally:
        for client in sessions:
            await client.close()


async def test_a_replica_that_refuses_as_full_sends_the_session_to_another(pooled: Pooled) -> None:
    """The gateway learns that a replica is full from its refusal, when no health report has told it."""
    gateway = pooled.gateway
    clients: list[Realtime] = []
    try:
        with gateway_log_on_failure(gateway):
            clients.append(await open_realtime(gateway.url, gateway.token))
            busy = next(r for r in pooled.replicas if r.live())
            full = next(r for r in pooled.replicas if r is not busy)
            full.report_limit, full.max_sessions = False, 0  # the least loaded replica, refusing every session
            begin = [c.mark() for c in clients]
            clients.append(await open_realtime(gateway.url, gateway.token))
            clients.append(await open_realtime(gateway.url, gateway.token))
            assert (len(busy.live()), len(full.connections), full.refused_full >= 1) == (3, 0, True)
            assert all(not c.find("error", b) for c, b in zip(clients, [*begin, 0, 0], strict=True))
            reply = await answered_turn(clients[-1], "kilo lima")
            assert reply == ("kilo lima", "You said kilo lima. That is all.")
    finally:
        for client in clients:
            await client.close()


async def test_a_replica_failing_its_health_checks_gets_no_new_session(pooled: Pooled) -> None:
    sick, well = pooled.replicas.all
    sick.fail_health()
    await until(lambda: pooled.state_of(sick)["state"] == "failed", "the gateway seeing the failed health check")
    gateway = pooled.gateway
    clients: list[Realtime] = []
    try:
        with gateway_log_on_failure(gateway):
            clients = [await open_realtime(gateway.url, gateway.token) for _ in range(3)]
            assert (len(sick.connections), len(well.live())) == (0, 3)
            assert await answered_turn(clients[0], "india juliet") == (
                "india juliet",
                "You said india juliet. That is all.",
            )
            sick.fail_health(False)
            await until(lambda: pooled.state_of(sick)["state"] == "ready", "the gateway seeing it well again")
            clients.append(await open_realtime(gateway.url, gateway.token))
            assert len(sick.live()) == 1, "the least loaded replica takes the next session"
    finally:
        for client in clients:
            await client.close()
