"""``gristmill models``: which models work offline here, whether they load, how fast,
and what the workspace's call cache holds."""

from __future__ import annotations

import importlib.util
import time

import click
from rich.table import Table

from gristmill.commands.common import UserError, console, workspace_from
from gristmill.models.cache import ModelCache
from gristmill.models.errors import ModelError
from gristmill.models.packaged import DEFAULT_EMBEDDER, DEFAULT_LM, PACKAGED, find_packaged
from gristmill.models.protocols import Embedder, LanguageModel, Prompt
from gristmill.models.text import NO_VARIANTS, YES_VARIANTS

# A neutral paragraph for the throughput figure (written for gristmill, no licence issue).
_PARAGRAPH = (
    "A water mill uses the energy of flowing water to turn a wheel, and the turning "
    "wheel drives millstones that grind grain into flour. Mills of this kind were "
    "common across Europe by the Middle Ages; the Domesday Book of 1086 counts more "
    "than five thousand of them in England alone. Later mills drove saws, hammers and "
    "looms, and the same principle survives in hydroelectric turbines today."
)
_ASK = (
    "###\n{text}\n###\nDoes the previous paragraph demarcated within ### and ### contain "
    "informative signal for pre-training a large-language model? An informative datapoint "
    "should be well-formatted, contain some usable knowledge of the world, and strictly NOT "
    "have any harmful, racist, sexist, etc. content.\nOPTIONS:\n- yes\n- no"
)

_BACKENDS = (
    ("transformers", "transformers", 'pip install "transformers>=5" accelerate gguf'),
    ("sentence-transformers", "sentence_transformers", "pip install sentence-transformers"),
    ("openai (HTTP)", "httpx", "pip install httpx"),
    (
        "llama-cpp",
        "llama_cpp",
        'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" '
        'pip install "llama-cpp-python==0.3.36"',
    ),
)


@click.group("models", invoke_without_command=True)
@click.pass_context
def models(ctx: click.Context) -> None:
    """Models that work offline (packaged in PyPI wheels), backends, the call cache.

    --model takes a packaged name (smollm2, minilm), a local path, a backend prefix
    (transformers:, llama-cpp:, sentence-transformers:) or openai:<base_url>/<model>."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_models)


@models.command("list")
def list_models() -> None:
    """Packaged models and backends: installed or not, and how to install them."""
    table = Table("name", "kind", "installed", "what", "install", title="packaged models")
    for p in PACKAGED:
        default = p is DEFAULT_LM or p is DEFAULT_EMBEDDER
        kind = ("language model" if p.kind == "lm" else "embedder") + (
            " (default)" if default else ""
        )
        installed = "yes" if p.path() else "[red]no[/]"
        table.add_row(p.name, kind, installed, p.description, p.install)
    console.print(table)
    backends = Table("backend", "installed", "install", title="backends")
    for label, module, install in _BACKENDS:
        ok = importlib.util.find_spec(module) is not None
        backends.add_row(label, "yes" if ok else "[yellow]no[/]", install)
    console.print(backends)
    console.print("check that they load and how fast: `gristmill models check`")


def _check_lm(spec: str | None, device: str, threads: int | None) -> None:
    from gristmill.models.resolve import resolve_language_model

    t0 = time.perf_counter()
    lm, description = resolve_language_model(spec, device=device, threads=threads)
    loaded = time.perf_counter() - t0
    console.print(f"[bold]{description}[/]")
    console.print(f"  loaded in {loaded:.1f} s, context {lm.context_length} tokens")
    _throughput_lm(lm)


def _throughput_lm(lm: LanguageModel) -> None:
    prompts: list[Prompt] = [
        [
            {"role": "user", "content": _ASK.format(text=_PARAGRAPH)},
            {"role": "assistant", "content": "ANSWER:"},
        ],
        _ASK.format(text=_PARAGRAPH) + "\nANSWER:",
    ]
    try:
        # warm up on another text: llama.cpp would reuse the KV cache of a repeated prompt
        lm.next_token_logprobs(["Water mills grind grain."], ["yes"], top_k=5)
        t0 = time.perf_counter()
        answers = lm.next_token_logprobs(prompts, [*YES_VARIANTS, *NO_VARIANTS], top_k=5)
        dt = time.perf_counter() - t0
    except ModelError as exc:
        console.print(f"  [yellow]next-token log-probabilities failed:[/] {exc}")
        return
    tokens = sum(a.prompt_tokens for a in answers)
    console.print(
        f"  Ask-LLM-style next-token scoring: {len(prompts) / dt:.2f} prompts/s"
        + (f", {tokens / dt:.0f} prompt tokens/s" if tokens else "")
    )


def _check_embedder(spec: str | None, device: str, threads: int | None) -> None:
    from gristmill.models.resolve import resolve_embedder

    t0 = time.perf_counter()
    emb, description = resolve_embedder(spec, device=device, threads=threads)
    loaded = time.perf_counter() - t0
    console.print(f"[bold]{description}[/]")
    console.print(f"  loaded in {loaded:.1f} s, {emb.dim} dimensions")
    _throughput_embedder(emb)


def _throughput_embedder(emb: Embedder) -> None:
    sentences = [s.strip() + "." for s in _PARAGRAPH.split(".") if s.strip()] * 16
    emb.embed(sentences[:4])  # warm-up
    t0 = time.perf_counter()
    emb.embed(sentences)
    dt = time.perf_counter() - t0
    console.print(f"  embedding: {len(sentences) / dt:.0f} sentences/s")


@models.command("check")
@click.option(
    "--model",
    "lms",
    multiple=True,
    metavar="SPEC",
    help="Language model(s) to check (default: the offline defaults, LM and embedder).",
)
@click.option(
    "--embedder", "embedders", multiple=True, metavar="SPEC", help="Embedder(s) to check."
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, or auto.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads for local models (default: the library's own, usually all cores).",
)
def check(
    lms: tuple[str, ...], embedders: tuple[str, ...], device: str, threads: int | None
) -> None:
    """Load models and print load time and a small throughput figure."""
    lm_specs: list[str | None] = list(lms)
    emb_specs: list[str | None] = list(embedders)
    for spec in list(lm_specs):  # a packaged embedder named with --model is checked as one
        if spec and (p := find_packaged(spec)) is not None and p.kind == "embedder":
            lm_specs.remove(spec)
            emb_specs.append(spec)
    if not lm_specs and not emb_specs:
        lm_specs, emb_specs = [None], [None]
    failed = 0
    for lm_spec in lm_specs:
        try:
            _check_lm(lm_spec, device, threads)
        except ModelError as exc:
            failed += 1
            console.print(f"[red]{lm_spec or DEFAULT_LM.name}: {exc}[/]")
    for emb_spec in emb_specs:
        try:
            _check_embedder(emb_spec, device, threads)
        except ModelError as exc:
            failed += 1
            console.print(f"[red]{emb_spec or DEFAULT_EMBEDDER.name}: {exc}[/]")
    if failed:
        raise UserError(f"{failed} model(s) did not load")


@models.command("cache")
@click.option("--clear", is_flag=True, help="Delete the cached calls (all, or --model's).")
@click.option("--model", "model_name", default=None, help="Only this model name (as listed).")
@click.pass_context
def cache_cmd(ctx: click.Context, clear: bool, model_name: str | None) -> None:
    """What the workspace's model-call cache holds (<workspace>/cache/models.sqlite)."""
    ws = workspace_from(ctx)
    store = ModelCache.for_workspace(ws.root)
    if clear:
        n = store.clear(model_name)
        console.print(f"deleted {n:,} cached call(s) from {store.path}")
        return
    rows = [r for r in store.stats() if model_name is None or r[0] == model_name]
    if not rows:
        console.print(f"no cached calls in {store.path}")
        return
    table = Table("model", "method", "calls", "bytes", title=str(store.path))
    for model, method, n, size in rows:
        table.add_row(model, method, f"{n:,}", f"{size:,}")
    console.print(table)


COMMANDS: list[click.Command] = [models]
