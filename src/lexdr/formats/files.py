"""File plumbing: transparent gzip, and atomic writes (temp file + rename) so no reader ever sees half a file."""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import gzip
import hashlib
import io
import json
import os
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import IO, Iterable, Iterator, Mapping

from lexdr.errors import InputError, LexdrError

__all__ = ["open_text", "count_lines", "TextLines", "iter_jsonl", "write_jsonl", "file_sha256", "file_digest", "atomic_write", "atomic_path",
           "atomic_folder", "replace_folder", "recover_folder", "check_output_folder", "writable_target",
           "SPARSE_INDEX", "DENSE_INDEX", "INDEX_FILES", "folder_kind", "claim_output_folder",
           "refuse_output_over_input", "refuse_index_folder", "folder_lock"]


class TextLines:
    """A UTF-8 text file read line by line (``*.gz`` gunzipped), where every decoding problem is an
    :class:`InputError` naming the file and the line: invalid UTF-8, binary data (NUL bytes at its start), a
    truncated or corrupt gzip stream. Iterating yields the lines with their ``\n``; ``\r\n`` is read as ``\n``
    and a UTF-8 byte-order mark at the start is dropped.

    The fast path is Python's own ``TextIOWrapper``; only when it fails is the file scanned again, line by line
    in bytes, to find the line to name (so checking costs nothing on a good file).
    """

    def __init__(self, path: Path):
        self.path = path
        raw: IO[bytes] = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
        try:
            head = raw.peek(8192)[:8192]  # type: ignore[attr-defined]
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
            raw.close()
            raise self._gzip_error(e) from None
        if b"\x00" in head:
            raw.close()
            raise InputError(path, 0, "binary data (NUL bytes), not a UTF-8 text file",
                             "point at the text file (JSONL, TSV or TREC); compressed files must end in .gz")
        self._fh = io.TextIOWrapper(raw, encoding="utf-8-sig")

    def _gzip_error(self, e: BaseException) -> InputError:
        if isinstance(e, EOFError):
            return InputError(self.path, self._failing_line(), "truncated gzip file (it ends before the end of "
                              "the compressed stream)", "download or compress the file again")
        return InputError(self.path, 0, f"corrupt or not a gzip file ({e})",
                          "download or compress the file again, or remove the .gz suffix if it is plain text")

    def _failing_line(self) -> int:
        """Number of the first line that cannot be read (a second pass, on the error path only)."""
        lineno = 0
        try:
            with (gzip.open(self.path, "rb") if self.path.suffix == ".gz" else open(self.path, "rb")) as fh:
                for lineno, _ in enumerate(fh, start=1):
                    pass
        except (EOFError, gzip.BadGzipFile, zlib.error):
            return lineno + 1
        return lineno

    def _decode_error(self) -> InputError:
        with (gzip.open(self.path, "rb") if self.path.suffix == ".gz" else open(self.path, "rb")) as fh:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    return InputError(self.path, lineno, f"invalid UTF-8 (byte 0x{raw[e.start]:02x} at byte "
                                      f"{e.start + 1} of the line)", "re-save the file as UTF-8 (e.g. iconv -f "
                                      "LATIN1 -t UTF-8)")
        return InputError(self.path, 0, "invalid UTF-8", "re-save the file as UTF-8")

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._fh
        except UnicodeDecodeError:
            raise self._decode_error() from None
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise self._gzip_error(e) from None

    def read(self) -> str:
        return "".join(self)

    def readline(self) -> str:
        return next(iter(self), "")

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "TextLines":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_text(path: str | Path) -> TextLines:
    """Open a UTF-8 text file for reading line by line, gunzipping ``*.gz`` (see :class:`TextLines`).

    A missing file, a folder, invalid UTF-8, binary data and a truncated ``.gz`` are :class:`InputError` with
    the file (and the line where it can be known).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, 0, "file does not exist", "check the path")
    if path.is_dir():
        raise InputError(path, 0, "is a directory, expected a file", "point at the file inside it")
    try:
        return TextLines(path)
    except PermissionError:
        raise InputError(path, 0, "permission denied", "make the file readable (chmod +r)") from None


def count_lines(path: str | Path) -> int:
    """Non-blank lines of a text file (``.gz`` too): a corpus's passages or a JSONL file's records, counted
    without parsing them."""
    with open_text(path) as fh:
        return sum(1 for line in fh if line.strip())


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's content, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_DIGESTS: dict[tuple[str, int, float], str] = {}


def file_digest(path: str | Path) -> str:
    """:func:`file_sha256`, cached per (resolved path, size, mtime) within the process: stages that check the
    same input (a corpus read by BM25, dense and training) hash it once."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(p)
    return _DIGESTS[key]


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
            if ("\\ud" in line or "\\uD" in line) and _lone_surrogate(rec):  # only JSON escapes can make one
                raise InputError(path, lineno, "a \\ud800-\\udfff escape that is half of a UTF-16 pair, not a "
                                 "character (no tokenizer can encode it)", "replace it with the character it was "
                                 "meant to be, or with \\ufffd")
            yield lineno, rec


def _lone_surrogate(value) -> bool:
    """Whether a decoded JSON value holds a lone surrogate anywhere (a string that is not valid Unicode text)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_lone_surrogate(v) for v in value)
    return False


def write_jsonl(records: Iterable[Mapping], path: str | Path) -> int:
    """Write one JSON object per line, atomically (temp file + rename); returns how many were written."""
    n = 0
    with atomic_write(path) as fh:
        for rec in records:
            fh.write(json.dumps(dict(rec), ensure_ascii=False) + "\n")
            n += 1
    return n


@contextlib.contextmanager
def atomic_path(path: str | Path, needs: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on error removed.

    For writers that want a path (numpy, FAISS, safetensors) rather than a file object. ``needs``: the bytes
    the writer is about to write, where the caller knows them (named if the disk fills).
    """
    path = writable_target(path, folder=False)
    with _os_errors(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp creates 0600; the final file should get the permissions any normal file gets (the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_path = Path(tmp)
    try:
        with _disk_full(path, tmp_path, needs):
            yield tmp_path
        with _os_errors(path):
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
def atomic_folder(path: str | Path, mode: int | None = None, needs: int | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (:func:`replace_folder`), on
    error it is removed. For outputs made of several files (an index, a model): readers never see half of one.

    ``mode``: chmod the folder tree on success (``0o755`` → folders 755, files 644); ``mkdtemp`` makes 700.
    ``needs``: the bytes the folder will hold, where the caller knows them (named if the disk fills).
    """
    path = writable_target(path, folder=True)
    with _os_errors(path):
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        with _disk_full(path, tmp, needs):
            yield tmp
        if mode is not None:
            tmp.chmod(mode)
            for f in tmp.rglob("*"):
                f.chmod(mode if f.is_dir() else mode & 0o666)
        with _os_errors(path):
            replace_folder(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


@contextlib.contextmanager
def _disk_full(path: Path, tmp: Path, needs: int | None = None) -> Iterator[None]:
    """A full disk (or quota) while a writer fills ``tmp`` (the temp file or folder of ``path``): one
    :class:`LexdrError` naming the folder, how much the output needs (``needs`` where the caller knows it,
    else at least what had been written) and what is free, instead of the writer's traceback. The caller's
    cleanup then removes ``tmp``: nothing half-written stays."""
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        written = _size_of(tmp)
        free = shutil.disk_usage(tmp.parent if tmp.parent.exists() else path.parent).free
        need = (f"it needs about {_mib(needs)}" if needs is not None and needs > written else
                f"it needs more than the {_mib(written)} written when the disk filled")
        raise LexdrError(f"no space left on the device of {path.parent} while writing {path.name}: {need}, "
                         f"{_mib(free)} is free (fix: free that much space, or choose an output folder on another "
                         "disk)") from None


@contextlib.contextmanager
def _os_errors(path: Path) -> Iterator[None]:
    """Turn the OS errors of lexdr's own file operations on ``path`` into one-line :class:`LexdrError`
    that name the path and the fix (never the user code run inside an atomic block)."""
    try:
        yield
    except PermissionError:
        raise LexdrError(f"cannot write {path}: permission denied (fix: choose an output path in a folder you "
                         "can write to, or change its permissions)") from None
    except OSError as e:
        if e.errno == errno.EROFS:
            raise LexdrError(f"cannot write {path}: read-only file system (fix: choose an output path on a "
                             "writable disk)") from None
        if e.errno == errno.ENOSPC:
            raise LexdrError(f"cannot write {path}: no space left on the device (fix: free space or choose "
                             "another disk)") from None
        if isinstance(e, (NotADirectoryError, FileExistsError)) or e.errno in (errno.ENOTDIR, errno.EEXIST):
            raise LexdrError(f"cannot write {path}: a part of the path is a file, not a folder (fix: choose "
                             "another output path)") from None
        if isinstance(e, IsADirectoryError) or e.errno == errno.EISDIR:
            raise LexdrError(f"cannot write {path}: it is a folder, a file was expected (fix: name a file "
                             "inside it, or another path)") from None
        raise


def writable_target(path: str | Path, folder: bool) -> Path:
    """Check that ``path`` can become a file (``folder=False``) or a folder (``folder=True``) and create its
    parent folder; a clear :class:`LexdrError` otherwise (an existing file where a folder is wanted or the
    other way round, a parent that is a file, a read-only folder). Returns ``path`` as a :class:`Path`."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise LexdrError(f"{path} is a file, but a folder is to be written there (fix: name a new or existing "
                         "folder for the output, e.g. --out runs/x)")
    if not folder and path.is_dir():
        raise LexdrError(f"{path} is a folder, but a file is to be written there (fix: name a file, e.g. "
                         f"{path / 'out.txt'})")
    with _os_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise LexdrError(f"cannot write {path}: the folder {path.parent} is not writable (fix: choose an output "
                         "path in a folder you can write to, or change its permissions)")
    return path


# Names lexdr's own atomic helpers leave beside or inside a folder while they work.
_TEMP_NAMES = (".*.tmp", ".*.old")


def check_output_folder(path: str | Path, kind: str, expected: Iterable[str]) -> Path:
    """Refuse to write a ``kind`` output (e.g. ``"dense index"``) into a folder that holds anything else.

    ``expected``: the names (``fnmatch`` patterns) a folder of this kind holds, e.g. ``("index.faiss",
    "doc_ids.json", "config.json", "shards")``. A missing or empty folder, or one that holds only those names
    (an earlier or half-finished output of the same kind, which the caller may resume or replace), passes.
    A file, or a folder holding other files (another kind of index, a user's documents), is a
    :class:`LexdrError` naming a few of them and the fix: nothing a user did not ask lexdr to write is ever
    overwritten. Whether an output of the same kind may be *reused* (same corpus, same encoder) is the
    caller's to decide. Returns ``path`` as a :class:`Path`.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LexdrError(f"{path} is a file, not a folder; refusing to write a {kind} there (fix: choose a new "
                         "or empty folder for --out)")
    if not path.is_dir():
        return path
    patterns = (*expected, *_TEMP_NAMES)
    foreign = sorted(p.name for p in path.iterdir() if not any(fnmatch.fnmatch(p.name, pat) for pat in patterns))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise LexdrError(f"{path} holds files that are not part of a {kind} ({shown}); refusing to write into "
                         "it (fix: choose a new or empty folder for --out, or remove that folder)")
    return path


# What an index folder says it is: the ``kind`` field of its config.json.
SPARSE_INDEX = "sparse"
DENSE_INDEX = "dense"
# The names (fnmatch patterns) each kind of index folder holds: everything else in such a folder is not ours.
INDEX_FILES = {
    SPARSE_INDEX: ("config.json", "doc_ids.json", "doc_rank.npy", "*.index.npy", "*.index.json", "doc_ids.utf8",
                   "doc_ids.offsets.npy", "vocab.terms.utf8", "vocab.terms.offsets.npy", "vocab.ids.npy"),
    DENSE_INDEX: ("config.json", "doc_ids.json", "doc_ids.utf8", "doc_ids.offsets.npy", "index.faiss", "shards",
                  "tokens", "index_shards.json"),
}
_KIND_NAMES = {SPARSE_INDEX: "sparse (BM25) index", DENSE_INDEX: "dense index"}


def folder_kind(path: str | Path) -> str | None:
    """What a folder lexdr wrote says it is: its ``config.json``'s ``kind`` (:data:`SPARSE_INDEX`,
    :data:`DENSE_INDEX`). Index folders written before that field existed are told apart by what their
    config.json holds (``bm25``: sparse, ``encoder``: dense). None: no readable config.json, or nothing in it
    that names a kind (a model folder's config.json, a user's file)."""
    cfg = Path(path) / "config.json"
    try:
        meta = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    if isinstance(meta.get("kind"), str):
        return meta["kind"]
    if "bm25" in meta and "analyzer" in meta:
        return SPARSE_INDEX
    if "encoder" in meta and ("index_type" in meta or "files" in meta):
        return DENSE_INDEX
    return None


def claim_output_folder(path: str | Path, kind: str, overwrite: bool = False, in_place: bool = False) -> Path:
    """Check that a ``kind`` index (:data:`SPARSE_INDEX` or :data:`DENSE_INDEX`) may be written to ``path``.

    A new or empty folder, or an index of the same kind, passes (the caller resumes or replaces it). A folder
    holding an index of another kind is refused, naming ``--overwrite`` and another folder as the ways out;
    with ``overwrite`` it is replaced (emptied here first when the caller writes ``in_place``; an atomic
    writer replaces it only once the new index is complete). A folder holding files no lexdr index holds
    (a user's documents) is always refused (:func:`check_output_folder`): ``--overwrite`` replaces an index
    lexdr wrote, never anything else. Returns ``path`` as a :class:`Path`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LexdrError(f"{path} is a file, not a folder; refusing to write a {_KIND_NAMES.get(kind, kind)} "
                         "there (fix: choose a new or empty folder for --out)")
    if not path.is_dir():
        return writable_target(path, folder=True)  # its parent exists and can be written (or is a clear error)
    if not os.access(path, os.W_OK | os.X_OK):
        raise LexdrError(f"cannot write {path}: the folder is not writable (fix: choose an output folder you can "
                         "write to, or change its permissions)")
    if not any(path.iterdir()):
        return path
    found = folder_kind(path)
    if found is None or found == kind:
        return check_output_folder(path, _KIND_NAMES.get(kind, kind), INDEX_FILES[kind])
    what = _KIND_NAMES.get(found, f"{found!r} folder")
    if not overwrite:
        raise LexdrError(f"{path} holds a {what}, not a {_KIND_NAMES.get(kind, kind)}; refusing to replace it "
                         "(fix: choose another folder for --out, or add --overwrite to replace that index)")
    if found not in INDEX_FILES:
        raise LexdrError(f"{path} holds a {what}; --overwrite replaces only a lexdr index (fix: choose another "
                         "folder for --out)")
    check_output_folder(path, what, INDEX_FILES[found])  # only that index's own files: nothing else goes
    if in_place:
        shutil.rmtree(path)
    return path


def refuse_index_folder(out: str | Path, what: str, flag: str = "--out") -> None:
    """Refuse to write ``what`` (e.g. ``"mined examples"``) into a folder that holds an index: its files would be
    mixed into the index folder, which the index commands then refuse to touch."""
    kind = folder_kind(out)
    if kind is not None:
        raise LexdrError(f"{flag} {out} holds a {_KIND_NAMES.get(kind, kind)}; refusing to write {what} into it "
                         "(fix: choose another folder)")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def refuse_output_over_input(out: str | Path, inputs: Iterable[str | Path | None], flag: str = "--out") -> None:
    """Refuse an output path that is one of the command's inputs (the same file, whatever the spelling: a
    relative path, a symlink, a hard link): writing it would replace the input before, or while, it is read."""
    for given in inputs:
        if given is not None and _same_file(Path(out), Path(given)):
            raise LexdrError(f"{flag} {out} is also an input of this command ({given}); writing it would destroy "
                             "that input (fix: choose another output path)")


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str = "lexdr run") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (a ``.lock`` file in it, locked with ``flock``) while the block runs;
    a second process that asks for it fails at once with a :class:`LexdrError` naming the holder's process id.

    The kernel drops the lock when its holder exits, however it exits (a crash, ``kill -9``): a lock file left
    behind is never stale, and no one has to delete it. Yields the lock file's path."""
    import fcntl

    folder = Path(folder)
    with _os_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise LexdrError(f"{folder} is in use by another {what} (process {holder}); two runs in one folder "
                             "would redo and overwrite each other's work (fix: wait for it to finish, or give "
                             "this run another out_dir)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield folder / ".lock"
    finally:
        os.close(fd)  # closing the descriptor releases the lock
