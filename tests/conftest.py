from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture
def shared_datasets() -> Path:
    if not SHARED.exists():
        pytest.skip("../shared/datasets not present")
    return SHARED


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def mini_starter(folder: Path) -> Path:
    """A few starter-format rows (not the shipped suite), for fast pipeline tests."""
    rows = [
        {
            "id": "m-jp-1",
            "kind": "multiple_choice",
            "country": "Japan",
            "topic": "education",
            "question": "In Japan, in which month does the school year usually begin?",
            "options": ["April", "September", "January", "June"],
            "answer": 0,
            "rationale": "r",
        },
        {
            "id": "m-fr-1",
            "kind": "multiple_choice",
            "country": "France",
            "topic": "holidays",
            "question": "On which date is France's national day celebrated?",
            "options": ["1 May", "14 July", "11 November", "25 December"],
            "answer": 1,
            "rationale": "r",
        },
        {
            "id": "m-br-1",
            "kind": "multiple_choice",
            "country": "Brazil",
            "topic": "sport",
            "question": "Which sport is the most popular in Brazil?",
            "options": ["Cricket", "Baseball", "Football (soccer)", "Ice hockey"],
            "answer": 2,
            "rationale": "r",
        },
        {
            "id": "m-in-1",
            "kind": "multiple_choice",
            "country": "India",
            "topic": "holidays",
            "question": "Which Indian festival is known as the festival of lights?",
            "options": ["Holi", "Eid", "Pongal", "Diwali"],
            "answer": 3,
            "rationale": "r",
        },
        {
            "id": "m-de-n1",
            "kind": "label",
            "country": "Germany",
            "topic": "etiquette",
            "question": "Lena arrives at a dinner in Berlin exactly on time and greets the hosts with a handshake. "
            "Is what Lena did socially acceptable?",
            "options": ["Yes", "No", "Neither"],
            "answer": 0,
            "rationale": "r",
        },
    ]
    return write_jsonl(folder / "starter.jsonl", rows)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="long fault-injection loops (make soak)")
