"""Decode only the speech: Whisper on the utterance's own log-mel frames instead of a 30 s window.

faster-whisper's ``transcribe`` always encodes 30 s; the encoder's cost is about linear in frames, so a 3 s question
pays ten times what it needs. Underneath, ``WhisperModel.model`` (a ``ctranslate2.models.Whisper``) takes shorter
features. Whisper was trained on 30 s windows, though, and on a short window it often fails to stop: it says the
sentence again, or repeats one word. Measured on 48 espeak clips (docs/performance.md, "STT: decode only the speech"):
2 s of zero features after the speech (what the 30 s path pads with, too) plus timestamp mode (the model places its
text in time) brought repeats from 20 of 48 clips to none, at a WER no worse than the 30 s window's. The guards below
catch what is left (a token cap by duration, text placed after the audio's end, Whisper's no-speech, log-prob and
gzip thresholds, a phrase said again and again); when one fires, the caller falls back to the 30 s path.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from services.stt.backends.base import SAMPLE_RATE

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

FRAMES_PER_S = 100  # Whisper's hop: 10 ms
MAX_FRAMES = 3000  # the encoder's 30 s window
TIME_PRECISION_S = 0.02  # one timestamp token


@dataclass(frozen=True)
class Guards:
    """When the short decode is not trusted. Thresholds after Whisper's own (no-speech 0.6, log-prob -1, gzip 2.4)."""

    tail_s: float = 2.0  # zero frames after the audio: without them Whisper repeats itself on short input
    # Longer utterances take the 30 s window: the saving shrinks (the encoder is most of the cost, and ~28 s of frames
    # is most of 30 s), and on 7 monologues of 18-28 s the short decode's WER was 10.5 % against the window's 2.6 %
    # (ends and middles of long texts dropped); multi-question clips of 10-23 s came out the same either way.
    max_s: float = 15.0
    tokens_per_s: float = 6.0  # measured at most 3.7 text tokens/s on 48 clips (espeak up to 190 wpm), plus timestamps
    token_margin: int = 12
    no_speech_max: float = 0.6
    logprob_min: float = -1.0
    compression_max: float = 2.4
    # Language detection on 2 s of tail missed 5 of 48 English clips (30 s window: 1); padded to 10 s, 2.
    detect_min_s: float = 10.0

    def max_audio_s(self) -> float:
        """The longest audio decoded short; it must fit one window with its tail in any case."""
        return min(self.max_s, MAX_FRAMES / FRAMES_PER_S - self.tail_s)

    def token_cap(self, seconds: float) -> int:
        return math.ceil(self.tokens_per_s * seconds) + self.token_margin


@dataclass
class ShortResult:
    """The text and language of one item; ``guard`` names the first guard that fired (then the text is not trusted)."""

    text: str
    language: str
    guard: str | None = None
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0


_WORD = re.compile(r"[\w']+")


def repeated_phrase(text: str) -> str | None:
    """A phrase said again and again back to back: 1-3 words three times, or 4+ words twice ("Stop Stop Stop",
    "What time is it? What time is it?"). A phrase that comes back later in the sentence ("living in a big city and
    living in a quiet village") is normal speech and not counted."""
    words = _WORD.findall(text.lower())
    n = len(words)
    for size in range(1, n // 2 + 1):
        times = 3 if size < 4 else 2
        for start in range(0, n - size * times + 1):
            phrase = words[start : start + size]
            if all(words[start + k * size : start + (k + 1) * size] == phrase for k in range(1, times)):
                return " ".join(phrase)
    return None


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


class ShortDecoder:
    """Batched short decodes on a loaded faster-whisper model (CPU or CUDA; any Whisper size)."""

    def __init__(self, model: WhisperModel, beam_size: int = 1, guards: Guards | None = None) -> None:
        from faster_whisper.transcribe import get_suppressed_tokens

        self._model = model
        self._beam_size = beam_size
        self.guards = guards or Guards()
        self._multilingual = bool(model.model.is_multilingual)
        self._tokenizers: dict[str, Tokenizer] = {}
        self._suppress = list(get_suppressed_tokens(self._tokenizer("en"), [-1]))

    def fits(self, audio: np.ndarray) -> bool:
        return len(audio) / SAMPLE_RATE <= self.guards.max_audio_s()

    def decode(self, audios: Sequence[np.ndarray], languages: Sequence[str | None]) -> list[ShortResult]:
        """One encoder pass and one generate call for the whole batch; every item must ``fit``."""
        import ctranslate2  # type: ignore[import-untyped]

        detect = self._multilingual and any(lang is None for lang in languages)
        features = self._features(audios, round(self.guards.detect_min_s * FRAMES_PER_S) if detect else 0)
        model = self._model.model
        # As faster-whisper does: only with several GPUs does the encoder output go back to the CPU.
        to_cpu = model.device == "cuda" and len(model.device_index) > 1
        encoded = model.encode(ctranslate2.StorageView.from_array(features), to_cpu=to_cpu)
        langs = self._languages(encoded, languages)
        tokenizers = [self._tokenizer(lang) for lang in langs]
        prompts = [list(tok.sot_sequence) for tok in tokenizers]  # no <|notimestamps|>: timestamps place the text
        seconds = [len(audio) / SAMPLE_RATE for audio in audios]
        caps = [self.guards.token_cap(s) for s in seconds]
        results = model.generate(
            encoded,
            prompts,
            beam_size=self._beam_size,
            max_length=min(self._model.max_length, max(len(p) + cap for p, cap in zip(prompts, caps, strict=True))),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )
        return [
            self._check(result, tok, lang, sec, cap)
            for result, tok, lang, sec, cap in zip(results, tokenizers, langs, seconds, caps, strict=True)
        ]

    def _features(self, audios: Sequence[np.ndarray], min_frames: int = 0) -> np.ndarray:
        """Log-mel frames of each item, padded with zeros (the 30 s path's padding) to the longest plus the tail."""
        mels = [self._model.feature_extractor(audio)[..., :-1] for audio in audios]  # the last frame is padding
        frames = max(min_frames, max(m.shape[-1] for m in mels) + round(self.guards.tail_s * FRAMES_PER_S))
        frames = min(MAX_FRAMES, frames + frames % 2)  # the encoder's convolution halves the frames
        batch = np.zeros((len(mels), mels[0].shape[0], frames), dtype=np.float32)
        for i, mel in enumerate(mels):
            batch[i, :, : mel.shape[-1]] = mel[:, :frames]
        return batch

    def _languages(self, encoded: Any, languages: Sequence[str | None]) -> list[str]:
        if not self._multilingual:
            return ["en"] * len(languages)
        if all(lang is not None for lang in languages):
            return [str(lang) for lang in languages]
        detected = self._model.model.detect_language(encoded)  # one decoder step on the encoded speech itself
        return [lang or str(found[0][0])[2:-2] for lang, found in zip(languages, detected, strict=True)]

    def _tokenizer(self, language: str) -> Tokenizer:
        if language not in self._tokenizers:
            from faster_whisper.tokenizer import Tokenizer

            self._tokenizers[language] = Tokenizer(
                self._model.hf_tokenizer, self._multilingual, task="transcribe", language=language
            )
        return self._tokenizers[language]

    def _check(self, result: Any, tok: Tokenizer, language: str, seconds: float, cap: int) -> ShortResult:
        ids: list[int] = result.sequences_ids[0]
        cum_logprob = result.scores[0] * len(ids)  # length_penalty 1: the score is the mean log-prob
        avg_logprob = cum_logprob / (len(ids) + 1)
        text_ids, late = self._in_time(ids, tok, seconds)
        text = tok.decode(text_ids).strip()
        out = ShortResult(text, language, None, float(result.no_speech_prob), float(avg_logprob))
        if len(ids) >= cap:
            out.guard = "no_end"  # stopped by the token cap, not by Whisper: it was still going
        elif late:
            out.guard = "late_text"  # text placed after the audio's end: invented
        elif out.no_speech_prob > self.guards.no_speech_max:
            out.guard = "no_speech"
        elif not text:
            out.guard = "empty"  # no text, yet no-speech says speech: the 30 s window decides
        elif avg_logprob < self.guards.logprob_min:
            out.guard = "low_logprob"
        elif compression_ratio(text) > self.guards.compression_max:
            out.guard = "compression"
        elif repeated_phrase(text) is not None:
            out.guard = "repeat"
        return out

    @staticmethod
    def _in_time(ids: list[int], tok: Tokenizer, seconds: float) -> tuple[list[int], bool]:
        """Text tokens, and whether any text was placed at or after the audio's end."""
        text: list[int] = []
        late = False
        position = 0.0
        for token in ids:
            if token >= tok.timestamp_begin:
                position = (token - tok.timestamp_begin) * TIME_PRECISION_S
            elif token < tok.eot:
                if position >= seconds:
                    late = True
                text.append(token)
        return text, late
