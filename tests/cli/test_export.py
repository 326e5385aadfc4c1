"""``nbchat export``: Markdown, JSON lines and HTML transcripts, never a terminal control."""

from __future__ import annotations

import json

import pytest
from markdown_it import MarkdownIt

from nbchat._text import CONTROLS
from nbchat.store.record import Record

from support.command import assert_one_line_error, run
from support.html_check import HOSTILE as HOSTILE_ANSWERS
from support.html_check import executable
from support.nbfactory import make_chat_notebook, make_record

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
