"""Starts the five services as child processes, prefixes their logs, waits for health, stops them together."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field

import httpx
from rich.console import Console

COLORS = {"vad": "cyan", "stt": "green", "llm": "magenta", "tts": "yellow", "gateway": "bold blue"}


@dataclass
class Child:
    name: str
    module: str
    port: int
    env: dict[str, str]
    python: str = sys.executable  # a stage may live in its own virtualenv (parler-tts pins an older transformers)
    process: asyncio.subprocess.Process | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"


class ChildDied(RuntimeError):
    def __init__(self, child: Child, code: int) -> None:
        why = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        last = "\n".join(f"    {line}" for line in child.tail) or "    (no output)"
        super().__init__(f"{child.name} stopped ({why}). Its last lines:\n{last}")
        self.child = child


class Supervisor:
    def __init__(self, children: list[Child], console: Console, health_timeout_s: float = 600.0) -> None:
        self.children = children
        self.console = console
        self.health_timeout_s = health_timeout_s
        self._pumps: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        for child in self.children:
            child.process = await asyncio.create_subprocess_exec(
                child.python,
                "-m",
                child.module,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **child.env},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the runner only; it stops children in order
            )
            self._pumps[child.name] = asyncio.create_task(self._pump(child))

    async def _pump(self, child: Child) -> None:
        assert child.process and child.process.stdout
        width = max(len(c.name) for c in self.children)
        async for raw in child.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            child.tail.append(line)
            self.console.print(
                f"[{COLORS.get(child.name, 'white')}]{child.name:>{width}}[/] | {line}",
                markup=True,
                highlight=False,
                soft_wrap=True,
            )

    async def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.health_timeout_s
        pending = list(self.children)
        async with httpx.AsyncClient(timeout=2.0) as http:
            while pending:
                self.raise_if_dead()
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"not healthy after {self.health_timeout_s:.0f} s: {', '.join(c.name for c in pending)}"
                    )
                for child in list(pending):
                    try:
                        if (await http.get(child.health_url)).status_code == 200:
                            pending.remove(child)
                            self.console.print(f"[green]✓[/] {child.name} ready on port {child.port}")
                    except httpx.HTTPError:
                        pass
                if pending:
                    await asyncio.sleep(0.2)  # poll interval of the readiness check

    def raise_if_dead(self) -> None:
        for child in self.children:
            if child.process and child.process.returncode is not None:
                raise ChildDied(child, child.process.returncode)

    async def watch(self) -> None:
        """Returns only by raising ChildDied when a child stops."""
        waits = {asyncio.create_task(c.process.wait()): c for c in self.children if c.process}
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        child = waits[next(iter(done))]
        with contextlib.suppress(asyncio.TimeoutError):  # let the dead child's last words reach the console first
            await asyncio.wait_for(self._pumps[child.name], 2.0)
        code = child.process.returncode if child.process else None
        raise ChildDied(child, -1 if code is None else code)

    async def stop(self) -> None:
        # The gateway first so clients see a clean close, then the stages.
        for child in sorted(self.children, key=lambda c: c.name != "gateway"):
            if child.process and child.process.returncode is None:
                child.process.send_signal(signal.SIGTERM)
        for child in self.children:
            if child.process is None:
                continue
            try:
                await asyncio.wait_for(child.process.wait(), 10)
            except asyncio.TimeoutError:
                child.process.kill()
                await child.process.wait()
        for pump in self._pumps.values():
            pump.cancel()
