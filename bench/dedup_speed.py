"""Dedup speed: N synthetic ~600-word articles (30% near-duplicates) through the dedup stage vs datasketch.

Usage: python bench/dedup_speed.py 10000 100000 [--baseline-max N] [--workers W]

Each N runs in a fresh process (so peak memory is per run): the Dedup transform alone on the offline
DirectRunner, then a generation-only pipeline (to separate the cost of making the articles), then the
single-process baseline: datasketch MinHash + MinHashLSH, inserting and querying every document.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import re
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUNNER = "pipelines.runners.OfflineDirectRunner"
WORDS, PARAGRAPHS, DUP_SHARE = 600, 6, 0.3
_VOCAB_SIZE = 30_000


def _vocab() -> tuple[np.ndarray, np.ndarray]:
    """Random words and a table that turns uniform 20-bit draws into Zipf-distributed word ids, as in real text."""
    rng = np.random.default_rng(7)
    letters = np.array(list("etaoinshrdlucmfwypvbgkqjxz"))
    lengths = np.clip(rng.poisson(5, _VOCAB_SIZE), 1, 14)
    words = np.array(["".join(rng.choice(letters, n)) for n in lengths], dtype=object)
    cum = np.cumsum(1.0 / np.arange(1, _VOCAB_SIZE + 1) ** 1.05)
    table = np.searchsorted(cum / cum[-1], (np.arange(1 << 20) + 0.5) / (1 << 20))
    return words, table


_V = None


def _articles(start: int, stop: int, seed: int = 1) -> list:
    """Articles start..stop-1 (start a multiple of 10): 70% originals, 30% edited copies of an original of the
    same block of ten (last paragraph cut, ~2% of the words changed, two boilerplate lines added)."""
    from schemas.elements import Article

    global _V
    if _V is None:
        _V = _vocab()
    words, table = _V
    rng = np.random.default_rng([seed, start])
    n = stop - start
    ids = table[rng.integers(0, 1 << 20, (n, WORDS))]
    edits = rng.random((n, WORDS)) < 0.02
    out = []
    per = WORDS // PARAGRAPHS
    for j in range(n):
        i = start + j
        block, slot = divmod(i, 10)
        is_dup = slot < round(10 * DUP_SHARE)
        base = block * 10 + 3 + (i * 7919) % 7 if is_dup else i
        if base - start >= n:
            base, is_dup = i, False
        toks = words[ids[base - start]].tolist()
        toks[4] = f"“{toks[4]}”"  # typography, as in real feeds (and non-ASCII text, the slower normalisation)
        published = dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=base)
        if is_dup:
            for k in np.flatnonzero(edits[j]).tolist():
                toks[k] = toks[k][::-1]
            toks = toks[: WORDS - per]  # syndication cuts the last paragraph
            published += dt.timedelta(hours=2)
        paras = [" ".join(toks[k : k + per]) + "." for k in range(0, len(toks), per)]
        if is_dup:
            paras = ["Advertisement", "By staff writer"] + paras
        body = "\n".join(paras)
        out.append(
            Article(
                input_ref=f"bench:{i}",
                source="bench",
                text=body,
                url=f"https://bench.example/{i}",
                published_at=published,
            )
        )
    return out


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_beam(n: int, workers: int, generate_only: bool = False) -> dict:
    """Wall time of the dedup stage over n generated articles (or of the generation alone)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from transforms.dedup import Dedup, DedupConfig

    argv = [f"--runner={RUNNER}"]
    if workers > 1:
        argv += [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    chunk = 1000
    start, cpu = time.monotonic(), _cpu_s()
    p = beam.Pipeline(options=PipelineOptions(argv))
    arts = (
        p
        | "Chunks" >> beam.Create(list(range(0, n, chunk)))
        | "Generate" >> beam.FlatMap(lambda s: _articles(s, min(s + chunk, n)))
    )
    if generate_only:
        arts | "Count" >> beam.combiners.Count.Globally()
    else:
        out = arts | "Dedup" >> Dedup(DedupConfig())
        for name in ("articles", "duplicates", "signatures", "rejects"):
            out[name] | f"Count{name}" >> beam.combiners.Count.Globally()
    result = p.run()
    result.wait_until_finish()
    elapsed = time.monotonic() - start
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query()["counters"]
        if c.key.metric.name.startswith("dedup.")
    }
    return {"seconds": elapsed, "cpu": _cpu_s() - cpu, "peak_mb": _peak_mb(), "counters": counters}


def _words(text: str) -> list[str]:
    from schemas.elements import normalize_for_hash

    return re.findall(r"[^\W_]+", normalize_for_hash(text))


def run_baseline(n: int) -> dict:
    """The obvious single-process approach: datasketch MinHash per document, MinHashLSH insert + query."""
    from datasketch import MinHash, MinHashLSH

    from transforms.dedup import DedupConfig

    cfg = DedupConfig()
    docs = [a for s in range(0, n, 1000) for a in _articles(s, min(s + 1000, n))]
    start, cpu = time.monotonic(), _cpu_s()
    lsh = MinHashLSH(num_perm=cfg.num_perm, params=(cfg.bands, cfg.rows))
    sigs = []
    for i, a in enumerate(docs):
        w = _words(a.text)
        shingles = {
            " ".join(w[j : j + cfg.shingle_size]).encode() for j in range(max(1, len(w) - cfg.shingle_size + 1))
        }
        m = MinHash(num_perm=cfg.num_perm)
        m.update_batch(list(shingles))
        lsh.insert(i, m)
        sigs.append(m)
    found = 0
    for i, m in enumerate(sigs):
        found += sum(1 for j in lsh.query(m) if j != i and m.jaccard(sigs[j]) >= cfg.threshold)
    return {"seconds": time.monotonic() - start, "cpu": _cpu_s() - cpu, "peak_mb": _peak_mb(), "pairs": found // 2}


def _child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"bench child failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, nargs="+", help="corpus sizes, e.g. 10000 100000")
    ap.add_argument("--baseline-max", type=int, default=None, help="skip the baseline above this N")
    ap.add_argument("--workers", type=int, default=1, help="DirectRunner workers (default 1)")
    ap.add_argument("--child", choices=("beam", "generate", "baseline"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        n = args.n[0]
        if args.child == "baseline":
            print(json.dumps(run_baseline(n)))
        else:
            print(json.dumps(run_beam(n, args.workers, generate_only=args.child == "generate")))
        return
    load = os.getloadavg()[0]
    print(f"cores={os.cpu_count()} load(1m)={load:.1f} workers={args.workers} (the CPU is shared with other jobs)")
    for n in args.n:
        beam_run = _child([str(n), "--child", "beam", "--workers", str(args.workers)])
        gen = _child([str(n), "--child", "generate", "--workers", str(args.workers)])
        c = beam_run["counters"]
        wall = max(beam_run["seconds"] - gen["seconds"], 1e-9)
        cpu = max(beam_run["cpu"] - gen["cpu"], 1e-9)
        print(
            f"N={n}: dedup stage {wall:.1f}s wall = {n / wall:.0f} docs/s ({cpu:.1f} CPU-s = {n / cpu:.0f} docs "
            f"per CPU-s); whole pipeline {beam_run['seconds']:.1f}s incl. generating the articles "
            f"({gen['seconds']:.1f}s alone); peak RSS {beam_run['peak_mb']:.0f} MB"
        )
        print(
            f"    canonical={c.get('dedup.canonical', 0)} near={c.get('dedup.duplicates.near', 0)} "
            f"exact={c.get('dedup.duplicates.exact', 0)} pairs compared={c.get('dedup.pairs_compared', 0)} "
            f"verified={c.get('dedup.pairs_verified', 0)} buckets capped={c.get('dedup.buckets_capped', 0)} "
            f"(generated duplicates: {sum(1 for i in range(n) if i % 10 < round(10 * DUP_SHARE))})"
        )
        if args.baseline_max is None or n <= args.baseline_max:
            base = _child([str(n), "--child", "baseline"])
            print(
                f"    datasketch MinHash+MinHashLSH baseline: {base['seconds']:.1f}s wall = "
                f"{n / base['seconds']:.0f} docs/s ({base['cpu']:.1f} CPU-s), peak RSS {base['peak_mb']:.0f} MB, "
                f"{base['pairs']} pairs >= threshold -> dedup/baseline speed: {base['seconds'] / wall:.2f}x wall, "
                f"{base['cpu'] / cpu:.2f}x CPU"
            )


if __name__ == "__main__":
    main()
