"""s3:// input and output through Beam's FileSystems, against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil

import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pytest
from conftest import SEEDS, read_dataset, run_ingest

pytestmark = pytest.mark.slow

BUCKET = "news-ingest-test"
REGION = "us-east-1"
KEY = "testing"
RUN_DATE = "2026-11-23"


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 with fake credentials in the environment, for the whole session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture(scope="session")
def s3(s3_endpoint):
    import boto3

    client = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name=REGION, aws_access_key_id=KEY, aws_secret_access_key=KEY
    )
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def s3_opts(s3_endpoint) -> list[str]:
    """Beam's S3Options: what a user passes on the command line for a non-AWS endpoint."""
    return [
        f"--s3_endpoint_url={s3_endpoint}",
        f"--s3_access_key_id={KEY}",
        f"--s3_secret_access_key={KEY}",
        f"--s3_region_name={REGION}",
    ]


@pytest.fixture
def prefix(request, s3) -> str:
    """A fresh key prefix per test, so tests share the server but not their data."""
    name = request.node.name.replace("[", "-").replace("]", "")
    return f"t/{name}"


def _upload_inputs(s3, prefix: str) -> list[str]:
    keys = []
    for seed in sorted(SEEDS.glob("*.txt")):
        key = f"{prefix}/seeds/{seed.name}"
        s3.upload_file(str(seed), BUCKET, key)
        keys.append(key)
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/seeds/empty.txt", Body=b"")
    return keys


def _keys(s3, prefix: str) -> dict[str, int]:
    """Object key (relative to prefix) -> size."""
    found, token = {}, None
    while True:
        kw = {"Bucket": BUCKET, "Prefix": prefix + "/"}
        if token:
            kw["ContinuationToken"] = token
        page = s3.list_objects_v2(**kw)
        for obj in page.get("Contents", []):
            found[obj["Key"][len(prefix) + 1 :]] = obj["Size"]
        if not page.get("IsTruncated"):
            return found
        token = page["NextContinuationToken"]


def _arrow_s3(endpoint: str) -> pafs.S3FileSystem:
    host = endpoint.split("://", 1)[1]
    return pafs.S3FileSystem(
        access_key=KEY,
        secret_key=KEY,
        region=REGION,
        endpoint_override=host,
        scheme="http",
        allow_bucket_creation=False,
    )


def _read_s3_dataset(endpoint: str, prefix: str, name: str):
    """A dataset read back from S3 the way users read it: pyarrow.dataset with Hive partition discovery."""
    return pads.dataset(
        f"{BUCKET}/{prefix}/out/{name}", filesystem=_arrow_s3(endpoint), format="parquet", partitioning="hive"
    ).to_table()


def _comparable(table, drop=("ingested_at", "input_ref")) -> list[dict]:
    keep = [c for c in table.column_names if c not in drop]
    return sorted(table.select(keep).to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _run_s3(prefix: str, s3_opts: list[str], *extra: str, run_date: str = RUN_DATE) -> int:
    return run_ingest(
        "--input",
        f"s3://{BUCKET}/{prefix}/seeds/*.txt",
        "--output",
        f"s3://{BUCKET}/{prefix}/out",
        "--run-date",
        run_date,
        *s3_opts,
        *extra,
    )


def test_s3_input_and_output_match_a_local_run(s3, s3_endpoint, s3_opts, prefix, tmp_path):
    _upload_inputs(s3, prefix)
    assert _run_s3(prefix, s3_opts) == 0

    keys = _keys(s3, prefix)
    published = sorted(k for k in keys if k.startswith("out/articles/published_date="))
    assert published and all(k.endswith(f"part-{RUN_DATE}-00000.parquet") for k in published), keys
    assert f"out/_manifests/run_date={RUN_DATE}.json" in keys
    assert any(k.startswith(f"out/rejects/run_date={RUN_DATE}/") for k in keys), "the empty file's reject"
    assert not any(k.startswith("out/_staging/") for k in keys), "staging left behind on S3"

    # The same inputs from local disk give the same rows (input_ref names the path, so it differs).
    local_in = tmp_path / "seeds"
    shutil.copytree(SEEDS, local_in)
    (local_in / "empty.txt").write_bytes(b"")
    assert run_ingest("--input", local_in / "*.txt", "--output", tmp_path / "out", "--run-date", RUN_DATE) == 0
    for name in ("articles", "rejects"):
        from_s3 = _read_s3_dataset(s3_endpoint, prefix, name)
        assert from_s3.num_rows >= 1
        assert _comparable(from_s3) == _comparable(read_dataset(tmp_path / "out", name)), name
    refs = _read_s3_dataset(s3_endpoint, prefix, "articles").column("input_ref").to_pylist()
    assert all(r.startswith(f"s3://{BUCKET}/{prefix}/seeds/") for r in refs), refs


def test_s3_rerun_replaces_cleans_staging_and_later_date_adds(s3, s3_endpoint, s3_opts, prefix):
    _upload_inputs(s3, prefix)
    assert _run_s3(prefix, s3_opts) == 0
    first = _keys(s3, prefix)
    n_first = _read_s3_dataset(s3_endpoint, prefix, "articles").num_rows

    # A killed run leaves staged files; S3 has no folders, so they must be found by prefix and removed.
    junk = f"{prefix}/out/_staging/run_date={RUN_DATE}/articles/published_date=2001-01-01/part-{RUN_DATE}-00007.parquet"
    s3.put_object(Bucket=BUCKET, Key=junk, Body=b"half a file from a killed run")
    assert _run_s3(prefix, s3_opts) == 0
    again = _keys(s3, prefix)
    assert not any(k.startswith("out/_staging/") for k in again), "staging of a crashed run left on S3"
    assert again.keys() == first.keys()
    articles = _read_s3_dataset(s3_endpoint, prefix, "articles")
    assert articles.num_rows == n_first
    assert len(set(articles.column("article_id").to_pylist())) == n_first

    later = (dt.date.fromisoformat(RUN_DATE) + dt.timedelta(days=1)).isoformat()
    assert _run_s3(prefix, s3_opts, run_date=later) == 0
    after = _keys(s3, prefix)
    assert set(first) <= set(after)
    assert any(f"part-{later}-" in k for k in after)
    assert f"out/_manifests/run_date={later}.json" in after


def test_s3_lock_refuses_a_second_run_and_takes_over_a_stale_one(s3, s3_opts, prefix, capsys):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines import lock

    _upload_inputs(s3, prefix)
    output = f"s3://{BUCKET}/{prefix}/out"
    day = dt.date.fromisoformat(RUN_DATE)
    held = lock.acquire(output, day, options=PipelineOptions(s3_opts))
    try:
        assert f"out/_locks/run_date={RUN_DATE}.lock" in _keys(s3, prefix)
        assert _run_s3(prefix, s3_opts) != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "locked" in err, err
        assert not any(k.startswith("out/articles/") for k in _keys(s3, prefix))
    finally:
        held.release()
    assert f"out/_locks/run_date={RUN_DATE}.lock" not in _keys(s3, prefix)

    # A lock from another host that is older than the age limit belongs to a run that is long gone.
    old = lock.LockInfo("dead-token", 1, "some-other-host", "2000-01-01T00:00:00+00:00", RUN_DATE, output)
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/out/_locks/run_date={RUN_DATE}.lock", Body=old.to_bytes())
    assert _run_s3(prefix, s3_opts) == 0
    keys = _keys(s3, prefix)
    assert any(k.startswith("out/articles/") for k in keys)
    assert f"out/_locks/run_date={RUN_DATE}.lock" not in keys


def test_s3_lock_create_is_atomic(s3, s3_opts, prefix):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines import lock

    output = f"s3://{BUCKET}/{prefix}/out"
    day = dt.date.fromisoformat(RUN_DATE)
    first = lock.acquire(output, day, options=PipelineOptions(s3_opts))
    with pytest.raises(lock.LockHeld, match="locked by pid"):
        lock.acquire(output, day, options=PipelineOptions(s3_opts))
    # A second owner's lock must survive the first owner's release.
    s3.delete_object(Bucket=BUCKET, Key=f"{prefix}/out/_locks/run_date={RUN_DATE}.lock")
    second = lock.acquire(output, day, options=PipelineOptions(s3_opts))
    first.release()
    assert f"out/_locks/run_date={RUN_DATE}.lock" in _keys(s3, prefix)
    second.release()
    assert f"out/_locks/run_date={RUN_DATE}.lock" not in _keys(s3, prefix)


def test_every_boto3_session_shares_one_parsed_copy_of_botocores_models():
    # Beam's S3 filesystem opens a new boto3 session per file operation; without the shared loader each one parsed
    # botocore's JSON models again (~0.3 s of CPU per listing, copy or delete).
    import boto3

    from pipelines.s3 import share_botocore_loader

    share_botocore_loader()
    share_botocore_loader()  # idempotent
    first, second = (boto3.session.Session()._session.get_component("data_loader") for _ in range(2))
    assert first is second
    assert first.load_service_model("s3", "service-2") is second.load_service_model("s3", "service-2")
