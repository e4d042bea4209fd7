"""The assistant's side of the turn machine: one reply at a time, from LLM tokens to TTS pieces to audio at the client.

Pure like the machine that owns it: it appends commands to the machine's list and reads the time it is handed.
Stage messages are taken only when they name a request of the reply in flight (its response id, or a TTS request id in
its table), so whatever a cancelled reply's stages still send is dropped by comparison.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from services.common import realtime as rt
from services.common import realtime_server as ev
from services.common.audio import StreamResampler
from services.common.messages import (
    ChatMessage,
    ErrorMessage,
    LlmCancel,
    LlmDelta,
    LlmDone,
    LlmGenerate,
    LlmToolCall,
    TtsCancel,
    TtsDone,
    TtsSpeak,
    TtsStarted,
)
from services.gateway.commands import Command, Emit, Send, StartTimer, TurnFinished
from services.gateway.history import History
from services.gateway.ids import Ids
from services.gateway.language import language_notes
from services.gateway.outputs import ReplyOutputs, call_events
from services.gateway.reply import Playback, Reply, TurnClock
from services.gateway.session_state import SessionState

WATCHDOG = "reply_watchdog"


class Replier:
    def __init__(
        self, config: SessionState, history: History, ids: Ids, out: Callable[[Command], None], stage_timeout_s: float
    ) -> None:
        self.config = config
        self.history = history
        self.ids = ids
        self.out = out
        self.stage_timeout_s = stage_timeout_s
        self.reply: Reply | None = None
        self.playback: Playback | None = None  # the last reply's audio, while the client may still be playing it
        self._watch_progress = -1

    def emit(self, event: ev.ServerEvent) -> None:
        self.out(Emit(event))

    def error(self, code: str, message: str, event_id: str | None = None, param: str | None = None) -> None:
        self.emit(self._error_event(code, message, event_id, param))

    @staticmethod
    def _error_event(code: str, message: str, event_id: str | None = None, param: str | None = None) -> ev.ErrorEvent:
        return ev.ErrorEvent(error=ev.ErrorDetail(code=code, message=message, param=param, event_id=event_id))

    # ------------------------------------------------------------------ start

    def start(
        self,
        clock: TurnClock,
        instructions: str | None,
        now: float,
        speculative: tuple[str, str] | None = None,
        script: str | None = None,
        options: rt.ResponseOptions | None = None,
    ) -> None:
        """Starts a reply. ``speculative`` = (STT request id, transcript): the user's turn is not over yet, so the
        transcript is not in the history; everything the client would see is held until ``release``. ``script``: the
        reply says these words (a request to repeat) without asking the LLM."""
        response_id, item_id = self.ids.next("resp"), self.ids.next("item")
        reply = Reply(response_id, item_id, clock, Playback(item_id, self.config.output_rate))
        reply.outputs = outputs = ReplyOutputs.of(self.config, options)
        self.reply = reply
        system = (options.instructions if options else None) or instructions or self.config.instructions
        messages = ([ChatMessage(role="system", content=system)] if system else []) + self.history.messages()
        if speculative is not None:
            reply.held, reply.speculation_id = [], speculative[0]
            messages.append(ChatMessage(role="user", content=speculative[1]))
        else:
            self.playback = reply.playback
        if not messages:
            messages = [ChatMessage(role="user", content="Hello!")]
        messages += language_notes(outputs.language)  # services/gateway/language.py: answer in the user's language
        clock.mark("response_start", now)
        self._say(reply, ev.ResponseCreated(response=self._body(reply, "in_progress")))
        if not outputs.lazy_message:
            self._open_message(reply)
        if script is not None:
            self._words(reply, script, now)
            for piece in reply.chunker.flush():
                self._speak(reply, piece, now)
            reply.llm_done = True
        else:
            clock.mark("llm_request", now)
            limit = self.config.max_output_tokens
            if options is not None and options.max_output_tokens is not None:
                limit = None if options.max_output_tokens == "inf" else options.max_output_tokens
            generate = LlmGenerate(
                request_id=response_id,
                messages=messages,
                max_tokens=limit,
                tools=outputs.tools,
                tool_choice=outputs.tool_choice,
            )
            self.out(Send("llm", generate))
        self._arm_watchdog(reply)

    def _open_message(self, reply: Reply) -> None:
        """Announces the reply's message item (at its start; with tools on offer, at its first words)."""
        reply.outputs.message_open = True
        rid = reply.response_id
        self._say(reply, ev.OutputItemAdded(response_id=rid, item=self._item(reply, "in_progress")))
        part = reply.outputs.part()
        self._say(reply, ev.ContentPartAdded(response_id=rid, item_id=reply.item_id, part=part))

    def _words(self, reply: Reply, text: str, now: float) -> None:
        """Words of the reply: spoken piece by piece, or for a text reply sent as they come."""
        outputs = reply.outputs
        if outputs.calls:
            return  # after a call the model can only guess its result: the client answers it, then a new response
        if not outputs.message_open:
            if not text.strip():
                return
            self._open_message(reply)
        if outputs.text_only:
            outputs.text += text
            delta = ev.OutputTextDelta(response_id=reply.response_id, item_id=reply.item_id, delta=text)
            self._say(reply, delta)
            return
        for piece in reply.chunker.push(text):
            self._speak(reply, piece, now)

    def _call(self, reply: Reply, call: LlmToolCall, now: float) -> None:
        outputs = reply.outputs
        if outputs.tools is None:
            return  # no tools were offered: a call is not the client's to run
        for piece in reply.chunker.flush():
            self._speak(reply, piece, now)
        index = outputs.call_index(len(outputs.calls))
        events = call_events(reply.response_id, self.ids.next("item"), index, call)
        for event in events:
            self._say(reply, event)
        done = events[-1]
        assert isinstance(done, ev.OutputItemDone)
        outputs.calls.append(done.item)
        if reply.held is None:  # the client may answer it at once, before this response is done
            self.history.add_call(done.item.id, call.call_id, call.name, call.arguments)

    @property
    def live(self) -> Reply | None:
        """The reply in flight as the client knows it (a held speculative reply is not, yet)."""
        return self.reply if self.reply is not None and self.reply.held is None else None

    @property
    def held(self) -> Reply | None:
        return self.reply if self.reply is not None and self.reply.held is not None else None

    def _say(self, reply: Reply, event: ev.ServerEvent) -> None:
        """An event of this reply for the client: sent now, or held while the reply is speculative."""
        if reply.held is not None:
            reply.held.append((event, 0))
        else:
            self.emit(event)

    def release(self, now: float) -> None:
        """The turn the held reply answers is confirmed: the client gets it all now, and the rest as it comes."""
        reply = self.held
        if reply is None or reply.held is None:
            return
        held, reply.held = reply.held, None
        reply.clock.mark("released", now)
        self.playback = reply.playback
        for event, audio_bytes in held:
            if audio_bytes:
                reply.clock.mark("first_audio_sent", now)
                reply.playback.sent(audio_bytes, now)
            self.emit(event)
        if reply.pending_finish is not None:
            status, details = reply.pending_finish
            self._finish(reply, status, now, details)

    def discard(self) -> None:
        """The user went on: the held reply is stopped, and the client never hears of it."""
        reply = self.held
        if reply is None:
            return
        self._stop(reply)
        self.reply = None
        reply.clock.forget_reply()
        self.out(TurnFinished(reply.response_id, "discarded", {}))

    def _arm_watchdog(self, reply: Reply) -> None:
        self._watch_progress = reply.progress
        self.out(StartTimer((WATCHDOG, reply.response_id), self.stage_timeout_s))

    def on_watchdog(self, response_id: str, llm_url: str, tts_url: str, now: float) -> None:
        """Fails the reply if the LLM and TTS sent nothing for ``stage_timeout_s``: never a silent hang."""
        reply = self.reply
        if reply is None or reply.response_id != response_id or reply.pending_finish is not None:
            return
        if reply.progress != self._watch_progress:
            self._arm_watchdog(reply)
            return
        stage, url = ("tts", tts_url) if reply.llm_done else ("llm", llm_url)
        message = f"{stage} service at {url} stopped answering for {self.stage_timeout_s:.0f} s"
        self._say(reply, self._error_event("stage_timeout", message))
        self.fail("stage_timeout", now, message)

    # ------------------------------------------------------------------ stage messages

    def on_llm(self, message: object, now: float) -> None:
        reply = self.reply
        if reply is None or getattr(message, "request_id", None) != reply.response_id:
            return  # a cancelled reply's late tokens
        reply.progress += 1
        if isinstance(message, LlmDelta):
            reply.clock.mark("llm_first_token", now)
            self._words(reply, message.text, now)
        elif isinstance(message, LlmToolCall):
            reply.clock.mark("llm_first_token", now)
            self._call(reply, message, now)
        elif isinstance(message, LlmDone):
            reply.clock.mark("llm_done", now)
            if message.ttft_ms is not None:
                reply.clock.service_ms["llm_service_ttft_ms"] = message.ttft_ms
            for piece in reply.chunker.flush():
                self._speak(reply, piece, now)
            reply.llm_done = True
            if reply.finished:
                self._finish(reply, "completed", now)
        elif isinstance(message, ErrorMessage):
            self._say(reply, self._error_event(f"llm_{message.code}", message.message))
            self.fail(f"llm_{message.code}", now, message.message)

    def _speak(self, reply: Reply, piece: str, now: float) -> None:
        reply.clock.mark("tts_first_request", now)
        self.out(Send("tts", TtsSpeak(request_id=reply.new_piece(piece), text=piece, language=reply.outputs.language)))

    def on_tts(self, message: object, now: float) -> None:
        reply = self.reply
        if reply is None:
            return
        if isinstance(message, bytes):
            if reply.playing_piece is not None and reply.resampler is not None:
                reply.progress += 1
                self._send_audio(reply, reply.resampler.process(message), now)
            return
        index = reply.tts_requests.get(getattr(message, "request_id", None) or "")
        if index is None:
            return  # another reply's piece
        reply.progress += 1
        if isinstance(message, TtsStarted):
            if index in reply.started:
                return  # a repeated tts.started: the piece is already playing
            reply.playing_piece = index
            reply.started.append(index)
            if reply.resampler is None or reply.resampler.in_rate != message.sample_rate:
                reply.resampler = StreamResampler(message.sample_rate, reply.playback.output_rate)
            delta = reply.pieces[index] + " "
            self._say(
                reply, ev.OutputAudioTranscriptDelta(response_id=reply.response_id, item_id=reply.item_id, delta=delta)
            )
        elif isinstance(message, ErrorMessage):
            self._say(reply, self._error_event(f"tts_{message.code}", message.message))  # its tts.done follows
        elif isinstance(message, TtsDone):
            if index == 0 and message.first_audio_ms is not None:
                reply.clock.service_ms["tts_service_first_audio_ms"] = message.first_audio_ms
            if index in reply.ended_at_ms:
                return
            reply.playing_piece = None
            reply.pieces_done += 1
            reply.ended_at_ms[index] = reply.produced_ms
            if reply.finished:
                self._finish(reply, "completed", now)

    def _send_audio(self, reply: Reply, pcm: bytes, now: float) -> None:
        if not pcm:
            return
        reply.produced_bytes += len(pcm)
        delta = ev.OutputAudioDelta(
            response_id=reply.response_id, item_id=reply.item_id, delta=base64.b64encode(pcm).decode()
        )
        if reply.held is not None:
            reply.held.append((delta, len(pcm)))
            return
        reply.clock.mark("first_audio_sent", now)
        reply.playback.sent(len(pcm), now)
        self.emit(delta)

    def on_stage_down(self, stage: str, code: str, reason: str, now: float) -> None:
        """The LLM or TTS link failed: the reply in flight fails with it (a held one says so when released)."""
        if self.reply is None:
            self.error(code, reason)
            return
        self._say(self.reply, self._error_event(code, reason))
        self.fail(f"{stage}_unavailable", now, reason)

    # ------------------------------------------------------------------ the end of a reply

    def cancel(self, reason: ev.CancelReason, now: float) -> None:
        """The client or the user's speech stops the reply in flight (a held one is discarded instead)."""
        if self.held is not None:
            self.discard()
        elif self.reply is not None:
            self._stop(self.reply)
            self._finish(self.reply, "cancelled", now, ev.StatusDetails.cancelled(reason))

    def fail(self, code: str, now: float, message: str | None = None) -> None:
        """A stage failed the reply in flight."""
        if self.reply is not None:
            self._stop(self.reply)
            self._finish(self.reply, "failed", now, ev.StatusDetails.failed(code, message))

    def _stop(self, reply: Reply) -> None:
        self.out(Send("llm", LlmCancel(request_id=reply.response_id), connect=False))
        self.out(Send("tts", TtsCancel(), connect=False))

    def _finish(
        self, reply: Reply, status: ev.ResponseStatus, now: float, details: ev.StatusDetails | None = None
    ) -> None:
        if reply.held is not None:  # it ended before its turn was confirmed: it ends for the client at release
            if reply.pending_finish is None:
                reply.pending_finish = (status, details)
            return
        self.reply = None
        if status == "completed" and reply.resampler is not None:
            self._send_audio(reply, reply.resampler.process(b"", last=True), now)
        rid, iid, outputs = reply.response_id, reply.item_id, reply.outputs
        transcript = self._remember(reply, status, now)
        for call in outputs.calls:
            assert call.call_id is not None and call.name is not None and call.arguments is not None
            if self.history.get(call.id) is None:  # a held reply's calls, now released
                self.history.add_call(call.id, call.call_id, call.name, call.arguments)
        if outputs.message_open:
            if outputs.text_only:
                self.emit(ev.OutputTextDone(response_id=rid, item_id=iid, text=transcript))
            else:
                self.emit(ev.OutputAudioDone(response_id=rid, item_id=iid))
                self.emit(ev.OutputAudioTranscriptDone(response_id=rid, item_id=iid, transcript=transcript))
            self.emit(ev.ContentPartDone(response_id=rid, item_id=iid, part=outputs.part(transcript)))
            item_status: ev.ItemStatus = "completed" if status == "completed" else "incomplete"
            self.emit(ev.OutputItemDone(response_id=rid, item=self._item(reply, item_status, transcript)))
        timings = reply.clock.report()
        self.emit(ev.ResponseDone(response=self._body(reply, status, transcript, details), timings=timings))
        self.out(TurnFinished(rid, status, timings))

    def _remember(self, reply: Reply, status: ev.ResponseStatus, now: float) -> str:
        """Adds the reply to the history as far as the client got it; returns that text."""
        if reply.outputs.text_only:
            text = reply.outputs.text.strip()
            if text:
                self.history.add(reply.item_id, "assistant", text, written=True)
            return text
        pieces, ends = reply.started_pieces()
        if not pieces:
            return ""
        sent_ms = reply.playback.sent_ms
        self.history.add(
            reply.item_id, "assistant", " ".join(pieces), pieces=pieces, piece_end_ms=ends, audio_ms=sent_ms
        )
        if status != "completed":
            # The client buffers audio ahead of playback: keep only what it can have played; its truncate refines this.
            self.history.truncate(reply.item_id, reply.playback.heard_ms(now))
        item = self.history.get(reply.item_id)
        return item.text if item is not None else ""

    def cut_playback(self, now: float) -> None:
        """The user spoke over a reply that was fully sent but may still be playing: keep only what was heard."""
        playback, self.playback = self.playback, None
        if playback is None or not playback.still_playing(now):
            return
        heard = playback.heard_ms(now)
        if self.history.truncate(playback.item_id, heard):
            self.emit(ev.ItemTruncated(item_id=playback.item_id, audio_end_ms=int(heard)))

    # ------------------------------------------------------------------ bodies

    def _item(self, reply: Reply, status: ev.ItemStatus, transcript: str = "") -> ev.Item:
        spoken = not reply.outputs.text_only
        return ev.Item.message(reply.item_id, "assistant", transcript, status=status, spoken=spoken)

    def _body(
        self, reply: Reply, status: ev.ResponseStatus, transcript: str = "", details: ev.StatusDetails | None = None
    ) -> ev.ResponseBody:
        item_status: ev.ItemStatus = "completed" if status == "completed" else "incomplete"
        output = (
            []
            if status == "in_progress" or not reply.outputs.message_open
            else [self._item(reply, item_status, transcript)]
        )
        if status != "in_progress":
            output += reply.outputs.calls
        return ev.ResponseBody(id=reply.response_id, status=status, output=output, status_details=details)
