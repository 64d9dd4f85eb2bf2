"""Build a large JSONL corpus of OpenAI-`messages` records by repeating real samples
(LIMA, Alpaca demo, ShareGPT-format chats from data/samples) with new ids."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import orjson

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def seed_records() -> list[dict[str, Any]]:
    """The real records, as OpenAI chat rows."""
    out: list[dict[str, Any]] = []
    for item in json.loads((SAMPLES / "lima" / "lima.json").read_text()):
        messages = []
        for user, assistant in item.get("history") or []:
            messages += [
                {"role": "user", "content": user},
                {"role": "assistant", "content": assistant},
            ]
        messages += [
            {"role": "user", "content": item["instruction"]},
            {"role": "assistant", "content": item["output"]},
        ]
        out.append({"messages": messages, "source_set": "lima"})
    for item in json.loads((SAMPLES / "llamafactory_demos" / "alpaca_en_demo.json").read_text()):
        prompt = item["instruction"] + (("\n\n" + item["input"]) if item["input"] else "")
        out.append(
            {
                "messages": [
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": item["output"]},
                ],
                "source_set": "alpaca",
            }
        )
    roles = {"human": "user", "gpt": "assistant"}
    chats = json.loads(
        (SAMPLES / "fastchat_mtbench" / "dummy_conversation_sharegpt.json").read_text()
    )
    for item in chats:
        out.append(
            {
                "messages": [
                    {"role": roles[t["from"]], "content": t["value"]} for t in item["conversations"]
                ],
                "source_set": "sharegpt",
            }
        )
    return out


def write_corpus(path: Path, n: int) -> Path:
    seeds = seed_records()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for i in range(n):
            record = {"id": f"bench-{i:08d}", **seeds[i % len(seeds)]}
            f.write(orjson.dumps(record) + b"\n")
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out/corpus.jsonl"))
    args = parser.parse_args()
    write_corpus(args.out, args.records)
    print(args.out, args.out.stat().st_size // 2**20, "MiB")
