"""HTML reports: a run (metrics with intervals, per-tag bars with error bars, the
confusion-matrix heatmap, failed samples) and a rating ladder. Self-contained files:
plots are PNG data URIs drawn with matplotlib's object API (as ``quality.plots``)."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Any

import jinja2
import orjson
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gristmill.evals.rank import Rating
from gristmill.store import Version

COLOR = "#3b6ea8"


def _uri(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def tag_bars(by_tag: dict[str, dict[str, Any]], metric: str) -> str | None:
    """One bar per tag with its 95 % interval as an error bar."""
    rows = [(t, m[metric]) for t, m in by_tag.items() if metric in m]
    if not rows:
        return None
    fig = Figure(figsize=(7, 0.35 * len(rows) + 1.2))
    ax = fig.add_subplot()
    names = [t for t, _ in rows][::-1]
    values = [e["value"] for _, e in rows][::-1]
    low = [max(0.0, e["value"] - e["low"]) for _, e in rows][::-1]
    high = [max(0.0, e["high"] - e["value"]) for _, e in rows][::-1]
    ax.barh(names, values, xerr=[low, high], color=COLOR, capsize=3)
    ax.set_xlabel(f"{metric} (95% bootstrap CI)")
    ax.set_title(f"{metric} by tag")
    return _uri(fig)


def confusion_heatmap(report: dict[str, Any]) -> str:
    labels: list[str] = [lab if len(lab) <= 14 else lab[:13] + "…" for lab in report["labels"]]
    matrix = report["matrix"]
    k = len(labels)
    fig = Figure(figsize=(1.0 + 0.6 * k, 0.8 + 0.6 * k))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    top = max((v for row in matrix for v in row), default=0)
    for i in range(k):
        for j in range(k):
            value = matrix[i][j]
            colour = "white" if top and value > top / 2 else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=colour)
    ax.set_xticks(range(k), labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return _uri(fig)


def ladder(ratings: list[Rating]) -> str:
    """Systems by rating with their intervals (best at the top)."""
    fig = Figure(figsize=(7, 0.4 * len(ratings) + 1.2))
    ax = fig.add_subplot()
    names = [r.system for r in ratings][::-1]
    values = [r.rating for r in ratings][::-1]
    err = [
        [max(0.0, r.rating - r.low) for r in ratings][::-1],
        [max(0.0, r.high - r.rating) for r in ratings][::-1],
    ]
    ax.errorbar(values, names, xerr=err, fmt="o", color=COLOR, capsize=4)
    ax.axvline(1000, color="#999", linewidth=0.8, linestyle="--")
    ax.set_xlabel("Bradley-Terry rating, Elo scale (95% bootstrap CI)")
    return _uri(fig)


_ENV = jinja2.Environment(autoescape=True)
_RUN = _ENV.from_string(
    """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right;vertical-align:top}td.t,th.t{text-align:left;max-width:480px;white-space:pre-wrap}
.bad{color:#b00}.ok{color:#070}</style></head><body>
<h1>{{ title }}</h1>
<p>{{ n }} items · eval set {{ params.eval }} · model {{ params.model_name }}
{% if params.num_fewshot %}· {{ params.num_fewshot }}-shot{% endif %}</p>
<table><tr><th class="t">metric</th><th>value</th><th>95% CI</th><th>n</th></tr>
{% for name, e in metrics.items() %}<tr><td class="t">{{ name }}</td><td>{{ f(e.value) }}</td>
<td>[{{ f(e.low) }}, {{ f(e.high) }}]</td><td>{{ e.n }}</td></tr>{% endfor %}</table>
{% for uri in bars %}<img src="{{ uri }}">{% endfor %}
{% if heatmap %}<h2>Confusion matrix</h2><img src="{{ heatmap }}">
<table><tr><th class="t">class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>
{% for label, per in per_class.items() %}<tr><td class="t">{{ label }}</td>
{% for m in ["precision", "recall", "f1"] %}<td>{{ f(per[m].value) }}
[{{ f(per[m].low) }}, {{ f(per[m].high) }}]</td>{% endfor %}<td>{{ per.support.value|int }}</td></tr>
{% endfor %}</table>{% endif %}
<h2>Samples{% if failed_only %} that failed{% endif %} (first {{ samples|length }})</h2>
<table><tr><th class="t">item</th><th class="t">input</th><th class="t">answer</th>
<th class="t">reference</th><th class="t">scores</th></tr>
{% for s in samples %}<tr><td class="t">{{ s.id }}</td><td class="t">{{ s.input }}</td>
<td class="t {{ 'ok' if s.correct else 'bad' if s.correct is not none else '' }}">{{ s.answer }}</td>
<td class="t">{{ s.reference }}</td><td class="t">{{ s.scores }}</td></tr>{% endfor %}</table>
</body></html>"""
)
_LADDER = _ENV.from_string(
    """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td.t{text-align:left}</style>
</head><body><h1>{{ title }}</h1>
<p>Bradley-Terry ratings on the Elo scale (1000 = the geometric mean strength; 400 points
= 10:1 odds), 95% percentile bootstrap intervals over the judgement records.</p>
<img src="{{ plot }}">
<table><tr><th>#</th><th>system</th><th>rating</th><th>95% CI</th><th>wins</th><th>losses</th>
<th>ties</th><th>games</th></tr>{% for r in ratings %}<tr><td>{{ loop.index }}</td>
<td class="t">{{ r.system }}</td><td>{{ "%.0f"|format(r.rating) }}</td>
<td>[{{ "%.0f"|format(r.low) }}, {{ "%.0f"|format(r.high) }}]</td><td>{{ r.wins|int }}</td>
<td>{{ r.losses|int }}</td><td>{{ r.ties|int }}</td><td>{{ r.games }}</td></tr>{% endfor %}
</table></body></html>"""
)


def _f(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def write_run_report(version: Version, path: Path, max_samples: int = 100) -> Path:
    stats = version.manifest.stats
    params = version.manifest.params
    metrics: dict[str, Any] = stats.get("metrics", {})
    by_tag: dict[str, Any] = stats.get("by_tag", {})
    bars = [uri for m in metrics if (uri := tag_bars(by_tag, m)) is not None]
    report = stats.get("classification")
    samples: list[dict[str, Any]] = []
    all_rows: list[dict[str, Any]] = []
    for row in version.iter_rows(columns=["id", "messages", "meta"]):
        meta = orjson.loads(row["meta"]) if row.get("meta") else {}
        messages = row.get("messages") or []
        all_rows.append(
            {
                "id": row["id"],
                "input": meta.get("input", ""),
                "answer": messages[-1]["content"] if messages else "",
                "reference": " | ".join(meta.get("references") or []),
                "scores": ", ".join(f"{k}={_f(v)}" for k, v in (meta.get("scores") or {}).items()),
                "correct": meta.get("correct"),
            }
        )
    failed = [s for s in all_rows if s["correct"] is False]
    failed_only = bool(failed)
    samples = (failed or all_rows)[:max_samples]
    html = _RUN.render(
        title=f"{params.get('task')} · {version.ref}",
        n=stats.get("n"),
        params=params,
        metrics=metrics,
        bars=bars,
        heatmap=confusion_heatmap(report) if report else None,
        per_class=report["per_class"] if report else {},
        samples=samples,
        failed_only=failed_only,
        f=_f,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html)
    return path


def write_ladder(ratings: list[Rating], path: Path, title: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_LADDER.render(title=title, ratings=ratings, plot=ladder(ratings)))
    return path
