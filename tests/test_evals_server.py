"""GSM8K through a real OpenAI-compatible server on loopback (llama-cpp-python with the
packaged SmolLM2 GGUF): the stored answers are what the server says for the same chat
prompt, scored by hand; log-likelihood tasks are refused there with the reason."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import Result
from llama_server import llama_server, needs_llama_server

from gristmill.store import Workspace

pytestmark = [pytest.mark.slow, needs_llama_server]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with llama_server() as url:
        yield url


def test_gsm8k_through_the_server_matches_a_hand_check(
    server: str, run_cli: Callable[..., Result], workspace: Workspace, samples: Path
) -> None:
    model = f"openai:{server}/smollm2"
    result = run_cli(
        "eval", "run", "gsm8k", "--model", model, "--limit", "2", "--max-tokens", "40",
        "--concurrency", "2", "--batch-size", "1", "--name", "gsm8k-server",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "gsm8k@1 (1319 eval items)" in result.output
    assert "run stored as gsm8k-server@1" in result.output
    raw = [json.loads(x) for x in (samples / "gsm8k" / "test.jsonl").read_text().splitlines()[:2]]
    version = workspace.version("gsm8k-server@1")
    assert version.manifest.params["model_name"] == "openai:smollm2"
    total = 0.0
    for doc, row in zip(raw, version.iter_rows(), strict=True):
        meta = orjson.loads(row["meta"])
        user = row["messages"][0]["content"]
        assert user.startswith(doc["question"])
        # the same request by hand: greedy chat completion of the same user turn
        reply = httpx.post(
            f"{server}/chat/completions",
            json={
                "model": "smollm2",
                "messages": [{"role": "user", "content": user}],
                "max_tokens": 40,
                "temperature": 0.0,
                "stop": ["\n\n\n"],
            },
            timeout=120,
        ).json()["choices"][0]["message"]["content"]
        assert row["messages"][-1]["content"].strip() == reply.strip()
        final = doc["answer"].split("####")[-1].strip().replace(",", "")
        numbers = re.findall(r"-?\d[\d,]*(?:\.\d+)?", reply)
        hit = bool(numbers) and float(numbers[-1].replace(",", "").rstrip(".")) == float(final)
        assert meta["scores"]["exact_match"] == float(hit)
        assert meta["correct"] is hit
        total += hit
    stats = version.manifest.stats["metrics"]["exact_match"]
    assert stats["value"] == pytest.approx(total / 2) and stats["n"] == 2


def test_loglikelihood_is_refused_on_a_server_with_shifted_echo_logprobs(
    server: str, run_cli: Callable[..., Result], workspace: Workspace
) -> None:
    result = run_cli(
        "eval", "run", "openbookqa", "--model", f"openai:{server}/smollm2", "--limit", "2"
    )
    assert result.exit_code == 1
    assert "shifted by one token" in result.output
    assert "generative tasks work through this server" in result.output
    assert "eval-openbookqa" not in workspace.dataset_names()  # nothing half-written
