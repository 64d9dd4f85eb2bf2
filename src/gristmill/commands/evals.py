"""`gristmill eval`: run tasks against models, compare runs, rank systems, check
contamination, write reports and export tasks.

gristmill eval run gsm8k --model smollm2 --limit 20
gristmill eval compare eval-gsm8k-smollm2@1 eval-gsm8k-tuned@1
gristmill eval rank judgements --html ladder.html
gristmill eval contamination train@2 gsm8k --drop
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson
from rich.table import Table

from gristmill.commands.common import (
    UserError,
    console,
    err_console,
    friendly_errors,
    model_errors,
    progress_bars,
    workspace_from,
)


class _InOrder(click.Group):
    """List the subcommands in the order of the work (run, compare, …), not A-Z."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(name="eval", cls=_InOrder)
def eval_group() -> None:
    """Evaluate models on eval sets; compare and rank them; check contamination."""


@eval_group.command(name="tasks")
def tasks_cmd() -> None:
    """List the ready tasks (a YAML path works wherever a task name does)."""
    from gristmill.evals.tasks import ready_tasks

    table = Table("task", "description")
    for name, description in ready_tasks().items():
        table.add_row(name, description)
    console.print(table)


def _load_lm(spec: str | None, ws: Any, threads: int | None, device: str, cache: bool) -> Any:
    from gristmill.models import ModelCache, resolve_language_model

    with model_errors():
        lm, description = resolve_language_model(
            spec,
            device=device,
            threads=threads,
            cache=ModelCache.for_workspace(ws.root) if cache else None,
        )
    err_console.print(f"model: {description}")
    return lm


@eval_group.command(name="run")
@click.argument("task")
@click.option(
    "--model",
    "-m",
    "model",
    default=None,
    help="Model to evaluate (--model values of `gristmill models`).",
)
@click.option("--limit", type=int, default=None, help="Only the first N items.")
@click.option(
    "--sample", type=int, default=None, help="A random sample of N items (seeded by --seed)."
)
@click.option("--name", default=None, help="Dataset name of the run (default eval-<task>-<model>).")
@click.option(
    "--num-fewshot", type=int, default=None, help="Few-shot examples (default: the task's)."
)
@click.option(
    "--max-tokens", type=int, default=None, help="Generation length (default: the task's)."
)
@click.option(
    "--judge",
    default=None,
    help="Judge model for model_graded (default: the task's, else the packaged default).",
)
@click.option(
    "--batch-size", type=int, default=8, show_default=True, help="Prompts per model call."
)
@click.option(
    "--concurrency", type=int, default=1, show_default=True, help="Model calls in flight."
)
@click.option("--threads", type=int, default=None, help="CPU threads of a local model.")
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--no-cache", is_flag=True, help="Do not read or write the workspace's model call cache."
)
@click.option("--resamples", type=int, default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--html",
    "html",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the HTML report here.",
)
@click.pass_context
@friendly_errors
def run_cmd(
    ctx: click.Context,
    task: str,
    model: str | None,
    limit: int | None,
    sample: int | None,
    name: str | None,
    num_fewshot: int | None,
    max_tokens: int | None,
    judge: str | None,
    batch_size: int,
    concurrency: int,
    threads: int | None,
    device: str,
    no_cache: bool,
    resamples: int,
    seed: int,
    html: Path | None,
) -> None:
    """Run TASK (a ready task name or a YAML file) against --model; the per-sample log
    is stored as a dataset version (printed) and the scores are summarised."""
    from gristmill.evals.runner import RunOptions, run_eval
    from gristmill.evals.tasks import load_task
    from gristmill.evals.terminal import print_run

    ws = workspace_from(ctx)
    spec = load_task(task)
    if limit is not None and limit < 1:
        raise UserError("--limit must be at least 1")
    lm = _load_lm(model, ws, threads, device, not no_cache)
    judge_lm = None
    if "model_graded" in [m.name for m in spec.metrics]:
        judge_spec = judge or (spec.grader.model if spec.grader else None)
        judge_lm = lm if judge_spec is None and model is None else None
        if judge_lm is None:
            judge_lm = _load_lm(judge_spec, ws, threads, device, not no_cache)
    if sample is not None and sample < 1:
        raise UserError("--sample must be at least 1")
    options = RunOptions(
        limit=limit,
        sample=sample,
        name=name,
        num_fewshot=num_fewshot,
        max_tokens=max_tokens,
        batch_size=batch_size,
        concurrency=concurrency,
        resamples=resamples,
        seed=seed,
    )
    with progress_bars(err_console) as progress:
        run = run_eval(
            ws,
            spec,
            lm,
            model_spec=model,
            judge=judge_lm,
            options=options,
            say=lambda text: err_console.print(text),
            progress=progress,
        )
    print_run(console, run.version.manifest.stats, f"{run.task} · {run.model} · {run.n} items")
    if html is not None:
        from gristmill.evals.report import write_run_report

        write_run_report(run.version, html)
        console.print(f"report: {html}")
    calls = getattr(lm, "backend_calls", None)
    if calls is not None:
        err_console.print(f"model calls: {calls} (the rest from the cache)")
    console.print(f"run stored as [bold]{run.version.ref}[/]")


@eval_group.command(name="compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--resamples", type=int, default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.pass_context
@friendly_errors
def compare_cmd(
    ctx: click.Context, run_a: str, run_b: str, resamples: int, seed: int, as_json: bool
) -> None:
    """Per-metric B − A on the items both runs scored, with a paired bootstrap 95% CI
    and p-value."""
    from gristmill.evals.compare import compare_runs
    from gristmill.evals.terminal import print_comparison

    ws = workspace_from(ctx)
    comp = compare_runs(ws.version(run_a), ws.version(run_b), resamples, seed)
    if as_json:
        click.echo(orjson.dumps(comp.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print_comparison(console, comp)


@eval_group.command(name="report")
@click.argument("run")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HTML file (default: report.html in the run's folder).",
)
@click.pass_context
@friendly_errors
def report_cmd(ctx: click.Context, run: str, output: Path | None) -> None:
    """Summarise a stored run in the terminal and write its HTML report."""
    from gristmill.evals.compare import run_samples
    from gristmill.evals.report import write_run_report
    from gristmill.evals.terminal import print_run

    version = workspace_from(ctx).version(run)
    run_samples(version)  # checks it is a run
    params = version.manifest.params
    print_run(
        console,
        version.manifest.stats,
        f"{params.get('task')} · {params.get('model_name')} · {version.ref}",
    )
    path = write_run_report(version, output or version.path / "report.html")
    console.print(f"report: {path}")


@eval_group.command(name="judge")
@click.argument("runs", nargs=-1, required=True)
@click.option("--judge", default=None, help="Judge model (default: the packaged default).")
@click.option("--name", required=True, help="Dataset name for the judgements (preference records).")
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option(
    "--verdict",
    type=click.Choice(["text", "logprobs"]),
    default="text",
    show_default=True,
    help="Read [[A]]/[[B]]/[[C]] from the judge's text, or take the likeliest next token "
    "after 'Verdict: [[' (small local judges).",
)
@click.option("--threads", type=int, default=None)
@click.option("--device", default="auto", show_default=True)
@click.pass_context
@friendly_errors
def judge_cmd(
    ctx: click.Context,
    runs: tuple[str, ...],
    judge: str | None,
    name: str,
    max_tokens: int,
    verdict: str,
    threads: int | None,
    device: str,
) -> None:
    """A judge model compares the answers of RUNS pairwise on their shared items; the
    verdicts become preference records for `gristmill eval rank`."""
    from gristmill.evals.judge import judge_runs

    if len(runs) < 2:
        raise UserError("judge needs at least two runs")
    ws = workspace_from(ctx)
    versions = [ws.version(r) for r in runs]
    lm = _load_lm(judge, ws, threads, device, True)
    with progress_bars(err_console) as progress:
        shared = len(versions) * (len(versions) - 1) // 2 * max(v.row_count for v in versions)
        version, written, unreadable = judge_runs(
            versions, lm, name, max_tokens, progress("judging", shared), verdict
        )
    note = f", {unreadable} unreadable verdicts skipped" if unreadable else ""
    console.print(f"{written} judgements{note} stored as [bold]{version.ref}[/]")


@eval_group.command(name="pairs")
@click.argument("runs", nargs=-1, required=True)
@click.option("--name", required=True, help="Dataset name for the unranked pairs.")
@click.pass_context
@friendly_errors
def pairs_cmd(ctx: click.Context, runs: tuple[str, ...], name: str) -> None:
    """The answers of RUNS side by side, two at a time, as unranked preference records
    for people to judge in the annotation app (then `gristmill eval rank`)."""
    from gristmill.evals.judge import pairs_for_people

    if len(runs) < 2:
        raise UserError("pairs needs at least two runs")
    ws = workspace_from(ctx)
    version = pairs_for_people([ws.version(r) for r in runs], name)
    console.print(f"{version.row_count} pairs stored as [bold]{version.ref}[/]")


@eval_group.command(name="rank")
@click.argument("judgements")
@click.option(
    "--prior",
    type=float,
    default=0.1,
    show_default=True,
    help="Virtual ties between systems that met (keeps ratings finite).",
)
@click.option("--resamples", type=int, default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--html",
    "html",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the rating ladder here.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def rank_cmd(
    ctx: click.Context,
    judgements: str,
    prior: float,
    resamples: int,
    seed: int,
    html: Path | None,
    as_json: bool,
) -> None:
    """Bradley-Terry ratings (Elo scale) with bootstrap CIs from pairwise judgements
    (preference records: people's rankings or a judge's)."""
    from gristmill.evals.rank import judgements_of, rank_systems

    version = workspace_from(ctx).version(judgements)
    records = judgements_of(version)
    ratings = rank_systems(records, prior=prior, resamples=resamples, seed=seed)
    if as_json:
        click.echo(
            orjson.dumps([r.as_dict() for r in ratings], option=orjson.OPT_INDENT_2).decode()
        )
    else:
        console.print(
            f"{version.ref}: {sum(len(p) for p in records)} comparisons in {len(records)} records"
        )
        table = Table("#", "system", "rating", "95% CI", "wins", "losses", "ties")
        for i, r in enumerate(ratings, 1):
            table.add_row(
                str(i),
                r.system,
                f"{r.rating:.0f}",
                f"[{r.low:.0f}, {r.high:.0f}]",
                f"{r.wins:g}",
                f"{r.losses:g}",
                f"{r.ties:g}",
            )
        console.print(table)
    if html is not None:
        from gristmill.evals.report import write_ladder

        write_ladder(ratings, html, f"Ratings from {version.ref}")
        console.print(f"ladder: {html}")


@eval_group.command(name="contamination")
@click.argument("train")
@click.argument("evals", nargs=-1, required=True)
@click.option("--ngram", type=int, default=13, show_default=True)
@click.option(
    "--min-overlap",
    type=int,
    default=1,
    show_default=True,
    help="Shared n-grams that make a collision.",
)
@click.option(
    "--drop", is_flag=True, help="Write a new version of TRAIN without the contaminated records."
)
@click.option(
    "--output",
    "-o",
    default=None,
    help="With --drop: dataset name for the clean version (default TRAIN's).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the full report as JSON.",
)
@click.option("--show", type=int, default=20, show_default=True, help="Collisions to list.")
@click.pass_context
@friendly_errors
def contamination_cmd(
    ctx: click.Context,
    train: str,
    evals: tuple[str, ...],
    ngram: int,
    min_overlap: int,
    drop: bool,
    output: str | None,
    json_path: Path | None,
    show: int,
) -> None:
    """Eval items of EVALS found in TRAIN (word n-gram overlap, longest common
    substring); --drop writes a clean version."""
    from gristmill.evals.contamination import contamination_report, drop_contaminated, report_json

    ws = workspace_from(ctx)
    train_v = ws.version(train)
    eval_vs = [ws.version(e) for e in evals]
    report = contamination_report(train_v, eval_vs, ngram, min_overlap)
    console.print(
        f"{train_v.ref} ({report.records_checked} records) against {', '.join(report.evals)} "
        f"({report.eval_items} items), word {ngram}-grams: "
        f"[bold]{len(report.records)}[/] contaminated records, [bold]{len(report.items)}[/] eval items hit"
    )
    if report.collisions:
        table = Table("record", "eval item", "n-grams", "LCS words", "longest common substring")
        for c in report.collisions[:show]:
            table.add_row(
                c.record_id, f"{c.eval}:{c.item_id}", str(c.ngrams), str(c.lcs_words), c.lcs_text
            )
        console.print(table)
        if len(report.collisions) > show:
            console.print(f"… {len(report.collisions) - show} more (--show N, --json FILE)")
    if json_path is not None:
        json_path.write_bytes(report_json(report))
        console.print(f"report: {json_path}")
    if drop:
        if not report.records:
            console.print("nothing to drop")
            return
        clean = drop_contaminated(train_v, eval_vs, set(report.records), output, ngram)
        console.print(
            f"dropped {len(report.records)} records: clean version [bold]{clean.ref}[/] ({clean.row_count} records)"
        )


@eval_group.command(name="export")
@click.argument("task")
@click.option("--to", "target", type=click.Choice(["lm-eval", "inspect"]), required=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="lm-eval: a folder; inspect: a .jsonl file.",
)
@click.option("--limit", type=int, default=None)
@click.pass_context
@friendly_errors
def export_cmd(ctx: click.Context, task: str, target: str, output: Path, limit: int | None) -> None:
    """Write TASK as an lm-eval-harness task (YAML + JSONL) or an inspect_ai dataset."""
    from gristmill.evals.export import export_inspect, export_lm_eval
    from gristmill.evals.runner import ensure_dataset, load_items
    from gristmill.evals.tasks import load_task

    ws = workspace_from(ctx)
    spec = load_task(task)
    version = ensure_dataset(
        ws, spec.dataset, spec.data, spec.format, spec, lambda t: err_console.print(t)
    )
    items = load_items(version, limit)
    if target == "lm-eval":
        path = export_lm_eval(spec, items, output)
        console.print(
            f"{len(items)} items: {path} (lm_eval --include_path {output} --tasks gristmill_{spec.name})"
        )
    else:
        path = export_inspect(spec, items, output)
        console.print(f"{len(items)} items: {path} (inspect_ai json_dataset)")


@eval_group.command(name="failures")
@click.argument("run")
@click.option("--name", required=True, help="Dataset name for the training conversations.")
@click.option(
    "--keep-model-answer",
    is_flag=True,
    help="Keep the model's answer (to correct in the app) instead of the reference.",
)
@click.option(
    "--below",
    type=float,
    default=None,
    help="Graded tasks: failed when the first metric is below this.",
)
@click.pass_context
@friendly_errors
def failures_cmd(
    ctx: click.Context, run: str, name: str, keep_model_answer: bool, below: float | None
) -> None:
    """Failed samples of RUN as conversations answered with the reference: SFT data."""
    from gristmill.evals.failures import failures_to_sft

    version, written, skipped = failures_to_sft(
        workspace_from(ctx).version(run), name, keep_model_answer, below
    )
    if version is None:
        console.print(
            "no failed samples" + (f" ({skipped} without a reference)" if skipped else "")
        )
        return
    note = f", {skipped} without a reference skipped" if skipped else ""
    console.print(f"{written} failed samples{note} stored as [bold]{version.ref}[/]")


@eval_group.command(name="human")
@click.argument("annotated")
@click.option("--question", required=True, help="The rating question of the app project.")
@click.option("--dimension", default=None, help="The rating dimension, when it has several.")
@click.option("--name", default=None, help="Dataset name (default: the run's).")
@click.pass_context
@friendly_errors
def human_cmd(
    ctx: click.Context, annotated: str, question: str, dimension: str | None, name: str | None
) -> None:
    """People's ratings of a run (written back by the annotation app) as the
    human_graded metric of a new run version."""
    from gristmill.evals.human import add_human_grades
    from gristmill.evals.terminal import print_run

    version, rated, missing = add_human_grades(
        workspace_from(ctx).version(annotated), question, dimension, name
    )
    print_run(console, version.manifest.stats, f"{version.ref} · human grades from {annotated}")
    note = f", {missing} without a rating (left out)" if missing else ""
    console.print(f"{rated} rated samples{note}: run stored as [bold]{version.ref}[/]")


COMMANDS = [eval_group]
