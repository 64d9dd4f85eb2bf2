"""The PII rate of the quality report: exact counts on real samples (C4 pages, LIMA
answers, tau-bench traces, a DPO prompt), every type planted in every part of a
conversation, masking (no PII value ever reaches the report), the redacted version
reporting zero, and the terminal, HTML and --compare outputs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_quality_data import (
    NOW,
    c4_rows,
    clean_conversations,
    dpo_rows,
    gsm8k_rows,
    lima_rows,
    tau_rows,
    write,
)

from gristmill.cli import cli
from gristmill.pii_detect import PII_TYPES
from gristmill.pipeline import RunOptions, parse_pipeline, run_pipeline
from gristmill.quality import (
    QualityReport,
    ReportOptions,
    build_report,
    compare_reports,
    load_or_build_report,
    render_html,
    save_report,
)
from gristmill.quality.model import PIIStats
from gristmill.quality.pii import mask
from gristmill.records import Kind
from gristmill.store import Workspace

OPTIONS = ReportOptions(now=NOW)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace.init(tmp_path_factory.mktemp("quality-pii") / "ws")


def _pii(report: QualityReport) -> PIIStats:
    assert report.pii is not None
    return report.pii


def _counts(pii: PIIStats) -> dict[str, tuple[int, int]]:
    """type → (records, matches), only the types found."""
    return {t.type: (t.records, t.matches) for t in pii.types if t.records}


def _parts(pii: PIIStats) -> dict[str, tuple[int, dict[str, int]]]:
    """part → (records, matches per type found)."""
    return {p.part: (p.records, {k: v for k, v in p.matches.items() if v}) for p in pii.parts}


# -- real data, counts checked by reading every match -----------------------------------


def test_c4_pages(ws: Workspace) -> None:
    # c4-0 "a call at 780-800-7092", c4-64 "vdwarren@education.wisc.edu" (its
    # "262-3773" has no area code: not taken), c4-96 "mjgroundworkservices@gmail.com"
    pii = _pii(build_report(write(ws, "c4", Kind.DOCUMENT, c4_rows(100)), OPTIONS))
    assert (pii.records, pii.matches, pii.rate) == (3, 3, 0.03)
    assert _counts(pii) == {"email": (2, 2), "phone": (1, 1)}
    email, phone = pii.type("email"), pii.type("phone")
    assert email is not None and phone is not None
    assert [(e.id, e.part, e.masked) for e in email.examples] == [
        ("c4-64", "text", "v***@e***.edu"),
        ("c4-96", "text", "m***@g***.com"),
    ]
    assert [(e.id, e.masked) for e in phone.examples] == [("c4-0", "***-***-**92")]
    assert _parts(pii) == {"text": (3, {"email": 2, "phone": 1})}
    assert email.rate == 0.02 and [t.type for t in pii.types] == list(PII_TYPES)


def test_lima_answers_by_role(ws: Workspace) -> None:
    # LIMA 670..799: phone numbers in 8 answers (lima-738 has six, one of them a fax,
    # and an email), nothing in any question
    rows = lima_rows(800)[670:]
    pii = _pii(build_report(write(ws, "lima", Kind.CONVERSATION, rows), OPTIONS))
    assert (pii.records, pii.matches) == (8, 16)
    assert _counts(pii) == {"phone": (8, 15), "email": (1, 1)}
    parts = _parts(pii)
    assert parts["assistant"] == (8, {"phone": 15, "email": 1})
    assert parts["user"] == (0, {})
    user = pii.part("user")
    assert user is not None and user.texts == len(rows)  # every question was scanned
    email = pii.type("email")
    assert email is not None
    assert [(e.id, e.part, e.masked) for e in email.examples] == [
        ("lima-738", "assistant", "u***@u***.gov")
    ]
    phone = pii.type("phone")
    assert phone is not None and [e.id for e in phone.examples] == [
        "lima-675",
        "lima-681",
        "lima-695",
    ]


def test_tau_bench_traces_and_examples_are_capped(ws: Workspace) -> None:
    # the user-details tool result of 12 of the first 20 trajectories holds an email
    pii = _pii(build_report(write(ws, "tau", Kind.AGENT_TRACE, tau_rows(20)), OPTIONS))
    assert _counts(pii) == {"email": (12, 12)}
    assert pii.rate == pytest.approx(12 / 20)
    assert _parts(pii) == {"task": (0, {}), "step": (12, {"email": 12})}
    email = pii.type("email")
    assert email is not None
    assert [(e.id, e.masked) for e in email.examples] == [
        ("tau-0", "m***@e***.com"),
        ("tau-2", "o***@e***.com"),
        ("tau-3", "s***@e***.com"),
    ]  # options.examples = 3


def test_dpo_prompt_and_candidate(ws: Workspace) -> None:
    # dpo-30: an email script with two addresses in the prompt, one in the chosen answer
    pii = _pii(build_report(write(ws, "dpo", Kind.PREFERENCE, dpo_rows(60)), OPTIONS))
    assert _counts(pii) == {"email": (1, 3)}
    assert _parts(pii) == {"prompt": (1, {"email": 2}), "candidate": (1, {"email": 1})}
    email = pii.type("email")
    assert email is not None and [(e.id, e.part) for e in email.examples] == [("dpo-30", "prompt")]


def test_eval_items_input_reference_and_choice(ws: Workspace) -> None:
    # GSM8K has none; three planted items put one in each scanned field
    rows = [
        *gsm8k_rows(50),
        {**gsm8k_rows(1)[0], "id": "planted-input", "input": f"Mail {EMAIL} the answer."},
        {**gsm8k_rows(2)[1], "id": "planted-reference", "references": [f"Call {PHONE}"]},
        {
            **gsm8k_rows(3)[2],
            "id": "planted-choice",
            "references": [],
            "choices": ["12", f"from {IP}"],
            "answer_index": 0,
        },
    ]
    pii = _pii(build_report(write(ws, "evals", Kind.EVAL_ITEM, rows), OPTIONS))
    assert _counts(pii) == {"email": (1, 1), "phone": (1, 1), "ip_address": (1, 1)}
    assert _parts(pii) == {
        "input": (1, {"email": 1}),
        "reference": (1, {"phone": 1}),
        "choice": (1, {"ip_address": 1}),
    }


# -- planted: every type, every part of a conversation ------------------------------------

SECRET = "ghp_R8sXq2mZ7kLw4vB9nT1yH6cJ3dF0gP5aE8uQ"
EMAIL = "jane.doe@example.org"
PHONE = "(202) 225-2815"
CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
IP = "84.17.45.113"
VALUES = (SECRET, EMAIL, PHONE, CARD, IBAN, IP, "jane.doe", "2815", "84.17")


def planted_pii() -> list[dict[str, object]]:
    """The clean conversations (no PII) plus three records with every type planted."""
    base = {"origin": "import:planted", "created_at": NOW}
    return [
        *clean_conversations(),
        {
            **base,
            "id": "planted-system",
            "system": f"Deploy with GITHUB_TOKEN={SECRET} and never show it.",
            "messages": [
                {"role": "user", "content": f"Write to {EMAIL} or call {PHONE}, please."},
                {"role": "assistant", "content": f"I will write to {EMAIL} today."},
            ],
        },
        {
            **base,
            "id": "planted-payment",
            "messages": [
                {"role": "user", "content": "How do I pay the invoice?"},
                {"role": "assistant", "content": f"Card {CARD} or transfer to IBAN {IBAN}."},
            ],
        },
        {
            **base,
            "id": "planted-tool",
            "messages": [
                {"role": "user", "content": "Where did the login come from?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"id": "c1", "name": "geoip", "arguments": json.dumps({"ip": IP})}
                    ],
                },
                {"role": "tool", "content": "Berlin", "tool_call_id": "c1"},
                {"role": "assistant", "content": "It came from Berlin."},
            ],
        },
    ]


@pytest.fixture(scope="module")
def planted(ws: Workspace) -> tuple[QualityReport, QualityReport]:
    clean = write(ws, "chat", Kind.CONVERSATION, clean_conversations())
    dirty = write(ws, "chat", Kind.CONVERSATION, planted_pii())
    return build_report(clean, OPTIONS), build_report(dirty, OPTIONS)


def test_planted_pii_is_found_exactly(planted: tuple[QualityReport, QualityReport]) -> None:
    clean, report = planted
    assert _pii(clean).records == 0 and _pii(clean).matches == 0 and _pii(clean).rate == 0
    pii = _pii(report)
    n = len(clean_conversations()) + 3
    assert report.records == n
    assert (pii.records, pii.matches) == (3, 7)
    assert pii.rate == pytest.approx(3 / n)
    assert _counts(pii) == {
        "email": (1, 2),
        "phone": (1, 1),
        "ip_address": (1, 1),
        "credit_card": (1, 1),
        "iban": (1, 1),
        "secret": (1, 1),
    }
    assert _parts(pii) == {
        "system": (1, {"secret": 1}),
        "user": (1, {"email": 1, "phone": 1}),
        "assistant": (3, {"email": 1, "credit_card": 1, "iban": 1, "ip_address": 1}),
        "tool": (0, {}),  # scanned ("Berlin"), nothing found
    }
    examples = {t.type: [(e.id, e.part, e.masked) for e in t.examples] for t in pii.types}
    assert examples == {
        "email": [("planted-system", "user", "j***@e***.org")],
        "phone": [("planted-system", "user", "(***) ***-**15")],
        "ip_address": [("planted-tool", "assistant", "84.*.*.*")],
        "credit_card": [("planted-payment", "assistant", "**** **** **** 1111")],
        "iban": [("planted-payment", "assistant", "DE** **** **** **** **** 00")],
        "secret": [("planted-system", "system", "ghp_***")],
    }


def test_no_pii_value_reaches_the_report(planted: tuple[QualityReport, QualityReport]) -> None:
    clean, report = planted
    stored = report.model_dump_json()
    page = render_html(report, compare_reports(clean, report))
    for value in VALUES:
        assert value not in stored and value not in page
    assert 'alt="pii bar chart" src="data:image/png;base64,' in page
    assert "ghp_***" in page and "PII rate" in page


def test_mask_keeps_shape_only() -> None:
    assert mask("email", "john.smith@mail.example.co.uk") == "j***@m***.uk"
    assert mask("phone", "+1 917-444-6321") == "+* ***-***-**21"
    assert mask("ip_address", "2606:4700:4700::1111") == "2606:***"
    assert mask("credit_card", "378282246310005") == "***********0005"
    assert mask("iban", "GB82WEST12345698765432") == "GB******************32"
    assert mask("secret", "Tr0ub4dor&3") == "Tr***"
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
    assert mask("secret", key) == "-----BEGIN RSA PRIVATE KEY-----***"


def test_compare_shows_the_pii_change(planted: tuple[QualityReport, QualityReport]) -> None:
    comparison = compare_reports(*planted)
    rate = comparison.change("pii", "pii rate")
    assert rate is not None and rate.a == 0 and rate.b == pytest.approx(3 / planted[1].records)
    assert rate.improved is False
    card = comparison.change("pii types", "credit_card rate")
    assert card is not None and (card.a, card.b) == (0, pytest.approx(1 / planted[1].records))
    system = comparison.change("pii parts", "system pii rate")
    assert system is not None and system.a == 0.0 and system.improved is False
    back = compare_reports(planted[1], planted[0]).change("pii", "records with pii")
    assert back is not None and (back.a, back.b, back.improved) == (3, 0, True)


def test_report_without_pii_is_rebuilt(ws: Workspace) -> None:
    """A report.json written before the PII rate existed still loads, compares with
    empty PII values, and is rebuilt when asked for again."""
    version = write(ws, "old", Kind.DOCUMENT, c4_rows(20))
    report = build_report(version, OPTIONS)
    old = report.model_copy(update={"pii": None})
    save_report(version, QualityReport.model_validate_json(old.model_dump_json()))
    rate = compare_reports(old, report).change("pii", "pii rate")
    assert rate is not None and rate.a is None and rate.delta is None
    again, built = load_or_build_report(version, ReportOptions())
    assert built and again.pii is not None and again.pii.records == 1  # c4-0's phone


# -- redaction and the command line -------------------------------------------------------


def run(workspace: Workspace, *args: str) -> str:
    result = CliRunner().invoke(
        cli, ["--workspace", str(workspace.root), *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_redacted_version_reports_zero_and_compare_shows_it(ws: Workspace) -> None:
    write(ws, "mail", Kind.CONVERSATION, planted_pii())
    spec = parse_pipeline(["pii"])
    result = run_pipeline(ws, spec, "mail", "mail-clean", RunOptions(workers=1))
    out = run(ws, "report", "mail@1")
    assert "PII rate" in out and "PII by type" in out
    assert "planted-payment (assistant: **** **** **** 1111)" in out
    assert all(value not in out for value in VALUES)
    after = _pii(build_report(result.output, OPTIONS))
    assert (after.records, after.matches) == (0, 0)
    out = run(ws, "report", "mail", "--compare", "mail@1", "mail-clean@1")
    row = next(line for line in out.splitlines() if "pii rate" in line and "system" not in line)
    assert "1.8%" in row and "0.0%" in row and "-1.8 pp" in row
