"""A dataset version → the TRL dataset a method trains on, through gristmill's exporters.

The version is exported into ``<run>/data/`` (a file per split) in the TRL type the
method reads — SFT: prompt-completion or language modeling, DPO: preference, KTO:
unpaired — and loaded back with ``datasets``. What the format could not express is
counted by the exporter, and those counts go to the run card. The exact lineage of
the version (every manifest back to the imported files and their sha256) goes too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gristmill.io.export import ExportOptions, ExportReport, Form, export_version
from gristmill.io.splits import SplitSpec
from gristmill.records.kinds import Kind
from gristmill.store import Version, Workspace
from gristmill.train.base_model import sha256_file
from gristmill.train.options import Method, SftFormat, TrainOptions

TRAIN = "train"
EVAL = "validation"


def export_format(method: Method, kind: Kind, sft_format: SftFormat) -> str:
    """The exporter a method reads, or ValueError naming what would fit."""
    if method == Method.SFT:
        if kind == Kind.DOCUMENT:
            return "trl-lm"
        if kind == Kind.CONVERSATION:
            return "trl-lm" if sft_format == SftFormat.LM else "trl-prompt-completion"
        raise ValueError(
            f"sft trains on conversation or document datasets, not {kind}; "
            "for a preference dataset use `gristmill train dpo` or `kto`"
        )
    if kind != Kind.PREFERENCE:
        raise ValueError(f"{method} trains on preference datasets, not {kind}")
    return "trl-preference" if method == Method.DPO else "trl-unpaired"


@dataclass
class TrainData:
    """The loaded splits, the export report and the lineage for the card."""

    train: Any  # datasets.Dataset
    eval: Any | None
    report: ExportReport
    lineage: list[dict[str, Any]]
    files: list[dict[str, Any]]

    def card(self, version: Version) -> dict[str, Any]:
        report = self.report
        return {
            "dataset": version.ref,
            "kind": str(version.kind),
            "records": version.row_count,
            "export": {
                "format": report.format,
                "form": str(report.form) if report.form else None,
                "records_read": report.records_read,
                "records_per_split": dict(report.records_per_split),
                "rows_written": dict(report.rows_written),
                "skipped": dict(report.skipped.most_common()),
                "files": self.files,
            },
            "lineage": self.lineage,
        }


def lineage(workspace: Workspace, ref: str) -> list[dict[str, Any]]:
    """Every manifest from ``ref`` back to its import: how each version was made, and
    the source files (path, sha256, bytes, format, balance) where the chain starts."""
    out = []
    for manifest in workspace.lineage(ref):
        out.append(
            {
                "ref": manifest.ref,
                "kind": manifest.kind,
                "rows": manifest.row_count,
                "operation": manifest.operation,
                "params": manifest.params,
                "parent": manifest.parent,
                "created_at": manifest.created_at.isoformat(),
                "created_by": manifest.created_by,
                "sources": [s.model_dump() for s in manifest.sources],
            }
        )
    return out


def export_for_training(version: Version, options: TrainOptions, folder: Path) -> ExportReport:
    """Write the version in the method's TRL format into ``folder`` (a file per split)."""
    fmt = export_format(options.method, version.kind, options.sft_format)
    fractions = {TRAIN: 1.0}
    if options.eval_fraction > 0:
        fractions = {TRAIN: 1.0 - options.eval_fraction, EVAL: options.eval_fraction}
    form = None
    if options.conversational is not None:
        form = Form.CONVERSATIONAL if options.conversational else Form.STANDARD
    export_options = ExportOptions(
        form=form,
        pairs=options.pairs,
        label_threshold=options.label_threshold,
        split=SplitSpec(fractions, options.seed, options.group_by),
        overwrite=True,
    )
    return export_version(version, fmt, folder, export_options)


def _skips(report: ExportReport) -> str:
    if not report.skipped:
        return ""
    reasons = "; ".join(f"{n} × {reason}" for reason, n in report.skipped.most_common())
    return f" (skipped: {reasons})"


def load_training_data(
    workspace: Workspace, version: Version, options: TrainOptions, run_dir: Path
) -> TrainData:
    """Export, check something is left to train on, and load the splits."""
    import datasets

    folder = run_dir / "data"
    report = export_for_training(version, options, folder)
    if report.rows_written.get(TRAIN, 0) == 0:
        raise ValueError(
            f"{version.ref} gave no {report.format} rows to train on: "
            f"{report.records_read} records read{_skips(report)}"
        )
    cache = folder / ".cache"  # datasets' Arrow cache lives with the run, not in ~
    loaded: dict[str, Any] = {}
    files = []
    for path in report.files:
        split = path.stem
        rows = report.rows_written.get(split, 0)
        files.append(
            {
                "split": split,
                "path": str(path.relative_to(run_dir)),
                "rows": rows,
                "sha256": sha256_file(path),
            }
        )
        if rows:
            # one file at a time: a key only a later split has would break a joint load
            loaded[split] = datasets.load_dataset(
                "json", data_files=str(path), split="train", cache_dir=str(cache)
            )
    return TrainData(
        train=loaded[TRAIN],
        eval=loaded.get(EVAL),
        report=report,
        lineage=lineage(workspace, version.ref),
        files=files,
    )
