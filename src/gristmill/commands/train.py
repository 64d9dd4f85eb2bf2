"""``gristmill train sft|dpo|kto``: fine-tune a model on a dataset version with TRL."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from gristmill.commands.common import (
    console,
    err_console,
    friendly_errors,
    model_errors,
    workspace_from,
)
from gristmill.io.splits import PROMPT
from gristmill.records.pairs import PairOptions, PairStrategy, RejectedChoice
from gristmill.train.options import Method, SftFormat, TrainOptions, parse_lora

F = TypeVar("F", bound=Callable[..., Any])


def _common(fn: F) -> F:
    """The options every method shares (applied bottom-up, listed top-down in --help)."""
    options = [
        click.option(
            "--data",
            "-d",
            "ref",
            required=True,
            metavar="NAME[@VERSION]",
            help="Dataset version to train on (exported in the method's TRL format).",
        ),
        click.option(
            "--model",
            "-m",
            "model_spec",
            default="smollm2",
            show_default=True,
            help="Base model: a transformers folder, a .gguf file, or a packaged name.",
        ),
        click.option(
            "--output",
            "-o",
            type=click.Path(path_type=Path, file_okay=False),
            default=None,
            help="Run folder for the model, data and run card "
            "(default: <workspace>/runs/<method>-<name>-v<N>).",
        ),
        click.option("--overwrite", is_flag=True, help="Replace an earlier run in --output."),
        click.option(
            "--lora",
            "lora_text",
            is_flag=False,
            flag_value="default",
            default=None,
            metavar="[r=16,alpha=32,dropout=0.05,targets=q_proj,v_proj]",
            help="Train a PEFT LoRA adapter (alone: defaults, every linear layer); "
            "saved in adapter/ and merged into the model.",
        ),
        click.option("--epochs", type=float, default=1.0, show_default=True),
        click.option("--max-steps", type=int, default=None, help="Stop after N steps."),
        click.option("--lr", type=float, default=None, help="Learning rate (default: TRL's)."),
        click.option("--batch-size", type=int, default=None, help="Per device (default: TRL's)."),
        click.option("--grad-accum", type=int, default=1, show_default=True),
        click.option("--max-length", type=int, default=None, help="Tokens (default: TRL's)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option(
            "--eval-split",
            type=float,
            default=0.0,
            show_default=True,
            help="Fraction held out for eval loss (split by --group-by, seeded).",
        ),
        click.option("--eval-steps", type=int, default=None, help="Eval every N steps too."),
        click.option(
            "--group-by",
            default=PROMPT,
            show_default=True,
            help="What the eval split keeps together (as in `gristmill export`).",
        ),
        click.option("--logging-steps", type=int, default=10, show_default=True),
        click.option(
            "--conversational/--standard",
            "conversational",
            default=None,
            help="TRL form (default: conversational where the data has messages).",
        ),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda."),
        click.option("--threads", type=int, default=None, help="CPU threads for torch."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _preference(fn: F) -> F:
    options = [
        click.option("--beta", type=float, default=None, help="Deviation from the reference."),
        click.option("--dimension", default=None, help="Score candidates on this dimension."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _pairs(fn: F) -> F:
    options = [
        click.option(
            "--pairs",
            type=click.Choice([s.value for s in PairStrategy]),
            default=None,
            help="Pairs from ranks or ratings (as in `gristmill export`).",
        ),
        click.option(
            "--rejected",
            type=click.Choice([r.value for r in RejectedChoice]),
            default=RejectedChoice.WORST.value,
            show_default=True,
            help="The rejected candidate: the worst, or a seeded random one below the chosen.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _command_line(ctx: click.Context) -> str:
    """The command as typed, near enough to rerun (for the run card)."""
    parts = ctx.command_path.split()
    for name, value in ctx.params.items():
        if value is None or value is False:
            continue
        param = next(p for p in ctx.command.params if p.name == name)
        flag = param.opts[-1] if isinstance(param, click.Option) else None
        if flag is None:
            parts.append(str(value))
        elif value is True:
            parts.append(flag)
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)


def _run(ctx: click.Context, method: Method, params: dict[str, Any]) -> None:
    from gristmill.train import default_output, train

    workspace = workspace_from(ctx)
    version = workspace.version(params["ref"])
    output = params["output"] or default_output(workspace, version, method)
    pairs = PairOptions(
        strategy=PairStrategy(params["pairs"]) if params.get("pairs") else None,
        rejected=RejectedChoice(params.get("rejected") or RejectedChoice.WORST.value),
        dimension=params.get("dimension"),
        seed=params["seed"],
    )
    options = TrainOptions(
        method=method,
        output=output,
        epochs=params["epochs"],
        max_steps=params["max_steps"],
        learning_rate=params["lr"],
        batch_size=params["batch_size"],
        grad_accum=params["grad_accum"],
        max_length=params["max_length"],
        seed=params["seed"],
        lora=parse_lora(params["lora_text"]),
        eval_fraction=params["eval_split"],
        group_by=params["group_by"],
        eval_steps=params["eval_steps"],
        logging_steps=params["logging_steps"],
        beta=params.get("beta"),
        sft_format=SftFormat(params.get("sft_format") or SftFormat.PROMPT_COMPLETION),
        conversational=params["conversational"],
        pairs=pairs,
        label_threshold=params.get("label_threshold"),
        device=params["device"],
        threads=params["threads"],
        overwrite=params["overwrite"],
    )
    with model_errors():
        result = train(
            workspace,
            version.ref,
            params["model_spec"],
            options,
            log=lambda text: err_console.print(f"[bold]train[/] {text}"),
            command=_command_line(ctx),
        )
    _summary(result)


def _summary(result: Any) -> None:
    card = result.card
    training, export = card.training, card.data["export"]
    table = Table(
        title=f"{card.method} on {card.data['dataset']}", title_justify="left", show_header=False
    )
    table.add_column("")
    table.add_column("")
    table.add_row("steps", f"{training['steps']} ({training['epochs']:.3g} epochs)")
    table.add_row("final train loss", _num(training["final_train_loss"]))
    if training["final_eval_loss"] is not None:
        table.add_row("final eval loss", _num(training["final_eval_loss"]))
    rows = ", ".join(f"{s} {n:,}" for s, n in export["rows_written"].items())
    table.add_row("data", f"{export['format']}: {rows}")
    for reason, n in export["skipped"].items():
        table.add_row("skipped", f"{n:,} × {reason}")
    for split, n in card.data.get("trainer_dropped", {}).items():
        if n:
            table.add_row("dropped by trainer", f"{n:,} {split} rows (nothing left at max_length)")
    table.add_row("device", f"{card.device['device']} ({card.device['precision']})")
    table.add_row("wall time", f"{card.wall_time_s:.1f} s")
    weights = "merged LoRA" if card.lora else "full"
    table.add_row("model", f"{result.output} ({weights})")
    if card.output.get("adapter"):
        table.add_row("adapter", str(result.output / card.output["adapter"]))
    table.add_row("run card", str(result.card_path))
    console.print(table)
    console.print(f"evaluate it: gristmill eval run TASK --model {result.output}")


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


@click.group("train", short_help="Fine-tune a model on a dataset version (TRL: SFT, DPO, KTO).")
def train_group() -> None:
    """Fine-tune a model with TRL on a dataset version, exported by gristmill's own
    TRL exporters; writes the model, the exact data and a run card to one folder."""


@train_group.command("sft")
@_common
@click.option(
    "--format",
    "sft_format",
    type=click.Choice([f.value for f in SftFormat]),
    default=SftFormat.PROMPT_COMPLETION.value,
    show_default=True,
    help="Conversations as prompt-completion (loss on the last assistant turn) or "
    "language modeling (loss on every turn). Documents are always language modeling.",
)
@click.pass_context
@friendly_errors
def sft_command(ctx: click.Context, /, **params: Any) -> None:
    """Supervised fine-tuning on a conversation or document dataset."""
    _run(ctx, Method.SFT, params)


@train_group.command("dpo")
@_common
@_preference
@_pairs
@click.pass_context
@friendly_errors
def dpo_command(ctx: click.Context, /, **params: Any) -> None:
    """Direct preference optimisation on a preference dataset (one pair per record)."""
    _run(ctx, Method.DPO, params)


@train_group.command("kto")
@_common
@_preference
@click.option(
    "--label-threshold",
    type=float,
    default=None,
    help="Label unlabelled candidates desirable when their mean rating is at least this.",
)
@click.pass_context
@friendly_errors
def kto_command(ctx: click.Context, /, **params: Any) -> None:
    """Kahneman-Tversky optimisation on a preference dataset (one row per labelled
    candidate)."""
    _run(ctx, Method.KTO, params)


COMMANDS: list[click.Command] = [train_group]
