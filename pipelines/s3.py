"""Beam's S3 filesystem without parsing botocore's service models again on every file operation."""

from __future__ import annotations

import functools


@functools.cache
def _loader(data_path: str | None):
    from botocore.loaders import create_loader

    return create_loader(data_path)


def share_botocore_loader() -> None:
    """Every botocore session of this process shares one loader per data path.

    Beam's S3 filesystem makes a new boto3 session for each file operation (one S3IO per listing, copy, rename or
    delete), and a new session parses botocore's JSON service and endpoint models again: ~0.3 s of CPU each, most
    of an S3 run's time when a commit moves many files. The loader only caches the parsed models, which a
    session's clients already share. Idempotent; nothing happens without botocore."""
    try:
        from botocore import session
    except ImportError:
        return
    if getattr(session.Session, "_news_ingest_shared_loader", False):
        return

    def _register_data_loader(self):
        self._components.lazy_register_component("data_loader", lambda: _loader(self.get_config_variable("data_path")))

    session.Session._register_data_loader = _register_data_loader
    session.Session._news_ingest_shared_loader = True
