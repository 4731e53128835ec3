"""Gazetteer: EntityRuler patterns from a JSONL file, and their reconciliation with the statistical NER."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transforms.entities.config import EntityConfig

# The package data file transforms/data/gazetteer.jsonl: common geopolitical names the small model gets wrong.
DEFAULT_GAZETTEER = str(pathlib.Path(__file__).resolve().parents[1] / "data" / "gazetteer.jsonl")
GAZETTEER_MODES = ("reconcile", "before")
_RECONCILE_FILTER = "news_ingest.reconcile_ents.v1"
# Words a model may glue between gazetteer names when it tags a coordination as one entity.
_JOINERS = {"and", "or", "&", ",", "/", "the"}


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
    """The configured gazetteer's patterns; [] when it is disabled (None or "none")."""
    if not cfg.gazetteer or cfg.gazetteer.strip().lower() == "none":
        return []
    return read_patterns(cfg.gazetteer)


def check_mode(mode: str) -> None:
    """ValueError in one line unless `mode` is one of GAZETTEER_MODES."""
    if mode not in GAZETTEER_MODES:
        raise ValueError(f"gazetteer mode must be one of {', '.join(GAZETTEER_MODES)}, got {mode!r}")


def reconcile_ents(entities, matches) -> list:
    """Model entities corrected by gazetteer matches (spaCy Spans of one Doc).

    A match replaces the entities it overlaps (relabelling "Kyiv" PERSON as GPE, joining "Donald" + "trump"),
    or is added where the model found nothing, unless an overlapping entity is a longer name containing it
    ("Bank of Russia"). A model entity that is only several matches joined by "and" or commas ("the
    Euro-Atlantic and Indo-Pacific" as one LAW) is a coordination the model glued: the matches replace it.
    """
    from spacy.util import filter_spans

    found = [(g.start, g.end, g) for g in filter_spans(matches)]  # longest first, no two overlapping
    ents = []
    for e in entities:
        inside = [(gs, ge) for gs, ge, _ in found if e.start <= gs and ge <= e.end]
        covered = {i for gs, ge in inside for i in range(gs, ge)}
        if len(inside) < 2 or any(t.i not in covered and t.lower_ not in _JOINERS for t in e):
            ents.append((e.start, e.end, e))
    for gs, ge, g in found:
        over = [(es, ee) for es, ee, _ in ents if es < ge and gs < ee]
        if any(es <= gs and ge <= ee and ee - es > ge - gs for es, ee in over):
            continue
        if over:
            ents = [x for x in ents if not (x[0] < ge and gs < x[1])]
        ents.append((gs, ge, g))
    return [x[2] for x in ents]


def add_gazetteer(nlp, patterns: Sequence[dict], mode: str) -> None:
    """Add the patterns to a loaded pipeline as the component "gazetteer", placed as EntityConfig describes."""
    import spacy

    check_mode(mode)
    ner = next(n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == "ner")
    if mode == "before":
        ruler = nlp.add_pipe("entity_ruler", name="gazetteer", before=ner, config={"validate": True})
    else:
        # spaCy finds the filter by name in its registry; registering it twice would raise.
        if _RECONCILE_FILTER not in spacy.registry.misc.get_all():
            spacy.registry.misc.register(_RECONCILE_FILTER, func=lambda: reconcile_ents)
        config = {
            "spans_key": None,
            "annotate_ents": True,
            "overwrite": False,
            "ents_filter": {"@misc": _RECONCILE_FILTER},
        }
        ruler = nlp.add_pipe("span_ruler", name="gazetteer", after=ner, config={**config, "validate": True})
    ruler.add_patterns(list(patterns))
