"""Stable record ids: a hash of the content, so the same record re-imported from an
export (or another file) gets the same id and duplicates show up as duplicate ids."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from gristmill.records.arrow import content_columns
from gristmill.records.kinds import Kind


def content_id(kind: Kind | str, row: dict[str, Any]) -> str:
    """16 hex chars of blake2b over the kind and its content fields (sorted JSON)."""
    payload = {name: row.get(name) for name in content_columns(kind)}
    digest = hashlib.blake2b(
        orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS),
        digest_size=8,
        person=str(Kind(kind)).encode()[:16],
    )
    return digest.hexdigest()
