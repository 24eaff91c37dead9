"""Write files and folders under a temporary name and publish them with one rename.

Every output of epimpute goes through this module:

- :func:`atomic_file` yields a temporary path next to the destination; the finished file is
  renamed onto the destination when the block succeeds and removed when it fails.
- :func:`publish_dir` does the same for a folder. The rename fails if something appeared
  at the destination meanwhile (``rename`` of a folder onto an existing non-empty folder
  fails), so two runs writing one destination cannot both succeed.
- :func:`check_destination` is the one rule for replacing an existing output: only with
  ``overwrite``, only a folder epimpute wrote of the expected kind, and never the current
  directory, an input or a folder that contains an input.

Temporary names are ``.NAME.tmp-PID`` (and ``.NAME.old-PID`` for an output being
replaced); leftovers of processes that are no longer alive are removed by the next write
of the same destination (:func:`reclaim_stale`).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from epimpute.errors import InputError

__all__ = ["atomic_file", "check_destination", "check_not_input", "publish", "publish_dir",
           "reclaim_stale", "temp_path"]

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)$")


def temp_path(path: Path, tag: str = "tmp") -> Path:
    """``.NAME.tmp-PID`` next to ``path`` (``tag`` ``old`` for an output being replaced)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def reclaim_stale(path: Path) -> list[Path]:
    """Remove temporary siblings of ``path`` left by processes that are no longer alive.

    Returns the removed paths.
    """
    path = Path(path)
    removed = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    for sibling in siblings:
        match = _TEMP.match(sibling.name)
        if match and match["name"] == path.name and not _alive(int(match["pid"])):
            _remove(sibling)
            removed.append(sibling)
    return removed


def _contains(folder: Path, inner: Path) -> bool:
    return inner == folder or folder in inner.parents


def check_destination(
    path: Path,
    *,
    kind: str,
    is_own: Callable[[Path], bool] | None = None,
    overwrite: bool | None = False,
    inputs: Iterable[Path] = (),
) -> None:
    """Check that ``path`` may be written (and, if it exists, replaced).

    Parameters
    ----------
    path
        The destination folder or file.
    kind
        What is written (``"store"``, ``"model"``, ``"report"``, ``"file"``), for messages.
    is_own
        Recognises an existing output of this kind (its marker or metadata); without it
        an existing destination is never replaced.
    overwrite
        Whether an existing output of this kind may be replaced; ``None`` for a command
        without that option (the message then does not offer it). An empty folder is
        always accepted.
    inputs
        Files and folders the command reads; ``path`` may be none of them nor contain one.

    Raises
    ------
    InputError
        If the parent folder is missing, ``path`` is the current directory, an input or a
        folder holding one, or exists and may not be replaced.
    """
    path = Path(path)
    if not path.resolve().parent.is_dir():
        raise InputError(f"{path}: the folder {path.parent} does not exist")
    check_not_input(path, kind=kind, inputs=inputs)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return
    if overwrite is None:
        raise InputError(f"{path} exists and is not empty; choose another folder")
    if not overwrite:
        raise InputError(f"{path} already exists; use --overwrite (overwrite=True) to "
                         f"replace it")
    if is_own is None or not is_own(path):
        raise InputError(f"{path} exists and is not an epimpute {kind}; not replacing it")


def check_not_input(path: Path, *, kind: str, inputs: Iterable[Path] = ()) -> None:
    """InputError if ``path`` is the current directory, a folder above it, one of
    ``inputs`` or a folder holding one of them."""
    path = Path(path)
    target = path.resolve()
    if _contains(target, Path.cwd().resolve()):
        raise InputError(f"{path}: refusing to write the {kind} onto the current directory "
                         "or a folder above it")
    for item in inputs:
        if _contains(target, Path(item).resolve()):
            raise InputError(f"{path}: refusing to write the {kind} onto the input {item}"
                             + ("" if target == Path(item).resolve() else " or a folder holding it"))


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    On an exception (including an interrupt) the temporary file is removed and ``path`` is
    untouched. Stale temporaries of dead processes are removed first.
    """
    path = Path(path)
    reclaim_stale(path)
    tmp = temp_path(path)
    _remove(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


@contextmanager
def publish_dir(
    path: Path,
    *,
    kind: str,
    is_own: Callable[[Path], bool] | None = None,
    overwrite: bool | None = False,
    inputs: Iterable[Path] = (),
) -> Iterator[Path]:
    """Yield a temporary folder next to ``path`` and rename it to ``path`` at the end.

    The destination is checked first (:func:`check_destination`). Publishing fails with an
    InputError, removing the temporary folder, if a non-empty ``path`` appeared while the
    block ran. With ``overwrite`` an existing output of this ``kind`` (recognised by
    ``is_own``, checked again at the end) is moved aside, replaced, then deleted.
    """
    path = Path(path)
    inputs = list(inputs)
    check_destination(path, kind=kind, is_own=is_own, overwrite=overwrite, inputs=inputs)
    reclaim_stale(path)
    tmp = temp_path(path)
    _remove(tmp)
    try:
        tmp.mkdir()
    except OSError as error:
        raise InputError(f"{path}: cannot create the {kind} in {path.parent} "
                         f"({error.strerror})") from None
    try:
        yield tmp
        publish(tmp, path, kind=kind, is_own=is_own, overwrite=overwrite)
    finally:
        if tmp.exists():
            _remove(tmp)


def publish(tmp: Path, path: Path, *, kind: str, is_own: Callable[[Path], bool] | None = None,
            overwrite: bool | None = False) -> None:
    """Rename the finished folder ``tmp`` to ``path``: onto nothing or an empty folder, or,
    with ``overwrite``, onto an earlier output of this ``kind`` (recognised by ``is_own``).

    Raises
    ------
    InputError
        If another ``path`` is there (for example one that appeared meanwhile).
    """
    try:
        os.rename(tmp, path)  # onto nothing or an empty folder
        return
    except OSError as error:
        if error.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            raise
    if not overwrite or is_own is None or not path.is_dir() or not is_own(path):
        raise InputError(f"{path} appeared while the {kind} was being written; not "
                         "replacing it (the new one is discarded)")
    old = temp_path(path, "old")
    os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    _remove(old)
