"""Where exported rows go: one file, or one file per split in a folder.

Files are written under a temporary name beside their final one and renamed only
when the export completes, so an interrupted export leaves no half file that looks
whole. Existing outputs are replaced only with ``overwrite``; a folder output is
never wiped, only the files this export writes are replaced (an HF dataset folder,
which ``save_to_disk`` owns whole, is replaced only if it is one).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.io.export.base import Container

HF_MARKERS = ("dataset_dict.json", "state.json", "dataset_info.json")
DEFAULT_SPLIT = "train"


def _staging(final: Path) -> Path:
    return final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


class Sink:
    """Writes rows (JSONL) or storage batches (Parquet, HF) per split."""

    def __init__(
        self,
        container: Container,
        out: Path,
        splits: list[str] | None,
        overwrite: bool,
        schema: pa.Schema | None = None,
    ) -> None:
        self.container = container
        self.out = out
        self.split_names = splits or [DEFAULT_SPLIT]
        self.folder = splits is not None
        self.schema = schema
        self._jsonl: dict[str, IO[bytes]] = {}
        self._parquet: dict[str, pq.ParquetWriter] = {}
        self._arrow: dict[str, pa.RecordBatchStreamWriter] = {}
        self._staged: dict[str, Path] = {}  # split → temporary file
        if container is Container.HF:
            if importlib.util.find_spec("datasets") is None:
                raise ValueError(
                    "format hf needs the datasets package: pip install 'gristmill[hf]'"
                )
            self._check_hf_target(overwrite)
            self._work = _staging(out)
            self._work.mkdir(parents=True)
            for split in self.split_names:
                self._staged[split] = self._work / f"{split}.arrow"
        else:
            ext = "jsonl" if container is Container.JSONL else "parquet"
            if self.folder:
                if out.exists() and not out.is_dir():
                    raise ValueError(f"{out} is a file; splits are written to a folder")
                targets = {s: out / f"{s}.{ext}" for s in self.split_names}
            else:
                targets = {self.split_names[0]: out}
            for target in targets.values():
                if target.is_dir():
                    raise ValueError(f"{target} is a folder; give a file path to write")
                if target.exists() and not overwrite:
                    raise ValueError(f"{target} exists; pass --overwrite to replace it")
            (out if self.folder else out.parent).mkdir(parents=True, exist_ok=True)
            self._targets = targets
            self._staged = {s: _staging(p) for s, p in targets.items()}

    def _check_hf_target(self, overwrite: bool) -> None:
        out = self.out
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            return
        if out.is_dir() and not any(out.iterdir()):
            return
        if not overwrite:
            raise ValueError(f"{out} exists; pass --overwrite to replace it")
        if not (out.is_dir() and any((out / m).is_file() for m in HF_MARKERS)):
            raise ValueError(f"{out} exists and is not a saved HF dataset; refusing to replace it")

    # -- writing ------------------------------------------------------------------------

    def write_rows(self, split: str, rows: list[dict[str, Any]]) -> None:
        """JSON lines (a row is one JSON object)."""
        handle = self._jsonl.get(split)
        if handle is None:
            handle = self._jsonl[split] = self._staged[split].open("wb")
        for row in rows:
            handle.write(orjson.dumps(row))
            handle.write(b"\n")

    def write_batch(self, split: str, batch: pa.RecordBatch) -> None:
        """Storage rows, columnar (Parquet or the Arrow stream behind an HF dataset)."""
        if self.container is Container.PARQUET:
            writer = self._parquet.get(split)
            if writer is None:
                writer = self._parquet[split] = pq.ParquetWriter(
                    self._staged[split], batch.schema, compression="zstd"
                )
            writer.write_batch(batch)
        elif self.container is Container.HF:
            stream = self._arrow.get(split)
            if stream is None:
                stream = self._arrow[split] = pa.ipc.new_stream(self._staged[split], batch.schema)
            stream.write_batch(batch)
        else:
            raise TypeError("JSONL sinks take rows (write_rows), not batches")

    # -- finishing ----------------------------------------------------------------------

    def _close_writers(self) -> None:
        for handle in self._jsonl.values():
            handle.close()
        for writer in self._parquet.values():
            writer.close()
        for stream in self._arrow.values():
            stream.close()
        self._jsonl.clear()
        self._parquet.clear()
        self._arrow.clear()

    def commit(self) -> list[Path]:
        """Close, fill splits that got no rows, move into place; the final paths."""
        self._close_writers()
        if self.container is Container.HF:
            return [self._commit_hf()]
        for split, staged in self._staged.items():
            if not staged.exists():
                self._write_empty(split, staged)
        for split, staged in self._staged.items():
            os.replace(staged, self._targets[split])
        return list(self._targets.values())

    def _write_empty(self, split: str, path: Path) -> None:
        if self.container is Container.PARQUET and self.schema is not None:
            pq.write_table(self.schema.empty_table(), path)
        else:
            path.touch()

    def _commit_hf(self) -> Path:
        import datasets  # optional dependency: the `hf` extra

        for staged in self._staged.values():
            if not staged.exists():
                if self.schema is None:
                    raise ValueError("an HF export needs the schema for empty splits")
                with pa.ipc.new_stream(staged, self.schema) as stream:
                    stream.write_table(self.schema.empty_table())
        parts = {s: datasets.Dataset.from_file(str(p)) for s, p in self._staged.items()}
        # an empty split saved with the default zero shards cannot be loaded back
        shards = {s: 1 if len(d) == 0 else None for s, d in parts.items()}
        saved = _staging(self.out)
        bars_were_off = datasets.are_progress_bars_disabled()
        datasets.disable_progress_bars()  # the export's own progress bar is the one shown
        try:
            if self.folder:
                datasets.DatasetDict(parts).save_to_disk(str(saved), num_shards=shards)
            else:
                parts[DEFAULT_SPLIT].save_to_disk(str(saved), num_shards=shards[DEFAULT_SPLIT])
        finally:
            if not bars_were_off:
                datasets.enable_progress_bars()
            del parts
            shutil.rmtree(self._work, ignore_errors=True)
        if self.out.exists():
            _remove(self.out)
        saved.rename(self.out)
        return self.out

    def abort(self) -> None:
        self._close_writers()
        for staged in self._staged.values():
            if staged.exists():
                _remove(staged)
        if self.container is Container.HF:
            shutil.rmtree(self._work, ignore_errors=True)
