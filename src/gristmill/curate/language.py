"""`language`: identify each document's language; keep the languages asked for.

Identification is :func:`gristmill.langid.detect_language` (fastText ``lid.176``,
shipped in a wheel: nothing downloads), as datatrove's ``LanguageFilter`` does with
the same model family and the same default threshold (0.65).

- language: {}                                  # keep English, score >= 0.65
- language: {languages: [en, de], min_score: 0.5}
- language: {languages: null}                   # label only, drop nothing
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from gristmill.langid import detect_language
from gristmill.pipeline.spec import register
from gristmill.pipeline.step import Step, StepOutput
from gristmill.records.kinds import Kind


@register
class Language(Step):
    """Identify each document's language (fastText lid.176) and keep the chosen ones."""

    name = "language"
    kinds = (Kind.DOCUMENT,)

    def __init__(
        self,
        *,
        languages: Sequence[str] | None = ("en",),
        min_score: float = 0.65,
        max_chars: int | None = None,
    ) -> None:
        if isinstance(languages, str):
            languages = [languages]
        if not 0.0 <= min_score <= 1.0:
            raise TypeError(f"min_score must be between 0 and 1, got {min_score}")
        if max_chars is not None and max_chars < 1:
            raise TypeError(f"max_chars must be positive or null, got {max_chars}")
        keep = [str(code) for code in languages] if languages else None
        super().__init__(languages=keep, min_score=min_score, max_chars=max_chars)
        self.languages = frozenset(keep) if keep else None
        self.min_score = min_score
        self.max_chars = max_chars
        wanted = "/".join(keep) if keep else ""
        self.r_other = f"language: not {wanted}"
        self.r_unsure = f"language: {wanted} but score under {min_score}"

    def setup(self) -> None:
        detect_language("warm up the model once per worker")

    def process(self, table: pa.Table) -> StepOutput:
        texts: list[str | None] = table.column("text").to_pylist()
        codes: list[str] = []
        scores: list[float] = []
        reasons: list[str | None] = []
        keep, min_score, max_chars = self.languages, self.min_score, self.max_chars
        for text in texts:
            code, score = detect_language(text or "", max_chars)
            codes.append(code)
            scores.append(score)
            if keep is None:
                reasons.append(None)
            elif code not in keep:
                reasons.append(self.r_other)
            elif score < min_score:
                reasons.append(self.r_unsure)
            else:
                reasons.append(None)
        column = pa.array(codes, type=pa.string())
        index = table.schema.get_field_index("language")
        if index >= 0:
            field = table.schema.field(index)
            table = table.set_column(index, field, column.cast(field.type))
        else:
            table = table.append_column("language", column)
        attribute = pa.table(
            {
                "id": table.column("id"),
                "language": column,
                "score": pa.array(scores, type=pa.float64()),
            }
        )
        return StepOutput(table, reasons, attributes={self.name: attribute})
