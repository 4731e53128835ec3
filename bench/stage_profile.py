"""Where a CLI run's time goes, stage by stage: one in-process run under cProfile, attributed to the stages.

Method: the run is `pipelines.ingest.run()` in this process (1 worker, the FnApiRunner) under cProfile. An entry
point is a function of this repository called directly by code outside it (Beam calling a DoFn's process, setup,
a FlatMap callable, ...); its cumulative time is charged to its package (`transforms/<stage>`, `pipelines/...`).
What the runner spends around them (encoding, shuffles, bundle set-up) is `beam (runner)`; what happens before
and after the pipeline (imports, construction, the report) is listed apart. cProfile slows Python-heavy code more
than spaCy's compiled code, so shares are indicative; the unprofiled wall time of the same run is printed first.

Usage: python bench/stage_profile.py --input 'DIR/*.txt' [--top 15] [-- extra CLI flags]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import io
import pathlib
import pstats
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _ours(path: str) -> bool:
    p = pathlib.Path(path)
    return p.is_absolute() and ROOT in p.parents and ".venv" not in p.parts and p.parts[-2:] != ("bench",)


def _package(path: str) -> str:
    rel = pathlib.Path(path).relative_to(ROOT)
    parts = rel.parts[:-1] or (rel.stem,)
    if parts[0] == "transforms" and len(parts) == 1:
        return f"transforms/{rel.stem}"
    return "/".join(parts[:2])


# Who calls a stage's code while the pipeline runs: Beam's worker (a DoFn's methods), its callable wrappers
# (FlatMap, Map), Shared (model loads), and the portability wrapper, which is charged to the stage it wraps.
_RUNTIME_CALLERS = ("apache_beam/runners/worker/", "apache_beam/transforms/core.py", "apache_beam/utils/shared.py")
_WRAPPER = "transforms/portable.py"


def _runtime_caller(path: str) -> bool:
    return any(p in path for p in _RUNTIME_CALLERS) or path.endswith(_WRAPPER)


def attribute(stats: pstats.Stats) -> tuple[dict[str, float], float, float]:
    """(seconds per package of this repository's code run by the pipeline, runner seconds, total seconds)."""
    per: dict[str, float] = collections.defaultdict(float)
    run_pipeline = total = 0.0
    for (path, _line, name), (_cc, _nc, _tt, _cum, callers) in stats.stats.items():
        if name == "run_pipeline" and path.endswith("fn_runner.py"):
            run_pipeline = max(run_pipeline, _cum)
        if name == "run" and path.endswith("pipelines/ingest.py"):
            total = _cum
        if not _ours(path) or path.endswith(_WRAPPER):
            continue
        # Cumulative time through the runtime callers only: our own callers already carry it in theirs.
        per[_package(path)] += sum(c[3] for (cpath, _l, _n), c in callers.items() if _runtime_caller(cpath))
    per = {k: v for k, v in per.items() if v > 0}
    return per, run_pipeline - sum(per.values()), total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--profiled-only", action="store_true", help="skip the unprofiled run")
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        cli = ["--input", args.input, "--run-date", "2026-11-23", "--no-lock", *args.extra]
        if not args.profiled_only:
            start = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "pipelines.ingest", *cli, "--output", f"{tmp}/plain"],
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            print(f"unprofiled CLI run: {time.monotonic() - start:.1f}s wall (fresh process, start-up included)")
        from pipelines import ingest

        profile = cProfile.Profile()
        with contextlib.redirect_stdout(io.StringIO()):
            profile.runcall(ingest.run, [*cli, "--output", f"{tmp}/profiled"])
    stats = pstats.Stats(profile)
    per, runner, total = attribute(stats)
    print(f"profiled in-process run: {total:.1f}s (imports of this process not counted)")
    print(f"  {'stage':<28}{'seconds':>9}{'share':>8}")
    rows = sorted(per.items(), key=lambda kv: -kv[1]) + [("beam (runner)", runner)]
    for name, sec in rows:
        print(f"  {name:<28}{sec:>9.2f}{sec / total:>8.0%}")
    rest = total - sum(per.values()) - runner
    print(f"  {'outside the pipeline':<28}{rest:>9.2f}{rest / total:>8.0%}  (options, construction, report)")
    print(f"top {args.top} functions by own time:")
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
