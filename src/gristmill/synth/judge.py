"""AI feedback: a judge model rates each response on named dimensions and a declared
scale with a written rationale, or compares responses in pairs, in both orders, to
cancel position bias. Answers are JSON parsed strictly (``synth.parse``); an
unparseable answer may be asked once more with a repair hint (counted), and what still
fails is kept with its raw text in the run's failures, never dropped: the record stays
in the output with that candidate unrated.

``verdict="logprobs"`` reads no text: per response and dimension the judge's turn is
begun with ``{"<dimension>": `` and the rating is the probability-weighted mean of the
scale's values as the next token (``synth.scale``), for small local judges that seldom
write valid JSON. It gives no rationale; a response whose scale values get almost no
probability is a failure, kept and counted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel

from gristmill.models.protocols import ChatMessage, GenerationParams
from gristmill.records.kinds import (
    Candidate,
    Conversation,
    Kind,
    Preference,
    Rating,
    RecordBase,
    ScaleSpec,
)
from gristmill.store import Workspace
from gristmill.store.workspace import check_name
from gristmill.synth.output import RunResult, write_run
from gristmill.synth.parse import (
    PairwiseVerdict,
    ParseFailure,
    check_dimension_name,
    parse_as,
    rating_example,
    rating_schema,
)
from gristmill.synth.runner import Failure, Run, RunOptions, SynthError
from gristmill.synth.scale import ScaleScore, scale_candidates, score
from gristmill.synth.sources import render_prompt
from gristmill.synth.templates import render

# HelpSteer2's attributes (Wang et al. 2024), rated 0-4 there.
HELPSTEER2: dict[str, str] = {
    "helpfulness": "overall helpfulness of the response to the request",
    "correctness": "all pertinent facts included, and no errors",
    "coherence": "consistency and clarity of expression",
    "complexity": "intellectual depth needed to write the response "
    "(basic language competency vs. deep domain expertise)",
    "verbosity": "amount of detail relative to what the request asks for",
}
PAIRWISE_EXAMPLE = '{"winner": "A" or "B" or "tie", "rationale": "one or two sentences"}'


@dataclass(frozen=True)
class JudgeConfig:
    dimensions: tuple[str, ...] = tuple(HELPSTEER2)
    descriptions: dict[str, str] = field(default_factory=dict)  # extra or overriding
    low: int = 0
    high: int = 4
    pairwise: bool = False
    repair: bool = True  # ask once more with the parse error when an answer is unreadable
    max_tokens: int = 256
    limit: int | None = None
    # Start the judge's turn with the answer's opening ('{"helpfulness": '), which the
    # model continues: small local models then write valid JSON far more often. Local
    # backends continue a trailing assistant turn; most servers do not (they close it).
    prefill: bool = False
    verdict: str = "text"  # text: JSON with a rationale; logprobs: G-Eval's weighted mean
    min_mass: float = 0.05  # logprobs: below this total P(scale values) is a failure

    def describe(self, dimension: str) -> str:
        return self.descriptions.get(dimension) or HELPSTEER2.get(dimension, "")


def as_preference(record: RecordBase) -> Preference | None:
    """A preference record to judge: itself, or a conversation whose last answer is
    the single candidate. None when there is nothing to judge."""
    if isinstance(record, Preference):
        return record
    if isinstance(record, Conversation):
        msgs = record.messages
        last_user = max((i for i, m in enumerate(msgs) if m.role == "user"), default=-1)
        if last_user < 0 or last_user == len(msgs) - 1:
            return None
        return Preference(
            id=record.id,
            source=record.source,
            source_row=record.source_row,
            created_at=record.created_at,
            origin=record.origin,
            meta=record.meta,
            task_category=record.task_category,
            domain=record.domain,
            system=record.system,
            prompt=msgs[: last_user + 1],
            candidates=[Candidate(messages=msgs[last_user + 1 :], origin=record.origin)],
        )
    return None


def response_text(candidate: Candidate) -> str:
    return "\n\n".join(m.content for m in candidate.messages)


Key = tuple[str, int | None]  # (record id, candidate index or pair number)


def ask(
    run: Run,
    jobs: list[tuple[Key, list[ChatMessage]]],
    schema: type[BaseModel],
    example: str,
    max_tokens: int,
    repair: bool,
    step: str,
    prefill: str | None = None,
) -> list[BaseModel | None]:
    """Ask every job, parse strictly, repair once if asked; failures are recorded.
    With ``prefill`` the judge's turn starts with it and the answer is prefill + text."""
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
    ids = [k[0] for k, _ in jobs]
    head = prefill or ""
    tail: list[ChatMessage] = [{"role": "assistant", "content": head}] if prefill else []
    cands = [k[1] for k, _ in jobs]
    answers = run.generate([([*m, *tail], params) for _, m in jobs], step, ids, cands)
    out: list[BaseModel | None] = [None] * len(jobs)
    retry: list[tuple[int, str, str]] = []  # job index, raw, error
    for n, ((_key, _), gen) in enumerate(zip(jobs, answers, strict=True)):
        if gen is None:
            continue  # a model error, recorded by the run
        raw = head + (gen.texts[0] if gen.texts else "")
        try:
            out[n] = parse_as(schema, raw)
            run.counts["parsed_first_try"] += 1
        except ParseFailure as exc:
            retry.append((n, raw, str(exc)))
    if retry and repair:
        calls = []
        for n, raw, error in retry:
            hint = render("judge_repair", error=error, raw=raw, example=example)
            messages = [*jobs[n][1], {"role": "assistant", "content": raw}]
            calls.append(([*messages, {"role": "user", "content": hint}, *tail], params))
        again = run.generate(
            calls,
            f"{step} (repair)",
            [ids[n] for n, _, _ in retry],
            [cands[n] for n, _, _ in retry],
        )
        run.counts["repairs_asked"] += len(retry)
        still: list[tuple[int, str, str]] = []
        for (n, raw, error), gen in zip(retry, again, strict=True):
            raw2 = head + (gen.texts[0] if gen is not None and gen.texts else "")
            try:
                if gen is None:
                    raise ParseFailure("the repair call failed")
                out[n] = parse_as(schema, raw2)
                run.counts["repaired"] += 1
            except ParseFailure as exc2:
                still.append((n, f"{raw}\n--- repair answer ---\n{raw2}", f"{error} | {exc2}"))
        retry = still
    for n, raw, error in retry:
        key = jobs[n][0]
        run.fail(
            Failure(
                key[0],
                step,
                "unparseable",
                error,
                raw,
                candidate=key[1],
                attempts=2 if repair else 1,
            )
        )
    return out


def _rating_jobs(
    records: list[Preference], config: JudgeConfig
) -> list[tuple[Key, list[ChatMessage]]]:
    dims = "\n".join(
        f"- {d}: {config.describe(d)}" if config.describe(d) else f"- {d}"
        for d in config.dimensions
    )
    example = rating_example(list(config.dimensions), config.low, config.high)
    jobs: list[tuple[Key, list[ChatMessage]]] = []
    for r in records:
        prompt = render_prompt(r.prompt)
        for i, c in enumerate(r.candidates):
            text = render(
                "judge_rating",
                low=config.low,
                high=config.high,
                dimensions=dims,
                prompt=prompt,
                response=response_text(c),
                example=example,
            )
            jobs.append(((r.id, i), [{"role": "user", "content": text}]))
    return jobs


def _pair_jobs(
    records: list[Preference],
) -> tuple[list[tuple[Key, list[ChatMessage]]], list[tuple[int, int, int]]]:
    """Both orders of every pair of candidates; (record no., a, b) per job pair."""
    jobs: list[tuple[Key, list[ChatMessage]]] = []
    pairs: list[tuple[int, int, int]] = []
    for k, r in enumerate(records):
        prompt = render_prompt(r.prompt)
        for a in range(len(r.candidates)):
            for b in range(a + 1, len(r.candidates)):
                for first, second in ((a, b), (b, a)):
                    text = render(
                        "judge_pairwise",
                        prompt=prompt,
                        response_a=response_text(r.candidates[first]),
                        response_b=response_text(r.candidates[second]),
                    )
                    jobs.append(((r.id, len(pairs)), [{"role": "user", "content": text}]))
                pairs.append((k, a, b))
    return jobs, pairs


def _set_ratings(
    candidate: Candidate, values: dict[str, Any], rater: str, dims: tuple[str, ...]
) -> Candidate:
    keep = [x for x in candidate.ratings if not (x.rater == rater and x.dimension in dims)]
    new = [Rating(dimension=d, value=float(values[d]), rater=rater) for d in dims]
    return candidate.model_copy(update={"ratings": keep + new})


def judge(
    workspace: Workspace,
    ref: str,
    config: JudgeConfig | None = None,
    options: RunOptions | None = None,
    output: str | None = None,
) -> RunResult:
    """Judge every response of ``ref`` (preference, or conversations' last answers);
    a new preference version of ``output`` (default ``<name>-judged``)."""
    config = config or JudgeConfig()
    for d in config.dimensions:
        check_dimension_name(d)
    if config.low >= config.high:
        raise SynthError(f"scale {config.low}:{config.high}: the low end must be below the high")
    if config.verdict not in ("text", "logprobs"):
        raise SynthError(f"verdict must be text or logprobs, not {config.verdict!r}")
    logprobs = config.verdict == "logprobs"
    if logprobs and config.pairwise:
        raise SynthError("--verdict logprobs rates responses; it does not apply to --pairwise")
    if logprobs and not (config.low >= 0 and config.high <= 9):
        raise SynthError(
            f"scale {config.low}:{config.high}: --verdict logprobs reads one digit, "
            "so the scale must lie within 0:9"
        )
    source = workspace.version(ref)
    run = Run(
        workspace,
        "judge-pairwise" if config.pairwise else "judge",
        options,
        ["judge_pairwise" if config.pairwise else "judge_rating", "judge_repair"],
    )
    records: list[Preference] = []
    for n, record in enumerate(source.iter_records()):
        if config.limit is not None and n >= config.limit:
            break
        pref = as_preference(record)
        if pref is None:
            run.fail(
                Failure(record.id, "judge", "nothing_to_judge", "no response after a user turn")
            )
        else:
            records.append(pref)
    if not records:
        raise SynthError(f"{source.ref} has no response to judge")
    rater = run.origin
    if config.pairwise:
        out_records = _judge_pairwise(run, records, config, rater)
    elif logprobs:
        out_records = _judge_logprobs(run, records, config, rater)
    else:
        out_records = _judge_ratings(run, records, config, rater)
    params: dict[str, Any] = {
        "input": source.ref,
        "model": run.model_name,
        "mode": "pairwise" if config.pairwise else "ratings",
        "dimensions": list(config.dimensions),
        "scale": [config.low, config.high],
        "repair": config.repair,
        "prefill": config.prefill,
        "max_tokens": config.max_tokens,
        "verdict": config.verdict,
    }
    if logprobs:
        params["min_mass"] = config.min_mass
        params["rationale"] = False  # no text is read in this mode
    counts = {"records_in": source.row_count, "records_out": len(out_records)}
    card = run.card(params, counts)
    name = check_name(output or f"{source.name}-judged")
    return write_run(
        workspace,
        name,
        Kind.PREFERENCE,
        out_records,
        operation="synth-judge",
        params=params,
        parent=source.ref,
        card=card,
        failures=run.failures,
    )


def _judge_ratings(
    run: Run, records: list[Preference], config: JudgeConfig, rater: str
) -> list[Preference]:
    dims = config.dimensions
    schema = rating_schema(list(dims), config.low, config.high)
    example = rating_example(list(dims), config.low, config.high)
    jobs = _rating_jobs(records, config)
    prefill = f'{{"{dims[0]}": ' if config.prefill else None
    verdicts = ask(run, jobs, schema, example, config.max_tokens, config.repair, "judge", prefill)
    run.counts["judgements"] = len(jobs)
    by_key = {key: v for (key, _), v in zip(jobs, verdicts, strict=True)}
    out: list[Preference] = []
    for r in records:
        candidates: list[Candidate] = []
        rationales: list[str | None] = []
        for i, c in enumerate(r.candidates):
            v = by_key.get((r.id, i))
            if v is None:
                candidates.append(c)
                rationales.append(None)
                run.counts["candidates_unrated"] += 1
                continue
            data = v.model_dump()
            candidates.append(_set_ratings(c, data, rater, dims))
            rationales.append(str(data["rationale"]))
            run.counts["candidates_rated"] += 1
        scales = [s for s in r.scales if s.dimension not in dims]
        scales += [ScaleSpec(dimension=d, min=config.low, max=config.high) for d in dims]
        meta = {**r.meta, "judge": {"model": run.model_name, "rationales": rationales}}
        out.append(r.model_copy(update={"candidates": candidates, "scales": scales, "meta": meta}))
    return out


def _judge_pairwise(
    run: Run, records: list[Preference], config: JudgeConfig, rater: str
) -> list[Preference]:
    jobs, pairs = _pair_jobs(records)
    if not pairs:
        raise SynthError("pairwise judging needs records with at least two candidates")
    prefill = '{"winner": "' if config.prefill else None
    verdicts = ask(
        run,
        jobs,
        PairwiseVerdict,
        PAIRWISE_EXAMPLE,
        config.max_tokens,
        config.repair,
        "judge",
        prefill,
    )
    run.counts["comparisons"] = len(jobs)
    results: dict[int, list[dict[str, Any]]] = {}
    for p, (k, a, b) in enumerate(pairs):
        v1, v2 = verdicts[2 * p], verdicts[2 * p + 1]
        w1 = v1.model_dump()["winner"] if v1 is not None else None
        w2 = v2.model_dump()["winner"] if v2 is not None else None
        # order 1 shows (a, b), order 2 shows (b, a)
        pick1 = {"A": a, "B": b, "tie": "tie"}.get(w1) if w1 else None
        pick2 = {"A": b, "B": a, "tie": "tie"}.get(w2) if w2 else None
        if pick1 is None or pick2 is None:
            outcome: Any = "failed"
        elif pick1 == pick2:
            outcome = pick1
        else:
            outcome = "inconsistent"  # position bias: the verdict followed the order
        run.counts[f"pairs_{'won' if isinstance(outcome, int) else outcome}"] += 1
        rationale = [v.model_dump()["rationale"] if v is not None else None for v in (v1, v2)]
        results.setdefault(k, []).append(
            {"a": a, "b": b, "orders": [w1, w2], "result": outcome, "rationales": rationale}
        )
    out: list[Preference] = []
    for k, r in enumerate(records):
        found = results.get(k, [])
        score = [0] * len(r.candidates)
        decided = 0
        for res in found:
            if isinstance(res["result"], int):
                winner = res["result"]
                loser = res["b"] if winner == res["a"] else res["a"]
                score[winner] += 1
                score[loser] -= 1
                decided += 1
            elif res["result"] in ("tie", "inconsistent"):
                decided += 1
        candidates = list(r.candidates)
        if decided:  # Copeland ranks: wins minus losses, dense, 1 is best
            levels = sorted(set(score), reverse=True)
            candidates = [
                c.model_copy(update={"rank": levels.index(score[i]) + 1})
                for i, c in enumerate(candidates)
            ]
        meta = {**r.meta, "judge": {"model": run.model_name, "pairs": found}}
        out.append(r.model_copy(update={"candidates": candidates, "meta": meta}))
    return out


def _score_jobs(
    records: list[Preference], config: JudgeConfig
) -> list[tuple[Key, str, list[ChatMessage]]]:
    """One prompt per response and dimension, ending where the score digit goes."""
    jobs: list[tuple[Key, str, list[ChatMessage]]] = []
    for r in records:
        prompt = render_prompt(r.prompt)
        for i, c in enumerate(r.candidates):
            for d in config.dimensions:
                text = render(
                    "judge_rating",
                    low=config.low,
                    high=config.high,
                    dimensions=f"- {d}: {config.describe(d)}" if config.describe(d) else f"- {d}",
                    prompt=prompt,
                    response=response_text(c),
                    example=f'{{"{d}": <integer {config.low}-{config.high}>}}',
                )
                messages: list[ChatMessage] = [
                    {"role": "user", "content": text},
                    {"role": "assistant", "content": f'{{"{d}": '},  # continued by the model
                ]
                jobs.append(((r.id, i), d, messages))
    return jobs


def _judge_logprobs(
    run: Run, records: list[Preference], config: JudgeConfig, rater: str
) -> list[Preference]:
    dims = config.dimensions
    jobs = _score_jobs(records, config)
    answers = run.next_tokens(
        [m for _, _, m in jobs],
        scale_candidates(config.low, config.high),
        "judge (logprobs)",
        [k[0] for k, _, _ in jobs],
        [k[1] for k, _, _ in jobs],
    )
    run.counts["judgements"] = len(jobs)
    scores: dict[Key, dict[str, ScaleScore]] = {}
    masses: list[float] = []
    for (key, dim, _), nt in zip(jobs, answers, strict=True):
        if nt is None:
            continue  # a model error, recorded by the run
        found = score(nt, config.low, config.high)
        masses.append(found.mass)
        low = found.mass < config.min_mass
        if low or found.mass > 1.0 + 1e-6:  # above 1: variants shared a token, not a reading
            reason = "low_scale_mass" if low else "overlapping_tokens"
            bound = f"below {config.min_mass}" if low else "above 1"
            detail = f"{dim}: P(scale values) = {found.mass:.4f}, {bound}"
            raw = orjson.dumps(found.top).decode()  # the tokens the judge did expect
            run.fail(Failure(key[0], "judge", reason, detail, raw, candidate=key[1]))
            continue
        scores.setdefault(key, {})[dim] = found
        run.counts["dimension_scores"] += 1
    if masses:
        run.counts["mean_scale_mass"] = round(sum(masses) / len(masses), 4)  # type: ignore[assignment]
    out: list[Preference] = []
    for r in records:
        candidates: list[Candidate] = []
        found_scores: list[dict[str, Any] | None] = []
        for i, c in enumerate(r.candidates):
            got = scores.get((r.id, i), {})
            if not got:
                candidates.append(c)
                found_scores.append(None)
                run.counts["candidates_unrated"] += 1
                continue
            rated = tuple(d for d in dims if d in got)
            values = {d: got[d].mean for d in rated}
            candidates.append(_set_ratings(c, values, rater, rated))
            found_scores.append({d: got[d].to_dict() for d in rated})
            run.counts["candidates_rated"] += 1
        scales = [s for s in r.scales if s.dimension not in dims]
        scales += [ScaleSpec(dimension=d, min=config.low, max=config.high) for d in dims]
        meta = {
            **r.meta,
            "judge": {
                "model": run.model_name,
                "verdict": "logprobs",
                "rationales": [None] * len(r.candidates),  # none: no text is generated
                "scores": found_scores,
            },
        }
        out.append(r.model_copy(update={"candidates": candidates, "scales": scales, "meta": meta}))
    return out
