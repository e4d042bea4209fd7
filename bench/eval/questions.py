"""The question set (bench/eval/questions.yaml): loaded, checked, and chosen from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

QUESTIONS_FILE = Path(__file__).with_name("questions.yaml")
KINDS = ("fact", "arithmetic", "definition", "howto", "followup", "instruction")
DEFAULT_MAX_SENTENCES = 2  # the spoken system prompt asks for one or two sentences


class QuestionError(ValueError):
    """The question file is malformed; the message names the entry."""


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    ask: str
    require: tuple[str, ...]  # each group: alternatives separated by "|"; every group must match
    forbid: tuple[str, ...] = ()
    context: tuple[str, ...] = ()  # said before, in the same conversation (not judged)
    max_sentences: int = DEFAULT_MAX_SENTENCES
    max_words: int | None = None
    subset: bool = False


_FIELDS = {"id", "kind", "ask", "require", "forbid", "context", "max_sentences", "max_words", "subset"}


def _strings(entry: dict, key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise QuestionError(f"{where}: {key} must be a list of non-empty strings")
    return tuple(value)


def parse(entries: object) -> list[Question]:
    if not isinstance(entries, list):
        raise QuestionError("the question file must be a list of entries")
    out: list[Question] = []
    for n, entry in enumerate(entries, 1):
        where = f"entry {n}"
        if not isinstance(entry, dict):
            raise QuestionError(f"{where}: not a mapping")
        where = f"entry {n} ({entry.get('id', 'no id')})"
        if unknown := set(entry) - _FIELDS:
            raise QuestionError(f"{where}: unknown fields {sorted(unknown)}")
        if not all(isinstance(entry.get(k), str) and entry[k].strip() for k in ("id", "kind", "ask")):
            raise QuestionError(f"{where}: id, kind and ask are required strings")
        if entry["kind"] not in KINDS:
            raise QuestionError(f"{where}: kind {entry['kind']!r} is not one of {', '.join(KINDS)}")
        require = _strings(entry, "require", where)
        if not require:
            raise QuestionError(f"{where}: require names at least one group of words")
        context = _strings(entry, "context", where)
        if (entry["kind"] == "followup") != bool(context):
            raise QuestionError(f"{where}: a followup (and only a followup) has a context")
        max_sentences, max_words = entry.get("max_sentences", DEFAULT_MAX_SENTENCES), entry.get("max_words")
        if not isinstance(max_sentences, int) or max_sentences < 1:
            raise QuestionError(f"{where}: max_sentences must be a positive integer")
        if max_words is not None and (not isinstance(max_words, int) or max_words < 1):
            raise QuestionError(f"{where}: max_words must be a positive integer")
        question = Question(
            entry["id"], entry["kind"], entry["ask"].strip(), require, _strings(entry, "forbid", where), context,
            max_sentences, max_words, bool(entry.get("subset", False)),
        )  # fmt: skip
        out.append(question)
    ids = [q.id for q in out]
    if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
        raise QuestionError(f"duplicate ids: {duplicates}")
    return out


def load(path: Path = QUESTIONS_FILE) -> list[Question]:
    try:
        return parse(yaml.safe_load(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise QuestionError(f"{path}: {exc}") from None


@dataclass
class Selection:
    """Which questions: all, the ``make test`` subset, named ids, or kinds; at most ``limit``."""

    subset: bool = False
    ids: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    limit: int | None = None

    def apply(self, questions: list[Question]) -> list[Question]:
        known = {q.id for q in questions}
        if unknown := [i for i in self.ids if i not in known]:
            raise QuestionError(f"unknown question ids: {unknown}")
        if unknown := [k for k in self.kinds if k not in KINDS]:
            raise QuestionError(f"unknown kinds: {unknown}; known: {', '.join(KINDS)}")
        chosen = [
            q
            for q in questions
            if (not self.subset or q.subset)
            and (not self.ids or q.id in self.ids)
            and (not self.kinds or q.kind in self.kinds)
        ]
        return chosen[: self.limit] if self.limit else chosen
