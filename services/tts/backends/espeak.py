"""espeak-ng (formant synthesis, GPL-3+) as a subprocess: robotic, but first audio in ~15 ms, streamed as produced."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator
from typing import IO

from services.tts.backends.base import TtsBackend, voice_language
from services.tts.settings import TtsSettings

DEFAULT_VOICE = "en-us"
NORMAL_WPM = 175  # espeak-ng's own default speed
MIN_WPM, MAX_WPM = 80, 450
READ_BYTES = 8192


class WavStreamError(RuntimeError):
    pass


def _read_exactly(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise WavStreamError(f"espeak-ng output ended inside the WAV header ({len(data)} of {n} bytes)")
    return data


def read_wav_header(stream: IO[bytes]) -> int:
    """Consumes a streamed RIFF/WAVE header up to the data chunk; returns the sample rate (PCM16 mono only)."""
    riff = _read_exactly(stream, 12)
    if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise WavStreamError("espeak-ng did not write a WAV stream")
    rate = None
    while True:
        chunk_id, size = struct.unpack("<4sI", _read_exactly(stream, 8))
        if chunk_id == b"data":  # its size is a placeholder while streaming: read to the end instead
            if rate is None:
                raise WavStreamError("WAV data before its fmt chunk")
            return rate
        body = _read_exactly(stream, size + (size & 1))
        if chunk_id == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if fmt != 1 or channels != 1 or bits != 16:
                raise WavStreamError(f"expected PCM16 mono, got format {fmt}, {channels} channels, {bits} bits")


class EspeakBackend(TtsBackend):
    def __init__(self, settings: TtsSettings, voice: str | None = None) -> None:
        """``voice``: an espeak-ng voice or language code (``fr``, ``es-419``); None: the ``voice`` setting."""
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise RuntimeError("espeak-ng is not installed: apt-get install espeak-ng")
        wpm = round(min(max(NORMAL_WPM * settings.speaking_rate, MIN_WPM), MAX_WPM))
        voice = voice or settings.voice or DEFAULT_VOICE
        self._command = [binary, "--stdout", "--stdin", "-v", voice, "-s", str(wpm)]
        self.sample_rate = self._probe_rate()
        self.language = voice_language(voice)

    def _probe_rate(self) -> int:
        """The voice's rate, from a tiny synthesis (it also fails fast on an unknown voice)."""
        done = subprocess.run(self._command, input=b"a", capture_output=True, timeout=30)
        if done.returncode != 0 or not done.stdout.startswith(b"RIFF"):
            raise RuntimeError(f"espeak-ng failed ({done.returncode}): {done.stderr.decode(errors='replace').strip()}")
        return struct.unpack("<I", done.stdout[24:28])[0]

    def synthesize(self, text: str, stop: threading.Event) -> Iterator[bytes]:
        # Text through stdin, never argv: nothing the LLM writes can be taken for an option.
        # stderr is dropped: an unread pipe could fill and stall espeak (the load-time probe reports its errors).
        proc = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            # Buffered pipes (Popen's default): read1 hands over what espeak has written so far, without waiting for more.
            assert proc.stdin is not None and isinstance(proc.stdout, io.BufferedReader)
            proc.stdin.write(text.encode("utf-8"))
            proc.stdin.close()
            rate = read_wav_header(proc.stdout)
            if rate != self.sample_rate:
                raise WavStreamError(f"espeak-ng changed rate from {self.sample_rate} to {rate} Hz")
            odd = b""  # a read may end between the two bytes of a sample
            while not stop.is_set():
                data = proc.stdout.read1(READ_BYTES)
                if not data:
                    break
                data, odd = odd + data, b""
                if len(data) & 1:
                    data, odd = data[:-1], data[-1:]
                if data:
                    yield data
            if not stop.is_set() and proc.wait() != 0:
                raise RuntimeError(f"espeak-ng exited with {proc.returncode}")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
