"""``conversation.item.create``: what a client may add to the conversation. Pure: events out through ``emit``.

A message needs text (``input_text``/``text`` parts; an assistant message's text counts as spoken). A
``function_call_output`` answers a call of an earlier response by its ``call_id``; a ``function_call`` item (a client
rebuilding a conversation) needs ``call_id`` and ``name``. Each is added to the history and answered with
``conversation.item.added`` and ``.done``.
"""

from __future__ import annotations

from collections.abc import Callable

from services.common import realtime as rt
from services.common import realtime_server as ev
from services.gateway.history import History
from services.gateway.ids import Ids

ErrorFn = Callable[[str, str, str | None, str | None], None]


def create_item(
    event: rt.ConversationItemCreate,
    history: History,
    ids: Ids,
    emit: Callable[[ev.ServerEvent], None],
    error: ErrorFn,
) -> None:
    item, event_id = event.item, event.event_id
    item_id = item.id or ids.next("item")
    if history.get(item_id) is not None:
        error("invalid_value", f"conversation.item.create: an item {item_id!r} already exists", event_id, "item.id")
        return
    previous = history.last_item_id
    if item.type == "function_call_output":
        if not item.call_id:
            error(
                "missing_required_parameter", "a function_call_output item needs its call_id", event_id, "item.call_id"
            )
            return
        if not any(h.kind == "function_call" and h.call_id == item.call_id for h in history.items):
            msg = f"conversation.item.create: no function call with call_id {item.call_id!r} in the conversation"
            error("invalid_value", msg, event_id, "item.call_id")
            return
        history.add_call_output(item_id, item.call_id, item.output or "")
    elif item.type == "function_call":
        if not item.call_id or not item.name:
            error("missing_required_parameter", "a function_call item needs call_id and name", event_id, "item")
            return
        history.add_call(item_id, item.call_id, item.name, item.arguments or "{}")
    else:
        text = item.text()
        if not text:
            msg = "conversation.item.create: the item has no text content"
            error("invalid_value", msg, event_id, "item.content")
            return
        history.add(item_id, item.role, text)
    emit(ev.ItemAdded(item=history.item(item_id), previous_item_id=previous))
    emit(ev.ItemDone(item=history.item(item_id), previous_item_id=previous))
