"""`pii`: find and redact personal data and secrets in documents and conversations.

- pii: {}                                  # redact every type with the default tokens
- pii: {types: [email, phone], mode: tag}  # only record what is there
- pii: {replacements: {email: "[EMAIL]"}, mode: drop}

Types: ``email``, ``phone``, ``ip_address``, ``credit_card``, ``iban``, ``secret``.
Detection (regular expressions plus a check per type, and what is deliberately not
taken) is in :mod:`gristmill.pii_detect`, shared with the quality report.

In a conversation every message is scanned: its content, its reasoning and the
arguments of its tool calls (JSON text: a token holds no quote or backslash, so the
JSON stays valid), and the system prompt.

Modes: ``redact`` rewrites the text (nothing is dropped), ``drop`` drops records that
contain any of the chosen types (reason ``contains pii: email, phone``), ``tag`` keeps
the text as it is and only records. Every mode writes the ``pii`` attribute (one row
per record with findings: its id and a count per type) and counters per type
(``email redacted`` in redact mode, ``email found`` otherwise).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa

from gristmill.pii_detect import (
    PII_TYPES,
    PRIORITY,
    Detector,
    Finding,
    card_issuer_ok,
    detectors,
    find_pii,
    iban_ok,
    luhn_ok,
)
from gristmill.pipeline.spec import register
from gristmill.pipeline.step import Step, StepOutput
from gristmill.records.kinds import Kind

__all__ = [
    "DEFAULT_REPLACEMENTS",
    "MODES",
    "PII",
    "PII_TYPES",
    "PRIORITY",
    "Detector",
    "Finding",
    "card_issuer_ok",
    "detectors",
    "find_pii",
    "iban_ok",
    "luhn_ok",
    "redact",
]

DEFAULT_REPLACEMENTS = {
    "email": "<EMAIL>",
    "phone": "<PHONE>",
    "ip_address": "<IP_ADDRESS>",
    "credit_card": "<CREDIT_CARD>",
    "iban": "<IBAN>",
    "secret": "<SECRET>",
}

MODES = ("redact", "drop", "tag")


def redact(text: str, findings: list[Finding], replacements: dict[str, str]) -> str:
    """``text`` with each finding (non-overlapping, in order) replaced by its token."""
    if not findings:
        return text
    parts: list[str] = []
    last = 0
    for f in findings:
        parts.append(text[last : f.start])
        parts.append(replacements[f.type])
        last = f.end
    parts.append(text[last:])
    return "".join(parts)


@register
class PII(Step):
    """Redact, drop or tag emails, phones, IPs, cards, IBANs and secrets (module doc)."""

    name = "pii"
    kinds = (Kind.DOCUMENT, Kind.CONVERSATION)

    def __init__(
        self,
        types: list[str] | None = None,
        mode: str = "redact",
        replacements: dict[str, str] | None = None,
        public_ips_only: bool = True,
        **rest: Any,
    ) -> None:
        if rest:
            raise TypeError(f"unknown parameters: {', '.join(rest)}")
        chosen = list(PII_TYPES if types is None else types)
        unknown = [t for t in chosen if t not in PII_TYPES]
        if unknown or not chosen:
            raise TypeError(
                f"types must be a non-empty list of {', '.join(PII_TYPES)}; got {chosen}"
            )
        if mode not in MODES:
            raise TypeError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        extra = set(replacements or {}) - set(PII_TYPES)
        if extra:
            raise TypeError(f"replacements for unknown types: {', '.join(sorted(extra))}")
        if any(set(token) & set('"\\') for token in (replacements or {}).values()):
            raise TypeError(
                "replacement tokens may not hold '\"' or '\\' (tool arguments are JSON)"
            )
        super().__init__(
            types=types, mode=mode, replacements=replacements, public_ips_only=public_ips_only
        )
        self.types = tuple(t for t in PII_TYPES if t in chosen)
        self.mode = mode
        self.replacements = {**DEFAULT_REPLACEMENTS, **(replacements or {})}
        self._detectors = detectors(public_ips_only)

    def _scan(self, text: str | None, counts: Counter[str]) -> str | None:
        """Count the findings of one text; return it redacted (redact mode)."""
        if not text:
            return text
        findings = find_pii(text, self.types, _detectors=self._detectors)
        for f in findings:
            counts[f.type] += 1
        if self.mode == "redact" and findings:
            return redact(text, findings, self.replacements)
        return text

    def process(self, table: pa.Table) -> StepOutput:
        per_record: list[Counter[str]] = [Counter() for _ in range(table.num_rows)]
        if self.ctx.kind == Kind.DOCUMENT:
            texts = table.column("text").to_pylist()
            new_texts = [self._scan(t, c) for t, c in zip(texts, per_record, strict=True)]
            if self.mode == "redact":
                table = _replace(table, "text", pa.array(new_texts, pa.string()))
        else:
            systems = table.column("system").to_pylist()
            conversations = table.column("messages").to_pylist()
            new_systems = [self._scan(s, c) for s, c in zip(systems, per_record, strict=True)]
            for messages, counts in zip(conversations, per_record, strict=True):
                for message in messages or []:
                    message["content"] = self._scan(message.get("content"), counts)
                    message["reasoning"] = self._scan(message.get("reasoning"), counts)
                    for call in message.get("tool_calls") or []:
                        call["arguments"] = self._scan(call.get("arguments"), counts)
            if self.mode == "redact":
                messages_type = table.schema.field("messages").type
                table = _replace(table, "system", pa.array(new_systems, pa.string()))
                table = _replace(table, "messages", pa.array(conversations, messages_type))

        verb = "redacted" if self.mode == "redact" else "found"
        totals: Counter[str] = Counter()
        ids = table.column("id").to_pylist()
        attr: dict[str, list[Any]] = {"id": [], **{t: [] for t in self.types}}
        drop: list[str | None] = []
        for record_id, counts in zip(ids, per_record, strict=True):
            totals.update(counts)
            if counts:
                attr["id"].append(record_id)
                for t in self.types:
                    attr[t].append(counts[t])
            present = [t for t in self.types if counts[t]]
            drop.append("contains pii: " + ", ".join(present) if present else None)
        counters = {f"{t} {verb}": totals[t] for t in self.types if totals[t]}
        records = sum(1 for c in per_record if c)
        if records:
            counters["records with pii"] = records
        schema = pa.schema([("id", pa.string()), *[(t, pa.int64()) for t in self.types]])
        return StepOutput(
            table,
            drop if self.mode == "drop" else None,
            attributes={"pii": pa.table(attr, schema=schema)} if attr["id"] else {},
            counters=counters,
        )


def _replace(table: pa.Table, column: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(column), column, values)
