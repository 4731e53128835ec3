"""Arrow scans of a run's committed Parquet files: the per-dataset figures the report is built from."""

from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

TOP_ENTITIES = 20
SAMPLE_REJECTS = 20
TOP_STORIES = 10

_PARTITION = re.compile(r"(?:^|/)published_date=(\d{4}-\d{2}-\d{2})(?:/|$)")


def _read(output: str, rel: str, columns: Sequence[str]) -> pa.Table:
    """Only the wanted columns of one committed file that exist in it; `removed.rule_id` reads just the ids."""
    with FileSystems.open(FileSystems.join(output, rel), compression_type=CompressionTypes.UNCOMPRESSED) as f:
        pf = pq.ParquetFile(f)
        paths = [pf.metadata.schema.column(i).path for i in range(pf.metadata.num_columns)]
        wanted = []
        for col in columns:
            if col == "removed.rule_id":
                # The cleaner's removed text can be large; the report only needs the rule ids.
                wanted += [p for p in paths if p.startswith("removed.") and p.endswith(".rule_id")]
            elif col in paths or any(p.startswith(col + ".") for p in paths):
                wanted.append(col)
        return pf.read(columns=wanted) if wanted else pa.table({"_": pa.nulls(pf.metadata.num_rows)})


def _value_counts(column: pa.ChunkedArray, null_as=None) -> Counter:
    counts: Counter = Counter()
    for item in pc.value_counts(column).to_pylist():
        value = item["values"]
        counts[null_as if value is None else value] += item["counts"]
    return counts


def _partition_date(rel: str) -> str | None:
    m = _PARTITION.search(rel)
    return m.group(1) if m else None


def _count_removed(column: pa.ChunkedArray, lines: Counter, articles_with: Counter) -> None:
    """Removed entries per rule id, and the number of articles with at least one, without a Python row loop."""
    for chunk in column.chunks:
        if not len(chunk):
            continue
        flat = pc.list_flatten(chunk)
        if not len(flat):
            continue
        ids = pc.fill_null(flat.field("rule_id"), "unknown")
        lines.update(_value_counts(ids))
        pairs = pa.table({"article": pc.list_parent_indices(chunk), "rule_id": ids})
        articles_with.update(_value_counts(pairs.group_by(["article", "rule_id"]).aggregate([]).column("rule_id")))


def article_stats(output: str, files: list[dict]) -> dict:
    """Articles per source, language and published date, duplicate cluster sizes and lines removed per rule."""
    per_source: Counter = Counter()
    per_language: Counter = Counter()
    per_date: Counter = Counter()
    lines: Counter = Counter()
    articles_with: Counter = Counter()
    clusters: Counter = Counter()
    for f in files:
        table = _read(output, f["path"], ["source", "language", "duplicate_count", "removed.rule_id"])
        per_date[_partition_date(f["path"]) or "unknown"] += table.num_rows
        if "source" in table.column_names:
            per_source.update(_value_counts(table.column("source"), null_as="unknown"))
        if "language" in table.column_names:
            per_language.update(_value_counts(table.column("language"), null_as="und"))
        else:
            per_language["und"] += table.num_rows
        if "duplicate_count" in table.column_names:
            sizes = pc.add(pc.fill_null(table.column("duplicate_count"), 0), 1)
            clusters.update(_value_counts(sizes))
        else:
            clusters[1] += table.num_rows
        if "removed" in table.column_names:
            _count_removed(table.column("removed"), lines, articles_with)
    return {
        "articles_per_source": [
            {"source": s, "articles": n} for s, n in sorted(per_source.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "articles_per_published_date": [{"date": d, "articles": n} for d, n in sorted(per_date.items())],
        "articles_per_language": [
            {"language": lang, "articles": n}
            for lang, n in sorted(per_language.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "cluster_sizes": [{"size": int(s), "clusters": n} for s, n in sorted(clusters.items())],
        "removed_lines": sum(lines.values()),
        "removed_by_rule": [
            {"rule_id": r, "lines": n, "articles": articles_with[r]}
            for r, n in sorted(lines.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }


def duplicate_stats(output: str, files: list[dict]) -> Counter:
    """Duplicates per match kind (exact, near)."""
    matches: Counter = Counter()
    for f in files:
        table = _read(output, f["path"], ["match"])
        if "match" in table.column_names:
            matches.update(_value_counts(table.column("match"), null_as="unknown"))
        else:
            matches["unknown"] += table.num_rows
    return matches


def entity_stats(output: str, files: list[dict]) -> dict:
    """Label -> the top entities by articles mentioning them, then mentions, then name."""
    articles: Counter = Counter()
    mentions: Counter = Counter()
    for f in files:
        table = _read(output, f["path"], ["entity", "label", "mentions"])
        if not {"entity", "label"} <= set(table.column_names) or not table.num_rows:
            continue
        if "mentions" not in table.column_names:
            table = table.append_column("mentions", pa.array([1] * table.num_rows, pa.int32()))
        grouped = table.group_by(["label", "entity"]).aggregate([("mentions", "sum"), ("mentions", "count")])
        for row in grouped.to_pylist():
            key = (row["label"] or "unknown", row["entity"] or "")
            articles[key] += row["mentions_count"]
            mentions[key] += row["mentions_sum"] or 0
    per_label: dict[str, list] = defaultdict(list)
    for (label, entity), n in articles.items():
        per_label[label].append({"entity": entity, "articles": n, "mentions": mentions[(label, entity)]})
    return {
        label: sorted(rows, key=lambda r: (-r["articles"], -r["mentions"], r["entity"]))[:TOP_ENTITIES]
        for label, rows in sorted(per_label.items())
    }


def reject_stats(output: str, files: list[dict]) -> tuple[dict, dict, list]:
    """Rejects per reason, per stage and reason, and samples drawn round-robin over (stage, reason)."""
    by_reason: Counter = Counter()
    by_stage: dict[str, Counter] = defaultdict(Counter)
    samples: dict[tuple[str, str], list] = {}
    columns = ("input_ref", "stage", "reason", "detail")
    for f in files:
        table = _read(output, f["path"], columns)
        # Missing or null columns read as "unknown"/"" so that an odd file still counts, never fails the report.
        table = pa.table(
            {
                c: pc.fill_null(table.column(c).cast(pa.string()), "unknown" if c in ("stage", "reason") else "")
                if c in table.column_names
                else pa.array(["unknown" if c in ("stage", "reason") else ""] * table.num_rows, pa.string())
                for c in columns
            }
        )
        groups = table.group_by(["stage", "reason"]).aggregate([("input_ref", "count")]).to_pylist()
        for g in groups:
            stage, reason, n = g["stage"], g["reason"], g["input_ref_count"]
            by_reason[reason] += n
            by_stage[stage][reason] += n
            mask = pc.and_(pc.equal(table.column("stage"), stage), pc.equal(table.column("reason"), reason))
            first = table.filter(mask).sort_by("input_ref").slice(0, SAMPLE_REJECTS).to_pylist()
            kept = samples.setdefault((stage, reason), [])
            kept += [(r["input_ref"], r["detail"][:300]) for r in first]
    picked: list[dict] = []
    queues = {key: heapq.nsmallest(SAMPLE_REJECTS, kept) for key, kept in sorted(samples.items())}
    depth = 0
    while len(picked) < SAMPLE_REJECTS and any(len(q) > depth for q in queues.values()):
        for (stage, reason), q in queues.items():
            if len(q) > depth and len(picked) < SAMPLE_REJECTS:
                ref, detail = q[depth]
                picked.append({"input_ref": ref, "stage": stage, "reason": reason, "detail": detail})
        depth += 1
    return (
        dict(sorted(by_reason.items())),
        {s: dict(sorted(c.items())) for s, c in sorted(by_stage.items())},
        picked,
    )


def _iso(value) -> str | None:
    return None if value is None else value.isoformat()


def story_stats(output: str, files: list[dict]) -> dict:
    """The largest and the fastest-growing stories of the run, from its stories rows (one per story)."""
    columns = ["story_id", "canonical_title", "article_count", "duplicate_count", "earlier_articles"]
    columns += ["first_seen", "last_seen", "sources"]
    stories = []
    for f in files:
        for r in _read(output, f["path"], columns).to_pylist():
            if not r.get("story_id"):
                continue
            added = (r.get("article_count") or 0) + (r.get("duplicate_count") or 0)
            earlier = r.get("earlier_articles") or 0
            stories.append(
                {
                    "story_id": r["story_id"],
                    "title": r.get("canonical_title"),
                    "articles": earlier + (r.get("article_count") or 0),
                    "added": added,
                    "earlier": earlier,
                    # Canonical articles on both sides: earlier runs' count holds no copies.
                    "growth": round((r.get("article_count") or 0) / (earlier + 1), 3),
                    "first_seen": _iso(r.get("first_seen")),
                    "last_seen": _iso(r.get("last_seen")),
                    "sources": len(r.get("sources") or ()),
                }
            )
    largest = sorted(stories, key=lambda s: (-s["articles"], -s["added"], s["story_id"]))[:TOP_STORIES]
    growing = sorted(stories, key=lambda s: (-s["growth"], -s["added"], s["story_id"]))[:TOP_STORIES]
    return {"stories": len(stories), "largest": largest, "fastest_growing": growing}
