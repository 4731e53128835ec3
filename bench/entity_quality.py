"""Entity quality: the hand-labelled seeds (P/R/F1 per label on canonical (article, entity, label)), and held-out
English news with gold entities (CoNLL-2003 dev and test, bench/heldout/), raw model against the stage.

Held-out scoring: per document, the unique (name, label) pairs over PER/ORG/LOC (ours mapped: PERSON -> PER,
ORG -> ORG, GPE/LOC/FAC -> LOC; MISC, NORP and the rest ignored). Names are compared leniently and the same way
for gold, the raw model and the stage: `lenient` below (whitespace collapsed, possessive, edge punctuation and a
leading "the" stripped, case folded), each mention by its surface text (not the stage's canonical name, since
the gold lists surfaces: "Rutte" and "Mark Rutte" are two gold names). The raw model is the spaCy model alone
(nlp.pipe: no gazetteer, no post-processing); the stage is `annotate` with the configured gazetteer.
The test split is the blind one: look at it only to report, never to tune.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import pathlib
import re
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transforms.entities import (  # noqa: E402
    DEFAULT_GAZETTEER,
    EntityConfig,
    annotate,
    clean_name,
    gazetteer_patterns,
    load_nlp,
)
from transforms.entities.labels import common_label  # noqa: E402

GOLD = ROOT / "tests" / "data" / "entities_gold.json"
SEEDS = ROOT / "seeds"
HELDOUT = ROOT / "bench" / "heldout"
SPLITS = (("CoNLL-2003 dev", "conll2003_dev.jsonl.gz"), ("CoNLL-2003 test (blind)", "conll2003_test.jsonl.gz"))
# Our common labels -> the CoNLL types scored; anything else is not scored.
TO_CONLL = {"PERSON": "PER", "PER": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC"}

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


def lenient(name: str) -> str:
    """A name as scored on held-out text: `clean_name` (whitespace, possessive, edge punctuation, leading "the"),
    then case folded, so that "CHINA" in a headline and "China" in the body are one name."""
    name = clean_name(name)
    if name.lower().startswith("the "):
        name = name[4:]
    return name.casefold()


def _pairs(found) -> set[tuple[str, str]]:
    """Unique (lenient name, CoNLL type) of (surface, label) pairs, unscored labels dropped."""
    out = set()
    for surface, label in found:
        kind = TO_CONLL.get(common_label(label))
        if kind and lenient(surface):
            out.add((lenient(surface), kind))
    return out


def read_heldout(path: pathlib.Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def heldout_scores(docs: list[dict], nlp_raw, nlp_stage, cfg: EntityConfig, errors: bool) -> None:
    """P/R/F1 per type and overall for the raw model and the stage on one held-out split, and their NER speed."""
    gold = {(d["doc_id"], n, k) for d in docs for n, k in _pairs((e["text"], e["label"]) for e in d["entities"])}
    texts = [d["text"] for d in docs]
    words = sum(len(t.split()) for t in texts)
    start = time.perf_counter()
    raw_docs = list(nlp_raw.pipe(texts, batch_size=cfg.batch_size))
    raw_s = time.perf_counter() - start
    start = time.perf_counter()
    stage = annotate(nlp_stage, texts, cfg)
    stage_s = time.perf_counter() - start
    runs = {
        "raw model": {
            (d["doc_id"], n, k)
            for d, doc in zip(docs, raw_docs, strict=True)
            for n, k in _pairs((e.text, e.label_) for e in doc.ents)
        },
        "stage": {
            (d["doc_id"], n, k)
            for d, ms in zip(docs, stage, strict=True)
            for n, k in _pairs((m.text, m.label) for m in ms)
        },
    }
    print(f"{len(docs)} documents, {words} words, {len(gold)} gold (document, name, type) over PER/ORG/LOC")
    print(f"{'':<12}{'label':<9}{'tp':>6}{'fp':>6}{'fn':>6}{'P':>8}{'R':>8}{'F1':>8}")
    for title, pred in runs.items():
        for label, tp, fp, fn, p, r, f in score(pred, gold, ["PER", "ORG", "LOC"]):
            print(f"{title:<12}{label:<9}{tp:>6}{fp:>6}{fn:>6}{p:>8.3f}{r:>8.3f}{f:>8.3f}")
    print(f"speed: raw model {words / raw_s:,.0f} words/s, stage {words / stage_s:,.0f} words/s")
    if errors:
        for title, pred in runs.items():
            fp = collections.Counter((n, k) for _, n, k in pred - gold)
            fn = collections.Counter((n, k) for _, n, k in gold - pred)
            print(f"  {title} top false positives: {fp.most_common(40)}")
            print(f"  {title} top false negatives: {fn.most_common(40)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=EntityConfig().model)
    ap.add_argument(
        "--gazetteer", default=DEFAULT_GAZETTEER, help="patterns file for the 'with gazetteer' runs (default: built)"
    )
    ap.add_argument("--split", choices=("seeds", "dev", "test", "all"), default="all", help="what to score")
    ap.add_argument("--errors", action="store_true", help="list false positives and false negatives")
    ap.add_argument("--local-clean", action="store_true", help="clean with the local list, not transforms.clean")
    args = ap.parse_args()
    cfg = EntityConfig(models=(("en", args.model),), gazetteer=args.gazetteer)
    start = time.perf_counter()
    patterns = gazetteer_patterns(cfg)
    print(f"gazetteer {args.gazetteer}: {len(patterns)} patterns, built in {time.perf_counter() - start:.2f} s")
    if args.split in ("seeds", "all"):
        seeds(args, patterns)
    wanted = {"dev": SPLITS[:1], "test": SPLITS[1:], "all": SPLITS}.get(args.split, ())
    if wanted:
        nlp_raw, nlp_stage = load_nlp(args.model), load_nlp(args.model, patterns, cfg.gazetteer_mode)
    for title, name in wanted:
        print(f"\n== held out: {title}")
        if not (HELDOUT / name).is_file():
            print(f"missing {HELDOUT / name}")
            continue
        heldout_scores(read_heldout(HELDOUT / name), nlp_raw, nlp_stage, cfg, args.errors)


def seeds(args, patterns: list[dict]) -> None:
    """The seeds' scores, as before: the model with canonical names, the gazetteer before it, and reconciled."""
    gold_doc = json.loads(GOLD.read_text(encoding="utf-8"))
    labels = gold_doc["labels"]
    gold = {(k, e, lab) for k, ents in gold_doc["articles"].items() for e, lab in ents}
    texts, cleaner = _cleaned_seeds(args.local_clean)
    names = sorted(gold_doc["articles"])
    print(f"seeds cleaned by: {cleaner}; gold: {len(gold)} canonical (article, entity, label) triples")
    cfg = EntityConfig(models=(("en", args.model),), labels=tuple(labels))
    probes = gold_doc["compound_names"]["texts"]
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
