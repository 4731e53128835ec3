"""The dead-letter convention: counted drops, reject records and guarded stage steps."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.elements import Reject
from transforms.portable import Batch, TaggedParDo  # noqa: F401 - re-exported for stages not yet moved over

REJECTS = "rejects"
NAMESPACE = "news"


def count(name: str, n: int = 1) -> None:
    """Increment a pipeline counter in the project's metrics namespace."""
    Metrics.counter(NAMESPACE, name).inc(n)


def reject(input_ref: str, stage: str, reason: str, detail: str, content=None) -> beam.pvalue.TaggedOutput:
    """A counted, tagged reject: the one way a stage drops a record on purpose."""
    count(f"rejected.{stage}.{reason}")
    return beam.pvalue.TaggedOutput(REJECTS, Reject.of(input_ref, stage, reason, detail, content))


def _input_ref_of(element) -> str:
    # Files travel as Beam FileMetadata, whose repr is no reference a user can follow.
    ref = getattr(element, "input_ref", None) or getattr(element, "path", None)
    if ref is None and isinstance(element, tuple) and element:
        ref = getattr(element[-1], "input_ref", None) or (element[0] if isinstance(element[0], str) else None)
    return str(ref) if ref is not None else repr(element)[:200]


def failures_to_rejects(stage: str):
    """Turn `with_exception_handling()` dead letters (element, (type, value, tb)) into Reject records."""

    def _convert(failure) -> Reject:
        element, (_, exc_repr, _traceback) = failure
        count(f"rejected.{stage}.internal_error")
        return Reject.of(_input_ref_of(element), stage, "internal_error", str(exc_repr)[:2000])

    return beam.Map(_convert)


def run_guarded(pcoll, label: str, stage: str, dofn, *args, tags=(REJECTS,), **kwargs):
    """ParDo with tagged rejects plus a dead letter for unexpected errors.

    Returns (main, rejects, *other_tags); unexpected exceptions become `internal_error` rejects
    instead of failing the whole run.
    """
    others = tuple(t for t in tags if t != REJECTS)
    result = pcoll | label >> TaggedParDo(dofn, REJECTS, *others, dead_letter="failed", args=args, kwargs=kwargs)
    errors = result["failed"] | f"{label}Failures" >> failures_to_rejects(stage)
    rejects = (result[REJECTS], errors) | f"{label}Rejects" >> beam.Flatten()
    return (result["main"], rejects, *(result[t] for t in others))
