"""One pipeline graph on four runners (in-process, multi-process, portable job service, Dask): identical outputs."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import pyarrow as pa
import pytest
from conftest import ROOT, SEEDS, read_dataset, run_ingest
from feed_server import FeedServer

from schemas.datasets import DATASETS

pytestmark = pytest.mark.slow

RUN_DATE = "2026-11-23"
TIMEOUT_S = 600
RUNNERS = ("direct", "multiprocess", "portable", "dask")
# ingested_at is the wall clock of each run; everything else must match to the byte.
VOLATILE_COLUMNS = ("ingested_at", "fetched_at")  # fetched_at: when the fetch_state row was fetched


@dataclasses.dataclass
class RunResult:
    name: str
    output: pathlib.Path
    returncode: int
    log: str
    seconds: float


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"job service exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _cli(name: str, output: pathlib.Path, args: list[str], extra: list[str]) -> RunResult:
    """The CLI as a user runs it, in its own process: nothing leaks between runners."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.ingest", *args, "--output", str(output), *extra],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    return RunResult(name, output, proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)


@pytest.fixture(scope="session")
def runner_inputs(tmp_path_factory) -> pathlib.Path:
    """The seeds plus inputs that must become rejects, identically on every runner."""
    d = tmp_path_factory.mktemp("runner_inputs")
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copy(seed, d / seed.name)
    (d / "empty.txt").write_bytes(b"")
    (d / "binary.txt").write_bytes(b"\x00\x01\x02 not text \x00" * 20)
    good = {
        "url": "https://example.org/news/harbour-reopens",
        "title": "Harbour reopens after storm repairs",
        "published": "2026-11-20T08:30:00Z",
        "text": "The harbour in Portsmouth reopened on Friday after three weeks of storm repairs. "
        "Fishing crews returned to the quay before dawn, and the harbour master said traffic "
        "would be back to normal by the weekend. The council paid for new fenders and lights.",
    }
    (d / "feed.jsonl").write_text(json.dumps(good) + "\n{not json\n", encoding="utf-8")
    return d


def _args(inputs: pathlib.Path) -> list[str]:
    return ["--input", str(inputs / "*"), "--run-date", RUN_DATE]


@pytest.fixture(scope="session")
def direct_run(runner_inputs, tmp_path_factory) -> RunResult:
    out = tmp_path_factory.mktemp("direct") / "out"
    started = time.monotonic()
    rc = run_ingest(*_args(runner_inputs), "--output", out)
    return RunResult("direct", out, rc, "", time.monotonic() - started)


@pytest.fixture(scope="session")
def multiprocess_run(runner_inputs, tmp_path_factory) -> RunResult:
    out = tmp_path_factory.mktemp("multiprocess") / "out"
    extra = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    return _cli("multiprocess", out, _args(runner_inputs), extra)


@pytest.fixture(scope="session")
def portable_run(runner_inputs, tmp_path_factory) -> RunResult:
    out = tmp_path_factory.mktemp("portable") / "out"
    port = _free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", "--port", str(port)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, service)
        extra = ["--runner=PortableRunner", f"--job_endpoint=localhost:{port}", "--environment_type=LOOPBACK"]
        return _cli("portable", out, _args(runner_inputs), extra)
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


@pytest.fixture(scope="session")
def dask_cluster():
    """A distributed.LocalCluster of 2 worker processes; yields the scheduler's address."""
    import distributed

    with pytest.MonkeyPatch.context() as mp:
        # Workers are separate processes: they import the repo's packages like any remote worker would. The
        # scheduler (this process) unpickles the task graph too, and pytest's rootdir is on its sys.path.
        mp.setenv("PYTHONPATH", _env()["PYTHONPATH"])
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def _dask_flags(address: str) -> list[str]:
    return ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner", f"--dask_client_address={address}"]


@pytest.fixture(scope="session")
def dask_run(runner_inputs, tmp_path_factory, dask_cluster) -> RunResult:
    out = tmp_path_factory.mktemp("dask") / "out"
    return _cli("dask", out, _args(runner_inputs), _dask_flags(dask_cluster))


def _run_of(request, name: str) -> RunResult:
    """One runner's run, started on first use: `-k dask` runs only the reference and the Dask run."""
    return request.getfixturevalue(f"{name}_run")


@pytest.fixture(scope="session")
def runs(direct_run, multiprocess_run, portable_run, dask_run) -> dict[str, RunResult]:
    results = {r.name: r for r in (direct_run, multiprocess_run, portable_run, dask_run)}
    print("\nseed run wall time per runner: " + ", ".join(f"{n} {r.seconds:.1f}s" for n, r in results.items()))
    return results


def _datasets(output: pathlib.Path) -> list[str]:
    return sorted(name for name in DATASETS if (output / name).is_dir())


def _rows(output: pathlib.Path, name: str) -> list[dict]:
    """A dataset's rows without volatile columns, sorted by every column so row order cannot matter."""
    table = read_dataset(output, name)
    keep = [c for c in table.column_names if c not in VOLATILE_COLUMNS]
    rows = table.select(keep).to_pylist()
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _manifest(output: pathlib.Path) -> dict:
    manifest = json.loads((output / "_manifests" / f"run_date={RUN_DATE}.json").read_text())
    manifest.pop("ingested_at", None)
    return manifest


@pytest.mark.parametrize("name", RUNNERS)
def test_runner_completes(request, name):
    result = _run_of(request, name)
    assert result.returncode == 0, f"{name} runner failed (exit {result.returncode}):\n{result.log[-4000:]}"


def test_reference_run_has_articles_and_rejects(direct_run):
    ref = direct_run
    assert ref.returncode == 0
    assert read_dataset(ref.output, "articles").num_rows >= 1
    reasons = set(read_dataset(ref.output, "rejects").column("reason").to_pylist())
    assert len(reasons) >= 2, reasons  # the empty file, the binary file and the broken JSON line
    counts = _manifest(ref.output)["counts"]
    assert counts["records_read"] == 5 + 4  # five seeds, two bad files, two JSONL lines


@pytest.mark.parametrize("name", [r for r in RUNNERS if r != "direct"])
def test_outputs_identical_to_direct(request, direct_run, name):
    ref, other = direct_run, _run_of(request, name)
    assert ref.returncode == 0 and other.returncode == 0, f"{name}: exit {other.returncode}\n{other.log[-4000:]}"
    assert _datasets(other.output) == _datasets(ref.output)
    assert _manifest(other.output) == _manifest(ref.output)
    for dataset in _datasets(ref.output):
        expected, got = _rows(ref.output, dataset), _rows(other.output, dataset)
        assert len(got) == len(expected), f"{dataset}: {len(got)} rows on {name}, {len(expected)} on direct"
        assert got == expected, f"{dataset}: rows differ between {name} and direct"


def test_ids_identical_across_runners(runs):
    ids = {}
    for name, result in runs.items():
        assert result.returncode == 0, f"{name}: exit {result.returncode}"
        table = read_dataset(result.output, "articles")
        ids[name] = sorted(table.column("article_id").to_pylist()) if table.num_rows else []
    assert all(v == ids["direct"] for v in ids.values()), ids
    assert len(set(ids["direct"])) == len(ids["direct"])  # no article twice


def test_same_file_layout_across_runners(runs):
    def files(out: pathlib.Path) -> list[str]:
        return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))

    layouts = {name: files(r.output) for name, r in runs.items()}
    for name, layout in layouts.items():
        assert layout == layouts["direct"], f"{name} wrote a different set of files"
    assert not any(p.startswith("_staging") for p in layouts["direct"]), "staging left behind"


def test_arrow_types_identical_across_runners(runs):
    ref = runs["direct"]
    for name, result in runs.items():
        for dataset in _datasets(ref.output):
            schema: pa.Schema = read_dataset(result.output, dataset).schema
            assert schema.equals(read_dataset(ref.output, dataset).schema), f"{name}/{dataset} schema differs"


@pytest.mark.timeout(TIMEOUT_S)
def test_feed_run_identical_on_dask(tmp_path, dask_cluster):
    # The feed source has its own shape (per-host grouping, batched concurrent fetching): it must route and
    # emit the same on a distributed engine.
    with FeedServer() as server:
        feeds = tmp_path / "feeds.txt"
        feeds.write_text("".join(f"{server.base}/feeds/{name}\n" for name in ("rss.xml", "atom.xml", "garbage.xml")))
        args = ["--feeds", str(feeds), "--allow-private-hosts", "--fetch-timeout", "5", "--run-date", RUN_DATE]
        ref = tmp_path / "direct"
        assert run_ingest(*args, "--output", ref) == 0
        dask = _cli("dask", tmp_path / "dask", args, _dask_flags(dask_cluster))
    assert dask.returncode == 0, dask.log[-4000:]
    assert read_dataset(ref, "articles").num_rows >= 3
    assert "feed_unreadable" in read_dataset(ref, "rejects").column("reason").to_pylist()
    assert _datasets(dask.output) == _datasets(ref)
    assert _manifest(dask.output) == _manifest(ref)
    for dataset in _datasets(ref):
        assert _rows(dask.output, dataset) == _rows(ref, dataset), f"{dataset}: rows differ on Dask"


@pytest.mark.timeout(TIMEOUT_S)
def test_next_day_on_dask_finds_the_stored_signatures(tmp_path, dask_cluster):
    # Cross-day dedup reads earlier runs' signatures as a side input: on Dask it is computed inside a worker.
    inputs = tmp_path / "in"
    inputs.mkdir()
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copy(seed, inputs / seed.name)
    out = tmp_path / "out"
    days = ("2026-11-22", "2026-11-23")
    for day in days:
        run = _cli("dask", out, ["--input", str(inputs / "*.txt"), "--run-date", day], _dask_flags(dask_cluster))
        assert run.returncode == 0, run.log[-4000:]
    articles, duplicates = read_dataset(out, "articles"), read_dataset(out, "duplicates")
    first_day = sorted(
        a
        for a, d in zip(articles["article_id"].to_pylist(), articles["run_date"].to_pylist(), strict=True)
        if str(d) == days[0]
    )
    assert len(first_day) == 5 and articles.num_rows == 5
    assert sorted(duplicates.column("duplicate_of").to_pylist()) == first_day


def test_a_side_input_made_by_a_shuffle_works_on_dask(dask_cluster):
    # Once a Dask failure ("Could not serialize _HLGExprSequence") and a rule of transforms/portable.py; with
    # Beam 2.77 it works, and this keeps it so (the clean stage's learned lines are such a side input).
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    with beam.Pipeline(options=PipelineOptions(_dask_flags(dask_cluster))) as p:
        data = p | beam.Create([("a", 1), ("b", 2), ("a", 3)])
        totals = beam.pvalue.AsDict(data | "Totals" >> beam.CombinePerKey(sum))
        grouped = data | "Group" >> beam.GroupByKey() | beam.MapTuple(lambda k, v: (k, sorted(v)))
        out = grouped | beam.Map(lambda kv, t: (kv[0], kv[1], t[kv[0]]), totals)
        assert_that(out, equal_to([("a", [1, 3], 4), ("b", [2], 2)]))
