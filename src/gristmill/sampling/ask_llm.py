"""`ask_llm`: how likely a language model says "yes, this is informative".

Sachdeva et al. 2024, §3.1, Fig. 3: the text between ``###`` lines, then the question
and the options (DESIGN.md gives the prompt verbatim). The score is the softmax
probability of "yes" as the next token. Two prompt variants, recorded in the
run's parameters:

- ``chat``: the prompt as a user message in the model's chat template, and an
  assistant turn that starts with the cue ``ANSWER:`` (for instruction-tuned
  models, which otherwise open with pleasantries);
- ``plain``: the prompt as raw text followed by ``\\nANSWER:`` (base models,
  completion endpoints).

"yes" is summed over its spellings as a first token ("yes", " yes", "Yes", " Yes"),
likewise "no". Stored per record: ``score`` (the chosen view), ``p_yes`` (raw
softmax P(yes), the paper's score), ``p_no``, ``p_yes_norm`` = P(yes)/(P(yes)+P(no))
(robust to a small model spreading mass over other tokens), ``prompt_tokens``,
and the truncation: ``truncated_chars`` (cut here, to ``max_chars``) and
``truncated_tokens`` (cut by the backend to fit its context).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.models.protocols import Prompt
from gristmill.models.text import NO_VARIANTS, YES_VARIANTS, probability, yes_probability
from gristmill.pipeline.spec import register
from gristmill.pipeline.step import StepOutput
from gristmill.sampling.base import Scorer, check_params, chunks
from gristmill.sampling.text import truncate_chars

QUESTION = (
    "Does the previous paragraph demarcated within ### and ### contain informative signal "
    "for pre-training a large-language model? An informative datapoint should be "
    "well-formatted, contain some usable knowledge of the world, and strictly NOT have any "
    "harmful, racist, sexist, etc. content.\nOPTIONS:\n- yes\n- no"
)
CUE = "ANSWER:"
VARIANTS = ("chat", "plain")
VIEWS = ("raw", "normalized")


def ask_llm_text(text: str) -> str:
    """The paper's prompt with ``text`` in place."""
    return f"###\n{text}\n###\n{QUESTION}"


def ask_llm_prompt(text: str, variant: str = "chat") -> Prompt:
    if variant == "chat":
        return [
            {"role": "user", "content": ask_llm_text(text)},
            {"role": "assistant", "content": CUE},
        ]
    if variant == "plain":
        return f"{ask_llm_text(text)}\n{CUE}"
    raise ValueError(f"ask_llm: variant must be one of {', '.join(VARIANTS)}")


@register
class AskLLM(Scorer):
    """Ask-LLM quality score: P("yes") that the text is informative for pre-training."""

    name = "ask_llm"

    def __init__(
        self,
        model: str | None = None,
        variant: str = "chat",
        score: str = "raw",
        max_chars: int = 6000,
        batch_size: int = 8,
        attribute: str | None = None,
        **rest: Any,
    ) -> None:
        check_params(self.name, rest)
        if variant not in VARIANTS:
            raise TypeError(f"variant must be one of {', '.join(VARIANTS)}")
        if score not in VIEWS:
            raise TypeError(f"score must be one of {', '.join(VIEWS)}")
        super().__init__(
            model=model,
            variant=variant,
            score=score,
            max_chars=max_chars,
            batch_size=batch_size,
            attribute=attribute,
        )
        self.model_spec = model
        self.variant = variant
        self.view = score
        self.max_chars = max_chars
        self.batch_size = batch_size
        self._attribute = attribute

    def process(self, table: pa.Table) -> StepOutput:
        cut = [truncate_chars(t, self.max_chars) for t in self.texts(table)]
        prompts = [ask_llm_prompt(text, self.variant) for text, _ in cut]
        lm = self.lm()
        answers = []
        for part in chunks(len(prompts), self.batch_size):
            answers += lm.next_token_logprobs(
                prompts[part], candidates=[*YES_VARIANTS, *NO_VARIANTS], top_k=20
            )
        p_yes, p_no, p_norm = [], [], []
        for answer in answers:
            yes, norm = yes_probability(answer)
            p_yes.append(yes)
            p_norm.append(norm)
            p_no.append(probability(answer, NO_VARIANTS))
        yes_arr = np.asarray(p_yes, dtype=np.float64)
        norm_arr = np.nan_to_num(np.asarray(p_norm, dtype=np.float64), nan=0.5)
        chars = [dropped for _, dropped in cut]
        tokens = [a.truncated_tokens for a in answers]
        attribute = pa.table(
            {
                "id": table.column("id"),
                "score": yes_arr if self.view == "raw" else norm_arr,
                "p_yes": yes_arr,
                "p_no": np.asarray(p_no, dtype=np.float64),
                "p_yes_norm": norm_arr,
                "prompt_tokens": pa.array([a.prompt_tokens for a in answers], pa.int64()),
                "truncated_chars": pa.array(chars, pa.int64()),
                "truncated_tokens": pa.array(tokens, pa.int64()),
                "model": pa.array([lm.name] * len(answers), pa.string()),
            }
        )
        counters = {
            "texts cut to max_chars": sum(1 for c in chars if c),
            "prompts cut by the backend": sum(1 for t in tokens if t),
        }
        return StepOutput(table, None, {self.attribute: attribute}, counters)
