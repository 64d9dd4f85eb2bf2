"""Local ``transformers`` language model: CPU or GPU, padded batches, chat templates.

The packaged SmolLM2 ships as a GGUF file; transformers dequantises it (≈20 s), so
the dense model is saved once under the cache folder and loaded from there (≈3 s).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gristmill.models.errors import ModelError
from gristmill.models.packaged import cache_root
from gristmill.models.protocols import Generation, GenerationParams, NextTokens, Prompt
from gristmill.models.text import continues_last_message, cut_at_stop

DTYPES = ("auto", "bfloat16", "float16", "float32")

PACK_TOKENS = 1024  # tokens per packed row of continuations (see ``_pack_rows``)

# A context's tokens and some of its continuations: (pair index, continuation tokens).
Unit = tuple[list[int], list[tuple[int, list[int]]]]


def _unit_length(unit: Unit) -> int:
    return len(unit[0]) + sum(len(c) for _, c in unit[1])


def _torch() -> Any:
    import torch

    return torch


def pick_device(device: str = "auto") -> str:
    """``auto``: the GPU when there is one, else the CPU."""
    if device != "auto":
        return device
    return "cuda" if _torch().cuda.is_available() else "cpu"


def set_threads(threads: int | None) -> None:
    """Set torch's intra-op CPU threads (process-wide) when asked."""
    if threads is not None and threads > 0:
        _torch().set_num_threads(threads)


def pick_dtype(dtype: str, device: str) -> Any:
    """``auto`` is bfloat16 everywhere: on CPU it measured ~2x faster than float32
    (MODELS.md), on GPU it is the native width."""
    torch = _torch()
    if dtype not in DTYPES:
        raise ModelError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    return torch.bfloat16 if dtype == "auto" else getattr(torch, dtype)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (POSIX ``flock``; no lock where there is none), so
    one process converts while the others wait and then read its result."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def converted_gguf(gguf: Path, dtype: Any, cache_dir: Path | None = None) -> Path:
    """A transformers folder holding the GGUF model dequantised to ``dtype``, made once.

    Keyed by file name, size and dtype; made under a lock (other processes wait for
    it) in a temporary folder renamed into place, so nobody sees half a model."""
    root = cache_dir or cache_root()
    width = str(dtype).removeprefix("torch.")
    target = root / f"{gguf.stem}-{gguf.stat().st_size}-{width}"
    if (target / "config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f".{target.name}.lock"):
        if not (target / "config.json").is_file():
            _convert(gguf, dtype, root, target)
    return target


def _convert(gguf: Path, dtype: Any, root: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM as auto_lm
    from transformers import AutoTokenizer

    AutoModelForCausalLM: Any = auto_lm
    torch = _torch()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantised = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=dtype
        )
        config = quantised.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # a plain dense model from now on
        dense = AutoModelForCausalLM.from_config(config, dtype=dtype)
        with torch.no_grad():
            dense.load_state_dict(quantised.state_dict())
        dense.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        for f in tmp.iterdir():  # mkdtemp and safetensors make owner-only files
            f.chmod(0o644)
        tmp.chmod(0o755)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _folder_ident(folder: Path) -> str:
    """A local folder's name plus a fingerprint of its weight files (name, size,
    mtime), so the call cache never answers for a model retrained in the same place."""
    import hashlib

    digest = hashlib.blake2b(digest_size=4)
    for f in sorted(folder.iterdir()):
        if f.suffix in (".safetensors", ".bin", ".pt") or f.name == "config.json":
            stat = f.stat()
            digest.update(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return f"{folder.resolve().name}-{digest.hexdigest()}"


def _stop_on_strings(tokenizer: Any, stops: Sequence[str], prompt_len: int) -> Any:
    """A stopping criterion that decodes only the last few new tokens of each row
    (transformers' own ``stop_strings`` builds tables over the whole vocabulary first,
    seconds per call for a 49k vocabulary)."""
    from transformers import StoppingCriteria

    torch = _torch()
    tail = max(len(s) for s in stops) + 2  # every token is at least one character

    class StopOnStrings(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            texts = tokenizer.batch_decode(
                input_ids[:, prompt_len:][:, -tail:], skip_special_tokens=True
            )
            hit = [any(s and s in t for s in stops) for t in texts]
            return torch.tensor(hit, dtype=torch.bool, device=input_ids.device)

    return StopOnStrings()


class TransformersLM:
    """A causal LM from ``transformers``, implementing ``LanguageModel``.

    Batches are sorted by length and padded on the left for next-token scoring
    (only the last position's logits are computed: ``logits_to_keep=1``); continuations
    are packed by shared context instead (``continuation_logprobs``). ``batch_size``
    defaults to 1 on CPU (measured fastest: padding costs more than batching saves on 2
    cores) and 16 on GPU."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        batch_size: int | None = None,
        context_length: int | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self._name = name
        self.device = str(model.device)
        self.batch_size = batch_size or (1 if self.device == "cpu" else 16)
        limit = int(getattr(model.config, "max_position_embeddings", 0) or 2048)
        self._context = min(context_length or limit, limit)
        self.forward_calls = 0  # forward passes run (generate counts once per call)
        self._keep_last = True
        self._keeps_positions: bool | None = None  # does forward take logits_to_keep?
        self._lock = threading.Lock()  # one forward at a time: torch already uses every core
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (tokenizer.eos_token_id or 0))

    # -- loading ------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        gguf_file: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int | None = None,
        context_length: int | None = None,
        name: str | None = None,
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> TransformersLM:
        """Load a local transformers folder, or a GGUF file (dequantised and cached).

        ``threads`` sets torch's CPU threads for the whole process: one per process
        when several share the cores (a busy 2-core machine ran 4-6x slower with 2
        threads than with 1: OpenMP workers wait on each other)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        set_threads(threads)
        path = Path(path)
        if path.is_file() and path.suffix == ".gguf":
            gguf_file, path = path.name, path.parent
        if not path.exists():
            raise ModelError(f"model path {path} does not exist")
        dev = pick_device(device)
        torch_dtype = pick_dtype(dtype, dev)
        folder = path
        if gguf_file is not None:
            folder = converted_gguf(path / gguf_file, torch_dtype, cache_dir)
        elif not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a transformers model folder (no config.json)")
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model: Any = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch_dtype)
        model = model.to(dev)
        width = str(torch_dtype).removeprefix("torch.")
        ident = name or (Path(gguf_file).stem if gguf_file else _folder_ident(path))
        return cls(
            model,
            tokenizer,
            name=f"transformers:{ident}:{width}",
            batch_size=batch_size,
            context_length=context_length,
        )

    # -- protocol -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_length(self) -> int:
        return self._context

    def encode_prompt(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt: raw text as is, messages through the chat template
        (a trailing assistant message is continued, not closed)."""
        if isinstance(prompt, str):
            return list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])
        if not getattr(self.tokenizer, "chat_template", None):
            raise ModelError(f"{self.name} has no chat template; pass the prompt as text")
        cont = continues_last_message(prompt)
        text = self.tokenizer.apply_chat_template(
            prompt,
            tokenize=False,
            add_generation_prompt=not cont,
            continue_final_message=cont,
        )
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def candidate_token(self, candidate: str) -> int | None:
        """The token a candidate answer starts with (its only token for "yes", " yes",
        "Yes": each is a single token in SmolLM2's vocabulary)."""
        ids = self.tokenizer.encode(candidate, add_special_tokens=False)
        return int(ids[0]) if ids else None

    def next_token_logprobs(
        self, prompts: list[Prompt], candidates: list[str] | None = None, top_k: int = 20
    ) -> list[NextTokens]:
        torch = _torch()
        encoded = [self.encode_prompt(p) for p in prompts]
        limit = self._context
        dropped = [max(0, len(ids) - limit) for ids in encoded]
        encoded = [ids[-limit:] for ids in encoded]  # keep the end: the question and the cue
        cand_ids = [(c, self.candidate_token(c)) for c in candidates or []]
        out: list[NextTokens | None] = [None] * len(prompts)
        for batch in self._batches([len(ids) for ids in encoded]):
            rows = [encoded[i] for i in batch]
            ids, mask = self._pad(rows, left=True)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with self._lock, torch.inference_mode():
                self.forward_calls += 1
                logits = self._last_logits(ids, mask, positions)
                logp = torch.log_softmax(logits.float(), dim=-1).cpu()
            k = min(top_k, logp.shape[-1])
            top = torch.topk(logp, k, dim=-1) if k > 0 else None
            for row, i in enumerate(batch):
                probs: dict[str, float] = {}
                if top is not None:
                    for tid, lp in zip(
                        top.indices[row].tolist(), top.values[row].tolist(), strict=True
                    ):
                        probs.setdefault(self.tokenizer.decode([tid]), float(lp))
                for cand, tid in cand_ids:
                    probs[cand] = float(logp[row, tid]) if tid is not None else -math.inf
                out[i] = NextTokens(
                    logprobs=probs, prompt_tokens=len(encoded[i]), truncated_tokens=dropped[i]
                )
        return [o for o in out if o is not None]

    def continuation_logprobs(
        self, contexts: list[str], continuations: list[str]
    ) -> list[list[float]]:
        """Log-probabilities of each continuation token given the context. An empty
        context is replaced by the BOS token (else EOS) so the first token is scored too.

        Pairs are packed into rows rather than padded, up to ``batch_size`` rows per
        forward (``_pack_rows``): a context once, then each of its continuations (the
        choices of a multiple-choice item) at the positions that follow it, an attention
        mask keeping the continuations apart (``_score_packed``). No context is encoded
        twice, little padding is computed, and the vocabulary projection runs only where
        a continuation token is predicted. The values equal scoring each pair alone
        (float32: to 1e-4; bfloat16: within its rounding, which depends on the shapes,
        so batch size 1 keeps one plain forward per pair and its exact numbers).
        Longer than the context window: scored in windows that keep at least a quarter
        of the window as preceding context."""
        if len(contexts) != len(continuations):
            raise ValueError("contexts and continuations differ in length")
        out: list[list[float]] = [[] for _ in contexts]
        groups: dict[tuple[int, ...], list[tuple[int, list[int]]]] = {}
        first: dict[tuple[str, str], int] = {}  # a repeated pair is scored once
        for i, (ctx, cont) in enumerate(zip(contexts, continuations, strict=True)):
            if first.setdefault((ctx, cont), i) != i:
                continue
            ctx_ids = self._context_ids(ctx)
            cont_ids = list(self.tokenizer(cont, add_special_tokens=False)["input_ids"])
            if not cont_ids:
                continue
            if not ctx_ids:  # no BOS nor EOS: the first token has nothing to follow
                out[i] = self._score_long(cont_ids, 1)
            elif len(ctx_ids) + len(cont_ids) > self._context:
                out[i] = self._score_long(ctx_ids + cont_ids, len(ctx_ids))
            else:
                groups.setdefault(tuple(ctx_ids), []).append((i, cont_ids))
        attention = getattr(self.model.config, "_attn_implementation", None) or "eager"
        if attention not in ("sdpa", "eager"):
            # flash attention takes no custom masks and reads restarting positions as new
            # sequences: padded batches of whole pairs instead
            for i, lps in self._score_padded(groups).items():
                out[i] = lps
            groups = {}
        rows = self._pack_rows(groups)  # longest first: a forward's rows are alike
        for start in range(0, len(rows), self.batch_size):
            for i, lps in self._score_packed(rows[start : start + self.batch_size]).items():
                out[i] = lps
        for i, pair in enumerate(zip(contexts, continuations, strict=True)):
            out[i] = out[first[pair]]
        return out

    def generate(self, prompts: list[Prompt], params: GenerationParams) -> list[Generation]:
        torch = _torch()
        encoded = [self.encode_prompt(p) for p in prompts]
        room = max(1, self._context - params.max_tokens)
        encoded = [ids[-room:] for ids in encoded]
        out: list[Generation | None] = [None] * len(prompts)
        eos = self.tokenizer.eos_token_id
        for batch in self._batches([len(ids) for ids in encoded]):
            ids, mask = self._pad([encoded[i] for i in batch], left=True)
            kwargs: dict[str, Any] = {
                "max_new_tokens": params.max_tokens,
                "num_return_sequences": params.n,
                "pad_token_id": self.pad_id,
                "do_sample": params.temperature > 0,
            }
            if params.temperature > 0:
                kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
            if params.stop:
                kwargs["stopping_criteria"] = [
                    _stop_on_strings(self.tokenizer, params.stop, ids.shape[1])
                ]
            with self._lock, torch.inference_mode():
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                self.forward_calls += 1
                seqs = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
            new = seqs[:, ids.shape[1] :].cpu().tolist()
            for row, i in enumerate(batch):
                texts, reasons, count = [], [], 0
                for toks in new[row * params.n : (row + 1) * params.n]:
                    n_tok = next(
                        (j + 1 for j, t in enumerate(toks) if t == eos), len(toks)
                    )  # up to and including EOS
                    ended = n_tok < len(toks) or (bool(toks) and toks[n_tok - 1] == eos)
                    text = self.tokenizer.decode(toks[:n_tok], skip_special_tokens=True)
                    text, stopped = cut_at_stop(text, params.stop)
                    texts.append(text)
                    reasons.append("stop" if ended or stopped else "length")
                    count += n_tok
                out[i] = Generation(
                    texts=texts,
                    prompt_tokens=len(encoded[i]),
                    completion_tokens=count,
                    finish_reasons=reasons,
                )
        return [o for o in out if o is not None]

    # -- internals ----------------------------------------------------------------------

    def _last_logits(self, ids: Any, mask: Any, positions: Any) -> Any:
        """Logits of the last position only (``logits_to_keep=1`` skips the vocabulary
        projection everywhere else); models without that argument compute them all."""
        if self._keep_last:
            try:
                out = self.model(
                    input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1
                )
                return out.logits[:, -1, :]
            except TypeError:
                self._keep_last = False
        return self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[
            :, -1, :
        ]

    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices grouped into batches of similar length (less padding)."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _pad(self, rows: list[list[int]], *, left: bool) -> tuple[Any, Any]:
        torch = _torch()
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, r in enumerate(rows):
            if not r:
                continue
            if left:
                ids[j, width - len(r) :] = torch.tensor(r)
                mask[j, width - len(r) :] = 1
            else:
                ids[j, : len(r)] = torch.tensor(r)
                mask[j, : len(r)] = 1
        return ids.to(self.model.device), mask.to(self.model.device)

    def _context_ids(self, context: str) -> list[int]:
        """A context's tokens; an empty one is the BOS token (else EOS), or nothing."""
        ids = list(self.tokenizer(context, add_special_tokens=True)["input_ids"]) if context else []
        if not ids:
            start = self.tokenizer.bos_token_id
            if start is None:
                start = self.tokenizer.eos_token_id
            ids = [int(start)] if start is not None else []
        return ids

    def _pack_rows(
        self, groups: dict[tuple[int, ...], list[tuple[int, list[int]]]]
    ) -> list[list[Unit]]:
        """Rows of units (a context and some of its continuations), longest first. Batch
        size 1 keeps one pair per row (the exact numbers of a plain forward); otherwise
        a row holds up to ``PACK_TOKENS`` tokens (or the longest pair, if longer): room
        for many multiple-choice items, short enough that the masked, mostly empty
        attention stays cheap beside the MLPs."""
        longest = max((len(c) + len(x) for c, xs in groups.items() for _, x in xs), default=0)
        budget = min(self._context, max(PACK_TOKENS, longest))
        single = self.batch_size == 1
        units: list[Unit] = []
        for ctx, conts in groups.items():
            unit: list[tuple[int, list[int]]] = []
            size = len(ctx)
            for i, cont in conts:
                if unit and (single or size + len(cont) > budget):
                    units.append((list(ctx), unit))
                    unit, size = [], len(ctx)
                unit.append((i, cont))
                size += len(cont)
            units.append((list(ctx), unit))
        units.sort(key=_unit_length, reverse=True)
        rows: list[list[Unit]] = []
        used = budget
        for u in units:
            if single or used + _unit_length(u) > budget:
                rows.append([])
                used = 0
            rows[-1].append(u)
            used += _unit_length(u)
        return rows

    def _score_packed(self, rows: list[list[Unit]]) -> dict[int, list[float]]:
        """One forward over packed rows (right-padded to the longest): each unit's
        context, then each of its continuations at the positions that follow the
        context, seeing the context and itself only. Returns each pair's continuation
        log-probabilities, read only where a continuation token is predicted."""
        torch = _torch()
        dev = self.model.device
        width = max(sum(_unit_length(u) for u in row) for row in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        unit_of = torch.full((len(rows), width), -1, dtype=torch.long)  # -1: padding
        branch = torch.zeros((len(rows), width), dtype=torch.long)  # 0: the context
        wanted: list[tuple[int, int, list[int], list[int]]] = []  # pair, row, predictors
        keep = torch.zeros((len(rows), width), dtype=torch.bool)
        pairs = 0
        for r, row in enumerate(rows):
            at = 0
            for u, (ctx, conts) in enumerate(row):
                n = len(ctx)
                ids[r, at : at + n] = torch.tensor(ctx)
                positions[r, at : at + n] = torch.arange(n)
                unit_of[r, at : at + n] = u
                last, at = at + n - 1, at + n
                for k, (i, cont) in enumerate(conts, start=1):
                    m = len(cont)
                    ids[r, at : at + m] = torch.tensor(cont)
                    positions[r, at : at + m] = torch.arange(n, n + m)
                    unit_of[r, at : at + m] = u
                    branch[r, at : at + m] = k
                    # the last context token predicts the first continuation token
                    preds = [last, *range(at, at + m - 1)]
                    keep[r, preds] = True
                    wanted.append((i, r, preds, cont))
                    at += m
                    pairs += 1
        kwargs: dict[str, Any] = {"input_ids": ids.to(dev)}
        if pairs > 1:  # else plain causal attention is exactly right
            same_unit = unit_of[:, :, None] == unit_of[:, None, :]
            visible = (branch[:, None, :] == 0) | (branch[:, :, None] == branch[:, None, :])
            causal = torch.ones(width, width, dtype=torch.bool).tril()
            allowed = (same_unit & visible & causal) | torch.eye(width, dtype=torch.bool)
            dtype = self.model.dtype
            mask = torch.zeros(allowed.shape, dtype=dtype)
            mask.masked_fill_(~allowed, torch.finfo(dtype).min)
            kwargs["attention_mask"] = mask[:, None].to(dev)
            kwargs["position_ids"] = positions.to(dev)
        # flattened row-major over ``keep``: where each (row, position) landed
        slot = torch.full((len(rows), width), -1, dtype=torch.long)
        slot[keep] = torch.arange(int(keep.sum()))
        with self._lock, torch.inference_mode():
            self.forward_calls += 1
            if pairs > 1:
                logits = self._logits_at(kwargs, keep.to(dev))
            else:  # a plain forward, as batch size 1 always ran (same bf16 rounding)
                logits = self.model(**kwargs).logits[keep.to(dev)]
            logp = torch.log_softmax(logits.float(), dim=-1)
            where = torch.cat([slot[r, preds] for _, r, preds, _ in wanted]).to(dev)
            targets = torch.tensor([t for *_, cont in wanted for t in cont], device=dev)
            picked = logp[where, targets].cpu().tolist()
        out: dict[int, list[float]] = {}
        pos = 0
        for i, _, _, cont in wanted:
            out[i] = picked[pos : pos + len(cont)]
            pos += len(cont)
        return out

    def _logits_at(self, kwargs: dict[str, Any], keep: Any) -> Any:
        """Logits at the ``keep`` positions, flattened row by row. ``logits_to_keep``
        with a boolean mask skips the vocabulary projection elsewhere (transformers'
        ``slice_logits_to_keep``); models without it compute every position's logits."""
        if self._keeps_positions is None:
            import inspect

            module = inspect.getmodule(type(self.model))
            params = inspect.signature(self.model.forward).parameters
            self._keeps_positions = "logits_to_keep" in params and hasattr(
                module, "slice_logits_to_keep"
            )
        if self._keeps_positions:
            return self.model(**kwargs, logits_to_keep=keep).logits
        return self.model(**kwargs).logits[keep]

    def _score_padded(
        self, groups: dict[tuple[int, ...], list[tuple[int, list[int]]]]
    ) -> dict[int, list[float]]:
        """Each pair whole (context then continuation), in right-padded batches."""
        seqs = [(i, list(ctx) + cont, len(ctx)) for ctx, xs in groups.items() for i, cont in xs]
        out: dict[int, list[float]] = {}
        for batch in self._batches([len(ids) for _, ids, _ in seqs]):
            scored = self._score_windows([(seqs[b][1], seqs[b][2]) for b in batch])
            out.update((seqs[b][0], lps) for b, lps in zip(batch, scored, strict=True))
        return out

    def _score_windows(self, windows: list[tuple[list[int], int]]) -> list[list[float]]:
        """One right-padded forward over ``(ids, first)`` windows: the
        log-probability of ``ids[p]`` for every ``p >= first``."""
        torch = _torch()
        ids, mask = self._pad([w[0] for w in windows], left=False)
        with self._lock, torch.inference_mode():
            self.forward_calls += 1
            logits = self.model(input_ids=ids, attention_mask=mask).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            # position p - 1 predicts token p
            picked = logp[:, :-1, :].gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1).cpu()
        return [
            picked[j, first - 1 : len(row) - 1].tolist() for j, (row, first) in enumerate(windows)
        ]

    def _score_long(self, ids: list[int], first: int) -> list[float]:
        """Windows of the full context, each scoring new tokens after at least a quarter
        window of the tokens before them."""
        size = self._context
        keep = max(1, size // 4)
        out: list[float] = []
        pos = max(1, first)
        while pos < len(ids):
            end = min(len(ids), max(size, pos + size - keep))
            start = max(0, end - size)
            out.extend(self._score_windows([(ids[start:end], pos - start)])[0])
            pos = end
        return out
