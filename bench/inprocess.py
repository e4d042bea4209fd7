"""The baseline: the same backends and the same turn logic called in one process, no WebSockets.

Per turn, on the same audio the pipeline gets: VAD chunk by chunk (stream time, as the service does), the STT
decode started at the speculative pause, the LLM until its first speakable clause, TTS until its first audio.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from services.common.audio import pcm16_to_float
from services.common.messages import VadPause, VadSpeechStarted, VadSpeechStopped
from services.gateway.chunking import ClauseChunker
from services.gateway.settings import GatewaySettings
from services.llm.backends import create_backend as create_llm
from services.llm.backends.base import GenerationRequest
from services.llm.settings import LlmSettings
from services.stt.backend import load_backend as load_stt
from services.stt.settings import SttSettings
from services.tts.backends import load_backend as load_tts
from services.tts.settings import TtsSettings
from services.vad.app import VadStreamSession
from services.vad.backend import load_backend as load_vad
from services.vad.segmenter import SegmenterConfig
from services.vad.settings import VadSettings


@dataclass
class InProcessTurn:
    end_of_turn_ms: float
    stt_wait_ms: float  # after the end of turn, waiting for the (speculative) transcript
    llm_first_clause_ms: float
    tts_first_audio_ms: float
    transcript: str
    first_clause: str

    @property
    def voice_to_voice_ms(self) -> float:
        return self.end_of_turn_ms + self.stt_wait_ms + self.llm_first_clause_ms + self.tts_first_audio_ms


class InProcessPipeline:
    def __init__(self) -> None:
        self.vad_settings, self.gateway_settings = VadSettings(), GatewaySettings()
        self.vad = load_vad(self.vad_settings.backend, self.vad_settings.model_path)
        self.stt = load_stt(SttSettings())
        self.llm_settings = LlmSettings()
        self.llm = create_llm(self.llm_settings)
        self.llm.load()
        self.tts = load_tts(TtsSettings())
        self.tts.warm_up()

    def turn(self, pcm16k: bytes) -> InProcessTurn:
        # VAD over the whole utterance, 32 ms at a time; stream time is what the service would see.
        pause_ms = self.gateway_settings.speculative_pause_ms
        config = SegmenterConfig(self.vad_settings.threshold, self.vad_settings.min_silence_ms, self.vad_settings.speech_pad_ms, pause_ms, self.vad_settings.min_speech_ms)
        session = VadStreamSession(self.vad, config)
        events = list(session.feed(pcm16_to_float(pcm16k)))
        start = next(e for e in events if isinstance(e, VadSpeechStarted))
        stop = next(e for e in events if isinstance(e, VadSpeechStopped))
        pause = next((e for e in events if isinstance(e, VadPause) and e.end_ms == stop.voice_end_ms), None)
        end_of_turn_ms = stop.detected_ms - stop.voice_end_ms
        # STT: decoded from the pause on (as the gateway does); what remains after the end of turn is waited for.
        decode_end_ms = (pause.end_ms + pause_ms) if pause else stop.end_ms
        audio = np.frombuffer(pcm16k, dtype="<i2").astype(np.float32)[start.start_ms * 16 : decode_end_ms * 16] / 32768.0
        t0 = time.perf_counter()
        transcript = self.stt.transcribe(audio, self.gateway_settings.language).text
        decode_ms = (time.perf_counter() - t0) * 1000
        decode_started_ms = (pause.end_ms + pause_ms + 32) if pause else stop.detected_ms  # +1 chunk: pause is seen after it
        stt_wait_ms = max(0.0, decode_started_ms + decode_ms - stop.detected_ms)
        # LLM until the first clause the chunker would hand to TTS.
        request = GenerationRequest(
            messages=[{"role": "system", "content": self.llm_settings.system_prompt}, {"role": "user", "content": transcript}],
            max_tokens=self.llm_settings.max_tokens, temperature=self.llm_settings.temperature, seed=self.llm_settings.seed,
        )
        chunker, cancelled, first_clause = ClauseChunker(), threading.Event(), ""
        t0 = time.perf_counter()
        pieces = self.llm.generate(request, cancelled)
        for piece in pieces:
            ready = chunker.push(piece.text)
            if ready:
                first_clause = ready[0]
                break
        else:
            first_clause = " ".join(chunker.flush())
        llm_ms = (time.perf_counter() - t0) * 1000
        cancelled.set()
        for _ in pieces:  # drain: the backend stops within a token
            pass
        # TTS until its first audio.
        stop_tts = threading.Event()
        t0 = time.perf_counter()
        chunks = self.tts.synthesize(first_clause or "Okay.", stop_tts)
        next(chunks, None)
        tts_ms = (time.perf_counter() - t0) * 1000
        stop_tts.set()
        for _ in chunks:
            pass
        return InProcessTurn(end_of_turn_ms, stt_wait_ms, llm_ms, tts_ms, transcript, first_clause)
