"""Pipelines as data: a list of named steps with parameters, from Python or YAML.

```yaml
steps:
  - gopher_quality: {min_doc_words: 50}
  - c4: {}
  - minhash_dedup: {threshold: 0.8}
```

Steps register themselves by name (``@register``) when their stage's package is
imported; this layer knows the stages only by module name (``STEP_PROVIDERS``), so a
worker process that starts empty (Ray, spawn) finds every step too.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml

from gristmill.pipeline.step import GlobalStep, Step

S = TypeVar("S", bound=type[Step])
REGISTRY: dict[str, type[Step]] = {}


def register(cls: S) -> S:
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    REGISTRY[cls.name] = cls
    return cls


# stages whose packages register pipeline steps: curation filters, sampling scorers
STEP_PROVIDERS = ("gristmill.curate", "gristmill.sampling")


def known_steps(providers: tuple[str, ...] = STEP_PROVIDERS) -> dict[str, type[Step]]:
    """The steps these stages register, by name."""
    for module in providers:
        importlib.import_module(module)
    return {
        name: cls for name, cls in sorted(REGISTRY.items()) if cls.__module__.startswith(providers)
    }


def find_step(name: str) -> type[Step] | None:
    """A registered step, importing the stages one by one until one registers it (a
    curation pipeline never loads the sampling stage; a fresh Ray worker finds both)."""
    for module in (None, *STEP_PROVIDERS):
        if module is not None:
            importlib.import_module(module)
        if name in REGISTRY:
            return REGISTRY[name]
    return None


@dataclass(frozen=True)
class StepSpec:
    name: str
    params: dict[str, Any]


@dataclass(frozen=True)
class PipelineSpec:
    steps: tuple[StepSpec, ...]

    def to_data(self) -> list[dict[str, Any]]:
        return [{s.name: s.params} for s in self.steps]

    def digest(self) -> str:
        """Stable hash of the steps and parameters (names the run folder)."""
        data = orjson.dumps(self.to_data(), option=orjson.OPT_SORT_KEYS)
        return hashlib.blake2b(data, digest_size=6).hexdigest()

    def build(self) -> list[Step]:
        out: list[Step] = []
        for i, spec in enumerate(self.steps, start=1):
            cls = find_step(spec.name)
            if cls is None:
                known = ", ".join(sorted(REGISTRY))
                raise ValueError(f"step {i}: unknown step {spec.name!r}; known steps: {known}")
            try:
                out.append(cls(**spec.params))
            except TypeError as exc:
                raise ValueError(f"step {i} ({spec.name}): {exc}") from exc
        return out


def parse_pipeline(data: Any, where: str = "pipeline") -> PipelineSpec:
    """``{"steps": [{name: {params}} | name, ...]}`` or the bare list."""
    if isinstance(data, dict):
        if "steps" not in data:
            raise ValueError(f"{where}: expected a 'steps' list")
        data = data["steps"]
    if not isinstance(data, list) or not data:
        raise ValueError(f"{where}: 'steps' must be a non-empty list")
    specs = []
    for i, item in enumerate(data, start=1):
        if isinstance(item, str):
            specs.append(StepSpec(item, {}))
        elif isinstance(item, dict) and len(item) == 1:
            ((name, params),) = item.items()
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise ValueError(f"{where}: step {i} ({name}): parameters must be a mapping")
            specs.append(StepSpec(str(name), dict(params)))
        else:
            raise ValueError(f"{where}: step {i} must be a name or a {{name: {{params}}}} mapping")
    return PipelineSpec(tuple(specs))


def load_pipeline(path: Path) -> PipelineSpec:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    return parse_pipeline(data, str(path))


def stages(steps: list[Step]) -> list[tuple[list[Step], GlobalStep | None]]:
    """Cut the pipeline before each global step: [(per-batch steps, the global step
    that ends the stage or None)]. The global step's ``process`` opens the next stage."""
    out: list[tuple[list[Step], GlobalStep | None]] = []
    current: list[Step] = []
    for step in steps:
        if isinstance(step, GlobalStep):
            out.append((current, step))
            current = [step]
        else:
            current.append(step)
    out.append((current, None))
    return out


StepFactory = Callable[..., Step]
