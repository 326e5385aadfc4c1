"""``nbchat verify``: tampered, malformed and newer records, and leaked keys, each named."""

from __future__ import annotations

import time

import pytest

from nbchat.store.record import RECORD_MIME

from support.command import assert_one_line_error, run
from support.nbfactory import MALFORMED, edit_json, make_chat_notebook, make_record, stored_record

LEAKED = "sk-proj-" + "A1b2C3d4E5f6G7h8J9k0"


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


def test_verify_reads_text_split_into_lines_as_one_text(capsys, tmp_path):
    """A saved file splits multiline text into lists of lines; a credential whose name and value
    sit on two lines is found all the same, as nbformat would join them."""
    record = make_record("What is 2+2?", "4")
    path = make_chat_notebook(tmp_path / "split.ipynb", [("%%chat\nWhat is 2+2?", record)])
    token = "abcdefghijklmnopqrstuvwxyz012345"

    def split_lines(data):
        cell = data["cells"][1]
        cell["source"] = ["%%chat\n", "Why does it fail?"]
        cell["outputs"] += [
            {"output_type": "stream", "name": "stdout", "text": ["Authorization: Bearer\n", token]},
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"text/plain": ["headers = {'Authorization':\n", f"  'Bearer {token}'}}"]},
            },
        ]

    edit_json(path, split_lines)
    code, out, _ = run(capsys, "verify", path)
    assert code == 1
    assert [line.split(": possible API key leaked")[0] for line in out.splitlines()] == [
        f"{path}: cell 2, output 2, stdout",
        f"{path}: cell 2, output 3, text/plain",
    ]
    assert token not in out
    code, out, _ = run(capsys, "show", path, "--width", "120")
    assert code == 0 and "What is 2+2?" in out


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


def test_verify_and_show_read_a_notebook_whose_turns_offered_mcp_tools(capsys, tmp_path):
    """``tests/support/fixtures/mcp-tools.ipynb``: records with the ``mcp`` field."""
    import shutil

    from support.paths import FIXTURES

    path = shutil.copy(FIXTURES / "mcp-tools.ipynb", tmp_path / "mcp-tools.ipynb")
    code, out, _ = run(capsys, "verify", path)
    assert (code, out) == (0, f"ok: 3 records in {path}\n")
    code, out, _ = run(capsys, "show", path)
    assert code == 0 and "How high is the tide in Brest?" in out
