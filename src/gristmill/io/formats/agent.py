"""Agent-run formats that become ``agent_trace`` records: the task, the ordered steps
(messages, tool calls, tool results), the outcome and the reward.

Traces land here so that triage can turn failed runs into SFT tasks and eval items.
The system prompt is kept as the first step (a ``message`` with role ``system``), not in
``meta``: the steps then replay exactly what the agent saw, in order.
"""

from __future__ import annotations

import re
from pathlib import Path

from gristmill.io.formats.base import (
    Format,
    Row,
    RowContext,
    RowError,
    as_number,
    pop_path,
    require_list,
    require_str,
    share_where,
)
from gristmill.io.formats.messages import Message, parse_openai_messages
from gristmill.records.kinds import Kind


def step_row(
    type_: str,
    *,
    role: str | None = None,
    content: str | None = None,
    tool_name: str | None = None,
    arguments: str | None = None,
    call_id: str | None = None,
) -> Row:
    """A trace step in storage form (every field present)."""
    return {
        "type": type_,
        "role": role,
        "content": content,
        "tool_name": tool_name,
        "arguments": arguments,
        "call_id": call_id,
    }


def steps_from_messages(messages: list[Message]) -> list[Row]:
    """OpenAI-style messages → steps: text turns are ``message`` steps (assistant
    reasoning a ``plan`` step), each tool call a ``tool_call`` step, each tool message
    a ``tool_result`` step carrying the call id it answers."""
    steps: list[Row] = []
    for msg in messages:
        role = msg["role"]
        if role == "tool":
            steps.append(
                step_row(
                    "tool_result",
                    role="tool",
                    content=msg["content"],
                    tool_name=msg["name"],
                    call_id=msg["tool_call_id"],
                )
            )
            continue
        if msg["reasoning"]:
            steps.append(step_row("plan", role=role, content=msg["reasoning"]))
        if msg["content"] or not msg["tool_calls"]:
            steps.append(step_row("message", role=role, content=msg["content"]))
        for call in msg["tool_calls"] or []:
            steps.append(
                step_row(
                    "tool_call",
                    role=role,
                    tool_name=call["name"],
                    arguments=call["arguments"],
                    call_id=call["id"],
                )
            )
    return steps


def trace_row(
    task: str,
    steps: list[Row],
    *,
    reward: float | None = None,
    outcome: str | None = None,
    tools: str | None = None,
) -> Row:
    """An agent trace's content fields in storage form."""
    return {
        "task": task,
        "steps": steps,
        "outcome": outcome,
        "reward": reward,
        "failure_labels": [],
        "tools": tools,
    }


class TauBench(Format):
    name = "tau-bench"
    kind = Kind.AGENT_TRACE
    description = (
        'tau-bench historical trajectories: {"task_id", "reward", "info": {"task": '
        '{"instruction", "actions", ...}}, "traj": [OpenAI messages]}.'
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(
            sample,
            lambda r: (
                "task_id" in r
                and "reward" in r
                and isinstance(r.get("info"), dict)
                and isinstance(r.get("traj"), list)
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        """Task = the simulated user's instruction (what the agent had to achieve);
        outcome ``success`` when reward ≥ 1; the gold ``actions`` go to ``meta``."""
        instruction = pop_path(row, "info.task.instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            raise RowError("expected a non-empty string", "info.task.instruction")
        try:
            actions = pop_path(row, "info.task.actions")
        except RowError:
            actions = None  # gold actions are optional; the trace stands without them
        if "reward" not in row:
            raise RowError("missing required field", "reward")
        reward = as_number(row.pop("reward"))
        if reward is None:
            raise RowError("expected a number", "reward")
        traj = require_list(row, "traj")
        steps = steps_from_messages(parse_openai_messages(traj, "traj"))
        out = trace_row(
            instruction, steps, reward=reward, outcome="success" if reward >= 1 else "failure"
        )
        if actions is not None:
            out["meta"] = {"actions": actions}
        return out


_DISPLAY_TURN = re.compile(r"^(user|assistant|tool): ?", re.MULTILINE)


class TauBenchFewShot(Format):
    name = "tau-bench-few-shot"
    kind = Kind.AGENT_TRACE
    description = (
        'tau-bench few-shot demonstrations: {"messages_display": "user: …\\nassistant: …'
        '\\ntool: …"} flattened transcripts, with no reward.'
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(
            sample,
            lambda r: (
                isinstance(r.get("messages_display"), str)
                and r["messages_display"].startswith(("user:", "assistant:"))
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        """Task = the first user turn. The display form writes a tool call as
        ``assistant: None`` and hides which tool it was, so such a step is a
        ``tool_call`` with no name; reward and outcome are unknown (None)."""
        text = require_str(row, "messages_display")
        parts = _DISPLAY_TURN.split(text)
        if parts[0].strip():
            raise RowError("text before the first 'user:' / 'assistant:' turn", "messages_display")
        steps: list[Row] = []
        for role, body in zip(parts[1::2], parts[2::2], strict=True):
            body = body.rstrip("\n")
            if role == "tool":
                steps.append(step_row("tool_result", role="tool", content=body))
            elif role == "assistant" and body.strip() == "None":
                steps.append(step_row("tool_call", role="assistant"))
            else:
                steps.append(step_row("message", role=role, content=body))
        task = next((s["content"] for s in steps if s["role"] == "user"), None)
        if task is None or not task.strip():
            raise RowError("no user turn to take the task from", "messages_display")
        return trace_row(task, steps)


FORMATS: list[Format] = [TauBench(), TauBenchFewShot()]
