"""`gristmill sample --plot`: what a sampler kept, as one self-contained HTML file.

Written into the sample's version folder as ``sample.html``, in the quality report's
style (same template, inline PNGs from matplotlib's object API): the chain of
filters with the records each left, a histogram of each score with kept and
dropped records stacked, and a 2-D map of the embeddings (PCA, or UMAP when
``umap-learn`` is installed) of up to ``max_points`` records, coloured kept/dropped.
The map embeds through the same cached embedder as the scorers, so after a
``density``, ``semdedup`` or ``prototypes`` scoring run it costs no model call.
"""

from __future__ import annotations

from html import escape
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from matplotlib.figure import Figure

from gristmill.quality.plots import COLOR, COLOR_B, _data_uri
from gristmill.records.kinds import Kind
from gristmill.sampling import backends
from gristmill.sampling.select import Plan, Selection, scorer_of
from gristmill.sampling.text import record_texts
from gristmill.store import Version

MAX_HISTOGRAMS = 6
EMBEDDING_SCORERS = ("density", "semdedup", "prototypes")


def _numeric_scores(source: Version) -> dict[str, npt.NDArray[np.float64]]:
    """Each attribute's ``score`` column, aligned with the version's rows."""
    ids = source.table(columns=["id"]).column("id").to_pylist()
    position = {rid: i for i, rid in enumerate(ids)}
    out: dict[str, npt.NDArray[np.float64]] = {}
    for name in source.attribute_names():
        table = source.read_attribute(name)
        if "score" not in table.column_names:
            continue
        values = np.full(len(ids), np.nan)
        for rid, v in zip(
            table.column("id").to_pylist(), table.column("score").to_pylist(), strict=True
        ):
            if rid in position and v is not None:
                values[position[rid]] = float(v)
        out[name] = values
        if len(out) >= MAX_HISTOGRAMS:
            break
    return out


def score_histograms(
    scores: dict[str, npt.NDArray[np.float64]], keep: npt.NDArray[np.bool_]
) -> str | None:
    """One histogram per score; kept (blue) stacked on dropped (orange)."""
    shown = {k: v for k, v in scores.items() if np.isfinite(v).any()}
    if not shown:
        return None
    cols = min(3, len(shown))
    rows = (len(shown) + cols - 1) // cols
    fig = Figure(figsize=(3.6 * cols, 2.7 * rows))
    for i, (name, values) in enumerate(shown.items(), start=1):
        ax = fig.add_subplot(rows, cols, i)
        ok = np.isfinite(values)
        log = name.startswith(("density", "perplexity")) and bool((values[ok] > 0).all())
        data = np.log10(values[ok]) if log else values[ok]
        bins = np.histogram_bin_edges(data, bins=30).tolist()
        kept = np.log10(values[ok & keep]) if log else values[ok & keep]
        dropped = np.log10(values[ok & ~keep]) if log else values[ok & ~keep]
        ax.hist(
            [kept, dropped],
            bins=bins,
            stacked=True,
            color=[COLOR, COLOR_B],
            label=["kept", "dropped"],
        )
        ax.set_title(f"{name}{' (log10)' if log else ''}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
        if i == 1:
            ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return _data_uri(fig)


def project_2d(x: npt.NDArray[np.float32], seed: int = 0) -> tuple[npt.NDArray[np.float64], str]:
    """UMAP when installed (it keeps local neighbourhoods), else PCA (numpy SVD)."""
    try:
        import umap

        reducer = umap.UMAP(n_components=2, random_state=seed)
        return np.asarray(reducer.fit_transform(x), dtype=np.float64), "UMAP"
    except ImportError:
        centred = x.astype(np.float64) - x.mean(axis=0)
        _u, _s, vt = np.linalg.svd(centred, full_matrices=False)
        return centred @ vt[:2].T, "PCA"


def embedding_map(points: npt.NDArray[np.float64], keep: npt.NDArray[np.bool_], method: str) -> str:
    fig = Figure(figsize=(6.4, 5.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(
        points[~keep, 0],
        points[~keep, 1],
        s=6,
        c=COLOR_B,
        alpha=0.45,
        label="dropped",
        linewidths=0,
    )
    ax.scatter(
        points[keep, 0], points[keep, 1], s=7, c=COLOR, alpha=0.8, label="kept", linewidths=0
    )
    ax.set_title(f"Embeddings ({method}), kept vs dropped", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return _data_uri(fig)


def _map_model(source: Version, explicit: str | None) -> str | None:
    """The embedder the scorers used (so the map reads the cache), else the default."""
    if explicit:
        return explicit
    for name in source.attribute_names():
        step, params = scorer_of(source, name)
        if step in EMBEDDING_SCORERS:
            model = params.get("model")
            return str(model) if model else None
    return None


def _map_section(
    source: Version, keep: npt.NDArray[np.bool_], model: str | None, max_points: int, seed: int
) -> str:
    n = source.row_count
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, min(n, max_points), replace=False)) if n else np.zeros(0, int)
    if rows.size < 3:
        return '<p class="muted">Too few records for a map.</p>'
    table = source.dataset().take(pa.array(rows))
    texts = record_texts(table, Kind(source.kind))
    try:
        embedder = backends.embedder(model)
        x = np.concatenate([embedder.embed(texts[i : i + 256]) for i in range(0, len(texts), 256)])
    except Exception as exc:  # the plot is a convenience: say why it is missing
        return f'<p class="muted">No embedding map: {escape(str(exc))}</p>'
    points, method = project_2d(x.astype(np.float32), seed)
    uri = embedding_map(points, keep[rows], method)
    return (
        f'<img alt="embedding map" src="{uri}">'
        f'<p class="note">{rows.size:,} of {n:,} records (seeded sample), embedded with '
        f"{escape(getattr(embedder, 'name', str(model)))}, projected with {method}.</p>"
    )


def write_sample_report(
    out: Version,
    source: Version,
    selection: Selection,
    plan: Plan,
    map_model: str | None = None,
    max_points: int = 3000,
) -> Path:
    keep = selection.keep
    chain = "".join(
        f'<tr><td>{escape(str(s["link"]))}</td><td class="n">{s["records"]:,}</td></tr>'
        for s in selection.steps
    )
    parts: list[str] = [
        f"<h1>Sample {escape(out.ref)} of {escape(source.ref)}</h1>",
        f'<p class="meta">sampler {escape(str(plan.by or "where"))} · method '
        f"{escape(str(selection.method))} · seed {plan.seed} · kept {selection.kept:,} of "
        f"{source.row_count:,}</p>",
        f'<h2>Chain</h2><table><thead><tr><th>link</th><th class="n">records</th></tr></thead>'
        f"<tbody>{chain}</tbody></table>",
    ]
    for warning in selection.warnings:
        parts.append(f'<p class="note bad">{escape(warning)}</p>')
    hist = score_histograms(_numeric_scores(source), keep)
    parts.append("<h2>Scores</h2>")
    parts.append(
        f'<img alt="score histograms" src="{hist}">' if hist else '<p class="muted">No scores.</p>'
    )
    parts.append("<h2>Map</h2>")
    parts.append(_map_section(source, keep, _map_model(source, map_model), max_points, plan.seed))
    template = Template(
        resources.files("gristmill.quality").joinpath("report.html").read_text("utf-8")
    )
    page = template.substitute(title=escape(f"gristmill sample {out.ref}"), body="\n".join(parts))
    path = out.path / "sample.html"
    path.write_text(page, encoding="utf-8")
    return path
