"""Seeded, group-keeping splits (io/splits.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pytest
from test_export_fixtures import assistant, make_version, user

from gristmill.io.splits import SplitSpec, Splitter, parse_split
from gristmill.records.arrow import rows_to_table, to_row
from gristmill.records.kinds import (
    Candidate,
    Conversation,
    Document,
    Kind,
    Message,
    Preference,
    RecordBase,
)

FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def _batch(kind: Kind, records: Sequence[RecordBase]) -> pa.RecordBatch:
    return rows_to_table(kind, [to_row(r) for r in records]).combine_chunks().to_batches()[0]


def _conversations(n: int, repeats: int = 3) -> list[RecordBase]:
    """``n`` prompts, each asked ``repeats`` times with different answers (and
    whitespace/case variants of the prompt)."""
    out: list[RecordBase] = []
    for i in range(n):
        for r in range(repeats):
            prompt = f"Question number {i}?" if r == 0 else f"  question NUMBER {i}? "
            out.append(
                Conversation(
                    id=f"c{i}-{r}",
                    source=f"src{i % 5}",
                    meta={"topic": {"name": f"t{i % 7}"}},
                    messages=[user(prompt), assistant(f"answer {r}")],
                )
            )
    return out


def test_parse_split() -> None:
    assert parse_split("train=0.9,validation=0.1") == {"train": 0.9, "validation": 0.1}
    assert list(parse_split(" test=0.2 , train=0.8")) == ["test", "train"]
    for bad in [
        "train=0.9",
        "train",
        "train=x,test=0.5",
        "train=0.5,train=0.5",
        "1a=0.5,b=0.5",
        "a=0,b=1",
    ]:
        with pytest.raises(ValueError):
            parse_split(bad)


def test_same_seed_same_assignment_other_seed_differs() -> None:
    batch = _batch(Kind.CONVERSATION, _conversations(300, repeats=1))
    a = Splitter(Kind.CONVERSATION, SplitSpec(FRACTIONS, seed=1)).assign(batch)
    b = Splitter(Kind.CONVERSATION, SplitSpec(FRACTIONS, seed=1)).assign(batch)
    c = Splitter(Kind.CONVERSATION, SplitSpec(FRACTIONS, seed=2)).assign(batch)
    assert a == b
    assert a != c


def test_assignment_is_per_record_so_batching_does_not_matter() -> None:
    records = _conversations(100, repeats=1)
    splitter = Splitter(Kind.CONVERSATION, SplitSpec(FRACTIONS, seed=3))
    whole = splitter.assign(_batch(Kind.CONVERSATION, records))
    parts = splitter.assign(_batch(Kind.CONVERSATION, records[:37])) + splitter.assign(
        _batch(Kind.CONVERSATION, records[37:])
    )
    assert whole == parts


def test_same_prompt_stays_on_one_side_and_sizes_add_up() -> None:
    records = _conversations(400)
    splitter = Splitter(Kind.CONVERSATION, SplitSpec(FRACTIONS, seed=0))
    names = splitter.assign(_batch(Kind.CONVERSATION, records))
    by_prompt: dict[str, set[str]] = {}
    for record, name in zip(records, names, strict=True):
        by_prompt.setdefault(record.id.split("-")[0], set()).add(name)
    assert all(len(sides) == 1 for sides in by_prompt.values())
    sizes = Counter(names)
    assert splitter.sizes == sizes
    assert sum(sizes.values()) == len(records)
    assert set(sizes) == set(FRACTIONS)
    assert sizes["train"] / len(records) == pytest.approx(0.8, abs=0.07)


def test_fractions_are_followed_on_many_groups() -> None:
    splitter = Splitter(Kind.DOCUMENT, SplitSpec({"a": 0.7, "b": 0.2, "c": 0.1}, seed=5))
    sizes = Counter(splitter.split_of(f"key {i}") for i in range(20_000))
    assert sizes["a"] / 20_000 == pytest.approx(0.7, abs=0.015)
    assert sizes["b"] / 20_000 == pytest.approx(0.2, abs=0.015)
    assert sizes["c"] / 20_000 == pytest.approx(0.1, abs=0.015)


@pytest.mark.parametrize("group_by", ["source", "meta.topic.name", "lower(source)"])
def test_group_by_column_meta_key_or_sql(group_by: str) -> None:
    records = _conversations(60, repeats=1)
    splitter = Splitter(
        Kind.CONVERSATION, SplitSpec({"train": 0.5, "test": 0.5}, group_by=group_by)
    )
    batch = _batch(Kind.CONVERSATION, records)
    keys = splitter.keys(batch)
    names = splitter.assign(batch)
    sides: dict[str, set[str]] = {}
    for key, name in zip(keys, names, strict=True):
        sides.setdefault(key, set()).add(name)
    assert len(sides) == (7 if group_by.startswith("meta") else 5)
    assert all(len(s) == 1 for s in sides.values())


def test_bad_sql_group_by_says_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="neither 'prompt', a column"):
        Splitter(Kind.DOCUMENT, SplitSpec({"train": 1.0}, group_by="no_such_column + 1"))


def test_prompt_keys_per_kind() -> None:
    docs = [Document(id="a", text="Same  text"), Document(id="b", text="same text")]
    keys = Splitter(Kind.DOCUMENT, SplitSpec({"t": 1.0})).keys(_batch(Kind.DOCUMENT, docs))
    assert keys[0] == keys[1]
    pref = Preference(
        id="p",
        prompt=[Message(role="user", content="Hi")],
        candidates=[Candidate(messages=[assistant("x")])],
    )
    keys = Splitter(Kind.PREFERENCE, SplitSpec({"t": 1.0})).keys(_batch(Kind.PREFERENCE, [pref]))
    assert keys == ["hi"]


def test_splitting_a_stored_version_streams_over_shards(tmp_path: Path) -> None:
    version = make_version(tmp_path, "conv", Kind.CONVERSATION, _conversations(50), shard_rows=16)
    assert len(version.shard_paths) > 1
    splitter = Splitter(version.kind, SplitSpec(FRACTIONS, seed=0))
    streamed = [n for batch in version.iter_batches() for n in splitter.assign(batch)]
    assert streamed == splitter.assign(version.table().combine_chunks().to_batches()[0])
