"""Eval tasks: a YAML file naming the eval items, the prompt template, how the model
answers (generate, log-likelihood multiple choice, perplexity) and the metrics.

A task names its items by dataset (``dataset: gsm8k`` or ``gsm8k@2``) and, optionally,
the file to import them from when the workspace does not hold that dataset yet
(``data: data/samples/gsm8k/test.jsonl``, relative to the task file, the current folder
or the gristmill checkout). Ready tasks live in ``gristmill/evals/tasks/*.yaml``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

OutputType = Literal["generate", "loglikelihood", "perplexity"]
REPO_ROOT = Path(__file__).resolve().parents[3]


class TaskError(ValueError):
    """A task file that cannot be used; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricSpec(_Model):
    """One metric and its options (``metrics.METRICS`` lists the names)."""

    name: str
    normalize: list[str] = Field(default_factory=list)  # exact_match: lower, punct, articles, space
    extract: Literal["none", "numeric", "letter", "regex"] = "none"
    pattern: str | None = None  # extract: regex, the first group is the answer
    rubric: str | None = None  # model_graded: a rubric name or text


class FewShot(_Model):
    """Examples shown before each item: from a dataset (imported from ``data`` if
    absent), ``n`` of them, preferring those sharing the item's ``same_tag``-th tag."""

    dataset: str | None = None
    data: str | None = None
    format: str | None = None
    n: int = Field(default=0, ge=0)
    same_tag: int | None = None
    seed: int = 0


class Generation(_Model):
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    stop: list[str] = Field(default_factory=list)


class Grader(_Model):
    """A judge model for ``model_graded``: its ``--model`` spec (default: ``--judge`` or
    the packaged default) and a rubric (``mt_bench`` or your own text with
    ``{question}``, ``{answer}`` and ``{reference}``)."""

    model: str | None = None
    rubric: str = "mt_bench"
    max_tokens: int = 64


class Task(_Model):
    name: str
    description: str = ""
    dataset: str
    data: str | None = None
    format: str | None = None
    output_type: OutputType = "generate"
    chat: bool = False
    system: str | None = None
    prompt: str = "{{ input }}"
    choices: Literal["texts", "letters"] = "texts"  # loglikelihood continuations
    target_delimiter: str = " "
    few_shot: FewShot = Field(default_factory=FewShot)
    few_shot_separator: str = "\n\n"
    generation: Generation = Field(default_factory=Generation)
    metrics: list[MetricSpec] = Field(default_factory=list)
    grader: Grader | None = None
    path: str | None = None  # where it was read from (filled in by load_task)

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_names(cls, value: Any) -> Any:
        """``- acc`` is short for ``- name: acc``."""
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    def data_path(self, data: str | None = None) -> Path | None:
        """The file or folder ``data`` names, looked for beside the task file, in the
        current folder, then in the gristmill checkout."""
        target = data if data is not None else self.data
        if target is None:
            return None
        path = Path(target).expanduser()
        if path.is_absolute():
            return path if path.exists() else None
        bases = [Path(self.path).parent] if self.path and not self.path.startswith("<") else []
        for base in [*bases, Path.cwd(), REPO_ROOT]:
            if (base / path).exists():
                return base / path
        return None


def ready_tasks() -> dict[str, str]:
    """Name → description of the tasks shipped with gristmill."""
    out: dict[str, str] = {}
    for entry in sorted(resources.files("gristmill.evals").joinpath("tasks").iterdir(), key=str):
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text())
            out[entry.name[: -len(".yaml")]] = str(data.get("description", ""))
    return out


def load_task(spec: str) -> Task:
    """A ready task name (``gsm8k``) or a YAML file path."""
    path = Path(spec).expanduser()
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise TaskError(f"{spec}: no such task file")
        return parse_task(path.read_text(), str(path))
    ready = ready_tasks()
    key = spec.replace("-", "_")
    if key not in ready:
        raise TaskError(
            f"no task {spec!r}: not a YAML file and not a ready task ({', '.join(ready)})"
        )
    text = resources.files("gristmill.evals").joinpath("tasks", f"{key}.yaml").read_text()
    return parse_task(text, f"<ready task {key}>")


def parse_task(text: str, where: str) -> Task:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TaskError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise TaskError(f"{where}: a task is a mapping (name, dataset, prompt, metrics, ...)")
    data.setdefault("name", Path(where).stem if not where.startswith("<") else "task")
    try:
        task = Task.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'task'}: {e['msg']}" for e in exc.errors()
        )
        raise TaskError(f"{where}: {problems}") from exc
    task.path = where
    if not task.metrics:
        task.metrics = [MetricSpec(name=default_metric(task.output_type))]
    from gristmill.evals.metrics import check_metric

    for i, metric in enumerate(task.metrics):
        try:
            check_metric(metric, task.output_type)
        except ValueError as exc:
            raise TaskError(f"{where}: metrics[{i}] ({metric.name}): {exc}") from exc
    try:
        from jinja2 import TemplateSyntaxError

        from gristmill.evals.prompts import template

        template(task.prompt)
    except TemplateSyntaxError as exc:
        raise TaskError(f"{where}: prompt line {exc.lineno}: {exc.message}") from exc
    return task


def default_metric(output_type: str) -> str:
    return {"generate": "exact_match", "loglikelihood": "acc", "perplexity": "perplexity"}[
        output_type
    ]
