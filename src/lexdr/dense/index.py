"""FAISS indexes over passage embeddings, with string doc ids kept beside them.

Index types (``DenseIndexConfig.index_type``; bytes per passage at e5-small's 384 dimensions, without the
doc ids):

``auto`` (default)
    ``flat`` up to ``flat_max_passages`` passages (1M: 1.4 GiB of float32, exact, no training), ``ivf-sq8``
    up to ``sq8_max_passages`` (20M: 7.2 GiB; it lost <= 0.001 MRR@10 against flat in the benchmark), and
    ``ivfpq`` above, where only PQ codes fit (96 B a passage; it loses measurably more, see
    ``benchmarks/results/dense_index.md``, which has the measurements behind both thresholds).
``flat``
    Exact inner product (``IndexFlatIP``), 4·dim bytes (1,536 B). No training.
``hnsw``
    HNSW graph over the full vectors (``HNSW{hnsw_m},Flat``), 4·dim + ~8·hnsw_m bytes. No training; fast
    queries, slow to build, and no smaller than flat.
``hnsw-sq8``
    HNSW graph over 8-bit scalar-quantized vectors (``HNSW{hnsw_m},SQ8``), dim + ~8·hnsw_m bytes.
``ivf``
    Inverted lists over full vectors (``IVF{nlist},Flat``), 4·dim bytes; ``nprobe`` lists are scanned.
``ivf-sq8``
    Inverted lists over 8-bit scalar-quantized vectors (``IVF{nlist},SQ8``), dim bytes (4x smaller than flat).
``ivfpq``
    Inverted lists over product-quantized codes (``IVF{nlist},PQ{m}x8``; ``OPQ{m},IVF{nlist},PQ{m}x8`` with
    ``opq=True``, a learned rotation that costs far more training time): ``pq_bytes`` bytes (default
    dim/4 = 96 B, 16x smaller than flat). The Mr. TyDi-sized option. With ``rerank > 0`` the top
    k·rerank PQ candidates are re-scored from 8-bit scalar-quantized copies (``...,Refine(SQ8)``): dim more
    bytes a passage, most of PQ's ranking loss recovered.

Everything trained (``ivf``, ``ivfpq``, ``hnsw-sq8``) is trained on a seeded random sample of at most
``train_sample`` vectors, and vectors are added shard by shard: building never needs every vector as float32
in memory at once. ``nprobe`` / ``ef_search`` are recorded in ``config.json`` and can be changed at load.

Several indexes (e.g. corpus shards indexed separately) are searched together with
:class:`ShardedDenseIndex`, which merges their hits by score.
"""

from __future__ import annotations

import enum
import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from lexdr.doc_ids import DocIds
from lexdr.defaults import DEFAULT_DEPTH
from lexdr.errors import ConfigError, LexdrError
from lexdr.formats.files import (DENSE_INDEX, SPARSE_INDEX, atomic_path, atomic_write, claim_output_folder,
                                 file_sha256, folder_kind)
from lexdr.records import Hit, Run
from lexdr.settings import as_enums, at_least, fingerprint_fields, setting, valid_seed

__all__ = ["IndexType", "DenseIndexConfig", "DenseIndex", "ShardedDenseIndex", "open_dense_index",
           "merge_runs", "SEARCH_FIELDS"]

logger = logging.getLogger(__name__)

REBUILD_HINT = "rebuild it with `lexdr index dense` (or delete the folder and re-run the stage)"
SHARDS_FILE = "index_shards.json"
# DenseIndexConfig fields read at search time only: an index built with other values is reused (they are set on
# the loaded index).
SEARCH_FIELDS = ("nprobe", "ef_search")


class IndexType(str, enum.Enum):
    auto = "auto"
    flat = "flat"
    hnsw = "hnsw"
    hnsw_sq8 = "hnsw-sq8"
    ivf = "ivf"
    ivf_sq8 = "ivf-sq8"
    ivfpq = "ivfpq"


def count_distinct(ids: Sequence[str]) -> int:
    """``len(set(ids))`` without a set of every id (about 100 bytes a passage at once): ids whose hashes all
    differ are all distinct, the usual case of one row per passage; only ids with a repeated hash (a windowed
    index's repeated ids, or a hash collision) are counted with a set."""
    hashes = np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))
    if len(np.unique(hashes)) == len(hashes):
        return len(hashes)
    return len(set(ids))


@dataclass(frozen=True)
class DenseIndexConfig:
    """How a dense index is built and searched: the ``[dense.index]`` section of a run config.

    ``nprobe`` and ``ef_search`` (:data:`SEARCH_FIELDS`) are read at search time: changing them re-searches an
    index without rebuilding it. ``shard_size`` and ``keep_shards`` change no vector (not fingerprinted).
    """

    index_type: IndexType = setting(IndexType.auto, "auto (flat up to flat_max_passages, ivf-sq8 up to "
                                    "sq8_max_passages, ivfpq above) | flat | hnsw | hnsw-sq8 | ivf | ivf-sq8 | ivfpq.")
    flat_max_passages: int = setting(1_000_000, "auto: the largest corpus indexed exactly (flat: 1,536 B a passage).")
    sq8_max_passages: int = setting(20_000_000, "auto: the largest corpus indexed as ivf-sq8 (392 B a passage); "
                                                "ivfpq (PQ codes) above.")
    nlist: int | None = setting(None, "IVF lists; None: 4*sqrt(N) rounded to a power of two, at most N/39 and "
                                      "train_sample/39 (FAISS wants >= 39 training vectors per list).")
    pq_bytes: int | None = setting(None, "ivfpq code bytes per passage; None: dim/4 (96 for e5-small); must "
                                         "divide dim.")
    opq: bool = setting(False, "ivfpq: learn an OPQ rotation first (better codes, far longer training).")
    rerank: int = setting(0, "ivfpq: re-score the top k*rerank PQ hits from SQ8 copies (0 = off; +dim bytes a "
                             "passage, most of PQ's loss recovered).")
    nprobe: int | None = setting(None, "IVF lists scanned per query (search time: more = slower, closer to "
                                       "exact); none: nlist/8, at least 64 (64 of 4,096 lists recalled 0.59 of "
                                       "flat's top 100 at 1M proxy vectors, 512 recalled 0.91: scale_dense_proxy.md).")
    hnsw_m: int = setting(32, "HNSW links per vector (hnsw, hnsw-sq8).")
    ef_construction: int = setting(200, "HNSW beam while building.")
    ef_search: int = setting(128, "HNSW beam per query (search time).")
    train_sample: int = setting(262_144, "At most this many vectors (seeded random sample) train the quantizers "
                                         "(float32 in memory while training: 1.5 KB each at 384 dims).")
    seed: int = setting(0, "Seed of the training sample and of FAISS's k-means.")
    shard_size: int = setting(20_000, "Passages encoded per shard file (one shard's text and vectors are in memory "
                                      "at a time; a killed run resumes at the first missing shard).",
                              fingerprint=False)
    keep_shards: bool = setting(True, "Keep the encoded shards beside the index (disk: 2 B a dimension, 4 for "
                                      "flat), so another index_type, nlist or pq_bytes rebuilds the index without "
                                      "re-encoding the corpus.", fingerprint=False)

    def __post_init__(self) -> None:
        valid_seed(self)
        as_enums(self, ("index_type",))
        at_least(self, ("flat_max_passages", "sq8_max_passages", "hnsw_m", "ef_construction", "ef_search",
                        "train_sample", "shard_size"), 1)
        at_least(self, ("rerank",), 0, note=" (0 = off)")
        at_least(self, ("nlist", "pq_bytes", "nprobe"), 1, optional=True)

    def resolve(self, n: int) -> IndexType:
        """The index type that is built for ``n`` vectors (``auto`` decided)."""
        if self.index_type is not IndexType.auto:
            return self.index_type
        if n <= self.flat_max_passages:
            return IndexType.flat
        return IndexType.ivf_sq8 if n <= self.sq8_max_passages else IndexType.ivfpq

    def probes_for(self, nlist: int | None) -> int | None:
        """IVF lists to scan per query for an index of ``nlist`` lists: ``nprobe``, or nlist/8 (at least 64);
        None for an index without lists (``nlist`` None: flat, HNSW)."""
        if not nlist:
            return None
        return self.nprobe if self.nprobe is not None else max(64, int(nlist) // 8)

    def lists_for(self, n: int) -> int:
        if self.nlist is not None:
            return self.nlist
        target = 4 * math.sqrt(max(n, 1))
        nlist = 2 ** max(0, round(math.log2(target)))
        return max(1, min(nlist, n // 39, self.train_sample // 39))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["index_type"] = self.index_type.value
        return d

    def build_key(self) -> dict:
        """The settings an index's vectors depend on (not the search-time ones, not the execution options): an
        index recorded with the same key can be reused as it is."""
        keep = set(fingerprint_fields(DenseIndexConfig)) - set(SEARCH_FIELDS)
        return {k: v for k, v in self.to_dict().items() if k in keep}


def _faiss():
    import faiss

    return faiss


def _factory(kind: IndexType, dim: int, n: int, cfg: DenseIndexConfig) -> tuple[str, dict]:
    """The FAISS factory string for ``kind`` and what it was derived from (recorded in config.json)."""
    if kind is IndexType.flat:
        return "Flat", {}
    if kind is IndexType.hnsw:
        return f"HNSW{cfg.hnsw_m},Flat", {}
    if kind is IndexType.hnsw_sq8:
        return f"HNSW{cfg.hnsw_m},SQ8", {}
    nlist = cfg.lists_for(n)
    if kind is IndexType.ivf:
        return f"IVF{nlist},Flat", {"nlist": nlist}
    if kind is IndexType.ivf_sq8:
        return f"IVF{nlist},SQ8", {"nlist": nlist}
    m = cfg.pq_bytes or dim // 4
    if dim % m:
        raise ConfigError(f"pq_bytes={m} must divide the embedding dimension {dim} (e.g. {dim // 4} or {dim // 8})")
    prefix = f"OPQ{m}," if cfg.opq else ""
    suffix = ",Refine(SQ8)" if cfg.rerank else ""
    return f"{prefix}IVF{nlist},PQ{m}x8{suffix}", {"nlist": nlist, "pq_bytes": m, "rerank": cfg.rerank}


def _min_train(kind: IndexType, factory_params: dict) -> int:
    if kind is IndexType.ivf or kind is IndexType.ivf_sq8:
        return 39 * factory_params["nlist"]
    if kind is IndexType.ivfpq:
        return max(39 * factory_params["nlist"], 256)  # 2^8 centroids per PQ sub-quantizer
    return 1


def set_search_params(index, nprobe: int | None = None, ef_search: int | None = None,
                      rerank: int | None = None) -> None:
    """Set ``nprobe`` / ``efSearch`` / the re-rank factor on whatever FAISS index this is (through OPQ and
    refine wrappers too)."""
    faiss = _faiss()
    if isinstance(index, faiss.IndexRefine) and rerank:
        index.k_factor = float(rerank)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None and nprobe is not None:
        ivf.nprobe = min(nprobe, ivf.nlist)
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexPreTransform) else index
    if ef_search is not None and hasattr(inner, "hnsw"):
        inner.hnsw.efSearch = ef_search


def _as_float32(block: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(block, dtype=np.float32)


def _release_pages(block: object) -> None:
    """Drop a memory-mapped part's pages from this process once it is indexed (``MADV_DONTNEED``: a read-only
    file mapping loses nothing, the kernel reads the pages again if they are used). Without it every shard
    of a flat index stays resident beside the index's own copy of its vectors: 488 MiB more at the
    rehearsal's 1M passages x 128 dimensions."""
    import mmap

    while block is not None and not isinstance(block, np.memmap):  # through _AsFloat16 and views to the map
        inner = getattr(block, "_vectors", None)
        block = inner if inner is not None else getattr(block, "base", None)
    handle = getattr(block, "_mmap", None)
    if handle is not None and hasattr(handle, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        try:
            handle.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # a closed or foreign mapping: nothing to release
            pass


def _sample(parts: Sequence[np.ndarray], n: int, size: int, seed: int) -> np.ndarray:
    """``size`` rows drawn without replacement (seeded) across ``parts``, as float32; all rows if n <= size."""
    if n <= size:
        return np.concatenate([_as_float32(p) for p in parts], axis=0)
    rows = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    out, start = [], 0
    for p in parts:
        mine = rows[(rows >= start) & (rows < start + len(p))] - start
        if len(mine):
            out.append(_as_float32(p[mine]))
        start += len(p)
    return np.concatenate(out, axis=0)


class DenseIndex:
    """Doc ids + a FAISS inner-product index. Save/load as ``index.faiss`` + ``doc_ids.json`` (and its compact copy,
    ``doc_ids.utf8`` + ``doc_ids.offsets.npy``, which load reads) + ``config.json``."""

    kind = DENSE_INDEX  # what config.json records (lexdr.retrieval.index_kind)

    def __init__(self, index, doc_ids: list[str], meta: dict | None = None):
        if index.ntotal != len(doc_ids):
            raise LexdrError(f"FAISS index holds {index.ntotal} vectors but {len(doc_ids)} doc ids were given")
        self.index = index
        self.doc_ids = DocIds(doc_ids)  # compact: the ids' UTF-8 bytes + 8 bytes a passage (see DocIds)
        self.meta = dict(meta or {})

    @classmethod
    def build(cls, embeddings: np.ndarray, doc_ids: list[str], index_type: IndexType | str | None = None,
              meta: dict | None = None, config: DenseIndexConfig | None = None) -> "DenseIndex":
        """Index one in-memory array (float32 or float16). ``index_type`` overrides ``config.index_type``."""
        return cls.build_from_parts([embeddings], doc_ids, index_type, meta, config)

    @classmethod
    def build_from_parts(cls, parts: Sequence[np.ndarray], doc_ids: list[str],
                         index_type: IndexType | str | None = None, meta: dict | None = None,
                         config: DenseIndexConfig | None = None) -> "DenseIndex":
        """Index several arrays (e.g. float16 shards opened with ``np.load(..., mmap_mode="r")``) in order.

        A trained index is trained on a seeded sample first; then each part is converted to float32 and
        added on its own, so at most one part is ever held as float32 (plus the training sample).
        """
        cfg = config or DenseIndexConfig()
        if index_type is not None:
            cfg = replace(cfg, index_type=index_type)
        n = sum(len(p) for p in parts)
        if any(p.ndim != 2 for p in parts) or len({p.shape[1] for p in parts}) > 1 or n != len(doc_ids):
            shapes = [tuple(p.shape) for p in parts]
            raise LexdrError(f"embeddings of shapes {shapes} do not match {len(doc_ids)} doc ids")
        dim = parts[0].shape[1] if parts else 0
        kind = cfg.resolve(n)
        factory, params = _factory(kind, dim, n, cfg)
        need = _min_train(kind, params)
        if n < need:
            raise LexdrError(f"a {kind.value} index ({factory}) needs >= {need} passages to train; got {n}: "
                             "use index_type='flat' (or fewer IVF lists / smaller pq_bytes)")
        faiss = _faiss()
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        if kind is IndexType.hnsw or kind is IndexType.hnsw_sq8:
            faiss.downcast_index(index).hnsw.efConstruction = cfg.ef_construction
        train_rows = 0
        ivf = faiss.try_extract_index_ivf(index)
        ivf = faiss.downcast_index(ivf) if ivf is not None else None
        if ivf is not None and hasattr(ivf, "do_polysemous_training"):
            # index_factory turns on polysemous training for PQ8 codes: minutes of simulated annealing that
            # only the (unused) Hamming-threshold search mode benefits from.
            ivf.do_polysemous_training = False
        if not index.is_trained:
            sample = _sample(parts, n, cfg.train_sample, cfg.seed)
            train_rows = len(sample)
            _seed_clustering(index, cfg.seed)
            index.train(sample)
            del sample
        for p in parts:
            index.add(_as_float32(p))
            _release_pages(p)
        nprobe = cfg.probes_for(params.get("nlist"))
        set_search_params(index, nprobe, cfg.ef_search, cfg.rerank)
        record = {"index_type": kind.value, "requested_index_type": cfg.index_type.value, "factory": factory,
                  "dim": dim, "count": n, "train_rows": train_rows, "nprobe": nprobe,
                  "ef_search": cfg.ef_search, **params, "index_config": cfg.to_dict()}
        return cls(index, doc_ids, {**(meta or {}), **record})

    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change the speed/recall trade-off of a loaded index (recorded in ``meta``; saved with it)."""
        set_search_params(self.index, nprobe, ef_search)
        self.meta.update({k: v for k, v in {"nprobe": nprobe, "ef_search": ef_search}.items() if v is not None})

    def search_embeddings(self, query_emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self.doc_ids))
        q = np.ascontiguousarray(query_emb, dtype=np.float32)
        return self.index.search(q, k)

    def search_vectors(self, query_ids: list[str], query_emb: np.ndarray, k: int = DEFAULT_DEPTH) -> Run:
        """Each query's top ``k`` passages. A passage stored as several windows (its id repeated, see
        ``EncoderConfig.window_stride``) counts once, with its best window's score (MaxP): such an index is
        searched deeper, doubling, until every query has ``k`` distinct passages or the index is exhausted."""
        distinct = getattr(self, "_distinct_docs", None)
        if distinct is None:
            distinct = self._distinct_docs = count_distinct(self.doc_ids)
        windowed = distinct < len(self.doc_ids)
        k = min(k, distinct)
        todo = list(range(len(query_ids)))
        fetch = min(len(self.doc_ids), 2 * k) if windowed else k
        found: dict[int, list[Hit]] = {}
        while todo:
            scores, idx = self.search_embeddings(np.asarray(query_emb)[todo], fetch)
            short = []
            for row, row_s, row_i in zip(todo, scores, idx):
                best: dict[str, float] = {}
                for s, i in zip(row_s, row_i):
                    if i >= 0 and float(s) > best.get(self.doc_ids[i], -np.inf):
                        best[self.doc_ids[i]] = float(s)
                found[row] = sorted((Hit(d, s) for d, s in best.items()), key=lambda h: (-h.score, h.doc_id))[:k]
                if windowed and len(best) < k:
                    short.append(row)
            if not short or fetch >= len(self.doc_ids):
                break
            todo, fetch = short, min(len(self.doc_ids), 2 * fetch)
        return {query_ids[r]: found[r] for r in range(len(query_ids))}

    def _serialized_bytes(self) -> int | None:
        """About what ``index.faiss`` will take: the vectors' codes (FAISS's own code size per vector), plus
        the lists' ids for an inverted-list index; None where FAISS cannot say (e.g. HNSW's graph)."""
        try:
            per_vector = self.index.sa_code_size() + (8 if hasattr(self.index, "nlist") else 0)
        except RuntimeError:
            return None
        return int(self.index.ntotal * per_vector)

    def save(self, folder: str | Path) -> Path:
        """Write ``index.faiss``, ``doc_ids.json`` and ``config.json`` (``kind``: ``"dense"``) into
        ``folder``; a folder holding another kind of index, or files no index holds, is refused."""
        faiss = _faiss()
        folder = claim_output_folder(folder, DENSE_INDEX)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "index.faiss", needs=self._serialized_bytes()) as tmp:
            try:
                faiss.write_index(self.index, str(tmp))
            except RuntimeError:  # FAISS reports a failed write as a RuntimeError, without errno
                import errno
                import shutil

                if shutil.disk_usage(folder).free < 2 * max(1, tmp.stat().st_size if tmp.exists() else 0) + 2**20:
                    raise OSError(errno.ENOSPC, "No space left on device") from None
                raise
            files = {"index.faiss": {"bytes": tmp.stat().st_size, "sha256": file_sha256(tmp)}}
        with atomic_write(folder / "doc_ids.json") as fh:
            json.dump(list(self.doc_ids), fh, ensure_ascii=False)
        # the same ids as a blob and offsets: what load reads, without a Python str per id at once
        DocIds(self.doc_ids).save(folder, "doc_ids")
        for name in ("doc_ids.utf8", "doc_ids.offsets.npy"):
            files[name] = {"bytes": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
        # config.json last: its presence marks a complete index.
        with atomic_write(folder / "config.json") as fh:
            json.dump({**self.meta, "kind": self.kind, "files": files}, fh, ensure_ascii=False, indent=2)
        return folder

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = False, nprobe: int | None = None,
             ef_search: int | None = None) -> "DenseIndex":
        """Open a saved index; ``nprobe`` / ``ef_search`` override the recorded ones for this session.

        A missing, truncated or unreadable file is a :class:`LexdrError` that says to rebuild, not a
        FAISS traceback (sizes are checked here; :func:`verify_index_folder` also checks the SHA-256).
        """
        faiss = _faiss()
        folder = Path(folder)
        if folder_kind(folder) == SPARSE_INDEX:
            raise LexdrError(f"{folder} is a sparse (BM25) index, not a dense one (fix: search it with "
                             "`lexdr search sparse`, or build a dense index with `lexdr index dense`)")
        meta = _read_json(folder / "config.json", f"{folder} is not a complete lexdr dense index (no config.json)")
        for name, rec in (meta.get("files") or {}).items():
            path = folder / name
            size = path.stat().st_size if path.exists() else None
            if size != rec.get("bytes"):
                got = "missing" if size is None else f"{size} bytes"
                raise LexdrError(f"{path} is damaged ({got}, expected {rec.get('bytes')} bytes): {REBUILD_HINT}")
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        try:
            index = faiss.read_index(str(folder / "index.faiss"), flags)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise LexdrError(f"{folder / 'index.faiss'} cannot be read by FAISS ({first}): {REBUILD_HINT}") from None
        try:  # the blob and offsets, where the folder has them: no Python str per id at once
            doc_ids = DocIds.load(folder, "doc_ids")
        except (OSError, ValueError) as e:
            raise LexdrError(f"{folder}: its doc ids are damaged ({e}): {REBUILD_HINT}") from None
        if doc_ids is None:  # a folder written before them
            doc_ids = _read_json(folder / "doc_ids.json", f"{folder / 'doc_ids.json'} is missing")
            bad = next((d for d in doc_ids if not isinstance(d, str)), None) if isinstance(doc_ids, list) else None
            if bad is not None:
                raise LexdrError(f"{folder / 'doc_ids.json'} holds {bad!r}, not a doc id string: {REBUILD_HINT}")
        if not isinstance(doc_ids, (list, DocIds)) or index.ntotal != len(doc_ids):
            raise LexdrError(f"{folder}: index.faiss holds {index.ntotal} vectors but its doc ids list "
                             f"{len(doc_ids) if isinstance(doc_ids, (list, DocIds)) else 'no'} ids: {REBUILD_HINT}")
        meta.pop("files", None)
        meta.pop("kind", None)
        out = cls(index, doc_ids, meta)
        del doc_ids  # the list: only the compact copy stays
        set_search_params(index, meta.get("nprobe"), meta.get("ef_search"), meta.get("rerank"))
        if nprobe is not None or ef_search is not None:
            out.set_search_params(nprobe, ef_search)
        return out


def verify_index_folder(folder: str | Path) -> None:
    """Check every file a saved index records against its size and SHA-256 (a full read); LexdrError if not."""
    folder = Path(folder)
    meta = _read_json(folder / "config.json", f"{folder} is not a complete lexdr dense index (no config.json)")
    for name, rec in (meta.get("files") or {}).items():
        path = folder / name
        if not path.exists() or path.stat().st_size != rec.get("bytes") or file_sha256(path) != rec.get("sha256"):
            raise LexdrError(f"{path} does not match the size/SHA-256 recorded in config.json: {REBUILD_HINT}")


def _seed_clustering(index, seed: int) -> None:
    """FAISS k-means seeds are per object; set them so a rebuild from the same sample is the same index."""
    faiss = _faiss()
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.cp.seed = seed
        pq = getattr(faiss.downcast_index(ivf), "pq", None)
        if pq is not None:
            pq.cp.seed = seed
    if isinstance(index, faiss.IndexPreTransform):
        for i in range(index.chain.size()):
            vt = faiss.downcast_VectorTransform(index.chain.at(i))
            if hasattr(vt, "pq") and vt.pq is not None:
                vt.pq.cp.seed = seed


def _read_json(path: Path, missing: str):
    if not path.exists():
        raise LexdrError(f"{missing}: {REBUILD_HINT}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LexdrError(f"{path} is damaged ({e}): {REBUILD_HINT}") from None


def merge_runs(runs: Iterable[Run], k: int) -> Run:
    """Hits of several runs per query, best first (ties by doc id), a doc id kept once (its best score), top k."""
    merged: dict[str, dict[str, float]] = {}
    for run in runs:
        for qid, hits in run.items():
            best = merged.setdefault(qid, {})
            for h in hits:
                if h.doc_id not in best or h.score > best[h.doc_id]:
                    best[h.doc_id] = h.score
    return {qid: [Hit(d, s) for d, s in sorted(best.items(), key=lambda x: (-x[1], x[0]))[:k]]
            for qid, best in merged.items()}


class ShardedDenseIndex:
    """Several :class:`DenseIndex` (e.g. corpus shards indexed separately) searched as one.

    ``search`` asks every shard for its top ``k`` and merges by score (ties by doc id): for exact (flat)
    shards the result equals one flat index over all vectors. All shards must record the same encoder.
    A folder holding ``index_shards.json`` (``{"shards": ["part-0", ...]}``, paths relative to it) opens as
    one with :func:`open_dense_index`.
    """

    def __init__(self, shards: Sequence[DenseIndex]):
        if not shards:
            raise LexdrError("a sharded dense index needs at least one shard")
        encoders = {json.dumps(s.meta.get("encoder"), sort_keys=True) for s in shards}
        if len(encoders) > 1:
            raise LexdrError("the index shards were built with different encoders; queries can only be encoded "
                             "one way: rebuild the odd shards with the same model and prompts")
        self.shards = list(shards)
        self.meta = {"encoder": shards[0].meta.get("encoder"), "index_type": "sharded",
                     "shard_types": [s.meta.get("index_type") for s in shards]}

    @property
    def doc_ids(self) -> list[str]:
        return [d for s in self.shards for d in s.doc_ids]

    @classmethod
    def load(cls, folders: Sequence[str | Path], mmap: bool = False, nprobe: int | None = None,
             ef_search: int | None = None) -> "ShardedDenseIndex":
        return cls([DenseIndex.load(f, mmap=mmap, nprobe=nprobe, ef_search=ef_search) for f in folders])

    @staticmethod
    def write(folder: str | Path, shard_folders: Sequence[str | Path]) -> Path:
        """Write ``index_shards.json`` in ``folder`` naming the shard folders (stored relative to ``folder``)."""
        folder = Path(folder)
        rel = [str(Path(f).resolve().relative_to(folder.resolve())) if Path(f).resolve().is_relative_to(folder.resolve())
               else str(Path(f).resolve()) for f in shard_folders]
        with atomic_write(folder / SHARDS_FILE) as fh:
            json.dump({"kind": DenseIndex.kind, "shards": rel}, fh, indent=2)
        return folder

    def search_vectors(self, query_ids: list[str], query_emb: np.ndarray, k: int = DEFAULT_DEPTH) -> Run:
        return merge_runs((s.search_vectors(query_ids, query_emb, k) for s in self.shards), k)


def open_dense_index(folder: str | Path, mmap: bool = False, nprobe: int | None = None,
                     ef_search: int | None = None) -> DenseIndex | ShardedDenseIndex:
    """A dense index folder (``config.json``) or a sharded one (``index_shards.json``)."""
    folder = Path(folder)
    listing = folder / SHARDS_FILE
    if listing.exists() and not (folder / "config.json").exists():
        shards = _read_json(listing, f"{listing} is missing").get("shards") or []
        return ShardedDenseIndex.load([folder / s for s in shards], mmap=mmap, nprobe=nprobe, ef_search=ef_search)
    return DenseIndex.load(folder, mmap=mmap, nprobe=nprobe, ef_search=ef_search)
