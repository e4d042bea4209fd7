"""Turn-taking as one pure state machine: ``handle(event, now) -> commands``. No I/O, no awaits, no clock reads.

The user's side moves through three phases; the assistant's reply (at most one) is the ``Replier``'s:

    LISTENING ──speech_started──▶ USER_SPEAKING ──speech_stopped──▶ TRANSCRIBING ──final──▶ LISTENING (+ reply)
        ▲                              │ (abandon)                      │ (empty / error / timeout)
        └──────────────────────────────┴────────────────────────────────┘
    TRANSCRIBING ──speech_started──▶ USER_SPEAKING  (the user went on: the pending final is dropped)

Speech that starts while a reply is in flight cancels it (barge-in) when turn detection says so; a reply wanted
while another is in flight starts when that one ends. The session feeds every event from one inbox, in order, and
executes the commands; a late message of a cancelled reply or a superseded decode is dropped by comparing ids.
"""

from __future__ import annotations

from collections import deque

from services.common import realtime as rt
from services.common import realtime_server as ev
from services.common.messages import (
    ErrorMessage,
    SttBegin,
    SttCommit,
    SttFinal,
    SttPartial,
    VadPause,
    VadSpeechResumed,
    VadSpeechStarted,
    VadSpeechStopped,
)
from services.gateway.commands import (
    AudioIn,
    Command,
    Emit,
    Event,
    FromStage,
    InputRestarted,
    Send,
    StageDown,
    StartTimer,
    TimerFired,
)
from services.gateway.hearing import unclear_reason
from services.gateway.history import History
from services.gateway.ids import Ids
from services.gateway.items import create_item
from services.gateway.reply import TurnClock
from services.gateway.replying import WATCHDOG, Replier
from services.gateway.session_state import SessionState
from services.gateway.settings import GatewaySettings
from services.gateway.utterance import Speculation, Turn, Utterance

MIN_COMMIT_MS = 100  # the OpenAI API refuses commits of less audio than this
FINAL_TIMER = "stt_final"


class TurnMachine:
    def __init__(self, config: SessionState, settings: GatewaySettings, ids: Ids) -> None:
        self.config = config
        self.settings = settings
        self.ids = ids
        self.history = History(settings.history_messages)
        self.replier = Replier(config, self.history, ids, self._do, settings.stage_timeout_s)
        self.turn = Turn.LISTENING
        self.utterance: Utterance | None = None
        self.clock = TurnClock()  # the turn a reply belongs to
        self.input_ms = 0.0  # stream time of the newest input audio
        self._arrivals: deque[tuple[float, float]] = deque(maxlen=4000)  # (stream ms, time it arrived)
        self._awaiting_final: str | None = None  # the STT request whose result ends the turn
        self._commits = 0
        self._reply_wanted = False  # a reply is due once the transcript arrives or the reply in flight ends
        self._script: str | None = None  # what the next reply says instead of asking the LLM (a request to repeat)
        self._manual_start_ms = 0.0
        self._options: rt.ResponseOptions | None = None  # the pending response.create's own settings
        self._out: list[Command] = []

    # ------------------------------------------------------------------ entry point

    def handle(self, event: Event, now: float) -> list[Command]:
        self._out = []
        if isinstance(event, AudioIn):
            self.input_ms = event.end_ms
            self._arrivals.append((event.end_ms, now))
        elif isinstance(event, FromStage):
            self._from_stage(event, now)
        elif isinstance(event, StageDown):
            self._stage_down(event, now)
        elif isinstance(event, TimerFired):
            self._timer(event.key, now)
        elif isinstance(event, InputRestarted):
            if self.turn is Turn.USER_SPEAKING:
                self._abandon()
        else:
            self._client(event, now)
        if self._reply_wanted and self.replier.reply is None and self.turn is Turn.LISTENING:
            self._start_reply(None, now)
        return self._out

    def _do(self, command: Command) -> None:
        self._out.append(command)

    def _emit(self, event: ev.ServerEvent) -> None:
        self._out.append(Emit(event))

    def _error(self, code: str, message: str, event_id: str | None = None, param: str | None = None) -> None:
        self.replier.error(code, message, event_id, param)

    @property
    def reply_in_flight(self) -> bool:
        """A reply the client knows of is in flight (a held speculative one is not)."""
        return self.replier.live is not None

    # ------------------------------------------------------------------ stages

    def _from_stage(self, event: FromStage, now: float) -> None:
        message = event.message
        if event.stage == "llm":
            self.replier.on_llm(message, now)
        elif event.stage == "tts":
            self.replier.on_tts(message, now)
        elif event.stage == "stt":
            self._on_stt(message, now)
        elif isinstance(message, ErrorMessage):
            self._error(f"vad_{message.code}", message.message)
        elif self.config.turn_detection is None:
            return  # manual turns: the VAD's opinion is not asked
        elif isinstance(message, VadSpeechStarted):
            self._speech_started(message, now)
        elif isinstance(message, VadPause) and self.turn is Turn.USER_SPEAKING:
            self._speculate(message, now)
        elif isinstance(message, VadSpeechResumed) and self.turn is Turn.USER_SPEAKING and self.utterance:
            self.utterance.speculation = None  # the user went on after the pause: its decode and reply are moot
            self.replier.discard()
        elif isinstance(message, VadSpeechStopped) and self.turn is Turn.USER_SPEAKING:
            self._speech_stopped(message, now)

    def _stage_down(self, event: StageDown, now: float) -> None:
        if event.stage in ("llm", "tts"):
            self.replier.on_stage_down(event.stage, event.code, event.reason, now)
            return
        self._error(event.code, event.reason)
        if event.stage == "stt" and self.turn is Turn.TRANSCRIBING:
            self._awaiting_final = None
            self.turn = Turn.LISTENING
        elif event.stage == "vad" and self.turn is Turn.USER_SPEAKING:
            self._abandon()

    def _timer(self, key: tuple[str, str], now: float) -> None:
        kind, name = key
        if kind == FINAL_TIMER and self._awaiting_final == name:
            self._awaiting_final = None
            timeout = self.settings.stage_timeout_s
            self._error(
                "stage_timeout", f"stt service at {self.settings.stt_url} gave no transcript within {timeout:.0f} s"
            )
            self.turn = Turn.LISTENING
        elif kind == WATCHDOG:
            self.replier.on_watchdog(name, self.settings.llm_url, self.settings.tts_url, now)

    # ------------------------------------------------------------------ user speech

    def _speech_started(self, event: VadSpeechStarted, now: float) -> None:
        if self.turn is Turn.TRANSCRIBING:
            self._awaiting_final = None  # the user went on: the utterance continues, its first transcript is moot
        if self.utterance is None or self.turn is Turn.LISTENING:
            self.replier.discard()
            self.utterance = Utterance(self.ids.next("item"), event.start_ms)
            self.clock = self.utterance.clock
        utterance = self.utterance
        # First the event clients stop playback on, then the cancel.
        self._emit(ev.SpeechStarted(audio_start_ms=event.start_ms, item_id=utterance.item_id))
        td = self.config.turn_detection
        if td is not None and td.interrupt_response:
            if self.replier.live is not None:
                self.replier.cancel("turn_detected", now)
            else:
                self.replier.cut_playback(now)
        self.turn = Turn.USER_SPEAKING
        self._do(Send("stt", SttBegin(start_ms=int(utterance.start_ms))))

    def _speculate(self, pause: VadPause, now: float) -> None:
        """A short pause: decode now, so the transcript is (nearly) ready if the pause becomes the end of the turn."""
        assert self.utterance is not None
        self.replier.discard()  # a reply held for an earlier pause: the user spoke since
        request_id = self._next_request()
        self.utterance.speculation = Speculation(pause.end_ms, request_id, now)
        end_ms = pause.end_ms + self.settings.speculative_pause_ms
        start_ms = int(self.utterance.start_ms)
        self._do(Send("stt", SttCommit(request_id=request_id, start_ms=start_ms, end_ms=end_ms, keep_open=True)))

    def _speech_stopped(self, event: VadSpeechStopped, now: float) -> None:
        utterance = self.utterance
        assert utterance is not None
        last_voice = self._arrival_time(event.voice_end_ms)
        if last_voice is not None:
            utterance.clock.set("last_voice", last_voice)
        utterance.clock.set("speech_stopped", now)
        self._emit(ev.SpeechStopped(audio_end_ms=event.end_ms, item_id=utterance.item_id))
        speculation, utterance.speculation = utterance.speculation, None
        if speculation is not None and speculation.voice_end_ms == event.voice_end_ms:
            # No speech since the pause: the speculative decode covers this turn.
            utterance.clock.set("stt_commit", speculation.sent_at)
            self._committed(speculation.request_id)
            if speculation.result is not None:
                self._final(speculation.result, now)
            return
        self.replier.discard()
        self._commit(utterance.start_ms, event.end_ms, now)

    def _next_request(self) -> str:
        self._commits += 1
        assert self.utterance is not None
        return f"{self.utterance.item_id}#{self._commits}"

    def _committed(self, request_id: str) -> None:
        assert self.utterance is not None
        self._awaiting_final = request_id
        self._do(StartTimer((FINAL_TIMER, request_id), self.settings.stage_timeout_s))
        self.turn = Turn.TRANSCRIBING
        item_id, previous = self.utterance.item_id, self.history.last_item_id
        self._emit(ev.InputAudioCommitted(item_id=item_id, previous_item_id=previous))
        self._emit(
            ev.ItemAdded(item=ev.Item.user_audio(item_id, None, status="in_progress"), previous_item_id=previous)
        )

    def _commit(self, start_ms: float, end_ms: float, now: float) -> None:
        assert self.utterance is not None
        request_id = self._next_request()
        self._committed(request_id)
        self.utterance.clock.set("stt_commit", now)
        self._do(Send("stt", SttCommit(request_id=request_id, start_ms=int(start_ms), end_ms=int(end_ms))))

    def _abandon(self) -> None:
        self._awaiting_final = None
        self.replier.discard()
        self.turn = Turn.LISTENING

    def _arrival_time(self, stream_ms: float) -> float | None:
        """When the audio at ``stream_ms`` reached the gateway."""
        for end_ms, at in self._arrivals:
            if end_ms >= stream_ms:
                return at
        return self._arrivals[-1][1] if self._arrivals else None

    def _on_stt(self, message: object, now: float) -> None:
        utterance = self.utterance
        if isinstance(message, SttPartial):
            ours = (
                utterance is not None
                and self.turn is Turn.USER_SPEAKING
                and message.start_ms == int(utterance.start_ms)
            )
            if ours and utterance is not None and (delta := utterance.live.update(message.text)):
                self._emit(ev.TranscriptionDelta(item_id=utterance.item_id, delta=delta))
        elif isinstance(message, SttFinal):
            speculation = utterance.speculation if utterance is not None else None
            if speculation is not None and message.request_id == speculation.request_id:
                speculation.result = message  # kept until the turn ends (used) or the user goes on (dropped)
                self._speculative_reply(speculation, now)
            elif message.request_id == self._awaiting_final:
                self._final(message, now)
        elif isinstance(message, ErrorMessage):
            self._error(f"stt_{message.code}", message.message)
            if message.request_id and message.request_id == self._awaiting_final:
                self._abandon()

    def _final(self, final: SttFinal, now: float) -> None:
        assert self.utterance is not None
        self._awaiting_final = None
        clock = self.utterance.clock
        clock.mark("stt_final", now)
        clock.service_ms["stt_decode_ms"] = final.decode_ms
        clock.service_ms["stt_queued_ms"] = final.queued_ms
        item_id, text = self.utterance.item_id, final.text.strip()
        self._emit(
            ev.TranscriptionCompleted(
                item_id=item_id, transcript=text, usage=ev.TranscriptionUsage(seconds=final.audio_ms / 1000)
            )
        )
        self.turn = Turn.LISTENING
        if not text:
            self._reply_wanted = False
            return
        self.history.add(item_id, "user", text, spoken=True)
        self.config.heard_language = final.language  # the reply answers in it (services/gateway/language.py)
        self._emit(ev.ItemDone(item=self.history.item(item_id)))
        self._script = self.settings.repeat_request if unclear_reason(final, self.settings) else None
        held = self.replier.held
        if held is not None and held.speculation_id == final.request_id and self._script is None:
            self.replier.release(now)  # the reply started at the pause answers exactly this transcript
            return
        self.replier.discard()
        td = self.config.turn_detection
        if self._reply_wanted or (td is not None and td.create_response):
            self._reply_wanted = True  # started by handle() once no reply is in flight

    def _speculative_reply(self, speculation: Speculation, now: float) -> None:
        """The decode at a pause is back while the user is still silent: start the reply, held until confirmed."""
        td, result = self.config.turn_detection, speculation.result
        if not self.settings.speculative_reply or td is None or not td.create_response or result is None:
            return
        if self.turn is not Turn.USER_SPEAKING or self.replier.reply is not None or not result.text.strip():
            return
        if unclear_reason(result, self.settings):
            return  # the turn's end will ask the user to repeat; there is nothing to prepare
        assert self.utterance is not None
        self.clock, self.config.heard_language = self.utterance.clock, result.language
        self.replier.start(self.clock, None, now, speculative=(speculation.request_id, result.text.strip()))

    # ------------------------------------------------------------------ client requests

    def _client(self, event: Event, now: float) -> None:
        if isinstance(event, rt.InputAudioCommit):
            self._manual_commit(event.event_id, now)
        elif isinstance(event, rt.InputAudioClear):
            self._manual_start_ms = self.input_ms
            if self.turn is Turn.USER_SPEAKING:
                self._abandon()
            self._emit(ev.InputAudioCleared())
        elif isinstance(event, rt.ConversationItemCreate):
            self._item_create(event)
        elif isinstance(event, rt.ConversationItemTruncate):
            self._truncate(event)
        elif isinstance(event, rt.ConversationItemRetrieve):
            if self.history.get(event.item_id) is None:
                self._error("item_not_found", f"no conversation item {event.item_id!r}", event.event_id, "item_id")
            else:
                self._emit(ev.ItemRetrieved(item=self.history.item(event.item_id)))
        elif isinstance(event, rt.ResponseCreate):
            self._response_create(event, now)
        elif isinstance(event, rt.ResponseCancel):
            reply = self.replier.live
            if reply is None or (event.response_id and event.response_id != reply.response_id):
                self._error("response_cancel_not_active", "there is no active response to cancel", event.event_id)
            else:
                self.replier.cancel("client_cancelled", now)

    def _manual_commit(self, event_id: str | None, now: float) -> None:
        if self.turn is Turn.TRANSCRIBING or self.reply_in_flight:
            msg = "wait for the current turn to finish before committing"
            self._error("conversation_already_has_active_response", msg, event_id)
            return
        start = self.utterance.start_ms if self.turn is Turn.USER_SPEAKING and self.utterance else self._manual_start_ms
        end = self.input_ms
        if end - start < MIN_COMMIT_MS:
            msg = f"buffer too small: {end - start:.0f} ms of audio, need at least {MIN_COMMIT_MS} ms"
            self._error("input_audio_buffer_commit_empty", msg, event_id)
            return
        if self.turn is not Turn.USER_SPEAKING or self.utterance is None:
            self.utterance = Utterance(self.ids.next("item"), start)
            self.clock = self.utterance.clock
        self._manual_start_ms = end
        self._commit(start, end, now)

    def _item_create(self, event: rt.ConversationItemCreate) -> None:
        create_item(event, self.history, self.ids, self._emit, self._error)  # services/gateway/items.py

    def _truncate(self, event: rt.ConversationItemTruncate) -> None:
        if not self.history.truncate(event.item_id, event.audio_end_ms):
            self._error(
                "item_not_found", f"no assistant audio item {event.item_id!r} to truncate", event.event_id, "item_id"
            )
            return
        playback = self.replier.playback
        if playback is not None and playback.item_id == event.item_id:
            self.replier.playback = None  # the client said what it heard: nothing left to estimate
        self._emit(ev.ItemTruncated(item_id=event.item_id, audio_end_ms=event.audio_end_ms))

    def _response_create(self, event: rt.ResponseCreate, now: float) -> None:
        self.replier.discard()
        reply = self.replier.live
        if reply is not None:
            msg = f"response {reply.response_id} is still in progress"
            self._error("conversation_already_has_active_response", msg, event.event_id)
            return
        self._options = event.response  # instructions, modalities, tools of this reply (services/gateway/outputs.py)
        if self.turn is Turn.TRANSCRIBING:
            self._reply_wanted = True  # answered once the transcript arrives
            return
        self._start_reply(None, now)

    def _start_reply(self, instructions: str | None, now: float) -> None:
        self._reply_wanted = False
        options, self._options = self._options, None
        if "response_start" in self.clock.marks:  # a reply without a new spoken turn (response.create)
            self.clock = TurnClock()
        script, self._script = self._script, None
        self.replier.start(self.clock, instructions, now, script=script, options=options)
