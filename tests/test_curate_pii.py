"""The `pii` step: what it redacts in real text (C4 pages, tool-use chats), the
near-misses it must leave alone (dates, versions, ISBNs, numbers failing Luhn), and
its three modes through the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gristmill.curate.pii import DEFAULT_REPLACEMENTS, PII, find_pii, iban_ok, luhn_ok, redact
from gristmill.io.ingest import import_path
from gristmill.pipeline import RunOptions, parse_pipeline, run_pipeline
from gristmill.store import Version, Workspace


def found(text: str, public_ips_only: bool = True) -> list[tuple[str, str]]:
    return [
        (f.type, text[f.start : f.end]) for f in find_pii(text, public_ips_only=public_ips_only)
    ]


def redacted(text: str) -> str:
    return redact(text, find_pii(text), DEFAULT_REPLACEMENTS)


# -- detection ------------------------------------------------------------------------------

REAL = [
    (  # C4 (llamafactory_demos/c4_demo.jsonl)
        "If you want expert advice and quality service in Edmonton, give McKinley Heating "
        "Service Experts a call at 780-800-7092 to get your questions answered.",
        [("phone", "780-800-7092")],
    ),
    (
        "For more information visit the website or contact Wendy Rall directly at "
        "woof@rescuedtails.com or 951-704-3374.",
        [("email", "woof@rescuedtails.com"), ("phone", "951-704-3374")],
    ),
    (  # HH-RLHF and Dolma phrasings
        "Here is the number: +1 917-444-6321. Tel: +32 (0)2 790 75 75, or (202) 225-2815.",
        [
            ("phone", "+1 917-444-6321"),
            ("phone", "+32 (0)2 790 75 75"),
            ("phone", "(202) 225-2815"),
        ],
    ),
    (
        "The login attempts came from 84.17.45.113 and from 2606:4700:4700::1111 last night.",
        [("ip_address", "84.17.45.113"), ("ip_address", "2606:4700:4700::1111")],
    ),
    (
        "I paid with my Visa 4111 1111 1111 1111 and the refund went to an Amex, "
        "3782 822463 10005.",
        [("credit_card", "4111 1111 1111 1111"), ("credit_card", "3782 822463 10005")],
    ),
    (
        "Please transfer the deposit to IBAN DE89 3704 0044 0532 0130 00 (BIC COBADEFFXXX) "
        "or to GB82WEST12345698765432 before Friday.",
        [("iban", "DE89 3704 0044 0532 0130 00"), ("iban", "GB82WEST12345698765432")],
    ),
    (
        "export AWS_ACCESS_KEY_ID=AKIA2OGYBAH6STMMNXNN\n"
        "cert_id: ASCA2OGYBAH6STMMNXNQ\n"
        "GITHUB_TOKEN=ghp_R8sXq2mZ7kLw4vB9nT1yH6cJ3dF0gP5aE8uQ\n"
        'client = OpenAI(api_key="sk-proj-4fT9xLq2Wm8ZbN3vR7kYp1Hs6DgJc0Ae")\n'
        "slack: xoxb-2648392011-5840293847561-Xq9LmZ2pR7sT4vW8yB1nC6dF\n"
        "db_password = 'Tr0ub4dor&3horse'\n",
        [
            ("secret", "AKIA2OGYBAH6STMMNXNN"),
            ("secret", "ASCA2OGYBAH6STMMNXNQ"),
            ("secret", "ghp_R8sXq2mZ7kLw4vB9nT1yH6cJ3dF0gP5aE8uQ"),
            ("secret", "sk-proj-4fT9xLq2Wm8ZbN3vR7kYp1Hs6DgJc0Ae"),
            ("secret", "xoxb-2648392011-5840293847561-Xq9LmZ2pR7sT4vW8yB1nC6dF"),
            ("secret", "Tr0ub4dor&3horse"),
        ],
    ),
    (  # alpaca_en_demo.json
        "Here is a randomly generated 8-character password: rT8$jLpZ.",
        [("secret", "rT8$jLpZ")],
    ),
]


@pytest.mark.parametrize(("text", "expected"), REAL)
def test_finds_pii_in_real_sentences(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


def test_private_key_blocks_whole_or_cut() -> None:
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        "QyNTUxOQAAACDvY3Zk5n7Q9Jx0yJ8lXwB2sQ4pV1mR6tK3hA7cL9eNfgAAAJgS1xkVEtcZ\n"
        "-----END OPENSSH PRIVATE KEY-----"
    )
    assert redacted(f"my key:\n{key}\nthanks") == "my key:\n<SECRET>\nthanks"
    cut = key.rsplit("\n", 1)[0]  # pasted without its END line
    assert redacted(f"{cut}\nwhat is wrong?") == "<SECRET>\nwhat is wrong?"


NEAR_MISSES = [
    "The meeting on 2024-03-15 at 10:30:45 was moved to 15.03.2024 and then 03/22/2024.",
    "Upgrade to version 1.2.3.4 of the driver; git 1.7.7.3 works; see §15.12.2.7.",
    "ISBN 978-0-306-40615-7 (ISBN-10 0-306-40615-2) was reprinted in 2019.",
    "Order number 4111 1111 1111 1112 fails the Luhn check, so does 1234567890123456.",
    "Scores: 4 12 7 9 3 15 8 2 6 1 1 0 4 4 across the fourteen rounds.",
    "The tracking id 7808007092 and the timestamp 20231015123045 are not phones.",
    "Local traffic goes to 192.168.1.1 and 127.0.0.1, Google's range is 8.8.8.0/24.",
    "In Python a[1::-1] reverses the first two items; std::vector is C++.",
    "A MAC address 00:1A:2B:3C:4D:5E and the test IPv6 2001:db8::1 are not personal.",
    "The account DE89 3704 0044 0532 0130 01 has a wrong check digit.",
    "Set api_key = YOUR_API_KEY and password: hunter2 with max_tokens=2048 in sk-learn.",
    "Mention someone like @alice or write to support at the help desk.",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_are_left_alone(text: str) -> None:
    assert found(text) == []


def test_private_ips_only_when_asked() -> None:
    text = "Local traffic goes to 192.168.1.1."
    assert found(text, public_ips_only=False) == [("ip_address", "192.168.1.1")]


def test_checks() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765433")


def test_overlaps_go_to_the_stronger_type() -> None:
    # the digits of a key and of an email address are not phones or cards
    text = "token=ghp_4111111111111111aaaaaaaaaaaaaaaaaaaa and 780-800-7092@example.com"
    assert [t for t, _ in found(text)] == ["secret", "email"]


def test_bad_parameters() -> None:
    with pytest.raises(TypeError, match="types must be"):
        PII(types=["emails"])
    with pytest.raises(TypeError, match="mode must be"):
        PII(mode="mask")
    with pytest.raises(TypeError, match="replacements for unknown types"):
        PII(replacements={"ssn": "<SSN>"})


# -- the step in a pipeline -------------------------------------------------------------------


@pytest.fixture
def web(workspace: Workspace, samples: Path) -> Version:
    report = import_path(workspace, samples / "llamafactory_demos" / "c4_demo.jsonl", "web")
    assert report.version is not None
    return report.version


def texts(version: Version) -> dict[str, str]:
    return {r["id"]: r["text"] for r in version.iter_rows(columns=["id", "text"])}


def test_redact_documents(workspace: Workspace, web: Version) -> None:
    spec = parse_pipeline([{"pii": {"replacements": {"email": "[EMAIL]"}}}])
    result = run_pipeline(workspace, spec, "web", "web-pii", RunOptions(workers=1))
    before, after = texts(web), texts(result.output)
    assert result.output.row_count == 300 and result.excluded is None  # nothing dropped
    changed = {i for i in before if before[i] != after[i]}
    attr = {r["id"]: r for r in result.output.read_attribute("pii").to_pylist()}
    assert changed == set(attr) and len(changed) == 10
    mckinley = next(i for i, t in before.items() if "McKinley Heating" in t)
    assert "a call at <PHONE> to get" in after[mckinley]
    rescue = next(i for i, t in before.items() if "woof@rescuedtails.com" in t)
    assert "directly at [EMAIL] or <PHONE>." in after[rescue]
    assert attr[rescue]["email"] == 1 and attr[rescue]["phone"] == 1
    (stats,) = result.stats
    assert stats.counters["email redacted"] == sum(r["email"] for r in attr.values()) == 7
    assert stats.counters["phone redacted"] == sum(r["phone"] for r in attr.values())
    assert stats.counters["records with pii"] == 10


def test_tag_and_drop_modes(workspace: Workspace, web: Version) -> None:
    tag = run_pipeline(
        workspace, parse_pipeline([{"pii": {"mode": "tag"}}]), "web", "t", RunOptions(workers=1)
    )
    assert texts(tag.output) == texts(web)  # text untouched
    assert tag.stats[0].counters["email found"] == 7
    assert tag.output.read_attribute("pii").num_rows == 10

    drop = run_pipeline(
        workspace,
        parse_pipeline([{"pii": {"mode": "drop", "types": ["email"]}}]),
        "web",
        "d",
        RunOptions(workers=1),
    )
    assert drop.output.row_count == 300 - 7
    assert drop.stats[0].dropped == {"contains pii: email": 7}
    assert drop.stats[0].counters == {"email found": 7, "records with pii": 7}


def test_redact_every_message_of_conversations(workspace: Workspace, samples: Path) -> None:
    path = samples / "llamafactory_demos" / "reason_tool_use_demo_50.jsonl"
    source = import_path(workspace, path, "tools").version
    assert source is not None
    result = run_pipeline(
        workspace, parse_pipeline(["pii"]), "tools", "tools-pii", RunOptions(workers=1)
    )
    before = {r["id"]: r for r in source.iter_rows()}
    after = {r["id"]: r for r in result.output.iter_rows()}
    attr = result.output.read_attribute("pii").to_pylist()
    emails = 0
    for row in attr:
        old, new = before[row["id"]], after[row["id"]]
        assert len(old["messages"]) == len(new["messages"])
        for m_old, m_new in zip(old["messages"], new["messages"], strict=True):
            assert m_new["role"] == m_old["role"]
            assert "@example.com" not in m_new["content"]
        emails += row["email"]
        parts = [new["system"] or ""]
        for m in new["messages"]:
            parts += [m["content"], m["reasoning"] or ""]
            parts += [call["arguments"] for call in m["tool_calls"] or []]
        joined = "\n".join(parts)
        assert joined.count("<EMAIL>") == row["email"]
    assert emails == result.stats[0].counters["email redacted"] > 0
    untouched = set(before) - {r["id"] for r in attr}
    assert all(before[i] == after[i] for i in untouched)


def test_tool_call_arguments_stay_json(workspace: Workspace, samples: Path) -> None:
    """Glaive tool calls carry emails and passwords in their JSON arguments."""
    path = samples / "llamafactory_demos" / "glaive_toolcall_en_demo.json"
    assert import_path(workspace, path, "glaive").version is not None
    result = run_pipeline(workspace, parse_pipeline(["pii"]), "glaive", "g", RunOptions(workers=1))
    calls = [
        json.loads(call["arguments"])
        for row in result.output.iter_rows()
        for m in row["messages"]
        for call in m["tool_calls"] or []
    ]
    assert {"username": "JohnDoe", "password": "<SECRET>", "email": "<EMAIL>"} in calls
    assert not any("@" in str(args) for args in calls)
    with pytest.raises(TypeError, match="replacement tokens may not hold"):
        PII(replacements={"email": '"redacted"'})
