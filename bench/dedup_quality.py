"""Dedup quality on the labelled near-duplicate set: pairwise precision/recall/F1 and the LSH's recall.

Usage: python bench/dedup_quality.py [--generate-seed N] [--threshold T] [--shingle-size K] [--num-perm P]
                                     [--lsh-bands B]

Runs the Dedup transform (offline DirectRunner) over tests/data/neardup/docs.jsonl (or a freshly generated
variant set) and scores its clusters against the labels in pairs.csv: two documents are the same story iff both
repeat one original. Then, from the signatures and the exact shingle sets, how many pairs at or above the
threshold the LSH banding turns into candidates, and a threshold sweep of exact-Jaccard clustering.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import json
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "tests" / "data" / "neardup"


def load(seed: int | None) -> tuple[list[dict], dict[tuple[str, str], int]]:
    """Documents and {(a, b): same story} labels, from the stored set or generated with another seed."""
    if seed is None:
        docs = [json.loads(line) for line in (DATA / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
        with open(DATA / "pairs.csv", encoding="utf-8") as f:
            labels = {(r["a"], r["b"]): int(r["same"]) for r in csv.DictReader(f)}
        return docs, labels
    sys.path.insert(0, str(ROOT / "bench"))
    import make_neardup

    docs = make_neardup.generate(seed)
    return docs, {(p["a"], p["b"]): p["same"] for p in make_neardup.pairs(docs)}


def to_articles(docs: list[dict]):
    from schemas.elements import Article

    return [
        Article(
            input_ref=d["id"],
            source="neardup",
            text=d["text"],
            url=f"https://neardup.example/{d['id']}",
            published_at=dt.datetime.fromisoformat(d["published"].replace("Z", "+00:00")),
        )
        for d in docs
    ]


def run_dedup(articles, cfg) -> dict[str, str]:
    """{article_id: canonical article_id} for every article, from one pipeline run."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from transforms.dedup import Dedup

    with tempfile.TemporaryDirectory() as tmp:
        with beam.Pipeline(options=PipelineOptions(["--runner=pipelines.runners.OfflineDirectRunner"])) as p:
            out = p | beam.Create(articles) | Dedup(cfg)
            kept = out["articles"] | "Kept" >> beam.Map(lambda a: json.dumps([a.article_id, a.cluster_id]))
            dups = out["duplicates"] | "Dups" >> beam.Map(lambda d: json.dumps([d.article_id, d.duplicate_of]))
            (kept, dups) | beam.Flatten() | beam.io.WriteToText(f"{tmp}/clusters", shard_name_template="")
        lines = pathlib.Path(f"{tmp}/clusters").read_text(encoding="utf-8").splitlines()
    return dict(json.loads(line) for line in lines)


def prf(labels: dict[tuple[str, str], int], predicted) -> tuple[float, float, float, int, int]:
    """Pairwise precision, recall, F1 (and false merges, missed pairs) of a same-cluster predicate."""
    tp = fp = fn = 0
    for (a, b), same in labels.items():
        hit = predicted(a, b)
        tp += same and hit
        fp += hit and not same
        fn += same and not hit
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0), fp, fn


def main() -> None:
    from transforms.dedup import (
        DedupConfig,
        band_keys,
        connected_components,
        estimate_similarity,
        exact_jaccard,
        normalize_text,
        shingle_set,
        signatures,
    )

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generate-seed", type=int, default=None, help="generate a fresh variant set with this seed")
    defaults = DedupConfig()
    ap.add_argument("--threshold", type=float, default=defaults.threshold)
    ap.add_argument("--shingle-size", type=int, default=defaults.shingle_size)
    ap.add_argument("--num-perm", type=int, default=defaults.num_perm)
    ap.add_argument("--lsh-bands", type=int, default=defaults.bands)
    args = ap.parse_args()
    cfg = DedupConfig(
        threshold=args.threshold, shingle_size=args.shingle_size, num_perm=args.num_perm, bands=args.lsh_bands
    )
    docs, labels = load(args.generate_seed)
    articles = to_articles(docs)
    id_of = {d["id"]: a.article_id for d, a in zip(docs, articles, strict=True)}
    print(
        f"{len(docs)} documents, {len(labels)} labelled pairs ({sum(labels.values())} same-story); "
        f"threshold={cfg.threshold} shingle={cfg.shingle_size} num_perm={cfg.num_perm} bands={cfg.bands}x{cfg.rows}"
    )

    canonical = run_dedup(articles, cfg)
    assert len(canonical) == len(docs), "every article must end as an article or a duplicate"
    p, r, f1, fp, fn = prf(labels, lambda a, b: canonical[id_of[a]] == canonical[id_of[b]])
    print(f"pipeline clusters: precision={p:.3f} recall={r:.3f} F1={f1:.3f} (false merges {fp}, missed {fn})")
    originals = {d["story"]: d["id"] for d in docs if d["kind"] in ("original", "followup")}
    copies = [d for d in docs if d["kind"] not in ("original", "followup")]
    merged = sum(canonical[id_of[d["id"]]] == id_of[originals[d["story"]]] for d in copies)
    print(f"copies whose canonical is their original: {merged}/{len(copies)}")

    # What the LSH banding finds, against exact (lead-weighted) Jaccard over all pairs.
    texts = [normalize_text(d["text"]) for d in docs]
    sigs = signatures(texts, cfg)
    keys = band_keys(sigs, cfg.bands)
    sets = [shingle_set(d["text"], cfg) for d in docs]
    exact, cand, verified = {}, set(), set()
    for i, j in itertools.combinations(range(len(docs)), 2):
        exact[i, j] = exact_jaccard(sets[i], sets[j])
        if (keys[i] == keys[j]).any():
            cand.add((i, j))
            if estimate_similarity(sigs[i], sigs[j]) >= cfg.threshold:
                verified.add((i, j))
    above = [pair for pair, j in exact.items() if j >= cfg.threshold]
    found = sum(pair in cand for pair in above)
    kept = sum(pair in verified for pair in above)
    print(
        f"LSH recall vs exact Jaccard >= {cfg.threshold}: {found}/{len(above)} pairs are candidates "
        f"({found / max(len(above), 1):.3f}); {kept}/{len(above)} also pass the estimated-similarity check; "
        f"{len(cand)} candidates of {len(exact)} pairs"
    )
    errors = [estimate_similarity(sigs[i], sigs[j]) - exact[i, j] for i, j in exact]
    print(
        f"signature estimate - exact Jaccard over all pairs: mean {sum(errors) / len(errors):+.4f}, "
        f"max |error| {max(map(abs, errors)):.3f}"
    )

    # Threshold sweep with exact Jaccard and union-find: the window of thresholds where clustering is right.
    row = []
    ids = [d["id"] for d in docs]
    for t in (0.25, 0.30, 0.35, 0.38, 0.40, 0.45, 0.50, 0.60, 0.70, 0.80):
        comp = connected_components((ids[i], ids[j]) for (i, j), v in exact.items() if v >= t)
        f = prf(labels, lambda a, b, c=comp: c.get(a, a) == c.get(b, b))[2]
        row.append(f"{t:.2f}:{f:.3f}")
    print("exact-Jaccard clustering F1 by threshold: " + " ".join(row))
    same = [v for (i, j), v in exact.items() if labels.get((ids[i], ids[j]), labels.get((ids[j], ids[i])))]
    diff = [v for (i, j), v in exact.items() if not labels.get((ids[i], ids[j]), labels.get((ids[j], ids[i])))]
    first = {(d["id"]) for d in docs if d["kind"] in ("original", "followup")}
    direct = [
        v for (i, j), v in exact.items() if labels.get((ids[i], ids[j]), 0) and (ids[i] in first or ids[j] in first)
    ]
    print(
        f"exact Jaccard: copy-vs-original min {min(direct):.3f}; same-story pairs min {min(same):.3f}; "
        f"different stories max {max(diff):.3f}"
    )


if __name__ == "__main__":
    main()
