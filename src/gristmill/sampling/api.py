"""The two verbs: score a version (a scoring run), sample from its scores (a new version).

Scores are computed once and attached to the version they describe; any number of
samples at any rate read them. A sample is a new dataset version whose manifest
records the sampler, its rate or size, the seed, the filters, how many records each
link of the chain left, and how the scores were made (the scoring run's steps and
model); the scores of the kept records travel with it as attributes, so a sample
can be sampled again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from gristmill.pipeline import PipelineSpec, RunOptions, RunResult, parse_pipeline, run_pipeline
from gristmill.pipeline.run import Progress
from gristmill.sampling.select import Plan, Selection, select
from gristmill.store import Version, VersionWriter, Workspace
from gristmill.store.workspace import check_name


def scoring_spec(by: str, params: dict[str, Any] | None = None) -> PipelineSpec:
    """A one-step pipeline: the scorer ``by`` with ``params``."""
    return parse_pipeline({"steps": [{by: dict(params or {})}]})


def score(
    workspace: Workspace,
    ref: str,
    by: str,
    params: dict[str, Any] | None = None,
    options: RunOptions | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Run scorer ``by`` over ``ref`` on the pipeline executors; its attribute is
    attached to that version (replacing an earlier one of the same name)."""
    version = workspace.version(ref)
    params = dict(params or {})
    if by == "uncertainty" and params.get("probabilities") and not params.get("version"):
        params["version"] = version.ref  # the step reads the class probabilities from here
    return run_pipeline(workspace, scoring_spec(by, params), version.ref, None, options, progress)


@dataclass
class SampleResult:
    version: Version
    source: Version
    selection: Selection
    report: Path | None = None


def default_output(source: Version, plan: Plan) -> str:
    return check_name(f"{source.name}-{plan.by or 'where'}")


def sample(
    workspace: Workspace,
    ref: str,
    plan: Plan,
    output: str | None = None,
    plot: bool = False,
    map_model: str | None = None,
) -> SampleResult:
    """Select from ``ref`` by ``plan`` and write the kept records as a new version of
    ``output`` (default ``<name>-<by>``), parent ``ref``."""
    source = workspace.version(ref)
    selection = select(source, plan)
    name = output or default_output(source, plan)
    params: dict[str, Any] = {
        "input": source.ref,
        "sampler": plan.by or "where",
        "method": selection.method,
        **{k: v for k, v in plan.to_dict().items() if k != "by"},
        "scorer": selection.scorer,
    }
    stats = {"records_in": source.row_count, "selected": selection.kept, "chain": selection.steps}
    keep = selection.keep
    with VersionWriter(
        workspace, name, source.kind, operation="sample", params=params, parent=source.ref
    ) as writer:
        offset = 0
        for batch in source.iter_batches():
            mask = keep[offset : offset + batch.num_rows]
            offset += batch.num_rows
            if mask.any():
                writer.write_table(pa.Table.from_batches([batch]).filter(pa.array(mask)))
        writer.stats = stats
    out = writer.version
    assert out is not None
    _copy_attributes(source, out, selection)
    report = None
    if plot:
        from gristmill.sampling.plot import write_sample_report

        report = write_sample_report(out, source, selection, plan, map_model)
    return SampleResult(out, source, selection, report)


def _copy_attributes(source: Version, target: Version, selection: Selection) -> None:
    """The kept records' rows of every attribute of ``source`` (scores travel with the
    sample, with the parameters that made them)."""
    if not source.attribute_names():
        return
    ids = source.table(columns=["id"]).column("id").filter(pa.array(selection.keep))
    target.copy_attributes_from(source, ids.combine_chunks())
