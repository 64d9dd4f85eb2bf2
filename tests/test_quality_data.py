"""Builders for the quality tests: real sample rows turned into storage rows by hand
(plain json, no importer), written as versions with VersionWriter, with known problems
planted. Imported by test_quality.py and test_quality_cli.py; holds no tests itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gristmill.records import Kind
from gristmill.store import Version, VersionWriter, Workspace

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
NOW = datetime(2025, 1, 1, tzinfo=UTC)  # reference time of the reports
RECENT = NOW - timedelta(days=10)
OLD = datetime(2015, 6, 1, tzinfo=UTC)

N_LIMA = 120  # LIMA[:120]: single-turn, English, no duplicates
N_SHAREGPT = 40  # 7 prompts ("Who are you?"...) with 27 records answered differently
SHAREGPT_SEVERAL_GROUPS = 7
SHAREGPT_SEVERAL_RECORDS = 27
N_C4 = 100
N_GSM8K = 150

FRENCH_ANSWER = (
    "Oui, certaines cellules du cerveau peuvent se déplacer sur de longues distances. "
    "Pendant le développement, les neurones migrent depuis les zones où ils naissent "
    "jusqu'à leur place définitive dans le cortex, et chez l'adulte les cellules souches "
    "de la zone sous-ventriculaire migrent encore vers le bulbe olfactif."
)


def _message(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "content": content}


def lima_rows(n: int = N_LIMA) -> list[dict[str, Any]]:
    """LIMA (alpaca with history) → conversation rows."""
    data = json.loads((SAMPLES / "lima" / "lima.json").read_text())
    rows = []
    for i, item in enumerate(data[:n]):
        messages = []
        for user, assistant in item.get("history") or []:
            messages += [_message("user", user), _message("assistant", assistant)]
        prompt = item["instruction"] + (f"\n\n{item['input']}" if item["input"] else "")
        messages += [_message("user", prompt), _message("assistant", item["output"])]
        rows.append(
            {
                "id": f"lima-{i}",
                "source": "lima.json",
                "source_row": i,
                "origin": "import:lima",
                "created_at": RECENT,
                "task_category": "open_qa" if i % 2 == 0 else None,
                "messages": messages,
            }
        )
    return rows


def sharegpt_rows(n: int = N_SHAREGPT) -> list[dict[str, Any]]:
    """FastChat's ShareGPT-format dummy conversations → conversation rows."""
    data = json.loads(
        (SAMPLES / "fastchat_mtbench" / "dummy_conversation_sharegpt.json").read_text()
    )
    roles = {"human": "user", "gpt": "assistant"}
    return [
        {
            "id": item["id"],
            "source": "dummy_conversation_sharegpt.json",
            "origin": "import:sharegpt",
            "created_at": RECENT,
            "task_category": "chat",
            "messages": [_message(roles[m["from"]], m["value"]) for m in item["conversations"]],
        }
        for item in data[:n]
    ]


def c4_rows(n: int = N_C4) -> list[dict[str, Any]]:
    lines = (SAMPLES / "llamafactory_demos" / "c4_demo.jsonl").read_text().splitlines()[:n]
    return [
        {
            "id": f"c4-{i}",
            "source": "c4_demo.jsonl",
            "origin": "import:c4",
            "created_at": RECENT,
            "domain": "web",
            "text": json.loads(line)["text"],
        }
        for i, line in enumerate(lines)
    ]


def gsm8k_rows(n: int = N_GSM8K) -> list[dict[str, Any]]:
    lines = (SAMPLES / "gsm8k" / "test.jsonl").read_text().splitlines()[:n]
    rows = []
    for i, line in enumerate(lines):
        item = json.loads(line)
        rows.append(
            {
                "id": f"gsm8k-{i}",
                "source": "test.jsonl",
                "origin": "import:gsm8k",
                "created_at": RECENT,
                "task_category": "closed_qa",
                "input": item["question"],
                "references": [item["answer"].split("####")[-1].strip()],
                "tags": ["math"],
            }
        )
    return rows


def write(workspace: Workspace, name: str, kind: Kind, rows: list[dict[str, Any]]) -> Version:
    with VersionWriter(workspace, name, kind, operation="test") as writer:
        writer.write_rows(rows)
    assert writer.version is not None
    return writer.version


# -- planted problems ---------------------------------------------------------------------


def clean_conversations() -> list[dict[str, Any]]:
    return lima_rows() + sharegpt_rows()


def planted_conversations() -> list[dict[str, Any]]:
    """The clean rows plus exactly: one assistant-first conversation, one duplicated
    record, one empty assistant reply, one old created_at, one French answer to an
    English question, one reused id (4 records added, 2 changed)."""
    rows = clean_conversations()
    extra = lima_rows(160)
    # a French answer to an English question (replaces LIMA[1]'s answer)
    rows[1]["messages"][1]["content"] = FRENCH_ANSWER
    # an old created_at
    rows[3]["created_at"] = OLD
    # an assistant-first conversation (new content, from LIMA[130])
    first = extra[130]
    first["id"] = "planted-assistant-first"
    first["messages"] = [first["messages"][1], *first["messages"]]
    # a duplicated record: LIMA[0]'s content under a new id
    duplicate = dict(rows[0], id="planted-duplicate")
    # an empty assistant reply (LIMA[131]'s prompt)
    empty = extra[131]
    empty["id"] = "planted-empty-reply"
    empty["messages"][1]["content"] = ""
    # a reused id on different content (LIMA[140])
    reused = dict(extra[140], id="lima-5")
    return [*rows, first, duplicate, empty, reused]


def planted_documents() -> list[dict[str, Any]]:
    """C4 documents plus one empty text, one blank text, one without created_at and one
    stamped at import time."""
    rows = c4_rows()
    for row in rows:  # ages against the real clock: 10 days old
        row["created_at"] = datetime.now(UTC) - timedelta(days=10)
    rows.append(dict(rows[0], id="planted-empty", text=""))
    rows.append(dict(rows[0], id="planted-blank", text="   \n "))
    rows[10]["created_at"] = None
    rows[11]["created_at"] = datetime.now(UTC)
    return rows


def planted_eval_items() -> list[dict[str, Any]]:
    """GSM8K plus: the first question again with a different reference, an exact copy
    of the second item, an answer_index out of range, choices with no answer."""
    rows = gsm8k_rows()
    conflicting = dict(rows[0], id="planted-conflict", references=["19"])
    copy = dict(rows[1], id="planted-copy")
    out_of_range = dict(
        rows[2],
        id="planted-range",
        input=rows[2]["input"] + " (choose)",
        choices=["18", "20"],
        answer_index=5,
        references=[],
    )
    no_answer = dict(
        rows[3],
        id="planted-no-answer",
        input=rows[3]["input"] + " (choose)",
        choices=["3", "4"],
        references=[],
    )
    return [*rows, conflicting, copy, out_of_range, no_answer]


def dpo_rows(n: int = 30) -> list[dict[str, Any]]:
    """LLaMA-Factory's ShareGPT DPO demo → preference rows (chosen rank 1, rejected 2)."""
    data = json.loads((SAMPLES / "llamafactory_demos" / "dpo_en_demo.json").read_text())
    roles = {"human": "user", "gpt": "assistant", "system": "system"}
    rows = []
    for i, item in enumerate(data[:n]):
        prompt = [_message(roles[m["from"]], m["value"]) for m in item["conversations"]]
        candidates = [
            {"messages": [_message("assistant", item[key]["value"])], "rank": rank}
            for rank, key in ((1, "chosen"), (2, "rejected"))
        ]
        rows.append(
            {
                "id": f"dpo-{i}",
                "source": "dpo_en_demo.json",
                "origin": "import:dpo_en_demo",
                "created_at": RECENT,
                "prompt": prompt,
                "candidates": candidates,
            }
        )
    return rows


def planted_preferences() -> list[dict[str, Any]]:
    """Plus: identical candidates, and dpo-0 again with the ranks swapped."""
    rows = dpo_rows()
    same = rows[1]["candidates"][0]["messages"]
    identical = dict(
        rows[1],
        id="planted-identical",
        candidates=[{"messages": same, "rank": 1}, {"messages": same, "rank": 2}],
    )
    chosen, rejected = rows[0]["candidates"]
    swapped = dict(
        rows[0], id="planted-swapped", candidates=[dict(chosen, rank=2), dict(rejected, rank=1)]
    )
    return [*rows, identical, swapped]


def tau_rows(n: int = 20) -> list[dict[str, Any]]:
    """tau-bench airline trajectories (OpenAI messages with tool calls) → agent traces."""
    import gzip

    with gzip.open(SAMPLES / "tau_bench_trajectories" / "gpt-4o-airline.json.gz") as f:
        data = json.load(f)
    rows = []
    for i, item in enumerate(data[:n]):
        steps: list[dict[str, Any]] = []
        for m in item["traj"]:
            if m["role"] == "tool":
                steps.append(
                    {
                        "type": "tool_result",
                        "role": "tool",
                        "content": m["content"],
                        "tool_name": m.get("name"),
                        "call_id": m["tool_call_id"],
                    }
                )
                continue
            if m.get("content"):
                steps.append({"type": "message", "role": m["role"], "content": m["content"]})
            for call in m.get("tool_calls") or []:
                fn = call["function"]
                steps.append(
                    {
                        "type": "tool_call",
                        "role": "assistant",
                        "tool_name": fn["name"],
                        "arguments": fn["arguments"],
                        "call_id": call["id"],
                    }
                )
        rows.append(
            {
                "id": f"tau-{i}",
                "source": "gpt-4o-airline.json.gz",
                "origin": "model:gpt-4o",
                "created_at": RECENT,
                "task": item["info"]["task"]["instruction"],
                "steps": steps,
                "reward": item["reward"],
                "outcome": "success" if item["reward"] == 1 else "failure",
            }
        )
    return rows


def planted_traces() -> list[dict[str, Any]]:
    """Plus: a trace with no steps, and one whose first tool result has no call."""
    rows = tau_rows()
    empty = dict(rows[0], id="planted-no-steps", steps=[])
    orphan_steps = [s for s in rows[2]["steps"] if s["type"] != "tool_call"]  # 7 results
    orphan = dict(rows[2], id="planted-orphan-result", steps=orphan_steps)
    return [*rows, empty, orphan]


def label_studio_media() -> list[dict[str, Any]]:
    """The Label Studio polygon export → a media row (with its source timestamp), plus
    the same image labelled differently and a box of zero width."""
    (task,) = json.loads(
        (SAMPLES / "label_studio_exports" / "test_export_json_min_data.json").read_text()
    )
    result = task["annotations"][0]["result"][0]["value"]
    row = {
        "id": f"ls-{task['id']}",
        "source": "test_export_json_min_data.json",
        "origin": "human:1",
        "created_at": datetime.fromisoformat(task["created_at"]),
        "uri": task["data"]["image"],
        "media_type": "image",
        "labels": result["polygonlabels"],
        "polygons": [{"label": result["polygonlabels"][0], "points": result["points"]}],
    }
    relabelled = dict(row, id="planted-relabelled", labels=["Bird"], polygons=[])
    bad_box = dict(
        row,
        id="planted-bad-box",
        uri="/data/upload/29/other.png",
        boxes=[{"label": "Airplane", "x": 1, "y": 1, "width": 0, "height": 5}],
    )
    return [row, relabelled, bad_box]
