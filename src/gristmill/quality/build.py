"""Computing a quality report in one streaming pass over a version.

Per-record metrics go into bounded accumulators (``quality.sketch``). Metrics that
need to see records together (exact duplicates, duplicate ids, same prompt with
different answers) keep one small key row per record in an on-disk DuckDB table (8-byte
digests, the row number and the id), grouped with SQL at the end: DuckDB spills to
disk, so Python memory stays flat whatever the size of the dataset.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from gristmill import __version__
from gristmill.quality.checks import (
    CONFLICT_REASONS,
    field_specs,
    inspect,
)
from gristmill.quality.model import (
    Bin,
    Coherence,
    Completeness,
    Duplicates,
    ErrorStats,
    FieldCompleteness,
    Freshness,
    GroupStats,
    LengthStats,
    QualityReport,
    Reason,
    ReportOptions,
)
from gristmill.quality.pii import PIITally, pii_texts
from gristmill.quality.sketch import CappedCounter, ReasonTally, ValueSketch
from gristmill.quality.text import (
    MIX_MIN_CONFIDENCE,
    UNDETERMINED,
    TokenCounter,
    detect_language,
    digest,
    load_tokenizer,
)
from gristmill.records.arrow import content_columns
from gristmill.records.kinds import Kind
from gristmill.store.version import Version

UNLABELLED = "unlabelled"
NONE = "(none)"
DUCKDB_MEMORY = "512MB"
DUPLICATE_METHOD = (
    "DuckDB on-disk table of 8-byte blake2b digests (content columns, sorted JSON), "
    "grouped at the end; Python memory stays flat"
)
IMPORT_WINDOW = timedelta(days=1)
AGE_BINS: list[tuple[str, float, float | None]] = [
    ("< 30 d", 0, 30),
    ("30-90 d", 30, 90),
    ("90-180 d", 90, 180),
    ("180 d-1 y", 180, 365),
    ("1-2 y", 365, 730),
    ("2-5 y", 730, 1825),
    ("> 5 y", 1825, None),
]
KEY_SCHEMA = pa.schema(
    [
        ("row_idx", pa.int64()),
        ("id", pa.string()),
        ("content_hash", pa.int64()),
        ("group_key", pa.int64()),
        ("group_answer", pa.int64()),
        ("local_problem", pa.bool_()),
    ]
)

Progress = Callable[[int], None]


def _import_time(version: Version) -> datetime | None:
    """When the import at the root of this version's lineage was written."""
    root = None
    for manifest in version.workspace.lineage(version.ref):
        root = manifest
    return root.created_at if root is not None else None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Accumulator:
    """Everything the pass adds up; ``finish`` turns it into a report."""

    def __init__(
        self,
        version: Version,
        options: ReportOptions,
        tokenizer: TokenCounter,
        db: duckdb.DuckDBPyConnection,
    ) -> None:
        self.version = version
        self.kind = version.kind
        self.options = options
        self.tokenizer = tokenizer
        self.db = db
        self.now = _utc(options.now or datetime.now(UTC))
        imported = _import_time(version)
        self.import_window = (
            (_utc(imported) - IMPORT_WINDOW, _utc(imported) + timedelta(minutes=1))
            if imported
            else None
        )
        self.content_columns = content_columns(self.kind)
        self.specs = field_specs(self.kind)
        self.rows = 0
        self.error_records = 0
        self.errors = ReasonTally(options.examples)
        self.problems = ReasonTally(options.examples)
        self.problem_records = 0
        self.language_pairs = CappedCounter(1000)
        self.present = [0] * len(self.specs)
        self.required_complete = 0
        self.dated = 0
        self.import_stamped = 0
        self.future = 0
        self.stale = 0
        self.oldest: datetime | None = None
        self.newest: datetime | None = None
        self.ages = ValueSketch()
        self.age_bins = [0] * len(AGE_BINS)
        self.lengths: dict[str, tuple[ValueSketch, ValueSketch]] = {
            "record": (ValueSketch(), ValueSketch())
        }
        self.structure: dict[str, ValueSketch] = {}
        self.languages = CappedCounter(1000)
        self.categories = CappedCounter(1000)
        self.domains = CappedCounter()
        self.origins = CappedCounter()
        self.sources = CappedCounter()
        self.pii = PIITally(options.examples)
        db.execute(
            "CREATE TABLE keys (row_idx BIGINT, id VARCHAR, content_hash BIGINT, "
            "group_key BIGINT, group_answer BIGINT, local_problem BOOLEAN)"
        )

    # -- the pass ---------------------------------------------------------------------

    def add_batch(self, batch: pa.RecordBatch) -> None:
        rows = batch.to_pylist()
        keys: dict[str, list[Any]] = {name: [] for name in KEY_SCHEMA.names}
        texts: list[tuple[str, str]] = []
        for row in rows:
            index = self.rows
            self.rows += 1
            record_id = row.get("id") or f"row {index}"
            facts = inspect(self.kind, row, self.options.language_chars)
            if facts.errors:
                self.error_records += 1
                for reason in facts.errors:
                    self.errors.add(reason, record_id)
            for reason in facts.problems:
                self.problems.add(reason, record_id)
            if facts.language_pair:
                self.language_pairs.add(facts.language_pair)
            required_ok = True
            for i, spec in enumerate(self.specs):
                if spec.present(row):
                    self.present[i] += 1
                elif spec.required:
                    required_ok = False
            self.required_complete += required_ok
            self._freshness(row.get("created_at"))
            lang, confidence = detect_language(facts.main_text, self.options.language_chars)
            self.languages.add(lang if confidence >= MIX_MIN_CONFIDENCE else UNDETERMINED)
            self.categories.add(str(row.get("task_category") or UNLABELLED))
            self.domains.add(str(row.get("domain") or UNLABELLED))
            self.origins.add(str(row.get("origin") or NONE))
            self.sources.add(str(row.get("source") or NONE))
            self.pii.add(record_id, pii_texts(self.kind, row))
            texts.append(("record", facts.main_text))
            texts.extend(facts.parts)
            for name, value in facts.structure.items():
                self.structure.setdefault(name, ValueSketch()).add(value)
            keys["row_idx"].append(index)
            keys["id"].append(row.get("id"))
            keys["content_hash"].append(digest({c: row.get(c) for c in self.content_columns}))
            keys["group_key"].append(facts.group_key)
            keys["group_answer"].append(facts.group_answer)
            keys["local_problem"].append(bool(facts.problems))
        self._lengths(texts)
        table = pa.table(keys, schema=KEY_SCHEMA)
        self.db.register("batch_keys", table)
        self.db.execute("INSERT INTO keys SELECT * FROM batch_keys")
        self.db.unregister("batch_keys")

    def _lengths(self, texts: list[tuple[str, str]]) -> None:
        tokens = self.tokenizer.count([t for _, t in texts])
        for (part, text), n_tokens in zip(texts, tokens, strict=True):
            chars, toks = self.lengths.setdefault(part, (ValueSketch(), ValueSketch()))
            chars.add(len(text))
            toks.add(n_tokens)

    def _freshness(self, created_at: Any) -> None:
        if not isinstance(created_at, datetime):
            return
        stamp = _utc(created_at)
        self.dated += 1
        self.oldest = stamp if self.oldest is None else min(self.oldest, stamp)
        self.newest = stamp if self.newest is None else max(self.newest, stamp)
        if self.import_window and self.import_window[0] <= stamp <= self.import_window[1]:
            self.import_stamped += 1
        age = (self.now - stamp).total_seconds() / 86400
        if age < 0:
            self.future += 1
            age = 0.0
        if age > self.options.stale_days:
            self.stale += 1
        self.ages.add(float(int(age)))
        for i, (_, low, high) in enumerate(AGE_BINS):
            if age >= low and (high is None or age < high):
                self.age_bins[i] += 1
                break

    # -- the end ----------------------------------------------------------------------

    def _rate(self, n: int) -> float:
        return n / self.rows if self.rows else 0.0

    def _group_examples(self, column: str, groups_sql: str) -> list[list[str]]:
        """Ids of the first groups (by first row), up to ``examples`` each."""
        if self.options.examples == 0:
            return []
        rows = self.db.execute(
            f"""
            WITH g AS ({groups_sql} ORDER BY first_row LIMIT {self.options.examples})
            SELECT k.{column}, coalesce(k.id, 'row ' || k.row_idx), g.first_row
            FROM keys k JOIN g ON k.{column} = g.key
            QUALIFY row_number() OVER (PARTITION BY k.{column} ORDER BY k.row_idx)
                <= {max(self.options.examples, 2)}
            ORDER BY g.first_row, k.row_idx
            """
        ).fetchall()
        out: dict[Any, list[str]] = {}
        for key, record_id, _ in rows:
            out.setdefault(key, []).append(str(record_id))
        return list(out.values())

    def _duplicates(self) -> Duplicates:
        content_groups = (
            "SELECT content_hash AS key, count(*) AS n, min(row_idx) AS first_row "
            "FROM keys GROUP BY content_hash HAVING count(*) > 1"
        )
        groups, extra = self.db.execute(
            f"SELECT count(*), coalesce(sum(n - 1), 0) FROM ({content_groups})"
        ).fetchone() or (0, 0)
        id_groups_sql = (
            "SELECT id AS key, count(*) AS n, min(row_idx) AS first_row "
            "FROM keys WHERE id IS NOT NULL GROUP BY id HAVING count(*) > 1"
        )
        id_groups, id_extra = self.db.execute(
            f"SELECT count(*), coalesce(sum(n - 1), 0) FROM ({id_groups_sql})"
        ).fetchone() or (0, 0)
        id_examples = [
            str(r[0])
            for r in self.db.execute(
                f"{id_groups_sql} ORDER BY first_row LIMIT {self.options.examples}"
            ).fetchall()
        ]
        return Duplicates(
            method=DUPLICATE_METHOD,
            content_columns=self.content_columns,
            duplicate_records=int(extra),
            duplicate_groups=int(groups),
            rate=self._rate(int(extra)),
            examples=self._group_examples("content_hash", content_groups),
            duplicate_ids=int(id_extra),
            duplicate_id_groups=int(id_groups),
            id_examples=id_examples,
        )

    def _coherence(self) -> Coherence:
        answer_groups = (
            "SELECT group_key AS key, count(*) AS n, min(row_idx) AS first_row FROM keys "
            "WHERE group_key IS NOT NULL GROUP BY group_key "
            "HAVING count(DISTINCT group_answer) > 1"
        )
        groups, records = self.db.execute(
            f"SELECT count(*), coalesce(sum(n), 0) FROM ({answer_groups})"
        ).fetchone() or (0, 0)
        stats = GroupStats(
            groups=int(groups),
            records=int(records),
            examples=self._group_examples("group_key", answer_groups) if groups else [],
        )
        problems = self.problems.reasons()
        several = conflicts = GroupStats()
        conflict = CONFLICT_REASONS.get(self.kind)
        if conflict is not None:
            (with_problems,) = self.db.execute(
                f"SELECT count(*) FROM keys WHERE local_problem "
                f"OR group_key IN (SELECT key FROM ({answer_groups}))"
            ).fetchone() or (0,)
            conflicts = stats
            if stats.records:
                examples = [i for group in stats.examples for i in group][: self.options.examples]
                problems.append(Reason(reason=conflict, count=stats.records, examples=examples))
                problems.sort(key=lambda r: (-r.count, r.reason))
        else:
            (with_problems,) = self.db.execute(
                "SELECT count(*) FROM keys WHERE local_problem"
            ).fetchone() or (0,)
            if self.kind is Kind.CONVERSATION:
                several = stats
        with_problems = int(with_problems)
        return Coherence(
            records_with_problems=with_problems,
            index=1.0 - self._rate(with_problems) if self.rows else 1.0,
            problems=problems,
            language_pairs=self.language_pairs.shares(denominator=self.rows),
            conflicts=conflicts,
            prompts_with_several_answers=several,
        )

    def _completeness(self) -> Completeness:
        fields = [
            FieldCompleteness(
                field=spec.name,
                required=spec.required,
                present=present,
                rate=self._rate(present),
                description=spec.description,
            )
            for spec, present in zip(self.specs, self.present, strict=True)
        ]
        cells = len(self.specs) * self.rows
        return Completeness(
            fields=fields,
            overall_rate=sum(self.present) / cells if cells else 1.0,
            required_complete_rate=self._rate(self.required_complete) if self.rows else 1.0,
        )

    def _freshness_stats(self) -> Freshness:
        has_ages = self.ages.n > 0
        return Freshness(
            dated=self.dated,
            undated=self.rows - self.dated,
            import_stamped=self.import_stamped,
            future=self.future,
            oldest=self.oldest,
            newest=self.newest,
            median_age_days=self.ages.percentile(50) if has_ages else None,
            p90_age_days=self.ages.percentile(90) if has_ages else None,
            stale_days=self.options.stale_days,
            stale_records=self.stale,
            stale_rate=self.stale / self.dated if self.dated else 0.0,
            histogram=[
                Bin(label=label, low=low, high=high, count=count)
                for (label, low, high), count in zip(AGE_BINS, self.age_bins, strict=True)
            ],
        )

    def finish(self, seconds: float) -> QualityReport:
        version = self.version
        lengths = [
            LengthStats(
                part=part,
                chars=chars.summary(),
                tokens=tokens.summary(),
                chars_histogram=chars.histogram(),
                tokens_histogram=tokens.histogram(),
            )
            for part, (chars, tokens) in self.lengths.items()
        ]
        return QualityReport(
            ref=version.ref,
            dataset=version.name,
            version=version.number,
            kind=str(self.kind),
            records=self.rows,
            created_at=datetime.now(UTC),
            gristmill_version=__version__,
            options=self.options,
            seconds=seconds,
            errors=ErrorStats(
                records=self.error_records,
                rate=self._rate(self.error_records),
                reasons=self.errors.reasons(),
            ),
            completeness=self._completeness(),
            coherence=self._coherence(),
            freshness=self._freshness_stats(),
            duplicates=self._duplicates(),
            tokenizer=self.tokenizer.name,
            lengths=lengths,
            structure={name: sketch.summary() for name, sketch in self.structure.items()},
            languages=self.languages.shares(),
            task_categories=self.categories.shares(),
            domains=self.domains.shares(),
            origins=self.origins.shares(),
            sources=self.sources.shares(),
            pii=self.pii.stats(self.rows),
        )


def build_report(
    version: Version,
    options: ReportOptions | None = None,
    *,
    progress: Progress | None = None,
    tokenizer: TokenCounter | None = None,
) -> QualityReport:
    """Compute the quality report of ``version`` in one pass over its batches.

    ``progress`` is called with the number of rows of each batch as it is done.
    ``tokenizer`` overrides ``options.tokenizer`` (e.g. one already loaded).
    """
    options = options or ReportOptions()
    counter = tokenizer or load_tokenizer(options.tokenizer)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gristmill-report-") as tmp:
        db = duckdb.connect(str(Path(tmp) / "keys.duckdb"))
        try:
            db.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
            db.execute(f"SET temp_directory = '{Path(tmp) / 'spill'}'")
            db.execute("SET preserve_insertion_order = false")
            acc = _Accumulator(version, options, counter, db)
            for batch in version.iter_batches(batch_size=options.batch_size):
                acc.add_batch(batch)
                if progress is not None:
                    progress(batch.num_rows)
            return acc.finish(time.perf_counter() - started)
        finally:
            db.close()


# -- stored with the version --------------------------------------------------------------


def save_report(version: Version, report: QualityReport) -> Path:
    """Write ``report.json`` in the version folder (atomically) and return its path."""
    target = version.report_json
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(report.model_dump_json(indent=2))
    tmp.replace(target)
    return target


def load_report(version: Version) -> QualityReport | None:
    """The stored report of ``version``, or None if it has none (or an unreadable one)."""
    path = version.report_json
    if not path.is_file():
        return None
    try:
        return QualityReport.model_validate_json(path.read_text())
    except ValueError:
        return None


def load_or_build_report(
    version: Version,
    options: ReportOptions | None = None,
    *,
    progress: Progress | None = None,
) -> tuple[QualityReport, bool]:
    """The stored report if it was made with the same metric options, else a new one
    (saved). Returns (report, built)."""
    options = options or ReportOptions()
    stored = load_report(version)
    if (
        stored is not None
        and stored.pii is not None  # written before the PII rate was measured
        and stored.options.same_metrics(options)
        and options.now is None
    ):
        return stored, False
    report = build_report(version, options, progress=progress)
    save_report(version, report)
    return report, True
