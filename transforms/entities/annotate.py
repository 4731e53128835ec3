"""NER over texts without Beam: size limit, chunks, pipe batches, canonical mentions per text."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from schemas.elements import Article, EntityMention
from transforms.batching import bounded_batches
from transforms.entities.canonical import NO_NAMES, KnownNames, canonicalize
from transforms.entities.config import EntityConfig
from transforms.entities.gazetteer import MODEL_ENTS_KEY, known_names

TRUNCATED_FLAG = "ner_truncated"
_SENTENCE_END = re.compile(r"[.!?…]['\"”’)\]]*\s+")


def _cut(window: str, floor: int = 0) -> int:
    """Where to end a piece that must fit in `window` (which continues past it): after the last newline (a
    paragraph boundary) beyond `floor`, else after a sentence end, else at whitespace, else at the window's end,
    inside a word.
    """
    cut = window.rfind("\n") + 1
    if cut <= floor:
        ends = [m.end() for m in _SENTENCE_END.finditer(window)]
        cut = ends[-1] if ends else 0
    if cut <= floor:
        spaces = [m.end() for m in re.finditer(r"\s+", window)]
        cut = spaces[-1] if spaces and spaces[-1] < len(window) else 0
    return cut if cut > floor else len(window)


def split_text(text: str, max_chars: int) -> list[tuple[int, str]]:
    """(offset, piece) covering `text` exactly, each piece at most max_chars long, cut as `_cut` says."""
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    pieces, pos, n = [], 0, len(text)
    while n - pos > max_chars:
        window = text[pos : pos + max_chars]
        cut = _cut(window)
        pieces.append((pos, window[:cut]))
        pos += cut
    if pos < n or not pieces:
        pieces.append((pos, text[pos:]))
    return pieces


def ner_truncated(text: str, max_chars: int) -> bool:
    """Whether NER reads only a leading part of `text` (see `ner_part`)."""
    return len(text) > max_chars


def ner_part(text: str, max_chars: int) -> str:
    """The leading part of `text` NER reads: all of it when it fits in max_chars, else a prefix of at most
    max_chars cut like `split_text` cuts a piece.

    Only a boundary in the second half of the limit counts, so that one early line break in a huge single-line
    record does not leave NER a few characters.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    if not ner_truncated(text, max_chars):
        return text
    return text[: _cut(text[:max_chars], floor=max_chars // 2)]


def _raw_ents(doc, off: int) -> list[tuple[int, int, str, str, str]]:
    """(start, end, label, pattern id, the model's own label or "") of a Doc's entities, offset by `off`."""
    model = doc.user_data.get(MODEL_ENTS_KEY)
    return [
        (
            off + e.start_char,
            off + e.end_char,
            e.label_,
            e.ent_id_,
            (e.label_ if not e.ent_id_ else "") if model is None else model.get((e.start_char, e.end_char), ""),
        )
        for e in doc.ents
    ]


def _known(nlp) -> KnownNames:
    """The pipeline's gazetteer names (gazetteer.known_names), indexed once per loaded pipeline."""
    cached = getattr(nlp, "_news_ingest_known", None)
    if cached is None:
        cached = KnownNames.of(known_names(nlp)) if hasattr(nlp, "pipe_names") else NO_NAMES
        try:
            nlp._news_ingest_known = cached
        except AttributeError:  # a stand-in object without attributes: index it on each call
            pass
    return cached


def annotate(nlp, texts: Sequence[str], cfg: EntityConfig = EntityConfig()) -> list[tuple[EntityMention, ...]]:
    """Canonical entity mentions for each text, found in its `ner_part` only (offsets stay those of the text):
    long texts split into chunks, chunks through nlp.pipe in batches bounded in count and characters, then
    `canonicalize` with the pipeline's gazetteer names.
    """
    max_chars = max(1, min(cfg.chunk_chars, nlp.max_length - 1))
    pieces = [
        (i, off, piece) for i, t in enumerate(texts) for off, piece in split_text(ner_part(t, cfg.max_chars), max_chars)
    ]
    raw: list[list[tuple[int, int, str, str]]] = [[] for _ in texts]
    for lo, hi in bounded_batches([len(p) for _, _, p in pieces], cfg.batch_size, cfg.batch_chars):
        docs = nlp.pipe((p for _, _, p in pieces[lo:hi]), batch_size=hi - lo)
        for (i, off, _), doc in zip(pieces[lo:hi], docs, strict=True):
            raw[i].extend(_raw_ents(doc, off))
    known = _known(nlp)
    return [canonicalize(ner_part(t, cfg.max_chars), r, cfg.labels, known) for t, r in zip(texts, raw, strict=True)]


def annotate_each(nlp, texts: Sequence[str], cfg: EntityConfig) -> list[tuple[EntityMention, ...] | Exception]:
    """`annotate` of all texts at once; when that fails, of one text at a time, so that a text that breaks the
    model costs only itself: each result is the text's mentions or the exception it raised.
    """
    try:
        return list(annotate(nlp, texts, cfg))
    except Exception:  # noqa: BLE001 - find the culprit one text at a time below
        pass
    results: list[tuple[EntityMention, ...] | Exception] = []
    for text in texts:
        try:
            results.append(annotate(nlp, [text], cfg)[0])
        except Exception as e:  # noqa: BLE001 - one bad text must not take its batch with it
            results.append(e)
    return results


def with_entities(article: Article, entities: tuple[EntityMention, ...], max_chars: int) -> Article:
    """The article with its entities, flagged when they come from a leading part of its text only."""
    if not ner_truncated(article.text, max_chars):
        return dataclasses.replace(article, entities=entities)
    flags = article.flags if TRUNCATED_FLAG in article.flags else article.flags + (TRUNCATED_FLAG,)
    return dataclasses.replace(article, entities=entities, flags=flags)
