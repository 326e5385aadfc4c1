"""The ``nbchat`` command, run for real on notebooks written by `nbfactory`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbfactory import make_chat_notebook, make_record, make_system_record
from nbformat.v4 import new_output

from nbchat import cli
from nbchat.cli import find_secrets, main
from nbchat.record import RECORD_MIME, RECORD_MIME_PATTERN, Record

ROOT = Path(__file__).resolve().parents[1]
LEAKED = "sk-proj-" + "A1b2C3d4E5f6G7h8J9k0"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert len(err.splitlines()) == 1, err
    assert err.startswith("nbchat: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


@pytest.fixture
def turns():
    """The records of a two-thread chat, in notebook order."""
    return [
        make_system_record("You are terse.", thread="default"),
        make_record("What is 2+2?", "4", usage=(11, 1)),
        make_record(
            "Review this long function please, every line of it",
            "It is fine but too long " * 10,
            thread="review",
            model="peer-large",
            usage=(120, 400),
            finish_reason="length",
        ),
        make_record("And 3+3?", "6", usage=(20, 2)),
        make_record("No usage here", "Sure.", thread="review", model="peer-large", usage=None),
    ]


@pytest.fixture
def chat(tmp_path, turns):
    """A notebook with the records above and one plain code cell among them.

    Notebook cells: 1 Markdown title, 2 system, 3 answer, 4 plain code, 5..7 answers.
    """
    cells = [("%%chat --system\nYou are terse.", turns[0]), ("%%chat\nWhat is 2+2?", turns[1])]
    cells.append(("x = 1", None))
    cells += [(f"%%chat\n{record.prompt}", record) for record in turns[2:]]
    return make_chat_notebook(tmp_path / "chat.ipynb", cells)


def edit_json(path: Path, edit) -> None:
    """Change a saved notebook's JSON the way a person with a text editor would."""
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def stored_record(data: dict, cell: int) -> dict:
    """The raw record in the first output of notebook cell ``cell`` (1-based)."""
    return data["cells"][cell - 1]["outputs"][0]["data"][RECORD_MIME]


# -- help and usage --------------------------------------------------------------------------------


def test_help_documents_commands_and_exit_codes(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("show", "export", "stats", "verify", "strip"):
        assert command in out
    assert "exit status:" in out
    assert "1  verify found problems" in out
    assert (cli.__doc__ or "").count("Exit status") == 1


@pytest.mark.parametrize("command", ["show", "export", "stats", "verify", "strip"])
def test_every_command_has_help_with_an_example(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert f"example:\n  nbchat {command}" in out


def test_usage_errors_exit_2(capsys):
    assert run(capsys)[0] == 2
    code, _, err = run(capsys, "export", "x.ipynb", "--format", "pdf")
    assert code == 2
    assert "invalid choice" in err


# -- show ------------------------------------------------------------------------------------------


def test_show_lists_turns_in_notebook_order(capsys, chat):
    code, out, _ = run(capsys, "show", chat, "--width", "200")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:6] == ["CELL", "THREAD", "MODEL", "TOKENS", "FINISH", "STORED"]
    assert [row.split()[0] for row in rows] == ["2", "3", "5", "6", "7"]
    assert rows[1].split()[:5] == ["3", "default", "peer-small", "11→1", "stop"]
    assert rows[1].split()[5:7] == ["2024-05-01", "12:34"]
    assert rows[2].split()[:5] == ["5", "review", "peer-large", "120→400", "length"]
    assert rows[4].split()[:5] == ["7", "review", "peer-large", "-", "stop"]
    assert "What is 2+2?" in rows[1]
    # columns line up: every row has its model where the header has MODEL
    column = header.index("MODEL")
    assert {row[column:].split()[0] for row in rows} == {"-", "peer-small", "peer-large"}


def test_show_system_record_is_a_thread_system_prompt(capsys, chat):
    _, out, _ = run(capsys, "show", chat, "--width", "120")
    system = out.splitlines()[1]
    assert system.split()[:5] == ["2", "default", "-", "-", "-"]
    assert "(system) You are terse." in system
    assert system.endswith("You are terse.")  # and no answer


def test_show_truncates_previews_to_the_width(capsys, chat):
    _, out, _ = run(capsys, "show", chat, "--width", "100")
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert any(line.endswith("…") for line in lines)


def test_show_width_has_a_minimum(capsys, chat, monkeypatch):
    monkeypatch.setenv("COLUMNS", "20")
    _, out, _ = run(capsys, "show", chat)
    assert "What is" in out  # previews still get some room


def test_show_thread_filter(capsys, chat):
    _, out, _ = run(capsys, "show", chat, "--thread", "review")
    rows = out.splitlines()[1:]
    assert [row.split()[:2] for row in rows] == [["5", "review"], ["7", "review"]]


def test_show_empty_notebook_says_so(capsys, tmp_path):
    path = make_chat_notebook(tmp_path / "plain.ipynb", [("print('hi')", None)])
    code, out, _ = run(capsys, "show", path)
    assert code == 0
    assert out == f"no nbchat records in {path}\n"
    code, out, _ = run(capsys, "show", path, "--thread", "nope")
    assert out == f"no nbchat records in thread 'nope' in {path}\n"


# -- export ----------------------------------------------------------------------------------------


def test_export_markdown_transcript_per_thread(capsys, chat):
    code, out, _ = run(capsys, "export", chat)
    assert code == 0
    default, review = out.split("## Thread: review")
    assert "## Thread: default" in default
    assert default.index("**System:**\n\nYou are terse.") < default.index("**User:**\n\nWhat is")
    assert "**Assistant (peer-small):**\n\n4\n" in default
    assert "**Assistant (peer-small):**\n\n6\n" in default
    assert "finish reason" not in default  # "stop" is not worth a note
    assert "**Assistant (peer-large):**" in review
    assert review.count("*(finish reason: length)*") == 1


def test_export_jsonl_round_trips(capsys, chat, turns):
    code, out, _ = run(capsys, "export", chat, "--format", "jsonl")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line.pop("cell") for line in lines] == [2, 3, 5, 6, 7]
    assert [Record.from_json(line) for line in lines] == turns


def test_export_thread_to_file(capsys, chat, tmp_path, turns):
    target = tmp_path / "review.jsonl"
    code, out, _ = run(capsys, "export", chat, "--format=jsonl", "--thread=review", "-o", target)
    assert (code, out) == (0, "")
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["prompt"] for line in lines] == [turns[2].prompt, turns[4].prompt]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.ipynb", "review.jsonl"]


def test_export_to_a_missing_directory_is_one_line(capsys, chat, tmp_path):
    code, _, err = run(capsys, "export", chat, "-o", tmp_path / "nope" / "out.md")
    assert code == 2
    assert_one_line_error(err)


# -- stats -----------------------------------------------------------------------------------------


def test_stats_sum_tokens_by_model(capsys, chat, turns):
    code, out, _ = run(capsys, "stats", chat)
    assert code == 0
    answers = [record for record in turns if record.kind == "answer"]
    assert out.splitlines()[0] == f"{chat}: {len(answers)} answers"
    expected: dict[str, list[int]] = {}
    for record in answers:
        row = expected.setdefault(record.model, [0, 0, 0, 0])
        usage = record.usage
        tokens = [usage.get(k, 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")]
        row[:] = [row[0] + 1, *(a + b for a, b in zip(row[1:], tokens, strict=True))]
    rows = {line.split()[0]: line.split()[-4:] for line in out.splitlines()[2:-1]}
    grand = [sum(column) for column in zip(*expected.values(), strict=True)]
    assert rows.pop("all") == [str(n) for n in grand]  # the "all models" row
    assert rows == {model: [str(n) for n in row] for model, row in expected.items()}
    assert out.splitlines()[-1] == "  (1 answer without token usage)"


def test_stats_grand_total_over_notebooks(capsys, tmp_path):
    first = make_chat_notebook(tmp_path / "a.ipynb", [("A", make_record("A", "a", usage=(3, 4)))])
    records = [make_record("B", "b", usage=(10, 20)), make_record("C", "c", usage=(1, 2))]
    second = make_chat_notebook(tmp_path / "b.ipynb", [(r.prompt, r) for r in records])
    code, out, _ = run(capsys, "stats", first, second)
    assert code == 0
    grand = out.split("all 2 notebooks: 3 answers\n")[1]
    assert grand.splitlines()[1].split() == ["peer-small", "3", "14", "26", "40"]


def test_stats_counts_an_answer_replayed_into_two_cells_once(capsys, tmp_path):
    answer = make_record("A", "a", usage=(3, 4))
    path = make_chat_notebook(tmp_path / "dup.ipynb", [("A", answer), ("A again", answer)])
    code, out, _ = run(capsys, "stats", path)
    assert code == 0
    assert out.splitlines()[0] == f"{path}: 1 answer"
    assert out.splitlines()[2].split() == ["peer-small", "1", "3", "4", "7"]


def test_stats_skips_an_unreadable_notebook(capsys, chat, tmp_path):
    code, out, err = run(capsys, "stats", chat, tmp_path / "missing.ipynb")
    assert code == 2
    assert f"{chat}: 4 answers" in out
    assert_one_line_error(err, "missing.ipynb")


# -- verify ----------------------------------------------------------------------------------------


def test_verify_ok(capsys, chat):
    code, out, _ = run(capsys, "verify", chat)
    assert (code, out) == (0, f"ok: 5 records in {chat}\n")


def test_verify_tampered_key(capsys, chat):
    def tamper(data):
        record = stored_record(data, 3)
        record["prompt"] = record["request"]["messages"][0]["content"] = "What is 2+3?"

    edit_json(chat, tamper)
    code, out, _ = run(capsys, "verify", chat)
    assert code == 1
    assert out == f"{chat}: cell 3: key does not match its request (edited after it was stored?)\n"


def test_verify_malformed_records(capsys, chat):
    def break_them(data):
        del stored_record(data, 3)["response"]
        stored_record(data, 5)["kind"] = "answr"

    edit_json(chat, break_them)
    code, out, _ = run(capsys, "verify", chat)
    assert code == 1
    assert out.splitlines() == [
        f"{chat}: cell 3: malformed record: record fields missing or malformed: response",
        f"{chat}: cell 5: unknown record kind 'answr'",
    ]


def test_verify_newer_schema(capsys, chat):
    def upgrade(data):
        output = data["cells"][2]["outputs"][0]["data"]
        output["application/vnd.nbchat.v99+json"] = output.pop(RECORD_MIME)
        stored_record(data, 5)["schema"] = 7

    edit_json(chat, upgrade)
    code, out, _ = run(capsys, "verify", chat)
    assert code == 1
    assert out.splitlines() == [
        f"{chat}: cell 3: record schema v99 is newer than supported (v1)",
        f"{chat}: cell 5: record schema v7 is newer than supported (v1)",
    ]


def test_unreadable_record_is_one_line_everywhere(capsys, chat):
    edit_json(chat, lambda data: stored_record(data, 3).update(schema=None))
    code, out, _ = run(capsys, "verify", chat)
    assert code == 1
    assert out.startswith(f"{chat}: cell 3: malformed record: ")
    code, out, err = run(capsys, "show", chat)
    assert code == 0, "the other records are still shown"
    assert "Traceback" not in err and "nbchat verify" in err
    assert len(err.strip().splitlines()) == 1


def test_verify_flags_a_leaked_key_without_printing_it(capsys, tmp_path):
    leaky = make_record(f"my key is {LEAKED}, why 401?", "Rotate it.", params={"temperature": 0})
    header = make_record("hi", "hello", params={"api_key": "abcdefgh12345678"})
    path = make_chat_notebook(tmp_path / "leak.ipynb", [("%%chat", leaky), ("%%chat", header)])
    code, out, _ = run(capsys, "verify", path)
    assert code == 1
    assert f"{path}: cell 2: possible API key leaked in prompt" in out
    assert f"{path}: cell 2: possible API key leaked in request.messages[0].content" in out
    assert f"{path}: cell 3: possible API key leaked in request.params.api_key" in out
    assert LEAKED not in out
    assert "abcdefgh12345678" not in out


def test_hyphenated_prose_is_not_a_leaked_key():
    assert list(find_secrets({"prompt": "our risk-assessment-framework-for-2026 review"})) == []
    assert list(find_secrets({"prompt": f"oops {LEAKED}"})) == ["prompt"]


@pytest.mark.parametrize(
    "text",
    [
        "client = OpenAI(api_key=os.environ['OPENAI_API_KEY'])",
        "send the header Authorization: Bearer <your key>",
        "the fake server's key is sk-test-key",
    ],
)
def test_talking_about_keys_is_not_a_leak(text):
    assert list(find_secrets({"prompt": text})) == []


@pytest.mark.parametrize(
    "text",
    [
        f"export OPENAI_API_KEY={LEAKED}",
        "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
        'config = {"api_key": "0123456789abcdefghijklmn"}',
    ],
)
def test_secret_shaped_text_is_a_leak(text):
    assert list(find_secrets({"response": {"text": text}})) == ["response.text"]


def test_verify_many_files_and_a_missing_one(capsys, chat, tmp_path):
    code, out, err = run(capsys, "verify", chat, tmp_path / "missing.ipynb")
    assert code == 2
    assert out == f"ok: 5 records in {chat}\n"
    assert_one_line_error(err, "missing.ipynb", "no such notebook")


# -- strip -----------------------------------------------------------------------------------------


def add_raw_view(path: Path, cell: int) -> None:
    """Give a cell the raw-JSON view output nbchat shows with ``--raw``."""
    notebook = nbformat.read(path, as_version=4)
    record = notebook.cells[cell - 1].outputs[0].data[RECORD_MIME]
    view = new_output("display_data", data={"application/json": record})
    view.metadata = {"nbchat": {"raw": True}}
    notebook.cells[cell - 1].outputs.append(view)
    nbformat.write(notebook, path)


def has_record_mime(notebook: nbformat.NotebookNode) -> bool:
    return any(
        RECORD_MIME_PATTERN.match(mime)
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        for mime in output.get("data", {})
    )


def test_strip_drops_nbchat_outputs(capsys, chat):
    add_raw_view(chat, 3)
    code, out, _ = run(capsys, "strip", chat)
    assert (code, out) == (0, f"stripped 5 records and 1 raw view from {chat}\n")
    notebook = nbformat.read(chat, as_version=4)
    nbformat.validate(notebook)
    assert not has_record_mime(notebook)
    assert [cell.get("outputs") for cell in notebook.cells[1:]] == [[]] * 6
    assert notebook.cells[2].source == "%%chat\nWhat is 2+2?"  # the prompts stay


def test_strip_keep_text(capsys, chat, turns):
    add_raw_view(chat, 3)
    code, _, _ = run(capsys, "strip", chat, "--keep-text")
    assert code == 0
    notebook = nbformat.read(chat, as_version=4)
    nbformat.validate(notebook)
    assert not has_record_mime(notebook)
    answer = notebook.cells[2].outputs
    assert len(answer) == 1  # the raw view is gone
    assert answer[0].data == {"text/markdown": turns[1].answer, "text/plain": turns[1].answer}


def test_strip_into_another_file_leaves_the_original(capsys, chat, tmp_path):
    before = chat.read_bytes()
    target = tmp_path / "shared.ipynb"
    code, out, _ = run(capsys, "strip", chat, "-o", target)
    assert (code, out) == (0, f"stripped 5 records from {chat} into {target}\n")
    assert chat.read_bytes() == before
    assert not has_record_mime(nbformat.read(target, as_version=4))


def test_strip_nothing_to_strip_does_not_rewrite(capsys, tmp_path):
    path = make_chat_notebook(tmp_path / "plain.ipynb", [("x = 1", None)])
    stamp = path.stat().st_mtime_ns
    assert run(capsys, "strip", path)[1] == f"stripped 0 records from {path}\n"
    assert path.stat().st_mtime_ns == stamp


def test_strip_keeps_the_file_mode(capsys, chat):
    os.chmod(chat, 0o640)
    run(capsys, "strip", chat)
    assert chat.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), RuntimeError("bug")])
def test_strip_is_atomic(capsys, chat, monkeypatch, failure):
    before = chat.read_bytes()
    written = []

    def half_write(notebook, handle, **kwargs):
        handle.write('{"cells": [')  # a torn write
        written.append(handle.name)
        raise failure

    monkeypatch.setattr(nbformat, "write", half_write)
    if isinstance(failure, OSError):
        code, _, err = run(capsys, "strip", chat)
        assert code == 2
        assert_one_line_error(err, "No space left on device")
    else:  # a bug keeps its traceback, but not at the notebook's expense
        with pytest.raises(RuntimeError):
            main(["strip", str(chat)])
    assert written and written[0] != str(chat)
    assert chat.read_bytes() == before
    assert sorted(p.name for p in chat.parent.iterdir()) == ["chat.ipynb"]


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["show", "export", "stats", "verify", "strip"])
def test_missing_notebook_exits_2(capsys, tmp_path, command):
    code, out, err = run(capsys, command, tmp_path / "nope.ipynb")
    assert (code, out) == (2, "")
    assert_one_line_error(err, "nope.ipynb")


@pytest.mark.parametrize("command", ["show", "export", "stats", "verify", "strip"])
def test_corrupt_notebook_exits_2(capsys, tmp_path, command):
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [', encoding="utf-8")
    code, out, err = run(capsys, command, path)
    assert (code, out) == (2, "")
    assert_one_line_error(err, f"nbchat: {path}: not a valid notebook (")
    assert path.read_text(encoding="utf-8") == '{"cells": ['


# -- the real command ------------------------------------------------------------------------------


def test_the_real_command(chat, tmp_path):
    """One process only: each one pays nbformat's slow import (about 1.5 s)."""
    broken = tmp_path / "broken.ipynb"
    broken.write_text("not json at all", encoding="utf-8")
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "nbchat.cli", "verify", str(chat), str(broken)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2  # the unreadable file wins over a clean one
    assert result.stdout == f"ok: 5 records in {chat}\n"
    assert_one_line_error(result.stderr, str(broken), "not a valid notebook")
