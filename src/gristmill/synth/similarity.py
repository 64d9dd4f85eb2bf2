"""ROUGE-L between instructions (``rouge-score``'s tokenizer and LCS), with the kept
instructions tokenised once, so checking a candidate against N kept ones is N LCS
computations and no re-tokenising."""

from __future__ import annotations

from dataclasses import dataclass, field

from gristmill.synth.runner import SynthError


def tokens(text: str) -> list[str]:
    """rouge-score's tokens: lowercase, alphanumeric runs (no stemming)."""
    try:
        from rouge_score import tokenize
    except ImportError as exc:  # an optional dependency (the synth/eval extras)
        raise SynthError("ROUGE-L needs rouge-score: pip install 'rouge-score>=0.1.2'") from exc
    return list(tokenize.tokenize(text, None))


def rouge_l(a: list[str], b: list[str]) -> float:
    """ROUGE-L F-measure of two token lists (rouge-score's LCS)."""
    if not a or not b:
        return 0.0
    from rouge_score import rouge_scorer

    return float(rouge_scorer._score_lcs(a, b).fmeasure)


@dataclass
class InstructionPool:
    """Kept instructions; ``nearest(text)`` is the highest ROUGE-L F against them."""

    texts: list[str] = field(default_factory=list)
    _tokens: list[list[str]] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.texts.append(text)
        self._tokens.append(tokens(text))

    def nearest(self, text: str) -> tuple[float, str | None]:
        toks = tokens(text)
        best, best_text = 0.0, None
        for other, other_text in zip(self._tokens, self.texts, strict=True):
            score = rouge_l(toks, other)
            if score > best:
                best, best_text = score, other_text
        return best, best_text
