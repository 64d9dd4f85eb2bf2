"""Compare two versions of a dataset by record id: added, removed, changed."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from gristmill.records.arrow import content_columns
from gristmill.store.version import Version


@dataclass(frozen=True)
class VersionDiff:
    old: str
    new: str
    added: int
    removed: int
    changed: int
    unchanged: int
    sample_added: list[str]
    sample_removed: list[str]
    sample_changed: list[str]


def _files(version: Version) -> str:
    return "[" + ", ".join(f"'{p}'" for p in version.shard_paths) + "]"


def diff_versions(old: Version, new: Version, sample: int = 5) -> VersionDiff:
    """Records match by id; 'changed' means the same id with different content."""
    con = duckdb.connect()
    for alias, version in (("a", old), ("b", new)):
        cols = [c for c in content_columns(version.kind) if c in version.schema.names]
        content = "md5(to_json(struct_pack(" + ", ".join(f'"{c}"' for c in cols) + "))::VARCHAR)"
        if version.shard_paths:
            con.execute(
                f"CREATE TABLE {alias} AS SELECT id, {content} AS h "
                f"FROM read_parquet({_files(version)})"
            )
        else:
            con.execute(f"CREATE TABLE {alias} (id VARCHAR, h VARCHAR)")

    def ids(sql: str) -> tuple[int, list[str]]:
        count = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()
        rows = con.execute(f"{sql} ORDER BY 1 LIMIT {sample}").fetchall()
        return (int(count[0]) if count else 0), [r[0] for r in rows]

    added, s_added = ids("SELECT DISTINCT b.id FROM b ANTI JOIN a USING (id)")
    removed, s_removed = ids("SELECT DISTINCT a.id FROM a ANTI JOIN b USING (id)")
    changed, s_changed = ids("SELECT DISTINCT a.id FROM a JOIN b USING (id) WHERE a.h <> b.h")
    same = con.execute(
        "SELECT count(DISTINCT a.id) FROM a JOIN b USING (id) WHERE a.h = b.h"
    ).fetchone()
    con.close()
    return VersionDiff(
        old=old.ref,
        new=new.ref,
        added=added,
        removed=removed,
        changed=changed,
        unchanged=int(same[0]) if same else 0,
        sample_added=s_added,
        sample_removed=s_removed,
        sample_changed=s_changed,
    )
