"""Report plots as self-contained PNG data URIs (matplotlib, Agg canvas).

The object API (Figure + FigureCanvasAgg) is used instead of pyplot so that making a
report never changes the process's global matplotlib backend or figure state.
"""

from __future__ import annotations

import base64
import io
import itertools

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gristmill.quality.model import Bin, Histogram, LengthStats, Share

COLOR = "#3b6ea8"
COLOR_B = "#d9822b"
MAX_PARTS = 6


def _data_uri(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _bin_label(low: float, high: float) -> str:
    def short(x: float) -> str:
        return f"{x / 1024:g}k" if x >= 1024 else f"{x:g}"

    return short(low) if high - low <= 1 else f"{short(low)}–{short(high)}"


def _hist_axes(fig: Figure, index: int, rows: int, cols: int, title: str, hist: Histogram) -> None:
    ax = fig.add_subplot(rows, cols, index)
    start = next((i for i, c in enumerate(hist.counts) if c), 0)  # skip empty short bins
    counts = hist.counts[start:]
    edges = hist.edges[start:]
    labels = [_bin_label(lo, hi) for lo, hi in itertools.pairwise(edges)]
    ax.bar(range(len(counts)), counts, color=COLOR, width=0.85)
    ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)


def length_histograms(lengths: list[LengthStats], unit: str = "tokens") -> str | None:
    """One small histogram per part (record, user, assistant...), log2 bins."""
    shown = [s for s in lengths if s.tokens.count][:MAX_PARTS]
    if not shown:
        return None
    cols = min(3, len(shown))
    rows = (len(shown) + cols - 1) // cols
    fig = Figure(figsize=(3.4 * cols, 2.5 * rows))
    for i, stats in enumerate(shown, start=1):
        hist = stats.tokens_histogram if unit == "tokens" else stats.chars_histogram
        _hist_axes(fig, i, rows, cols, f"{stats.part} ({unit})", hist)
    fig.tight_layout()
    return _data_uri(fig)


def share_bars(title: str, shares: list[Share], top: int = 15) -> str | None:
    """Horizontal bars of the most common values of a mix (none when every record is
    unlabelled: the table says it all)."""
    shown = shares[:top]
    if not shown or (len(shown) == 1 and shown[0].value in ("unlabelled", "(none)")):
        return None
    fig = Figure(figsize=(6, 0.32 * len(shown) + 0.9))
    ax = fig.add_subplot(1, 1, 1)
    labels = [s.value if len(s.value) <= 40 else s.value[:37] + "..." for s in shown]
    ax.barh(range(len(shown)), [s.rate * 100 for s in shown], color=COLOR)
    ax.set_yticks(range(len(shown)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("% of records", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    for i, s in enumerate(shown):
        ax.text(s.rate * 100, i, f" {s.count:,}", va="center", fontsize=7)
    fig.tight_layout()
    return _data_uri(fig)


def age_histogram(bins: list[Bin], stale_days: int) -> str | None:
    """Records per age band (from created_at)."""
    if not any(b.count for b in bins):
        return None
    fig = Figure(figsize=(6, 2.6))
    ax = fig.add_subplot(1, 1, 1)
    colors = [COLOR_B if b.low >= stale_days else COLOR for b in bins]
    ax.bar(range(len(bins)), [b.count for b in bins], color=colors)
    ax.set_xticks(range(len(bins)), [b.label for b in bins], fontsize=8)
    ax.set_ylabel("records", fontsize=8)
    ax.set_title(f"Age of records (orange: ≥ {stale_days} days)", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _data_uri(fig)


def paired_bars(
    title: str, labels: list[str], a: list[float], b: list[float], names: tuple[str, str]
) -> str | None:
    """Rates of two reports side by side (comparison section), one pair of bars a row."""
    if not labels:
        return None
    fig = Figure(figsize=(7, 0.5 * len(labels) + 1.0))
    ax = fig.add_subplot(1, 1, 1)
    ys = range(len(labels))
    ax.barh([y - 0.2 for y in ys], [v * 100 for v in a], height=0.4, color=COLOR, label=names[0])
    ax.barh([y + 0.2 for y in ys], [v * 100 for v in b], height=0.4, color=COLOR_B, label=names[1])
    ax.set_yticks(list(ys), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("%", fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _data_uri(fig)
