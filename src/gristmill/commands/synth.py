"""`gristmill synth`: synthetic data and AI feedback.

gristmill synth generate prompts --model openai:http://gpu1:8000/v1/qwen -n 4
gristmill synth self-instruct seeds --target 100
gristmill synth evol-instruct seeds --rounds 2
gristmill synth categorize seeds-self-instruct && gristmill synth coverage seeds-self-instruct-tagged
gristmill synth judge prompts-gen                   # HelpSteer2 dimensions, 0-4
gristmill synth judge prompts-gen --pairwise        # both orders, position bias cancelled
gristmill synth verify-sample prompts-gen-judged --per-stratum 5
gristmill synth agreement prompts-gen-judged --human prompts-gen-judged-verify@2
gristmill synth card prompts-gen-judged
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from gristmill.commands.common import (
    UserError,
    console,
    err_console,
    friendly_errors,
    model_errors,
    workspace_from,
)

F = TypeVar("F", bound=Callable[..., Any])


def _run_options(fn: F) -> F:
    """--model, --workers, --chunk, --threads, --price-in, --price-out, --output."""
    options = [
        click.option(
            "--model",
            default=None,
            help="Teacher/judge: a packaged name (smollm2), a path, or "
            "openai:<base_url>/<model>[,<base_url>/<model>...][?concurrency=N] "
            "(default: the packaged offline model).",
        ),
        click.option(
            "--workers",
            type=int,
            default=None,
            help="Calls in flight (default: the spec's concurrency, else 8, for openai: "
            "servers; 1 for local models).",
        ),
        click.option(
            "--chunk",
            type=int,
            default=None,
            help="Prompts per call (default: 1 for servers, 4 for local models).",
        ),
        click.option("--threads", type=int, default=None, help="CPU threads of a local model."),
        click.option("--price-in", type=float, default=None, help="USD per million prompt tokens."),
        click.option(
            "--price-out", type=float, default=None, help="USD per million completion tokens."
        ),
        click.option("--output", "-o", default=None, help="Output dataset name."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _options(kw: dict[str, Any]) -> Any:
    from gristmill.synth import RunOptions

    return RunOptions(
        model=kw.pop("model"),
        workers=kw.pop("workers"),
        chunk=kw.pop("chunk"),
        threads=kw.pop("threads"),
        price_in=kw.pop("price_in"),
        price_out=kw.pop("price_out"),
        progress=not kw.pop("quiet"),
    )


def _report(result: Any) -> None:
    card = result.card
    version = result.version
    console.print(f"wrote {version.ref} ({version.row_count} {version.kind} records)")
    calls = card["calls"]
    tokens = card["tokens"]
    line = (
        f"model calls: {calls['model_calls']} (of {calls['requested']} requested; "
        f"{calls['cache_hits']} from the cache); tokens: {tokens['prompt']} in, "
        f"{tokens['completion']} out"
    )
    if card.get("cost_usd") is not None:
        line += f"; cost ${card['cost_usd']:.4f} (uncached ${card['cost_usd_uncached']:.4f})"
    console.print(line)
    failures = card["failures"]
    if failures["total"]:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(failures["by_reason"].items()))
        console.print(
            f"[yellow]failures: {failures['total']}[/] ({reasons}), kept with their raw text "
            f"in {result.failures_file} and attribute synth_failures"
        )
    else:
        console.print("failures: 0")


def _scale(value: str) -> tuple[int, int]:
    low, sep, high = value.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(low), int(high)
    except ValueError:
        raise UserError(f"--scale expects LOW:HIGH integers, e.g. 0:4, got {value!r}") from None


@click.group("synth", short_help="Synthetic data and AI feedback (generate, judge, ...).")
def synth() -> None:
    """Generate responses and instructions with a teacher model, judge them, and bring
    people in to verify a sample. Runs resume from the model-call cache; every failure
    is kept with its raw text and counted in the run card (`gristmill synth card`)."""


@synth.command("generate")
@click.argument("name")
@click.option("-n", "n", type=int, default=1, show_default=True, help="Candidates per prompt.")
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option(
    "--temperature", type=float, default=None, help="Default: 0 for one candidate, else 0.7."
)
@click.option("--top-p", type=float, default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Candidate j uses seed+j.")
@click.option("--system", default=None, help="A system prompt for every record.")
@click.option("--system-from", default=None, help="Draw system prompts from this dataset.")
@click.option("--few-shot", default=None, help="Draw few-shot exchanges from this dataset.")
@click.option("--shots", type=int, default=2, show_default=True)
@click.option(
    "--kind",
    type=click.Choice(["auto", "conversation", "preference"]),
    default="auto",
    show_default=True,
    help="auto: conversation for one candidate, preference for several.",
)
@click.option("--limit", type=int, default=None, help="Only the first N records.")
@_run_options
@click.pass_context
@friendly_errors
@model_errors()
def generate_cmd(ctx: click.Context, /, name: str, **kw: Any) -> None:
    """Responses from a teacher model for every prompt of NAME."""
    from gristmill.synth import GenerateConfig, generate

    ws = workspace_from(ctx)
    options = _options(kw)
    output = kw.pop("output")
    config = GenerateConfig(**kw)
    _report(generate(ws, name, config, options, output))


@synth.command("self-instruct")
@click.argument("seeds")
@click.option("--target", type=int, default=20, show_default=True, help="New instructions.")
@click.option("--threshold", type=float, default=0.7, show_default=True, help="ROUGE-L bound.")
@click.option("--human-examples", type=int, default=6, show_default=True)
@click.option("--machine-examples", type=int, default=2, show_default=True)
@click.option("--prompts-per-round", type=int, default=4, show_default=True)
@click.option("--max-rounds", type=int, default=20, show_default=True)
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=0.7, show_default=True)
@click.option("--top-p", type=float, default=0.5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--category", default=None, help="Ask for tasks of one InstructGPT category.")
@_run_options
@click.pass_context
@friendly_errors
@model_errors()
def self_instruct_cmd(ctx: click.Context, /, seeds: str, **kw: Any) -> None:
    """New instructions grown from the seed tasks of SEEDS (Self-Instruct)."""
    from gristmill.synth import SelfInstructConfig, self_instruct

    ws = workspace_from(ctx)
    options = _options(kw)
    output = kw.pop("output")
    config = SelfInstructConfig(**kw)
    result = self_instruct(ws, seeds, config, options, output)
    _report(result)
    if result.version.row_count < config.target:
        err_console.print(
            f"[yellow]kept {result.version.row_count} of {config.target} wanted after "
            f"{config.max_rounds} rounds; raise --max-rounds or --threshold[/]"
        )


@synth.command("evol-instruct")
@click.argument("name")
@click.option("--rounds", type=int, default=1, show_default=True)
@click.option(
    "--operations",
    default="constraints,deepen,concretize,reasoning,breadth",
    show_default=True,
    help="Evolutions to draw from (in depth: constraints, deepen, concretize, reasoning; "
    "in breadth: breadth).",
)
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option("--response-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=0.7, show_default=True)
@click.option("--same-threshold", type=float, default=0.9, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--limit", type=int, default=None)
@_run_options
@click.pass_context
@friendly_errors
@model_errors()
def evol_cmd(ctx: click.Context, /, name: str, **kw: Any) -> None:
    """Evolve the instructions of NAME (Evol-Instruct) and answer them."""
    from gristmill.synth import EvolConfig, evol_instruct

    ws = workspace_from(ctx)
    options = _options(kw)
    output = kw.pop("output")
    ops = tuple(x.strip() for x in kw.pop("operations").split(",") if x.strip())
    config = EvolConfig(operations=ops, **kw)
    _report(evol_instruct(ws, name, config, options, output))


@synth.command("categorize")
@click.argument("name")
@click.option("--max-tokens", type=int, default=8, show_default=True)
@click.option("--limit", type=int, default=None)
@_run_options
@click.pass_context
@friendly_errors
@model_errors()
def categorize_cmd(ctx: click.Context, /, name: str, **kw: Any) -> None:
    """Tag each instruction of NAME with an InstructGPT task category."""
    from gristmill.synth import categorize

    ws = workspace_from(ctx)
    options = _options(kw)
    result = categorize(ws, name, options, kw["output"], kw["max_tokens"], kw["limit"])
    _report(result)
    _print_coverage(result.version)


def _print_coverage(version: Any) -> None:
    from gristmill.synth.categories import coverage, missing

    rows, untagged = coverage(version)
    table = Table(title=f"task categories in {version.ref}")
    for col in ("category", "records", "share %", "InstructGPT %"):
        table.add_column(col, justify="left" if col == "category" else "right")
    for r in rows:
        table.add_row(r.category, str(r.count), f"{r.share:.1f}", f"{r.reference:.1f}")
    console.print(table)
    console.print(f"untagged: {untagged}")
    short = missing(rows)
    if short:
        console.print(
            "below half of InstructGPT's share: "
            + ", ".join(r.category for r in short)
            + f"\nask for more, e.g.: gristmill synth self-instruct SEEDS --category "
            f"{short[0].category} --target 20"
        )


@synth.command("coverage")
@click.argument("name")
@click.pass_context
@friendly_errors
def coverage_cmd(ctx: click.Context, name: str) -> None:
    """Task-category coverage of NAME beside InstructGPT's mix."""
    _print_coverage(workspace_from(ctx).version(name))


@synth.command("judge")
@click.argument("name")
@click.option(
    "--dimensions",
    default="helpfulness,correctness,coherence,complexity,verbosity",
    show_default=True,
    help="Rating dimensions (HelpSteer2's by default).",
)
@click.option(
    "--describe",
    multiple=True,
    metavar="DIM=TEXT",
    help="What a dimension means (repeatable; built in for HelpSteer2's).",
)
@click.option("--scale", default="0:4", show_default=True, help="LOW:HIGH integer scale.")
@click.option("--pairwise", is_flag=True, help="Compare responses in pairs, in both orders.")
@click.option("--no-repair", is_flag=True, help="Do not re-ask an unparseable answer once.")
@click.option(
    "--prefill",
    is_flag=True,
    help="Start the judge's turn with the JSON opening (local models continue it; "
    "servers usually do not).",
)
@click.option(
    "--verdict",
    type=click.Choice(["text", "logprobs"]),
    default="text",
    show_default=True,
    help="text: parse the judge's JSON (with a rationale); logprobs: the probability-"
    "weighted mean of the score digit as next token (no rationale; local models and "
    "servers that report log-probabilities).",
)
@click.option(
    "--min-mass",
    type=float,
    default=0.05,
    show_default=True,
    help="logprobs: a rating whose scale values get less total probability is a failure.",
)
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option("--limit", type=int, default=None)
@_run_options
@click.pass_context
@friendly_errors
@model_errors()
def judge_cmd(ctx: click.Context, /, name: str, **kw: Any) -> None:
    """Rate (or compare) every response of NAME with a judge model."""
    from gristmill.synth import JudgeConfig, judge

    ws = workspace_from(ctx)
    options = _options(kw)
    low, high = _scale(kw["scale"])
    descriptions = {}
    for pair in kw["describe"]:
        dim, sep, text = pair.partition("=")
        if not sep:
            raise UserError(f"--describe expects DIM=TEXT, got {pair!r}")
        descriptions[dim.strip()] = text.strip()
    config = JudgeConfig(
        dimensions=tuple(d.strip() for d in kw["dimensions"].split(",") if d.strip()),
        descriptions=descriptions,
        low=low,
        high=high,
        pairwise=kw["pairwise"],
        repair=not kw["no_repair"],
        prefill=kw["prefill"],
        max_tokens=kw["max_tokens"],
        limit=kw["limit"],
        verdict=kw["verdict"],
        min_mass=kw["min_mass"],
    )
    _report(judge(ws, name, config, options, kw["output"]))


@synth.command("verify-sample")
@click.argument("run")
@click.option("--per-stratum", type=int, default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--output", "-o", default=None, help="Output dataset (default <run>-verify).")
@click.option(
    "--questions-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the matching annotation question (JSON) for a project.",
)
@click.pass_context
@friendly_errors
def verify_sample_cmd(
    ctx: click.Context,
    run: str,
    per_stratum: int,
    seed: int,
    output: str | None,
    questions_out: Path | None,
) -> None:
    """A stratified sample of judge run RUN (by dimension score bucket) for people to
    verify, as a new dataset version ready for an annotation project."""
    from gristmill.synth import rating_question, verify_sample

    ws = workspace_from(ctx)
    version, report = verify_sample(ws, run, per_stratum, seed, output)
    table = Table(title=f"strata of {run}")
    for col in ("stratum", "available", "sampled"):
        table.add_column(col)
    for stratum, counts in report.items():
        table.add_row(stratum, str(counts["available"]), str(counts["sampled"]))
    console.print(table)
    console.print(f"wrote {version.ref} ({version.row_count} records to verify)")
    if questions_out is not None:
        question = rating_question(ws.version(run))
        questions_out.write_text(json.dumps([question], indent=2))
        console.print(f"annotation question: {questions_out}")


@synth.command("agreement")
@click.argument("run")
@click.option(
    "--human",
    required=True,
    metavar="VERSION|ATTRIBUTE",
    help="A version holding human: ratings (e.g. the app's write-back) or an attribute of RUN.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@friendly_errors
def agreement_cmd(ctx: click.Context, run: str, human: str, as_json: bool) -> None:
    """Human-vs-judge agreement per dimension for judge run RUN."""
    from dataclasses import asdict

    from gristmill.synth import agreement

    rows = agreement(workspace_from(ctx), run, human)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return

    def f(x: float | None) -> str:
        return "—" if x is None else f"{x:.3f}"

    table = Table(title=f"human vs judge on {run}")
    for col in ("dimension", "n", "Spearman", "exact", "±1", "weighted κ", "human", "judge"):
        table.add_column(col, justify="left" if col == "dimension" else "right")
    for r in rows:
        table.add_row(
            r.dimension,
            str(r.n),
            f(r.spearman),
            f(r.exact),
            f(r.within_one),
            f(r.weighted_kappa),
            f(r.human_mean),
            f(r.judge_mean),
        )
    console.print(table)


@synth.command("card")
@click.argument("name")
@click.option("--failures", "show_failures", type=int, default=0, help="Show N failures.")
@click.pass_context
@friendly_errors
def card_cmd(ctx: click.Context, name: str, show_failures: int) -> None:
    """The run card of a synthetic version (model, prompts, parameters, counts,
    failures, tokens, cost) as JSON."""
    from gristmill.synth import read_failures

    version = workspace_from(ctx).version(name)
    card = version.manifest.stats.get("run_card")
    if card is None:
        raise UserError(f"{version.ref} was not made by gristmill synth (no run card)")
    click.echo(json.dumps(card, indent=2))
    for row in read_failures(version)[:show_failures]:
        click.echo(json.dumps(row, ensure_ascii=False))


COMMANDS = [synth]
