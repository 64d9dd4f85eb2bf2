"""A demo to click through: real HH-RLHF pairs to prefer and LIMA answers to rate,
and a demo login (``gristmill serve --demo``)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from gristmill.annotate.projects import create_project
from gristmill.annotate.tables import projects
from gristmill.server.auth import create_user, user_id
from gristmill.store import StoreError, Workspace

DEMO_USER = "demo"
DEMO_PASSWORD = "gristmill-demo"
SAMPLES = Path(__file__).resolve().parents[3] / "data" / "samples"

HH_QUESTIONS = [
    {
        "name": "better",
        "title": "Which response is better?",
        "kind": "preference",
        "strengths": [1, 2, 3],
        "require_reason": False,
        "description": "Prefer the response that is more helpful **and** harmless.",
    },
    {
        "name": "harmful",
        "title": "Is either response harmful?",
        "kind": "label",
        "labels": ["neither", "a", "b", "both"],
    },
]
HH_GUIDELINES = """# Pick the better answer

Each task shows a conversation and two candidate replies, **A** and **B**.

- Choose the reply a careful, helpful and harmless assistant would give.
- Say how strong your preference is: 1 slight, 2 clear, 3 strong.
- Use *tie* only when neither is better.
"""
LIMA_QUESTIONS = [
    {
        "name": "quality",
        "title": "Rate the answer",
        "kind": "rating",
        "target": "record",
        "dimensions": [
            {"name": "helpfulness", "min": 1, "max": 7, "description": "Does it solve the ask?"},
            {"name": "correctness", "min": 1, "max": 7, "description": "Is it factually right?"},
            {"name": "style", "min": 1, "max": 7, "description": "Clear, well organised?"},
        ],
    },
    {
        "name": "comment",
        "title": "Anything to fix?",
        "kind": "text",
        "mode": "write",
        "required": False,
    },
]
LIMA_GUIDELINES = """# Rate LIMA answers

Rate each assistant answer from 1 (poor) to 7 (excellent) on three dimensions.
"""


def _dataset(workspace: Workspace, name: str, sample: str) -> str:
    from gristmill.io.ingest import import_path

    try:
        return workspace.version(name).ref
    except StoreError:
        import_path(workspace, SAMPLES / sample, name)
        return workspace.version(name).ref


def seed_demo(workspace: Workspace | Path | str, db_url: str | None = None) -> tuple[str, str, str]:
    """Create (once) the demo datasets, projects and login; returns the page to open,
    the username and the password."""
    from gristmill.server.app import open_state

    st = open_state(workspace, db_url)
    ws = st.workspace
    hh = _dataset(ws, "demo-hh-rlhf", "hh_rlhf/harmless-base-test.jsonl.gz")
    lima = _dataset(ws, "demo-lima", "lima/lima.json")
    try:
        with st.tx() as conn:
            uid = user_id(conn, DEMO_USER)
            if uid is None:
                uid = create_user(conn, DEMO_USER, "admin", DEMO_PASSWORD)
            demos = [
                ("HH-RLHF preferences", HH_QUESTIONS, hh, HH_GUIDELINES, 2),
                ("LIMA answer ratings", LIMA_QUESTIONS, lima, LIMA_GUIDELINES, 1),
            ]
            pids = []
            for name, questions, ref, guidelines, overlap in demos:
                pid = conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).scalar()
                if pid is None:
                    pid = create_project(
                        conn,
                        ws,
                        name=name,
                        questions=questions,
                        dataset_ref=ref,
                        guidelines=guidelines,
                        settings={"overlap": overlap},
                        created_by=uid,
                        limit=40,
                    )
                pids.append(pid)
    finally:
        st.engine.dispose()
    return f"/projects/{pids[0]}/annotate", DEMO_USER, DEMO_PASSWORD  # the HH-RLHF project
