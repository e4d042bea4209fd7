"""The replica pool's decisions (services/gateway/pool.py): events in, a choice out, time passed in."""

from __future__ import annotations

import pytest

from services.gateway.pool import (
    Full,
    Health,
    NoReplica,
    Pick,
    Pool,
    PoolSpecError,
    StageSpec,
    expand,
    health_from_answer,
    parse_stage_urls,
)

A, B, C = "ws://a:8002/v1/stt", "ws://b:8002/v1/stt", "ws://c:8002/v1/stt"


def ready(sessions: int | None = None, limit: int | None = None) -> Health:
    return Health(True, "ready", sessions, limit)


def picks(pool: Pool, n: int, now: float = 0.0) -> list[str]:
    out = []
    for _ in range(n):
        choice = pool.choose(now)
        assert isinstance(choice, Pick), choice
        out.append(choice.url)
    return out


# ------------------------------------------------------------------ the setting


def test_a_setting_names_urls_and_dns_names() -> None:
    spec = parse_stage_urls(f" {A}, dns+ws://tasks.stt:8002/v1/stt ,{A},")
    assert spec == StageSpec((A,), ("ws://tasks.stt:8002/v1/stt",))
    assert spec.display == f"{A},dns+ws://tasks.stt:8002/v1/stt"


@pytest.mark.parametrize("bad", ["", " , ", "http://a:8002/v1/stt", "dns+tasks.stt", "ws:///v1/stt"])
def test_a_setting_without_a_ws_url_is_refused(bad: str) -> None:
    with pytest.raises(PoolSpecError):
        parse_stage_urls(bad)


def test_a_dns_name_expands_to_one_url_per_address() -> None:
    url = "ws://tasks.stt:8002/v1/stt"
    assert expand(url, ["10.0.0.7", "10.0.0.5", "10.0.0.7", "fd00::2"]) == [
        "ws://10.0.0.5:8002/v1/stt",
        "ws://10.0.0.7:8002/v1/stt",
        "ws://[fd00::2]:8002/v1/stt",
    ]


def test_health_answers() -> None:
    assert health_from_answer(200, {"status": "ready", "sessions": 2, "max_sessions": 4}) == ready(2, 4)
    assert health_from_answer(200, {"status": "ready"}) == ready()
    assert health_from_answer(503, {"status": "loading", "sessions": 0, "max_sessions": None}) == Health(
        False, "loading", 0, None
    )
    assert health_from_answer(502, None) == Health(False, "http 502")


# ------------------------------------------------------------------ choosing


def test_sessions_spread_over_replicas_before_any_health_report() -> None:
    pool = Pool("stt", [A, B, C])
    assert sorted(picks(pool, 3)) == [A, B, C]
    assert sorted(picks(pool, 3)) == [A, B, C]


def test_the_least_loaded_replica_counts_other_gateways_sessions() -> None:
    pool = Pool("stt", [A, B])
    pool.reported(A, ready(sessions=3), sent_at=1.0)  # others' sessions on A
    pool.reported(B, ready(sessions=0), sent_at=1.0)
    assert picks(pool, 3, now=2.0) == [B, B, B]
    assert picks(pool, 2, now=2.0) == [A, B]  # 3 and 3: the one picked longest ago (A); then 4 and 3: B


def test_a_pick_counts_until_a_report_sent_after_it_includes_it() -> None:
    pool = Pool("stt", [A, B])
    pool.reported(A, ready(0, 10), 0.0)
    pool.reported(B, ready(0, 10), 0.0)
    assert picks(pool, 1, now=1.0) == [A]
    pool.reported(A, ready(0, 10), sent_at=0.5)  # a check sent before the pick: it cannot know of it
    assert pool.replicas[A].load() == 1
    pool.reported(A, ready(1, 10), sent_at=1.5)  # sent after: it counts the session itself
    assert pool.replicas[A].load() == 1
    pool.release(A, now=2.0)
    assert pool.replicas[A].load() == 0
    pool.reported(A, ready(1, 10), sent_at=1.8)  # a check sent before the release still saw the session
    assert pool.replicas[A].load() == 0


def test_share_of_the_limit_decides_between_unequal_replicas() -> None:
    pool = Pool("stt", [A, B])
    pool.reported(A, ready(2, 4), 0.0)  # half full
    pool.reported(B, ready(3, 12), 0.0)  # a quarter full
    assert picks(pool, 1, now=1.0) == [B]


def test_every_replica_at_its_limit_is_full() -> None:
    pool = Pool("stt", [A, B])
    pool.reported(A, ready(0, 1), 0.0)
    pool.reported(B, ready(0, 1), 0.0)
    assert sorted(picks(pool, 2, now=1.0)) == [A, B]
    assert pool.choose(1.0) == Full(replicas=2, capacity=2)
    pool.release(B, 2.0)
    assert picks(pool, 1, now=2.0) == [B]


def test_a_replica_failing_its_health_check_gets_no_new_session() -> None:
    pool = Pool("stt", [A, B])
    pool.reported(A, Health(False, "unreachable (ConnectError)"), 0.0)
    pool.reported(B, ready(5), 0.0)
    assert picks(pool, 3, now=1.0) == [B, B, B]
    pool.reported(A, ready(0), 2.0)  # back
    assert picks(pool, 1, now=3.0) == [A]


def test_a_loading_replica_gets_no_session_while_another_is_ready() -> None:
    pool = Pool("stt", [A, B])
    pool.reported(A, Health(False, "loading", 0), 0.0)
    assert picks(pool, 2, now=1.0) == [B, B]  # B never checked yet: usable


def test_a_failed_connect_keeps_a_replica_out_until_it_passes_a_later_check_or_the_retry_time() -> None:
    pool = Pool("stt", [A, B], retry_after_s=10.0)
    assert picks(pool, 1, now=0.0) == [A]
    pool.connect_failed(A, now=1.0)
    assert pool.replicas[A].links == 0  # the pick is taken back
    assert picks(pool, 2, now=2.0) == [B, B]
    pool.reported(A, ready(0), sent_at=0.5)  # sent before the failure: says nothing about it
    assert picks(pool, 1, now=3.0) == [B]
    pool.reported(A, ready(0), sent_at=4.0)
    assert picks(pool, 1, now=5.0) == [A]
    pool.connect_failed(A, now=6.0)
    assert picks(pool, 1, now=15.0) == [B]
    assert picks(pool, 1, now=16.0) == [A]  # no check came, but the retry time has passed


def test_a_replica_refusing_as_full_counts_as_full_until_a_newer_report() -> None:
    pool = Pool("stt", [A, B])
    pool.reported(B, Health(False, "loading"), 0.0)
    assert picks(pool, 1, now=1.0) == [A]
    pool.connect_failed(A, now=1.0, full=True)
    assert pool.choose(1.5) == Full(replicas=1, capacity=0)  # the one usable replica is full; B is still loading
    pool.reported(A, ready(3, 4), sent_at=2.0)
    assert picks(pool, 1, now=2.5) == [A]


def test_when_none_is_usable_the_least_recently_failed_is_tried_anyway() -> None:
    pool = Pool("stt", [A, B])
    pool.reported(A, Health(False, "unreachable (ConnectError)"), 0.0)
    pool.reported(B, Health(False, "unreachable (ConnectError)"), 0.0)
    pool.connect_failed(B, now=1.0)
    pool.connect_failed(A, now=2.0)
    assert picks(pool, 1, now=3.0) == [B]


def test_a_lost_link_prefers_another_replica_but_takes_its_own_if_it_is_the_only_one() -> None:
    pool = Pool("stt", [A, B])
    pool.reported(A, ready(0), 0.0)
    pool.reported(B, ready(9), 0.0)
    assert pool.choose(1.0, avoid=[A]) == Pick(B)
    single = Pool("stt", [A])
    assert single.choose(1.0, avoid=[A]) == Pick(A)


def test_one_connect_tries_each_replica_once() -> None:
    pool = Pool("stt", [A, B])
    assert pool.choose(0.0, exclude=[A]) == Pick(B)
    assert isinstance(pool.choose(0.0, exclude=[A, B]), NoReplica)
    assert isinstance(Pool("stt").choose(0.0), NoReplica)


def test_dns_changes_the_replica_set_and_keeps_what_it_knew() -> None:
    pool = Pool("stt", [A])
    pool.resolved([B, C])
    pool.reported(B, ready(1, 2), 0.0)
    pool.resolved([C, B])
    assert set(pool.replicas) == {A, B, C} and pool.replicas[B].load() == 1
    pool.resolved([])
    assert set(pool.replicas) == {A}  # a fixed URL stays; the ones DNS dropped are gone
    pool.release(B, 1.0)  # a link on a replica that left closes: nothing to count
    pool.reported(B, ready(0), 1.0)
    assert set(pool.replicas) == {A}


def test_status_and_view() -> None:
    pool = Pool("stt", [A, B])
    assert pool.status() == "unchecked"
    pool.reported(A, Health(False, "loading"), 0.0)
    assert pool.status() == "loading"
    pool.reported(B, ready(1, 1), 0.0)
    assert pool.status() == "ready"
    assert pool.view(0.0) == [
        {"url": A, "state": "loading", "sessions": 0, "max_sessions": None},
        {"url": B, "state": "full", "sessions": 1, "max_sessions": 1},
    ]
