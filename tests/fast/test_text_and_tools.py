"""Text replies and function calls through the turn machine: events in, commands out (no sockets, no models)."""

from __future__ import annotations

import json

from services.common import realtime as rt
from services.common import realtime_server as ev
from services.common.messages import LlmDelta, LlmDone, LlmGenerate, LlmToolCall, TtsSpeak, TtsStarted
from services.gateway.commands import Emit
from tests.fast.test_turn_machine import Driver, event, sent, spoken_turn, types

WEATHER = rt.FunctionTool(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def text_item(text: str, role: str = "user") -> rt.ConversationItemCreate:
    item = rt.ConversationItem(role=role, content=[rt.ContentPart(type="input_text", text=text)])  # type: ignore[arg-type]
    return rt.ConversationItemCreate(type="conversation.item.create", item=item)


def create(**options: object) -> rt.ResponseCreate:
    return rt.ResponseCreate(type="response.create", response=rt.ResponseOptions.model_validate(options))


def test_a_text_reply_is_sent_as_text_without_tts():
    d = Driver()
    out = d(text_item("What is the capital of France?"))
    assert types(out) == ["conversation.item.added", "conversation.item.done"]
    out = d(create(output_modalities=["text"], instructions="Answer in one word."))
    (generate,) = sent(out, LlmGenerate)
    assert generate.messages[0].content == "Answer in one word." and generate.tools is None
    assert types(out) == ["response.created", "response.output_item.added", "response.content_part.added"]
    assert event(out, "response.content_part.added").part == ev.ContentPart(type="text", text="")
    out = d.stage("llm", LlmDelta(request_id=generate.request_id, text="Paris"))
    assert types(out) == ["response.output_text.delta"] and not sent(out, TtsSpeak)
    out = d.stage("llm", LlmDone(request_id=generate.request_id, finish_reason="stop"))
    assert types(out) == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]
    assert event(out, "response.output_text.done").text == "Paris"
    done = event(out, "response.done").response
    assert done.status == "completed"
    assert done.output[0].content == [ev.ContentPart(type="output_text", text="Paris")]
    # The next reply is spoken (the session's modality): text and audio replies in one conversation.
    rid = spoken_turn(d, "And of Spain?")
    generate = next(m for m in sent(d.log, LlmGenerate) if m.request_id == rid)
    assert [(m.role, m.content) for m in generate.messages[-3:]] == [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris"),
        ("user", "And of Spain?"),
    ]
    out = d.stage("llm", LlmDelta(request_id=rid, text="Madrid."))
    out += d.stage("llm", LlmDone(request_id=rid, finish_reason="stop"))
    assert [m.text for m in sent(out, TtsSpeak)] == ["Madrid."] and "response.output_text.delta" not in types(out)


def test_session_output_modalities_text_applies_to_every_reply():
    d = Driver()
    d.config.apply(rt.SessionConfig(output_modalities=["text"]))
    rid = spoken_turn(d)
    out = d.stage("llm", LlmDelta(request_id=rid, text="Paris."))
    assert types(out) == ["response.output_text.delta"] and not sent(out, TtsSpeak)
    assert d.config.describe("s", "m").output_modalities == ["text"]


def test_a_tool_call_becomes_a_function_call_item_and_its_output_feeds_the_next_reply():
    d = Driver()
    d.config.apply(rt.SessionConfig(tools=[WEATHER]))
    rid = spoken_turn(d, "What's the weather in Paris?")
    (generate,) = [m for m in sent(d.log, LlmGenerate) if m.request_id == rid]
    assert [t.name for t in generate.tools or []] == ["get_weather"] and generate.tool_choice == "auto"
    # With tools on offer the reply may be only a call: no message item until words come.
    assert "response.output_item.added" not in types(d.log)
    args = json.dumps({"city": "Paris"})
    out = d.stage("llm", LlmToolCall(request_id=rid, call_id="call_1", name="get_weather", arguments=args))
    assert types(out) == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    call_item = event(out, "response.output_item.done").item
    assert (call_item.type, call_item.call_id, call_item.arguments, call_item.status) == (
        "function_call",
        "call_1",
        args,
        "completed",
    )
    out = d.stage("llm", LlmDelta(request_id=rid, text="It is sunny."))  # a guess at the result: not the client's
    assert not types(out) and not sent(out, TtsSpeak)
    out = d.stage("llm", LlmDone(request_id=rid, finish_reason="tool_calls"))
    assert types(out) == ["response.done"]
    assert event(out, "response.done").response.output == [call_item]
    # The client runs the function and asks for the spoken answer.
    output = rt.ConversationItem(type="function_call_output", call_id="call_1", output='{"sky": "sunny"}')
    out = d(rt.ConversationItemCreate(type="conversation.item.create", item=output))
    assert types(out) == ["conversation.item.added", "conversation.item.done"]
    assert event(out, "conversation.item.added").previous_item_id == call_item.id
    out = d(create())
    (generate,) = sent(out, LlmGenerate)
    last = generate.messages[-2:]
    assert last[0].role == "assistant" and [c.name for c in last[0].tool_calls or []] == ["get_weather"]
    assert (last[1].role, last[1].tool_call_id, last[1].content) == ("tool", "call_1", '{"sky": "sunny"}')
    out = d.stage("llm", LlmDelta(request_id=generate.request_id, text="It is sunny in Paris."))
    assert types(out) == ["response.output_item.added", "response.content_part.added"]
    out += d.stage("llm", LlmDone(request_id=generate.request_id, finish_reason="stop"))
    (speak,) = sent(out, TtsSpeak)
    out = d.stage("tts", TtsStarted(request_id=speak.request_id, sample_rate=24000))
    assert types(out) == ["response.output_audio_transcript.delta"]


def test_an_output_for_an_unknown_call_and_a_call_without_tools_are_refused():
    d = Driver()
    output = rt.ConversationItem(type="function_call_output", call_id="nope", output="1")
    out = d(rt.ConversationItemCreate(type="conversation.item.create", event_id="e1", item=output))
    (error,) = [c.event for c in out if isinstance(c, Emit)]
    assert isinstance(error, ev.ErrorEvent) and error.error.param == "item.call_id" and error.error.event_id == "e1"
    rid = spoken_turn(d)
    out = d.stage("llm", LlmToolCall(request_id=rid, call_id="c", name="get_weather", arguments="{}"))
    assert not types(out)  # no tools were offered: nothing for the client to run


def test_tool_choice_none_offers_no_tools_and_a_named_choice_is_passed_on():
    d = Driver()
    d.config.apply(rt.SessionConfig(tools=[WEATHER], tool_choice="none"))
    d(text_item("Hi"))
    (generate,) = sent(d(create()), LlmGenerate)
    assert generate.tools is None and generate.tool_choice is None
    d.stage("llm", LlmDone(request_id=generate.request_id, finish_reason="stop"))
    (generate,) = sent(d(create(tool_choice={"type": "function", "name": "get_weather"})), LlmGenerate)
    assert generate.tool_choice == "get_weather"
