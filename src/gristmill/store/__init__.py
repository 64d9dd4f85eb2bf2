"""Workspace, immutable dataset versions, attributes, lineage and SQL."""

from gristmill.store.errors import StoreError
from gristmill.store.manifest import AttributeInfo, Manifest, Shard, SourceFile
from gristmill.store.version import Version
from gristmill.store.workspace import Workspace, parse_ref
from gristmill.store.writer import VersionWriter, derive_version

__all__ = [
    "AttributeInfo",
    "Manifest",
    "Shard",
    "SourceFile",
    "StoreError",
    "Version",
    "VersionWriter",
    "Workspace",
    "derive_version",
    "parse_ref",
]
