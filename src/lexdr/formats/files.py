"""File plumbing: transparent gzip, and atomic writes (temp file + rename) so no reader ever sees half a file."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator, Mapping

from lexdr.errors import InputError

__all__ = ["open_text", "iter_jsonl", "write_jsonl", "file_sha256", "atomic_write", "atomic_path", "atomic_folder",
           "replace_folder", "recover_folder"]


def open_text(path: str | Path) -> IO[str]:
    """Open a text file for reading, gunzipping ``*.gz``; a missing file is an :class:`InputError`."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, 0, "file does not exist", "check the path")
    if path.is_dir():
        raise InputError(path, 0, "is a directory, expected a file", "point at the file inside it")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's content, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSONL file (plain or gzipped).

    Bad JSON and a line that is not a JSON object are :class:`InputError` with ``path:line``; what the
    object must hold is the caller's to check.
    """
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(path, lineno, f"invalid JSON ({e.msg} at column {e.colno})",
                                 "each line must be one JSON object") from None
            if not isinstance(rec, dict):
                raise InputError(path, lineno, f"expected a JSON object, got {type(rec).__name__}")
            yield lineno, rec


def write_jsonl(records: Iterable[Mapping], path: str | Path) -> int:
    """Write one JSON object per line, atomically (temp file + rename); returns how many were written."""
    n = 0
    with atomic_write(path) as fh:
        for rec in records:
            fh.write(json.dumps(dict(rec), ensure_ascii=False) + "\n")
            n += 1
    return n


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on error removed.

    For writers that want a path (numpy, FAISS, safetensors) rather than a file object.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp creates 0600; the final file should get the permissions any normal file gets (the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open ``path`` for writing through a temp file; ``*.gz`` is compressed. Renamed into place on success."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".gz":
            raw = gzip.open(tmp, "wb")
            fh: IO = io.TextIOWrapper(raw, encoding="utf-8") if "b" not in mode else raw
        else:
            fh = open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
        try:
            yield fh
            fh.flush()
            if hasattr(fh, "fileno"):
                with contextlib.suppress(OSError, io.UnsupportedOperation):
                    os.fsync(fh.fileno())
        finally:
            fh.close()


def replace_folder(src: str | Path, dst: str | Path) -> Path:
    """Move the finished folder ``src`` onto ``dst`` with renames only: a reader sees the old folder or the
    new one, never a mix. An existing ``dst`` is moved aside first and deleted after the swap; if the swap
    fails, the old folder is put back."""
    src, dst = Path(src), Path(dst)
    if not dst.exists():
        os.replace(src, dst)
        return dst
    old = _aside(dst)
    if old.exists():  # left by an earlier swap that completed (dst exists), so it is garbage
        shutil.rmtree(old)
    os.replace(dst, old)
    try:
        os.replace(src, dst)
    except OSError:
        os.replace(old, dst)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return dst


def _aside(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def recover_folder(path: str | Path) -> Path:
    """Undo a :func:`replace_folder` killed between its two renames: if ``path`` is missing and its
    moved-aside copy exists, rename the copy back. Returns ``path``."""
    path = Path(path)
    old = _aside(path)
    if not path.exists() and old.is_dir():
        os.replace(old, path)
    return path


@contextlib.contextmanager
def atomic_folder(path: str | Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (:func:`replace_folder`), on
    error it is removed. For outputs made of several files (an index, a model): readers never see half of one.

    ``mode``: chmod the folder tree on success (``0o755`` → folders 755, files 644); ``mkdtemp`` makes 700.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if mode is not None:
            tmp.chmod(mode)
            for f in tmp.rglob("*"):
                f.chmod(mode if f.is_dir() else mode & 0o666)
        replace_folder(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
