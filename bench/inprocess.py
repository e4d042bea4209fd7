"""The baseline: the gateway's own ``TurnMachine`` driving the same backends in one process, no WebSockets.

A discrete-event run on a virtual clock: the utterance goes in 32 ms at a time (``AudioIn`` and that chunk's VAD events
at its end, as if streamed live); each stage's answer to the machine's commands lands at the time it was asked for plus
the backend's real compute time. The numbers are the machine's own ``TurnClock`` report."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel

from services.common import realtime_server as ev
from services.common.audio import pcm16_to_float
from services.common.messages import LlmDelta, LlmDone, LlmGenerate, SttCommit, SttFinal, TtsDone, TtsSpeak, TtsStarted
from services.gateway.commands import AudioIn, Command, Emit, Event, FromStage, Send, Stage, StartTimer, TimerFired
from services.gateway.ids import Ids
from services.gateway.machine import TurnMachine
from services.gateway.session_state import SessionState
from services.gateway.settings import GatewaySettings
from services.gateway.vad_start import vad_start
from services.llm.app import build_request
from services.llm.backends import backends as llm_backends
from services.llm.backends.base import GenerationRequest
from services.llm.settings import LlmSettings
from services.stt.backends import backends as stt_backends
from services.stt.settings import SttSettings
from services.tts.backends import backends as tts_backends
from services.tts.cleanup import clean_for_speech, is_speakable
from services.tts.settings import TtsSettings
from services.vad.app import CHUNK_MS, VadStreamSession, config_for
from services.vad.backends import backends as vad_backends
from services.vad.settings import VadSettings


@dataclass
class InProcessTurn:
    end_of_turn_ms: float
    stt_wait_ms: float  # after the end of turn, waiting for the (speculative) transcript
    llm_first_clause_ms: float
    tts_first_audio_ms: float
    voice_to_voice_ms: float
    transcript: str
    first_clause: str
    timings: dict[str, float] = field(default_factory=dict)  # the machine's whole TurnClock report


@dataclass
class Stream:
    """A stage's output, pulled one message at a time: each lands at the time asked plus the compute spent so far."""

    stage: Stage
    items: Generator[BaseModel | bytes, None, None]
    at: float  # virtual time the backend's work has reached


class InProcessPipeline:
    def __init__(self) -> None:
        self.vad_settings, self.gateway_settings = VadSettings(), GatewaySettings()
        self.stt_settings, self.llm_settings = SttSettings(), LlmSettings()
        self.vad, self.stt = vad_backends.load(self.vad_settings), stt_backends.load(self.stt_settings)
        self.llm, self.tts = llm_backends.load(self.llm_settings), tts_backends.load(TtsSettings())
        self.language = self.gateway_settings.language or self.stt_settings.language  # as stt.start sets it
        self.stt.transcribe(np.zeros(16000, dtype=np.float32), self.language)  # the services' warm-ups
        hi = [{"role": "system", "content": self.llm_settings.system_prompt}, {"role": "user", "content": "Hi"}]
        deque(self.llm.generate(GenerationRequest(hi, 4, 0.0, self.llm_settings.seed), threading.Event()), 0)
        self.tts.warm_up()
        # What the gateway's vad.start asks for (a new session's turn detection), completed with the VAD's settings
        # exactly as the VAD service does (its end-of-turn mode included).
        start = vad_start(SessionState().turn_detection, self.gateway_settings.speculative_pause_ms)
        self.vad_config = config_for(self.vad_settings, start)

    def turn(self, pcm16k: bytes) -> InProcessTurn:
        return _Run(self, pcm16k).run()


class _Run:  # one turn: a new session's machine and a heap of (virtual time, order, event, stream it came from)
    def __init__(self, pipeline: InProcessPipeline, pcm16k: bytes) -> None:
        self.p, self.samples = pipeline, pcm16_to_float(pcm16k)
        self.machine = TurnMachine(SessionState(), pipeline.gateway_settings, Ids("bench"))
        self.heap: list[tuple[float, int, Event, Stream | None]] = []
        self.streams: dict[Stage, Stream] = {}  # the LLM reply and the TTS piece in progress
        self.tts_queue: deque[TtsSpeak] = deque()
        self.order, self.stt_free_at = itertools.count(), 0.0  # heap tie-break; the STT decodes one request at a time
        self.transcript, self.first_clause = "", ""
        vad = VadStreamSession(pipeline.vad, pipeline.vad_config)
        for end_ms in range(CHUNK_MS, len(self.samples) // 16 + 1, CHUNK_MS):  # VAD first: its compute is not timed
            self.push(end_ms / 1000, AudioIn(end_ms))
            for message in vad.feed(self.samples[(end_ms - CHUNK_MS) * 16 : end_ms * 16]):
                self.push(end_ms / 1000, FromStage("vad", message))

    def push(self, at: float, event: Event, stream: Stream | None = None) -> None:
        heapq.heappush(self.heap, (at, next(self.order), event, stream))

    def run(self) -> InProcessTurn:
        try:
            while self.heap:
                now, _, event, stream = heapq.heappop(self.heap)
                for command in self.machine.handle(event, now):
                    self.execute(command, now)
                if "first_audio_sent" in self.machine.clock.marks:
                    break  # the turn is measured: nothing more is pulled from the backends
                if stream is not None and self.streams.get(stream.stage) is stream:
                    self.advance(stream, now)
        finally:
            for stage in list(self.streams):
                self.stop(stage)
        t = self.machine.clock.report()
        spans = ("end_of_turn_ms", "stt_wait_ms", "llm_first_clause_ms", "tts_first_audio_ms", "voice_to_voice_ms")
        if missing := [name for name in spans if name not in t]:
            raise RuntimeError(f"the turn's clock lacks {missing} ({self.transcript!r}): timings {t}")
        eot, stt, llm, tts, v2v = (t[name] for name in spans)
        return InProcessTurn(eot, stt, llm, tts, v2v, self.transcript, self.first_clause, t)

    def advance(self, stream: Stream, now: float) -> None:  # its next message; at its end, the next queued piece
        t0, item = time.perf_counter(), next(stream.items, None)  # (left to right: t0 first)
        stream.at += time.perf_counter() - t0
        if item is not None:
            self.push(max(stream.at, now), FromStage(stream.stage, item), stream)
            return
        del self.streams[stream.stage]
        if stream.stage == "tts" and self.tts_queue:
            self.start("tts", self.tts_items(self.tts_queue.popleft()), now)

    def stop(self, stage: Stage) -> None:  # closing a stream stops its backend, as llm.cancel / tts.cancel would
        if stage == "tts":
            self.tts_queue.clear()
        if stage in self.streams:
            self.streams.pop(stage).items.close()

    def start(self, stage: Stage, items: Generator[BaseModel | bytes, None, None], now: float) -> None:
        self.streams[stage] = stream = Stream(stage, items, now)
        self.advance(stream, now)

    def execute(self, command: Command, now: float) -> None:  # SttBegin, TurnFinished: nothing to do
        if isinstance(command, Emit) and isinstance(command.event, ev.TranscriptionCompleted):
            self.transcript = command.event.transcript
        elif isinstance(command, StartTimer):
            self.push(now + command.seconds, TimerFired(command.key))
        elif isinstance(command, Send) and isinstance(command.message, SttCommit):
            self.decode(command.message, now)
        elif isinstance(command, Send) and isinstance(command.message, LlmGenerate):
            self.stop("llm")  # a new request cancels the previous one, as the service does
            self.start("llm", self.llm_items(command.message), now)
        elif isinstance(command, Send) and isinstance(command.message, TtsSpeak):
            if is_speakable(clean_for_speech(command.message.text)) and "llm" in self.streams:
                self.first_clause = command.message.text  # of this reply (a discarded held one may have come first)
                self.stop("llm")  # the first clause is all the baseline needs from the LLM
            self.tts_queue.append(command.message)  # pieces are spoken one after another
            if "tts" not in self.streams:
                self.start("tts", self.tts_items(self.tts_queue.popleft()), now)
        elif isinstance(command, Send) and command.stage in ("llm", "tts"):  # llm.cancel / tts.cancel
            self.stop(command.stage)  # the machine cancels only the reply in flight: the stage's one stream

    def decode(self, commit: SttCommit, now: float) -> None:
        """Decodes [start_ms, end_ms) of the audio the STT holds by now, after any decode before it (no partials)."""
        audio = self.samples[commit.start_ms * 16 : int(min(commit.end_ms or 1e12, self.machine.input_ms)) * 16]
        began, t0 = max(now, self.stt_free_at), time.perf_counter()
        transcript = self.p.stt.transcribe(audio, self.p.language)
        seconds = time.perf_counter() - t0
        self.stt_free_at = began + seconds
        final = SttFinal(
            request_id=commit.request_id, text=transcript.text, language=transcript.language, audio_ms=len(audio) // 16,
            decode_ms=round(seconds * 1000, 1), queued_ms=round((began - now) * 1000, 1),
        )  # fmt: skip
        self.push(self.stt_free_at, FromStage("stt", final))

    def llm_items(self, generate: LlmGenerate) -> Generator[BaseModel | bytes, None, None]:
        cancelled = threading.Event()
        pieces = self.p.llm.generate(build_request(generate, self.p.llm_settings), cancelled)
        try:
            for piece in pieces:
                if piece.text:
                    yield LlmDelta(request_id=generate.request_id, text=piece.text)
        finally:
            cancelled.set()
            pieces.close()
        yield LlmDone(request_id=generate.request_id, finish_reason="stop")

    def tts_items(self, speak: TtsSpeak) -> Generator[BaseModel | bytes, None, None]:
        yield TtsStarted(request_id=speak.request_id, sample_rate=self.p.tts.sample_rate)
        if is_speakable(text := clean_for_speech(speak.text)):
            stop = threading.Event()
            try:
                yield from self.p.tts.synthesize(text, stop)  # closing this closes the backend's generator
            finally:
                stop.set()
        yield TtsDone(request_id=speak.request_id)
