import os
import subprocess
import sys

import pytest

from epimpute.errors import InputError
from epimpute.io.atomic import (
    atomic_file,
    check_destination,
    publish_dir,
    reclaim_stale,
    temp_path,
)


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_atomic_file_publishes_on_success_and_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "f.txt"
    with atomic_file(path) as tmp:
        assert tmp == tmp_path / f".f.txt.tmp-{os.getpid()}"
        tmp.write_text("one")
        assert not path.exists()
    assert path.read_text() == "one"
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(path) as tmp:
            tmp.write_text("two")
            raise KeyboardInterrupt
    assert path.read_text() == "one" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_stale_temporaries_of_dead_processes_only_are_reclaimed(tmp_path):
    path = tmp_path / "out"
    dead = tmp_path / f".out.tmp-{dead_pid()}"
    old = tmp_path / f".out.old-{dead_pid()}"
    mine = temp_path(path)
    other = tmp_path / f".other.tmp-{dead_pid()}"
    for folder in (dead, old, mine, other):
        folder.mkdir()
        (folder / "x").write_text("x")
    assert sorted(reclaim_stale(path)) == sorted([dead, old])
    assert mine.is_dir() and other.is_dir() and not dead.exists() and not old.exists()


def is_mine(path):
    return (path / "MARK").is_file()


def test_publish_dir_replaces_only_its_own_kind(tmp_path):
    out = tmp_path / "out"
    with publish_dir(out, kind="thing", is_own=is_mine) as tmp:
        (tmp / "MARK").write_text("1")
    assert (out / "MARK").read_text() == "1"
    with pytest.raises(InputError, match="already exists; use --overwrite"):
        with publish_dir(out, kind="thing", is_own=is_mine):
            pass
    with publish_dir(out, kind="thing", is_own=is_mine, overwrite=True) as tmp:
        (tmp / "MARK").write_text("2")
    assert (out / "MARK").read_text() == "2"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep").write_text("k")
    with pytest.raises(InputError, match="exists and is not an epimpute thing"):
        with publish_dir(foreign, kind="thing", is_own=is_mine, overwrite=True):
            pass
    assert (foreign / "keep").read_text() == "k"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "out"]


def test_publish_fails_if_the_destination_appeared(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InputError, match="appeared while the thing was being written"):
        with publish_dir(out, kind="thing", is_own=is_mine) as tmp:
            (tmp / "MARK").write_text("mine")
            out.mkdir()
            (out / "theirs").write_text("t")
    assert [p.name for p in out.iterdir()] == ["theirs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_destination_rules(tmp_path, monkeypatch):
    inputs = tmp_path / "data" / "in.zarr"
    inputs.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "data")
    for path, message in [(tmp_path / "data", "current directory"),
                          (tmp_path, "current directory"),
                          (inputs, "onto the input"),
                          (tmp_path / "absent" / "x", "does not exist")]:
        with pytest.raises(InputError, match=message):
            check_destination(path, kind="thing", is_own=lambda p: True, overwrite=True,
                              inputs=[inputs])
    check_destination(tmp_path / "data" / "new", kind="thing", inputs=[inputs])
    empty = tmp_path / "empty"
    empty.mkdir()
    check_destination(empty, kind="thing")
