"""Text helpers the metrics share: token counting, language id, normalisation, hashing.

Nothing here downloads anything: the regex tokenizer is built in, an HF tokenizer is
read from a local ``tokenizer.json``, and language identification is the project's one
identifier, :mod:`gristmill.langid` (a fastText model shipped in a wheel).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Protocol

import orjson

# re-exported: the metrics import them from here
from gristmill.langid import UNDETERMINED as UNDETERMINED
from gristmill.langid import detect_language as detect_language

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_SPACE_RE = re.compile(r"\s+")

MIX_MIN_CONFIDENCE = (
    0.3  # below this a text's language counts as "und" in the mix (fastText scores)
)
MISMATCH_MIN_CONFIDENCE = 0.9  # both sides must be this sure to call a mismatch
MISMATCH_MIN_LETTERS = 20  # ...and have this many letters
MISMATCH_CHARS = 500  # each side's first characters decide (enough for langid, 4x cheaper)
_LETTER_RE = re.compile(r"[^\W\d_]")


class TokenCounter(Protocol):
    """Counts tokens for a batch of texts (batched so an HF tokenizer can go fast)."""

    name: str

    def count(self, texts: list[str]) -> list[int]: ...


class RegexTokenizer:
    r"""Words and single punctuation marks (``\w+|[^\w\s]``): model-free and stable,
    roughly 0.75x the count of a BPE tokenizer on English prose."""

    name = r"regex \w+|[^\w\s]"

    def count(self, texts: list[str]) -> list[int]:
        findall = TOKEN_RE.findall
        return [len(findall(t)) if t else 0 for t in texts]


class HFTokenizer:
    """A Hugging Face ``tokenizers`` tokenizer read from a local tokenizer.json."""

    def __init__(self, path: Path) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:  # optional dependency
            raise ValueError(
                "--tokenizer needs the `tokenizers` package (pip install tokenizers)"
            ) from exc
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(f"no tokenizer.json at {path}")
        self._tokenizer = Tokenizer.from_file(str(file))
        self.name = f"hf {file}"

    def count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return [len(e.ids) for e in encodings]


def load_tokenizer(spec: str) -> TokenCounter:
    """``"regex"`` → the built-in tokenizer; anything else is a tokenizer.json path."""
    if spec == "regex":
        return RegexTokenizer()
    return HFTokenizer(Path(spec))


def letters(text: str) -> int:
    """Number of letters (word characters that are not digits or underscores)."""
    return len(_LETTER_RE.findall(text))


def normalize(text: str) -> str:
    """Whitespace collapsed and case folded: the form prompts are compared in."""
    return _SPACE_RE.sub(" ", text).strip().casefold()


def digest(value: Any) -> int:
    """Signed 64-bit blake2b digest of a JSON-able value (sorted keys), for DuckDB BIGINT."""
    data = (
        value.encode()
        if isinstance(value, str)
        else orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    )
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)


# -- reading row values that may be missing or of the wrong type (bad input is counted,
# never raised on, by the report's checks)


def str_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


def dicts_of(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def strs_of(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
