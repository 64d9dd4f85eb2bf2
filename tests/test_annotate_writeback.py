"""Write-back: aggregated answers become an attribute and a new version whose records
export as DPO pairs, KTO labels and SFT rows that follow the annotators."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from click.testing import Result

from gristmill.annotate.aggregate import aggregate
from gristmill.annotate.qc_values import QCError
from gristmill.annotate.writeback import AGGREGATE_RATER, kto_mapping, write_back
from gristmill.records.arrow import to_row
from gristmill.records.kinds import Candidate, Conversation, Document, Message, Preference
from gristmill.store import VersionWriter, Workspace

PREF = {"name": "pref", "kind": "preference", "strengths": [1, 2, 3]}
VERDICT = {"name": "verdict", "kind": "label", "labels": ["good", "bad"]}


def answers(rows: list[tuple[str, str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_id", "annotator", "value"])


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def import_hh(
    workspace: Workspace, tmp_path: Path, samples: Path, run_cli: Callable[..., Result]
) -> list[str]:
    """The first six real HH-RLHF pairs (chosen ranked 1, rejected 2) as ``hh@1``."""
    with gzip.open(samples / "hh_rlhf" / "harmless-base-test.jsonl.gz", "rt") as f:
        lines = [next(f) for _ in range(6)]
    path = tmp_path / "hh6.jsonl"
    path.write_text("".join(lines))
    result = run_cli("import", str(path), "--as", "hh")
    assert result.exit_code == 0, result.output
    return [r.id for r in workspace.version("hh@1").iter_records()]


def write_records(workspace: Workspace, name: str, kind: str, records: list[Any]) -> str:
    with VersionWriter(workspace, name, kind, operation="import") as writer:
        writer.write_rows([to_row(r) for r in records])
    assert writer.version is not None
    return writer.version.ref


def test_preference_answers_flip_dpo_pairs_on_real_hh_rlhf(
    workspace: Workspace, tmp_path: Path, samples: Path, run_cli: Callable[..., Result]
) -> None:
    ids = import_hh(workspace, tmp_path, samples, run_cli)
    choices = {ids[0]: "b", ids[1]: "b", ids[2]: "b", ids[3]: "a", ids[4]: "a", ids[5]: "tie"}
    rows = []
    for rid, choice in choices.items():
        for ann in ("ann", "bob", "cy"):
            # one dissenter on the first record; the aggregate must still say b
            picked = "a" if (rid == ids[0] and ann == "cy") else choice
            value = {"choice": picked, "strength": 2, "reason": f"{ann} read it"}
            rows.append((rid, ann, value))
    pref_answers = answers(rows)
    aggregated = {"pref": aggregate(PREF, pref_answers)}
    raw = pref_answers.assign(question="pref")
    new = write_back(workspace, "hh@1", "harmless", [PREF], aggregated, annotator_answers=raw)

    assert new.ref == "hh@2"
    assert new.manifest.parent == "hh@1" and new.manifest.operation == "annotate"
    assert new.manifest.params["project"] == "harmless"
    assert new.manifest.params["methods"] == {"pref": ["bradley_terry"]}
    assert new.manifest.stats["applied"]["pref: candidate ranks"] == 6

    # the attribute on the source version, and carried to the new one
    source = workspace.version("hh@1")
    table = source.read_attribute("annotations").to_pandas().set_index("id")
    assert json.loads(table.loc[ids[0], "pref"])["choice"] == "b"
    assert 0.5 < table.loc[ids[0], "pref_confidence"] < 1
    assert table.loc[ids[0], "pref_method"] == "bradley_terry"
    assert "annotations" in new.attribute_names()
    kept = new.read_attribute("annotator_answers").to_pandas().set_index("id")
    assert len(json.loads(kept.loc[ids[0], "answers"])) == 3

    records = {r.id: r for r in new.iter_records()}
    assert records[ids[0]].rationale == "ann read it"
    assert [c.rank for c in records[ids[5]].candidates] == [1, 1]

    out = tmp_path / "dpo.jsonl"
    result = run_cli("export", "hh@2", "--format", "trl-preference", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows_out = read_jsonl(out)
    assert len(rows_out) == 5  # the tie is skipped and counted
    assert "tie" in result.output
    originals = {r.id: r for r in source.iter_records()}
    by_prompt = {json.dumps(r["prompt"]): r for r in rows_out}
    for rid, choice in choices.items():
        if choice == "tie":
            continue
        record = originals[rid]
        prompt = [{"role": m.role, "content": m.content} for m in record.prompt]
        row = by_prompt[json.dumps(prompt)]
        first, second = (c.messages[0].content for c in record.candidates)
        chosen, rejected = (first, second) if choice == "a" else (second, first)
        assert row["chosen"][0]["content"] == chosen
        assert row["rejected"][0]["content"] == rejected


def three_way() -> list[Preference]:
    def cand(text: str) -> Candidate:
        return Candidate(messages=[Message(role="assistant", content=text)])

    prompt = [Message(role="user", content="What is 2 + 2?")]
    return [
        Preference(id="r1", prompt=prompt, candidates=[cand("5"), cand("4"), cand("four-ish")]),
        Preference(id="r2", prompt=prompt, candidates=[cand("4")]),
        Preference(id="r3", prompt=prompt, candidates=[cand("22")]),
        Preference(id="r4", prompt=prompt, candidates=[cand("x"), cand("y"), cand("z")]),
    ]


def test_ranking_ratings_and_kto_labels_export(
    workspace: Workspace, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    ref = write_records(workspace, "math", "preference", three_way())
    ranking = {"name": "rank", "kind": "ranking", "allow_ties": False}
    rating = {
        "name": "quality",
        "kind": "rating",
        "target": "each_response",
        "dimensions": [{"name": "correct", "min": 1, "max": 5}],
    }
    rank_rows = answers([("r1", "a", [3, 1, 2]), ("r1", "b", [3, 1, 2]), ("r1", "c", [2, 1, 3])])
    rate_rows = answers(
        [
            ("r1", "a", [{"correct": 1}, {"correct": 5}, {"correct": 3}]),
            ("r1", "b", [{"correct": 2}, {"correct": 5}, {"correct": 4}]),
        ]
    )
    verdict_rows = answers(
        [
            ("r2", "a", "good"),
            ("r2", "b", "good"),
            ("r3", "a", "bad"),
            ("r3", "b", "bad"),
            ("r4", "a", "good"),
        ]
    )
    aggregated = {
        "rank": aggregate(ranking, rank_rows),
        "quality": aggregate(rating, rate_rows),
        "verdict": aggregate(VERDICT, verdict_rows, "majority"),
    }
    new = write_back(workspace, ref, "math-qc", [ranking, rating, VERDICT], aggregated)
    records = {r.id: r for r in new.iter_records()}
    r1 = records["r1"]
    assert isinstance(r1, Preference)
    assert [c.rank for c in r1.candidates] == [3, 1, 2]
    assert [(r.dimension, r.value, r.rater) for r in r1.candidates[2].ratings] == [
        ("correct", 3.5, AGGREGATE_RATER)
    ]
    assert r1.scales[0].dimension == "correct"
    assert records["r2"].candidates[0].label is True  # type: ignore[attr-defined]
    assert records["r3"].candidates[0].label is False  # type: ignore[attr-defined]
    assert records["r4"].meta["labels"] == {"verdict": "good"}  # 3 candidates: meta only
    assert (
        new.manifest.stats["applied"]["verdict: no KTO label (record has 3 candidates, not 1)"] == 1
    )

    dpo = tmp_path / "dpo.jsonl"
    assert run_cli("export", new.ref, "-f", "trl-preference", "-o", str(dpo)).exit_code == 0
    (row,) = read_jsonl(dpo)  # r2, r3 have one candidate and r4 no ranks: skipped
    assert (row["chosen"][0]["content"], row["rejected"][0]["content"]) == ("4", "5")
    assert row["margin"] == 2

    by_rating = tmp_path / "by_rating.jsonl"
    result = run_cli(
        "export", new.ref, "-f", "trl-preference", "-o", str(by_rating), "--dimension", "correct"
    )
    assert result.exit_code == 0, result.output
    (row,) = read_jsonl(by_rating)
    assert row["chosen"][0]["content"] == "4" and row["margin"] == pytest.approx(5 - 1.5)

    kto = tmp_path / "kto.jsonl"
    assert run_cli("export", new.ref, "-f", "trl-unpaired", "-o", str(kto)).exit_code == 0
    labels = {r["completion"][0]["content"]: r["label"] for r in read_jsonl(kto)}
    assert labels == {"4": True, "22": False}


def test_text_answers_become_the_final_turn_and_labels_land_in_meta(
    workspace: Workspace, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    convs = [
        Conversation(
            id="c1",
            messages=[
                Message(role="user", content="Capital of France?"),
                Message(role="assistant", content="Lyon."),
            ],
        ),
        Conversation(id="c2", messages=[Message(role="user", content="Say hi")]),
        Conversation(id="c3", messages=[Message(role="user", content="Untouched")]),
    ]
    ref = write_records(workspace, "chats", "conversation", convs)
    fix = {"name": "fix", "kind": "text", "mode": "correct"}
    topic = {"name": "topic", "kind": "label", "labels": ["geo", "chit"]}
    aggregated = {
        "fix": aggregate(
            fix,
            answers(
                [
                    ("c1", "a", "Paris."),
                    ("c1", "b", "Paris is the capital."),
                    ("c1", "c", "paris."),
                    ("c2", "a", "Hi!"),
                ]
            ),
        ),
        "topic": aggregate(topic, answers([("c1", "a", "geo"), ("c2", "a", "chit")]), "majority"),
    }
    new = write_back(workspace, ref, "fixes", [fix, topic], aggregated, only_annotated=True)
    assert new.row_count == 2 and new.manifest.stats["records_out"] == 2
    records = {r.id: r for r in new.iter_records()}
    c1 = records["c1"]
    assert isinstance(c1, Conversation)
    assert c1.messages[-1].content == "Paris."
    assert c1.meta["original_responses"] == {"fix": "Lyon."}
    assert c1.meta["labels"] == {"topic": "geo"}
    assert records["c2"].messages[-1].content == "Hi!"  # type: ignore[attr-defined]

    sft = tmp_path / "sft.jsonl"
    assert run_cli("export", new.ref, "-f", "trl-prompt-completion", "-o", str(sft)).exit_code == 0
    completions = sorted(r["completion"][0]["content"] for r in read_jsonl(sft))
    assert completions == ["Hi!", "Paris."]

    docs = write_records(workspace, "docs", "document", [Document(id="d1", text="hello")])
    again = write_back(
        workspace, docs, "p", [topic], {"topic": aggregate(topic, answers([("d1", "a", "chit")]))}
    )
    (doc,) = again.iter_records()
    assert doc.meta == {"labels": {"topic": "chit"}}


def test_write_back_refuses_what_does_not_fit(workspace: Workspace) -> None:
    ref = write_records(workspace, "math", "preference", three_way())
    with pytest.raises(QCError, match=r"not in math@1, e\.g\. nope"):
        write_back(
            workspace,
            ref,
            "p",
            [VERDICT],
            {"verdict": aggregate(VERDICT, answers([("nope", "a", "good")]))},
        )
    ranking = {"name": "rank", "kind": "ranking"}
    with pytest.raises(QCError, match=r"record 'r1'.*ranks 2 responses but the record has 3"):
        write_back(
            workspace,
            ref,
            "p",
            [ranking],
            {"rank": aggregate(ranking, answers([("r1", "a", [1, 2])]))},
        )
    with pytest.raises(QCError, match="needs exactly two candidates"):
        write_back(
            workspace,
            ref,
            "p",
            [PREF],
            {"pref": aggregate(PREF, answers([("r1", "a", {"choice": "a"})]))},
        )
    assert workspace.version_numbers("math") == [1]  # nothing half-written
    assert workspace.version(ref).attribute_names() == []


def test_kto_convention() -> None:
    assert kto_mapping(VERDICT) == {"good": True, "bad": False}
    assert kto_mapping({"name": "s", "kind": "label", "labels": ["pos", "neg"]}) is None
    assert kto_mapping({"name": "s", "kind": "label", "labels": ["Thumbs_Up", "thumbs_down"]}) == {
        "Thumbs_Up": True,
        "thumbs_down": False,
    }
    explicit = {"s": {"ship": True, "fix": False}}
    assert kto_mapping({"name": "s", "kind": "label", "labels": ["ship", "fix"]}, explicit) == {
        "ship": True,
        "fix": False,
    }
    assert orjson.dumps(kto_mapping(VERDICT))
