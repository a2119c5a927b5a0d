"""Writing files so that a crash never leaves half of one: temporary name, then rename into place.

``os.replace`` of a file is atomic on POSIX and Windows, so a reader sees the old file or the new
one. A directory cannot be replaced by rename when the target exists and is not empty; on Linux
``renameat2(RENAME_EXCHANGE)`` swaps two directories atomically, elsewhere the old directory is
first moved aside to ``NAME.old`` (``recover_directory`` puts it back after a crash in between).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

#: Temporary siblings are named ``.NAME.tmp-<random>`` so they are hidden and never collide.
TMP_MARK = ".tmp-"


def temporary_sibling(path: Path) -> Path:
    """A fresh, unused name beside ``path`` (same folder, so the final rename stays on one filesystem)."""
    path = Path(path)
    return path.with_name(f".{path.name}{TMP_MARK}{uuid.uuid4().hex[:8]}")


def _default_mode() -> int:
    """0o666 minus the process umask: what ``open(path, "w")`` would give a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    The file gets ordinary permissions (some writers create 0600 temporary files).
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


# -- directories -------------------------------------------------------------------------------

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths with Linux ``renameat2``; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:  # glibc < 2.28
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(str(a)), _AT_FDCWD, os.fsencode(str(b)), _RENAME_EXCHANGE)
    return result == 0


def old_sibling(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".old")


def replace_directory(new: Path, target: Path) -> None:
    """Put the finished directory ``new`` in place of ``target`` (which may exist), atomically.

    Afterwards ``target`` holds ``new``'s files and nothing of the old directory remains.
    """
    new, target = Path(new), Path(target)
    if not target.exists():
        os.replace(new, target)
        return
    if _exchange(new, target):  # target now new, `new` now the old directory
        shutil.rmtree(new, ignore_errors=True)
        return
    old = old_sibling(target)
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    os.replace(new, target)  # a crash before this line leaves NAME.old, which recover_directory restores
    shutil.rmtree(old, ignore_errors=True)


def recover_directory(target: Path) -> None:
    """Undo a crash between the two renames of ``replace_directory`` (only where it cannot swap)."""
    target = Path(target)
    old = old_sibling(target)
    if old.is_dir() and not target.exists():
        os.replace(old, target)


def remove_temporaries(folder: Path) -> None:
    """Delete ``.NAME.tmp-*`` leftovers of writes a crash interrupted."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for leftover in folder.glob(f".*{TMP_MARK}*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
