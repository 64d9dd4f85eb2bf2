"""GGUF models through ``llama-cpp-python`` (optional: it compiles from source).

Loads a GGUF file in well under a second, where transformers needs ~20 s to
dequantise it; on 2 CPU cores it scored 2–4× slower than transformers in bfloat16
(MODELS.md), so it is the backend for larger quantised models, not the default.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from gristmill.models.errors import BackendMissing, ModelError
from gristmill.models.protocols import (
    ChatMessage,
    Generation,
    GenerationParams,
    NextTokens,
    Prompt,
)
from gristmill.models.text import continues_last_message

INSTALL = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" '
    'pip install "llama-cpp-python==0.3.36"'
)


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module, or an error naming the (slow, ~6 min) install command."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise BackendMissing(
            "the llama-cpp backend needs llama-cpp-python, which compiles from source "
            f"(~6 min on 2 cores): {INSTALL}  — or use the transformers backend "
            "(`--model transformers:<file.gguf>`), which reads GGUF files too"
        ) from exc
    return llama_cpp


def _log_softmax(row: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    x = np.asarray(row, dtype=np.float64)
    m = float(x.max())
    out: np.ndarray[Any, np.dtype[np.float64]] = x - (m + math.log(float(np.exp(x - m).sum())))
    return out


class LlamaCppLM:
    """``LanguageModel`` over a ``llama_cpp.Llama``.

    Prompts are scored one at a time (llama.cpp batches tokens, not prompts), reusing
    the KV cache of the prefix shared with the previous prompt. Chat prompts are
    rendered with the GGUF file's own template."""

    def __init__(self, llm: Any, *, name: str) -> None:
        self.llm = llm
        self._name = name
        self.forward_calls = 0
        self._lock = threading.Lock()
        meta: dict[str, str] = dict(getattr(llm, "metadata", {}) or {})
        self._template = meta.get("tokenizer.chat_template")
        self._bos = self._token_text(llm.token_bos())
        self._eos = self._token_text(llm.token_eos())

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        context_length: int | None = None,
        threads: int | None = None,
        name: str | None = None,
    ) -> LlamaCppLM:
        llama_cpp = import_llama_cpp()
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"GGUF file {path} does not exist")
        llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=context_length or 0,  # 0: the model's own context length
            n_threads=threads or os.cpu_count() or 1,
            logits_all=True,  # continuation log-probabilities need every position
            verbose=False,
        )
        return cls(llm, name=f"llama-cpp:{name or path.stem}")

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_length(self) -> int:
        return int(self.llm.n_ctx())

    def _token_text(self, tid: int) -> str:
        if tid < 0:
            return ""
        return bytes(self.llm.detokenize([tid], special=True)).decode("utf-8", errors="replace")

    def render_chat(self, messages: list[ChatMessage]) -> str:
        """Messages through the GGUF chat template (a trailing assistant message is
        continued: the text stops at its end, as transformers' ``continue_final_message``)."""
        if not self._template:
            raise ModelError(f"{self.name} has no chat template; pass the prompt as text")
        import jinja2

        env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = lambda msg: (_ for _ in ()).throw(ModelError(msg))
        template = env.from_string(self._template)
        cont = continues_last_message(messages)
        text: str = template.render(
            messages=messages,
            add_generation_prompt=not cont,
            bos_token=self._bos,
            eos_token=self._eos,
        )
        if cont:
            last = str(messages[-1].get("content", ""))
            text = text[: text.rindex(last) + len(last)] if last else text
        return text

    def encode_prompt(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            return list(self.llm.tokenize(prompt.encode(), add_bos=True, special=False))
        text = self.render_chat(prompt)
        bos = bool(self._bos) and text.startswith(self._bos)
        return list(self.llm.tokenize(text.encode(), add_bos=not bos, special=True))

    def _eval(self, tokens: list[int], *, reuse: bool) -> Any:
        """Run the model over ``tokens``; ``scores[i]`` then holds position i's logits."""
        llm = self.llm
        keep = 0
        if reuse:
            old = list(llm.input_ids[: llm.n_tokens])
            limit = min(len(old), len(tokens) - 1)
            while keep < limit and old[keep] == tokens[keep]:
                keep += 1
        llm.n_tokens = keep
        self.forward_calls += 1
        llm.eval(tokens[keep:])
        return llm.scores

    def next_token_logprobs(
        self, prompts: list[Prompt], candidates: list[str] | None = None, top_k: int = 20
    ) -> list[NextTokens]:
        limit = self.context_length
        cands: list[tuple[str, int | None]] = []
        for c in candidates or []:
            ids = self.llm.tokenize(c.encode(), add_bos=False, special=False)
            cands.append((c, int(ids[0]) if ids else None))
        out = []
        for prompt in prompts:
            ids = self.encode_prompt(prompt)
            dropped = max(0, len(ids) - limit)
            ids = ids[-limit:]
            with self._lock:
                scores = self._eval(ids, reuse=True)
                logp = _log_softmax(scores[len(ids) - 1])
            probs: dict[str, float] = {}
            for tid in np.argsort(-logp)[:top_k]:
                probs.setdefault(self._token_text(int(tid)), float(logp[tid]))
            for c, cid in cands:
                probs[c] = float(logp[cid]) if cid is not None else -math.inf
            out.append(NextTokens(logprobs=probs, prompt_tokens=len(ids), truncated_tokens=dropped))
        return out

    def continuation_logprobs(
        self, contexts: list[str], continuations: list[str]
    ) -> list[list[float]]:
        """Per-token log-probabilities; contexts are cut from the left to fit."""
        if len(contexts) != len(continuations):
            raise ValueError("contexts and continuations differ in length")
        limit = self.context_length
        out = []
        for ctx, cont in zip(contexts, continuations, strict=True):
            ctx_ids = list(self.llm.tokenize(ctx.encode(), add_bos=True, special=False))
            if not ctx_ids:
                ctx_ids = [int(self.llm.token_bos())]
            cont_ids = list(self.llm.tokenize(cont.encode(), add_bos=False, special=False))
            ids = (ctx_ids + cont_ids)[-limit:]
            first = max(1, len(ids) - len(cont_ids))
            with self._lock:
                scores = self._eval(ids, reuse=False)
                lps = [float(_log_softmax(scores[p - 1])[ids[p]]) for p in range(first, len(ids))]
            out.append(lps)
        return out

    def generate(self, prompts: list[Prompt], params: GenerationParams) -> list[Generation]:
        out = []
        for prompt in prompts:
            text = prompt if isinstance(prompt, str) else self.render_chat(prompt)
            texts, reasons, p_tok, c_tok = [], [], 0, 0
            for j in range(params.n):
                with self._lock:
                    self.forward_calls += 1
                    res = self.llm.create_completion(
                        text,
                        max_tokens=params.max_tokens,
                        temperature=params.temperature,
                        top_p=params.top_p,
                        stop=list(params.stop) or None,
                        seed=None if params.seed is None else params.seed + j,
                    )
                choice = res["choices"][0]
                texts.append(str(choice["text"]))
                reasons.append(str(choice.get("finish_reason") or "stop"))
                p_tok = int(res["usage"]["prompt_tokens"])
                c_tok += int(res["usage"]["completion_tokens"])
            out.append(
                Generation(
                    texts=texts,
                    prompt_tokens=p_tok,
                    completion_tokens=c_tok,
                    finish_reasons=reasons,
                )
            )
        return out
