"""Every server event the gateway sends has the shape the OpenAI Realtime GA schema (the ``openai`` package) gives it.

openai-agents validates each server event against that schema and turns a failure into an error, so a field GA
requires that we leave out, or a part kind it does not know, breaks real clients. No models or services needed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, get_args

import pytest
from openai.types.realtime import RealtimeServerEvent
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from services.common import realtime as rt
from services.common import realtime_server as ev
from services.gateway.session_state import SessionState

REPO = Path(__file__).resolve().parent.parent

# type literal -> the GA model of that event, from the SDK's own server-event union.
GA_MODELS: dict[str, type[BaseModel]] = {
    get_args(model.model_fields["type"].annotation)[0]: model for model in get_args(get_args(RealtimeServerEvent)[0])
}
# What openai-agents does with every event it receives.
GA_UNION: TypeAdapter[Any] = TypeAdapter(Annotated[RealtimeServerEvent, Field(discriminator="type")])

# Fields we send that GA's schema does not name (it keeps unknown fields): each one a deliberate choice.
ALLOWED_EXTRAS = {
    "ResponseDoneEvent.timings",  # our documented extension: per-turn latency marks
    "RealtimeSessionCreateRequest.id",  # the GA server sends both on its session; the SDK's schema lacks them
    "RealtimeSessionCreateRequest.object",
}

RID, IID, UID = "resp_s1_7", "item_s1_8", "item_s1_5"
TRANSCRIPT = "Paris is the capital of France."
AUDIO = "AAABAAIA/v8="  # base64 PCM16LE
CALL_ITEM, CALL_ID, ARGS = "item_s1_11", "call_abc123", '{"city": "Paris"}'
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _session(**overrides: Any) -> ev.SessionBody:
    return SessionState(**overrides).describe("sess_s1", "s2s-local")


def _response(status: ev.ResponseStatus, details: ev.StatusDetails | None = None) -> ev.ResponseBody:
    status_of_item = "completed" if status == "completed" else "incomplete"
    output = [] if status == "in_progress" else [ev.Item.message(IID, "assistant", TRANSCRIPT, status=status_of_item)]
    return ev.ResponseBody(id=RID, status=status, status_details=details, output=output)


AUDIO_PART = ev.ContentPart(type="audio", transcript=TRANSCRIPT)
EXAMPLES: list[ev.ServerEvent] = [
    ev.ErrorEvent(error=ev.ErrorDetail(code="invalid_audio", message="not base64", param="audio", event_id="evt_3")),
    ev.ErrorEvent(error=ev.ErrorDetail(code="upstream_lost", message="lost the connection to the llm service")),
    ev.SessionCreated(session=_session()),
    ev.SessionUpdated(session=_session(turn_detection=None, instructions="Be brief.", max_output_tokens=200)),
    ev.SessionUpdated(session=_session(turn_detection=rt.TurnDetection(threshold=0.6, silence_duration_ms=400))),
    ev.SpeechStarted(audio_start_ms=1240, item_id=UID),
    ev.SpeechStopped(audio_end_ms=3080, item_id=UID),
    ev.InputAudioCommitted(item_id=UID, previous_item_id=None),
    ev.InputAudioCommitted(item_id=UID, previous_item_id="item_s1_2"),
    ev.InputAudioCleared(),
    ev.ItemAdded(item=ev.Item.user_audio(UID, None, status="in_progress"), previous_item_id="item_s1_2"),
    ev.ItemAdded(item=ev.Item.message("item_s1_9", "system", "Answer in French.")),
    ev.ItemDone(item=ev.Item.user_audio(UID, "What is the capital of France?"), previous_item_id="item_s1_2"),
    ev.ItemDone(item=ev.Item.message("item_s1_10", "user", "Hello there")),
    ev.ItemTruncated(item_id=IID, audio_end_ms=1500),
    ev.ItemRetrieved(item=ev.Item.message(IID, "assistant", "Paris is")),
    ev.TranscriptionDelta(item_id=UID, delta="What is "),
    ev.TranscriptionCompleted(
        item_id=UID, transcript="What is the capital of France?", usage=ev.TranscriptionUsage(seconds=1.84)
    ),
    ev.ResponseCreated(response=_response("in_progress")),
    ev.OutputItemAdded(response_id=RID, item=ev.Item.message(IID, "assistant", "", status="in_progress")),
    ev.ContentPartAdded(response_id=RID, item_id=IID, part=ev.ContentPart(type="audio", transcript="")),
    ev.OutputAudioDelta(response_id=RID, item_id=IID, delta=AUDIO),
    ev.OutputAudioTranscriptDelta(response_id=RID, item_id=IID, delta="Paris is "),
    ev.OutputAudioDone(response_id=RID, item_id=IID),
    ev.OutputAudioTranscriptDone(response_id=RID, item_id=IID, transcript=TRANSCRIPT),
    ev.ContentPartDone(response_id=RID, item_id=IID, part=AUDIO_PART),
    ev.OutputItemDone(response_id=RID, item=ev.Item.message(IID, "assistant", TRANSCRIPT)),
    ev.ResponseDone(response=_response("completed"), timings={"voice_to_voice_ms": 812.5, "llm_ttft_ms": 95.0}),
    ev.ResponseDone(response=_response("cancelled", ev.StatusDetails.cancelled("turn_detected"))),
    ev.ResponseDone(response=_response("cancelled", ev.StatusDetails.cancelled("client_cancelled"))),
    ev.ResponseDone(response=_response("failed", ev.StatusDetails.failed("llm_lost", "lost the llm service"))),
    # Text replies (output_modalities ["text"]) and function calls.
    ev.SessionUpdated(
        session=_session(
            output_modalities=["text"],
            tools=[rt.FunctionTool(name="get_weather", description="The weather.", parameters=WEATHER_SCHEMA)],
            tool_choice=rt.ToolChoiceFunction(name="get_weather"),
        )
    ),
    ev.OutputItemAdded(response_id=RID, item=ev.Item.message(IID, "assistant", "", status="in_progress", spoken=False)),
    ev.ContentPartAdded(response_id=RID, item_id=IID, part=ev.ContentPart(type="text", text="")),
    ev.OutputTextDelta(response_id=RID, item_id=IID, delta="Paris "),
    ev.OutputTextDone(response_id=RID, item_id=IID, text=TRANSCRIPT),
    ev.ContentPartDone(response_id=RID, item_id=IID, part=ev.ContentPart(type="text", text=TRANSCRIPT)),
    ev.OutputItemDone(response_id=RID, item=ev.Item.message(IID, "assistant", TRANSCRIPT, spoken=False)),
    ev.OutputItemAdded(
        response_id=RID, item=ev.Item.function_call(CALL_ITEM, CALL_ID, "get_weather", "", status="in_progress")
    ),
    ev.FunctionCallArgumentsDelta(response_id=RID, item_id=CALL_ITEM, call_id=CALL_ID, delta=ARGS),
    ev.FunctionCallArgumentsDone(
        response_id=RID, item_id=CALL_ITEM, call_id=CALL_ID, name="get_weather", arguments=ARGS
    ),
    ev.OutputItemDone(response_id=RID, item=ev.Item.function_call(CALL_ITEM, CALL_ID, "get_weather", ARGS)),
    ev.ResponseDone(
        response=ev.ResponseBody(
            id=RID, status="completed", output=[ev.Item.function_call(CALL_ITEM, CALL_ID, "get_weather", ARGS)]
        )
    ),
    ev.ItemAdded(
        item=ev.Item.function_call_output("item_s1_12", CALL_ID, '{"sky": "sunny"}'), previous_item_id=CALL_ITEM
    ),
    ev.ItemDone(
        item=ev.Item.function_call_output("item_s1_12", CALL_ID, '{"sky": "sunny"}'), previous_item_id=CALL_ITEM
    ),
    ev.ItemRetrieved(item=ev.Item.function_call(CALL_ITEM, CALL_ID, "get_weather", ARGS)),
]
for number, example in enumerate(EXAMPLES, start=1):
    example.event_id = f"event_s1_{number}"


def _wire_params() -> list[Any]:
    return [pytest.param(ev.to_wire(event), id=f"{n}-{event.type}") for n, event in enumerate(EXAMPLES)]


def _check_against_ga(model: BaseModel, sent: Any, path: str, problems: list[str]) -> None:
    """Walks the GA parse of what we sent: every field GA requires is there, and nothing GA lacks unless allowed."""
    if isinstance(model, BaseModel):
        assert isinstance(sent, dict), path
        missing = [name for name, f in type(model).model_fields.items() if f.is_required() and name not in sent]
        problems += [f"{path}.{name}: required by GA, not sent" for name in missing]
        for name in model.model_extra or {}:
            if f"{type(model).__name__}.{name}" not in ALLOWED_EXTRAS:
                problems.append(f"{path}.{name}: not in GA's {type(model).__name__}")
        for name in type(model).model_fields:
            if name in sent:
                _check_against_ga(getattr(model, name), sent[name], f"{path}.{name}", problems)
    elif isinstance(model, list):
        for index, (part, raw) in enumerate(zip(model, sent, strict=True)):
            _check_against_ga(part, raw, f"{path}[{index}]", problems)


def test_every_event_class_has_an_example():
    assert {event.type for event in EXAMPLES} == set(ev.EVENT_TYPES)
    assert len(set(ev.EVENT_TYPES)) == len(ev.EVENT_TYPES) == len(ev.EVENT_CLASSES)


@pytest.mark.parametrize("wire", _wire_params())
def test_event_validates_against_the_ga_schema(wire: dict[str, Any]):
    wire = json.loads(json.dumps(wire))  # exactly what a client parses
    ga_model = GA_MODELS[wire["type"]]
    parsed = ga_model.model_validate(wire)
    problems: list[str] = []
    _check_against_ga(parsed, wire, wire["type"], problems)
    assert not problems, problems
    assert type(GA_UNION.validate_python(wire)) is ga_model


@pytest.mark.parametrize("wire", _wire_params())
def test_event_round_trips_through_server_events(wire: dict[str, Any]):
    parsed = ev.SERVER_EVENTS.validate_python(json.loads(json.dumps(wire)))
    assert ev.to_wire(parsed) == wire
    assert parsed.event_id.startswith("event_s1_")


def test_nulls_are_kept_only_where_ga_sends_them():
    error = ev.to_wire(EXAMPLES[1])["error"]
    assert error["param"] is None and error["event_id"] is None and error["code"] == "upstream_lost"
    manual = ev.to_wire(ev.SessionUpdated(session=_session(turn_detection=None)))
    assert manual["session"]["audio"]["input"]["turn_detection"] is None
    assert manual["session"]["max_output_tokens"] == "inf"
    vad = ev.to_wire(ev.SessionCreated(session=_session()))["session"]["audio"]["input"]["turn_detection"]
    assert vad == {"type": "server_vad", "create_response": True, "interrupt_response": True}
    first = ev.to_wire(ev.InputAudioCommitted(item_id=UID, previous_item_id=None))
    assert "previous_item_id" in first and first["previous_item_id"] is None
    created = ev.to_wire(ev.ResponseCreated(response=_response("in_progress")))["response"]
    assert created["status_details"] is None and created["output"] == []
    done = ev.to_wire(ev.ResponseDone(response=_response("completed")))
    assert "timings" not in done
    assert done["response"]["output"][0]["content"] == [{"type": "output_audio", "transcript": TRANSCRIPT}]
    pending = ev.to_wire(ev.ItemAdded(item=ev.Item.user_audio(UID, None, status="in_progress")))
    assert pending["item"]["content"] == [{"type": "input_audio"}]


def test_item_parts_follow_the_role():
    assert ev.Item.message("i", "user", "hi").content == [ev.ContentPart(type="input_text", text="hi")]
    assert ev.Item.message("i", "system", "be brief").content == [ev.ContentPart(type="input_text", text="be brief")]
    assert ev.Item.message("i", "assistant", "yes").content == [ev.ContentPart(type="output_audio", transcript="yes")]
    with pytest.raises(ValidationError, match="assistant message cannot hold"):
        ev.Item(id="i", role="assistant", content=[ev.ContentPart(type="input_text", text="hi")])
    with pytest.raises(ValidationError, match="system message cannot hold"):
        ev.Item(id="i", role="system", content=[ev.ContentPart(type="input_audio", transcript="hi")])
    with pytest.raises(ValidationError):
        ev.Item.message("i", "robot", "hi")
    assert ev.Item.message("i", "assistant", "yes", spoken=False).content == [
        ev.ContentPart(type="output_text", text="yes")
    ]
    with pytest.raises(ValidationError, match="function_call item has"):  # a call has no role or content
        ev.Item(id="i", type="function_call", role="assistant", call_id="c", name="f", arguments="{}")
    with pytest.raises(ValidationError, match="function_call_output item has"):
        ev.Item(id="i", type="function_call_output", call_id="c")
    with pytest.raises(ValidationError, match="message item has"):  # a message needs its role
        ev.Item(id="i", content=[])


def test_shapes_ga_rejects_are_refused_when_built():
    """Each of these was a shape the gateway sent, or nearly sent, that GA's schema rejects."""
    with pytest.raises(ValidationError, match="content_part"):  # items say output_audio, content parts say audio
        ev.ContentPartAdded(response_id=RID, item_id=IID, part=ev.ContentPart(type="output_audio", transcript=""))
    with pytest.raises(ValidationError, match="content_part"):
        ev.ContentPartDone(response_id=RID, item_id=IID, part=ev.ContentPart(type="output_audio", transcript="x"))
    with pytest.raises(ValidationError):  # a failure's cause is an error code, not a cancel reason
        ev.StatusDetails.model_validate({"type": "failed", "reason": "llm_lost"})
    with pytest.raises(ValidationError, match="usage"):
        ev.TranscriptionCompleted.model_validate({"item_id": UID, "transcript": "hi"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        ev.SpeechStarted.model_validate({"audio_start_ms": 1, "item_id": UID, "audio_start": 1})
    with pytest.raises(ValidationError):  # GA's audio_start_ms is an integer
        ev.SpeechStarted(audio_start_ms=12.5, item_id=UID)  # type: ignore[arg-type]
    # The GA schema itself refuses the content-part kind of items inside response.content_part.*.
    added = next(event for event in EXAMPLES if isinstance(event, ev.ContentPartAdded))
    wire = ev.to_wire(added) | {"part": {"type": "output_audio", "transcript": ""}}
    with pytest.raises(ValidationError):
        GA_MODELS[wire["type"]].model_validate(wire)


def _gateway_sources() -> str:
    return "\n".join(path.read_text() for path in sorted((REPO / "services" / "gateway").glob("*.py")))


def test_the_models_cover_every_event_the_gateway_sends():
    source = _gateway_sources()
    by_string = set(re.findall(r"""\bemit\(\s*["']([a-z_]+\.[a-z_.]+)["']""", source))  # the dict-era emit("type", ...)
    names = set(re.findall(r"\bev\.([A-Z]\w+)\(", source))
    unknown = sorted(name for name in names if not hasattr(ev, name))
    assert not unknown, f"the gateway builds {unknown}, which realtime_server lacks"
    classes = [getattr(ev, name) for name in names]
    by_class = {cls.model_fields["type"].default for cls in classes if issubclass(cls, ev.ServerEvent)}
    sent = by_string | by_class
    if re.search(r"\berror\(", source):
        sent.add("error")
    assert len(sent) >= 10, f"found too few emitted events to trust the scan: {sorted(sent)}"
    assert sent <= set(ev.EVENT_TYPES), sorted(sent - set(ev.EVENT_TYPES))
