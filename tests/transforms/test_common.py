"""Shared stage plumbing: tagged routing, dead letters, guarded ParDos and runner-safe batching."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.common import REJECTS, reject, run_guarded
from transforms.portable import Batch, TaggedParDo, split_tagged

RUNNER = "pipelines.runners.OfflineDirectRunner"


class _Parity(beam.DoFn):
    """Even numbers to main, odd ones to 'odd', negatives rejected, zero raises."""

    def process(self, n):
        if n == 0:
            raise ZeroDivisionError("zero")
        if n < 0:
            yield reject(f"n:{n}", "test", "negative", "below zero")
        elif n % 2:
            yield beam.pvalue.TaggedOutput("odd", n)
        else:
            yield n


class _EmitsInFinishBundle(beam.DoFn):
    def process(self, n):
        yield n

    def finish_bundle(self):
        yield beam.utils.windowed_value.WindowedValue(99, 0, [beam.transforms.window.GlobalWindow()])


def test_tagged_pardo_routes_each_output_to_its_tag_only():
    with TestPipeline(runner=RUNNER) as p:
        out = p | beam.Create([1, 2, 3, 4]) | TaggedParDo(_Parity(), "odd", REJECTS, main="even")
        assert_that(out["even"], equal_to([2, 4]), label="Even")
        assert_that(out["odd"], equal_to([1, 3]), label="Odd")
        assert_that(out[REJECTS], equal_to([]), label="NoRejects")


def test_tagged_pardo_dead_letter_holds_the_failing_element_and_the_error():
    with TestPipeline(runner=RUNNER) as p:
        out = p | beam.Create([0, 2]) | TaggedParDo(_Parity(), "odd", REJECTS, dead_letter="failed")
        failed = out["failed"] | beam.MapTuple(lambda element, err: (element, err[0].__name__, "zero" in err[1]))
        assert_that(failed, equal_to([(0, "ZeroDivisionError", True)]), label="Failed")
        assert_that(out["main"], equal_to([2]), label="Main")


def test_tagged_pardo_refuses_a_dofn_that_emits_from_finish_bundle():
    # Beam's DaskRunner drops such output silently; failing loudly keeps it from being lost.
    with pytest.raises(Exception, match="finish_bundle must not emit"):
        with TestPipeline(runner=RUNNER) as p:
            _ = p | beam.Create([1]) | TaggedParDo(_EmitsInFinishBundle())


class _WantsWindow(beam.DoFn):
    def process(self, n, window=beam.DoFn.WindowParam):
        yield n, window


def test_tagged_pardo_refuses_a_dofn_that_needs_dofn_parameters():
    with pytest.raises(TypeError, match="window"):
        TaggedParDo(_WantsWindow())


def test_run_guarded_turns_tagged_and_unexpected_failures_into_rejects():
    with TestPipeline(runner=RUNNER) as p:
        main, rejects, odd = run_guarded(
            p | beam.Create([-1, 0, 1, 2]), "Parity", "test", _Parity(), tags=(REJECTS, "odd")
        )
        assert_that(main, equal_to([2]), label="Main")
        assert_that(odd, equal_to([1]), label="Odd")
        reasons = rejects | beam.Map(lambda r: (r.stage, r.reason))
        assert_that(reasons, equal_to([("test", "negative"), ("test", "internal_error")]), label="Rejects")


@pytest.mark.parametrize(
    "n, size, shards",
    [
        (0, 4, 16),
        (10, 4, 16),
        (3, 8, 1),
        (100, 7, 1),
    ],
)
def test_batch_keeps_every_element_once_in_bounded_deterministic_lists(n, size, shards):
    with TestPipeline(runner=RUNNER) as p:
        batches = p | beam.Create(list(range(n))) | Batch(size, shards=shards, key=str)
        # Matchers must raise: Beam ignores a matcher's return value, so a lambda returning False would pass.
        assert_that(batches | "Sizes" >> beam.Map(len), _each(lambda s: 0 < s <= size), "Bounded")
        assert_that(batches | beam.FlatMap(lambda b: b), equal_to(list(range(n))), label="EachOnce")
        assert_that(batches | "Sorted" >> beam.Map(lambda b: b == sorted(b, key=str)), _each(bool), label="Ordered")


def _each(predicate):
    def check(values):
        bad = [v for v in values if not predicate(v)]
        assert not bad, f"values failing the check: {bad[:5]}"

    return check


def test_a_failing_matcher_fails_the_pipeline():
    # The guard above is only worth something if a raising matcher really fails a pipeline.
    with pytest.raises(Exception, match="values failing the check"):
        with TestPipeline(runner=RUNNER) as p:
            assert_that(p | beam.Create([1, 5]), _each(lambda v: v < 3))


class _StatefulLike(beam.DoFn):
    """Yields (tag, value) pairs itself, as a DoFn that Beam must call directly does."""

    def process(self, x, timestamp=beam.DoFn.TimestampParam):
        yield ("odd" if x % 2 else "main"), x


def test_split_tagged_routes_pairs_of_a_dofn_beam_calls_itself():
    with TestPipeline(runner=RUNNER) as p:
        pairs = p | beam.Create([1, 2, 3, 4]) | beam.ParDo(_StatefulLike())
        out = split_tagged(pairs, {"main": "main", "odd": "odd"})
        assert_that(out["main"], equal_to([2, 4]), label="Main")
        assert_that(out["odd"], equal_to([1, 3]), label="Odd")
