"""Turn-taking as a client sees it: a spoken turn, barge-in, noise that is no turn, response.cancel."""

from __future__ import annotations

import base64

from tests.fast.fake_stages import FRAMES_PER_WORD, TTS_FRAME, VAD_DEFAULTS, FakeStages
from tests.fast.realtime_client import Realtime, of_type, reply_of, until
from tests.fast.tone_words import noise_pcm, silence_pcm, words_pcm

PAD_MS = VAD_DEFAULTS["speech_pad_ms"]
CHUNK_MS = 32  # the VAD decides per 32 ms chunk: its times are exact to one chunk


async def test_a_spoken_turn_is_transcribed_and_answered_with_audio(client: Realtime, fakes: FakeStages) -> None:
    begin = client.mark()
    said_at = await client.say(silence_pcm(200) + words_pcm("alpha bravo charlie")) + 200
    i_started, started = await client.wait_for("input_audio_buffer.speech_started", begin)
    i_stopped, stopped = await client.wait_for("input_audio_buffer.speech_stopped", begin)
    i_committed, _ = await client.wait_for("input_audio_buffer.committed", begin)
    i_text, text = await client.wait_for("conversation.item.input_audio_transcription.completed", begin)
    i_done, done = await client.wait_for("response.done", begin)

    assert i_started < i_stopped < i_committed < i_text < i_done
    assert abs(started["audio_start_ms"] - (said_at - PAD_MS)) <= CHUNK_MS
    assert abs(stopped["audio_end_ms"] - (said_at + 600 + PAD_MS)) <= CHUNK_MS
    assert text["transcript"] == "alpha bravo charlie"
    assert done["response"]["status"] == "completed", client.summary(begin)
    assert reply_of(done) == "You said alpha bravo charlie. That is all."
    audio = b"".join(base64.b64decode(e["delta"]) for _, e in client.find("response.output_audio.delta", i_text))
    assert len(audio) == 8 * FRAMES_PER_WORD * TTS_FRAME  # every frame of the 8 spoken words, at 16 kHz as asked
    assert fakes.llm.prompts[-1][-1].content == "alpha bravo charlie"


async def test_speech_during_a_reply_cancels_it_and_the_new_turn_is_answered(
    client: Realtime, fakes: FakeStages
) -> None:
    fakes.tts.hold_audio(after_frames=2)  # the reply stays in progress until the test lets it go
    begin = client.mark()
    await client.say(silence_pcm(100) + words_pcm("alpha bravo"))
    i_audio, _ = await client.wait_for("response.output_audio.delta", begin)

    await client.say(silence_pcm(100) + words_pcm("charlie delta"))
    i_barge, _ = await client.wait_for("input_audio_buffer.speech_started", i_audio)
    i_cancelled, cancelled = await client.wait_for("response.done", begin)
    fakes.tts.release_audio()
    assert i_barge < i_cancelled  # clients stop playback on speech_started: it comes first
    assert cancelled["response"]["status"] == "cancelled"
    assert cancelled["response"]["status_details"]["reason"] == "turn_detected"
    await until(lambda: fakes.tts.received("tts.cancel") >= 1, "the reply's audio cancelled at the TTS")

    _, text = await client.wait_for("conversation.item.input_audio_transcription.completed", i_barge)
    assert text["transcript"] == "charlie delta"
    _, done = await client.wait_for("response.done", i_cancelled + 1)
    assert done["response"]["status"] == "completed", client.summary(begin)
    assert reply_of(done) == "You said charlie delta. That is all."


async def test_a_click_shorter_than_min_speech_starts_no_turn(client: Realtime) -> None:
    begin = client.mark()
    await client.say(silence_pcm(100) + noise_pcm(50) + silence_pcm(400))
    said_at = await client.say(words_pcm("echo foxtrot"))
    _, done = await client.wait_for("response.done", begin)
    # The first turn the gateway saw is the words: the click neither started one nor joined this one.
    (_, started), *more = client.find("input_audio_buffer.speech_started", begin)
    assert not more
    assert abs(started["audio_start_ms"] - (said_at - PAD_MS)) <= CHUNK_MS
    assert [
        e["transcript"] for _, e in client.find("conversation.item.input_audio_transcription.completed", begin)
    ] == ["echo foxtrot"]
    assert reply_of(done) == "You said echo foxtrot. That is all."


async def test_a_click_during_a_reply_does_not_interrupt_it(client: Realtime, fakes: FakeStages) -> None:
    fakes.tts.hold_audio(after_frames=2)
    begin = client.mark()
    await client.say(silence_pcm(100) + words_pcm("golf hotel"))
    i_audio, _ = await client.wait_for("response.output_audio.delta", begin)
    await client.say(noise_pcm(50) + silence_pcm(400))
    said_at = await client.say(words_pcm("india juliet"))
    i_barge, barge = await client.wait_for("input_audio_buffer.speech_started", i_audio)
    # The only interruption is the words: the click before them did not cut the reply.
    assert abs(barge["audio_start_ms"] - (said_at - PAD_MS)) <= CHUNK_MS
    i_done, done = await client.wait_for("response.done", begin)
    fakes.tts.release_audio()
    assert i_barge < i_done
    assert done["response"]["status_details"]["reason"] == "turn_detected"


async def test_response_cancel_stops_the_reply_and_the_session_goes_on(client: Realtime, fakes: FakeStages) -> None:
    fakes.tts.hold_audio(after_frames=2)
    begin = client.mark()
    await client.say(silence_pcm(100) + words_pcm("kilo lima"))
    i_audio, audio = await client.wait_for("response.output_audio.delta", begin)
    await client.send({"type": "response.cancel"})
    i_done, done = await client.wait_for("response.done", i_audio)
    assert done["response"]["id"] == audio["response_id"]
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "client_cancelled"
    await until(lambda: fakes.tts.received("tts.cancel") >= 1, "the reply's audio cancelled at the TTS")

    await client.send({"type": "response.cancel", "event_id": "again"})
    _, error = await client.wait_for("error", i_done)
    assert error["error"]["code"] == "response_cancel_not_active"

    fakes.tts.release_audio()
    await client.send({"type": "response.create"})
    _, again = await client.wait_for(of_type("response.done"), i_done + 1)
    assert again["response"]["status"] == "completed", client.summary(begin)
    assert reply_of(again) == "You said kilo lima. That is all."
