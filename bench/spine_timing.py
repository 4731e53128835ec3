"""Wall time of the CLI on the seeds and on a generated N-article corpus (default 1,000)."""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _timed(args: list[str]) -> float:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pipelines.ingest", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"run failed: {proc.stderr.strip()}")
    return time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("extra", nargs="*", help="extra pipeline flags, e.g. --direct_num_workers=2")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = pathlib.Path(tmp) / "corpus"
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_corpus.py"), str(args.n), str(corpus)], check=True)
        seeds = _timed(["--input", "seeds/*.txt", "--output", f"{tmp}/o1", *args.extra])
        big = _timed(["--input", f"{corpus}/**/*", "--output", f"{tmp}/o2", *args.extra])
    print(f"cores={os.cpu_count()} seeds (5 files): {seeds:.1f}s wall")
    print(f"cores={os.cpu_count()} corpus ({args.n} articles): {big:.1f}s wall, {args.n / big:.1f} articles/s")


if __name__ == "__main__":
    main()
