"""Doc ids of an index held compactly: one UTF-8 blob and an int64 offset array (the dense index's and the BM25
index's ``doc_ids``).

A Python list of N id strings costs about 67 bytes a passage for Mr. TyDi-shaped ids (``<wiki id>#<n>``;
``benchmarks/results/scale_dense.md``): 2.1 GiB for English Mr. TyDi's 32.9M passages, on top of its index.
:class:`DocIds` costs the ids' UTF-8 bytes plus 8 bytes a passage (about 0.6 GiB there) and behaves as a
read-only sequence of ``str``: ``ids[i]``, ``len(ids)``, iteration, ``ids.count(x)``, equality with a list.

:class:`SeenIds` answers "was this id streamed before?" for a corpus read once (duplicate checks) in about 8 bytes
an id, where a ``set`` of the strings costs about 100.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import overload

import numpy as np

__all__ = ["DocIds", "SeenIds"]


class DocIds(Sequence[str]):
    """A read-only sequence of doc id strings stored as one UTF-8 blob + offsets (see the module doc)."""

    __slots__ = ("_blob", "_offsets")

    def __init__(self, ids: Iterable[str]):
        if isinstance(ids, DocIds):
            self._blob, self._offsets = ids._blob, ids._offsets
            return
        ids = ids if isinstance(ids, Sequence) else list(ids)
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)), out=offsets[1:])
        blob = "".join(ids).encode("utf-8")
        if len(blob) != offsets[-1]:  # not all ASCII: lengths in bytes, one id at a time
            encoded = [s.encode("utf-8") for s in ids]
            np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(ids)), out=offsets[1:])
            blob = b"".join(encoded)
        self._blob = blob
        self._offsets = offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        j = int(i)
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"doc id index {i} out of range for {n} ids")
        return self._blob[self._offsets[j]:self._offsets[j + 1]].decode("utf-8")

    def __iter__(self):
        blob, off = self._blob, self._offsets.tolist()
        for a, b in zip(off, off[1:]):
            yield blob[a:b].decode("utf-8")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DocIds):
            return self._blob == other._blob and np.array_equal(self._offsets, other._offsets)
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # mutable-looking sequences compare by value; not hashable, like list

    def __repr__(self) -> str:
        head = ", ".join(repr(x) for x in self[:3])
        return f"DocIds([{head}{', ...' if len(self) > 3 else ''}], n={len(self)})"

    @property
    def nbytes(self) -> int:
        """Bytes held: the blob and the offsets."""
        return len(self._blob) + self._offsets.nbytes

    def save(self, folder: Path, name: str) -> None:
        """Write ``name.utf8`` (the blob) and ``name.offsets.npy``: read back by :meth:`load` without a Python
        object per id (a JSON list of N ids costs about 70 bytes an id while it is parsed)."""
        from lexdr.formats.files import atomic_path  # here: lexdr.formats imports this module

        with atomic_path(folder / f"{name}.utf8") as tmp:
            tmp.write_bytes(self._blob)
        with atomic_path(folder / f"{name}.offsets.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, self._offsets, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, name: str) -> "DocIds | None":
        """What :meth:`save` wrote (None: not there). Raises ValueError when the two files do not agree."""
        blob_path, offsets_path = folder / f"{name}.utf8", folder / f"{name}.offsets.npy"
        if not (blob_path.is_file() and offsets_path.is_file()):
            return None
        offsets = np.load(offsets_path, allow_pickle=False)
        blob = blob_path.read_bytes()
        if (offsets.ndim != 1 or offsets.dtype != np.int64 or len(offsets) == 0 or offsets[0] != 0
                or offsets[-1] != len(blob) or bool(np.any(np.diff(offsets) < 0))):
            raise ValueError(f"{offsets_path.name} does not describe {blob_path.name} ({len(blob)} bytes)")
        out = cls.__new__(cls)
        out._blob, out._offsets = blob, offsets
        return out


class SeenIds:
    """The 64-bit hashes of the ids a stream has named, in a sorted ``uint64`` array (8 bytes an id) plus a set of
    the latest ``batch``, merged into the array each time it fills (a stable sort of two sorted runs: linear).

    :meth:`add` says whether the id's hash was named before. Two ids may share a hash (about N²/2⁶⁵: 3e-6 for 10M
    ids), so a hit is a *possible* duplicate that the caller confirms from its source (:func:`iter_corpus`
    re-reads the file up to that line). Hashes are Python's ``hash(str)``: salted per process, so nothing of
    this is ever stored.
    """

    __slots__ = ("_sorted", "_recent", "_batch")

    def __init__(self, batch: int = 1 << 16):
        self._sorted = np.zeros(0, dtype=np.uint64)
        self._recent: set[int] = set()
        self._batch = batch

    def add(self, doc_id: str) -> bool:
        """Record ``doc_id``; True when its hash was recorded before (a possible duplicate: confirm it)."""
        h = hash(doc_id) & 0xFFFF_FFFF_FFFF_FFFF
        if h in self._recent:
            return True
        if len(self._sorted):  # a uint64 scalar: a Python int under 2**63 would be int64, and searchsorted would
            # then cast the whole array to a common float type on every call
            i = int(self._sorted.searchsorted(np.uint64(h)))
            if i < len(self._sorted) and int(self._sorted[i]) == h:
                return True
        self._recent.add(h)
        if len(self._recent) >= self._batch:
            self._merge()
        return False

    def _merge(self) -> None:
        recent = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        recent.sort()
        merged = np.concatenate([self._sorted, recent])
        self._sorted = merged  # the old array freed before the sort's buffer is taken
        merged.sort(kind="stable")  # two sorted runs: timsort merges them in one pass
        self._recent.clear()

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    @property
    def nbytes(self) -> int:
        """About the bytes held: 8 an id in the array, about 50 for each of the set's latest ids."""
        return self._sorted.nbytes + 50 * len(self._recent)
