"""The test voices: espeak-ng variants at different speeds and piper's embedded ``joe``, cached as WAV files.

Every clip is made the same way whatever the engine: the engine's own output (22,050 Hz) → sox → mono PCM16 at the
rate asked, with ``pad_s`` of silence before and after (so the gateway's VAD sees a start and an end). The direct decode
gets the 16 kHz clip, the live path the clip at the client's rate (24 kHz, what OpenAI Realtime clients send): both from
the same engine output, each resampled once by sox."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import threading
import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from tests.speech import read_pcm16

CACHE_VERSION = "1"  # bump when clips would come out differently for the same key


@dataclass(frozen=True)
class Voice:
    name: str
    engine: str  # "espeak" or "piper"
    voice: str  # espeak-ng voice, or piper voice setting (embedded:joe)
    speed: float  # espeak: words per minute; piper: speaking rate (1.0: the voice's own)

    def describe(self) -> str:
        if self.engine == "espeak":
            return f"espeak-ng {self.voice} at {self.speed:.0f} wpm"
        return f"piper {self.voice} at {self.speed:g}× speed"


VOICES = [
    Voice("espeak-us-150", "espeak", "en-us", 150),  # the tests' usual speaker
    Voice("espeak-gb-175", "espeak", "en-gb", 175),
    Voice("espeak-f3-135", "espeak", "en+f3", 135),  # a female variant, slow
    Voice("piper-joe", "piper", "embedded:joe", 1.0),
    Voice("piper-joe-fast", "piper", "embedded:joe", 1.25),
]
VOICE_NAMES = [v.name for v in VOICES]


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "s2s" / "eval-speech"


def voice_named(name: str) -> Voice:
    for voice in VOICES:
        if voice.name == name:
            return voice
    raise KeyError(f"unknown voice {name!r}; known: {', '.join(VOICE_NAMES)}")


def _espeak(voice: Voice, text: str, out: Path) -> None:
    # -g 5: a small gap between words, as tests/speech.py does (without it Whisper hears "of France" as "of friends").
    cmd = ["espeak-ng", "-v", voice.voice, "-s", str(int(voice.speed)), "-g", "5", "-w", str(out), text]
    subprocess.run(cmd, check=True, capture_output=True)


_piper_lock = threading.Lock()


@lru_cache(maxsize=2)
def _piper(setting: str) -> Any:
    from piper import PiperVoice

    from services.tts.backends.piper import voice_files

    model, config = voice_files(setting)
    return PiperVoice.load(str(model), config_path=str(config))


def _piper_speak(voice: Voice, text: str, out: Path) -> None:
    from piper import SynthesisConfig

    with _piper_lock:
        model = _piper(voice.voice)
        config = SynthesisConfig(length_scale=model.config.length_scale / voice.speed)
        pcm = b"".join(chunk.audio_int16_bytes for chunk in model.synthesize(text, syn_config=config))
        rate = model.config.sample_rate
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)


def clip_path(voice: Voice, text: str, rate: int, pad_s: float, cache_dir: Path | None = None) -> Path:
    """The cached WAV of ``voice`` saying ``text`` at ``rate`` Hz, padded; made on first use."""
    key = "\n".join([CACHE_VERSION, voice.engine, voice.voice, f"{voice.speed:g}", text, str(rate), f"{pad_s:g}"])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    directory = cache_dir or default_cache_dir()
    path = directory / f"{voice.name}-{digest}-{rate}.wav"
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        raw = Path(tmp) / "raw.wav"
        (_espeak if voice.engine == "espeak" else _piper_speak)(voice, text, raw)
        made = Path(tmp) / "clip.wav"
        cmd = ["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(made)]
        subprocess.run([*cmd, "pad", f"{pad_s:g}", f"{pad_s:g}"], check=True, capture_output=True)
        made.replace(path)  # atomic: a concurrent run never reads half a file
    return path


def clip(voice: Voice, text: str, rate: int, pad_s: float = 1.0, cache_dir: Path | None = None) -> bytes:
    """PCM16 mono at ``rate`` (see ``clip_path``)."""
    pcm, got = read_pcm16(clip_path(voice, text, rate, pad_s, cache_dir))
    assert got == rate, f"{voice.name}: {got} Hz, wanted {rate}"
    return pcm
