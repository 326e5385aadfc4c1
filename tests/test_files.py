"""atomic_write: the old file stays whole until the new one is fully written."""

from __future__ import annotations

import os

import pytest

from nbchat._files import atomic_write


def test_writes_a_new_file_with_the_usual_mode(tmp_path):
    previous = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.txt", lambda handle: handle.write("héllo\n"))
    finally:
        os.umask(previous)
    path = tmp_path / "new.txt"
    assert path.read_text(encoding="utf-8") == "héllo\n"
    assert path.stat().st_mode & 0o777 == 0o640  # 0666 under the umask, not the temp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["new.txt"]


def test_replaces_a_file_and_keeps_its_mode(tmp_path):
    path = tmp_path / "old.txt"
    path.write_text("old", encoding="utf-8")
    os.chmod(path, 0o604)
    atomic_write(str(path), lambda handle: handle.write("new"))
    assert path.read_text(encoding="utf-8") == "new"
    assert path.stat().st_mode & 0o777 == 0o604


def test_writes_through_a_symlink(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic_write(link, lambda handle: handle.write("new"))
    assert link.is_symlink()
    assert real.read_text(encoding="utf-8") == "new"


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, failure):
    path = tmp_path / "keep.txt"
    path.write_text("precious", encoding="utf-8")

    def torn(handle):
        handle.write("half")
        raise failure

    with pytest.raises(type(failure)):
        atomic_write(path, torn)
    assert path.read_text(encoding="utf-8") == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_a_missing_directory_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "nope" / "x.txt", lambda handle: handle.write("x"))
