"""Canonical names: one cleaned name and one majority label per entity of an article."""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable, Sequence

from schemas.elements import EntityMention

# Named things analysts query, plus DATE. Numeric types (CARDINAL, MONEY, PERCENT, ...) are noise per article.
NAME_LABELS = ("PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE")
DEFAULT_LABELS = NAME_LABELS + ("DATE",)

_WS = re.compile(r"\s+")
_POSSESSIVE = re.compile(r"(?:['’]s|(?<=[sS])['’])$")
_EDGE_PUNCT = "\"'“”‘’«»()[]{}<>,;:"
_SENTENCE_START = re.compile(r"(?:^|[.!?…:\n])[\s\"'“”‘’(\[]*$")


def _sentence_initial(text: str, start: int) -> bool:
    return bool(_SENTENCE_START.search(text[max(0, start - 20) : start]))


def clean_name(mention: str, sentence_initial: bool = False) -> str:
    """A mention's name: whitespace collapsed, possessive and edge punctuation stripped, a leading article dropped.

    "Russia's" and "Russia’s" -> "Russia"; "the United States" -> "United States". A capital "The" is part of
    the name ("The Hague") unless the mention opens a sentence.
    """
    name = _WS.sub(" ", mention).strip().strip(_EDGE_PUNCT).strip()
    name = _POSSESSIVE.sub("", name).strip().strip(_EDGE_PUNCT).strip()
    if name.startswith("the ") or (sentence_initial and name.startswith("The ")):
        name = name[4:].strip()
    return name


def _pick(candidates: Iterable[str], weight: dict[str, int], first: dict[str, int]) -> str:
    return min(candidates, key=lambda c: (-weight[c], first[c], c))


def _named_items(text: str, raw: Sequence[tuple[int, int, str, str]]) -> list[list]:
    """[start, end, label, name] in text order, without nameless mentions and lower-case proper names."""
    items = []
    for start, end, label, pid in sorted(raw, key=lambda r: (r[0], r[1], r[2])):
        name = pid.strip() if pid else clean_name(text[start:end], _sentence_initial(text, start))
        if not name or (label in NAME_LABELS and not any(ch.isupper() for ch in name)):
            continue
        items.append([start, end, label, name])
    return items


def _repair_person_case(items: list[list]) -> None:
    """Lower-case words of PERSON names take a capitalised form seen anywhere in the article ("Donald trump")."""
    capitalised: dict[str, str] = {}
    for it in items:
        for tok in it[3].split(" "):
            if tok[:1].isupper():
                capitalised.setdefault(tok.casefold(), tok)
    for it in items:
        if it[2] == "PERSON" and any(t.islower() for t in it[3].split(" ")):
            it[3] = " ".join(capitalised.get(t.casefold(), t) if t.islower() else t for t in it[3].split(" "))


def _resolve_one_word_persons(items: list[list]) -> None:
    """A one-word PERSON name becomes the full PERSON name ending, else starting, with it (see canonicalize)."""
    person_count: collections.Counter = collections.Counter(it[3] for it in items if it[2] == "PERSON")
    first_seen: dict[str, int] = {}
    for it in items:
        first_seen.setdefault(it[3], it[0])
    full_names = [n for n in person_count if " " in n]
    resolved: dict[str, str] = {}
    for name in person_count:
        if " " in name:
            continue
        key = name.casefold()
        by_surname = [f for f in full_names if f.split(" ")[-1].casefold() == key]
        by_first = [f for f in full_names if f.split(" ")[0].casefold() == key]
        if by_surname or by_first:
            resolved[name] = _pick(by_surname or by_first, person_count, first_seen)
    for it in items:
        # The same word elsewhere in the article, even under another label, is the same person.
        it[3] = resolved.get(it[3], it[3])


def _majority_labels(items: list[list]) -> dict[str, str]:
    """{name: its most frequent label}; ties go to the label seen first, then by label."""
    votes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    label_first: dict[tuple[str, str], int] = {}
    for it in items:
        votes[it[3]][it[2]] += 1
        label_first.setdefault((it[3], it[2]), it[0])
    return {
        name: min(c, key=lambda lab, name=name: (-c[lab], label_first[(name, lab)], lab)) for name, c in votes.items()
    }


def canonicalize(
    text: str,
    raw: Sequence[tuple[int, int, str, str]],
    labels: Sequence[str] | None = DEFAULT_LABELS,
) -> tuple[EntityMention, ...]:
    """Per-article canonical mentions from raw (start, end, label, pattern_id) spans of `text`.

    - names are cleaned (`clean_name`); a gazetteer pattern's id, when it has one, is the name;
    - proper-name labels without any capital letter are dropped ("the max" tagged PERSON);
    - a lower-case token of a PERSON name is repaired from a capitalised form seen in the article;
    - a one-word PERSON resolves to the longer PERSON name ending with it ("Rutte" -> "Mark Rutte"), else to one
      starting with it ("Vladimir" -> "Vladimir Putin"); several candidates: most mentions, then first seen;
      the word's mentions under other labels follow it;
    - every mention of a name gets the name's majority label (ties: the label seen first, then by name);
    - only `labels` are kept (None keeps all). Mentions come back in text order.
    """
    items = _named_items(text, raw)
    if not items:
        return ()
    # Order matters: case repair first, so that "Donald trump" and "Trump" meet as one full name and its word.
    _repair_person_case(items)
    _resolve_one_word_persons(items)
    majority = _majority_labels(items)
    keep = None if labels is None else set(labels)
    return tuple(
        EntityMention(text=text[s:e], label=majority[name], start=s, end=e, canonical=name)
        for s, e, _, name in items
        if keep is None or majority[name] in keep
    )
