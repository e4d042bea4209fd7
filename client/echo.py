"""Keeping the assistant from hearing itself through the user's speakers.

Three modes (``--echo``):
- ``aec``: acoustic echo cancellation with WebRTC's AudioProcessing module (AEC3, from the ``aec-audio-processing``
  wheel, BSD-3-Clause): the speaker signal is the reference; AEC3 finds the echo's delay itself and removes the echo
  from the microphone, so the user can interrupt the assistant (barge-in) without headphones.
- ``half-duplex``: the microphone sends silence while the reply plays (and a short tail after, for the room's
  reverberation). Works everywhere, but the user cannot interrupt.
- ``off``: for headphones.

Measured on a recorded loop (the reply played to the virtual speaker, fed back into the virtual microphone at 0 dB
through a PulseAudio loopback, 412 ms echo delay, the user's question spoken over it): AEC3 removed 21-38 dB of echo and
Whisper heard the question in the cleaned signal ("What is the capital of Germany?", while the raw microphone gave the
assistant's words); libspeexdsp's canceller removed only 2-3 dB there (its filter cannot follow that long, drifting
delay), so it is not used. AEC3 costs about 0.1 ms per 10 ms frame.

The canceller runs at 16 kHz (the rate the gateway's VAD and STT use anyway): the microphone and the reference are
resampled to it in the sound card's callbacks, so they stay in step; the filter runs in the caller's thread.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque

import numpy as np

from services.common.audio import StreamResampler

AEC_RATE = 16000
FRAME = 160  # 10 ms at 16 kHz: the block AudioProcessing takes
HALF_DUPLEX_TAIL_S = 0.3  # microphone stays muted this long after the speaker went quiet


class EchoMode(str, enum.Enum):
    AEC = "aec"
    HALF_DUPLEX = "half-duplex"
    OFF = "off"


class EchoUnavailable(RuntimeError):
    """The echo canceller's library is missing; the message says how to install it."""


def aec_available() -> bool:
    try:
        import aec_audio_processing  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


class WebRtcEchoCanceller:
    """Removes the echo of ``reference`` from ``mic`` (both int16 at 16 kHz, equal lengths, any block size)."""

    def __init__(self) -> None:
        try:
            from aec_audio_processing import AudioProcessor
        except (ImportError, OSError) as exc:
            raise EchoUnavailable(
                f"echo cancellation needs aec-audio-processing (pip install 's2s[client]'): {exc}"
            ) from None
        # Noise suppression and gain control off: Whisper does better on the unprocessed voice.
        self._apm = AudioProcessor(enable_aec=True, enable_ns=False, enable_agc=False, enable_vad=False)
        self._apm.set_stream_format(AEC_RATE, 1)
        self._apm.set_reverse_stream_format(AEC_RATE, 1)
        self._apm.set_stream_delay(0)  # AEC3 estimates the delay itself
        self._mic = np.zeros(0, dtype=np.int16)
        self._ref = np.zeros(0, dtype=np.int16)
        self.gate = ResidualEchoGate()

    def process(self, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Returns the cleaned microphone signal, whole 10 ms frames only (the rest waits for the next call)."""
        self._mic = np.concatenate([self._mic, np.asarray(mic, dtype=np.int16)])
        self._ref = np.concatenate([self._ref, np.asarray(reference, dtype=np.int16)])
        frames = min(len(self._mic), len(self._ref)) // FRAME
        out = []
        for i in range(frames):
            span = slice(i * FRAME, (i + 1) * FRAME)
            self._apm.process_reverse_stream(self._ref[span].tobytes())  # what the speaker played ...
            clean = np.frombuffer(
                self._apm.process_stream(self._mic[span].tobytes()), dtype=np.int16
            )  # ... then the mic
            out.append(self.gate.process(clean, self._ref[span]))
        self._mic, self._ref = self._mic[frames * FRAME :], self._ref[frames * FRAME :]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


def _rms_db(frame: np.ndarray) -> float:
    return 10.0 * float(np.log10(np.mean(frame.astype(np.float32) ** 2) + 1.0))


class ResidualEchoGate:
    """Silences what AEC3 leaves of the echo while the speaker plays.

    The linear filter leaves a residual 20-40 dB below the echo; quiet as it is, it still sounds like speech to the
    VAD, which then takes the assistant's own voice for an interruption. While the speaker played anything in the last
    ``window_s`` (the echo's delay), a cleaned frame passes only if it is within ``margin_db`` of the speaker's level:
    the user's voice, which is about as loud as the echo or louder, does; the residual does not. A short hangover keeps
    the user's words whole once they pass.
    """

    def __init__(
        self, margin_db: float = 20.0, window_s: float = 0.6, hangover_s: float = 0.25, silence_db: float = 40.0
    ) -> None:
        self.margin_db = margin_db
        self.silence_db = silence_db  # below this (about -50 dBFS) the speaker counts as quiet
        self._levels: deque[float] = deque(maxlen=max(1, int(window_s * 100)))  # speaker level per 10 ms frame
        self._hangover = max(1, int(hangover_s * 100))
        self._open_for = 0
        self.gated_frames = 0

    def process(self, clean: np.ndarray, reference: np.ndarray) -> np.ndarray:
        self._levels.append(_rms_db(reference))
        speaker_db = max(self._levels)
        if speaker_db < self.silence_db:
            return clean
        if _rms_db(clean) > speaker_db - self.margin_db:
            self._open_for = self._hangover
        if self._open_for > 0:
            self._open_for -= 1
            return clean
        self.gated_frames += 1
        return np.zeros_like(clean)


class ReferenceTap:
    """What the speaker played, at 16 kHz, handed to the microphone side in step with the capture.

    The speaker callback writes what it plays; the microphone callback takes as many samples as it captured. Both run
    off one clock, so the backlog stays steady; it is kept short (at most ``max_lag_ms``), so the reference never lags
    behind its echo (the filter can only model echoes that come after their reference).
    """

    def __init__(self, speaker_rate: int, max_lag_ms: float = 40.0) -> None:
        self._resample = StreamResampler(speaker_rate, AEC_RATE)
        self._max_lag = int(AEC_RATE * max_lag_ms / 1000)
        self._pending = np.zeros(0, dtype=np.int16)
        self._lock = threading.Lock()

    def write(self, played: np.ndarray) -> None:
        ref = np.frombuffer(self._resample.process(np.asarray(played, dtype="<i2").tobytes()), dtype="<i2")
        with self._lock:
            self._pending = np.concatenate([self._pending, ref])
            if len(self._pending) > 4 * self._max_lag:  # the microphone stopped taking: don't grow without end
                self._pending = self._pending[-self._max_lag :]

    def take(self, n: int) -> np.ndarray:
        with self._lock:
            if len(self._pending) > n + self._max_lag:
                self._pending = self._pending[len(self._pending) - n - self._max_lag :]
            got, self._pending = self._pending[:n], self._pending[n:]
        if len(got) < n:  # the speaker has not played that much yet: silence is what it played
            got = np.concatenate([np.zeros(n - len(got), dtype=np.int16), got])
        return got


class HalfDuplexGate:
    """Mutes the microphone while the speaker talks, and for a short tail after (reverberation, device latency)."""

    def __init__(self, tail_s: float = HALF_DUPLEX_TAIL_S) -> None:
        self.tail_s = tail_s
        self._quiet_since: float | None = 0.0

    def gate(self, mic: np.ndarray, speaker_busy: bool) -> np.ndarray:
        now = time.monotonic()
        if speaker_busy:
            self._quiet_since = None
        elif self._quiet_since is None:
            self._quiet_since = now
        if self._quiet_since is None or now - self._quiet_since < self.tail_s:
            return np.zeros_like(mic)
        return mic
