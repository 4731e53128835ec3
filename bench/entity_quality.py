"""Entity quality on the hand-labelled seeds: P/R/F1 per label and overall on canonical (article, entity, label)."""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transforms.entities import DEFAULT_GAZETTEER, EntityConfig, annotate, load_nlp, read_patterns  # noqa: E402

GOLD = ROOT / "tests" / "data" / "entities_gold.json"
SEEDS = ROOT / "seeds"

# Used only when transforms/clean.py is not there: the seeds' boilerplate lines, and their title lines,
# which the cleaner lifts into `title` (NER runs on the body text).
_DROP_LINES = [
    r"Others are reading now",
    r"Also read",
    r"Sources?:.*",
    r"Legal Disclaimer:?",
    r"MENAFN provides the information.*",
    r"Search",
    r"MENAFN\d+ID\d+",
    r"AA",
    r"File Photo",
    r"#.*",
    r"\d{1,2}:\d{2}\d{1,2}/\d{1,2}/\d{4},? \w+day",
    r"\w+day \d{1,2} \w+ \d{4} \d{1,2}:\d{2} GMT",
]
_AGENCY_PREFIX = re.compile(r"^\((?:MENAFN|AP|Reuters|AFP)\)\s*[-—]?\s*")
_TITLES = {"001": 0, "002": 0, "004": 0}  # index of the headline among the kept non-empty lines


def _local_clean(name: str, text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    kept = [ln for ln in lines if not any(re.fullmatch(p, ln.strip()) for p in _DROP_LINES)]
    if name[:3] in _TITLES:
        kept.pop(_TITLES[name[:3]])
    return "\n".join(_AGENCY_PREFIX.sub("", ln) for ln in kept)


def _cleaned_seeds(local: bool = False) -> tuple[dict[str, str], str]:
    """{seed name: body text after cleaning} and which cleaner produced it."""
    raw = {p.stem: p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))}
    if local:
        return {k: _local_clean(k, v) for k, v in raw.items()}, "local boilerplate list (--local-clean)"
    try:
        from transforms import clean  # written by another helper; used when it is there and works

        rules = clean.load_rules()
        return {k: clean.clean_text(v, rules).text for k, v in raw.items()}, "transforms.clean.clean_text"
    except Exception as e:  # noqa: BLE001 - absent or changing: fall back to the local list, and say so
        cleaned = {k: _local_clean(k, v) for k, v in raw.items()}
        return cleaned, f"local boilerplate list (transforms.clean unusable: {type(e).__name__})"


def triples(entities_by_article: dict[str, tuple]) -> set[tuple[str, str, str]]:
    return {(k, m.canonical, m.label) for k, ents in entities_by_article.items() for m in ents}


def score(pred: set, gold: set, labels: list[str]) -> list[tuple[str, int, int, int, float, float, float]]:
    """(label, tp, fp, fn, P, R, F1) per label, then 'overall' (micro)."""
    rows = []
    for label in [*labels, "overall"]:
        p = {t for t in pred if label in ("overall", t[2])}
        g = {t for t in gold if label in ("overall", t[2])}
        if not p and not g:
            continue
        tp, fp, fn = len(p & g), len(p - g), len(g - p)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        rows.append((label, tp, fp, fn, prec, rec, f1))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=EntityConfig.model)
    ap.add_argument("--gazetteer", default=DEFAULT_GAZETTEER, help="patterns file for the 'with gazetteer' run")
    ap.add_argument("--errors", action="store_true", help="list false positives and false negatives")
    ap.add_argument("--local-clean", action="store_true", help="clean with the local list, not transforms.clean")
    args = ap.parse_args()

    gold_doc = json.loads(GOLD.read_text(encoding="utf-8"))
    labels = gold_doc["labels"]
    gold = {(k, e, lab) for k, ents in gold_doc["articles"].items() for e, lab in ents}
    texts, cleaner = _cleaned_seeds(args.local_clean)
    names = sorted(gold_doc["articles"])
    print(f"seeds cleaned by: {cleaner}; gold: {len(gold)} canonical (article, entity, label) triples")
    cfg = dataclasses.replace(EntityConfig(model=args.model), labels=tuple(labels))
    probes = gold_doc["compound_names"]["texts"]
    patterns = read_patterns(args.gazetteer)
    runs = (("model alone", [], "reconcile"), ("gazetteer before ner", patterns, "before"))
    runs += (("gazetteer reconciled after ner (default)", patterns, "reconcile"),)
    for title, pats, mode in runs:
        nlp = load_nlp(args.model, pats, mode)
        ents = dict(zip(names, annotate(nlp, [texts[n] for n in names], cfg), strict=True))
        pred = triples(ents)
        print(f"\n== {title}: pipeline {nlp.pipe_names}")
        print(f"{'label':<12}{'tp':>5}{'fp':>5}{'fn':>5}{'P':>8}{'R':>8}{'F1':>8}")
        for label, tp, fp, fn, p, r, f in score(pred, gold, labels):
            print(f"{label:<12}{tp:>5}{fp:>5}{fn:>5}{p:>8.3f}{r:>8.3f}{f:>8.3f}")
        probe_ents = annotate(nlp, [v["text"] for v in probes.values()], cfg)
        whole = [
            (n in {m.canonical for m in e})
            for v, e in zip(probes.values(), probe_ents, strict=True)
            for n in v["names"]
        ]
        print(f"compound-name probe: {sum(whole)}/{len(whole)} names kept whole")
        if args.errors:
            by = collections.defaultdict(list)
            for t in sorted(pred - gold):
                by[t[0]].append(f"+{t[1]}/{t[2]}")
            for t in sorted(gold - pred):
                by[t[0]].append(f"-{t[1]}/{t[2]}")
            for k in names:
                print(f"  {k[:3]}: {' '.join(by[k]) or 'no errors'}")
            for k, e in zip(probes, probe_ents, strict=True):
                print(f"  probe {k}: {[(m.canonical, m.label) for m in e]}")


if __name__ == "__main__":
    main()
