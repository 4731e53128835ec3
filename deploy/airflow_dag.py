"""Airflow DAG: one news-ingest run per day, named by the DAG run's logical date, with Apache Beam's operator.

Needs `apache-airflow-providers-apache-beam` (and `apache-airflow-providers-google` for Dataflow) in the Airflow
environment, and news-ingest installed in the Python that runs the pipeline (NEWS_INGEST_PYTHON).

- Each DAG run passes `--run-date {{ ds }}`: a retry or a manual "clear" of the same day replaces that day's files,
  never duplicates them; a backfill (`airflow dags backfill -s 2026-11-01 -e 2026-11-07 news_ingest_daily`)
  runs each missed day under its own date.
- max_active_runs=1 plus the pipeline's run lock (OUT/_locks/run_date=D.lock) keep two runs of a date apart.
- NEWS_INGEST_RUNNER=DataflowRunner switches to Dataflow (see deploy/dataflow.md); the default runs on the worker.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow import DAG
from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator

PYTHON = os.environ.get("NEWS_INGEST_PYTHON", "/opt/news-ingest/.venv/bin/python")
RUNNER = os.environ.get("NEWS_INGEST_RUNNER", "DirectRunner")
INPUT = os.environ.get("NEWS_INGEST_INPUT", "/data/news/incoming/{{ ds }}/*")
OUTPUT = os.environ.get("NEWS_INGEST_OUTPUT", "/data/news/out")

options = {
    "input": INPUT,
    "output": OUTPUT,
    "run-date": "{{ ds }}",
}
dataflow_config = None
if RUNNER == "DataflowRunner":
    from airflow.providers.google.cloud.operators.dataflow import DataflowConfiguration

    options.update(
        {
            "temp_location": os.environ.get("NEWS_INGEST_TEMP", "gs://BUCKET/tmp"),
            "sdk_container_image": os.environ.get(
                "NEWS_INGEST_IMAGE", "REGION-docker.pkg.dev/PROJECT/news/news-ingest:0.1.0"
            ),
            "sdk_location": "container",
        }
    )
    dataflow_config = DataflowConfiguration(
        job_name="news-ingest-{{ ds_nodash }}",
        project_id=os.environ.get("NEWS_INGEST_PROJECT", "PROJECT"),
        location=os.environ.get("NEWS_INGEST_REGION", "europe-west1"),
        wait_until_finished=True,
    )

with DAG(
    dag_id="news_ingest_daily",
    description="Raw news to deduplicated, entity-tagged Parquet, one run per day",
    schedule="15 6 * * *",  # 06:15 UTC; {{ ds }} is the day before (the logical date of the data interval)
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=15), "execution_timeout": dt.timedelta(hours=6)},
    tags=["news-ingest"],
) as dag:
    ingest = BeamRunPythonPipelineOperator(
        task_id="ingest",
        # python -m pipelines.ingest: the installed package, no file path to keep in sync.
        py_file="pipelines.ingest",
        py_options=["-m"],
        py_interpreter=PYTHON,
        runner=RUNNER,
        pipeline_options=options,
        dataflow_config=dataflow_config,
    )
