"""A virtual sound card for tests: a private PulseAudio server with null sinks, reached by PortAudio through ALSA.

    speaker  ``vspk``      (null sink)    what a program plays; recorded back from ``vspk.monitor``
    mic feed ``vmicfeed``  (null sink)    tests play speech into it (``paplay -d vmicfeed``)
    mic      ``vmic``      (remap of vmicfeed.monitor)   what a program records

Real PortAudio, real ALSA pulse plugin, no hardware. Every wait is bounded and condition based.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVER_SCRIPT = """\
load-module module-native-protocol-unix auth-anonymous=1 socket={run}/pulse.sock
load-module module-null-sink sink_name=vspk rate=48000 channels=1
load-module module-null-sink sink_name=vmicfeed rate=48000 channels=1
load-module module-remap-source master=vmicfeed.monitor source_name=vmic
set-default-sink vspk
set-default-source vmic
"""

# Named ALSA devices, so a program can pick the card's devices by name (--input-device / --output-device).
ASOUNDRC = """\
pcm.vspk { type pulse device "vspk" }
pcm.vspkmon { type pulse device "vspk.monitor" }
pcm.vmic { type pulse device "vmic" }
"""

TOOLS = ("pulseaudio", "pactl", "paplay", "parecord")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@dataclass
class VirtualSoundCard:
    root: Path
    env: dict[str, str]

    def pactl(self, *args: str) -> str:
        return subprocess.run(
            ["pactl", *args], env=self.env, check=True, capture_output=True, text=True, timeout=10
        ).stdout

    def play_into_mic(self, wav: Path) -> subprocess.Popen:
        """Plays ``wav`` into the virtual microphone in real time (returns the paplay process)."""
        return subprocess.Popen(["paplay", "-d", "vmicfeed", str(wav)], env=self.env)

    @contextmanager
    def record_speaker(self, wav: Path, rate: int = 24000) -> Iterator[Path]:
        """Records what is played to the virtual speaker into ``wav`` until the block ends."""
        cmd = [
            "parecord",
            "-d",
            "vspk.monitor",
            "--rate",
            str(rate),
            "--channels",
            "1",
            "--format",
            "s16le",
            "--file-format=wav",
            str(wav),
        ]
        proc = subprocess.Popen(cmd, env=self.env)
        try:
            yield wav
        finally:
            proc.terminate()  # parecord finalises the WAV header on SIGTERM
            proc.wait(timeout=10)


def _wait_for_server(env: dict[str, str], proc: subprocess.Popen, log: Path, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pulseaudio exited with {proc.returncode}: {log.read_text()[-2000:]}")
        if subprocess.run(["pactl", "info"], check=False, env=env, capture_output=True, timeout=5).returncode == 0:
            return
        time.sleep(0.05)  # readiness poll of a daemon socket
    raise TimeoutError(f"pulseaudio did not answer within {timeout_s} s: {log.read_text()[-2000:]}")


@contextmanager
def virtual_sound_card(root: Path) -> Iterator[VirtualSoundCard]:
    """Starts a private PulseAudio server under ``root``; its ``env`` points PortAudio/ALSA and the pa tools at it."""
    run = root / "run"
    run.mkdir(parents=True, mode=0o700, exist_ok=True)
    os.chmod(run, 0o700)
    (root / "config" / "alsa").mkdir(parents=True, exist_ok=True)
    (root / "config" / "alsa" / "asoundrc").write_text(ASOUNDRC)
    (root / "state").mkdir(exist_ok=True)
    script = root / "vsnd.pa"
    script.write_text(SERVER_SCRIPT.format(run=run))
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(run),
        "XDG_CONFIG_HOME": str(root / "config"),
        "PULSE_RUNTIME_PATH": str(run / "pulse"),
        "PULSE_STATE_PATH": str(root / "state"),
        "PULSE_SERVER": f"unix:{run}/pulse.sock",
        "HOME": str(root),  # the pa client cookie and config stay in the test's directory
    }
    log = root / "pulseaudio.log"
    cmd = [
        "pulseaudio",
        "-n",
        "-F",
        str(script),
        "--daemonize=no",
        "--exit-idle-time=-1",
        "--disallow-exit",
        "--use-pid-file=no",
        "--log-target=stderr",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_server(env, proc, log)
        yield VirtualSoundCard(root, env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
