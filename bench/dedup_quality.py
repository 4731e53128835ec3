"""Dedup quality on the labelled near-duplicate set: pairwise precision/recall/F1 and the LSH's recall.

Usage: python bench/dedup_quality.py [--generate-seed N] [--threshold T] [--shingle-size K] [--num-perm P]
                                     [--lsh-bands B]
       python bench/dedup_quality.py --threads dev|test|blind     (held-out story-thread sets, bench/make_threads.py)
       python bench/dedup_quality.py --threads dev|test --seeds N (and N-1 more sets from the same articles)

Runs the Dedup transform (offline DirectRunner) over tests/data/neardup/docs.jsonl (or a freshly generated
variant set) and scores its clusters against the labels in pairs.csv: two documents are the same story iff both
repeat one original. Then, from the signatures and the exact shingle sets, how many pairs at or above the
threshold the LSH banding turns into candidates, and a threshold sweep of exact-Jaccard clustering.

`--threads blind` scores threads_blind.jsonl.gz (real news from package test fixtures): it is blind, never used
for tuning; run it once on the final code and report what it prints.
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
sys.path.insert(0, str(ROOT / "bench"))  # make_neardup, make_threads
DATA = ROOT / "tests" / "data" / "neardup"


def load(seed: int | None) -> tuple[list[dict], dict[tuple[str, str], int]]:
    """Documents and {(a, b): same story} labels, from the stored set or generated with another seed."""
    if seed is None:
        docs = [json.loads(line) for line in (DATA / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
        with open(DATA / "pairs.csv", encoding="utf-8") as f:
            labels = {(r["a"], r["b"]): int(r["same"]) for r in csv.DictReader(f)}
        return docs, labels
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


def run_dedup(articles, cfg, stories: bool = False, write_run=None) -> dict:
    """{article_id: canonical article_id} for every article, from one pipeline run; with `stories`, {article_id:
    (canonical, story id)} (the story is the canonical where the code has no story ids). `write_run`: a
    WriteConfig under which the run's signatures are stored for the next day's run."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from transforms.dedup import Dedup

    def kept_row(a):
        return json.dumps([a.article_id, [a.cluster_id, getattr(a, "story_id", None) or a.cluster_id]])

    def dup_row(d):
        return json.dumps([d.article_id, [d.duplicate_of, getattr(d, "story_id", None) or d.duplicate_of]])

    with tempfile.TemporaryDirectory() as tmp:
        with beam.Pipeline(options=PipelineOptions(["--runner=pipelines.runners.OfflineDirectRunner"])) as p:
            out = p | beam.Create(articles) | Dedup(cfg)
            kept = out["articles"] | "Kept" >> beam.Map(kept_row)
            dups = out["duplicates"] | "Dups" >> beam.Map(dup_row)
            (kept, dups) | beam.Flatten() | beam.io.WriteToText(f"{tmp}/clusters", shard_name_template="")
            if write_run is not None:
                from transforms.write import WriteDatasets

                {"signatures": out["signatures"]} | "Store" >> WriteDatasets(write_run)
        lines = pathlib.Path(f"{tmp}/clusters").read_text(encoding="utf-8").splitlines()
    rows = dict(json.loads(line) for line in lines)
    return {k: tuple(v) for k, v in rows.items()} if stories else {k: v[0] for k, v in rows.items()}


def load_threads(split: str) -> list[dict]:
    import gzip

    path = ROOT / "bench" / "heldout" / f"threads_{split}.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def score_threads(docs: list[dict], pred: dict[str, tuple[str, str]], id_of: dict[str, str]) -> dict:
    """The issue's targets on the thread set, from {article_id: (cluster, story)}."""
    by_id = {d["id"]: d for d in docs}
    cluster = {d["id"]: pred[id_of[d["id"]]][0] for d in docs}
    story = {d["id"]: pred[id_of[d["id"]]][1] for d in docs}
    heads = {d["cluster"]: d["id"] for d in docs if d["kind"] in ("original", "followup")}
    copies = [d for d in docs if d["kind"] in ("copy", "followup_copy")]
    merged = sum(cluster[d["id"]] == cluster[heads[d["cluster"]]] for d in copies)
    follows = [d for d in docs if d["kind"] == "followup"]
    follow_merged = sum(cluster[d["id"]] == cluster[d["continues"]] for d in follows)
    follow_linked = sum(story[d["id"]] == story[d["continues"]] for d in follows)
    members: dict[str, int] = {}
    for d in docs:
        members[cluster[d["id"]]] = members.get(cluster[d["id"]], 0) + 1
    story_members: dict[str, int] = {}
    for d in docs:
        story_members[story[d["id"]]] = story_members.get(story[d["id"]], 0) + 1
    negatives = [d for d in docs if d["kind"].startswith("negative")]
    neg_merged = sum(members[cluster[d["id"]]] > 1 for d in negatives)
    neg_linked = sum(story_members[story[d["id"]]] > 1 for d in negatives)
    standalone = [d for d in docs if d["kind"] == "standalone"]
    alone_merged = sum(members[cluster[d["id"]]] > 1 for d in standalone)
    labels = {}
    for a, b in itertools.combinations(sorted(by_id), 2):
        if by_id[a]["story"] == by_id[b]["story"] or cluster[a] == cluster[b]:
            labels[a, b] = int(by_id[a]["cluster"] == by_id[b]["cluster"])
    p, r, f1, fp, fn = prf(labels, lambda a, b: cluster[a] == cluster[b])
    return dict(
        copies=len(copies),
        copies_merged=merged,
        copy_recall=merged / max(len(copies), 1),
        followups=len(follows),
        followups_merged=follow_merged,
        followups_linked=follow_linked,
        negatives=len(negatives),
        negatives_merged=neg_merged,
        negatives_linked=neg_linked,
        standalone=len(standalone),
        standalone_merged=alone_merged,
        precision=p,
        recall=r,
        f1=f1,
    )


def threads_main(split: str, cfg, seeds: int = 1) -> None:
    """Within one run, then across two days (day 1 stored, day 2 matched against it): the issue's targets. With
    `seeds` > 1, also sets built by make_threads from the same articles with the next seeds (other copies,
    follow-ups and pairings; each set run on its own), and the targets over all of them: one set of ~50
    follow-ups measures a linking rate only to within about +-8 points."""
    totals: dict[str, dict] = {}
    for n in range(seeds):
        docs = load_threads(split) if n == 0 else _generate_threads(split, THREADS_SEED + n)
        label = f"threads_{split}" + (f" seed {THREADS_SEED + n}" if seeds > 1 else "")
        for name, s in _score_runs(docs, cfg, label).items():
            acc = totals.setdefault(name, dict.fromkeys(_COUNTS, 0))
            for key in _COUNTS:
                acc[key] += s[key]
    if seeds > 1:
        print(f"threads_{split}, all {seeds} seeds ({THREADS_SEED}-{THREADS_SEED + seeds - 1}):")
        for name, acc in totals.items():
            _print_totals(name, acc)


THREADS_SEED = 16  # make_threads' default: the stored sets
# Counts that add up over sets (the rates are recomputed from them).
_COUNTS = ("copies", "copies_merged", "followups", "followups_merged", "followups_linked", "negatives")
_COUNTS += ("negatives_merged", "negatives_linked", "standalone", "standalone_merged")


def _generate_threads(split: str, seed: int) -> list[dict]:
    import make_threads

    return make_threads.build(make_threads.read_docs(make_threads.HELDOUT / make_threads.SOURCES[split]), seed, split)


def _score_runs(docs: list[dict], cfg, label: str) -> dict[str, dict]:
    """{"one run": scores, "two days": scores} of one thread set, printed."""
    import dataclasses

    from transforms.write import WriteConfig

    articles = to_articles(docs)
    id_of = {d["id"]: a.article_id for d, a in zip(docs, articles, strict=True)}
    print(f"{label}: {len(docs)} documents; " + ", ".join(f"{k}={v}" for k, v in _kinds(docs).items()))
    out = {"one run": score_threads(docs, run_dedup(articles, cfg, stories=True), id_of)}
    _print_scores("one run", out["one run"])
    day1 = dt.date(2026, 5, 4)
    with tempfile.TemporaryDirectory() as tmp:
        first = [a for d, a in zip(docs, articles, strict=True) if d["day"] == 1]
        second = [a for d, a in zip(docs, articles, strict=True) if d["day"] == 2]
        now = dt.datetime(2026, 5, 6, tzinfo=dt.timezone.utc)
        cfg1 = dataclasses.replace(cfg, output=tmp, run_date=day1)
        pred = run_dedup(first, cfg1, stories=True, write_run=WriteConfig(tmp, day1, now))
        cfg2 = dataclasses.replace(cfg, output=tmp, run_date=day1 + dt.timedelta(days=1))
        pred.update(run_dedup(second, cfg2, stories=True))
    out["two days"] = score_threads(docs, pred, id_of)
    _print_scores("two days", out["two days"])
    return out


def _ok(cond: bool) -> str:
    return "ok" if cond else "MISSED"


def _print_totals(name: str, acc: dict) -> None:
    s = dict(acc, copy_recall=acc["copies_merged"] / max(acc["copies"], 1))
    print(
        f"  {name}: {_targets(s, interval=True)}; standalone merged {s['standalone_merged']}/{s['standalone']}; "
        f"hard negatives linked {s['negatives_linked']}"
    )


def _targets(s: dict, interval: bool = False) -> str:
    """The issue's targets of one score dict, each with ok or MISSED (with `interval`, the linking rate's 95%
    interval too)."""
    linked, n = s["followups_linked"], s["followups"]
    rate = ""
    if interval:
        lo, hi = _wilson(linked, n)
        rate = f" ({linked / max(n, 1):.1%}, 95% interval {lo:.1%}-{hi:.1%})"
    return (
        f"copy recall {s['copy_recall']:.3f} of {s['copies']} [{_ok(s['copy_recall'] >= 0.99)} >= 0.99]; "
        f"follow-ups merged {s['followups_merged']}/{n} [{_ok(s['followups_merged'] == 0)} = 0]; "
        f"hard negatives merged {s['negatives_merged']}/{s['negatives']} [{_ok(s['negatives_merged'] == 0)} = 0]; "
        f"follow-ups linked {linked}/{n}{rate} [{_ok(linked >= 0.9 * n)} >= 90%]"
    )


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n."""
    if not n:
        return 0.0, 1.0
    p = k / n
    centre, half = p + z * z / (2 * n), z * ((p * (1 - p) + z * z / (4 * n)) / n) ** 0.5
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def _kinds(docs: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in docs:
        out[d["kind"]] = out.get(d["kind"], 0) + 1
    return dict(sorted(out.items()))


def _print_scores(name: str, s: dict) -> None:
    print(f"  {name}: {_targets(s)}")
    print(
        f"    pairwise precision {s['precision']:.3f} recall {s['recall']:.3f} F1 {s['f1']:.3f}; standalone merged "
        f"{s['standalone_merged']}/{s['standalone']}; hard negatives linked to a story {s['negatives_linked']}"
    )


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
    ap.add_argument(
        "--threads", choices=("dev", "test", "blind"), help="score a held-out story-thread set instead (blind: once)"
    )
    ap.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="with --threads dev|test: score this many sets, the stored one and the rest built from the same "
        "articles with the next seeds, then the targets over all of them (the blind set is scored as stored)",
    )
    args = ap.parse_args()
    cfg = DedupConfig(
        threshold=args.threshold, shingle_size=args.shingle_size, num_perm=args.num_perm, bands=args.lsh_bands
    )
    if args.threads:
        if args.seeds < 1 or (args.threads == "blind" and args.seeds != 1):
            ap.error("--seeds must be at least 1, and 1 with --threads blind")
        threads_main(args.threads, cfg, args.seeds)
        return
    docs, labels = load(args.generate_seed)
    articles = to_articles(docs)
    id_of = {d["id"]: a.article_id for d, a in zip(docs, articles, strict=True)}
    print(
        f"{len(docs)} documents, {len(labels)} labelled pairs ({sum(labels.values())} same-story); "
        f"threshold={cfg.threshold} shingle={cfg.shingle_size} num_perm={cfg.num_perm} bands={cfg.bands}x{cfg.rows}"
    )

    threads = run_dedup(articles, cfg, stories=True)
    canonical = {k: v[0] for k, v in threads.items()}
    assert len(canonical) == len(docs), "every article must end as an article or a duplicate"
    p, r, f1, fp, fn = prf(labels, lambda a, b: canonical[id_of[a]] == canonical[id_of[b]])
    print(f"pipeline clusters: precision={p:.3f} recall={r:.3f} F1={f1:.3f} (false merges {fp}, missed {fn})")
    originals = {d["story"]: d["id"] for d in docs if d["kind"] in ("original", "followup")}
    copies = [d for d in docs if d["kind"] not in ("original", "followup")]
    merged = sum(canonical[id_of[d["id"]]] == id_of[originals[d["story"]]] for d in copies)
    same = sum(canonical[id_of[d["id"]]] == canonical[id_of[originals[d["story"]]]] for d in copies)
    follows = [d for d in docs if d["kind"] == "followup"]
    # followupNNN_x borrows from seedNNN
    follow_merged = sum(canonical[id_of[d["id"]]] == canonical[id_of[f"seed{d['id'][8:11]}"]] for d in follows)
    story = {k: v[1] for k, v in threads.items()}
    follow_linked = sum(story[id_of[d["id"]]] == story[id_of[f"seed{d['id'][8:11]}"]] for d in follows)
    print(
        f"copies whose canonical is their original: {merged}/{len(copies)}; in their original's cluster: "
        f"{same}/{len(copies)} (recall {same / len(copies):.3f}, target >= 0.99); follow-ups merged into the story "
        f"they borrow from: {follow_merged}/{len(follows)} (target 0); linked to its story: "
        f"{follow_linked}/{len(follows)} (target >= 90%)"
    )

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
