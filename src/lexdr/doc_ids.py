"""Doc ids of an index held compactly: one UTF-8 blob and an int64 offset array (the dense index's and the BM25
index's ``doc_ids``).

A Python list of N id strings costs about 67 bytes a passage for Mr. TyDi-shaped ids (``<wiki id>#<n>``;
``benchmarks/results/scale_dense.md``): 2.1 GiB for English Mr. TyDi's 32.9M passages, on top of its index.
:class:`DocIds` costs the ids' UTF-8 bytes plus 8 bytes a passage (about 0.6 GiB there) and behaves as a
read-only sequence of ``str``: ``ids[i]``, ``len(ids)``, iteration, ``ids.count(x)``, equality with a list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import overload

import numpy as np

__all__ = ["DocIds"]


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
