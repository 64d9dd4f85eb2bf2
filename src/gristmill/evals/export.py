"""A task as files its peers read: an lm-eval-harness task (YAML + a JSONL of the items,
loaded through ``dataset_path: json``) and an inspect_ai dataset (JSONL with ``input``,
``target``, ``choices``, ``id``, ``metadata``, the fields ``json_dataset`` maps by
default).

Prompts are rendered by gristmill (field ``gm_prompt``) so both tools score exactly the
text gristmill scores; for log-likelihood tasks the continuations are the field
``gm_choices`` and lm-eval's ``target_delimiter`` is the task's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml

from gristmill.evals.prompts import LETTERS, build_prompt, continuations, prompt_text
from gristmill.evals.tasks import Task


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for row in rows:
            out.write(orjson.dumps(row) + b"\n")


def lm_eval_rows(task: Task, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for it in items:
        prompt = build_prompt(task.model_copy(update={"chat": False}), it, [])
        row: dict[str, Any] = {
            "id": it["id"],
            "gm_prompt": prompt if isinstance(prompt, str) else prompt_text(prompt),
            "references": it["references"],
            "tags": it["tags"],
        }
        if task.output_type == "loglikelihood":
            row["gm_choices"] = [
                c.removeprefix(task.target_delimiter) for c in continuations(task, it)
            ]
            row["answer_index"] = it["answer_index"]
        rows.append(row)
    return rows


def export_lm_eval(task: Task, items: list[dict[str, Any]], folder: Path) -> Path:
    """``<folder>/<task>.yaml`` and ``<folder>/<task>.jsonl``; run it with
    ``lm_eval --include_path <folder> --tasks gristmill_<task> ...``."""
    data = folder / f"{task.name}.jsonl"
    _write_jsonl(data, lm_eval_rows(task, items))
    spec: dict[str, Any] = {
        "task": f"gristmill_{task.name}",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data.resolve())}},
        "test_split": "test",
        "doc_to_text": "{{gm_prompt}}",
        "target_delimiter": task.target_delimiter,
        "metadata": {"version": 1.0, "exported_from": "gristmill", "description": task.description},
    }
    if task.output_type == "loglikelihood":
        spec |= {
            "output_type": "multiple_choice",
            "doc_to_choice": "{{gm_choices}}",
            "doc_to_target": "{{answer_index}}",
            "metric_list": [
                {"metric": m, "aggregation": "mean", "higher_is_better": True}
                for m in ("acc", "acc_norm")
            ],
        }
    elif task.output_type == "perplexity":
        spec |= {
            "output_type": "loglikelihood_rolling",
            "doc_to_target": "{{gm_prompt}}",
            "metric_list": [{"metric": "word_perplexity"}, {"metric": "bits_per_byte"}],
        }
    else:
        spec |= {
            "output_type": "generate_until",
            "doc_to_target": "{{references[0]}}",
            "generation_kwargs": {
                "until": task.generation.stop or ["\n\n\n"],
                "max_gen_toks": task.generation.max_tokens,
                "do_sample": False,
            },
            "metric_list": [
                {"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                 "ignore_case": True, "ignore_punctuation": False}
            ],
        }  # fmt: skip
        if any(m.extract == "numeric" for m in task.metrics):
            spec["filter_list"] = [
                {
                    "name": "flexible-extract",
                    "filter": [
                        {"function": "regex", "group_select": -1,
                         "regex_pattern": r"(-?[$0-9.,]{2,})|(-?[0-9]+)"},
                        {"function": "take_first"},
                    ],
                }
            ]  # fmt: skip
    path = folder / f"{task.name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return path


def export_inspect(task: Task, items: list[dict[str, Any]], path: Path) -> Path:
    """inspect_ai samples: ``input`` (the rendered prompt, or chat messages), ``target``
    (the answer letter for multiple choice, else the references), ``choices``."""
    rows = []
    for it in items:
        prompt = build_prompt(task, it, [])
        row: dict[str, Any] = {
            "id": it["id"],
            "input": prompt if isinstance(prompt, str) else list(prompt),
            "metadata": {"tags": it["tags"], "task": task.name},
        }
        if it["choices"] and it.get("answer_index") is not None:
            row["input"] = it["input"]  # inspect's multiple_choice() lists the choices
            row["choices"] = it["choices"]
            row["target"] = LETTERS[it["answer_index"]]
        else:
            refs = it["references"]
            row["target"] = refs[0] if len(refs) == 1 else refs
        rows.append(row)
    _write_jsonl(path, rows)
    return path
