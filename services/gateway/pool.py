"""Which replica of a stage gets a session's link: pure decisions over what the gateway has seen of the replicas.

Events in — the replica set (static URLs plus what DNS gave), health reports (``/healthz``: ready, sessions,
max_sessions), a connect that failed or was refused as full, a link opened (by a pick) or released — and a choice
out: ``Pick(url)``, ``Full`` (every usable replica is at its limit: the client is told ``session_limit_reached``) or
``NoReplica``. No I/O and no clock reads: every event carries its time (the event loop's clock, in seconds), so a
test replays any sequence. The I/O around it (DNS, health polls, connects) is services/gateway/replicas.py.

The rules:
- A replica is usable unless its last health report says it is not ready (or it did not answer), or a connect to it
  failed less than ``retry_after_s`` ago and no health report sent since then says it is ready again. A replica never
  checked yet is usable (the gateway takes sessions before its first poll).
- Its load is what it last reported, plus the links this gateway opened and minus those it released since that
  report's request was sent; never less than this gateway's own links on it. A pick counts at once, so sessions that
  start together spread.
- It is full at ``max_sessions`` (when it reports one), or after it refused a connect as full, until a report sent
  after that refusal shows room.
- The pick: the least loaded usable replica with room (by share of its limit, then sessions, then the one picked
  longest ago); replicas in ``avoid`` (the one a link just lost) only when no other has room. Every usable replica
  full: ``Full``. None usable: the least recently failed one that is not known full is tried anyway — a health check
  can be wrong, a connect is the last word — and only when all of them are full is the answer ``Full``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

DNS_PREFIX = "dns+"  # dns+ws://tasks.stt:8002/v1/stt: one replica per address the name resolves to
NEVER = float("-inf")
MAX_CHANGES = 1024  # load changes kept between two health reports (more only if reports stop coming)


class PoolSpecError(ValueError):
    pass


@dataclass(frozen=True)
class StageSpec:
    """A stage URL setting, parsed: fixed URLs and DNS names to resolve."""

    static: tuple[str, ...]
    dns: tuple[str, ...]  # the URLs without their dns+ prefix; the host is the name to resolve

    @property
    def display(self) -> str:
        return ",".join([*self.static, *(DNS_PREFIX + u for u in self.dns)])


def parse_stage_urls(value: str) -> StageSpec:
    """``ws://a:8002/v1/stt,ws://b:8002/v1/stt`` and/or ``dns+ws://tasks.stt:8002/v1/stt`` (comma-separated)."""
    static: list[str] = []
    dns: list[str] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        target = dns if item.startswith(DNS_PREFIX) else static
        url = item.removeprefix(DNS_PREFIX)
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise PoolSpecError(f"{item!r} is not a ws:// or wss:// URL (optionally prefixed with {DNS_PREFIX})")
        if url not in target:
            target.append(url)
    if not static and not dns:
        raise PoolSpecError(f"{value!r} names no stage URL")
    return StageSpec(tuple(static), tuple(dns))


def expand(url: str, addresses: Iterable[str]) -> list[str]:
    """``url`` with its host replaced by each address (IPv6 in brackets), in a stable order."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port is not None else ""
    out = []
    for address in sorted(set(addresses)):
        host = f"[{address}]" if ":" in address else address
        out.append(urlunsplit((parts.scheme, host + port, parts.path, parts.query, parts.fragment)))
    return out


@dataclass(frozen=True)
class Health:
    """One /healthz answer (or its absence: ``ready`` False with the reason in ``status``)."""

    ready: bool
    status: str
    sessions: int | None = None
    max_sessions: int | None = None  # None or 0: no limit


def health_from_answer(status_code: int, body: object) -> Health:
    """A replica's /healthz answer (services/common/service.py: status, sessions, max_sessions) as a Health."""
    if not isinstance(body, dict):
        return Health(False, f"http {status_code}")
    status = str(body.get("status", "unknown"))
    sessions, limit = body.get("sessions"), body.get("max_sessions")
    return Health(
        status_code == 200 and status == "ready",
        status,
        sessions if isinstance(sessions, int) else None,
        limit if isinstance(limit, int) else None,
    )


@dataclass(frozen=True)
class Pick:
    url: str


@dataclass(frozen=True)
class Full:
    replicas: int  # how many are full
    capacity: int  # their sessions together (0 when none reports a limit)


@dataclass(frozen=True)
class NoReplica:
    reason: str


Choice = Pick | Full | NoReplica


@dataclass
class Replica:
    url: str
    health: Health | None = None
    checked_at: float = NEVER  # when the request behind ``health`` was sent
    failed_at: float | None = None  # a connect failed then
    full_at: float | None = None  # it refused a connect as full then
    links: int = 0  # this gateway's links on it, picks included
    picked_at: float = NEVER
    changes: list[tuple[float, int]] = field(default_factory=list)  # (when, +1/-1) since the last report's request

    @property
    def limit(self) -> int:
        return (self.health.max_sessions or 0) if self.health else 0

    def load(self) -> int:
        if self.health is None or self.health.sessions is None:
            return self.links
        return max(self.links, self.health.sessions + sum(d for _, d in self.changes))

    def usable(self, now: float, retry_after_s: float) -> bool:
        if self.health is not None and not self.health.ready:
            return False
        return self.failed_at is None or now - self.failed_at >= retry_after_s

    def full(self) -> bool:
        return self.full_at is not None or (self.limit > 0 and self.load() >= self.limit)

    def share(self) -> float:
        return self.load() / self.limit if self.limit else 0.0

    def describe(self, now: float, retry_after_s: float) -> dict[str, object]:
        if self.health is None:
            state = "unchecked"
        elif not self.health.ready:
            state = self.health.status
        elif not self.usable(now, retry_after_s):
            state = "connect failed"
        else:
            state = "full" if self.full() else "ready"
        return {"url": self.url, "state": state, "sessions": self.load(), "max_sessions": self.limit or None}


class Pool:
    """One stage's replicas and the gateway's view of them."""

    def __init__(self, stage: str, static: Sequence[str] = (), retry_after_s: float = 10.0) -> None:
        self.stage = stage
        self.retry_after_s = retry_after_s
        self._static = tuple(static)
        self.replicas: dict[str, Replica] = {url: Replica(url) for url in self._static}

    # ------------------------------------------------------------------ events

    def resolved(self, urls: Iterable[str]) -> None:
        """The replicas DNS gave now (the static ones always stay); a replica that left is forgotten."""
        wanted = dict.fromkeys([*self._static, *urls])
        self.replicas = {url: self.replicas.get(url) or Replica(url) for url in wanted}

    def reported(self, url: str, health: Health, sent_at: float) -> None:
        """A health check sent at ``sent_at`` answered (or failed: ``health.ready`` False)."""
        replica = self.replicas.get(url)
        if replica is None or sent_at < replica.checked_at:
            return  # a replica that left, or an answer overtaken by a newer one
        replica.health, replica.checked_at = health, sent_at
        replica.changes = [(t, d) for t, d in replica.changes if t >= sent_at]
        if health.ready:
            if replica.failed_at is not None and replica.failed_at <= sent_at:
                replica.failed_at = None
            if replica.full_at is not None and replica.full_at <= sent_at:
                replica.full_at = None  # a newer report: its sessions and limit decide from now on

    def connect_failed(self, url: str, now: float, full: bool = False) -> None:
        """A connect picked by ``choose`` failed (``full``: the replica refused it as at its limit); the pick is
        taken back."""
        replica = self.replicas.get(url)
        if replica is None:
            return
        self._drop_link(replica, now)
        if full:
            replica.full_at = now
        else:
            replica.failed_at = now

    def release(self, url: str, now: float) -> None:
        """A link picked by ``choose`` has closed."""
        replica = self.replicas.get(url)
        if replica is not None:
            self._drop_link(replica, now)

    # ------------------------------------------------------------------ the decision

    def choose(self, now: float, avoid: Iterable[str] = (), exclude: Iterable[str] = ()) -> Choice:
        """The replica for a new link (counted on it at once), or why there is none."""
        avoided, excluded = frozenset(avoid), frozenset(exclude)
        candidates = [r for r in self.replicas.values() if r.url not in excluded]
        if not candidates:
            tried = f"; {len(excluded)} tried" if excluded else ""
            return NoReplica(f"no {self.stage} replica is known{tried}")
        usable = [r for r in candidates if r.usable(now, self.retry_after_s)]
        with_room = [r for r in usable if not r.full()]
        if with_room:
            best = min(with_room, key=lambda r: (r.url in avoided, r.share(), r.load(), r.picked_at, r.url))
            return self._pick(best, now)
        if usable:
            return self._full(usable)
        last_resort = [r for r in candidates if not r.full()]
        if not last_resort:
            return self._full(candidates)
        best = min(last_resort, key=lambda r: (r.url in avoided, r.failed_at or NEVER, r.checked_at, r.url))
        return self._pick(best, now)

    def view(self, now: float) -> list[dict[str, object]]:
        return [r.describe(now, self.retry_after_s) for r in self.replicas.values()]

    def status(self) -> str:
        """``ready`` when a replica's last report says so, else the first replica's state."""
        states = [r.health.status if r.health else "unchecked" for r in self.replicas.values()]
        if any(r.health is not None and r.health.ready for r in self.replicas.values()):
            return "ready"
        return states[0] if states else "no replicas"

    # ------------------------------------------------------------------ internals

    def _pick(self, replica: Replica, now: float) -> Pick:
        replica.links += 1
        replica.picked_at = now
        self._change(replica, now, +1)
        return Pick(replica.url)

    def _drop_link(self, replica: Replica, now: float) -> None:
        if replica.links > 0:
            replica.links -= 1
            self._change(replica, now, -1)

    @staticmethod
    def _change(replica: Replica, now: float, delta: int) -> None:
        replica.changes.append((now, delta))
        if len(replica.changes) > MAX_CHANGES:  # no report for a long while: the load rests on the own links
            del replica.changes[: MAX_CHANGES // 2]

    @staticmethod
    def _full(replicas: list[Replica]) -> Full:
        return Full(len(replicas), sum(r.limit for r in replicas))
