"""Synthetic generation through gristmill vs the server's own throughput, and the cost
of a fully cached rerun.

A real OpenAI-compatible server (llama-cpp-python's, the packaged SmolLM2-135M GGUF) on
loopback; the same chat requests (MT-Bench + Vicuna-bench questions from data/samples,
greedy, ``--max-tokens``) are sent

1. straight to the server with httpx at ``--concurrency`` requests in flight (the
   server's own throughput: completion tokens from its ``usage`` / wall time), before
   and after (2);
2. through ``gristmill.synth.generate`` (resolve_language_model → call cache → the
   OpenAI backend's endpoint pool) at the same concurrency, into a fresh workspace:
   completion tokens / wall time of the whole call, version writing included;
3. again through gristmill on the same workspace: every answer from the cache.

Prints tokens/s of each, the ratio gristmill / server (goal ≥ 0.9) and the requests and
seconds of the cached rerun (goal: no model call).

    .venv/bin/python bench/synth.py                       # 24 prompts, 32 tokens, 4 in flight
    .venv/bin/python bench/synth.py --prompts 48 --concurrency 8 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from gristmill.models.packaged import SMOLLM2
from gristmill.records.arrow import to_row
from gristmill.records.kinds import Conversation, Kind, Message
from gristmill.store import VersionWriter, Workspace
from gristmill.synth import GenerateConfig, RunOptions, generate

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples" / "fastchat_mtbench"


def questions(n: int) -> list[str]:
    out: list[str] = []
    for name in ("mt_bench_question.jsonl", "vicuna_bench_question.jsonl"):
        for line in (SAMPLES / name).read_text().splitlines():
            out.append(json.loads(line)["turns"][0])
    return out[:n]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(threads: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "N_THREADS_BATCH": str(threads)}
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(SMOLLM2.path()),
           "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", "2048", "--n_threads", str(threads), "--verbose", "false"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("llama_cpp.server did not start")


def direct(url: str, prompts: list[str], max_tokens: int, concurrency: int) -> tuple[int, float]:
    """The server's own throughput: the same requests, no gristmill in between."""
    client = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=concurrency * 2))

    def one(prompt: str) -> int:
        body: dict[str, Any] = {
            "model": "smollm2",
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "top_p": 1.0,
            "n": 1,
            "seed": 0,
        }
        resp = client.post(f"{url}/chat/completions", json=body)
        resp.raise_for_status()
        return int(resp.json()["usage"]["completion_tokens"])

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        tokens = sum(pool.map(one, prompts))
    return tokens, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="server CPU threads")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    prompts = questions(args.prompts)
    proc, url = start_server(args.threads)
    direct_runs: list[tuple[int, float]] = []
    gm_runs: list[tuple[int, float]] = []
    try:
        direct(url, ["Say hello."], 4, 1)  # warm up
        with tempfile.TemporaryDirectory() as tmp:
            spec = f"openai:{url}/smollm2?concurrency={args.concurrency}"
            options = RunOptions(model=spec, progress=False)
            config = GenerateConfig(n=1, max_tokens=args.max_tokens, temperature=0.0)
            records = [
                Conversation(id=f"q{i}", messages=[Message(role="user", content=p)])
                for i, p in enumerate(prompts)
            ]
            # alternate direct / gristmill (each in a fresh workspace: an empty cache),
            # then direct once more, so load drifts on a shared machine hit both sides
            for r in range(args.repeats):
                direct_runs.append(direct(url, prompts, args.max_tokens, args.concurrency))
                ws = Workspace.init(Path(tmp) / f"ws{r}")
                with VersionWriter(ws, "questions", Kind.CONVERSATION, operation="bench") as w:
                    w.write_rows([to_row(x) for x in records])
                start = time.perf_counter()
                result = generate(ws, "questions", config, options)
                gm_runs.append(
                    (int(result.card["tokens"]["completion"]), time.perf_counter() - start)
                )
            direct_runs.append(direct(url, prompts, args.max_tokens, args.concurrency))
            start = time.perf_counter()
            again = generate(ws, "questions", config, options, output="questions-again")
            sec_c = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    server_tps = sum(t for t, _ in direct_runs) / sum(x for _, x in direct_runs)
    gm_tps = sum(t for t, _ in gm_runs) / sum(x for _, x in gm_runs)
    print(f"{len(prompts)} prompts, max_tokens {args.max_tokens}, concurrency "
          f"{args.concurrency}, server threads {args.threads}, {args.repeats} repeats")  # fmt: skip
    for i, (t, x) in enumerate(direct_runs):
        print(f"server, direct #{i + 1}: {t} tokens in {x:.2f} s = {t / x:.1f} tokens/s")
    for i, (t, x) in enumerate(gm_runs):
        print(f"gristmill synth generate #{i + 1}: {t} tokens in {x:.2f} s = {t / x:.1f} tokens/s")
    print(f"server {server_tps:.1f} tokens/s, gristmill {gm_tps:.1f} tokens/s")
    print(f"ratio gristmill / server: {gm_tps / server_tps:.3f} (goal >= 0.9)")
    calls = again.card["calls"]
    print(
        f"cached rerun: {calls['model_calls']} model calls of {calls['requested']} "
        f"({calls['cache_hits']} cache hits) in {sec_c:.2f} s (goal: no model call)"
    )


if __name__ == "__main__":
    main()
