"""parler-tts (Apache-2.0), the design card's TTS: a voice described in words, audio streamed while the decoder runs.

parler-tts pins transformers 4.46.1, so this backend lives in its own virtualenv/image (requirements/parler.txt).
The decoder emits audio-codec tokens step by step; parler's ParlerTTSStreamer decodes them with the DAC codec every
``play_steps`` steps, so the first audio leaves long before the sentence is finished.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from services.tts.backends.base import WARM_UP_TEXT, TtsBackend
from services.tts.settings import TtsSettings


def pcm16(audio: np.ndarray) -> bytes:
    """Float audio in [-1, 1] as PCM16LE bytes (clipped: a sampled decoder can overshoot)."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class _StopGate:
    """A StoppingCriteria: ends generation at the next decoder step once the piece is cancelled or its reader is gone."""

    def __init__(self, *flags: threading.Event) -> None:
        self._flags = flags

    def is_set(self) -> bool:
        return any(flag.is_set() for flag in self._flags)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self.is_set(), dtype=torch.bool, device=input_ids.device)


def _stoppable_streamer(model: Any, device: str, play_steps: int, gate: _StopGate) -> Any:
    """parler's ParlerTTSStreamer, except that once ``gate`` is set it skips the codec decodes nobody will hear."""
    from parler_tts import ParlerTTSStreamer

    class StoppableStreamer(ParlerTTSStreamer):
        def put(self, value: Any) -> None:
            if not gate.is_set():
                super().put(value)

        def end(self) -> None:
            if gate.is_set():  # the stock end() decodes the whole piece once more
                self.on_finalized_audio(np.zeros(0, dtype=np.float32), stream_end=True)
            else:
                super().end()

    return StoppableStreamer(model, device=device, play_steps=play_steps)


class ParlerBackend(TtsBackend):
    def __init__(self, settings: TtsSettings) -> None:
        import torch
        import transformers
        from parler_tts import ParlerTTSForConditionalGeneration

        if settings.device == "cpu" and settings.threads > 0:
            torch.set_num_threads(settings.threads)
        # parler's from_pretrained logs every sub-model's whole config as a warning: keep the service log readable.
        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()
        try:
            dtype = getattr(torch, settings.dtype)
            model = ParlerTTSForConditionalGeneration.from_pretrained(settings.parler_model, torch_dtype=dtype)
            tokenizer = transformers.AutoTokenizer.from_pretrained(settings.parler_model)
        finally:
            transformers.logging.set_verbosity(verbosity)
        self._device = settings.device
        self._model = model.to(settings.device).eval()
        self._tokenizer = tokenizer
        # The voice description is the same for every piece: tokenised once.
        self._description = tokenizer(settings.parler_description, return_tensors="pt").to(settings.device)
        codec = self._model.audio_encoder.config
        self.sample_rate = int(codec.sampling_rate)
        codebooks = self._model.decoder.num_codebooks
        # The streamer needs more steps than codebooks per chunk (the delay pattern holds the last ones back).
        self._play_steps = max(codebooks + 1, round(codec.frame_rate * settings.parler_chunk_ms / 1000))
        self._max_new_tokens = round(codec.frame_rate * settings.parler_max_seconds) + codebooks
        self._warm_up_tokens = 2 * self._play_steps + codebooks
        # One generation at a time on the model: generate() may keep a model-level cache (static cache, torch.compile).
        self._lock = threading.Lock()

    def synthesize(self, text: str, stop: threading.Event) -> Iterator[bytes]:
        return self._generate(text, stop, self._max_new_tokens)

    def warm_up(self) -> None:
        # Two streamed chunks load the kernels (CUDA, codec) as a whole sentence would, in a fraction of the time.
        for _ in self._generate(WARM_UP_TEXT, threading.Event(), self._warm_up_tokens):
            pass

    def _generate(self, text: str, stop: threading.Event, max_new_tokens: int) -> Iterator[bytes]:
        import torch
        from transformers import StoppingCriteriaList

        with self._lock:
            if stop.is_set():
                return
            closed = threading.Event()  # set when the reader stops early (generator closed)
            gate = _StopGate(stop, closed)
            streamer = _stoppable_streamer(self._model, self._device, self._play_steps, gate)
            prompt = self._tokenizer(text, return_tensors="pt").to(self._device)
            kwargs = {
                "input_ids": self._description.input_ids,
                "attention_mask": self._description.attention_mask,
                "prompt_input_ids": prompt.input_ids,
                "prompt_attention_mask": prompt.attention_mask,
                "streamer": streamer,
                "stopping_criteria": StoppingCriteriaList([gate]),
                "do_sample": True,  # parler's recommended decoding; greedy decoding drones
                "max_new_tokens": max_new_tokens,
            }
            failure: list[BaseException] = []

            def run() -> None:
                try:
                    with torch.inference_mode():
                        self._model.generate(**kwargs)
                except BaseException as exc:
                    # Re-raised in the reader's thread; end the stream so it doesn't wait forever.
                    failure.append(exc)
                    streamer.on_finalized_audio(np.zeros(0, dtype=np.float32), stream_end=True)

            worker = threading.Thread(target=run, name="tts-parler-generate", daemon=True)
            worker.start()
            try:
                for audio in streamer:
                    if stop.is_set():
                        return
                    if audio.size:
                        yield pcm16(audio)
                worker.join()
                if failure:
                    raise failure[0]
            finally:
                closed.set()
                worker.join()
