"""Ids for one session's items, responses and events: short, unique within the session, readable in logs."""

from __future__ import annotations

import itertools


class Ids:
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self._counter = itertools.count(1)

    def next(self, prefix: str) -> str:
        return f"{prefix}_{self.session_id}_{next(self._counter)}"
