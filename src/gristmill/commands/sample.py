"""`gristmill score` and `gristmill sample`: score once, sample at any rate.

gristmill score web --by ask_llm                      # P("yes"), attached to web@N
gristmill score web --by density --workers 2
gristmill sample web --by ask_llm --rate 0.2          # top 20 %
gristmill sample web --where "ask_llm >= 0.1" --by density --rate 0.2 --seed 7 --plot
"""

from __future__ import annotations

import os
from typing import Any

import click
import numpy as np
import yaml
from rich.table import Table

from gristmill.commands.common import (
    UserError,
    console,
    err_console,
    friendly_errors,
    progress_bars,
    workspace_from,
)
from gristmill.pipeline import RunOptions
from gristmill.pipeline.run import WorkerDied

SCORERS = ("ask_llm", "perplexity", "density", "semdedup", "prototypes", "uncertainty")


def _params(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--param expects KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise UserError(f"--param {key}: not a valid value: {exc}") from exc
    return out


def _band(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    low, sep, high = value.partition(":")
    try:
        if not sep:
            raise ValueError(value)
        return float(low), float(high)
    except ValueError:
        raise UserError(f"--band expects LOW:HIGH percentiles, e.g. 10:90, got {value!r}") from None


@click.command("score", short_help="Score a dataset's records (attributes for sampling).")
@click.argument("name")
@click.option("--by", "by", type=click.Choice(SCORERS), required=True, help="The scorer.")
@click.option(
    "--model",
    default=None,
    help="Model: a path, a packaged name (smollm2, minilm), or openai:<base_url>/<model> "
    "(default: the packaged offline model).",
)
@click.option("--as", "attribute", default=None, help="Attribute name (default: the scorer's).")
@click.option("--labels", default=None, help="uncertainty: comma-separated labels to ask a model.")
@click.option(
    "--probabilities",
    default=None,
    metavar="ATTR",
    help="uncertainty: an attribute holding class probabilities.",
)
@click.option(
    "--param",
    "param_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A scorer parameter (repeatable), e.g. --param variant=plain, --param repetitions=500.",
)
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Worker processes (default: 1 for a local model, which already uses every core; "
    "the number of cores for openai: servers).",
)
@click.option("--address", default=None, help="Ray cluster address (default: start a local Ray).")
@click.option("--rows-per-task", type=int, default=20_000, show_default=True)
@click.option("--fresh", is_flag=True, help="Recompute instead of resuming an earlier run.")
@click.pass_context
@friendly_errors
def score_cmd(
    ctx: click.Context,
    name: str,
    by: str,
    model: str | None,
    attribute: str | None,
    labels: str | None,
    probabilities: str | None,
    param_pairs: tuple[str, ...],
    executor: str,
    workers: int | None,
    address: str | None,
    rows_per_task: int,
    fresh: bool,
) -> None:
    """Score NAME (or NAME@N) with a scorer; the scores attach to that version as an
    attribute, with the model and parameters, and serve any number of samples."""
    from gristmill.sampling import score

    workspace = workspace_from(ctx)
    params = _params(param_pairs)
    if model is not None:
        params["model"] = model
    if attribute is not None:
        params["attribute"] = attribute
    if labels is not None:
        params["labels"] = [x.strip() for x in labels.split(",") if x.strip()]
    if probabilities is not None:
        params["probabilities"] = probabilities
    if by == "uncertainty" and "labels" not in params and "probabilities" not in params:
        raise UserError(
            "--by uncertainty needs --labels a,b,... (ask a model) or --probabilities ATTR"
        )
    if by not in ("uncertainty",) and (labels or probabilities):
        raise UserError("--labels and --probabilities are for --by uncertainty")
    if "model" not in params and (by != "uncertainty" or "labels" in params):
        from gristmill.models.packaged import DEFAULT_EMBEDDER, DEFAULT_LM

        default = DEFAULT_LM if by in ("ask_llm", "perplexity", "uncertainty") else DEFAULT_EMBEDDER
        err_console.print(
            f"[dim]model: {default.name} — {default.description} (default; choose with --model)[/]"
        )
    if workers is None:
        remote = str(params.get("model") or "").startswith("openai:")
        workers = (os.cpu_count() or 1) if remote else 1
    options = RunOptions(
        executor=executor,
        workers=workers,
        ray_address=address,
        rows_per_task=rows_per_task,
        fresh=fresh,
    )
    with progress_bars() as bars:
        try:
            result = score(workspace, name, by, params, options, bars.update)
        except WorkerDied as exc:
            raise UserError(str(exc)) from exc
    version = result.output
    table = Table(title=f"score {by} → {version.ref}")
    for col in ("attribute", "records", "min", "p10", "median", "p90", "max", "seconds"):
        table.add_column(col, justify="left" if col == "attribute" else "right")
    seconds = sum(s.seconds for s in result.stats)
    for attr in result.attributes:
        data = version.read_attribute(attr)
        if "score" not in data.column_names or data.num_rows == 0:
            table.add_row(attr, f"{data.num_rows:,}", "", "", "", "", "", f"{seconds:.1f}")
            continue
        values = np.asarray(data.column("score").to_numpy(zero_copy_only=False), dtype=float)
        q = np.nanpercentile(values, [0, 10, 50, 90, 100])
        table.add_row(attr, f"{data.num_rows:,}", *(f"{v:.4g}" for v in q), f"{seconds:.1f}")
    console.print(table)
    for s in result.stats:
        for key, n in sorted(s.counters.items()):
            if n:
                console.print(f"{s.name}: {n:,} {key}")
    console.print(
        f"[bold green]{version.ref}[/]: attribute(s) {', '.join(result.attributes)}; "
        f"sample with `gristmill sample {version.ref} --by {attribute or by} --rate R`"
    )
    if result.resumed:
        console.print(f"resumed: {result.resumed} of {result.tasks} tasks were already finished")


@click.command("sample", short_help="Sample a dataset by its scores (a new version).")
@click.argument("name")
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="SQL",
    help='Keep records where this holds first (repeatable, ANDed), e.g. "ask_llm >= 0.1".',
)
@click.option(
    "--by",
    "by",
    default=None,
    metavar="SCORE",
    help="Then sample by this score: ask_llm (top-k), perplexity (lowest), density (inverse "
    "propensity), semdedup, prototypes, uncertainty, any attribute, or random.",
)
@click.option(
    "--band",
    default=None,
    metavar="LOW:HIGH",
    help="Keep the --by score's percentile band, e.g. 10:90.",
)
@click.option(
    "--eps", type=float, default=None, help="semdedup: drop records with similarity > 1 - eps."
)
@click.option("--rate", type=float, default=None, help="Share of NAME's records to keep, e.g. 0.2.")
@click.option(
    "--size", type=int, default=None, help="Number of records to keep (instead of --rate)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--order",
    type=click.Choice(["desc", "asc", "inverse_propensity", "random"]),
    default=None,
    help="Override how --by ranks (default: the scorer's own order).",
)
@click.option("--output", "-o", default=None, help="Dataset name for the sample (default NAME-BY).")
@click.option("--plot", is_flag=True, help="Write sample.html (score histograms, embedding map).")
@click.option(
    "--map-model", default=None, help="Embedder for the --plot map (default: the scorers')."
)
@click.pass_context
@friendly_errors
def sample_cmd(
    ctx: click.Context,
    name: str,
    where: tuple[str, ...],
    by: str | None,
    band: str | None,
    eps: float | None,
    rate: float | None,
    size: int | None,
    seed: int,
    order: str | None,
    output: str | None,
    plot: bool,
    map_model: str | None,
) -> None:
    """Select records of NAME (or NAME@N): --where filters, then --band/--eps, then --by
    at --rate. The result is a new version whose manifest records the sampler, rate,
    seed and chain; the kept records' scores come along as attributes."""
    from gristmill.sampling import Plan, sample

    workspace = workspace_from(ctx)
    plan = Plan(
        by=by,
        rate=rate,
        size=size,
        seed=seed,
        where=where,
        band=_band(band),
        eps=eps,
        order=order,
    )
    result = sample(workspace, name, plan, output=output, plot=plot, map_model=map_model)
    table = Table(title=f"sample {result.source.ref} → {result.version.ref}")
    table.add_column("link")
    table.add_column("records", justify="right")
    for step in result.selection.steps:
        table.add_row(str(step["link"]), f"{step['records']:,}")
    console.print(table)
    for warning in result.selection.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}")
    console.print(
        f"[bold green]{result.version.ref}[/]: kept {result.selection.kept:,} of "
        f"{result.source.row_count:,} (seed {seed})"
    )
    if result.report:
        console.print(f"plots: {result.report}")


COMMANDS: list[click.Command] = [score_cmd, sample_cmd]
