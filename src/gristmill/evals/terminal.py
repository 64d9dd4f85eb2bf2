"""Terminal summaries (rich tables) of runs, comparisons, rankings and contamination."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from gristmill.evals.compare import Comparison

SHARE_METRICS = frozenset({"exact_match", "acc", "acc_norm", "accuracy", "macro_f1", "f1"})
SHARE_METRICS |= {"rouge1", "rouge2", "rougeL", "precision", "recall"}


def fmt(value: float | None, metric: str = "", signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    sign = "+" if signed else ""
    if metric in SHARE_METRICS:
        return f"{value:{sign}.3f}"
    return f"{value:{sign}.2f}" if abs(value) < 1000 else f"{value:{sign},.0f}"


def ci(est: dict[str, Any], metric: str) -> str:
    return f"[{fmt(est['low'], metric)}, {fmt(est['high'], metric)}]"


def print_run(console: Console, stats: dict[str, Any], title: str) -> None:
    console.print(f"[bold]{title}[/]")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("n", justify="right")
    for name, est in stats.get("metrics", {}).items():
        table.add_row(name, fmt(est["value"], name), ci(est, name), str(est["n"]))
    console.print(table)
    by_tag: dict[str, dict[str, Any]] = stats.get("by_tag") or {}
    if by_tag:
        names = [m for m in stats.get("metrics", {}) if any(m in per for per in by_tag.values())]
        tags = Table(title="by tag", title_justify="left")
        tags.add_column("tag")
        tags.add_column("n", justify="right")
        for name in names:
            tags.add_column(f"{name} [95% CI]", justify="right")
        for tag, per in by_tag.items():
            n = next(iter(per.values()))["n"] if per else 0
            cells = [
                f"{fmt(per[m]['value'], m)} {ci(per[m], m)}" if m in per else "–" for m in names
            ]
            tags.add_row(tag, str(n), *cells)
        console.print(tags)
    report = stats.get("classification")
    if report:
        print_confusion(console, report)
    if stats.get("unparsed_ratings"):
        console.print(
            f"[yellow]{stats['unparsed_ratings']} judge answers had no readable rating "
            "(left out of model_graded)[/]"
        )


def print_confusion(console: Console, report: dict[str, Any]) -> None:
    labels: list[str] = report["labels"]
    short = [lab if len(lab) <= 12 else lab[:11] + "…" for lab in labels]
    table = Table(title="confusion matrix (rows: gold, columns: predicted)", title_justify="left")
    table.add_column("gold \\ pred")
    for s in short:
        table.add_column(s, justify="right")
    table.add_column("precision", justify="right")
    table.add_column("recall", justify="right")
    table.add_column("F1", justify="right")
    for label, s, row in zip(labels, short, report["matrix"], strict=True):
        per = report["per_class"][label]
        table.add_row(
            s,
            *(str(v) for v in row),
            fmt(per["precision"]["value"], "precision"),
            fmt(per["recall"]["value"], "recall"),
            fmt(per["f1"]["value"], "f1"),
        )
    console.print(table)


def print_comparison(console: Console, comp: Comparison) -> None:
    if comp.task_a != comp.task_b:
        console.print(
            f"[yellow]warning: the runs are of different tasks ({comp.task_a}, {comp.task_b})[/]"
        )
    extra = ""
    if comp.only_a or comp.only_b:
        extra = f" ({comp.only_a} only in A, {comp.only_b} only in B: left out)"
    console.print(f"A = {comp.a}, B = {comp.b}: {comp.shared} shared items{extra}")
    table = Table(title="B − A, paired bootstrap", title_justify="left")
    for col in ("metric", "A", "B", "B − A", "95% CI", "p-value", "n"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, d in comp.metrics.items():
        better = comp.higher_is_better.get(name, True)
        significant = d.low > 0 or d.high < 0
        colour = ""
        if significant:
            colour = "green" if (d.diff > 0) == better else "red"
        diff = fmt(d.diff, name, signed=True)
        table.add_row(
            name,
            fmt(d.a, name),
            fmt(d.b, name),
            f"[{colour}]{diff}[/]" if colour else diff,
            f"[{fmt(d.low, name, True)}, {fmt(d.high, name, True)}]",
            f"{d.p_value:.3f}",
            str(d.n),
        )
    console.print(table)
