"""Comparing two quality reports metric by metric (e.g. before and after a filter)."""

from __future__ import annotations

from gristmill.pii_detect import PII_TYPES
from gristmill.quality.model import (
    MetricChange,
    PIIStats,
    QualityReport,
    ReportComparison,
    Share,
)

HEADLINE_GROUPS = frozenset(
    {"size", "errors", "completeness", "coherence", "freshness", "duplicates", "pii"}
)


def _change(
    group: str,
    metric: str,
    a: float | None,
    b: float | None,
    better: str | None,
    unit: str,
) -> MetricChange:
    delta = None if a is None or b is None else b - a
    return MetricChange(group=group, metric=metric, a=a, b=b, delta=delta, better=better, unit=unit)


def _mix(group: str, a: list[Share], b: list[Share]) -> list[MetricChange]:
    """Share of every value seen in either report (0 where absent)."""
    rates_a = {s.value: s.rate for s in a}
    rates_b = {s.value: s.rate for s in b}
    values = sorted(
        set(rates_a) | set(rates_b), key=lambda v: -max(rates_a.get(v, 0), rates_b.get(v, 0))
    )
    return [
        _change(group, v, rates_a.get(v, 0.0), rates_b.get(v, 0.0), None, "rate") for v in values
    ]


def _pii_values(stats: PIIStats | None) -> dict[str, float]:
    """Every PII metric of one report by name (empty for a report written before the
    PII rate was measured, so its values show as missing, not as zeros)."""
    if stats is None:
        return {}
    values: dict[str, float] = {
        "pii rate": stats.rate,
        "records with pii": stats.records,
        "pii matches": stats.matches,
    }
    values |= {f"{kind} rate": 0.0 for kind in PII_TYPES}
    values |= {f"{t.type} rate": t.rate for t in stats.types}
    values |= {f"{p.part} pii rate": p.rate for p in stats.parts}
    return values


def _pii(a: PIIStats | None, b: PIIStats | None) -> list[MetricChange]:
    """PII rate, records and matches; the rate per type and per part (role, prompt...)."""
    va, vb = _pii_values(a), _pii_values(b)
    out: list[MetricChange] = []
    for metric in dict.fromkeys([*va, *vb]):
        if metric.endswith(" pii rate"):
            group = "pii parts"
        elif metric in ("pii rate", "records with pii", "pii matches"):
            group = "pii"
        else:
            group = "pii types"
        in_a, in_b = va.get(metric), vb.get(metric)
        # a part seen in one report only had no PII in the other: rate 0
        if metric.endswith(" pii rate"):
            in_a = in_a if in_a is not None or a is None else 0.0
            in_b = in_b if in_b is not None or b is None else 0.0
        unit = "rate" if metric.endswith("rate") else "count"
        out.append(_change(group, metric, in_a, in_b, "lower", unit))
    return out


def compare_reports(a: QualityReport, b: QualityReport) -> ReportComparison:
    """Every metric of ``a`` and ``b`` side by side; ``delta`` is b − a.

    Counts of reasons, fields, parts and mix values are matched by name; one missing
    from a report counts as 0 (reasons, mixes) or is left empty (fields, lengths).
    """
    out: list[MetricChange] = [
        _change("size", "records", a.records, b.records, None, "count"),
        _change("errors", "error rate", a.errors.rate, b.errors.rate, "lower", "rate"),
        _change(
            "errors", "records with errors", a.errors.records, b.errors.records, "lower", "count"
        ),
    ]
    reasons_a = {r.reason: r.count for r in a.errors.reasons}
    reasons_b = {r.reason: r.count for r in b.errors.reasons}
    for reason in sorted(set(reasons_a) | set(reasons_b)):
        out.append(
            _change(
                "error reasons",
                reason,
                reasons_a.get(reason, 0),
                reasons_b.get(reason, 0),
                "lower",
                "count",
            )
        )
    out += [
        _change(
            "completeness",
            "overall rate",
            a.completeness.overall_rate,
            b.completeness.overall_rate,
            "higher",
            "rate",
        ),
        _change(
            "completeness",
            "records with all required fields",
            a.completeness.required_complete_rate,
            b.completeness.required_complete_rate,
            "higher",
            "rate",
        ),
    ]
    fields_a = {f.field: f.rate for f in a.completeness.fields}
    fields_b = {f.field: f.rate for f in b.completeness.fields}
    for name in list(dict.fromkeys([*fields_a, *fields_b])):
        out.append(
            _change("fields", name, fields_a.get(name), fields_b.get(name), "higher", "rate")
        )
    ca, cb = a.coherence, b.coherence
    out += [
        _change("coherence", "coherence index", ca.index, cb.index, "higher", "rate"),
        _change(
            "coherence",
            "records with problems",
            ca.records_with_problems,
            cb.records_with_problems,
            "lower",
            "count",
        ),
        _change(
            "coherence",
            "conflicting groups",
            ca.conflicts.groups,
            cb.conflicts.groups,
            "lower",
            "count",
        ),
        _change(
            "coherence",
            "prompts with several answers",
            ca.prompts_with_several_answers.groups,
            cb.prompts_with_several_answers.groups,
            None,
            "count",
        ),
    ]
    problems_a = {r.reason: r.count for r in ca.problems}
    problems_b = {r.reason: r.count for r in cb.problems}
    for reason in sorted(set(problems_a) | set(problems_b)):
        out.append(
            _change(
                "coherence problems",
                reason,
                problems_a.get(reason, 0),
                problems_b.get(reason, 0),
                "lower",
                "count",
            )
        )
    fa, fb = a.freshness, b.freshness
    out += [
        _change("freshness", "median age", fa.median_age_days, fb.median_age_days, "lower", "days"),
        _change(
            "freshness",
            f"older than {fb.stale_days} days",
            fa.stale_rate,
            fb.stale_rate,
            "lower",
            "rate",
        ),
        _change(
            "freshness", "records without created_at", fa.undated, fb.undated, "lower", "count"
        ),
        _change(
            "freshness", "stamped at import", fa.import_stamped, fb.import_stamped, None, "count"
        ),
    ]
    da, db = a.duplicates, b.duplicates
    out += [
        _change("duplicates", "duplicate rate", da.rate, db.rate, "lower", "rate"),
        _change(
            "duplicates",
            "duplicate records",
            da.duplicate_records,
            db.duplicate_records,
            "lower",
            "count",
        ),
        _change(
            "duplicates",
            "duplicate groups",
            da.duplicate_groups,
            db.duplicate_groups,
            "lower",
            "count",
        ),
        _change(
            "duplicates", "duplicate ids", da.duplicate_ids, db.duplicate_ids, "lower", "count"
        ),
    ]
    parts = list(dict.fromkeys([s.part for s in a.lengths] + [s.part for s in b.lengths]))
    for part in parts:
        la, lb = a.length(part), b.length(part)
        out += [
            _change(
                "lengths",
                f"{part} median tokens",
                la.tokens.p50 if la else None,
                lb.tokens.p50 if lb else None,
                None,
                "tokens",
            ),
            _change(
                "lengths",
                f"{part} mean tokens",
                la.tokens.mean if la else None,
                lb.tokens.mean if lb else None,
                None,
                "tokens",
            ),
        ]
    out += _pii(a.pii, b.pii)
    out += _mix("languages", a.languages, b.languages)
    out += _mix("task categories", a.task_categories, b.task_categories)
    out += _mix("domains", a.domains, b.domains)
    out += _mix("origins", a.origins, b.origins)
    out += _mix("sources", a.sources, b.sources)
    return ReportComparison(
        a=a.ref,
        b=b.ref,
        a_records=a.records,
        b_records=b.records,
        options_differ=not a.options.same_metrics(b.options),
        changes=out,
    )
