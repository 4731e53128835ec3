"""Wall time of the same news-ingest run on each local runner: direct, multi-process, portable job service, Dask.

    .venv/bin/python bench/runners.py                    # the seeds, each runner once
    .venv/bin/python bench/runners.py -n 3 --runners direct,dask --input 'data/*.jsonl'

Each run is the CLI in a fresh process (`python -m pipelines.ingest`), so "wall" includes interpreter and Beam
start-up; "pipeline" is the time the CLI reports for itself. The job service and the Dask cluster are started
before the clock starts, as a user would have them running already.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNNERS = ("direct", "multiprocess", "portable", "dask")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@contextlib.contextmanager
def _job_service():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", "--port", str(port)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the job service did not start") from None
                time.sleep(0.2)
        yield ["--runner=PortableRunner", f"--job_endpoint=localhost:{port}", "--environment_type=LOOPBACK"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def _dask_cluster(workers: int):
    import distributed

    # The scheduler (in this process) unpickles the task graph and the workers run it: both must import the
    # same code as the submitting CLI, or Dask fails with "Error during deserialization of the task graph".
    os.environ["PYTHONPATH"] = _env()["PYTHONPATH"]
    sys.path.insert(0, str(ROOT))
    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    try:
        yield [
            "--runner=apache_beam.runners.dask.dask_runner.DaskRunner",
            f"--dask_client_address={cluster.scheduler_address}",
        ]
    finally:
        cluster.close()


@contextlib.contextmanager
def _runner_flags(name: str, workers: int):
    if name == "direct":
        yield []
    elif name == "multiprocess":
        yield [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    elif name == "portable":
        with _job_service() as flags:
            yield flags
    elif name == "dask":
        with _dask_cluster(workers) as flags:
            yield flags
    else:
        raise SystemExit(f"unknown runner {name!r}; choose from {', '.join(RUNNERS)}")


def _one_run(inputs: list[str], out: pathlib.Path, flags: list[str]) -> tuple[float, float | None, str]:
    args = [a for pattern in inputs for a in ("--input", pattern)]
    cmd = [sys.executable, "-m", "pipelines.ingest", *args, "--output", str(out), "--run-date", "2026-11-23", *flags]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    reported = re.search(r" in ([0-9.]+)s", proc.stdout)
    return wall, float(reported.group(1)) if reported else None, proc.stdout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--repeat", type=int, default=1, help="runs per runner (the median is shown)")
    parser.add_argument("--runners", default=",".join(RUNNERS), help=f"comma-separated subset of {RUNNERS}")
    parser.add_argument("--input", action="append", help="input glob (repeatable; default: the seeds)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for multiprocess and dask")
    opts = parser.parse_args(argv)
    inputs = opts.input or [str(ROOT / "seeds" / "*.txt")]
    names = [n.strip() for n in opts.runners.split(",") if n.strip()]
    print(f"input {' '.join(inputs)}; {opts.repeat} run(s) per runner; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'runner':<14}{'wall s (median)':>16}{'pipeline s':>12}{'all walls':>28}")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-runners-"))
    try:
        for name in names:
            walls, reported = [], []
            try:
                with _runner_flags(name, opts.workers) as flags:
                    for i in range(opts.repeat):
                        out = tmp / f"{name}-{i}"
                        wall, rep, _ = _one_run(inputs, out, flags)
                        walls.append(wall)
                        if rep is not None:
                            reported.append(rep)
                        shutil.rmtree(out, ignore_errors=True)
            except Exception as e:  # noqa: BLE001 - report and go on with the next runner
                print(f"{name:<14}{'failed':>16}  {type(e).__name__}: {e}")
                continue
            rep = f"{statistics.median(reported):.1f}" if reported else "-"
            print(f"{name:<14}{statistics.median(walls):>16.1f}{rep:>12}{' '.join(f'{w:.1f}' for w in walls):>28}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
