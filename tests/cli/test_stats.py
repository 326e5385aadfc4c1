"""``nbchat stats``: tokens by model, per notebook and in total."""

from __future__ import annotations

from support.command import assert_one_line_error, run
from support.nbfactory import make_chat_notebook, make_record

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


def test_stats_fit_the_terminal_with_a_long_model_name(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    record = make_record("Hi", "Hello", model="vendor/" + "a-very-long-model-name-" * 5)
    path = make_chat_notebook(tmp_path / "m.ipynb", [("%%chat\nHi", record)])
    code, out, _ = run(capsys, "stats", path)
    assert code == 0
    table = out.splitlines()[1:]
    assert max(len(line) for line in table) <= 60
    assert table[1].split()[-4:] == ["1", "5", "7", "12"]  # the numbers are never the ones cut
