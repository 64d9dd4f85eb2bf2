"""Metrics: per-sample values and the sufficient statistics of each aggregate.

Every aggregate here is a function of **column sums** of per-sample statistics: a mean
is Σvalue / Σ1, perplexity exp(-Σlogprob / Σtokens), corpus BLEU and chrF come from
summed n-gram counts (sacrebleu's own statistics). So a bootstrap resample is a
weight vector over samples and costs one matrix product (``stats.bootstrap``), and
corpus metrics are resampled as corpora, not as averages of sentence scores.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gristmill.evals.tasks import MetricSpec

F64 = npt.NDArray[np.float64]

GENERATIVE = ("exact_match", "f1", "bleu", "chrf", "rouge1", "rouge2", "rougeL", "model_graded")
METRICS: dict[str, tuple[str, ...]] = {
    "generate": (*GENERATIVE, "classification"),
    "loglikelihood": ("acc", "acc_norm", "classification"),
    "perplexity": ("perplexity",),
}
NORMALIZERS = ("lower", "punct", "articles", "space")


def check_metric(spec: MetricSpec, output_type: str) -> None:
    allowed = METRICS[output_type]
    if spec.name not in allowed:
        raise ValueError(f"not a metric for {output_type} tasks (choose from {', '.join(allowed)})")
    bad = [n for n in spec.normalize if n not in NORMALIZERS]
    if bad:
        raise ValueError(f"unknown normalize option {bad[0]!r} (choose from {NORMALIZERS})")
    if spec.extract == "regex":
        if not spec.pattern:
            raise ValueError("extract: regex needs a pattern")
        re.compile(spec.pattern)


# -- answer extraction and normalisation ----------------------------------------------------

_NUMBER = re.compile(r"-?[$€£]?\s?\d[\d,]*(?:\.\d+)?")
_LETTER = re.compile(r"\b([A-J])\b")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def extract_number(text: str) -> str | None:
    """The last number in ``text`` ("The answer is $1,600." → "1600"), the way
    lm-eval-harness's GSM8K "flexible-extract" reads a worked answer."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    raw = re.sub(r"[$€£,\s]", "", found[-1])
    return raw.rstrip(".")


def extract(spec: MetricSpec, text: str) -> str:
    """The answer part of a model's output, per the metric's ``extract`` option."""
    if spec.extract == "numeric":
        return extract_number(text) or ""
    if spec.extract == "letter":
        match = _LETTER.search(text)
        return match.group(1) if match else ""
    if spec.extract == "regex" and spec.pattern:
        match = re.search(spec.pattern, text)
        return (match.group(1) if match.groups() else match.group(0)) if match else ""
    return text


def normalize(text: str, options: list[str]) -> str:
    """SQuAD-style normalisation, each step chosen: lower, punct, articles, space.
    Surrounding white space is always stripped."""
    if "lower" in options:
        text = text.lower()
    if "punct" in options:
        text = "".join(ch for ch in text if ch not in string.punctuation)
    if "articles" in options:
        text = _ARTICLES.sub(" ", text)
    if "space" in options:
        text = " ".join(text.split())
    return text.strip()


def numbers_equal(a: str, b: str) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    except ValueError:
        return a == b


def exact_match(spec: MetricSpec, prediction: str, references: list[str]) -> float:
    answer = normalize(extract(spec, prediction), spec.normalize)
    for ref in references:
        gold = normalize(ref, spec.normalize)
        if spec.extract == "numeric":
            gold = gold.replace(",", "")
            if answer and numbers_equal(answer, gold):
                return 1.0
        elif answer == gold:
            return 1.0
    return 0.0


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 over normalised words (lower, punctuation, articles, spaces)."""
    pred = normalize(prediction, list(NORMALIZERS)).split()
    gold = normalize(reference, list(NORMALIZERS)).split()
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


# -- aggregates over summed statistics -------------------------------------------------------


@dataclass(frozen=True)
class Aggregate:
    """How a metric's per-sample statistics add up: ``finish(column sums)``. ``scale``
    says what a printed value means (share, score 0-100, perplexity, rating)."""

    finish: Callable[[F64], F64]  # (B, d) sums → (B,) values
    width: int
    higher_is_better: bool = True


def _mean(sums: F64) -> F64:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(sums[:, 0] / sums[:, 1], dtype=np.float64)


def _perplexity(sums: F64) -> F64:
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.asarray(np.exp(-sums[:, 0] / sums[:, 1]), dtype=np.float64)


def _sacrebleu(kind: str) -> Any:
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.metrics.chrf import CHRF

    return BLEU() if kind == "bleu" else CHRF()


def _corpus(kind: str) -> Callable[[F64], F64]:
    def finish(sums: F64) -> F64:
        metric = _sacrebleu(kind)
        out = [
            metric._compute_score_from_stats([round(float(v)) for v in row]).score for row in sums
        ]
        return np.asarray(out, dtype=np.float64)

    return finish


MEAN = Aggregate(_mean, 2)
AGGREGATES: dict[str, Aggregate] = {
    "perplexity": Aggregate(_perplexity, 2, higher_is_better=False),
    "bleu": Aggregate(_corpus("bleu"), 10),
    "chrf": Aggregate(_corpus("chrf"), 18),
}


def aggregate_of(metric: str) -> Aggregate:
    return AGGREGATES.get(metric, MEAN)


def mean_stats(value: float) -> list[float]:
    return [value, 1.0]


def corpus_stats(kind: str, prediction: str, references: list[str]) -> list[float]:
    """sacrebleu's sufficient statistics of one sentence against its references."""
    refs = [[r] for r in references] or [[""]]
    rows = _sacrebleu(kind)._extract_corpus_statistics([prediction], refs)
    return [float(v) for v in rows[0]]


def sentence_score(kind: str, stats: list[float]) -> float:
    if kind == "bleu":
        from sacrebleu.metrics.bleu import BLEU

        return float(
            BLEU(effective_order=True)._compute_score_from_stats([int(v) for v in stats]).score
        )
    return float(_corpus(kind)(np.asarray([stats]))[0])


_ROUGE: dict[str, Any] = {}


def rouge(kind: str, prediction: str, references: list[str]) -> float:
    """ROUGE F-measure (rouge-score, Porter stemming), best over the references."""
    scorer = _ROUGE.get(kind)
    if scorer is None:
        from rouge_score import rouge_scorer

        scorer = _ROUGE[kind] = rouge_scorer.RougeScorer([kind], use_stemmer=True)
    return max((scorer.score(r, prediction)[kind].fmeasure for r in references), default=0.0)


# -- per-sample scoring ---------------------------------------------------------------------


@dataclass
class SampleScore:
    """One item's metric values (what the run stores) and aggregate statistics."""

    values: dict[str, float]
    stats: dict[str, list[float]]


def score_generation(specs: list[MetricSpec], prediction: str, item: dict[str, Any]) -> SampleScore:
    """Text metrics of one generated answer (model_graded is added by the runner)."""
    refs: list[str] = item.get("references") or []
    values: dict[str, float] = {}
    stats: dict[str, list[float]] = {}
    for spec in specs:
        name = spec.name
        if name == "exact_match":
            values[name] = exact_match(spec, prediction, refs)
        elif name == "f1":
            values[name] = max((token_f1(extract(spec, prediction), r) for r in refs), default=0.0)
        elif name in ("bleu", "chrf"):
            stats[name] = corpus_stats(name, extract(spec, prediction), refs)
            values[name] = sentence_score(name, stats[name])
            continue
        elif name in ("rouge1", "rouge2", "rougeL"):
            values[name] = rouge(name, extract(spec, prediction), refs)
        else:
            continue
        stats[name] = mean_stats(values[name])
    return SampleScore(values, stats)


def score_choices(
    specs: list[MetricSpec], logprobs: list[float], item: dict[str, Any]
) -> tuple[SampleScore, int, int]:
    """acc and acc_norm of one multiple-choice item from the summed log-likelihood of
    each continuation; acc_norm divides by the choice's length in characters, as
    lm-eval-harness does. Returns the score, the chosen index and the acc_norm one."""
    gold = item.get("answer_index")
    choices: list[str] = item.get("choices") or []
    lls = np.asarray(logprobs, dtype=np.float64)
    pick = int(np.argmax(lls))
    lengths = np.asarray([max(len(c), 1) for c in choices], dtype=np.float64)
    pick_norm = int(np.argmax(lls / lengths))
    values: dict[str, float] = {}
    stats: dict[str, list[float]] = {}
    for spec in specs:
        if spec.name == "acc":
            values["acc"] = float(pick == gold)
        elif spec.name == "acc_norm":
            values["acc_norm"] = float(pick_norm == gold)
        else:
            continue
        stats[spec.name] = mean_stats(values[spec.name])
    return SampleScore(values, stats), pick, pick_norm


def score_perplexity(token_logprobs: list[float]) -> SampleScore:
    total, n = float(sum(token_logprobs)), float(len(token_logprobs))
    value = math.exp(-total / n) if n else float("nan")
    return SampleScore({"perplexity": value, "logprob": total}, {"perplexity": [total, n]})


# -- model-graded -----------------------------------------------------------------------------

MT_BENCH_RUBRIC = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response "
    "provided by an AI assistant to the user question displayed below. Your evaluation should "
    "consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and "
    "level of detail of the response. Begin your evaluation by providing a short explanation. "
    "Be as objective as possible. After providing your explanation, you must rate the response "
    'on a scale of 1 to 10 by strictly following this format: "[[rating]]", for example: '
    '"Rating: [[5]]".\n\n[Question]\n{question}\n\n[The Start of Assistant\'s Answer]\n{answer}\n'
    "[The End of Assistant's Answer]"
)
RUBRICS = {"mt_bench": MT_BENCH_RUBRIC}
_RATING = re.compile(r"\[\[(\d+(?:\.\d+)?)\]\]")
_RATING_LOOSE = re.compile(r"(?:rating|score)\W{0,3}(\d+(?:\.\d+)?)", re.IGNORECASE)


def judge_prompt(rubric: str, question: str, answer: str, reference: str | None) -> str:
    text = RUBRICS.get(rubric, rubric)
    return (
        text.replace("{question}", question)
        .replace("{answer}", answer)
        .replace("{reference}", reference or "")
    )


def parse_rating(text: str, low: float = 1, high: float = 10) -> float | None:
    """The judge's rating: ``[[N]]`` (MT-Bench), else "Rating: N"; None when absent or
    out of range (counted as unparsed, never as a score)."""
    match = _RATING.search(text) or _RATING_LOOSE.search(text)
    if match is None:
        return None
    value = float(match.group(1))
    return value if low <= value <= high else None
