"""What a dataset version says about itself: kind, size, parent, and how it was made."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from gristmill import __version__

MANIFEST_NAME = "manifest.json"


def current_user() -> str:
    """Who made a version: $GRISTMILL_USER, else the login name."""
    env = os.environ.get("GRISTMILL_USER")
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Shard(BaseModel):
    path: str  # relative to the version folder
    rows: int
    bytes: int


class SourceFile(BaseModel):
    """One input file of an import, with its balance: read = kept + quarantined."""

    path: str
    sha256: str
    bytes: int
    format: str
    rows_read: int = 0
    kept: int = 0
    quarantined: int = 0


class Manifest(BaseModel):
    name: str
    version: int
    kind: str
    row_count: int
    arrow_schema: str
    parent: str | None = None  # "name@version"
    operation: str
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    created_by: str = Field(default_factory=current_user)
    shards: list[Shard] = Field(default_factory=list)
    sources: list[SourceFile] = Field(default_factory=list)
    stats: dict[str, Any] = Field(default_factory=dict)
    gristmill_version: str = __version__

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def write(self, folder: Path) -> None:
        (folder / MANIFEST_NAME).write_text(self.model_dump_json(indent=2))

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        return cls.model_validate_json((folder / MANIFEST_NAME).read_text())


class AttributeInfo(BaseModel):
    """An attribute: per-record columns keyed by id, attached to one version."""

    name: str
    columns: list[str]
    rows: int
    operation: str
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    created_by: str = Field(default_factory=current_user)
