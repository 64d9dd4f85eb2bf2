"""SQL over the workspace with DuckDB: every version and attribute is a view.

Views: ``<name>`` (latest version), ``"<name>@<N>"`` (a version), and
``"<name>@<N>/<attr>"`` / ``"<name>/<attr>"`` (an attribute, keyed by ``id``).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from gristmill.store.workspace import Workspace


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _files(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def connect(workspace: Workspace) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view for each version and attribute."""
    con = duckdb.connect()
    for name in workspace.dataset_names():
        versions = workspace.versions(name)
        for version in versions:
            refs = [version.ref] + ([name] if version is versions[-1] else [])
            shards = [str(p) for p in version.shard_paths]
            for ref in refs:
                if shards:
                    select = f"SELECT * FROM read_parquet({_files(shards)})"
                else:
                    cols = ", ".join(f"NULL AS {_quote(c)}" for c in version.schema.names)
                    select = f"SELECT {cols} WHERE false"
                con.execute(f"CREATE VIEW {_quote(ref)} AS {select}")
                for attr in version.attribute_names():
                    path = str(version.attributes_dir / f"{attr}.parquet")
                    con.execute(
                        f"CREATE VIEW {_quote(ref + '/' + attr)} AS "
                        f"SELECT * FROM read_parquet({_files([path])})"
                    )
    return con


def run_query(workspace: Workspace, sql: str) -> pa.Table:
    con = connect(workspace)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()
