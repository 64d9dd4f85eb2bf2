r"""Personal data and secrets in text: the detectors the ``pii`` curation step and the
quality report share (one definition, so "contains an email" means the same in both).

Types: ``email``, ``phone``, ``ip_address``, ``credit_card``, ``iban``, ``secret``.
Detection is by regular expressions plus a check per type, because a pattern alone
over-redacts: a card number must pass the Luhn check and start like a real card
(issuer prefix and length), an IBAN must have its country's length and pass the
ISO 13616 mod-97 check, an IP address must parse and (by default) be public, as in
datatrove's ``PIIFormatter``: ``127.0.0.1`` or ``192.168.0.1`` identify nobody.

What is deliberately *not* detected (the near-misses of these patterns):

- dates (``2024-03-15``, ``15.03.2024``), ISBNs and other dashed numbers: a US phone
  number is exactly 3-3-4 digits with a NANP area code and exchange (first digit 2-9);
  an international one starts with ``+`` and has 8 to 15 digits (E.164).
- runs of digits with no separators (``7808007092``): order numbers, ids and
  timestamps look the same; a phone number is only taken bare after a ``+``.
- version and section numbers: a dotted quad right after ``version``, ``v``,
  ``release``, ``build``, ``rev``, ``firmware``, ``section``, ``§`` and the like
  (``version 1.2.3.4``, ``§15.12.2.7``) is not an IP, nor is one whose four parts are
  all single digits (``git 1.7.7.3``): hosts rarely look like that, and those that do
  (``8.8.8.8``, ``1.1.1.1``) are public resolvers that identify nobody. A public IPv6
  address must be global unicast (``2000::/3``), so ``a[1::-1]`` is not one;
  and a network in CIDR notation (``8.8.8.0/24``) names an organisation's range, not
  a host.
- 13-19 digit numbers failing Luhn or with no card issuer prefix.
- ``api_key = YOUR_API_KEY`` and other placeholders: a generic ``key = value``
  secret needs a value of 8+ characters with both letters and digits.

Speed: each detector first runs a *gate*, a short pattern that every match must
contain (``\d{3}[\s.-]\d{4}`` for a US phone, the union of the token prefixes for
secrets...). A gate starts with a character class or a literal, which ``re`` scans for
quickly, while the full patterns start with a look-behind and are tried at every
position; most texts fail the gates, so the full patterns run on few. The findings are
the same with or without gates (checked on every text of ``data/samples``).
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

PII_TYPES = ("email", "phone", "ip_address", "credit_card", "iban", "secret")
"""Every type, in the order counters, attribute columns and reasons name them."""

PRIORITY = ("secret", "email", "credit_card", "iban", "ip_address", "phone")
"""Which type wins where two matches overlap: a key block or a token may contain
anything, an email address may contain digits, a card number may look like a phone."""


@dataclass(frozen=True, slots=True)
class Finding:
    type: str
    start: int
    end: int


# -- email ------------------------------------------------------------------------------

EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)


def _emails(text: str) -> Iterator[tuple[int, int]]:
    if "@" not in text:
        return
    for m in EMAIL.finditer(text):
        yield m.span()


# -- phone ------------------------------------------------------------------------------

US_PHONE = re.compile(
    r"(?<![\w+/.-])(?:\+?1[\s.-]?)?"
    r"(?:\(\s?[2-9]\d{2}\s?\)\s?|[2-9]\d{2}[\s.-])[2-9]\d{2}[\s.-]\d{4}"
    r"(?![\w/]|[.-]\d)"
)
US_PHONE_GATE = re.compile(r"\d{3}[\s.-]\d{4}")
INTL_PHONE = re.compile(r"(?<![\w+])\+[1-9](?:[\s().-]{0,2}\d){6,16}(?![\w]|[.-]\d)")


def _phones(text: str) -> Iterator[tuple[int, int]]:
    if US_PHONE_GATE.search(text):
        for m in US_PHONE.finditer(text):
            yield m.span()
    if "+" in text:
        for m in INTL_PHONE.finditer(text):
            digits = sum(ch.isdigit() for ch in m.group())
            if 8 <= digits <= 15:
                yield m.span()


# -- IP addresses -----------------------------------------------------------------------

OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"(?<![\w.])(?:{OCTET}\.){{3}}{OCTET}(?![\w]|\.\d|/\d)")
IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{2,39}"
    r"(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?![\w:]|/\d)"
)
IPV4_GATE = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
IPV6_GATE = re.compile(r":[0-9A-Fa-f]*:")
VERSION_CUE = re.compile(
    r"(?i)(?:\b(?:version|ver|v|release|rel|build|rev|revision|firmware|fw|section|sec|"
    r"chapter|ch|clause|appendix|figure|fig|table)|§)[\s.:#-]{0,3}$"
)
GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def _ips(public_only: bool) -> Callable[[str], Iterator[tuple[int, int]]]:
    def find(text: str) -> Iterator[tuple[int, int]]:
        if "." in text and IPV4_GATE.search(text):
            for m in IPV4.finditer(text):
                if len(m.group()) == 7 or VERSION_CUE.search(
                    text, max(0, m.start() - 16), m.start()
                ):
                    continue  # 1.7.7.3 (all one-digit parts) or "version 1.2.3.4": a version
                if not public_only or ipaddress.IPv4Address(m.group()).is_global:
                    yield m.span()
        if text.count(":") >= 2 and IPV6_GATE.search(text):
            for m in IPV6.finditer(text):
                try:
                    address = ipaddress.IPv6Address(m.group())
                except ValueError:
                    continue
                if not public_only or (address.is_global and address in GLOBAL_UNICAST):
                    yield m.span()

    return find


# -- credit cards -----------------------------------------------------------------------

CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,22}(?![\w])")
CARD_GATE = re.compile(r"\d(?:[ -]?\d){12}")
CARD_SEPARATOR = re.compile(r"[ -]")


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_issuer_ok(digits: str) -> bool:
    """The number starts like a card of a real network and has that network's length
    (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro): a Luhn check
    alone passes one random number in ten."""
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16  # Mastercard
    if two in (34, 37):
        return n == 15  # American Express
    if digits.startswith(("6011", "65")) or 644 <= int(digits[:3]) <= 649:
        return 16 <= n <= 19  # Discover
    if two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19  # Diners Club
    if 3528 <= four <= 3589:
        return 16 <= n <= 19  # JCB
    if two == 62:
        return 16 <= n <= 19  # UnionPay
    if two in (50, 56, 57, 58, 63, 67):
        return 12 <= n <= 19  # Maestro
    return False


def _cards(text: str) -> Iterator[tuple[int, int]]:
    if not CARD_GATE.search(text):
        return
    for m in CARD.finditer(text):
        # the run may hold more than the card ("qty 2 4111 1111 1111 1111 exp 12"):
        # try runs of whole groups, longest first
        base = m.start()
        groups = [(g.start() + base, g.end() + base) for g in re.finditer(r"\d+", m.group())]
        best = _best_card(text, groups)
        if best is not None:
            yield best


def _card_groups_ok(lengths: list[int]) -> bool:
    """Printed cards group digits 4-4-4-4, 4-6-5, 4-6-4 or 4-4-4-4-3; a list of small
    numbers ("4 12 7 9 …") is not a card even when the digits pass Luhn."""
    return all(4 <= n <= 6 for n in lengths[:-1]) and 3 <= lengths[-1] <= 6


def _best_card(text: str, groups: list[tuple[int, int]]) -> tuple[int, int] | None:
    n = len(groups)
    for size in range(n, 0, -1):
        for first in range(0, n - size + 1):
            chosen = groups[first : first + size]
            if size > 1 and not _card_groups_ok([e - s for s, e in chosen]):
                continue
            start, end = chosen[0][0], chosen[-1][1]
            digits = CARD_SEPARATOR.sub("", text[start:end])
            if 13 <= len(digits) <= 19 and card_issuer_ok(digits) and luhn_ok(digits):
                return start, end
    return None


# -- IBAN -------------------------------------------------------------------------------

IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
    "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}  # fmt: skip
"""Length of each country's IBAN (the SWIFT IBAN registry)."""

IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![a-z0-9])")

IBAN_GATE = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11}")


def iban_ok(iban: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers
    (A=10 … Z=35); the number mod 97 must be 1."""
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    if not IBAN_GATE.search(text):
        return
    for m in IBAN.finditer(text):
        length = IBAN_LENGTHS.get(m.group()[:2])
        if length is None:
            continue
        positions = [m.start() + i for i, ch in enumerate(m.group()) if ch != " "]
        if len(positions) < length:
            continue
        end = positions[length - 1] + 1
        if end < m.end() and text[end] != " ":
            continue  # the run goes on without a break: not this IBAN
        compact = text[m.start() : end].replace(" ", "")
        if iban_ok(compact):
            yield m.start(), end


# -- secrets ----------------------------------------------------------------------------

PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
    re.DOTALL,
)
PRIVATE_KEY_HEAD = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:\r?\n(?:[A-Za-z0-9+/]{20,}={0,2}|[A-Za-z0-9+/]*={1,2})(?=\r?\n|\Z))*"
)  # a block cut before its END line: the BEGIN line and the base64 lines after it
TOKENS: list[tuple[tuple[str, ...], re.Pattern[str]]] = [
    (  # AWS access key ids
        (
            "AKIA",
            "ASIA",
            "ABIA",
            "ACCA",
            "AGPA",
            "AIDA",
            "AIPA",
            "ANPA",
            "ANVA",
            "APKA",
            "AROA",
            "ASCA",
        ),
        re.compile(
            r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)"
            r"[A-Z0-9]{16}(?![A-Za-z0-9])"
        ),
    ),
    (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,251}\b"),
    ),  # GitHub
    (("github_pat_",), re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,247}\b")),  # fine-grained
    (("xox", "xapp-"), re.compile(r"\b(?:xox[abposrce]|xapp)-[A-Za-z0-9-]{10,}")),  # Slack
    (("hooks.slack.com",), re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}")),
    (("k_live_", "k_test_"), re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b")),  # Stripe
    (("AIza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![\w-])")),  # Google API keys
]
"""Token formats, each with literals one of which a match must contain: a substring
test is far cheaper than running every pattern over every text."""
TOKEN_GATE = re.compile("|".join(re.escape(lit) for lits, _ in TOKENS for lit in lits))
SK_KEY = re.compile(r"(?<![\w-])sk-[A-Za-z0-9_-]{20,}(?![\w-])")  # OpenAI, Anthropic, …
BEARER = re.compile(r"\b[Bb]earer\s+(?P<value>[A-Za-z0-9._~+/-]{20,}=*)")
ASSIGNMENT_WORDS = ("key", "secret", "passw", "pwd", "token")
ASSIGNMENT = re.compile(  # only the value is redacted, so the name may start anywhere
    r"(?i)(?:api[_-]?key|apikey|secret|passw(?:or)?d|pwd|access[_-]?token|auth[_-]?token|token)"
    r"[\w.-]{0,20}[\"']?\s*(?::=|=>|[:=])\s*[\"']?(?P<value>[^\s\"'`,;|(){}\[\]<>]{8,})"
)
PLACEHOLDER = re.compile(r"(?i)your|example|xxxx|changeme|placeholder|dummy|redacted|\*{3}|\$\{")


def _secret_value_ok(value: str) -> bool:
    """A real secret mixes letters and digits; names and placeholders do not."""
    return (
        any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
        and not PLACEHOLDER.search(value)
    )


def _secrets(text: str) -> Iterator[tuple[int, int]]:
    if "PRIVATE KEY" in text:
        for m in PRIVATE_KEY_BLOCK.finditer(text):
            yield m.span()
        for m in PRIVATE_KEY_HEAD.finditer(text):
            yield m.span()
    if TOKEN_GATE.search(text):
        for literals, pattern in TOKENS:
            if any(literal in text for literal in literals):
                for m in pattern.finditer(text):
                    yield m.span()
    if "sk-" in text:
        for m in SK_KEY.finditer(text):
            body = m.group()[3:]
            if any(c.isdigit() for c in body) and any(c.isalpha() for c in body):
                yield m.span()
    lowered = text.lower()
    patterns = [BEARER] if "bearer" in lowered else []
    if any(word in lowered for word in ASSIGNMENT_WORDS):
        patterns.append(ASSIGNMENT)
    for pattern in patterns:
        for m in pattern.finditer(text):
            value = m.group("value").rstrip(".")  # the end of a sentence
            if len(value) >= 8 and _secret_value_ok(value):
                yield m.start("value"), m.start("value") + len(value)


# -- finding and redacting ----------------------------------------------------------------


Detector = Callable[[str], Iterator[tuple[int, int]]]


def detectors(public_ips_only: bool = True) -> dict[str, Detector]:
    return {
        "secret": _secrets,
        "email": _emails,
        "credit_card": _cards,
        "iban": _ibans,
        "ip_address": _ips(public_ips_only),
        "phone": _phones,
    }


def find_pii(
    text: str,
    types: tuple[str, ...] | list[str] = PII_TYPES,
    public_ips_only: bool = True,
    _detectors: dict[str, Detector] | None = None,
) -> list[Finding]:
    """Non-overlapping findings, in text order. Where matches of two types overlap,
    the type earlier in ``PRIORITY`` wins (see there)."""
    found = _detectors or detectors(public_ips_only)
    starts: list[int] = []
    ends: list[int] = []
    kept: list[Finding] = []
    for kind in PRIORITY:
        if kind not in types:
            continue
        for start, end in found[kind](text):
            if start >= end:
                continue
            i = bisect.bisect_right(starts, start)
            if i > 0 and ends[i - 1] > start:
                continue  # overlaps the span before
            if i < len(starts) and starts[i] < end:
                continue  # overlaps the span after
            starts.insert(i, start)
            ends.insert(i, end)
            kept.insert(i, Finding(kind, start, end))
    return kept
