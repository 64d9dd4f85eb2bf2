"""PII rate: which records hold personal data or secrets, of which type, and where.

The detectors are the ``pii`` curation step's (``gristmill.pii_detect``), so a version
the step has redacted reports 0 findings, and both agree on what an email is. The tally
is bounded (counters per type and per part, a few examples per type), so memory does
not grow with the number of records. Examples carry the record id and a *masked*
match (``j***@e***.com``): a report is shared more widely than the data it describes.
"""

from __future__ import annotations

from typing import Any

from gristmill.pii_detect import PII_TYPES, Finding, detectors, find_pii
from gristmill.quality.model import PIIExample, PIIPartStats, PIIStats, PIITypeStats
from gristmill.quality.text import dicts_of, str_of, strs_of
from gristmill.records.kinds import Kind

Row = dict[str, Any]
Texts = list[tuple[str, str]]

MAX_PARTS = 20
OTHER_PART = "(other)"
MASK = "***"
MASKED_MAX = 48
PII_METHOD = (
    "gristmill.pii_detect (the pii curation step's detectors): regular expressions plus a "
    "check per type (Luhn and issuer prefix for cards, mod-97 for IBANs, public IPs only)"
)


# -- the texts of a record ----------------------------------------------------------------


def _message_texts(message: Row) -> list[str]:
    """Content, reasoning and tool-call arguments: all a message says."""
    out = [str_of(message.get("content")), str_of(message.get("reasoning"))]
    out += [str_of(call.get("arguments")) for call in dicts_of(message.get("tool_calls"))]
    return out


def pii_texts(kind: Kind, row: Row) -> Texts:
    """(part, text) pairs scanned for PII; parts are what the report breaks rates down by:
    the role for conversations, prompt/candidate for preferences, and so on."""
    out: Texts = []
    if kind is Kind.DOCUMENT:
        out.append(("text", str_of(row.get("text"))))
    elif kind is Kind.CONVERSATION:
        out.append(("system", str_of(row.get("system"))))
        for message in dicts_of(row.get("messages")):
            role = str(message.get("role") or "(no role)")
            out += [(role, t) for t in _message_texts(message)]
    elif kind is Kind.PREFERENCE:
        for message in dicts_of(row.get("prompt")):
            out += [("prompt", t) for t in _message_texts(message)]
        for candidate in dicts_of(row.get("candidates")):
            for message in dicts_of(candidate.get("messages")):
                out += [("candidate", t) for t in _message_texts(message)]
    elif kind is Kind.EVAL_ITEM:
        out.append(("input", str_of(row.get("input"))))
        out += [("reference", r) for r in strs_of(row.get("references"))]
        out += [("choice", c) for c in strs_of(row.get("choices"))]
    elif kind is Kind.AGENT_TRACE:
        out.append(("task", str_of(row.get("task"))))
        for step in dicts_of(row.get("steps")):
            out += [("step", str_of(step.get("content"))), ("step", str_of(step.get("arguments")))]
    elif kind is Kind.MEDIA:
        out += [("caption", c) for c in strs_of(row.get("captions"))]
        out += [("transcript", str_of(t.get("text"))) for t in dicts_of(row.get("transcripts"))]
    return [(part, text) for part, text in out if text]


# -- masking ------------------------------------------------------------------------------


def _keep_last(value: str, keep: int) -> str:
    """Digits and letters starred except the last ``keep``; separators stay."""
    positions = [i for i, ch in enumerate(value) if ch.isalnum()]
    hidden = set(positions[: max(0, len(positions) - keep)])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(value))


def mask(kind: str, value: str) -> str:
    """A match with enough shape left to find it in the record, never the value:
    ``j***@e***.com``, ``(***) ***-**67``, ``81.*.*.*``, ``**** **** **** 1111``,
    ``DE** **** … **00``, ``ghp_***``."""
    if kind == "email":
        local, _, domain = value.rpartition("@")
        host, _, tld = domain.rpartition(".")
        out = f"{local[:1]}{MASK}@{host[:1]}{MASK}.{tld}"
    elif kind == "phone":
        out = _keep_last(value, 2)
    elif kind == "ip_address":
        ipv6 = ":" in value
        out = value.split(":")[0] + ":" + MASK if ipv6 else value.split(".")[0] + ".*.*.*"
    elif kind == "credit_card":
        out = _keep_last(value, 4)
    elif kind == "iban":
        out = value[:2] + _keep_last(value[2:], 2)
    else:  # secret: the prefix that names the kind of token ("ghp_", "AKIA", "sk-p")
        head = value.splitlines()[0] if value.startswith("-----BEGIN") else ""
        out = (head or value[: 4 if len(value) >= 16 else 2]) + MASK
    return out if len(out) <= MASKED_MAX else out[: MASKED_MAX - 1] + "…"


# -- the tally ----------------------------------------------------------------------------


class _Part:
    __slots__ = ("matches", "records", "texts")

    def __init__(self) -> None:
        self.texts = 0
        self.records = 0
        self.matches = dict.fromkeys(PII_TYPES, 0)


class PIITally:
    """Per-record PII findings added up in bounded memory (``stats`` at the end)."""

    def __init__(self, examples: int = 3) -> None:
        self.keep = examples
        self.detectors = detectors(public_ips_only=True)
        self.records_any = 0
        self.records = dict.fromkeys(PII_TYPES, 0)
        self.matches = dict.fromkeys(PII_TYPES, 0)
        self.examples: dict[str, list[PIIExample]] = {t: [] for t in PII_TYPES}
        self.parts: dict[str, _Part] = {}

    def _part(self, name: str) -> _Part:
        if name not in self.parts and len(self.parts) >= MAX_PARTS:
            name = OTHER_PART
        return self.parts.setdefault(name, _Part())

    def add(self, record_id: str, texts: Texts) -> None:
        """Scan one record's texts."""
        types: dict[str, tuple[str, str, Finding]] = {}  # first finding of each type
        parts: set[str] = set()
        for name, text in texts:
            part = self._part(name)
            part.texts += 1
            findings = find_pii(text, _detectors=self.detectors)
            for f in findings:
                part.matches[f.type] += 1
                self.matches[f.type] += 1
                types.setdefault(f.type, (name, text, f))
            if findings:
                parts.add(name if name in self.parts else OTHER_PART)
        for name in parts:
            self.parts[name].records += 1
        if not types:
            return
        self.records_any += 1
        for kind, (name, text, f) in types.items():
            self.records[kind] += 1
            if len(self.examples[kind]) < self.keep:
                masked = mask(kind, text[f.start : f.end])
                self.examples[kind].append(PIIExample(id=record_id, part=name, masked=masked))

    def stats(self, n: int) -> PIIStats:
        def rate(count: int) -> float:
            return count / n if n else 0.0

        return PIIStats(
            method=PII_METHOD,
            records=self.records_any,
            rate=rate(self.records_any),
            matches=sum(self.matches.values()),
            types=[
                PIITypeStats(
                    type=t,
                    records=self.records[t],
                    rate=rate(self.records[t]),
                    matches=self.matches[t],
                    examples=self.examples[t],
                )
                for t in PII_TYPES
            ],
            parts=[
                PIIPartStats(
                    part=name,
                    texts=part.texts,
                    records=part.records,
                    rate=rate(part.records),
                    matches=part.matches,
                )
                for name, part in self.parts.items()
            ],
        )
