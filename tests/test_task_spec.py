"""Custom tasks without Python (culturelens.tasks.spec): a YAML or TOML spec over a CSV, JSON Lines,
JSON or parquet file becomes a real Task that runs with every feature.

The fixture ``tests/fixtures/spec/foods.csv`` (12 original questions, six countries; two rows have
three options, so their fourth option cell is empty) is declared by ``foods.yaml`` and, identically,
``foods.toml``. Expected items are computed here from the CSV with the ``csv`` module, never copied.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import culturelens as cl
from culturelens.cli import app
from culturelens.countries import normalize_country
from culturelens.schema import Item, ItemKind, Mode, Response, Variant
from culturelens.tasks.base import get_task, task_names
from culturelens.tasks.spec import SpecError, load_spec

FIX = Path(__file__).parent / "fixtures" / "spec"
SPEC = FIX / "foods.yaml"
CSV = FIX / "foods.csv"
runner = CliRunner()


def _csv_rows() -> list[dict[str, str]]:
    with CSV.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _expected(rows: list[dict[str, str]]) -> list[tuple[Any, ...]]:
    """(id, question, options, correct, country, language, topic, difficulty) read straight from the CSV."""
    out = []
    for r in rows:
        options = [r[c] for c in ("opt_a", "opt_b", "opt_c", "opt_d") if r[c]]
        out.append(
            (
                r["qid"],
                r["prompt"],
                options,
                ["ABCD".index(r["gold"])],
                normalize_country(r["country"]).name,
                r["lang"],
                r["topic"],
                r["level"],
            )
        )
    return out


def _facts(items: list[Item]) -> list[tuple[Any, ...]]:
    return [
        (
            i.id,
            i.question,
            i.options,
            i.correct,
            i.country.name if i.country else None,
            i.language,
            i.topic,
            i.subset.get("difficulty"),
        )
        for i in items
    ]


def _base() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))


def _write(folder: Path, spec: dict[str, Any], name: str = "foods.yaml", data: bool = True) -> Path:
    """``spec`` written as YAML into ``folder`` (with a copy of the fixture CSV beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    if data:
        shutil.copy(CSV, folder / "foods.csv")
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _cli_error(args: list[str]) -> str:
    """Run the CLI in-process; it must end with exit 2 and exactly one ``error:`` line, no traceback."""
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    return lines[0][len("error: ") :]


def _run_error(spec_path: Path, tmp_path: Path) -> str:
    return _cli_error(
        [
            "run",
            "--model",
            "fake:first",
            "--task",
            str(spec_path),
            "--quiet",
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--out",
            str(tmp_path / "run"),
        ]
    )


# --- the forms of a spec ------------------------------------------------------------------------------
@pytest.mark.parametrize("spec_file", ["foods.yaml", "foods.toml"])
def test_yaml_and_toml_build_the_items_the_csv_holds(spec_file: str):
    task = get_task(str(FIX / spec_file))
    assert task.name == "foods" and "foods" not in task_names()  # known by name, not listed as installed
    items = task.items()
    assert _facts(items) == _expected(_csv_rows())
    assert all(i.kind is ItemKind.MULTIPLE_CHOICE and i.task == "foods" for i in items)
    three = [i for i in items if len(i.options) == 3]
    assert three and all(r["opt_d"] == "" for r in _csv_rows() if r["qid"] in {i.id for i in three})


def test_yaml_and_toml_declare_the_same_task():
    a, b = load_spec(str(FIX / "foods.yaml")), load_spec(str(FIX / "foods.toml"))
    assert a.spec == b.spec and a.spec_sha256 != b.spec_sha256
    da, db = a.declaration(), b.declaration()
    same = ("name", "description", "headline", "metrics", "mode", "options", "limit_strata")
    assert {k: da[k] for k in same} == {k: db[k] for k in same}
    assert da["default_template"].startswith("spec:foods@")  # the spec's own wording leads
    assert da["headline"]["metric"] == "acc" and da["mode"] == "letter"
    assert "CC0-1.0" in da["source"]["release"]  # licence (either spelling) reaches the declaration


def test_the_template_is_what_the_model_sees(tmp_path: Path):
    task = get_task(str(SPEC))
    item = task.items()[0]
    row = _csv_rows()[0]
    p = task.render(item, Variant(), Mode.LETTER)
    user = p.messages[-1].content
    assert user.startswith(f"A question about everyday life in {row['country']}.\n\n{row['prompt']}\n")
    assert f"A. {row['opt_a']}\nB. {row['opt_b']}" in user and user.endswith("Answer with A, B, C or D.")
    assert p.assistant_prefix == "Answer:" and p.labels == ["A", "B", "C", "D"]
    # cloze: the template without its option and label lines; numbers: the labels follow the variant
    c = task.render(item, Variant(), Mode.CLOZE)
    assert row["opt_a"] not in c.messages[-1].content and c.continuations[0] == row["opt_a"]
    n = task.render(item, Variant(labels="numbers", option_order="reversed"), Mode.LETTER)
    assert (
        f"1. {row['opt_d']}" in n.messages[-1].content
        and "Answer with 1, 2, 3 or 4." in n.messages[-1].content
    )
    g = task.render(item, Variant(), Mode.GENERATE)
    assert g.messages[-1].content.endswith("Reply with only the label of the correct option (A, B, C or D).")
    # a system prompt takes the placeholders too
    with_system = _write(tmp_path, _set(_base(), "prompt.system", "You know {country} and its {topic}."))
    sys_msg = get_task(str(with_system)).render(item, Variant(), Mode.LETTER).messages[0]
    assert (
        sys_msg.role == "system" and sys_msg.content == f"You know {row['country']} and its {row['topic']}."
    )
    # another wording of the sweep (template=plain) is the built-in one, showing the same item
    plain = task.render(item, Variant(template="plain"), Mode.LETTER).messages[-1].content
    assert "everyday life" not in plain and row["prompt"] in plain


def _convert(rows: list[dict[str, str]], fmt: str) -> list[dict[str, str]]:
    out = []
    for r in rows:
        r = dict(r)
        k = "ABCD".index(r["gold"])
        r["gold"] = {
            "index": str(k),
            "index1": str(k + 1),
            "text": r[f"opt_{'abcd'[k]}"],
            "letter": r["gold"],
        }[fmt]
        out.append(r)
    return out


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.mark.parametrize("fmt", ["index", "index1", "letter", "text"])
def test_answer_as_index_letter_or_text(fmt: str, tmp_path: Path):
    spec = _base()
    spec["answer_format"] = fmt
    path = _write(tmp_path, spec)
    _write_csv(tmp_path / "foods.csv", _convert(_csv_rows(), fmt))
    assert _facts(get_task(str(path)).items()) == _expected(_csv_rows())


def test_list_column_in_jsonl_and_csv(tmp_path: Path):
    """Options as one list column: a JSON list in JSON Lines, JSON text in a CSV cell, or a separator."""
    rows = _csv_rows()
    records = []
    for r in rows:
        rec: dict[str, Any] = {k: v for k, v in r.items() if not k.startswith("opt_")}
        rec["choices"] = [r[c] for c in ("opt_a", "opt_b", "opt_c", "opt_d") if r[c]]
        rec["gold"] = "ABCD".index(r["gold"])  # a JSON integer
        records.append(rec)
    (tmp_path / "foods.jsonl").write_text("".join(json.dumps(x) + "\n" for x in records), encoding="utf-8")
    spec = _base()
    spec["data"] = "foods.jsonl"
    spec["columns"]["options"] = "choices"
    spec["answer_format"] = "index"
    assert _facts(
        get_task(str(_write(tmp_path / "a", spec | {"data": "../foods.jsonl"}))).items()
    ) == _expected(rows)
    # the same list as JSON text in a CSV cell, and as text split on a separator
    for sep in (None, " | "):
        flat = [
            {
                **{k: str(v) for k, v in rec.items() if k != "choices"},
                "choices": json.dumps(rec["choices"]) if sep is None else sep.join(rec["choices"]),
            }
            for rec in records
        ]
        folder = tmp_path / f"csv{sep is None}"
        folder.mkdir()
        _write_csv(folder / "foods.csv", flat)
        s = copy.deepcopy(spec)
        s["data"] = "foods.csv"
        if sep is not None:
            s["options_separator"] = "|"
        path = folder / "foods.yaml"
        path.write_text(yaml.safe_dump(s), encoding="utf-8")
        assert _facts(get_task(str(path)).items()) == _expected(rows)


def test_json_array_and_parquet(tmp_path: Path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = _csv_rows()
    (tmp_path / "foods.json").write_text(json.dumps({"data": rows}), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "foods.parquet")
    for name in ("foods.json", "foods.parquet"):
        spec = _base() | {"data": name}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec), encoding="utf-8")
        assert _facts(get_task(str(path)).items()) == _expected(rows)


def test_label_items_with_a_fixed_label_set(tmp_path: Path):
    rows = [
        {"story": "At a dinner in Tokyo, Ken slurps his noodles loudly.", "ok": "yes", "where": "Japan"},
        {
            "story": "In Berlin, Lena arrives twenty minutes late without a word.",
            "ok": "no",
            "where": "Germany",
        },
        {"story": "In Nairobi, Amina greets each elder before sitting down.", "ok": "Yes", "where": "Kenya"},
    ]
    (tmp_path / "norms.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = {
        "name": "norms",
        "data": "norms.jsonl",
        "kind": "label",
        "labels": ["Yes", "No"],
        "answer_format": "text",
        "columns": {"question": "story", "answer": "ok", "country": "where"},
        "prompt": {"template": "{question}\nIs this socially acceptable? Answer {labels}."},
    }
    path = tmp_path / "norms.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    task = get_task(str(path))
    items = task.items()
    assert [i.correct for i in items] == [[0], [1], [0]]  # "yes" / "Yes" read as the label Yes
    assert [i.id for i in items] == ["row-1", "row-2", "row-3"]  # no id column: the line number
    p = task.render(items[0], Variant(), Mode.LETTER)
    assert p.labels == ["Yes", "No"] and p.messages[-1].content.endswith("Answer Yes or No.")
    # letter mode over the label words: the more probable word is the answer
    s = task.score(items[1], p, Response(logprobs=[-3.0, -0.1]))
    assert s.prediction == 1 and s.metrics["acc"] == 1.0


def test_label_fixture_from_jsonl():
    raw = [json.loads(x) for x in (FIX / "norms.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    items = get_task(str(FIX / "norms.yaml")).items()
    assert [(i.id, i.options, i.correct, i.country.name if i.country else None, i.subset) for i in items] == [
        (
            r["sid"],
            ["Yes", "No"],
            [["Yes", "No"].index(r["verdict"])],
            normalize_country(r["where"]).name,
            {"axis": r["axis"]},
        )
        for r in raw
    ]
    assert all(i.kind is ItemKind.LABEL for i in items)


def test_short_answer_fixture_runs_with_its_scorer(tmp_path: Path):
    """A TSV of short answers (a JSON list of accepted texts per cell), soft-matched: a reply that
    names one country's staple is right for that country only."""
    from culturelens.backends.fake import FakeBackend

    with (FIX / "staples.tsv").open(encoding="utf-8", newline="") as fh:
        raw = list(csv.DictReader(fh, delimiter="\t"))
    items = get_task(str(FIX / "staples.toml")).items()
    assert [[a.texts[0] for a in i.answers] for i in items] == [json.loads(r["answers"]) for r in raw]
    assert [i.language for i in items] == [r["language"] for r in raw]
    done = cl.run(
        tasks=[str(FIX / "staples.toml")],
        backend=FakeBackend("hash", generate_text="They mostly eat tortillas."),
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        report=False,
    )
    entry = done.results["tasks"]["staples"]
    assert entry["modes"] == ["generate"]
    by = {c: v["metrics"]["acc"]["mean"] for c, v in entry["by"]["country"].items()}
    assert by == {normalize_country(r["country"]).name: float("tortillas" in r["answers"]) for r in raw}
    for s, r in zip(done.log.samples, raw, strict=True):
        assert f"{r['question']}\nAnswer in a few words." in s.prompt  # the spec's template


def _short_task(tmp_path: Path, scorer: str) -> Any:
    rows = [
        {
            "id": "q1",
            "q": "What is the staple grain of Japanese meals?",
            "a": "rice",
            "c": "Japan",
            "l": "en",
        },
        {
            "id": "q2",
            "q": "Which sport do most Indians follow?",
            "a": "cricket|kriket",
            "c": "India",
            "l": "en",
        },
    ]
    _write_csv(tmp_path / "sa.csv", rows)
    spec = {
        "name": f"sa_{scorer}",
        "data": "sa.csv",
        "kind": "short_answer",
        "answer_separator": "|",
        "columns": {"id": "id", "question": "q", "answer": "a", "country": "c", "language": "l"},
        "scorer": scorer,
    }
    path = tmp_path / f"sa_{scorer}.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return get_task(str(path))


@pytest.mark.parametrize(
    ("scorer", "reply", "right"),
    [
        ("exact", "Rice.", True),
        ("exact", "Rice, of course", False),
        ("contains", "Mostly white rice, with miso soup.", True),
        ("contains", "Noodles", False),
        ("soft_match", "They eat lots of rices", True),  # lemma match: "rices" -> "rice"
        ("soft_match", "Soba noodles", False),
    ],
)
def test_short_answer_scorers(scorer: str, reply: str, right: bool, tmp_path: Path):
    task = _short_task(tmp_path, scorer)
    items = task.items()
    assert [[t for a in i.answers for t in a.texts] for i in items] == [["rice"], ["cricket", "kriket"]]
    assert task.default_mode is Mode.GENERATE
    p = task.render(items[0], Variant(), Mode.LETTER)  # short answers are always generated
    assert p.mode is Mode.GENERATE
    s = task.score(items[0], p, Response(text=reply))
    assert s.metrics == {"acc": float(right)} and s.valid


# --- errors in the spec: one line naming the file and the key, exit code 2 -------------------------------
def _set(spec: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    *parents, last = dotted.split(".")
    node = spec
    for p in parents:
        node = node[p]
    if value is _DROP:
        del node[last]
    else:
        node[last] = value
    return spec


_DROP = object()
SPEC_ERRORS: list[tuple[str, Any, str, str]] = [
    # (key to change, new value, key the error names, words the message holds)
    ("colums", {"question": "prompt"}, "colums", "unknown key (did you mean columns?)"),
    ("columns.answr", "gold", "columns.answr", "unknown key (did you mean answer?)"),
    ("prompt.tempalte", "{question}", "prompt.tempalte", "did you mean template?"),
    ("kind", _DROP, "kind", "required key missing"),
    ("kind", "essay", "kind", "'multiple_choice', 'label' or 'short_answer'"),
    (
        "columns.answer",
        "gold2",
        "columns.answer",
        "column 'gold2' not in foods.csv (columns: qid, prompt, opt_a",
    ),
    ("columns.options", ["opt_a", "opt_b", "opt_e"], "columns.options[2]", "column 'opt_e' not in foods.csv"),
    ("columns.options", ["opt_a"], "columns.options", "at least two"),
    ("columns.subsets", {"difficulty": "lvl"}, "columns.subsets.difficulty", "column 'lvl' not in foods.csv"),
    ("columns.country", False, "columns.country", "YAML reads yes/no"),
    ("columns.question", 3, "columns.question", "expected a valid string, got 3"),
    ("answer_format", _DROP, "answer_format", "required for choice items"),
    ("answer_format", "roman", "answer_format", "'index', 'index1', 'letter' or 'text'"),
    ("scorer", "soft_match", "scorer", "for multiple_choice items use letter, cloze, generate"),
    ("metric", "f1", "metric", "the letter scorer gives acc, p_correct"),
    (
        "prompt.template",
        "{questoin}\n{options}",
        "prompt.template",
        "unknown placeholder {questoin} (did you mean {question}?)",
    ),
    ("prompt.template", "{question} {", "prompt.template", "Single '{'"),
    ("prompt", "fancy", "prompt.builtin", "built-in multiple_choice wordings are default, exam, plain"),
    ("prompt.template", "{options}\nAnswer with {labels}.", "prompt.template", "has no {question}"),
    ("prompt.template", "{question} {options}", "prompt.cloze", "cloze mode leaves out the template's lines"),
    ("prompt.system", "You know {countri}.", "prompt.system", "unknown placeholder {countri}"),
    ("columns.metadata", ["max_tokens"], "columns.metadata", "'max_tokens' cannot be a template placeholder"),
    ("data", "missing.csv", "data.path", "file not found"),
    ("data", {"path": "foods.csv", "hf": "x/y"}, "data", "either data.path"),
    ("data", {"hf": "x/y"}, "data.file", "required with data.hf"),
    ("data", "foods.xlsx", "data.path", "set data.format"),
    ("name", "my task", "name", "use letters, digits"),
    ("name", "starter", "name", "'starter' is already a task"),
    ("labels", ["Yes", "No"], "labels", "only for label items"),
    ("prompt.max_tokens", 0, "prompt.max_tokens", "greater than or equal to 1"),
]


@pytest.mark.parametrize(
    ("change", "value", "key", "words"), SPEC_ERRORS, ids=[f"{c[0]}-{i}" for i, c in enumerate(SPEC_ERRORS)]
)
def test_spec_errors_name_file_and_key(change: str, value: Any, key: str, words: str, tmp_path: Path):
    path = _write(tmp_path / "t", _set(_base(), change, value))
    line = _run_error(path, tmp_path)
    assert line.startswith(f"{path}: {key}: "), line
    assert words in line, line
    # the same message from Python, as a SpecError (a ValueError) that knows its file and key
    with pytest.raises(SpecError) as exc:
        get_task(str(path)).items()
    assert str(exc.value) == line and exc.value.key == key
    # and from `culturelens tasks --details`
    assert _cli_error(["tasks", "--details", str(path)]) == line


@pytest.mark.parametrize(
    ("kind", "extra", "key", "words"),
    [
        ("short_answer", {}, "columns.options", "not used by short_answer items"),
        ("label", {"columns.options": _DROP}, "labels", "either labels"),
        (
            "short_answer",
            {
                "columns.options": _DROP,
                "answer_format": _DROP,
                "scorer": _DROP,
                "prompt.template": "{question} {options}",
            },
            "prompt.template",
            "{options}: short_answer items have no options",
        ),
    ],
)
def test_kind_specific_keys(kind: str, extra: dict[str, Any], key: str, words: str, tmp_path: Path):
    spec = _set(_base(), "kind", kind)
    for k, v in extra.items():
        spec = _set(spec, k, v)
    path = _write(tmp_path, spec)
    line = _run_error(path, tmp_path)
    assert line.startswith(f"{path}: {key}: ") and words in line, line


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("bad.yaml", "name: x\nkind: [unclosed\n", "invalid YAML: line 3"),
        (
            "dup.yaml",
            "kind: label\nname: x\nkind: multiple_choice\n",
            "invalid YAML: line 3: key 'kind' given twice",
        ),
        ("list.yaml", "- name: x\n", "expected a mapping of keys, got list"),
        ("empty.yml", "# nothing\n", "the spec is empty"),
        ("bad.toml", 'name = "x"\nkind = \n', "invalid TOML"),
        ("nope.yaml", None, "spec file not found"),
        ("latin1.yaml", b"name: caf\xe9\n", "not UTF-8 text (byte 0xe9, line 1)"),
    ],
)
def test_unreadable_spec_files(name: str, text: str | bytes | None, words: str, tmp_path: Path):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text, encoding="utf-8")
    line = _run_error(path, tmp_path)
    assert line.startswith(f"{path}: ") and words in line, line


def test_two_specs_with_one_name_in_a_run(tmp_path: Path):
    a = _write(tmp_path / "a", _base())
    b = _write(tmp_path / "b", _base())
    line = _cli_error(
        ["run", "--model", "fake:first", "--task", str(a), "--task", str(b), "--quiet"]
        + ["--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "run")]
    )
    assert line == f"two tasks named 'foods' in this run ({a}, {b}): give one spec another name"


# --- errors in the data: the data file, row and field ---------------------------------------------------
def _mutate_csv(tmp_path: Path, row: int, column: str, value: str) -> Path:
    path = _write(tmp_path, _base())
    rows = _csv_rows()
    rows[row][column] = value
    _write_csv(tmp_path / "foods.csv", rows)
    return path


@pytest.mark.parametrize(
    ("row", "column", "value", "words"),
    [
        (2, "gold", "E", "field 'gold': answer 'E' is not a letter of the 3 options"),
        (0, "gold", "", "field 'gold': empty value"),
        (1, "country", "Atlantis", "field 'country'"),
        (3, "prompt", "  ", "field 'prompt': empty value"),
        (4, "opt_b", "", "field 'opt_b': empty option before a non-empty one"),
        (5, "qid", "jp-1", "field 'qid': duplicate id 'jp-1' (rows 2 and 7)"),
    ],
)
def test_data_errors_name_file_row_and_field(row: int, column: str, value: str, words: str, tmp_path: Path):
    spec = _mutate_csv(tmp_path, row, column, value)
    line = _run_error(spec, tmp_path)
    data = tmp_path / "foods.csv"
    assert line.startswith(f"{data}, row {row + 2}, "), line  # the header is row 1
    assert words in line, line
    assert not (tmp_path / "run").exists()  # nothing started half-loaded


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        (['{"q": "Q?", "o": ["a", "b"], "g": 0, "c": "Japan"}', "[1, 2]"], "row 2: expected a JSON object"),
        (
            [
                '{"q": "Q?", "o": ["a", "b"], "g": 0, "c": "Japan"}',
                '{"q": "Q2?", "o": ["a", "b"], "c": "Japan"}',
            ],
            "row 2, field 'g': missing field",
        ),
        (['{"q": "Q?", "o": ["a", "b"], "g": 0, "c": "Japan"', ""], "row 1: invalid JSON"),
        (['{"q": "Q?", "o": "a, b", "g": 0, "c": "Japan"}'], "row 1, field 'o': expected a list"),
        (['{"q": "Q?", "o": ["a", "b"], "g": true, "c": "Japan"}'], "row 1, field 'g': answer True is not"),
    ],
)
def test_jsonl_data_errors(lines: list[str], words: str, tmp_path: Path):
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = {
        "data": "d.jsonl",
        "kind": "multiple_choice",
        "answer_format": "index",
        "columns": {"question": "q", "options": "o", "answer": "g", "country": "c"},
    }
    path = _write(tmp_path, spec, name="d.yaml", data=False)
    line = _run_error(path, tmp_path)
    assert line.startswith(f"{tmp_path / 'd.jsonl'}, ") and words in line, line


def test_not_utf8_data_cell(tmp_path: Path):
    path = _write(tmp_path, _base())
    raw = (tmp_path / "foods.csv").read_bytes().replace(b"Osechi ryori", b"Osechi r\xffori")
    (tmp_path / "foods.csv").write_bytes(raw)
    line = _run_error(path, tmp_path)
    assert line == f"{tmp_path / 'foods.csv'}, row 2, field 'opt_a': not UTF-8 text (byte 0xff)"


# --- end to end -----------------------------------------------------------------------------------------
def test_sweep_report_and_analysis_without_the_spec(tmp_path: Path):
    """CLI run with a sweep, then `culturelens report`; the run keeps the spec, so a fresh process
    analyses and reports it after the spec and its data are deleted."""
    work = tmp_path / "work"
    spec = _write(work, _base())
    run_dir = tmp_path / "run"
    args = ["run", "--model", "fake:hash", "--task", str(spec), "--vary", "option_order=rotate", "--quiet"]
    args += ["--cache", str(tmp_path / "c.sqlite"), "--out", str(run_dir)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    results = json.loads((run_dir / "results.json").read_text())
    entry = results["tasks"]["foods"]
    rows = _csv_rows()
    assert entry["n"] == len(rows) and entry["items"] == len(rows)
    countries = {normalize_country(r["country"]).name for r in rows}
    by = entry["by"]["country"]
    assert set(by) == countries
    for name, c in by.items():
        acc = c["metrics"]["acc"]
        assert acc["n"] == sum(1 for r in rows if normalize_country(r["country"]).name == name)
        lo, hi = acc["ci"]
        assert 0.0 <= lo <= acc["mean"] <= hi <= 1.0 and hi > lo
    assert set(entry["by"]["subset:difficulty"]) == {r["level"] for r in rows}
    assert set(entry["by"]["topic"]) == {r["topic"] for r in rows}
    assert set(entry["by"]["language"]) == {r["lang"] for r in rows}
    assert len(entry["variants"]) == 4  # rotate: the four cyclic orders of the widest item
    assert (run_dir / "robustness.json").exists() and (run_dir / "report.html").exists()
    # the run records the spec: its text, hash and the data file's hash
    header = json.loads((run_dir / "config.json").read_text())
    assert header["config"]["tasks"] == ["foods"]
    assert str(spec) in header["command"]
    rec = header["tasks"]["foods"]["spec"]
    assert rec["text"] == spec.read_text(encoding="utf-8")
    assert rec["sha256"] == hashlib.sha256(spec.read_bytes()).hexdigest()
    assert rec["data"]["sha256"] == hashlib.sha256((work / "foods.csv").read_bytes()).hexdigest()
    first = (run_dir / "robustness.json").read_text()
    shutil.rmtree(work)
    script = (
        "import sys, json, culturelens as cl\n"
        "from culturelens.robustness import analyze_run\n"
        "log = cl.read_run(sys.argv[1])\n"
        "t = log.task('foods')\n"
        "from culturelens.schema import Response, Variant\n"
        "items, variants = log.items('foods'), {v.id: v for v in log.variants}\n"
        "for s in log.iter_samples('foods'):\n"
        "    p = t.render(items[s.item_id], variants[s.variant], s.mode, None)\n"
        "    got = t.score(items[s.item_id], p, Response.model_validate(s.response))\n"
        "    assert got.metrics == s.metrics and p.order == s.order, s.item_id\n"
        "    assert p.messages[-1].content in s.prompt, s.item_id  # the spec's own wording, rebuilt\n"
        "print(json.dumps({'name': t.name, 'items': len(log.items('foods')),\n"
        "  'headline': log.headline_metric('foods'), 'robust': analyze_run(sys.argv[1])}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(run_dir)], capture_output=True, text=True, check=True, timeout=300
    )
    got = json.loads(out.stdout)
    assert got["name"] == "foods" and got["items"] == len(rows) and got["headline"] == "acc"
    assert json.dumps(got["robust"], sort_keys=True) == json.dumps(json.loads(first), sort_keys=True)
    report = tmp_path / "again.html"
    cli = Path(sys.executable).parent / "culturelens"
    done = subprocess.run(
        [str(cli), "report", str(run_dir), "-o", str(report)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert report.stat().st_size > 10_000 and "foods" in report.read_text(encoding="utf-8")


def test_python_api_reuses_a_run_only_with_the_same_spec_and_data(tmp_path: Path):
    spec = _write(tmp_path / "w", _base())
    kw: dict[str, Any] = {"model": "fake:hash", "cache": str(tmp_path / "c.sqlite"), "report": False}
    kw["runs_root"] = str(tmp_path / "runs")
    first = cl.run(tasks=[str(spec)], **kw)
    assert first.run_dir.parent == tmp_path / "runs" and "__foods__" in first.run_dir.name
    assert list(first.results["tasks"]) == ["foods"]
    assert cl.run(tasks=[str(spec)], **kw).timing.get("reused") is True
    # a corrected gold answer in the data: the run is recomputed, not reused
    rows = _csv_rows()
    rows[1]["gold"] = "B"
    _write_csv(tmp_path / "w" / "foods.csv", rows)
    again = cl.run(tasks=[str(spec)], **kw)
    assert not again.timing.get("reused") and again.run_dir == first.run_dir
    assert again.log.items("foods")[rows[1]["qid"]].correct == [1]
    # a changed spec (another headline): recomputed too
    spec.write_text(spec.read_text().replace("metric: acc", "metric: p_correct"), encoding="utf-8")
    third = cl.run(tasks=[str(spec)], **kw)
    assert not third.timing.get("reused") and third.log.headline_metric("foods") == "p_correct"


def test_tasks_details_of_a_spec(tmp_path: Path):
    res = runner.invoke(app, ["tasks", "--details", str(SPEC)])
    assert res.exit_code == 0, res.output
    rows = _csv_rows()
    assert res.output.startswith("foods: Everyday food and table customs")
    assert f"{len(rows)} items" in res.output and "scorer letter" in res.output
    levels = sorted({r["level"] for r in rows})
    shown = ", ".join(f"{lv} ({sum(1 for r in rows if r['level'] == lv)})" for lv in levels)
    assert f"difficulty: {shown}" in res.output
    assert f"here: {CSV.resolve()}" in res.output
    sha = hashlib.sha256(SPEC.read_bytes()).hexdigest()
    assert f"spec: {SPEC.resolve()} (SHA-256 {sha[:12]})" in res.output
    js = runner.invoke(app, ["tasks", "--details", str(SPEC), "--json"])
    decl = json.loads(js.output)
    assert decl["spec"]["sha256"] == hashlib.sha256(SPEC.read_bytes()).hexdigest()


def _readme_blocks() -> dict[str, str]:
    """The fenced blocks of the README's "Custom tasks without Python", by language."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Custom tasks without Python", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    blocks: dict[str, str] = {}
    for chunk in section.split("```")[1::2]:
        lang, _, body = chunk.partition("\n")
        blocks.setdefault(lang.strip(), body)
    return blocks


def test_readme_example_runs(tmp_path: Path):
    """The README's worked example, as written: its CSV and spec, a sweep over it, an option for it."""
    blocks = _readme_blocks()
    spec = yaml.safe_load(blocks["yaml"])
    (tmp_path / spec["data"]).write_text(blocks["csv"], encoding="utf-8")
    path = tmp_path / "greetings.yaml"
    path.write_text(blocks["yaml"], encoding="utf-8")
    rows = list(csv.DictReader(blocks["csv"].splitlines()))
    items = get_task(str(path)).items()
    assert [(i.id, i.correct, len(i.options)) for i in items] == [
        (r["id"], ["ABCD".index(r["gold"])], sum(1 for c in "abcd" if r[c])) for r in rows
    ]
    assert (
        "culturelens run --task greetings.yaml --vary option_order=rotate labels=letters,numbers"
        in (blocks["bash"])
    )
    args = ["run", "--model", "fake:hash", "--task", str(path), "--vary", "option_order=rotate"]
    args += ["labels=letters,numbers", "--opt", f"{path}:limit_seed=3", "--limit", "6", "--quiet"]
    args += ["--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "run")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    header = json.loads((tmp_path / "run" / "config.json").read_text())
    assert header["config"]["task_options"] == {"greetings": {"limit_seed": 3}}
    entry = json.loads((tmp_path / "run" / "results.json").read_text())["tasks"]["greetings"]
    assert entry["n"] == 6 and len(entry["variants"]) == 8  # 4 rotations x 2 label styles
    assert (tmp_path / "run" / "report.html").exists()


def _hf_cache(root: Path, repo: str, filename: str, source: Path) -> None:
    """A Hugging Face hub cache holding one file of a dataset repo (as ``hf_hub_download`` lays it out)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    base = root / "hf" / repo.replace("/", "__") / f"datasets--{repo.replace('/', '--')}"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    target = base / "snapshots" / commit / filename
    target.parent.mkdir(parents=True)
    shutil.copy(source, target)


def test_data_from_a_hugging_face_dataset_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("CULTURELENS_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CULTURELENS_OFFLINE", "1")  # never the network: the cached copy only
    _hf_cache(tmp_path / "cache", "someone/foods", "data/test.csv", CSV)
    spec = _base() | {"data": {"hf": "someone/foods", "file": "data/test.csv"}}
    path = _write(tmp_path / "s", spec, data=False)
    task = get_task(str(path))
    assert _facts(task.items()) == _expected(_csv_rows())
    assert task.declaration()["source"]["url"] == "https://huggingface.co/datasets/someone/foods"
    rec = task.info()["spec"]["data"]
    assert (
        rec["file"].endswith("data/test.csv")
        and rec["sha256"] == hashlib.sha256(CSV.read_bytes()).hexdigest()
    )
    # a file that is not in the cache, offline: one line naming it
    missing = _write(
        tmp_path / "m", _base() | {"data": {"hf": "someone/foods", "file": "data/dev.csv"}}, data=False
    )
    line = _run_error(missing, tmp_path)
    assert line.startswith("hf://datasets/someone/foods/data/dev.csv: could not download"), line


# --- the real embedded model, and real data ---------------------------------------------------------------
@pytest.mark.slow
def test_real_model_on_a_spec(tmp_path: Path):
    pytest.importorskip("llama_cpp")
    res = runner.invoke(
        app,
        ["run", "--model", "default", "--task", str(SPEC), "--limit", "4", "--quiet", "--no-report"]
        + ["--cache", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / "run")],
    )
    assert res.exit_code == 0, res.output
    entry = json.loads((tmp_path / "run" / "results.json").read_text())["tasks"]["foods"]
    assert entry["n"] == 4 and entry["modes"] == ["letter"]
    assert 0.0 <= entry["metrics"]["acc"]["mean"] <= 1.0
    samples = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 4
    for s in samples:
        assert "A question about everyday life in" in s["prompt"]
        probs = s["probs"]
        assert len(probs) == len(s["options"]) and abs(sum(probs) - 1.0) < 1e-6
        assert s["metrics"]["acc"] == float(s["prediction"] in s["gold"])


@pytest.mark.slow
def test_spec_over_real_culturalbench_matches_the_builtin_task(shared_datasets: Path, tmp_path: Path):
    """A spec over CulturalBench-Easy's CSV gives the items of the hand-written task, and runs."""
    data = shared_datasets / "culturalbench" / "Cul" / "data" / "CulturalBench-Easy.csv"
    if not data.exists():
        pytest.skip("CulturalBench-Easy.csv not in ../shared/datasets")
    spec = {
        "name": "cb_easy_spec",
        "description": "CulturalBench-Easy through a spec",
        "license": "CC BY 4.0",
        "data": {"path": os.path.relpath(data, tmp_path)},
        "kind": "multiple_choice",
        "answer_format": "letter",
        "columns": {
            "id": "question_idx",
            "question": "prompt_question",
            "options": [f"prompt_option_{c}" for c in "abcd"],
            "answer": "answer",
            "country": "country",
        },
    }
    path = tmp_path / "cb.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    mine = get_task(str(path)).items()
    theirs = get_task("culturalbench_easy", data_dir=str(data)).items()
    assert len(mine) == len(theirs) > 1000
    assert [(i.question, i.options, i.correct, i.country) for i in mine] == [
        (i.question, i.options, i.correct, i.country) for i in theirs
    ]
    done = cl.run(
        model="fake:hash",
        tasks=[str(path)],
        limit=30,
        variants=[Variant(), Variant(option_order="reversed")],
        out=str(tmp_path / "run"),
        cache=str(tmp_path / "c.sqlite"),
        report=False,
    )
    entry = done.results["tasks"]["cb_easy_spec"]
    assert entry["n"] == 30 and len(entry["by"]["country"]) >= 10  # --limit balances countries
    assert done.robustness is not None
