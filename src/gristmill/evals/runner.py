"""Run a task against a model and store every sample as a dataset version.

The run is a ``conversation`` version (one record per eval item: the prompt as the
user turn(s), the model's answer as the assistant turn), so a failed item can be
reviewed, corrected and exported as SFT data. Per-sample scores sit in ``meta`` and in
the ``scores`` attribute; the task, model and parameters in the manifest's ``params``;
the aggregates with bootstrap intervals, overall and per tag, in its ``stats``.

Model calls go through the call cache in chunks of ``batch_size`` prompts, up to
``concurrency`` chunks in flight: a killed run, run again, replays what it had from the
cache and computes only the rest.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import orjson
import pyarrow as pa

from gristmill.evals import metrics as M
from gristmill.evals.backends import is_server
from gristmill.evals.prompts import LETTERS, build_prompt, continuations, pick_shots, prompt_text
from gristmill.evals.stats import RESAMPLES, classification, estimate
from gristmill.evals.tasks import Grader, Task
from gristmill.models.protocols import GenerationParams, LanguageModel, Prompt
from gristmill.records.arrow import to_row
from gristmill.records.kinds import Conversation, Kind, Message
from gristmill.store import Version, VersionWriter, Workspace
from gristmill.store.errors import StoreError

T = TypeVar("T")
R = TypeVar("R")
Say = Callable[[str], None]
Progress = Callable[[int], None]
NO_LABEL = "(none)"


class EvalError(ValueError):
    """A run that cannot go ahead (wrong backend for the task, missing data)."""


@dataclass
class RunOptions:
    limit: int | None = None
    sample: int | None = None  # a seeded random sample of N items (in dataset order)
    name: str | None = None
    num_fewshot: int | None = None  # overrides the task's few_shot.n
    max_tokens: int | None = None  # overrides the task's generation.max_tokens
    batch_size: int = 8  # prompts per model call
    concurrency: int = 1  # model calls in flight
    resamples: int = RESAMPLES
    seed: int = 0


@dataclass
class EvalRun:
    """A finished run: its version and what the terminal summary shows."""

    version: Version
    task: str
    model: str
    n: int
    metrics: dict[str, dict[str, Any]]
    by_tag: dict[str, dict[str, dict[str, Any]]]
    classification: dict[str, Any] | None = None
    unparsed: int = 0  # model-graded answers whose rating could not be read
    extra: dict[str, Any] = field(default_factory=dict)


def slug(text: str) -> str:
    """A model spec as a dataset-name part: ``openai:http://h:1/v1/smollm2`` → ``smollm2``;
    a path → its last folder."""
    tail = text.rstrip("/").split("?")[0]
    tail = re.split(r"[/\\]", tail)[-1] or tail
    tail = tail.split(":")[-1] or "model"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", tail).strip("-.").lower()[:60] or "model"


def default_run_name(task: Task, model_spec: str | None) -> str:
    return f"eval-{slug(task.name)}-{slug(model_spec or 'smollm2')}"


# -- eval items -----------------------------------------------------------------------------


def ensure_dataset(
    ws: Workspace, dataset: str, data: str | None, fmt: str | None, task: Task, say: Say
) -> Version:
    """The eval version ``dataset`` names; imported from ``data`` first when the
    workspace does not hold that dataset yet (and saying so)."""
    try:
        return ws.version(dataset)
    except StoreError:
        if data is None or "@" in dataset:
            raise
    path = task.data_path(data)
    if path is None:
        raise EvalError(
            f"task {task.name}: the workspace has no dataset {dataset!r} and its data file "
            f"{data!r} was not found (beside the task file, here, or in the gristmill checkout)"
        )
    from gristmill.io.ingest import ImportOptions, import_path

    report = import_path(ws, path, dataset, ImportOptions(format=fmt))
    if report.version is None:
        raise EvalError(f"importing {path} for task {task.name} kept no rows")
    quarantined = f", {report.quarantined} quarantined" if report.quarantined else ""
    say(
        f"imported {path} as {report.version.ref} ({report.kept} eval items{quarantined}) "
        f"for task {task.name}"
    )
    return report.version


def load_items(version: Version, limit: int | None = None) -> list[dict[str, Any]]:
    """Eval item rows in dataset order (the first ``limit``), ``meta`` parsed."""
    if version.kind != Kind.EVAL_ITEM:
        raise EvalError(f"{version.ref} holds {version.kind} records, not eval_item")
    out: list[dict[str, Any]] = []
    for row in version.iter_rows():
        row["meta"] = orjson.loads(row["meta"]) if row.get("meta") else {}
        row["references"] = row.get("references") or []
        row["choices"] = row.get("choices") or []
        row["tags"] = row.get("tags") or []
        out.append(row)
        if limit is not None and len(out) >= limit:
            break
    return out


# -- calling the model ---------------------------------------------------------------------


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def call_chunked(
    fn: Callable[[list[T]], Sequence[R]],
    items: Sequence[T],
    batch_size: int,
    concurrency: int,
    progress: Progress | None,
    length: Callable[[T], int] | None = None,
) -> list[R]:
    """``fn`` over chunks of ``items``, up to ``concurrency`` chunks at once; results in
    the items' order. With ``length``, items are chunked longest first, so a chunk holds
    items of similar length and a padded batch wastes little (as lm-eval-harness sorts
    its requests)."""
    order = list(range(len(items)))
    if length is not None:
        order.sort(key=lambda i: -length(items[i]))
    chunks = list(_chunks([items[i] for i in order], max(1, batch_size)))

    def one(chunk: Sequence[T]) -> Sequence[R]:
        out = fn(list(chunk))
        if progress is not None:
            progress(len(chunk))
        return out

    if concurrency <= 1 or len(chunks) <= 1:
        results = [one(c) for c in chunks]
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(one, chunks))
    flat = [r for chunk in results for r in chunk]
    out: list[R] = [flat[0]] * len(flat) if flat else []
    for position, i in enumerate(order):
        out[i] = flat[position]
    return out


def _prompt_length(prompt: Prompt) -> int:
    return len(prompt) if isinstance(prompt, str) else sum(len(m["content"]) for m in prompt)


def single_token_choices(lm: LanguageModel, per_item: list[list[str]]) -> list[str] | None:
    """The distinct continuations when each is a single token for ``lm`` (asked once
    each: the length of its continuation log-probabilities), else None. Servers are
    left out: they report only their top few next tokens."""
    distinct = list(dict.fromkeys(c for conts in per_item for c in conts))
    if is_server(lm) or not distinct or len(distinct) > 64:
        return None
    if any(len(c) > 12 or " " in c.strip() for c in distinct):
        return None  # several words: not one token; spare the probe
    lengths = lm.continuation_logprobs(["Answer:"] * len(distinct), distinct)
    return distinct if all(len(x) == 1 for x in lengths) else None


def check_loglikelihood(lm: LanguageModel, model_spec: str | None) -> None:
    """Refuse backends whose continuation log-probabilities are known to be wrong."""
    from gristmill.evals.backends import loglikelihood_problem

    problem = loglikelihood_problem(lm, model_spec)
    if problem:
        raise EvalError(problem)


# -- the run --------------------------------------------------------------------------------


def _labels_of(items: list[dict[str, Any]]) -> tuple[list[str], bool]:
    """Class labels of multiple-choice items: the choice texts when every item offers
    the same choices (a classification set), else the letters (positions)."""
    first = items[0]["choices"] if items else []
    same = bool(first) and all(it["choices"] == first for it in items)
    if same:
        return list(first), True
    width = max((len(it["choices"]) for it in items), default=0)
    return list(LETTERS[:width]), False


def _label(item: dict[str, Any], index: int | None, by_text: bool) -> str:
    if index is None or not 0 <= index < len(item["choices"]):
        return NO_LABEL
    return item["choices"][index] if by_text else LETTERS[index]


def _generated_choice(prediction: str, item: dict[str, Any]) -> int | None:
    """Which choice a generated answer names: a lone letter, else a choice's text."""
    text = prediction.strip()
    match = re.match(r"^\(?([A-J])\)?(?:[.):\s]|$)", text)
    if match and LETTERS.index(match.group(1)) < len(item["choices"]):
        return LETTERS.index(match.group(1))
    low = text.lower()
    hits = [i for i, c in enumerate(item["choices"]) if c and c.lower() in low]
    return hits[0] if len(hits) == 1 else None


def run_eval(
    ws: Workspace,
    task: Task,
    lm: LanguageModel,
    *,
    model_spec: str | None = None,
    judge: LanguageModel | None = None,
    options: RunOptions | None = None,
    say: Say = lambda _: None,
    progress: Callable[[str, int], Progress] | None = None,
) -> EvalRun:
    """Score ``task`` with ``lm`` and write the run version (module doc).

    ``progress(description, total)`` returns a callback advanced by finished items."""
    opts = options or RunOptions()
    eval_version = ensure_dataset(ws, task.dataset, task.data, task.format, task, say)
    items = load_items(eval_version, None if opts.sample else opts.limit)
    if opts.sample and opts.sample < len(items):
        keep = sorted(random.Random(opts.seed).sample(range(len(items)), opts.sample))
        items = [items[i] for i in keep]
    if not items:
        raise EvalError(f"{eval_version.ref} has no eval items")
    n_shots = task.few_shot.n if opts.num_fewshot is None else opts.num_fewshot
    task = task.model_copy(update={"few_shot": task.few_shot.model_copy(update={"n": n_shots})})
    scoring: str | None = None
    pool: list[dict[str, Any]] = []
    shot_ref: str | None = None
    if n_shots:
        fs = task.few_shot
        source = ensure_dataset(ws, fs.dataset or task.dataset, fs.data, fs.format, task, say)
        shot_ref = source.ref
        pool = load_items(source)
    prompts: list[Prompt] = [build_prompt(task, it, pick_shots(task, it, pool)) for it in items]
    names = [m.name for m in task.metrics]
    per_sample: list[M.SampleScore] = []
    answers: list[str] = []
    extra_meta: list[dict[str, Any]] = [{} for _ in items]
    gold_labels: list[str] = []
    pred_labels: list[str] = []
    labels: list[str] = []

    def bar(what: str, total: int) -> Progress | None:
        return progress(what, total) if progress else None

    if task.output_type == "loglikelihood":
        check_loglikelihood(lm, model_spec)
        if task.chat:
            raise EvalError(
                f"task {task.name}: loglikelihood tasks use raw text prompts (chat: false)"
            )
        pairs: list[tuple[str, str]] = []
        for it, prompt in zip(items, prompts, strict=True):
            if not it["choices"] or it.get("answer_index") is None:
                raise EvalError(f"task {task.name}: item {it['id']} has no choices/answer_index")
            assert isinstance(prompt, str)
            pairs.extend((prompt, c) for c in continuations(task, it))
        single = single_token_choices(lm, [continuations(task, it) for it in items])
        if single is not None:
            # every choice is one token: one forward per item, the choices read from the
            # last position's distribution (what lm-eval-harness does for shared contexts)
            scoring = "next-token"
            answered = call_chunked(
                lambda chunk: lm.next_token_logprobs(chunk, single, top_k=0),
                prompts,
                opts.batch_size,
                opts.concurrency,
                bar(f"{task.name}: scoring choices", len(prompts)),
                length=_prompt_length,
            )
            scored = [
                [answered[i].logprobs.get(c, -math.inf)]
                for i, it in enumerate(items)
                for c in continuations(task, it)
            ]
        else:
            scoring = "continuation"
            # Sorted by context length only (a stable sort), an item's choices stay side by
            # side, and a local call carries `batch_size` items' choices: the backend packs
            # the choices that share a context into one row (one context encoding each).
            per_call = opts.batch_size
            if not is_server(lm):
                per_call *= max((len(it["choices"]) for it in items), default=1) or 1
            scored = call_chunked(
                lambda chunk: lm.continuation_logprobs(
                    [c for c, _ in chunk], [x for _, x in chunk]
                ),
                pairs,
                per_call,
                opts.concurrency,
                bar(f"{task.name}: scoring choices", len(pairs)),
                length=lambda pair: len(pair[0]),
            )
        labels, by_text = _labels_of(items)
        at = 0
        for i, it in enumerate(items):
            k = len(it["choices"])
            lls = [float(sum(lp)) for lp in scored[at : at + k]]
            at += k
            score, pick, pick_norm = M.score_choices(task.metrics, lls, it)
            per_sample.append(score)
            answers.append(continuations(task, it)[pick].removeprefix(task.target_delimiter))
            extra_meta[i] = {
                "choice_logprobs": lls,
                "pick": pick,
                "pick_norm": pick_norm,
            }
            gold_labels.append(_label(it, it["answer_index"], by_text))
            pred_labels.append(_label(it, pick, by_text))
    elif task.output_type == "perplexity":
        pairs = []
        for it, prompt in zip(items, prompts, strict=True):
            text = prompt if isinstance(prompt, str) else prompt_text(prompt)
            if it["references"]:
                pairs.append((text, task.target_delimiter + it["references"][0]))
            else:
                pairs.append(("", text))
        scored = call_chunked(
            lambda chunk: lm.continuation_logprobs([c for c, _ in chunk], [x for _, x in chunk]),
            pairs,
            opts.batch_size,
            opts.concurrency,
            bar(f"{task.name}: perplexity", len(pairs)),
            length=lambda pair: len(pair[0]) + len(pair[1]),
        )
        for lp in scored:
            per_sample.append(M.score_perplexity(list(lp)))
            answers.append("")
    else:
        gen = task.generation
        params = GenerationParams(
            max_tokens=opts.max_tokens or gen.max_tokens,
            temperature=gen.temperature,
            stop=tuple(gen.stop),
            seed=opts.seed if gen.temperature > 0 else None,
        )
        outputs = call_chunked(
            lambda chunk: lm.generate(chunk, params),
            prompts,
            opts.batch_size,
            opts.concurrency,
            bar(f"{task.name}: generating", len(prompts)),
            length=_prompt_length,
        )
        answers = [o.texts[0] if o.texts else "" for o in outputs]
        for i, (it, answer) in enumerate(zip(items, answers, strict=True)):
            per_sample.append(M.score_generation(task.metrics, answer, it))
            extra_meta[i]["finish_reason"] = (outputs[i].finish_reasons or [""])[0]
        if "classification" in names:
            labels, by_text = _labels_of(items)
            for it, answer in zip(items, answers, strict=True):
                gold_labels.append(_label(it, it.get("answer_index"), by_text))
                pred_labels.append(_label(it, _generated_choice(answer, it), by_text))
        if "model_graded" in names:
            _grade(task, items, answers, per_sample, extra_meta, judge or lm, opts, bar)

    for spec in task.metrics:
        if spec.name == "exact_match" and spec.extract != "none":
            for k, answer in enumerate(answers):
                extra_meta[k].setdefault("extracted", M.extract(spec, answer))
    class_report = (
        classification(gold_labels, pred_labels, labels, opts.resamples, seed=opts.seed)
        if "classification" in names and gold_labels
        else None
    )
    if class_report is not None:
        for k, (g, p) in enumerate(zip(gold_labels, pred_labels, strict=True)):
            extra_meta[k]["gold_label"], extra_meta[k]["predicted_label"] = g, p
    summary, by_tag = summarise(items, per_sample, opts.resamples, opts.seed)
    if class_report is not None:
        summary["accuracy"] = class_report.accuracy.as_dict()
        summary["macro_f1"] = class_report.macro_f1.as_dict()
    unparsed = sum(1 for m in extra_meta if m.get("rating") is None and "judge" in m)
    params_out: dict[str, Any] = {
        "task": task.name,
        "task_file": task.path,
        "task_spec": task.model_dump(exclude={"path"}),
        "model": model_spec or "default",
        "model_name": lm.name,
        "eval": eval_version.ref,
        "few_shot": shot_ref,
        "num_fewshot": n_shots,
        "limit": opts.limit,
        "sample": opts.sample,
        "max_tokens": opts.max_tokens or task.generation.max_tokens,
        "seed": opts.seed,
        "resamples": opts.resamples,
        "judge": judge.name if judge is not None else None,
        "scoring": scoring,
    }
    stats_out: dict[str, Any] = {"metrics": summary, "by_tag": by_tag, "n": len(items)}
    if class_report is not None:
        stats_out["classification"] = class_report.as_dict()
    if unparsed:
        stats_out["unparsed_ratings"] = unparsed
    name = opts.name or default_run_name(task, model_spec)
    version = _write_run(
        ws, name, task, lm, eval_version, items, prompts, answers, per_sample, extra_meta,
        params_out, stats_out,
    )  # fmt: skip
    return EvalRun(
        version,
        task.name,
        lm.name,
        len(items),
        summary,
        by_tag,
        stats_out.get("classification"),
        unparsed,
    )


def _grade(
    task: Task,
    items: list[dict[str, Any]],
    answers: list[str],
    per_sample: list[M.SampleScore],
    extra_meta: list[dict[str, Any]],
    judge: LanguageModel,
    opts: RunOptions,
    bar: Callable[[str, int], Progress | None],
) -> None:
    """Ask the judge to rate each answer with the rubric; an unreadable rating is left
    out of the mean (and counted), never guessed."""
    grader = task.grader or Grader()
    rubric = next((m.rubric for m in task.metrics if m.name == "model_graded" and m.rubric), None)
    rubric = rubric or grader.rubric
    prompts: list[Prompt] = [
        [
            {
                "role": "user",
                "content": M.judge_prompt(
                    rubric, it["input"], answer, (it["references"] or [None])[0]
                ),
            }
        ]
        for it, answer in zip(items, answers, strict=True)
    ]
    params = GenerationParams(max_tokens=grader.max_tokens, temperature=0.0)
    outs = call_chunked(
        lambda chunk: judge.generate(chunk, params),
        prompts,
        opts.batch_size,
        opts.concurrency,
        bar(f"{task.name}: judging", len(prompts)),
    )
    for k, out in enumerate(outs):
        text = out.texts[0] if out.texts else ""
        rating = M.parse_rating(text)
        extra_meta[k]["judge"] = text
        extra_meta[k]["rating"] = rating
        if rating is not None:
            per_sample[k].values["model_graded"] = rating
            per_sample[k].stats["model_graded"] = M.mean_stats(rating)


def summarise(
    items: list[dict[str, Any]],
    per_sample: list[M.SampleScore],
    resamples: int,
    seed: int,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, dict[str, Any]]]]:
    """Each metric's estimate over all items and per tag."""
    metric_names = list(dict.fromkeys(k for s in per_sample for k in s.stats))
    summary: dict[str, dict[str, Any]] = {}
    by_tag: dict[str, dict[str, dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    for it in items:
        for t in set(it["tags"]):
            counts[t] = counts.get(t, 0) + 1
    # a tag on every item (MMLU's "mmlu") says nothing the overall figure does not
    tags = sorted(t for t, c in counts.items() if c < len(items))
    for name in metric_names:
        agg = M.aggregate_of(name)
        rows = [(i, s.stats[name]) for i, s in enumerate(per_sample) if name in s.stats]
        matrix = np.asarray([r for _, r in rows], dtype=np.float64)
        est = estimate(matrix, agg, resamples, seed=seed).as_dict()
        est["higher_is_better"] = agg.higher_is_better
        summary[name] = est
        if tags:
            for tag in tags:
                keep = [r for i, r in rows if tag in items[i]["tags"]]
                if keep:
                    by_tag.setdefault(tag, {})[name] = estimate(
                        np.asarray(keep, dtype=np.float64), agg, resamples, seed=seed
                    ).as_dict()
    return summary, by_tag


def primary_metric(task: Task) -> str:
    first = task.metrics[0].name
    return "accuracy" if first == "classification" else first


def _write_run(
    ws: Workspace,
    name: str,
    task: Task,
    lm: LanguageModel,
    eval_version: Version,
    items: list[dict[str, Any]],
    prompts: list[Prompt],
    answers: list[str],
    per_sample: list[M.SampleScore],
    extra_meta: list[dict[str, Any]],
    params: dict[str, Any],
    stats: dict[str, Any],
) -> Version:
    primary = primary_metric(task)
    rows: list[dict[str, Any]] = []
    score_cols: dict[str, list[Any]] = {"id": []}
    value_names = list(dict.fromkeys(k for s in per_sample for k in s.values))
    for col in value_names:
        score_cols[col] = []
    score_cols["correct"] = []
    for it, prompt, answer, score, extra in zip(
        items, prompts, answers, per_sample, extra_meta, strict=True
    ):
        if isinstance(prompt, str):
            messages = [Message(role="user", content=prompt or " ")]
            system = None
        else:
            system = next((m["content"] for m in prompt if m["role"] == "system"), None)
            messages = [
                Message(role=m["role"], content=m["content"])
                for m in prompt
                if m["role"] != "system"
            ]
        messages.append(Message(role="assistant", content=answer))
        correct = _correct(primary, score, extra)
        meta = {
            "eval_item": it["id"],
            "task": task.name,
            "input": it["input"],
            "references": it["references"],
            "choices": it["choices"],
            "answer_index": it.get("answer_index"),
            "tags": it["tags"],
            "item_meta": it["meta"],
            "scores": score.values,
            "stats": score.stats,
            "correct": correct,
            **extra,
        }
        record = Conversation(
            id=it["id"],
            source=eval_version.ref,
            origin=f"model:{lm.name}",
            system=system,
            messages=messages,
            meta=meta,
            domain=task.name,
        )
        rows.append(to_row(record))
        score_cols["id"].append(it["id"])
        for col in value_names:
            score_cols[col].append(score.values.get(col))
        score_cols["correct"].append(correct)
    with VersionWriter(
        ws, name, Kind.CONVERSATION, operation="eval", params=params, parent=eval_version.ref
    ) as writer:
        writer.stats = stats
        writer.write_rows(rows)
    version = writer.version
    assert version is not None
    version.write_attribute(
        "scores", pa.table(score_cols), operation="eval", params={"task": task.name}
    )
    return version


def _correct(primary: str, score: M.SampleScore, extra: dict[str, Any]) -> bool | None:
    """Whether the item counts as passed, by the task's first metric: 1.0 for 0/1
    metrics, the predicted label for classification; None for graded scales."""
    if primary == "accuracy":
        return bool(extra.get("gold_label") == extra.get("predicted_label"))
    value = score.values.get(primary)
    if value is None or primary not in ("exact_match", "acc", "acc_norm"):
        return None
    return bool(value == 1.0)
