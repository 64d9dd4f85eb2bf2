"""A workspace folder of named datasets with immutable, numbered versions.

Layout::

    <workspace>/gristmill.json                 marker and settings
    <workspace>/datasets/<name>/v<N>/manifest.json
    <workspace>/datasets/<name>/v<N>/data/part-00000.parquet
    <workspace>/datasets/<name>/v<N>/attributes/<attr>.parquet (+ <attr>.json)
    <workspace>/datasets/<name>/v<N>/report.json, report.html
    <workspace>/quarantine/<name>/<run>.jsonl   rows an import refused, with reasons

A version folder appears only once complete (written aside, then renamed), so a
reader never sees half a version, and nothing rewrites a version after that.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson

from gristmill.store.errors import StoreError
from gristmill.store.manifest import Manifest
from gristmill.store.version import Version

MARKER = "gristmill.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
ENV_WORKSPACE = "GRISTMILL_WORKSPACE"


def check_name(name: str) -> str:
    if not NAME_RE.match(name) or name.endswith("."):
        raise StoreError(
            f"invalid dataset name {name!r}: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit"
        )
    return name


def parse_ref(ref: str) -> tuple[str, int | None]:
    """'name' → (name, None) for the latest; 'name@3' or 'name@v3' → (name, 3)."""
    if "@" not in ref:
        return check_name(ref), None
    name, _, ver = ref.rpartition("@")
    ver = ver.removeprefix("v")
    if not ver.isdigit():
        raise StoreError(f"invalid version in {ref!r}: expected NAME@N, e.g. {name}@1")
    return check_name(name), int(ver)


class Workspace:
    """Entry point to the store: datasets, versions and the quarantine."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if not (root / MARKER).is_file():
            raise StoreError(
                f"{root} is not a gristmill workspace (no {MARKER}); "
                f"run `gristmill init {root}` or pass --workspace"
            )

    # -- finding and making -----------------------------------------------------------

    @classmethod
    def init(cls, root: Path | str) -> Workspace:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        marker = root / MARKER
        if not marker.exists():
            marker.write_bytes(orjson.dumps({"format": 1}, option=orjson.OPT_INDENT_2))
        (root / "datasets").mkdir(exist_ok=True)
        (root / "quarantine").mkdir(exist_ok=True)
        return cls(root)

    @classmethod
    def find(cls, root: Path | str | None = None) -> Workspace:
        """The given folder, else $GRISTMILL_WORKSPACE, else the nearest folder upward
        from the current one that holds a workspace marker."""
        if root is not None:
            return cls(Path(root))
        env = os.environ.get(ENV_WORKSPACE)
        if env:
            return cls(Path(env))
        here = Path.cwd().resolve()
        for folder in (here, *here.parents):
            if (folder / MARKER).is_file():
                return cls(folder)
        raise StoreError(
            f"no gristmill workspace in {here} or above; run `gristmill init` "
            f"there, pass --workspace, or set {ENV_WORKSPACE}"
        )

    # -- datasets ---------------------------------------------------------------------

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    def quarantine_dir(self, name: str) -> Path:
        folder = self.root / "quarantine" / check_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def dataset_names(self) -> list[str]:
        if not self.datasets_dir.exists():
            return []
        return sorted(
            p.name
            for p in self.datasets_dir.iterdir()
            if p.is_dir() and self.version_numbers(p.name)
        )

    def version_numbers(self, name: str) -> list[int]:
        folder = self.datasets_dir / check_name(name)
        if not folder.is_dir():
            return []
        numbers = []
        for p in folder.iterdir():
            if p.is_dir() and p.name.startswith("v") and p.name[1:].isdigit():
                numbers.append(int(p.name[1:]))
        return sorted(numbers)

    def version(self, ref: str) -> Version:
        """Resolve 'name' (latest) or 'name@N'."""
        name, number = parse_ref(ref)
        numbers = self.version_numbers(name)
        if not numbers:
            known = ", ".join(self.dataset_names()) or "none yet"
            raise StoreError(f"no dataset named {name!r} (datasets: {known})")
        if number is None:
            number = numbers[-1]
        elif number not in numbers:
            raise StoreError(
                f"{name} has no version {number} (versions: {', '.join(map(str, numbers))})"
            )
        return Version(self, self.datasets_dir / name / f"v{number}")

    def versions(self, name: str) -> list[Version]:
        return [self.version(f"{name}@{n}") for n in self.version_numbers(name)]

    def lineage(self, ref: str) -> Iterator[Manifest]:
        """This version's manifest, then its parent's, back to the import."""
        current: str | None = self.version(ref).manifest.ref
        seen: set[str] = set()
        while current and current not in seen:
            seen.add(current)
            try:
                manifest = self.version(current).manifest
            except StoreError:
                return  # parent was removed; the manifest still names it
            yield manifest
            current = manifest.parent

    def remove(self, ref: str) -> list[str]:
        """Delete one version ('name@N') or a whole dataset ('name'); returns what went."""
        name, number = parse_ref(ref)
        if number is None:
            refs = [v.manifest.ref for v in self.versions(name)]
            if not refs:
                raise StoreError(f"no dataset named {name!r}")
            shutil.rmtree(self.datasets_dir / name)
            return refs
        version = self.version(ref)
        shutil.rmtree(version.path)
        if not self.version_numbers(name):
            shutil.rmtree(self.datasets_dir / name, ignore_errors=True)
        return [ref]

    def next_version_dir(self, name: str) -> tuple[int, Path]:
        numbers = self.version_numbers(name)
        number = (numbers[-1] if numbers else 0) + 1
        return number, self.datasets_dir / check_name(name) / f"v{number}"
