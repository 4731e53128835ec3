"""Packaging for news-ingest: the console script locally, and --setup_file for Dataflow workers."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent


def _requirements():
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith(("#", "-"))]


setup(
    name="news-ingest",
    version="0.1.0",
    description="Apache Beam pipeline: raw news to clean, deduplicated, entity-tagged Hive-partitioned Parquet",
    python_requires=">=3.10",
    packages=find_packages(include=["pipelines", "pipelines.*", "transforms", "transforms.*", "schemas", "schemas.*"]),
    package_data={"transforms": ["data/*"], "schemas": ["*.json"], "pipelines": ["report/templates/*"]},
    include_package_data=True,
    install_requires=_requirements(),
    entry_points={"console_scripts": ["news-ingest=pipelines.ingest:main"]},
)
