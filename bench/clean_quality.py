"""Line-level precision/recall of boilerplate removal on the labelled set, metadata accuracy, ms per article."""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transforms.clean import clean_text, load_rules  # noqa: E402
from transforms.clean.labelled import load_set, score  # noqa: E402

DATA = ROOT / "tests" / "data" / "clean"


def timing(texts: list[str], repeat: int) -> tuple[float, float, float, float]:
    """(mean wall, best wall, mean CPU, best CPU) milliseconds per article over `repeat` passes over `texts`.

    CPU time is what the cleaner costs; wall time also counts waiting for the CPU on a busy machine."""
    rules = load_rules()
    for text in texts:  # warm-up: the matcher compiles its per-first-character regexes on first use
        clean_text(text, rules)
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        for text in texts:
            clean_text(text, rules)
        wall.append((time.perf_counter() - start) * 1000 / len(texts))
        cpu.append((time.process_time() - start_cpu) * 1000 / len(texts))
    return statistics.mean(wall), min(wall), statistics.mean(cpu), min(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=20, help="timing passes through the labelled set (default 20)")
    ap.add_argument("--data", type=pathlib.Path, default=DATA, help="folder of labelled *.txt articles")
    ap.add_argument("--quiet", action="store_true", help="do not list the misclassified lines")
    args = ap.parse_args()
    docs = load_set(args.data)
    s = score(docs)
    lines = s.tp + s.fp + s.fn + s.tn
    print(f"articles={len(docs)} lines={lines} boilerplate={s.tp + s.fn}")
    print(f"removal precision={s.precision:.4f} recall={s.recall:.4f} (tp={s.tp} fp={s.fp} fn={s.fn})")
    print(f"prefixes/inline spans removed correctly: {s.spans_ok}/{s.spans}")
    for field, (ok, total) in s.checks.items():
        print(f"{field}: {ok}/{total}")
    seeds = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
    for name, texts in (("labelled set", [d.text for d in docs]), ("seeds", seeds)):
        if not texts:
            continue
        mean_ms, best_ms, cpu_ms, best_cpu = timing(texts, args.repeat)
        print(
            f"speed on {name} (average {statistics.mean(map(len, texts)):.0f} chars): {cpu_ms:.3f} ms CPU per "
            f"article (best pass {best_cpu:.3f}); wall {mean_ms:.3f} ms (best pass {best_ms:.3f})"
        )
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    if s.errors and not args.quiet:
        print("\n".join(["", "errors:", *s.errors]))


if __name__ == "__main__":
    main()
