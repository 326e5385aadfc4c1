"""Run the ``nbchat`` command in-process and check what it says."""

from __future__ import annotations

from nbchat.cli.main import main


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
