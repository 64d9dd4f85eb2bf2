"""Every real sample file goes through the real importer: the format is detected,
the kind is right, and the balance holds with the counts a person can check."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.io.ingest import import_path
from gristmill.store import Workspace

# file, detected format, kind, kept, quarantined
CASES = [
    ("alpaca_seed_tasks/seed_tasks.jsonl", "self-instruct-seed", "conversation", 175, 0),
    ("datajuicer_web_samples/redpajama-cc-2023-06-refined.jsonl", "document", "document", 10, 0),
    ("dolma_cc_samples/provided_documents_000.json.gz", "document", "document", 10, 0),
    ("fastchat_mtbench/dummy_conversation_sharegpt.json", "sharegpt", "conversation", 500, 0),
    ("fastchat_mtbench/mt_bench_question.jsonl", "mt-bench", "eval_item", 80, 0),
    ("gsm8k/test.jsonl", "gsm8k", "eval_item", 1319, 0),
    # 4 real HH-RLHF rows end in an empty assistant turn: quarantined with the reason
    ("hh_rlhf/harmless-base-test.jsonl.gz", "hh-rlhf", "preference", 2308, 4),
    ("label_studio_exports/test_export_csv_csv_test.json", "label-studio-media", "media", 2, 0),
    (
        "label_studio_exports/test_export_json_min_chat_data.json",
        "label-studio-chat",
        "conversation",
        1,
        0,
    ),
    ("lima/lima.json", "alpaca", "conversation", 1029, 0),
    ("llamafactory_demos/alpaca_en_demo.json", "alpaca", "conversation", 999, 0),
    ("llamafactory_demos/c4_demo.jsonl", "document", "document", 300, 0),
    ("llamafactory_demos/dpo_en_demo.json", "sharegpt-preference", "preference", 300, 0),
    ("llamafactory_demos/glaive_toolcall_en_demo.json", "sharegpt", "conversation", 300, 0),
    ("llamafactory_demos/kto_en_demo.json", "kto", "preference", 300, 0),
    ("llamafactory_demos/reason_tool_use_demo_50.jsonl", "openai", "conversation", 50, 0),
    ("llamafactory_demos/v1_dpo_demo.jsonl", "messages-preference", "preference", 10, 0),
    ("mmlu_subset/test/moral_scenarios_test.csv", "mmlu", "eval_item", 895, 0),
    ("openbookqa/openbookqa.jsonl", "openbookqa", "eval_item", 500, 0),
    (
        "sharegpt_samples/dialogstudio_sharegpt_original_example.json",
        "sharegpt",
        "conversation",
        5,
        0,
    ),
    ("tau_bench_trajectories/gpt-4o-airline.json.gz", "tau-bench", "agent_trace", 200, 0),
    ("uci_sentiment_amazon/amazon_cells_labelled.tsv", "document", "document", 1000, 0),
]


@pytest.mark.parametrize(("sample", "fmt", "kind", "kept", "quarantined"), CASES)
def test_real_sample_imports(
    workspace: Workspace,
    samples: Path,
    sample: str,
    fmt: str,
    kind: str,
    kept: int,
    quarantined: int,
) -> None:
    report = import_path(workspace, samples / sample, "sample")
    assert report.files[0].format == fmt
    assert report.kind == kind
    assert (report.kept, report.quarantined) == (kept, quarantined)
    assert report.balanced
    version = workspace.version("sample")
    assert version.row_count == kept
    assert sum(1 for _ in version.iter_records()) == kept  # every stored row validates


def test_whole_mmlu_folder(workspace: Workspace, samples: Path) -> None:
    report = import_path(workspace, samples / "mmlu_subset", "mmlu")
    assert report.kept == 1572 + 30
    # the folder's SOURCE.md is a text document, refused (and counted) in an eval set
    [refused] = [f for f in report.files if f.quarantined]
    assert refused.name == "mmlu_subset/SOURCE.md" and refused.quarantined == 1
    assert "makes document records but this dataset holds eval_item" in (
        refused.first_problem or ""
    )
    tags = {r["tags"][1] for r in workspace.version("mmlu").iter_rows(columns=["tags"])}
    assert "abstract_algebra" in tags and len(tags) == 6


def test_unknown_shape_is_refused_with_its_fields(workspace: Workspace, samples: Path) -> None:
    path = samples / "fastchat_mtbench" / "mt_bench_reference_answer_gpt4.jsonl"
    report = import_path(workspace, path, "refs")
    assert report.version is None and report.quarantined == 30 and report.balanced
    assert "no known format fits (fields: answer_id, choices" in (
        report.files[0].first_problem or ""
    )


def test_a_folder_takes_the_kind_of_most_of_its_data_not_of_its_readme(
    workspace: Workspace, samples: Path
) -> None:
    """data/samples/lima holds lima.json (1,029 conversations) and a small SOURCE.md:
    one text file must not outvote the data; it is refused, named and counted."""
    report = import_path(workspace, samples / "lima", "lima")
    assert report.version is not None
    assert report.version.kind.value == "conversation"
    assert report.version.row_count == 1029
    refused = {f.name: f.quarantined for f in report.files}
    assert refused["lima/SOURCE.md"] == 1
