"""Exports of real versions: every format loads with HF ``datasets`` and has exactly
the keys TRL's and OpenAI's docs give; skips are counted with reasons; splits, HF
``save_to_disk``, Parquet, native JSONL round trips, and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from test_export_fixtures import (
    documents,
    eval_items,
    lima_conversations,
    make_version,
    preference_records,
    tricky_conversations,
    user,
)

from gristmill.cli import cli
from gristmill.io.export import ExportOptions, Form, export_version, exporters_for
from gristmill.io.export.base import (
    HAS_REASONING,
    HAS_SYSTEM,
    MULTI_TURN,
    NO_ASSISTANT,
)
from gristmill.io.export.llamafactory import ALPACA_REASONING, ALPACA_TOOLS
from gristmill.io.export.openai_chat import OUTPUT_NOT_ONE
from gristmill.io.splits import SplitSpec
from gristmill.records.arrow import schema_for
from gristmill.records.kinds import RECORD_MODELS, Conversation, Kind, RecordBase
from gristmill.records.pairs import (
    NO_LABEL,
    NO_LABEL_UNRATED,
    TIE,
    TOO_FEW_RATED,
    PairOptions,
    RejectedChoice,
)
from gristmill.store import Version

CONV = Form.CONVERSATIONAL
STD = Form.STANDARD

DATASETS: dict[str, tuple[Kind, Callable[[], list[Any]]]] = {
    "lima": (Kind.CONVERSATION, lima_conversations),
    "tricky": (Kind.CONVERSATION, tricky_conversations),
    "prefs": (Kind.PREFERENCE, preference_records),
    "docs": (Kind.DOCUMENT, documents),
    "evals": (Kind.EVAL_ITEM, eval_items),
}

# (format, dataset, form) → the exact keys of every row
CASES: list[tuple[str, str, Form | None, set[str]]] = [
    ("trl-lm", "docs", None, {"text"}),
    ("trl-lm", "lima", None, {"messages"}),
    ("trl-prompt-only", "lima", CONV, {"prompt"}),
    ("trl-prompt-only", "lima", STD, {"prompt"}),
    ("trl-prompt-only", "prefs", CONV, {"prompt"}),
    ("trl-prompt-only", "evals", STD, {"prompt"}),
    ("trl-prompt-completion", "lima", CONV, {"prompt", "completion"}),
    ("trl-prompt-completion", "lima", STD, {"prompt", "completion"}),
    ("trl-preference", "prefs", CONV, {"prompt", "chosen", "rejected", "margin"}),
    ("trl-preference", "prefs", STD, {"prompt", "chosen", "rejected", "margin"}),
    ("trl-unpaired", "prefs", CONV, {"prompt", "completion", "label"}),
    ("trl-unpaired", "prefs", STD, {"prompt", "completion", "label"}),
    ("trl-stepwise", "prefs", STD, {"prompt", "completions", "labels"}),
    ("openai-chat", "lima", None, {"messages"}),
    ("openai-preference", "prefs", None, {"input", "preferred_output", "non_preferred_output"}),
    ("sharegpt", "lima", None, {"conversations"}),
]


@pytest.fixture
def versions(tmp_path: Path) -> Callable[[str], Version]:
    made: dict[str, Version] = {}

    def get(name: str) -> Version:
        if name not in made:
            kind, build = DATASETS[name]
            made[name] = make_version(tmp_path, name, kind, build())
        return made[name]

    return get


def load_json(files: Path | dict[str, str], cache: Path) -> Any:
    if isinstance(files, Path):
        return datasets.load_dataset(
            "json", data_files=str(files), split="train", cache_dir=str(cache)
        )
    return datasets.load_dataset("json", data_files=files, cache_dir=str(cache))


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in value)
    )


@pytest.mark.parametrize(("fmt", "data", "form", "keys"), CASES)
def test_every_format_loads_with_datasets_and_has_exact_keys(
    fmt: str,
    data: str,
    form: Form | None,
    keys: set[str],
    versions: Callable[[str], Version],
    tmp_path: Path,
) -> None:
    out = tmp_path / f"{fmt}.jsonl"
    report = export_version(versions(data), fmt, out, ExportOptions(form=form))
    assert report.files == [out]
    rows = read_lines(out)
    assert len(rows) == report.rows_written["train"] > 0
    assert all(set(row) == keys for row in rows)
    loaded = load_json(out, tmp_path / "cache")
    assert set(loaded.column_names) == keys
    assert loaded.num_rows == len(rows)
    first = rows[0]
    if report.form is STD:
        assert all(isinstance(first[k], str) for k in keys & {"text", "prompt", "completion"})
        assert all(isinstance(first[k], str) for k in keys & {"chosen", "rejected"})
    elif report.form is CONV:
        assert all(is_messages(first[k]) for k in keys & {"messages", "prompt", "completion"})
        assert all(is_messages(first[k]) for k in keys & {"chosen", "rejected"})


def test_alpaca_loads_with_history_for_multi_turn(
    versions: Callable[[str], Version], tmp_path: Path
) -> None:
    out = tmp_path / "alpaca.jsonl"
    report = export_version(versions("lima"), "alpaca", out)
    rows = read_lines(out)
    assert report.rows_written["train"] == len(rows) == len(lima_conversations())
    assert all(
        {"instruction", "input", "output"}
        <= set(r)
        <= {"instruction", "input", "output", "history"}
        for r in rows
    )
    multi = [r for r in rows if "history" in r]
    assert len(multi) == 3
    source = json.loads((Path(__file__).parents[1] / "data/samples/lima/lima.json").read_text())
    first_multi = next(r for r in source if r["history"])
    assert multi[0] == {
        "instruction": first_multi["instruction"],
        "input": "",
        "output": first_multi["output"],
        "history": first_multi["history"],
    }
    loaded = load_json(out, tmp_path / "cache")
    assert set(loaded.column_names) == {"instruction", "input", "output", "history"}


def test_standard_form_skips_what_plain_text_cannot_hold(
    versions: Callable[[str], Version], tmp_path: Path
) -> None:
    out = tmp_path / "pc.jsonl"
    report = export_version(
        versions("tricky"), "trl-prompt-completion", out, ExportOptions(form=STD)
    )
    assert report.records_read == 7
    assert dict(report.skipped) == {
        HAS_SYSTEM: 1,  # system
        MULTI_TURN: 2,  # multi, tools (the prompt holds the tool call and result)
        HAS_REASONING: 1,
        NO_ASSISTANT: 1,  # open
    }
    assert report.rows_written["train"] == 2
    assert read_lines(out)[1]["prompt"] == "Translate to French.\n\nThe cat sat on the mat."
    # the conversational form holds every conversation that has an assistant turn
    report = export_version(versions("tricky"), "trl-prompt-completion", tmp_path / "c.jsonl")
    assert dict(report.skipped) == {NO_ASSISTANT: 1}
    assert report.rows_written["train"] == 6


def test_trl_conversational_keeps_system_tools_and_reasoning(
    versions: Callable[[str], Version], tmp_path: Path
) -> None:
    out = tmp_path / "lm.jsonl"
    export_version(versions("tricky"), "trl-lm", out)
    rows = {i: r for i, r in enumerate(read_lines(out))}
    assert rows[1]["messages"][0] == {"role": "system", "content": "Answer in one word."}
    tool_row = rows[3]
    assert json.loads(tool_row["tools"])[0]["function"]["name"] == "get_weather"
    call = tool_row["messages"][1]["tool_calls"][0]
    assert call == {
        "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
        "id": "call_1",
    }
    assert tool_row["messages"][2] == {
        "role": "tool",
        "content": '{"temp": 21}',
        "tool_call_id": "call_1",
    }
    assert rows[4]["messages"][1]["reasoning_content"] == "three threes are nine"
    assert all(set(r) <= {"messages", "tools"} for r in rows.values())
    loaded = load_json(out, tmp_path / "cache")
    assert loaded[3]["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}


def test_openai_chat_shapes_tools_and_weights(
    versions: Callable[[str], Version], tmp_path: Path
) -> None:
    out = tmp_path / "openai.jsonl"
    report = export_version(versions("tricky"), "openai-chat", out)
    assert report.rows_written["train"] == 7 and not report.skipped
    rows = read_lines(out)
    assert all(set(r) <= {"messages", "tools"} for r in rows)
    assert rows[1]["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Name a fruit."},
        {"role": "assistant", "content": "Apple.", "weight": 1},
    ]
    assert rows[2]["messages"][3] == {"role": "assistant", "content": "4", "weight": 0}
    tools = rows[3]
    assert tools["tools"][0]["type"] == "function"
    assert tools["messages"][1] == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    assert tools["messages"][2] == {
        "role": "tool",
        "content": '{"temp": 21}',
        "tool_call_id": "call_1",
    }
    assert rows[4]["messages"][1]["reasoning_content"] == "three threes are nine"
    assert load_json(out, tmp_path / "cache").num_rows == 7


def test_openai_preference_rows(versions: Callable[[str], Version], tmp_path: Path) -> None:
    out = tmp_path / "dpo.jsonl"
    report = export_version(versions("prefs"), "openai-preference", out)
    assert dict(report.skipped) == {TIE: 1, TOO_FEW_RATED: 1, OUTPUT_NOT_ONE: 1}
    rows = read_lines(out)
    assert rows[0] == {
        "input": {"messages": [{"role": "user", "content": "What is 2+2?"}]},
        "preferred_output": [{"role": "assistant", "content": "4"}],
        "non_preferred_output": [{"role": "assistant", "content": "22"}],
    }
    assert rows[1]["input"]["messages"][0] == {"role": "system", "content": "Be kind."}


def test_trl_preference_pairs_margin_and_random_rejected(
    versions: Callable[[str], Version], tmp_path: Path
) -> None:
    out = tmp_path / "pref.jsonl"
    report = export_version(versions("prefs"), "trl-preference", out, ExportOptions(form=STD))
    assert read_lines(out) == [
        {"prompt": "What is 2+2?", "chosen": "4", "rejected": "22", "margin": 3.5}
    ]
    assert report.skipped[TIE] == 1 and report.skipped[HAS_SYSTEM] == 1
    options = ExportOptions(pairs=PairOptions(rejected=RejectedChoice.RANDOM, seed=3))
    a = export_version(versions("prefs"), "trl-preference", tmp_path / "a.jsonl", options)
    b = export_version(versions("prefs"), "trl-preference", tmp_path / "b.jsonl", options)
    assert a.rows_written == b.rows_written
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    for row in read_lines(tmp_path / "a.jsonl"):
        assert row["margin"] > 0 and row["chosen"] != row["rejected"]


def test_unpaired_and_stepwise_rows(versions: Callable[[str], Version], tmp_path: Path) -> None:
    report = export_version(versions("prefs"), "trl-unpaired", tmp_path / "kto.jsonl")
    rows = read_lines(tmp_path / "kto.jsonl")
    assert [(r["completion"][0]["content"], r["label"]) for r in rows] == [
        ("Yes.", True),
        ("No.", False),
    ]
    assert report.skipped[NO_LABEL] == 11
    report = export_version(
        versions("prefs"),
        "trl-unpaired",
        tmp_path / "kto-t.jsonl",
        ExportOptions(label_threshold=3),
    )
    assert report.rows_written["train"] == 9  # 7 rated + 2 labelled
    assert report.skipped == {NO_LABEL_UNRATED: 4}  # the ranked-only and one unlabelled
    export_version(versions("prefs"), "trl-stepwise", tmp_path / "prm.jsonl")
    steps = read_lines(tmp_path / "prm.jsonl")
    assert steps[1] == {
        "prompt": "Which is larger, 9.8 or 9.11?",
        "completions": ["11 > 8.", "So 9.11 is larger."],
        "labels": [True, False],
    }


def test_alpaca_and_sharegpt_from_tricky_conversations(
    versions: Callable[[str], Version], tmp_path: Path
) -> None:
    report = export_version(versions("tricky"), "alpaca", tmp_path / "alpaca.jsonl")
    rows = {r["output"]: r for r in read_lines(tmp_path / "alpaca.jsonl")}
    assert rows["Le chat était assis sur le tapis."]["instruction"] == "Translate to French."
    assert rows["Le chat était assis sur le tapis."]["input"] == "The cat sat on the mat."
    assert rows["Apple."]["system"] == "Answer in one word."
    assert rows["4"]["history"] == [["Hi", "Hello!"]]
    assert report.skipped[ALPACA_TOOLS] == 1 and report.skipped[ALPACA_REASONING] == 1
    export_version(versions("tricky"), "sharegpt", tmp_path / "sharegpt.jsonl")
    share = read_lines(tmp_path / "sharegpt.jsonl")
    assert share[1] == {
        "conversations": [
            {"from": "human", "value": "Name a fruit."},
            {"from": "gpt", "value": "Apple."},
        ],
        "system": "Answer in one word.",
    }
    turns = share[3]["conversations"]
    assert [t["from"] for t in turns] == ["human", "function_call", "observation", "gpt"]
    assert json.loads(turns[1]["value"]) == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert isinstance(share[3]["tools"], str)


def test_splits_write_one_file_each_and_load_as_data_files(tmp_path: Path) -> None:
    # each LIMA prompt three times: the copies must land in the same split
    base = lima_conversations()
    records = [Conversation(id=f"{c.id}-{k}", messages=c.messages) for c in base for k in range(3)]
    version = make_version(tmp_path, "lima3", Kind.CONVERSATION, records, shard_rows=10)
    spec = SplitSpec({"train": 0.6, "validation": 0.2, "test": 0.2}, seed=0)
    out = tmp_path / "sft"
    report = export_version(version, "trl-lm", out, ExportOptions(split=spec))
    assert report.files == [out / "train.jsonl", out / "validation.jsonl", out / "test.jsonl"]
    assert sum(report.rows_written.values()) == len(records) == report.records_read
    assert report.records_per_split == report.rows_written  # one row per conversation
    loaded = load_json(
        {s: str(out / f"{s}.jsonl") for s in report.rows_written}, tmp_path / "cache"
    )
    assert {s: loaded[s].num_rows for s in loaded} == report.rows_written
    side: dict[str, set[str]] = {}
    for split in loaded:
        for row in loaded[split]:
            side.setdefault(row["messages"][-2]["content"], set()).add(split)
    assert len(side) == len(base) and all(len(s) == 1 for s in side.values())
    again = export_version(version, "trl-lm", tmp_path / "sft2", ExportOptions(split=spec))
    assert again.rows_written == report.rows_written
    for split in report.rows_written:
        assert (out / f"{split}.jsonl").read_bytes() == (
            tmp_path / "sft2" / f"{split}.jsonl"
        ).read_bytes()


def test_hf_save_to_disk_loads_with_load_from_disk(
    versions: Callable[[str], Version], tmp_path: Path
) -> None:
    version = versions("lima")
    report = export_version(version, "hf", tmp_path / "hf")
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert isinstance(loaded, datasets.Dataset)
    assert loaded.num_rows == version.row_count == report.rows_written["train"]
    assert loaded.column_names == ["kind", *schema_for(Kind.CONVERSATION).names]
    assert loaded["id"] == [r["id"] for r in version.iter_rows(columns=["id"])]
    spec = SplitSpec({"train": 0.5, "test": 0.3, "empty": 1e-9, "rest": 0.2 - 1e-9})
    report = export_version(version, "hf", tmp_path / "hf-split", ExportOptions(split=spec))
    dd = datasets.load_from_disk(str(tmp_path / "hf-split"))
    assert isinstance(dd, datasets.DatasetDict)
    assert {s: dd[s].num_rows for s in dd} == report.rows_written
    assert report.rows_written["empty"] == 0
    with pytest.raises(ValueError, match="overwrite"):
        export_version(version, "hf", tmp_path / "hf")
    export_version(version, "hf", tmp_path / "hf", ExportOptions(overwrite=True))
    (tmp_path / "not-hf").mkdir()
    (tmp_path / "not-hf" / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a saved HF dataset"):
        export_version(version, "hf", tmp_path / "not-hf", ExportOptions(overwrite=True))
    assert (tmp_path / "not-hf" / "precious.txt").exists()


def test_parquet_is_the_storage_rows_plus_kind(
    versions: Callable[[str], Version], tmp_path: Path
) -> None:
    version = versions("prefs")
    export_version(version, "parquet", tmp_path / "prefs.parquet")
    table = pq.read_table(tmp_path / "prefs.parquet")
    assert table.column("kind").to_pylist() == ["preference"] * version.row_count
    assert table.drop_columns(["kind"]).equals(version.table())
    assert table.schema.metadata[b"gristmill.kind"] == b"preference"
    loaded = datasets.load_dataset(
        "parquet",
        data_files=str(tmp_path / "prefs.parquet"),
        split="train",
        cache_dir=str(tmp_path / "c"),
    )
    assert loaded.num_rows == version.row_count


@pytest.mark.parametrize("data", list(DATASETS))
def test_native_jsonl_round_trips_to_equal_records(
    data: str, versions: Callable[[str], Version], tmp_path: Path
) -> None:
    version = versions(data)
    out = tmp_path / "native.jsonl"
    export_version(version, "jsonl", out)
    rows = read_lines(out)
    assert all(set(r) == {"kind", *schema_for(version.kind).names} for r in rows)
    assert all(isinstance(r["meta"], dict) for r in rows)
    back: list[RecordBase] = []
    for row in rows:
        kind = Kind(row.pop("kind"))
        back.append(RECORD_MODELS[kind].model_validate(_drop_nones(row)))
    assert back == list(version.iter_records())
    assert load_json(out, tmp_path / "cache").num_rows == len(rows)


def _drop_nones(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nones(v) for v in value]
    return value


def test_format_that_does_not_fit_the_kind_names_the_ones_that_do(
    versions: Callable[[str], Version], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="formats that fit a document dataset: trl-lm, jsonl"):
        export_version(versions("docs"), "trl-preference", tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="standard form only"):
        export_version(
            versions("prefs"), "trl-stepwise", tmp_path / "x.jsonl", ExportOptions(form=CONV)
        )
    with pytest.raises(ValueError, match="unknown export format"):
        export_version(versions("docs"), "csv", tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()
    assert [e.name for e in exporters_for(Kind.DOCUMENT)] == ["trl-lm", "jsonl", "parquet", "hf"]


def test_failed_export_leaves_nothing_behind(
    versions: Callable[[str], Version], tmp_path: Path
) -> None:
    def boom(_: int) -> None:
        raise RuntimeError("interrupted")

    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        export_version(
            versions("lima"), "trl-lm", out, ExportOptions(split=SplitSpec({"train": 1.0})), boom
        )
    assert list(out.iterdir()) == []
    with pytest.raises(RuntimeError):
        export_version(versions("lima"), "openai-chat", tmp_path / "f.jsonl", progress=boom)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "ws"]


def test_exports_stream_in_shard_order(tmp_path: Path) -> None:
    records = [Conversation(id=f"c{i:03d}", messages=[user(f"q{i}")]) for i in range(45)]
    version = make_version(tmp_path, "many", Kind.CONVERSATION, records, shard_rows=10)
    assert len(version.shard_paths) == 5
    seen: list[int] = []
    report = export_version(version, "trl-prompt-only", tmp_path / "p.jsonl", progress=seen.append)
    assert sum(seen) == 45 == report.records_read
    assert [r["prompt"][0]["content"] for r in read_lines(tmp_path / "p.jsonl")] == [
        f"q{i}" for i in range(45)
    ]


# -- the command line ----------------------------------------------------------------------


def test_cli_exports_prints_a_report_and_refuses_to_overwrite(
    versions: Callable[[str], Version], tmp_path: Path
) -> None:
    versions("lima")
    versions("docs")
    ws = str(tmp_path / "ws")
    runner = CliRunner()
    out = tmp_path / "exported"
    args = ["-w", ws, "export", "lima@1", "-f", "trl-prompt-completion", "-o", str(out)]
    result = runner.invoke(cli, [*args, "--split", "train=0.8,test=0.2", "--standard"])
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "test" in result.output
    assert "multi-turn prompt" in result.output  # the skipped table
    assert (out / "train.jsonl").exists() and (out / "test.jsonl").exists()
    result = runner.invoke(cli, [*args, "--split", "train=0.8,test=0.2"])
    assert result.exit_code == 1 and "--overwrite" in result.output
    result = runner.invoke(cli, [*args, "--split", "train=0.8,test=0.2", "--overwrite"])
    assert result.exit_code == 0, result.output

    result = runner.invoke(
        cli, ["-w", ws, "export", "docs", "-f", "openai-chat", "-o", str(out / "x")]
    )
    assert result.exit_code == 1
    assert "error:" in result.output and "trl-lm" in result.output
    result = runner.invoke(
        cli,
        [
            "-w",
            ws,
            "export",
            "docs",
            "-f",
            "jsonl",
            "-o",
            str(out / "d.jsonl"),
            "--split",
            "train=0.7",
        ],
    )
    assert result.exit_code == 1 and "add up to 1" in result.output


def test_cli_help_lists_formats_and_kinds() -> None:
    result = CliRunner().invoke(cli, ["export", "--help"])
    assert result.exit_code == 0
    assert "trl-preference" in result.output and "[preference]" in result.output


def test_docs_describe_every_format() -> None:
    from gristmill.io.export import all_exporters

    docs = (Path(__file__).parents[1] / "docs" / "export.md").read_text()
    missing = [e.name for e in all_exporters() if f"| `{e.name}`" not in docs]
    assert not missing
