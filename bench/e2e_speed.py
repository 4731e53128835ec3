"""End-to-end speed against the NER floor: the CLI with 1 and 2 workers vs spaCy NER alone, on short and long news.

For each corpus (short: bench/make_short_corpus.py, 100-300-word template briefs; long: bench/make_corpus.py,
~600 words; real: bench/heldout/news_short.jsonl.gz, 234 real news articles of 100-300 words, mostly ABC 2001-02,
each a .txt file) it prints, as medians of --repeat runs:
- NER alone: the stage's model (only the components NER needs, loaded before the clock starts) over the texts
  that came out as articles, through nlp.pipe in the stage's batch size;
- the pipeline through the CLI (`news-ingest`, a fresh process, start-up included) with 1 worker and with 2
  (`--direct_num_workers=2 --direct_running_mode=multi_processing`);
- the ratios NER-alone / pipeline (targets: >= 0.9 with 1 worker, >= 1.6 with 2), and peak RSS of the process tree;
- start-up: the same CLI run on one article of the corpus (imports, pipeline construction, worker processes, model
  loads, the report), and the steady-state ratios NER-alone / (pipeline - start-up), what a day of many articles
  approaches.
With --memory it also runs N and 4N short articles on 1 worker and prints peak RSS per 1,000 articles.
Run it on a quiet machine: it measures wall time.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from proctree import tree_rss_bytes  # noqa: E402 - the bench folder is not a package

TWO_WORKERS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def run_cli(inputs: str, out: pathlib.Path, extra: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB of the process tree) of one CLI run."""
    import psutil

    cmd = [sys.executable, "-m", "pipelines.ingest", "--input", inputs, "--output", str(out)]
    cmd += ["--run-date", "2026-11-23", "--no-lock", *extra]
    start = time.monotonic()
    proc = psutil.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_rss_bytes(proc.pid) / 2**20)
        time.sleep(0.2)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"run failed ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
    return wall, peak


def article_texts(out: pathlib.Path) -> list[str]:
    import pyarrow.dataset as ds

    table = ds.dataset(str(out / "articles"), format="parquet", partitioning="hive").to_table(columns=["text"])
    return table.column("text").to_pylist()


def ner_alone(texts: list[str]) -> float:
    """Seconds of nlp.pipe over the texts with the stage's model and batch size (model load not counted)."""
    from transforms.entities import EntityConfig, load_nlp

    cfg = EntityConfig()
    nlp = load_nlp(cfg.model)
    start = time.monotonic()
    for _ in nlp.pipe(texts, batch_size=cfg.batch_size):
        pass
    return time.monotonic() - start


def build(kind: str, n: int, where: pathlib.Path) -> str:
    """The corpus's input glob."""
    if kind == "real":
        import gzip
        import json

        where.mkdir(parents=True, exist_ok=True)
        with gzip.open(ROOT / "bench" / "heldout" / "news_short.jsonl.gz", "rt", encoding="utf-8") as f:
            docs = [json.loads(line) for line in f][:n]
        for i, doc in enumerate(docs):
            (where / f"real{i:06d}.txt").write_text(doc["text"] + "\n", encoding="utf-8")
        return str(where / "*.txt")
    if kind == "short":
        from make_short_corpus import write_corpus

        write_corpus(n, where)
        return str(where / "*.txt")
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_corpus.py"), str(n), str(where)], check=True)
    return str(where / "**")


def one_article(inputs: str, where: pathlib.Path) -> str:
    """A glob of one article of the corpus: the start-up run's input."""
    import glob
    import shutil

    first = sorted(f for f in glob.glob(inputs, recursive=True) if os.path.isfile(f))[0]
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(first, where / pathlib.Path(first).name)
    return str(where / pathlib.Path(first).name)


def measure(kind: str, n: int, repeat: int, tmp: pathlib.Path) -> dict:
    inputs = build(kind, n, tmp / f"{kind}-in")
    single = one_article(inputs, tmp / f"{kind}-one")
    one, two, peaks, start1, start2 = [], [], [], [], []
    for i in range(repeat):
        wall, peak = run_cli(inputs, tmp / f"{kind}-1w-{i}", [])
        one.append(wall)
        peaks.append(peak)
        wall, peak = run_cli(inputs, tmp / f"{kind}-2w-{i}", TWO_WORKERS)
        two.append(wall)
        peaks.append(peak)
        start1.append(run_cli(single, tmp / f"{kind}-s1-{i}", [])[0])
        start2.append(run_cli(single, tmp / f"{kind}-s2-{i}", TWO_WORKERS)[0])
    texts = article_texts(tmp / f"{kind}-1w-0")
    ner = [ner_alone(texts) for _ in range(repeat)]
    words = sum(len(t.split()) for t in texts)
    return {
        "kind": kind,
        "articles": len(texts),
        "words": words,
        "ner": statistics.median(ner),
        "one": statistics.median(one),
        "two": statistics.median(two),
        "start1": statistics.median(start1),
        "start2": statistics.median(start2),
        "peak": max(peaks),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--corpora", default="short,real,long")
    ap.add_argument("--memory", action="store_true", help="also peak RSS at N and 4N short articles")
    args = ap.parse_args()
    print(f"cores={os.cpu_count()} n={args.n} repeat={args.repeat} (medians)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for kind in args.corpora.split(","):
            r = measure(kind, args.n, args.repeat, tmp)
            ner, one, two, s1, s2 = r["ner"], r["one"], r["two"], r["start1"], r["start2"]
            print(
                f"{kind}: {r['articles']} articles, {r['words'] / max(1, r['articles']):.0f} words each | "
                f"NER alone {ner:.1f}s ({r['words'] / ner:,.0f} words/s) | pipeline 1 worker {one:.1f}s "
                f"(ratio {ner / one:.2f}, target >= 0.9) | 2 workers {two:.1f}s (ratio {ner / two:.2f}, target >= 1.6) "
                f"| peak RSS {r['peak']:.0f} MB"
            )
            print(
                f"  start-up (one article): 1 worker {s1:.1f}s, 2 workers {s2:.1f}s | steady state: 1 worker "
                f"{(one - s1) * 1000 / max(1, r['articles']):.1f} ms/article (ratio {ner / max(one - s1, 1e-9):.2f}), "
                f"2 workers {(two - s2) * 1000 / max(1, r['articles']):.1f} ms/article "
                f"(ratio {ner / max(two - s2, 1e-9):.2f}); NER alone {ner * 1000 / max(1, r['articles']):.1f} "
                "ms/article"
            )
        if args.memory:
            for n in (args.n, 4 * args.n):
                inputs = build("short", n, tmp / f"mem-{n}")
                _, peak = run_cli(inputs, tmp / f"mem-out-{n}", [])
                print(
                    f"memory: {n} short articles, 1 worker: peak RSS {peak:.0f} MB = {peak / n * 1000:.0f} MB per 1,000"
                )


if __name__ == "__main__":
    main()
