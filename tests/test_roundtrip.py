"""import → export → import gives the same records, for every format family, on real
samples; every JSONL export loads with `datasets.load_dataset("json")`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import pytest

from gristmill.io.export import ExportOptions, Form, export_version
from gristmill.io.ingest import import_path
from gristmill.records.arrow import content_columns
from gristmill.store import Version, Workspace

datasets.disable_progress_bars()


def content(version: Version) -> list[dict[str, Any]]:
    cols = content_columns(version.kind)
    return [{c: r[c] for c in cols} for r in version.iter_rows()]


def roundtrip(
    workspace: Workspace,
    sample: Path,
    fmt: str,
    tmp_path: Path,
    form: Form | None = None,
    reimport_as: str | None = None,
) -> tuple[Version, Version]:
    first = import_path(workspace, sample, "first")
    assert first.version is not None
    out = tmp_path / f"export.{'parquet' if fmt == 'parquet' else 'jsonl'}"
    if fmt == "hf":
        out = tmp_path / "export-hf"
    report = export_version(first.version, fmt, out, ExportOptions(form=form))
    assert not report.skipped, report.skipped
    if fmt not in ("parquet", "hf"):
        loaded = datasets.load_dataset("json", data_files=str(out), split="train")
        assert loaded.num_rows == report.total_written
    second = import_path(workspace, out, "second")
    assert second.version is not None and second.quarantined == 0
    if reimport_as:
        assert second.files[0].format == reimport_as
    return first.version, second.version


# sample, export format, TRL form, the import format that must recognise the export
FAMILY_CASES = [
    ("lima/lima.json", "alpaca", None, "alpaca"),
    ("lima/lima.json", "trl-lm", Form.CONVERSATIONAL, "openai"),
    ("lima/lima.json", "openai-chat", None, "openai"),
    ("fastchat_mtbench/dummy_conversation_sharegpt.json", "sharegpt", None, "sharegpt"),
    ("llamafactory_demos/glaive_toolcall_en_demo.json", "openai-chat", None, "openai"),
    ("llamafactory_demos/glaive_toolcall_en_demo.json", "sharegpt", None, "sharegpt"),
    ("llamafactory_demos/reason_tool_use_demo_50.jsonl", "openai-chat", None, "openai"),
    (
        "llamafactory_demos/alpaca_en_demo.json",
        "trl-prompt-completion",
        Form.STANDARD,
        "trl-prompt-completion",
    ),
    (
        "llamafactory_demos/alpaca_en_demo.json",
        "trl-prompt-completion",
        Form.CONVERSATIONAL,
        "trl-prompt-completion",
    ),
    ("llamafactory_demos/c4_demo.jsonl", "trl-lm", Form.STANDARD, "document"),
    (
        "hh_rlhf/harmless-base-test.jsonl.gz",
        "trl-preference",
        Form.CONVERSATIONAL,
        "trl-preference",
    ),
    (
        "llamafactory_demos/dpo_en_demo.json",
        "trl-preference",
        Form.CONVERSATIONAL,
        "trl-preference",
    ),
    ("llamafactory_demos/dpo_en_demo.json", "openai-preference", None, "openai-preference"),
    (
        "llamafactory_demos/kto_en_demo.json",
        "trl-unpaired",
        Form.CONVERSATIONAL,
        "trl-unpaired-preference",
    ),
]


@pytest.mark.parametrize(("sample", "fmt", "form", "reimport_as"), FAMILY_CASES)
def test_format_family_roundtrip(
    workspace: Workspace,
    samples: Path,
    tmp_path: Path,
    sample: str,
    fmt: str,
    form: Form | None,
    reimport_as: str,
) -> None:
    first, second = roundtrip(workspace, samples / sample, fmt, tmp_path, form, reimport_as)
    assert second.kind == first.kind
    assert content(second) == content(first)


NATIVE_SAMPLES = [
    "lima/lima.json",
    "hh_rlhf/harmless-base-test.jsonl.gz",
    "gsm8k/test.jsonl",
    "tau_bench_trajectories/gpt-4o-airline.json.gz",
    "label_studio_exports/test_export_csv_csv_test.json",
    "dolma_cc_samples/cc_en_head-0091.jsonl",
    "alpaca_seed_tasks/seed_tasks.jsonl",
]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "hf"])
@pytest.mark.parametrize("sample", NATIVE_SAMPLES)
def test_native_roundtrip_is_lossless(
    workspace: Workspace, samples: Path, tmp_path: Path, sample: str, fmt: str
) -> None:
    """The native exports keep everything: ids, lineage, meta, timestamps."""
    first, second = roundtrip(workspace, samples / sample, fmt, tmp_path)
    assert list(second.iter_rows()) == list(first.iter_rows())


def test_trl_prompt_only_keeps_the_prompts(
    workspace: Workspace, samples: Path, tmp_path: Path
) -> None:
    first = import_path(workspace, samples / "lima" / "lima.json", "lima").version
    assert first is not None
    out = tmp_path / "prompts.jsonl"
    export_version(first, "trl-prompt-only", out, ExportOptions(form=Form.CONVERSATIONAL))
    second = import_path(workspace, out, "prompts")
    assert second.files[0].format == "trl-prompt-only" and second.version is not None
    prompts = [r["messages"] for r in second.version.iter_rows()]
    originals = [r["messages"][:-1] for r in first.iter_rows()]  # all but the last answer
    assert prompts == originals


def test_trl_stepwise_from_gsm8k_solutions(
    workspace: Workspace, samples: Path, tmp_path: Path
) -> None:
    """Real GSM8K worked solutions, one step per line, as TRL stepwise supervision."""
    rows = []
    for line in (samples / "gsm8k" / "test.jsonl").read_text().splitlines()[:40]:
        item = json.loads(line)
        steps = [s for s in item["answer"].split("\n") if s.strip()]
        rows.append(
            {"prompt": item["question"], "completions": steps, "labels": [True] * len(steps)}
        )
    src = tmp_path / "stepwise.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    first = import_path(workspace, src, "steps")
    assert first.files[0].format == "trl-stepwise" and first.version is not None
    out = tmp_path / "again.jsonl"
    export_version(first.version, "trl-stepwise", out)
    assert [json.loads(x) for x in out.read_text().splitlines()] == rows
    second = import_path(workspace, out, "steps2")
    assert second.version is not None and content(second.version) == content(first.version)


def test_lima_style_turn_lists(workspace: Workspace, samples: Path, tmp_path: Path) -> None:
    """LIMA's own layout: {"conversations": [user, assistant, ...]} of plain strings."""
    lima = json.loads((samples / "lima" / "lima.json").read_text())
    multi = [r for r in lima if r["history"]][:10]
    rows = [
        {
            "conversations": [t for pair in r["history"] for t in pair]
            + [r["instruction"], r["output"]]
        }
        for r in multi
    ]
    src = tmp_path / "lima-lists.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = import_path(workspace, src, "lists")
    assert report.files[0].format == "lima" and report.kept == 10
    alpaca = import_path(workspace, samples / "lima" / "lima.json", "alpaca").version
    assert alpaca is not None
    by_alpaca = [r["messages"] for r in alpaca.iter_rows() if len(r["messages"]) > 2][:10]
    assert [r["messages"] for r in workspace.version("lists").iter_rows()] == by_alpaca
