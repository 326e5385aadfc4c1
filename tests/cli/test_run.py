"""``nbchat run`` before any kernel starts: arguments, exit codes, and how answers are counted."""

from __future__ import annotations

import sys
from pathlib import Path

from nbchat.cli.help import ExitCode
from nbchat.cli.main import main
from nbchat.cli.run import count_answers
from nbchat.render.bundles import answer_bundle
from nbchat.store.record import RECORD_MIME

from support.nbfactory import make_record, write_notebook

CHAT = ["%load_ext nbchat", "%%chat\nWhat is a tide?", "%%chat\nAnd a spring tide?"]


def run(capsys, *argv: str | Path) -> tuple[int, str, str]:
    code = main(["run", *(str(arg) for arg in argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- without a kernel ------------------------------------------------------------------------------


def test_answers_are_counted_from_records_and_replayed_from_metadata():
    record = make_record("Hello", "Hi")
    fresh, fresh_meta = answer_bundle(record)
    replayed, replayed_meta = answer_bundle(record, replayed=True)
    unstored, unstored_meta = answer_bundle(record, store=False)  # --no-cache: no record
    cells = [
        {"outputs": [{"data": fresh, "metadata": fresh_meta}]},
        {"outputs": [{"data": replayed, "metadata": replayed_meta}, {"text": "x"}]},
        {"outputs": [{"data": unstored, "metadata": unstored_meta}]},
        {"outputs": [{"data": {"text/plain": "1"}, "metadata": {}}]},
        # a --map summary counts its items (its record is a batch, not one answer)
        {
            "outputs": [
                {"data": {}, "metadata": {"nbchat": {"batch": True, "answered": 5, "replayed": 2}}}
            ]
        },
        {"outputs": [{"data": {}, "metadata": {"nbchat": {"batch": True, "answered": "x"}}}]},
    ]
    assert count_answers(cells) == (8, 3)


def test_help_shows_an_example_and_the_summary_line(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "example:\n  nbchat run --offline" in out
    assert "N cells run, A answers (R replayed, S asked), E errors" in out


def test_inplace_and_output_exclude_each_other(capsys, tmp_path):
    code, _, err = run(capsys, tmp_path / "x.ipynb", "--inplace", "-o", tmp_path / "y.ipynb")
    assert code == 2 and "not allowed with" in err


def test_a_missing_notebook_is_one_line_exit_2(capsys, tmp_path):
    code, out, err = run(capsys, tmp_path / "missing.ipynb")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "no such notebook" in err


def test_without_nbclient_it_says_what_to_install(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nbclient", None)  # `import nbclient` raises ImportError
    path = write_notebook(tmp_path / "chat.ipynb", CHAT)
    code, out, err = run(capsys, path)
    assert (code, out) == (2, "")
    assert err == "nbchat: run needs nbclient and ipykernel: pip install nbclient ipykernel\n"


def test_odd_outputs_are_not_answers():
    record = make_record("Hello", "Hi")
    answer, _ = answer_bundle(record)
    cells = [
        {"outputs": [{"data": answer, "metadata": "not an object"}]},  # still a record
        {"outputs": [{"data": ["not", "a", "bundle"], "metadata": {"nbchat": [1]}}]},
        {"outputs": [5, "text", None]},
        {"outputs": {"not": "a list"}},
        "not a cell",
        {"outputs": [{"data": {RECORD_MIME: "a string"}, "metadata": {"nbchat": "x"}}]},
    ]
    assert count_answers(cells) == (1, 0)


def test_a_missing_output_directory_fails_before_running(capsys, tmp_path, monkeypatch):
    import nbchat.cli.run

    def never(*args, **kwargs):
        raise AssertionError("the notebook was run")

    monkeypatch.setattr(nbchat.cli.run, "_execute", never)
    path = write_notebook(tmp_path / "chat.ipynb", CHAT)
    code, out, err = run(capsys, path, "-o", tmp_path / "nope" / "out.ipynb")
    assert (code, out) == (ExitCode.BAD_INPUT, "")
    assert err == f"nbchat: {tmp_path / 'nope' / 'out.ipynb'}: no such directory to save into\n"
