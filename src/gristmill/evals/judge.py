"""A judge model compares the answers of several runs on the same items, two at a
time, and writes its verdicts as ``preference`` records (ranks on two candidates named
by their runs' models): the same shape people's rankings from the annotation app take,
so ``gristmill eval rank`` treats both alike.

The prompt is MT-Bench's pairwise one (verdict ``[[A]]``, ``[[B]]`` or ``[[C]]`` for a
tie). The answers' order alternates from item to item, so a judge that prefers the first
position does not favour one system.

``verdict="text"`` lets the judge write its explanation and reads the last ``[[X]]``
(unreadable answers are skipped and counted). ``verdict="logprobs"`` suits small local
judges that do not follow the format: the judge's turn is begun with ``Verdict: [[`` and
the verdict is the most likely of the next tokens ``A``, ``B``, ``C``; the probabilities
are kept in the record's meta.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from typing import Any

import orjson

from gristmill.evals.runner import slug
from gristmill.models.protocols import GenerationParams, LanguageModel, Prompt
from gristmill.records.arrow import to_row
from gristmill.records.kinds import Candidate, Kind, Message, Preference
from gristmill.store import Version, VersionWriter

PAIRWISE = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by "
    "two AI assistants to the user question displayed below. Choose the assistant that follows "
    "the user's instructions and answers the user's question better. Avoid any position biases "
    "and do not let the length of the responses influence your evaluation. Output your final "
    'verdict by strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if '
    'assistant B is better, and "[[C]]" for a tie.\n\n[User Question]\n{question}\n\n'
    "[The Start of Assistant A's Answer]\n{a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{b}\n[The End of Assistant B's Answer]"
)
_VERDICT = re.compile(r"\[\[([ABC])\]\]")


def parse_verdict(text: str) -> str | None:
    found = _VERDICT.findall(text)
    return found[-1] if found else None


def _answers(run: Version) -> tuple[str, dict[str, tuple[str, str]]]:
    params = run.manifest.params
    spec = params.get("model")
    # a path or URL is shortened to its last part (tiny-a, smollm2)
    system = slug(str(spec)) if spec and spec != "default" else str(params.get("model_name"))
    out: dict[str, tuple[str, str]] = {}
    for row in run.iter_rows(columns=["id", "messages", "meta"]):
        meta = orjson.loads(row["meta"]) if row.get("meta") else {}
        out[str(meta.get("eval_item", row["id"]))] = (
            meta.get("input", ""),
            row["messages"][-1]["content"],
        )
    return system, out


def _pairing(
    runs: list[Version],
) -> tuple[
    list[tuple[str, dict[str, tuple[str, str]]]], list[str], list[tuple[str, int, int, bool]]
]:
    """Each run's answers, the systems' names (made distinct), and every (item, run i,
    run j, swapped) comparison on shared items, the order alternating item by item."""
    answered = [_answers(r) for r in runs]
    systems = [
        s if [x for x, _ in answered].count(s) == 1 else f"{s} ({r.ref})"
        for (s, _), r in zip(answered, runs, strict=True)
    ]
    jobs: list[tuple[str, int, int, bool]] = []
    for i, j in itertools.combinations(range(len(runs)), 2):
        shared = [k for k in answered[i][1] if k in answered[j][1]]
        jobs.extend((k, i, j, n % 2 == 1) for n, k in enumerate(shared))
    return answered, systems, jobs


def pairs_for_people(runs: list[Version], name: str) -> Version:
    """The comparisons as unranked preference records, the candidates in the order
    people see them (alternating), for an annotation project with a preference or
    ranking question; its write-back sets the ranks ``eval rank`` reads."""
    answered, systems, jobs = _pairing(runs)
    rows: list[dict[str, Any]] = []
    for item, i, j, swap in jobs:
        question = answered[i][1][item][0]
        first, second = (j, i) if swap else (i, j)
        record = Preference(
            id=f"{item}:{i}-{j}",
            source=",".join(r.ref for r in runs),
            origin="synthetic:eval-pairs",
            prompt=[Message(role="user", content=question or item)],
            candidates=[
                Candidate(
                    messages=[Message(role="assistant", content=answered[k][1][item][1] or " ")],
                    model=systems[k],
                )
                for k in (first, second)
            ],
            meta={"eval_item": item},
        )
        rows.append(to_row(record))
    params = {"runs": [r.ref for r in runs]}
    with VersionWriter(runs[0].workspace, name, Kind.PREFERENCE, "eval-pairs", params) as writer:
        writer.write_rows(rows)
    assert writer.version is not None
    return writer.version


def judge_runs(
    runs: list[Version],
    judge: LanguageModel,
    name: str,
    max_tokens: int = 256,
    progress: Callable[[int], None] | None = None,
    verdict: str = "text",
) -> tuple[Version, int, int]:
    """Judge every pair of runs on their shared items; returns the preference version,
    the verdicts written and those the judge left unreadable (skipped, counted)."""
    answered, systems, jobs = _pairing(runs)
    prompts: list[Prompt] = []
    for item, i, j, swap in jobs:
        question, first = answered[i][1][item]
        second = answered[j][1][item][1]
        a, b = (second, first) if swap else (first, second)
        prompts.append([{"role": "user", "content": PAIRWISE.format(question=question, a=a, b=b)}])
    if verdict not in ("text", "logprobs"):
        raise ValueError(f"verdict must be text or logprobs, not {verdict!r}")
    texts: list[str] = []
    probabilities: list[dict[str, float]] = []
    for start in range(0, len(prompts), 8):
        chunk = prompts[start : start + 8]
        if verdict == "text":
            params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
            texts.extend(o.texts[0] if o.texts else "" for o in judge.generate(chunk, params))
        else:
            asked: list[Prompt] = [
                [*p, {"role": "assistant", "content": "Verdict: [["}]
                for p in chunk
                if not isinstance(p, str)
            ]
            for nt in judge.next_token_logprobs(asked, ["A", "B", "C"], top_k=0):
                found = {c: math.exp(nt.logprobs[c]) for c in "ABC" if c in nt.logprobs}
                probabilities.append(found)
                best = max(found, key=found.__getitem__) if found else ""
                texts.append(f"[[{best}]]" if best else "")
        if progress:
            progress(len(chunk))
    rows: list[dict[str, Any]] = []
    unreadable = 0
    for n, ((item, i, j, swap), text) in enumerate(zip(jobs, texts, strict=True)):
        said = parse_verdict(text)
        if said is None:
            unreadable += 1
            continue
        if swap and said != "C":
            said = "A" if said == "B" else "B"
        rank_i, rank_j = {"A": (1, 2), "B": (2, 1), "C": (1, 1)}[said]
        question, answer_i = answered[i][1][item]
        answer_j = answered[j][1][item][1]
        record = Preference(
            id=f"{item}:{i}-{j}",
            source=",".join(r.ref for r in runs),
            origin=f"model:{judge.name}",
            prompt=[Message(role="user", content=question or item)],
            candidates=[
                Candidate(
                    messages=[Message(role="assistant", content=answer_i or " ")],
                    model=systems[i],
                    rank=rank_i,
                ),
                Candidate(
                    messages=[Message(role="assistant", content=answer_j or " ")],
                    model=systems[j],
                    rank=rank_j,
                ),
            ],
            rationale=text,
            meta={
                "eval_item": item,
                "judge": judge.name,
                "swapped": swap,
                "verdict": verdict,
                **({"probabilities": probabilities[n]} if probabilities else {}),
            },
        )
        rows.append(to_row(record))
    params_out = {
        "runs": [r.ref for r in runs],
        "judge": judge.name,
        "verdict": verdict,
        "unreadable": unreadable,
    }
    with VersionWriter(
        runs[0].workspace, name, Kind.PREFERENCE, "eval-judge", params_out
    ) as writer:
        writer.write_rows(rows)
    assert writer.version is not None
    return writer.version, len(rows), unreadable
