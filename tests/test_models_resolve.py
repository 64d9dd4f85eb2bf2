"""``--model`` specs, packaged-model discovery, the cache file and the ``models`` CLI
(nothing here loads a model)."""

from __future__ import annotations

import math
import pickle
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from gristmill.models import ModelCache, ModelError, NextTokens, yes_probability
from gristmill.models.errors import BackendMissing
from gristmill.models.packaged import MINILM, SMOLLM2, cache_root, find_packaged
from gristmill.models.resolve import resolve_embedder, resolve_language_model, split_spec
from gristmill.models.text import cut_at_stop, probability
from gristmill.store import Workspace


def test_split_spec() -> None:
    assert split_spec(None) == (None, "")
    assert split_spec("default") == (None, "")
    assert split_spec("smollm2") == (None, "smollm2")
    assert split_spec("openai:http://h:1/v1/m") == ("openai", "http://h:1/v1/m")
    assert split_spec("llamacpp:smollm2") == ("llama-cpp", "smollm2")
    assert split_spec("hf:/models/x") == ("transformers", "/models/x")
    assert split_spec("st:minilm") == ("sentence-transformers", "minilm")
    assert split_spec("C:/models/x") == (None, "C:/models/x")  # a drive, not a backend


def test_packaged_models_are_found_without_importing() -> None:
    assert find_packaged("SmolLM2") is SMOLLM2 and find_packaged("all-MiniLM-L6-v2") is MINILM
    assert find_packaged("minilm", "lm") is None
    path = SMOLLM2.path()
    assert path is not None and path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    emb = MINILM.path()
    assert emb is not None and (emb / "model.safetensors").is_file()


def test_cache_root_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRISTMILL_CACHE", str(tmp_path))
    assert cache_root() == tmp_path / "models"


def test_bad_specs_are_clear() -> None:
    with pytest.raises(ModelError, match="not a packaged name"):
        resolve_language_model("no-such-model")
    with pytest.raises(ModelError, match="packaged embedder, not a language model"):
        resolve_language_model("minilm")
    with pytest.raises(ModelError, match="embedder backend"):
        resolve_language_model("sentence-transformers:minilm")
    with pytest.raises(ModelError, match="language model backend"):
        resolve_embedder("llama-cpp:smollm2")


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_language_model(str(tmp_path))


def test_llama_cpp_missing_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed
    with pytest.raises(BackendMissing, match=r"CMAKE_ARGS=.*llama-cpp-python==0\.3\.36"):
        resolve_language_model("llama-cpp:smollm2")


def test_yes_probability_sums_variants() -> None:
    nt = NextTokens({"yes": math.log(0.1), " yes": math.log(0.2), " no": math.log(0.1)})
    p, ratio = yes_probability(nt)
    assert p == pytest.approx(0.3) and ratio == pytest.approx(0.75)
    assert probability(nt, ["yes", "yes"]) == pytest.approx(0.1)  # a variant counts once
    assert math.isnan(yes_probability(NextTokens({"maybe": 0.0}))[1])


def test_cut_at_stop() -> None:
    assert cut_at_stop("a\n\nb###c", ["###", "\n\n"]) == ("a", True)
    assert cut_at_stop("abc", []) == ("abc", False)


def test_cache_file_is_wal_and_picklable(tmp_path: Path) -> None:
    cache = ModelCache.for_workspace(tmp_path)
    key = cache.key("m", "embed", "text", {})
    assert cache.key("m", "embed", "text", {}) == key != cache.key("m", "embed", "text", {"a": 1})
    cache.put_many([(key, "m", "embed", b"\x00\x01")])
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.get_many([key]) == {key: b"\x00\x01"} and clone.hits == 1
    mode = sqlite3.connect(tmp_path / "cache" / "models.sqlite").execute("PRAGMA journal_mode")
    assert mode.fetchone()[0] == "wal"
    assert cache.stats() == [("m", "embed", 1, 2)]
    assert cache.clear("other") == 0 and cache.clear() == 1


def test_models_list_cli(run_cli: Callable[..., Result]) -> None:
    result = run_cli("models", "list")
    assert result.exit_code == 0, result.output
    assert "smollm2" in result.output and "minilm" in result.output
    assert "llama-cpp" in result.output and "pip install" in result.output


def test_models_cache_cli(run_cli: Callable[..., Result], workspace: Workspace) -> None:
    root = workspace.root
    assert "no cached calls" in run_cli("models", "cache").output
    cache = ModelCache.for_workspace(root)
    cache.put_many([(cache.key("m", "embed", "x", {}), "m", "embed", b"1234")])
    out = run_cli("models", "cache").output
    assert "embed" in out and "m" in out
    assert "deleted 1" in run_cli("models", "cache", "--clear").output
