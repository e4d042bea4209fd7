"""The I/O around the stage replica pools (services/gateway/pool.py decides): DNS, /healthz polls, the clock.

One ``StagePools`` per gateway holds a ``Pool`` per stage, built from the stage's URL setting (comma-separated URLs
and/or ``dns+ws://NAME:PORT/PATH``). Its ``run`` task resolves the dns+ names every ``resolve_interval_s`` and polls
every replica's /healthz every ``health_interval_s``; a session's ``StageLink`` asks its stage's ``StageReplicas``
for a replica per connect attempt and tells it when a connect failed or a link closed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

from services.gateway.pool import Choice, Health, Pool, StageSpec, expand, health_from_answer, parse_stage_urls
from services.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

STAGES = ("vad", "stt", "llm", "tts")


def stage_health_url(ws_url: str) -> str:
    base = ws_url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    return base.split("/v1/", 1)[0] + "/healthz"


class StageReplicas:
    """One stage's pool as a StageLink uses it (services/gateway/upstream.py ``Replicas``), with the clock read here."""

    def __init__(self, pool: Pool, spec: StageSpec, attempts: int) -> None:
        self.pool = pool
        self.display = spec.display
        self.attempts = attempts

    def choose(self, avoid: Iterable[str], exclude: Iterable[str]) -> Choice:
        return self.pool.choose(time.monotonic(), avoid, exclude)

    def failed(self, url: str, full: bool) -> None:
        self.pool.connect_failed(url, time.monotonic(), full)
        log.info("%s replica %s %s", self.pool.stage, url, "refused a session: full" if full else "failed a connect")

    def release(self, url: str) -> None:
        self.pool.release(url, time.monotonic())


class StagePools:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        urls = {"vad": settings.vad_url, "stt": settings.stt_url, "llm": settings.llm_url, "tts": settings.tts_url}
        self.specs = {stage: parse_stage_urls(urls[stage]) for stage in STAGES}
        self.pools = {stage: Pool(stage, spec.static, settings.replica_retry_s) for stage, spec in self.specs.items()}
        self.handles = {
            stage: StageReplicas(self.pools[stage], self.specs[stage], settings.connect_attempts) for stage in STAGES
        }
        self._addresses: dict[str, list[str]] = {}  # dns+ URL -> the replica URLs it last resolved to

    # ------------------------------------------------------------------ DNS

    async def resolve(self) -> None:
        """Each dns+ name again; a name that fails to resolve keeps its last replicas (health checks judge them)."""
        loop = asyncio.get_running_loop()
        for stage, spec in self.specs.items():
            if not spec.dns:
                continue
            for url in spec.dns:
                parts = urlsplit(url)
                try:
                    infos = await loop.getaddrinfo(parts.hostname, parts.port, type=socket.SOCK_STREAM)
                except OSError as err:
                    log.warning("%s: %s does not resolve (%s); keeping its last replicas", stage, parts.hostname, err)
                    continue
                found = expand(url, {str(info[4][0]) for info in infos})
                if found != self._addresses.get(url):
                    log.info("%s: %s resolves to %d replicas: %s", stage, parts.hostname, len(found), found)
                self._addresses[url] = found
            self.pools[stage].resolved(u for dns_url in spec.dns for u in self._addresses.get(dns_url, []))

    # ------------------------------------------------------------------ health

    async def check(self, http: httpx.AsyncClient) -> None:
        """Every replica's /healthz, at once; each answer (or its absence) goes to its pool."""

        async def one(stage: str, url: str) -> None:
            sent_at = time.monotonic()
            try:
                answer = await http.get(stage_health_url(url), timeout=self.settings.health_interval_s)
                body: Any = (
                    answer.json() if answer.headers.get("content-type", "").startswith("application/json") else None
                )
                health = health_from_answer(answer.status_code, body)
            except (httpx.HTTPError, ValueError) as exc:
                health = Health(False, f"unreachable ({type(exc).__name__})")
            before = self.pools[stage].replicas.get(url)
            if before is not None and before.health is not None and before.health.ready != health.ready:
                log.warning("%s replica %s: %s -> %s", stage, url, before.health.status, health.status)
            self.pools[stage].reported(url, health, sent_at)

        await asyncio.gather(*(one(stage, url) for stage, pool in self.pools.items() for url in list(pool.replicas)))

    async def run(self) -> None:
        """Forever: resolve when due, poll every replica, wait for the next round."""
        resolved_at = time.monotonic()
        async with httpx.AsyncClient() as http:
            while True:
                if time.monotonic() - resolved_at >= self.settings.resolve_interval_s:
                    resolved_at = time.monotonic()
                    await self.resolve()
                await self.check(http)
                await asyncio.sleep(self.settings.health_interval_s)  # the poll's period, not synchronisation

    def report(self) -> tuple[bool, dict[str, str], dict[str, list[dict[str, object]]]]:
        """(every stage has a ready replica, each stage's status, each replica's state and load)."""
        now = time.monotonic()
        states = {stage: pool.status() for stage, pool in self.pools.items()}
        replicas = {stage: pool.view(now) for stage, pool in self.pools.items()}
        return all(s == "ready" for s in states.values()), states, replicas
