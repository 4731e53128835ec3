"""The report's charts as inline SVG strings drawn by matplotlib: deterministic bytes, text kept as text."""

from __future__ import annotations

import io

from pipelines.report.scan import TOP_ENTITIES

_LABEL_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
_MAIN = "#4c72b0"


def _figure(height: float = 3.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, height), dpi=100)
    return fig, fig.add_subplot(1, 1, 1)


def _svg(fig) -> str:
    import matplotlib

    buf = io.StringIO()
    # Fixed salt and no date: the same report renders the same bytes; text stays text (no font files needed).
    with matplotlib.rc_context({"svg.hashsalt": "news-ingest-report", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def _empty(message: str) -> str:
    fig, ax = _figure(1.6)
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="#666666", transform=ax.transAxes)
    return _svg(fig)


def _style(ax, grid_axis: str = "y") -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis=grid_axis, color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=8)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bars(labels: list[str], values: list[int], *, horizontal: bool, colors=None, xlabel: str = "") -> str:
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False, "font.family": "DejaVu Sans"}):
        from matplotlib.ticker import MaxNLocator

        n = len(labels)
        # A lone bar should not fill the whole chart: lay out at least this many slots.
        pad = max(0, 6 - n) / 2
        if horizontal:
            fig, ax = _figure(max(1.6, 0.28 * n + 0.8))
            pos = list(range(n))[::-1]  # biggest on top
            bars = ax.barh(pos, values, color=colors or _MAIN, height=0.75)
            ax.set_yticks(pos, [_short(x) for x in labels])
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            _style(ax, "x")
            ax.margins(x=0.08)
            ax.set_ylim(-0.5 - min(pad, 0.5), n - 0.5 + min(pad, 0.5))
        else:
            fig, ax = _figure(3.0)
            pos = list(range(n))
            bars = ax.bar(pos, values, color=colors or _MAIN, width=0.75)
            step = max(1, -(-n // 20))  # at most ~20 tick labels, whatever the range of dates
            ticks = pos[::step]
            if n > 6:
                ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=45, ha="right")
            else:
                ax.set_xticks(ticks, [labels[i] for i in ticks])
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            _style(ax, "y")
            ax.margins(y=0.12)
            ax.set_xlim(-0.6 - pad, n - 0.4 + pad)
        if n <= 40:
            ax.bar_label(bars, padding=2, fontsize=7, color="#333333")
        if xlabel:
            ax.set_xlabel(xlabel, fontsize=8)
        fig.tight_layout()
        return _svg(fig)


def _chart_dates(report: dict) -> str:
    rows = report.get("articles_per_published_date")
    if rows is None:
        return _empty("Articles not produced by this run")
    if not rows:
        return _empty("No articles in this run")
    return _bars([r["date"] for r in rows], [r["articles"] for r in rows], horizontal=False)


def _chart_rejects(report: dict) -> str:
    by_reason = report["counts"]["rejected_by_reason"]
    if not by_reason:
        return _empty("No rejects in this run")
    items = sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    return _bars([k for k, _ in items], [v for _, v in items], horizontal=True, colors="#c44e52")


def _chart_clusters(report: dict) -> str:
    rows = report.get("cluster_sizes")
    if rows is None:
        return _empty("Articles not produced by this run")
    if not rows:
        return _empty("No articles in this run")
    return _bars([str(r["size"]) for r in rows], [r["clusters"] for r in rows], horizontal=False, xlabel="cluster size")


def _chart_entities(report: dict) -> str:
    top = report.get("top_entities")
    if top is None:
        return _empty("Entities not produced by this run")
    labels = sorted(top)
    flat = [(r["articles"], r["mentions"], r["entity"], label) for label in labels for r in top[label]]
    if not flat:
        return _empty("No entities in this run")
    flat = sorted(flat, key=lambda x: (-x[0], -x[1], x[2], x[3]))[:TOP_ENTITIES]
    color = {label: _LABEL_COLORS[i % len(_LABEL_COLORS)] for i, label in enumerate(labels)}
    return _bars(
        [f"{e} · {label}" for _, _, e, label in flat],
        [a for a, _, _, _ in flat],
        horizontal=True,
        colors=[color[label] for *_, label in flat],
        xlabel="articles mentioning",
    )


def _chart_trends(report: dict) -> str:
    """Articles per run as bars, reject and duplicate rates as lines on a second axis."""
    import matplotlib

    points = report.get("trends") or []
    if not points:
        return _empty("No runs to compare")
    with matplotlib.rc_context({"text.parse_math": False, "font.family": "DejaVu Sans"}):
        fig, ax = _figure(3.0)
        pos = list(range(len(points)))
        ax.bar(pos, [p["articles"] or 0 for p in points], color=_MAIN, width=0.7, label="articles")
        ax.set_ylabel("articles", fontsize=8)
        step = max(1, -(-len(points) // 15))
        ax.set_xticks(pos[::step], [points[i]["run_date"] for i in pos[::step]], rotation=45, ha="right")
        _style(ax, "y")
        rates = ax.twinx()
        rates.plot(pos, [100 * (p["reject_rate"] or 0) for p in points], color="#c44e52", marker="o", label="reject %")
        dup = [(i, 100 * p["duplicate_rate"]) for i, p in enumerate(points) if p["duplicate_rate"] is not None]
        if dup:
            rates.plot([i for i, _ in dup], [v for _, v in dup], color="#55a868", marker="s", label="duplicate %")
        rates.set_ylabel("%", fontsize=8)
        rates.set_ylim(bottom=0)
        rates.tick_params(labelsize=8)
        handles = ax.get_legend_handles_labels()[0] + rates.get_legend_handles_labels()[0]
        ax.legend(handles=handles, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
        rates.spines["top"].set_visible(False)
        fig.tight_layout()
        return _svg(fig)


# The charts every report has, as (key, caption, draw): the page shows each as figure#chart-<key>.
CHARTS = (
    ("articles-per-date", "Articles per published date", _chart_dates),
    ("rejects-by-reason", "Rejects by reason", _chart_rejects),
    ("cluster-sizes", "Duplicate cluster sizes (stories seen N times)", _chart_clusters),
    ("top-entities", "Top entities (articles mentioning)", _chart_entities),
)


def figures(report: dict) -> list[tuple[str, str, str]]:
    """(key, caption, SVG) of each chart of this report: CHARTS, plus trends when the report has them."""
    charts = list(CHARTS)
    if report.get("trends") is not None:
        charts.append(("trends", f"Trends over the last {len(report['trends'])} runs", _chart_trends))
    return [(key, title, draw(report)) for key, title, draw in charts]
