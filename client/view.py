"""What the microphone client shows: connection state, the user's words as recognised, the reply, the last latency.

On a terminal a live panel at the bottom is redrawn in place (rich) and finished turns scroll above it; when the
output is not a terminal (a pipe, a log file) the same facts are printed as plain lines.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text


class TerminalView:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.live_mode = self.console.is_terminal
        self.status = "starting"
        self.user = ""
        self.assistant = ""
        self.latency = "–"
        self._live: Live | None = None
        if self.live_mode:
            self._live = Live(self._panel(), console=self.console, refresh_per_second=12, transient=True)
            self._live.start()

    # ------------------------------------------------------------------ what the client reports

    def state(self, text: str) -> None:
        """Connection and turn state: connecting, listening, you are speaking, replying, reconnecting in 1 s, …"""
        if text == self.status:
            return
        self.status = text
        if not self.live_mode:
            self.console.print(Text(f"[{text}]"))
        self._redraw()

    def notice(self, text: str) -> None:
        """A line that stays: errors, reconnects, interruptions."""
        self._print(text)

    def user_partial(self, delta: str) -> None:
        self.user += delta
        self._redraw()

    def user_final(self, text: str) -> None:
        self.user = ""
        if text:
            self._print(f"you: {text}")
        self._redraw()

    def assistant_delta(self, delta: str) -> None:
        self.assistant += delta
        self._redraw()

    def assistant_done(self, text: str, status: str) -> None:
        self.assistant = ""
        if text:
            suffix = "" if status == "completed" else f"  ({status})"
            self._print(f"assistant: {text.strip()}{suffix}")
        self._redraw()

    def turn_latency(self, heard_ms: float | None, server_ms: float | None) -> None:
        parts = []
        if heard_ms is not None:
            parts.append(f"{heard_ms:.0f} ms from your last word to the reply in the speaker")
        if server_ms is not None:
            parts.append(f"gateway {server_ms:.0f} ms")
        if parts:
            self.latency = "; ".join(parts)
            self._print(f"latency: {self.latency}")
            self._redraw()

    def close(self, farewell: str | None = None) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        if farewell:
            self.console.print(Text(farewell))

    # ------------------------------------------------------------------ drawing

    def _print(self, line: str) -> None:
        target = self._live.console if self._live is not None else self.console
        target.print(Text(line))

    def _panel(self) -> Group:
        return Group(
            Text.assemble(
                ("● ", "green" if self.status.startswith(("listening", "you", "assistant")) else "yellow"),
                (self.status, "bold"),
            ),
            Text.assemble(("  you ▸ ", "cyan"), self.user or "…"),
            Text.assemble(("  assistant ▸ ", "magenta"), self.assistant.strip() or "…"),
            Text.assemble(("  last turn ▸ ", "dim"), self.latency),
        )

    def _redraw(self) -> None:
        if self._live is not None:
            self._live.update(self._panel())
