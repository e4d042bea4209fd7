"""A real terminal for tests: tmux runs a program in a pane; the test reads the screen as a user would see it."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class TmuxTerminal:
    """One tmux server (its own socket) with one pane running ``argv``; the pane stays after the program exits."""

    def __init__(
        self, root: Path, argv: list[str], env: dict[str, str], cwd: Path, width: int = 150, height: int = 40
    ) -> None:
        self.socket = root / "tmux.sock"
        self.env = env
        script = root / "run.sh"
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items() if k.isidentifier())
        # The exit status goes to a file: tmux sometimes marks the pane dead without reaping the program (a zombie
        # with no status for 10 s and more, seen in 5 of 16 runs), so #{pane_dead_status} can't be waited on.
        self.status_file = root / "exit-status"
        script.write_text(
            f"{exports}cd {shlex.quote(str(cwd))}\n{shlex.join(argv)}\necho $? > {shlex.quote(str(self.status_file))}\n"
        )
        self._tmux(
            "new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), f"bash {shlex.quote(str(script))}"
        )
        self._tmux("set-option", "-t", "t", "remain-on-exit", "on")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
            env=self.env,
        ).stdout

    def screen(self) -> str:
        """The visible screen plus the scrollback (what the user can scroll to)."""
        return self._tmux("capture-pane", "-p", "-J", "-S", "-500", "-t", "t")

    def send_keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def exit_status(self) -> int | None:
        text = self.status_file.read_text() if self.status_file.exists() else ""
        return int(text) if text.endswith("\n") else None  # the newline: the status is written whole

    def wait_for(self, condition: Callable[[str], bool], timeout_s: float, what: str) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            time.sleep(0.1)  # polling the screen, as a user watches it
        raise AssertionError(f"terminal never showed {what} within {timeout_s:.0f} s; screen:\n{self.screen()}")

    def wait_exit(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (status := self.exit_status()) is not None:
                return status
            time.sleep(0.1)
        raise AssertionError(f"the program did not exit within {timeout_s:.0f} s; screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], check=False, capture_output=True, timeout=10, env=self.env
        )
