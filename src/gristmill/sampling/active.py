"""`uncertainty`: the active-learning order for annotation queues.

The label distribution comes from one of two places:

- a model: the prompt (``{text}`` and ``{labels}`` filled in) asks for one of
  ``labels``; the distribution is the next-token probability of each label word
  (summed over its spellings, then renormalised over the labels);
- an attribute that already holds class probabilities (a classifier's output):
  ``probabilities: ATTRIBUTE`` with either a list column (``column``, default
  ``probs``) or one numeric column per class. The scoring run passes the version
  being scored as ``version`` (the step must know whose attribute to read).

Stored per record: ``score`` (the chosen ``measure``), ``entropy``, ``margin``,
``least_confidence`` (all "higher = more uncertain"), ``label`` (the likeliest)
and ``probs``. ``gristmill sample --by uncertainty --size N`` takes the N most
uncertain.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.models.protocols import Prompt
from gristmill.pipeline.spec import register
from gristmill.pipeline.step import StepOutput
from gristmill.sampling.base import Scorer, check_params, chunks
from gristmill.sampling.text import truncate_chars
from gristmill.sampling.uncertainty import MEASURES, from_logprobs, measures, normalise_rows

DEFAULT_PROMPT = (
    "Classify the following text.\n\nText: {text}\n\nAnswer with one word, one of: {labels}."
)


def label_variants(labels: list[str]) -> list[str]:
    """Each label as a first token may or may not follow a space, or be capitalised."""
    out: list[str] = []
    for lbl in labels:
        for v in (lbl, " " + lbl, lbl.capitalize(), " " + lbl.capitalize()):
            if v not in out:
                out.append(v)
    return out


@register
class Uncertainty(Scorer):
    """Uncertainty (entropy, margin, least confidence) of a label distribution."""

    name = "uncertainty"

    def __init__(
        self,
        labels: list[str] | None = None,
        model: str | None = None,
        prompt: str = DEFAULT_PROMPT,
        variant: str = "chat",
        probabilities: str | None = None,
        column: str = "probs",
        version: str | None = None,
        measure: str = "entropy",
        max_chars: int = 4000,
        batch_size: int = 8,
        attribute: str | None = None,
        **rest: Any,
    ) -> None:
        check_params(self.name, rest)
        if measure not in MEASURES:
            raise TypeError(f"measure must be one of {', '.join(MEASURES)}")
        if (labels is None) == (probabilities is None):
            raise TypeError("give labels (ask a model) or probabilities (an attribute), not both")
        if labels is not None and len(labels) < 2:
            raise TypeError("labels: at least two")
        if probabilities is not None and version is None:
            raise TypeError("probabilities: also give version (the dataset version it belongs to)")
        if variant not in ("chat", "plain"):
            raise TypeError("variant must be chat or plain")
        super().__init__(
            labels=labels,
            model=model,
            prompt=prompt,
            variant=variant,
            probabilities=probabilities,
            column=column,
            version=version,
            measure=measure,
            max_chars=max_chars,
            batch_size=batch_size,
            attribute=attribute,
        )
        self.labels = labels
        self.model_spec = model
        self.template = prompt
        self.variant = variant
        self.source_attribute = probabilities
        self.column = column
        self.version_ref = version
        self.measure = measure
        self.max_chars = max_chars
        self.batch_size = batch_size
        self._attribute = attribute
        self._probs: dict[str, list[float]] | None = None
        self._class_names: list[str] = []
        self._model_name = f"attribute:{probabilities}" if probabilities else ""

    def _prompt(self, text: str) -> Prompt:
        assert self.labels is not None
        body = self.template.format(text=text, labels=", ".join(self.labels))
        if self.variant == "plain":
            return body + "\nAnswer:"
        return [{"role": "user", "content": body}]

    def _load_attribute(self) -> dict[str, list[float]]:
        """id → class probabilities from the named attribute (once per worker)."""
        if self._probs is None:
            assert self.version_ref is not None and self.source_attribute is not None
            version = self.ctx.workspace.version(self.version_ref)
            table = version.read_attribute(self.source_attribute)
            ids = table.column("id").to_pylist()
            if self.column in table.column_names:
                values = table.column(self.column).to_pylist()
            else:
                numeric = [
                    c
                    for c in table.column_names
                    if c != "id" and pa.types.is_floating(table.schema.field(c).type)
                ]
                if len(numeric) < 2:
                    raise ValueError(
                        f"uncertainty: attribute {self.source_attribute!r} has no list column "
                        f"{self.column!r} and fewer than two float columns (one per class)"
                    )
                self._class_names = numeric
                cols = [table.column(c).to_pylist() for c in numeric]
                values = [list(row) for row in zip(*cols, strict=True)]
            self._probs = dict(zip(ids, values, strict=True))
        return self._probs

    def _distribution(self, table: pa.Table) -> np.ndarray[Any, np.dtype[np.float64]]:
        if self.labels is not None:
            cut = [truncate_chars(t, self.max_chars)[0] for t in self.texts(table)]
            prompts = [self._prompt(t) for t in cut]
            answers = []
            lm = self.lm()
            self._model_name = lm.name
            for part in chunks(len(prompts), self.batch_size):
                answers += lm.next_token_logprobs(
                    prompts[part], candidates=label_variants(self.labels), top_k=20
                )
            return from_logprobs([a.logprobs for a in answers], self.labels)
        probs = self._load_attribute()
        ids = table.column("id").to_pylist()
        missing = [i for i in ids if i not in probs]
        if missing:
            raise ValueError(
                f"uncertainty: {len(missing)} records have no {self.source_attribute!r} "
                f"probabilities (e.g. {missing[0]})"
            )
        return normalise_rows([probs[i] for i in ids])

    def process(self, table: pa.Table) -> StepOutput:
        if table.num_rows == 0:
            p = np.zeros((0, 2))
            m = {k: np.zeros(0) for k in MEASURES}
        else:
            p = self._distribution(table)
            m = measures(p)
        names = self.labels or self._class_names or [str(i) for i in range(p.shape[1])]
        best = np.argmax(p, axis=1) if p.size else np.zeros(0, dtype=np.int64)
        attribute = pa.table(
            {
                "id": table.column("id"),
                "score": m[self.measure],
                **{k: m[k] for k in MEASURES},
                "label": pa.array([names[int(i)] for i in best], pa.string()),
                "probs": pa.array(p.tolist(), pa.list_(pa.float64())),
                "model": pa.array([self._model_name] * table.num_rows, pa.string()),
            }
        )
        return StepOutput(table, None, {self.attribute: attribute})
