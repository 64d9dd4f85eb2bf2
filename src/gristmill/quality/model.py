"""The typed quality report: what ``report.json`` holds and the HTML and terminal read.

Every number here is defined in docs/quality.md; the models only carry them, so a
report written by one version of gristmill can be re-read and compared by another.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

REPORT_FORMAT = 1


class ReportOptions(BaseModel):
    """What a report was computed with; two reports compare cleanly only when equal."""

    stale_days: int = Field(default=365, ge=0)
    tokenizer: str = "regex"  # "regex" (\w+|[^\w\s]) or the path of a tokenizer.json
    language_chars: int = Field(default=2000, gt=0)
    batch_size: int = Field(default=4096, gt=0)
    examples: int = Field(default=3, ge=0)  # example ids kept per reason or group
    now: datetime | None = None  # reference time for ages; None means "when run"

    def same_metrics(self, other: ReportOptions) -> bool:
        """Whether a report made with ``other`` answers a request made with ``self``."""
        return (
            self.stale_days == other.stale_days
            and self.tokenizer == other.tokenizer
            and self.language_chars == other.language_chars
        )


class Reason(BaseModel):
    """One kind of problem: how many records have it and a few of their ids."""

    reason: str
    count: int
    examples: list[str] = Field(default_factory=list)


class Share(BaseModel):
    """One value of a categorical mix (language, category, origin...)."""

    value: str
    count: int
    rate: float


class ErrorStats(BaseModel):
    records: int  # records with at least one reason
    rate: float
    reasons: list[Reason] = Field(default_factory=list)


class FieldCompleteness(BaseModel):
    field: str
    required: bool
    present: int
    rate: float
    description: str = ""


class Completeness(BaseModel):
    fields: list[FieldCompleteness] = Field(default_factory=list)
    overall_rate: float  # filled cells / all declared cells
    required_complete_rate: float  # records with every required field present


class GroupStats(BaseModel):
    """Groups of records sharing a key (prompt, content, id) that matter together."""

    groups: int = 0
    records: int = 0
    examples: list[list[str]] = Field(default_factory=list)  # ids, one list per group


class Coherence(BaseModel):
    records_with_problems: int
    index: float  # share of records free of consistency problems
    problems: list[Reason] = Field(default_factory=list)
    language_pairs: list[Share] = Field(default_factory=list)  # "en→fr" mismatches
    conflicts: GroupStats = Field(default_factory=GroupStats)  # same key, different answers
    prompts_with_several_answers: GroupStats = Field(default_factory=GroupStats)  # conversations


class Bin(BaseModel):
    label: str
    low: float
    high: float | None  # None: open-ended
    count: int


class Freshness(BaseModel):
    dated: int  # records with a created_at
    undated: int
    import_stamped: int  # created_at within a day before the import that made the lineage
    future: int  # created_at after the report's reference time
    oldest: datetime | None = None
    newest: datetime | None = None
    median_age_days: float | None = None
    p90_age_days: float | None = None
    stale_days: int
    stale_records: int
    stale_rate: float
    histogram: list[Bin] = Field(default_factory=list)


class Duplicates(BaseModel):
    method: str  # how the hashing was done (e.g. DuckDB on-disk table of 8-byte digests)
    content_columns: list[str]
    duplicate_records: int  # records that repeat an earlier record's content
    duplicate_groups: int  # distinct contents that occur more than once
    rate: float
    examples: list[list[str]] = Field(default_factory=list)
    duplicate_ids: int  # records whose id was already used by an earlier record
    duplicate_id_groups: int
    id_examples: list[str] = Field(default_factory=list)


class Summary(BaseModel):
    """Distribution of one number; percentiles are nearest-rank (docs/quality.md)."""

    count: int = 0
    mean: float = 0.0
    min: float = 0.0
    p5: float = 0.0
    p25: float = 0.0
    p50: float = 0.0
    p75: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0


class Histogram(BaseModel):
    """Counts per power-of-two bin: [0,1), [1,2), [2,4), ... (edges has len(counts)+1)."""

    edges: list[float] = Field(default_factory=list)
    counts: list[int] = Field(default_factory=list)


class LengthStats(BaseModel):
    """Lengths of one part (the whole record, a role, a prompt...) in chars and tokens."""

    part: str
    chars: Summary
    tokens: Summary
    chars_histogram: Histogram
    tokens_histogram: Histogram


class PIIExample(BaseModel):
    """Where a type was found: the record, the part, and the match masked."""

    id: str
    part: str
    masked: str  # e.g. j***@e***.com; never the value itself


class PIITypeStats(BaseModel):
    type: str  # email, phone, ip_address, credit_card, iban, secret
    records: int  # records with at least one match of this type
    rate: float  # records / N
    matches: int  # matches in all records
    examples: list[PIIExample] = Field(default_factory=list)


class PIIPartStats(BaseModel):
    """PII in one part of the records: a role, the prompt, the candidates, the steps..."""

    part: str
    texts: int  # non-empty texts scanned in this part
    records: int  # records with a match in this part
    rate: float  # records / N
    matches: dict[str, int] = Field(default_factory=dict)  # per type


class PIIStats(BaseModel):
    method: str
    records: int  # records with a match of any type
    rate: float  # the PII rate: records / N
    matches: int
    types: list[PIITypeStats] = Field(default_factory=list)
    parts: list[PIIPartStats] = Field(default_factory=list)

    def type(self, name: str) -> PIITypeStats | None:
        return next((t for t in self.types if t.type == name), None)

    def part(self, name: str) -> PIIPartStats | None:
        return next((p for p in self.parts if p.part == name), None)


class QualityReport(BaseModel):
    format: int = REPORT_FORMAT
    ref: str
    dataset: str
    version: int
    kind: str
    records: int
    created_at: datetime
    gristmill_version: str
    options: ReportOptions
    seconds: float = 0.0
    errors: ErrorStats
    completeness: Completeness
    coherence: Coherence
    freshness: Freshness
    duplicates: Duplicates
    tokenizer: str  # description of the tokenizer used for token counts
    lengths: list[LengthStats] = Field(default_factory=list)
    structure: dict[str, Summary] = Field(default_factory=dict)  # turns, candidates, steps
    languages: list[Share] = Field(default_factory=list)
    task_categories: list[Share] = Field(default_factory=list)
    domains: list[Share] = Field(default_factory=list)
    origins: list[Share] = Field(default_factory=list)
    sources: list[Share] = Field(default_factory=list)
    pii: PIIStats | None = None  # None only in reports written before it was measured

    def length(self, part: str) -> LengthStats | None:
        """The length stats of one part ("record", "user", "assistant"...), if measured."""
        return next((s for s in self.lengths if s.part == part), None)


class MetricChange(BaseModel):
    """One metric in two reports; ``better`` says which direction is an improvement."""

    group: str
    metric: str
    a: float | None
    b: float | None
    delta: float | None
    better: str | None = None  # "higher", "lower" or None (neither)
    unit: str = ""  # "rate" (0..1), "count", "days", "tokens", "chars"

    @property
    def improved(self) -> bool | None:
        if self.delta is None or self.better is None or self.delta == 0:
            return None
        return (self.delta > 0) == (self.better == "higher")


class ReportComparison(BaseModel):
    a: str  # ref of the first (older) report
    b: str
    a_records: int
    b_records: int
    options_differ: bool = False
    changes: list[MetricChange] = Field(default_factory=list)

    def change(self, group: str, metric: str) -> MetricChange | None:
        return next((c for c in self.changes if c.group == group and c.metric == metric), None)
