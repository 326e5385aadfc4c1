"""The ``nbchat`` command, run for real on notebooks written by `nbfactory`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from markdown_it import MarkdownIt
from nbformat.v4 import new_output
from support.html_check import HOSTILE as HOSTILE_ANSWERS
from support.html_check import executable
from support.nbfactory import (
    MALFORMED,
    make_batch_json,
    make_chat_notebook,
    make_record,
    make_system_record,
)

from nbchat._text import CONTROLS, display_width
from nbchat.cli import main as cli
from nbchat.cli.format import PROMPT_MIN, ExitCode
from nbchat.cli.main import main
from nbchat.store.record import RECORD_MIME, RECORD_MIME_PATTERN, Record

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
    for code in ExitCode:
        assert f"\n  {code.value:<3d}  " in out
    assert "1    verify found problems" in out
    assert (cli.__doc__ or "").count("Exit status") == 1


@pytest.mark.parametrize("command", ["show", "export", "stats", "verify", "strip"])
def test_every_command_has_help_with_an_example(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert f"example:\n  nbchat {command}" in out


@pytest.mark.parametrize("columns", ["200", "80"])
@pytest.mark.parametrize(
    "command", [[], ["show"], ["export"], ["stats"], ["verify"], ["strip"], ["upgrade"], ["run"]]
)
def test_help_fits_80_columns_whatever_the_terminal(capsys, monkeypatch, command, columns):
    monkeypatch.setenv("COLUMNS", columns)
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert max(display_width(line) for line in out.splitlines()) <= 80
    if command == ["run"]:  # the epilog's prose is wrapped, its summary line kept whole
        assert "\n  NOTEBOOK: N cells run, A answers (R replayed, S asked), E errors\n" in out
        assert "never saved when a cell fails. Then prints:\n\n  NOTEBOOK: " in out


def test_usage_errors_exit_2(capsys):
    assert run(capsys)[0] == 2
    code, _, err = run(capsys, "export", "x.ipynb", "--format", "pdf")
    assert code == 2
    assert "invalid choice" in err


@pytest.mark.parametrize(("width", "reason"), [("10", "at least 20"), ("wide", "whole number")])
def test_a_width_too_small_or_not_a_number_is_a_usage_error(capsys, chat, width, reason):
    code, out, err = run(capsys, "show", chat, "--width", width)
    assert (code, out) == (2, "")
    assert reason in err and "Traceback" not in err


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


REVIEW = "Classify the sentiment of this customer review, in one word: {item}"


def test_show_names_the_map_of_an_item_and_shows_the_item(capsys, tmp_path):
    raw = make_batch_json(REVIEW, ["great product", "awful, broke in a day", "fine"])
    path = make_chat_notebook(
        tmp_path / "map.ipynb",
        [
            ("%%chat\nHi", make_record("Hi", "Hello")),
            (f"%%chat --map reviews -o labels\n{REVIEW}", raw),
            (f"nbchat.map({REVIEW!r}, reviews)", make_batch_json(REVIEW, ["meh"])),
        ],
    )
    code, out, _ = run(capsys, "show", path, "--width", "80")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["CELL", "THREAD", "MODEL", "TOKENS", "PROMPT", "ANSWER"]
    cells = [re.split(r"\s{2,}", row.strip()) for row in rows]
    assert [(row[0], row[1], row[4], row[5]) for row in cells] == [
        ("2", "default", "Hi", "Hello"),
        ("3", "--map reviews", "item 0: great product", "answer 0"),
        ("3", "--map reviews", "item 1: awful, broke in a day", "answer 1"),
        ("3", "--map reviews", "item 2: fine", "answer 2"),
        ("4", "nbchat.map", "item 0: meh", "answer 0"),
    ]


def test_show_system_record_is_a_thread_system_prompt(capsys, chat):
    _, out, _ = run(capsys, "show", chat, "--width", "120")
    system = out.splitlines()[1]
    assert system.split()[:5] == ["2", "default", "-", "-", "-"]
    assert "(system) You are terse." in system
    assert system.endswith("You are terse.")  # and no answer


LONG_PROMPT = "Please review the following function line by line and tell me what it does " * 3
LONG_ANSWER = "It parses the configuration file, then validates every entry against " * 5


@pytest.fixture
def long_chat(tmp_path):
    """One thread, one model, long prompts and answers (one cut short by the token limit)."""
    records = [
        make_record(f"{n}. {LONG_PROMPT}", LONG_ANSWER, usage=(1200, 450)) for n in range(1, 4)
    ]
    records.append(make_record(LONG_PROMPT, LONG_ANSWER, usage=(99, 4096), finish_reason="length"))
    return make_chat_notebook(tmp_path / "long.ipynb", [(r.prompt, r) for r in records])


def shown_prompt(line: str) -> int:
    """How many characters of its prompt a row of `long_chat` shows."""
    prompts = [f"{n}. {LONG_PROMPT}" for n in range(1, 4)] + [LONG_PROMPT]
    return max(
        (end for prompt in prompts for end in range(len(prompt), 8, -1) if prompt[:end] in line),
        default=0,
    )


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_show_fits_the_width_and_keeps_the_prompt_readable(capsys, long_chat, width):
    code, out, _ = run(capsys, "show", long_chat, "--width", width)
    assert code == 0
    lines = out.splitlines()
    assert max(display_width(line) for line in lines) <= width
    rows = [line for line in lines if line.lstrip()[:1].isdigit()]
    assert len(rows) == 4
    for row in rows:
        assert shown_prompt(row) >= 30
        assert "It parses" in row  # the answer has a column too
    assert "[length] It parses" in out or " length " in out  # a cut answer is always marked


def test_show_at_80_columns_says_the_common_model_once(capsys, long_chat):
    _, out, _ = run(capsys, "show", long_chat, "--width", "80")
    note, header, *_ = out.splitlines()
    assert note == "model: peer-small"
    assert header.split() == ["CELL", "THREAD", "TOKENS", "PROMPT", "ANSWER"]
    assert "[length] It parses" in out  # the finish reason moved into the answer


def test_show_at_160_columns_has_every_column(capsys, long_chat):
    _, out, _ = run(capsys, "show", long_chat, "--width", "160")
    header = out.splitlines()[0]
    assert header.split()[:7] == ["CELL", "THREAD", "MODEL", "TOKENS", "FINISH", "STORED", "(UTC)"]
    row = out.splitlines()[1]
    assert shown_prompt(row) > PROMPT_MIN  # the room left is shared with the answer


def test_show_previews_end_in_an_ellipsis_when_cut(capsys, chat):
    _, out, _ = run(capsys, "show", chat, "--width", "100")
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert any(line.endswith("…") for line in lines)


def test_show_defaults_to_the_terminal_width(capsys, long_chat, monkeypatch):
    monkeypatch.setenv("COLUMNS", "70")
    _, out, _ = run(capsys, "show", long_chat)
    assert max(display_width(line) for line in out.splitlines()) == 70


def test_show_width_has_a_minimum(capsys, chat, monkeypatch):
    monkeypatch.setenv("COLUMNS", "5")
    _, out, _ = run(capsys, "show", chat)
    assert max(display_width(line) for line in out.splitlines()) <= cli.MIN_WIDTH
    assert "What is" in out  # the prompt still gets the room


def test_show_counts_wide_characters_as_two_columns(capsys, tmp_path):
    record = make_record(
        "潮汐是什么？请详细解释一下春季大潮和小潮的区别。" * 3, "潮汐是由月球引力引起的。" * 10
    )
    path = make_chat_notebook(tmp_path / "zh.ipynb", [(record.prompt, record)])
    _, out, _ = run(capsys, "show", path, "--width", "80")
    assert max(display_width(line) for line in out.splitlines()) <= 80
    assert "潮汐是什么？请详细解释" in out


def test_show_prints_no_terminal_control_from_a_record(capsys, tmp_path):
    record = make_record(
        "hi\x1b[2J\x1b]0;pwned\x07", "\x1b[31mred\u202e", thread="t\x1b[1m", model="m\x9b1m"
    )
    path = make_chat_notebook(tmp_path / "esc.ipynb", [(record.prompt, record)])
    code, out, _ = run(capsys, "show", path, "--width", "100")
    assert code == 0
    assert not any(ch in out for ch in "\x1b\x07\x9b\u202e")
    assert "hi\ufffd[2J" in out


def test_show_thread_filter(capsys, chat):
    _, out, _ = run(capsys, "show", chat, "--thread", "review", "--width", "160")
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
    default, review = out.split("## Thread ` review `")
    assert "## Thread ` default `" in default
    system = default.index("**System:**\n\n```text\nYou are terse.\n```")
    assert system < default.index("**User:**\n\n```text\nWhat is")
    assert "**Assistant** (` peer-small `):\n\n```markdown\n4\n```" in default
    assert "**Assistant** (` peer-small `):\n\n```markdown\n6\n```" in default
    assert "finish reason" not in default  # "stop" is not worth a note
    assert "**Assistant** (` peer-large `):" in review
    assert review.count("*finish reason:* ` length `") == 1


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
    prompts = [json.loads(line)["messages"][0]["content"] for line in lines]
    assert prompts == [turns[2].prompt, turns[4].prompt]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.ipynb", "review.jsonl"]


def test_export_to_a_missing_directory_is_one_line(capsys, chat, tmp_path):
    code, _, err = run(capsys, "export", chat, "-o", tmp_path / "nope" / "out.md")
    assert code == 2
    assert_one_line_error(err)


@pytest.mark.parametrize("answer", HOSTILE_ANSWERS)
def test_export_markdown_holds_model_text_only_in_fences(capsys, tmp_path, answer):
    """A viewer parsing the transcript as Markdown (raw HTML on, as GitHub's and JupyterLab's
    renderers take it) finds nothing executable: model text is fenced, names are code spans."""
    record = make_record(f"Show me {answer}", answer, thread=answer, model=answer)
    record.messages[-1]["reasoning_content"] = answer
    path = make_chat_notebook(tmp_path / "html.ipynb", [(record.prompt, record)])
    code, out, _ = run(capsys, "export", path)
    assert code == 0
    viewer = MarkdownIt("commonmark", {"html": True}).enable("table")
    assert executable(viewer.render(out)) == []
    assert "<details><summary>Thinking" in out


@pytest.mark.parametrize("answer", HOSTILE_ANSWERS)
def test_export_html_is_the_sanitized_view(capsys, tmp_path, answer):
    record = make_record(f"Show me {answer}", f"**Bold** then {answer}", thread=answer)
    path = make_chat_notebook(tmp_path / "html.ipynb", [(record.prompt, record)])
    code, out, _ = run(capsys, "export", path, "--format", "html")
    assert code == 0 and out.startswith("<!DOCTYPE html>")
    body = out.split("<body>")[1]
    assert executable(body) == [] and "<strong>Bold</strong>" in body


def test_export_never_overwrites_the_notebook(capsys, chat):
    before = chat.read_bytes()
    code, out, err = run(capsys, "export", chat, "-o", chat)
    assert (code, out) == (2, "")
    assert_one_line_error(err, "the notebook itself")
    assert chat.read_bytes() == before


HOSTILE = "hi\x1b[2J\x1b]0;pwned\x07 \x9b31m \u202egnp.exe\r\nline two"


@pytest.mark.parametrize("form", ["markdown", "html", "jsonl"])
def test_export_to_a_terminal_writes_no_terminal_control(capsys, tmp_path, form):
    record = make_record(HOSTILE, HOSTILE, thread="t\x1b[1m\nx")
    path = make_chat_notebook(tmp_path / "esc.ipynb", [(record.prompt, record)])
    code, out, _ = run(capsys, "export", path, "--format", form)
    assert code == 0
    assert not any(ord(ch) in CONTROLS for ch in out.replace("\n", ""))
    if form == "jsonl":  # escaped, so the record itself is unchanged
        assert Record.from_json({**json.loads(out), "cell": None}).prompt == HOSTILE
    else:
        assert "\ufffd]0;pwned\ufffd" in out and "line two" in out
    if form == "markdown":
        assert "## Thread ` t\ufffd[1m x `\n" in out


# -- stats -----------------------------------------------------------------------------------------


def test_stats_sum_tokens_by_model(capsys, chat, turns):
    code, out, _ = run(capsys, "stats", chat)
    assert code == 0
    answers = [record for record in turns if record.kind == "turn"]
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
        stored_record(data, 3)["messages"][0]["content"] = "What is 2+3?"

    edit_json(chat, tamper)
    code, out, _ = run(capsys, "verify", chat)
    assert code == 1
    assert out == f"{chat}: cell 3: key does not match its request (edited after it was stored?)\n"


def test_verify_malformed_records(capsys, chat):
    def break_them(data):
        del stored_record(data, 3)["responses"]
        stored_record(data, 5)["kind"] = "answr"

    edit_json(chat, break_them)
    code, out, _ = run(capsys, "verify", chat)
    assert code == 1
    assert out.splitlines() == [
        f"{chat}: cell 3: malformed record: responses is missing",
        f"{chat}: cell 5: malformed record: unknown record kind 'answr'",
    ]


@pytest.mark.parametrize("case", MALFORMED)
def test_verify_names_a_wrongly_typed_field(capsys, chat, case):
    edit, reason = MALFORMED[case]
    edit_json(chat, lambda data: edit(stored_record(data, 3)))
    code, out, err = run(capsys, "verify", chat)
    assert (code, err) == (1, "")
    assert out == f"{chat}: cell 3: malformed record: {reason}\n"


@pytest.mark.parametrize("command", ["show", "stats", "export", "export --format jsonl"])
@pytest.mark.parametrize("case", MALFORMED)
def test_other_commands_skip_a_wrongly_typed_record(capsys, chat, case, command):
    edit, _ = MALFORMED[case]
    edit_json(chat, lambda data: edit(stored_record(data, 3)))
    code, out, err = run(capsys, *command.split(), chat)
    assert code == 0
    assert err == f"nbchat: {chat}: skipped 1 malformed record; see `nbchat verify`\n"
    assert "What is 2+2?" not in out  # the broken turn is left out, the others are there
    assert "And 3+3?" in out or "3 answers" in out


def test_verify_newer_schema(capsys, chat):
    def upgrade(data):
        output = data["cells"][2]["outputs"][0]["data"]
        output["application/vnd.nbchat.v99+json"] = output.pop(RECORD_MIME)
        stored_record(data, 5)["schema"] = 7

    edit_json(chat, upgrade)
    code, out, _ = run(capsys, "verify", chat)
    assert code == 1
    assert out.splitlines() == [
        f"{chat}: cell 3: record schema v99 is newer than supported (v2)",
        f"{chat}: cell 5: record schema v7 is newer than supported (v2)",
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


def test_verify_flags_a_leaked_key_in_a_record_without_printing_it(capsys, tmp_path):
    leaky = make_record(f"my key is {LEAKED}, why 401?", "Rotate it.", params={"temperature": 0})
    header = make_record("hi", "hello", params={"api_key": "abcdefgh12345678"})
    path = make_chat_notebook(tmp_path / "leak.ipynb", [("%%chat", leaky), ("%%chat", header)])
    code, out, _ = run(capsys, "verify", path)
    assert code == 1
    assert out.splitlines() == [
        f"{path}: cell 2, output 1, nbchat record at messages[0].content: "
        "possible API key leaked (an sk- key)",
        f"{path}: cell 3, output 1, nbchat record at request.params.api_key: "
        "possible API key leaked (a credential field)",
    ]
    assert LEAKED not in out
    assert "abcdefgh12345678" not in out


def test_verify_scans_sources_outputs_and_metadata(capsys, tmp_path):
    record = make_record("What is 2+2?", "4")
    path = make_chat_notebook(tmp_path / "leak.ipynb", [("%%chat\nWhat is 2+2?", record)])
    token = "abcdefghijklmnopqrstuvwxyz012345"

    def leak_everywhere(data):
        data["metadata"]["secrets"] = {"x-api-key": "abcdefgh12345678"}
        cell = data["cells"][1]
        cell["source"] = f"%%chat\nWhy does {LEAKED} fail?"
        cell["outputs"] += [
            {"output_type": "stream", "name": "stderr", "text": f"Authorization: Bearer {token}"},
            {"output_type": "error", "ename": "E", "evalue": LEAKED, "traceback": []},
            {"output_type": "display_data", "metadata": {}, "data": {"text/html": LEAKED}},
        ]

    edit_json(path, leak_everywhere)
    code, out, _ = run(capsys, "verify", path)
    assert code == 1
    assert [line.split(": possible API key leaked")[0] for line in out.splitlines()] == [
        f"{path}: notebook metadata at secrets.x-api-key",
        f"{path}: cell 2, source",
        f"{path}: cell 2, output 2, stderr",
        f"{path}: cell 2, output 3, evalue",
        f"{path}: cell 2, output 4, text/html",
    ]
    assert LEAKED not in out and token not in out


@pytest.mark.timeout(5)
def test_verify_is_linear_on_crafted_text(capsys, tmp_path):
    crafted = ["sk-" * 40_000, "Bearer " * 40_000, "authorization:" + " " * 40_000]
    cells = [(text, make_record(text[:100], text)) for text in crafted]
    path = make_chat_notebook(tmp_path / "crafted.ipynb", cells)
    started = time.perf_counter()
    code, out, _ = run(capsys, "verify", path)
    assert (code, out) == (0, f"ok: 3 records in {path}\n")
    assert time.perf_counter() - started < 3  # 0.1 took over 30 s on the first text alone


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
    # (notebooks written by nbchat 0.2 hold text/markdown; today's hold text/html: both kept)


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


def odd_notebook(path: Path, edit) -> Path:
    """A notebook with one answer cell, edited into a shape nbformat still reads."""
    record = make_record("What is 2+2?", "4")
    make_chat_notebook(path, [("%%chat\nWhat is 2+2?", record), ("x = 1", None)])
    edit_json(path, edit)
    return path


ODD_SHAPES = {
    "source a number": lambda data: data["cells"][1].update(source=5),
    "stream text a number": lambda data: data["cells"][2]["outputs"].append(
        {"output_type": "stream", "name": "stdout", "text": 5}
    ),
    "record a string, nbchat marker a number": lambda data: data["cells"][1]["outputs"].append(
        {"output_type": "display_data", "data": {RECORD_MIME: "x"}, "metadata": {"nbchat": 5}}
    ),
    "nbchat marker a list": lambda data: data["cells"][1]["outputs"][0].update(
        metadata={"nbchat": [1]}
    ),
    "text as a list of lines": lambda data: stored_data(data, 2).update({"text/plain": ["4", ""]}),
    "a kind 100,000 characters long": lambda data: stored_record(data, 2).update(kind="k" * 10**5),
    "a thread with controls": lambda data: stored_record(data, 2).update(thread="\x1b[2J\n"),
}


def stored_data(data: dict, cell: int) -> dict:
    return data["cells"][cell - 1]["outputs"][0]["data"]


@pytest.mark.parametrize(
    "command", ["show", "stats", "export", "verify", "strip", "strip --keep-text"]
)
@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_odd_but_readable_notebooks_never_traceback(capsys, tmp_path, command, shape):
    path = odd_notebook(tmp_path / "odd.ipynb", ODD_SHAPES[shape])
    code, out, err = run(capsys, *command.split(), path)
    assert code in (0, 1), err
    assert "Traceback" not in err and len(err.splitlines()) <= 1
    assert max((len(line) for line in out.splitlines()), default=0) < 1000
    assert "\x1b" not in out


def test_output_metadata_that_is_not_an_object_never_tracebacks(capsys, tmp_path):
    path = odd_notebook(
        tmp_path / "odd.ipynb", lambda data: data["cells"][1]["outputs"][0].update(metadata="x")
    )
    for command in ("show", "verify", "strip"):
        code, _, err = run(capsys, command, path)
        assert code in (0, 1) and "Traceback" not in err


def test_a_long_unknown_kind_is_clipped(capsys, tmp_path):
    path = odd_notebook(tmp_path / "odd.ipynb", ODD_SHAPES["a kind 100,000 characters long"])
    code, out, _ = run(capsys, "verify", path)
    assert code == 1
    assert out.startswith(f"{path}: cell 2: malformed record: unknown record kind 'kkkk")
    assert out.endswith("…'\n")


def test_stats_fit_the_terminal_with_a_long_model_name(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    record = make_record("Hi", "Hello", model="vendor/" + "a-very-long-model-name-" * 5)
    path = make_chat_notebook(tmp_path / "m.ipynb", [("%%chat\nHi", record)])
    code, out, _ = run(capsys, "stats", path)
    assert code == 0
    table = out.splitlines()[1:]
    assert max(len(line) for line in table) <= 60
    assert table[1].split()[-4:] == ["1", "5", "7", "12"]  # the numbers are never the ones cut


def test_ctrl_c_is_one_line_and_exit_130(capsys, chat, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_notebook", interrupted)
    code, out, err = run(capsys, "verify", chat)
    assert (code, out, err) == (ExitCode.INTERRUPTED, "", "nbchat: interrupted\n")


def test_a_terminal_that_cannot_show_a_character_gets_a_question_mark(tmp_path):
    record = make_record("Emoji please", "Here: 🙂 and 中文")
    path = make_chat_notebook(tmp_path / "emoji.ipynb", [("%%chat\nEmoji please", record)])
    env = dict(os.environ, PYTHONIOENCODING="ascii", COLUMNS="100")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "nbchat.cli.main", "show", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    assert "Here: ? and ??" in result.stdout


# -- the real command ------------------------------------------------------------------------------


def test_the_real_command(chat, tmp_path):
    """One process only: each one pays nbformat's slow import (about 1.5 s)."""
    broken = tmp_path / "broken.ipynb"
    broken.write_text("not json at all", encoding="utf-8")
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "nbchat.cli.main", "verify", str(chat), str(broken)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2  # the unreadable file wins over a clean one
    assert result.stdout == f"ok: 5 records in {chat}\n"
    assert_one_line_error(result.stderr, str(broken), "not a valid notebook")
