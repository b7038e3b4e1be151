"""Dense retrieval's stages (files in, files out): :func:`dense_index_stage` (``lexdr index dense``) and
:func:`dense_stage` (the pipeline's: the index, then each query file's run), on the library calls
:func:`build_dense_index` and :func:`dense_search`.

Encoding is done in shards of ``shard_size`` passages, each saved under ``<out>/shards/`` as soon as it is
done: ``000000.npy`` (float16 vectors: half the disk of float32, and precise enough for ranking) and
``000000.json`` (its manifest: the doc id of every row, the encoder description, the ``.npy`` file's size and
SHA-256). A killed run resumes at the first shard that is not done. A shard is reused only when its manifest
names the same encoder and the same doc ids and its file still has the recorded size and SHA-256; a damaged
or foreign shard is re-encoded with a warning.

The index is then built from the shards without holding every vector as float32: a trained index type learns
from a seeded sample, and each shard is converted to float32 and added on its own.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from lexdr.dense.encoder import Encoder, EncoderConfig
from lexdr.dense.index import DenseIndex, DenseIndexConfig, IndexType
from lexdr.dense.retriever import DenseRetriever
from lexdr.defaults import DEFAULT_DEPTH
from lexdr.dense.token_ids import corpus_shards, ensure_token_ids
from lexdr.errors import LexdrError
from lexdr.executors import Executor
from lexdr.formats import read_queries, write_run
from lexdr.formats.files import (DENSE_INDEX, atomic_path, atomic_write, claim_output_folder, count_lines,
                                 file_digest, file_sha256)
from lexdr.records import Run

__all__ = ["EncodedShard", "ShardEncoder", "encode_corpus", "encode_missing_shards", "build_dense_index",
           "dense_search", "DenseConfig", "DenseIndexInputs", "dense_index_stage", "DenseInputs", "dense_stage"]

logger = logging.getLogger(__name__)

SHARD_DTYPE = np.float16


@dataclass(frozen=True)
class EncodedShard:
    """One encoded shard on disk: ``path`` (``.npy``, one row per id) and its doc ids. ``as_float16``: a float32
    shard reused where float16 was asked for (see :class:`_AsFloat16`)."""

    path: Path
    doc_ids: tuple[str, ...]
    as_float16: bool = False

    def open(self) -> "np.ndarray | _AsFloat16":
        """The vectors, memory-mapped: nothing is read until rows are used."""
        vectors = np.load(self.path, mmap_mode="r", allow_pickle=False)
        return _AsFloat16(vectors) if self.as_float16 else vectors


class _AsFloat16:
    """A memory-mapped float32 shard read as the float16 shard it stands for. A float16 shard is the encoder's
    float32 output cast to float16, so casting a stored float32 shard gives exactly the same values: an index
    type that wants float16 (every compressed one) reuses a flat index's float32 shards without re-encoding.
    Rows are cast as they are read (``build_from_parts`` reads a sample, then one shard at a time)."""

    def __init__(self, vectors: np.ndarray):
        self._vectors = vectors
        self.shape, self.ndim = vectors.shape, vectors.ndim

    def __len__(self) -> int:
        return len(self._vectors)

    def __getitem__(self, rows) -> np.ndarray:
        return np.asarray(self._vectors[rows]).astype(SHARD_DTYPE)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.asarray(self._vectors).astype(SHARD_DTYPE)
        return out if dtype is None else out.astype(dtype)


def _shard_paths(shard_dir: Path, no: int) -> tuple[Path, Path]:
    return shard_dir / f"{no:06d}.npy", shard_dir / f"{no:06d}.json"


def _window_rows(encoder: Encoder, doc_ids: list[str], texts: list[str]) -> tuple[list[str], list[str]]:
    """The rows a shard stores: one per passage, or, with ``window_stride`` set, one per window of a passage
    longer than ``max_seq_length`` tokens, each under its passage's id (the index scores a passage by its best
    window: MaxP, :meth:`DenseIndex.search_vectors`)."""
    if encoder.config.window_stride is None:
        return doc_ids, texts
    windows, owner = encoder.window_texts(texts)
    return [doc_ids[i] for i in owner], windows


def same_encoder(recorded: dict | None, recorded_identity: str | None, described: dict,
                 identity: str | None) -> bool:
    """Whether vectors recorded as made by ``recorded`` are this encoder's (``described``). A trained model is
    named by its training's fingerprint (``identity``, :attr:`Encoder.model_identity`), not by the folder it
    lies in: a run folder copied elsewhere (``cp -a``) holds the same model at another path."""
    if identity is not None and recorded_identity == identity:
        return ({k: v for k, v in (recorded or {}).items() if k != "model"}
                == {k: v for k, v in described.items() if k != "model"})
    return recorded == described


def _reusable(npy: Path, manifest_path: Path, doc_ids: list[str], encoder_description: dict,
              dtype: str = np.dtype(SHARD_DTYPE).name, identity: str | None = None) -> str | None:
    """The stored dtype when a shard on disk holds exactly these doc ids encoded by this encoder, undamaged, in
    ``dtype`` (or in float32 where float16 is asked for: cast exactly when read); else None. ``identity``: the
    trained model's fingerprint (see :func:`same_encoder`)."""
    if not manifest_path.exists():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        logger.warning("%s is damaged; re-encoding the shard", manifest_path)
        return None
    stored = manifest.get("dtype", dtype)
    castable = stored == "float32" and dtype == np.dtype(SHARD_DTYPE).name
    if manifest.get("doc_ids") != doc_ids or (stored != dtype and not castable):
        return None  # another corpus, shard size or precision: not this shard
    if not same_encoder(manifest.get("encoder"), manifest.get("model_identity"), encoder_description, identity):
        logger.warning("%s was encoded by another encoder (%s); re-encoding it", npy,
                       (manifest.get("encoder") or {}).get("model"))
        return None
    size = npy.stat().st_size if npy.exists() else None
    if size != manifest.get("bytes") or file_sha256(npy) != manifest.get("sha256"):
        logger.warning("%s is damaged (%s bytes, recorded %s, or its SHA-256 differs); re-encoding the shard",
                       npy, size, manifest.get("bytes"))
        return None
    return stored


def _write_shard(encoder: Encoder, shard_dir: Path, no: int, doc_ids: list[str], texts: list[str],
                 described: dict, dtype: Any, identity: str | None = None) -> None:
    """Encode one shard's texts and write ``NNNNNN.npy``, then its manifest (whose presence marks the shard done)."""
    _save_shard(shard_dir, no, doc_ids, lambda: encoder.encode_passages(texts), described, dtype, identity)


def _save_shard(shard_dir: Path, no: int, doc_ids: list[str], embed: Callable[[], np.ndarray], described: dict,
                dtype: Any, identity: str | None = None) -> None:
    npy, manifest_path = _shard_paths(shard_dir, no)
    manifest_path.unlink(missing_ok=True)  # no stale manifest may vouch for the new file
    emb = embed().astype(dtype)
    with atomic_path(npy) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, emb, allow_pickle=False)
        record = {"doc_ids": list(doc_ids), "encoder": described, "model_identity": identity, "dtype": str(emb.dtype),
                  "shape": list(emb.shape), "bytes": tmp.stat().st_size, "sha256": file_sha256(tmp)}
    with atomic_write(manifest_path) as fh:
        json.dump(record, fh, ensure_ascii=False)


class ShardEncoder:
    """The stateful per-shard worker an executor runs (a Ray Data actor: one per GPU): holds one encoder and
    writes each shard row it is given (``shard``, ``doc_ids``, ``texts``) exactly as :func:`encode_corpus` does."""

    def __init__(self, config: EncoderConfig, shard_dir: str, described: dict, dtype: str,
                 identity: str | None = None):
        self.encoder = Encoder(config)
        self.identity = identity
        if self.encoder.describe() != described:
            raise LexdrError(f"the encoder built on this worker ({self.encoder.describe()}) differs from the "
                             f"driver's ({described}); is the same model folder visible at the same path here?")
        self.shard_dir, self.described, self.dtype = Path(shard_dir), described, np.dtype(dtype)

    def __call__(self, batch: Mapping[str, Any]) -> dict:
        for no, ids, texts in zip(batch["shard"], batch["doc_ids"], batch["texts"]):
            _write_shard(self.encoder, self.shard_dir, int(no), [str(x) for x in ids], [str(t) for t in texts],
                         self.described, self.dtype, self.identity)
        return {"shard": np.asarray([int(no) for no in batch["shard"]], dtype=np.int64)}


def encode_missing_shards(corpus_path: str | Path, encoder: Encoder, work_dir: str | Path, executor: Executor,
                          shard_size: int = 20_000, dtype: Any = np.float32) -> list[int]:
    """Encode, on ``executor``'s actors (:class:`ShardEncoder`, ``[cluster] encode_*`` resources), the shards
    of ``corpus_path`` that are not already done under ``work_dir/shards``; returns their numbers. The shard
    files are those :func:`encode_corpus` writes, which then finds every shard done."""
    shard_dir = Path(work_dir) / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    described = encoder.describe()
    name = np.dtype(dtype).name
    windowed = ((no, *_window_rows(encoder, ids, texts)) for no, ids, texts in corpus_shards(corpus_path, shard_size))
    rows = ({"shard": no, "doc_ids": ids, "texts": texts} for no, ids, texts in windowed
            if _reusable(*_shard_paths(shard_dir, no), ids, described, name, encoder.model_identity) is None)
    c = executor.cluster
    done = [int(r["shard"]) for r in executor.map_actors(
        ShardEncoder, rows, ctor_args=(encoder.config, str(shard_dir), described, name, encoder.model_identity),
        actors=c.encode_actors,
        num_cpus=c.encode_num_cpus, num_gpus=c.encode_num_gpus)]
    logger.info("encoded %d shard(s) on the executor: %s", len(done), sorted(done)[:20])
    return sorted(done)


def encode_corpus(corpus_path: str | Path, encoder: Encoder, work_dir: str | Path,
                  shard_size: int = 20_000, dtype: Any = np.float32,
                  executor: Executor | None = None, token_dir: str | Path | None = None,
                  corpus_sha256: str | None = None) -> list[EncodedShard]:
    """Embed every passage of ``corpus_path`` into ``dtype`` shards under ``work_dir/shards`` (float32: exact;
    :func:`build_dense_index` asks for float16 when it builds a compressed index), reusing the shards already
    there that check out (same ids, encoder, precision and checksum); returns the shards in corpus order.

    Passages are encoded from their token ids (:mod:`lexdr.dense.token_ids`), tokenized once per corpus into
    ``token_dir`` (default ``work_dir/tokens``) and shared by every encoder with the same tokenizer, length and
    passage prompt that is given the same ``token_dir``; with ``window_stride`` set (or a model that is not a
    Hugging Face transformer: :attr:`Encoder.reads_token_ids`), from the text.
    With a distributed ``executor`` the missing shards are first encoded there (:func:`encode_missing_shards`,
    from text)."""
    shard_dir = Path(work_dir) / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    described = encoder.describe()
    if executor is not None and executor.distributed:
        encode_missing_shards(corpus_path, encoder, work_dir, executor, shard_size=shard_size, dtype=dtype)
    else:
        executor = None
    name = np.dtype(dtype).name

    def add(no: int, row_ids: list[str], embed: Callable[[], np.ndarray]) -> None:
        npy, manifest_path = _shard_paths(shard_dir, no)
        stored = _reusable(npy, manifest_path, row_ids, described, name, encoder.model_identity)
        if stored is not None:
            logger.info("shard %d: reused %d embeddings (%s)", no, len(row_ids), stored)
        else:
            if executor is not None:
                logger.warning("shard %d was not written by the executor; encoding it here", no)
            _save_shard(shard_dir, no, row_ids, embed, described, dtype, encoder.model_identity)
        shards.append(EncodedShard(npy, tuple(row_ids), as_float16=stored is not None and stored != name))

    shards: list[EncodedShard] = []
    if encoder.reads_token_ids:
        token_shards = ensure_token_ids(corpus_path, encoder.passage_tokenizer(),
                                        token_dir if token_dir is not None else Path(work_dir) / "tokens",
                                        shard_size=shard_size, corpus_sha256=corpus_sha256)
        for ts in token_shards:
            add(ts.no, list(ts.doc_ids), lambda ts=ts: encoder.encode_passage_ids(*ts.open()))
        return shards
    for no, ids, texts in corpus_shards(corpus_path, shard_size):
        row_ids, row_texts = _window_rows(encoder, ids, texts)
        add(no, row_ids, lambda row_texts=row_texts: encoder.encode_passages(row_texts))
    return shards


def build_dense_index(corpus_path: str | Path, out_dir: str | Path, encoder_config: EncoderConfig | None = None,
                      index_type: IndexType | str | None = None, shard_size: int | None = None,
                      encoder: Encoder | None = None, index_config: DenseIndexConfig | None = None,
                      keep_shards: bool = False, executor: Executor | None = None, overwrite: bool = False,
                      token_dir: str | Path | None = None, corpus_sha256: str | None = None) -> Path:
    """Encode ``corpus_path`` and write a FAISS index folder to ``out_dir``.

    ``index_config`` says which index and how it is trained and searched (default: ``auto``: exact flat up
    to ``flat_max_passages`` passages, ivf-sq8, then IVF-PQ); ``index_type`` / ``shard_size`` override its
    fields. ``keep_shards`` keeps the encoded shards in ``out_dir/shards`` (the pipeline's dense stage keeps
    them when ``index_config.keep_shards``: another index type then builds without re-encoding).
    A folder holding a sparse index is refused before any work unless ``overwrite`` (then it is removed
    first); one holding files no index holds, always (:func:`lexdr.formats.files.claim_output_folder`).
    ``token_dir``: where the corpus's token ids are kept for the next encoder with the same tokenizer (the
    pipeline: ``<run>/<label>/tokens``, shared by every dense stage of the language); None: in
    ``out_dir/tokens``, removed once the index is built.
    """
    out = claim_output_folder(out_dir, DENSE_INDEX, overwrite=overwrite, in_place=True)
    encoder = encoder or Encoder(encoder_config or EncoderConfig())
    cfg = index_config or DenseIndexConfig()
    if index_type is not None:
        cfg = replace(cfg, index_type=index_type)
    if shard_size is not None:
        cfg = replace(cfg, shard_size=shard_size)
    # An exact (flat) index keeps exact float32 vectors, so its scores do not depend on how it was built;
    # compressed indexes lose more than float16 rounding anyway, and their shards take half the disk.
    n = count_lines(corpus_path) if cfg.index_type is IndexType.auto else None  # passages, without parsing them
    exact = cfg.resolve(n) is IndexType.flat if n is not None else cfg.index_type is IndexType.flat
    shards = encode_corpus(corpus_path, encoder, out, shard_size=cfg.shard_size,
                           dtype=np.float32 if exact else SHARD_DTYPE, executor=executor,
                           token_dir=token_dir, corpus_sha256=corpus_sha256)
    doc_ids = [d for s in shards for d in s.doc_ids]
    index = DenseIndex.build_from_parts([s.open() for s in shards], doc_ids, meta={
        "encoder": encoder.describe(), "corpus": str(Path(corpus_path).resolve())}, config=cfg)
    index.save(out)
    if not keep_shards:  # the shards were a resume aid; the index now holds the vectors
        shutil.rmtree(out / "shards")
    if token_dir is None:  # the index's own token ids: a resume aid too
        shutil.rmtree(out / "tokens", ignore_errors=True)
    return out


def dense_search(index_dir: str | Path, queries_path: str | Path, out_run: str | Path | None = None,
                 k: int = DEFAULT_DEPTH, encoder: Encoder | None = None) -> Run:
    """Search a dense index with the queries in ``queries_path``; writes a TREC run when ``out_run`` is given."""
    run = DenseRetriever.load(index_dir, encoder=encoder).search(read_queries(queries_path), k)
    if out_run is not None:
        write_run(run, out_run, tag=DenseRetriever.run_tag)
    return run


def _reusable_dense_index(folder: Path, encoder_description: dict, provenance: dict,
                          index_config: DenseIndexConfig) -> DenseIndex | None:
    """An index already built from the same corpus content with the same encoder and index settings (search-time
    ones aside: they are set on the loaded index), or None.

    A stage re-runs when anything it depends on changes (e.g. the number of unlabeled queries), but
    re-encoding an unchanged corpus is the most expensive thing the pipeline does: reuse it when its
    recorded provenance (corpus digest, trained model's fingerprint) and encoder description match exactly.
    """
    cfg_path = folder / "config.json"
    if not cfg_path.exists():
        return None
    meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    recorded = {k: v for k, v in (meta.get("encoder") or {}).items() if k != "show_progress"}
    identity = provenance.get("model_fingerprint")
    if any(meta.get(k) != v for k, v in provenance.items()) or \
            not same_encoder(recorded, identity, encoder_description, identity):  # provenance: same training
        return None
    # Indexes built before [dense.index] existed record no settings: they were built with the defaults.
    built_with = DenseIndexConfig(**{k: v for k, v in (meta.get("index_config") or {}).items()
                                     if k in DenseIndexConfig.__dataclass_fields__})
    if built_with.build_key() != index_config.build_key():
        logger.info("the dense index in %s was built with other index settings; rebuilding it", folder)
        return None
    logger.info("reusing the dense index in %s (same corpus, encoder and index settings)", folder)
    return DenseIndex.load(folder, nprobe=index_config.probes_for(meta.get("nlist")), ef_search=index_config.ef_search)


def _record_provenance(folder: Path, provenance: dict) -> None:
    cfg_path = folder / "config.json"
    meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    meta.update(provenance)
    with atomic_write(cfg_path) as fh:
        json.dump(meta, fh, ensure_ascii=False, indent=2)


@dataclass(frozen=True)
class DenseConfig:
    """How the dense stages encode, index and search: the ``[dense]`` encoder, ``[dense.index]``, the run's
    depth (hits per query) and the runs' TREC tag."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    index: DenseIndexConfig = field(default_factory=DenseIndexConfig)
    depth: int = DEFAULT_DEPTH
    tag: str = "dense"


@dataclass(frozen=True)
class DenseIndexInputs:
    """What :func:`dense_index_stage` reads: the corpus; ``token_dir``, where its token ids are kept for every
    encoder with the same tokenizer (None: inside the index folder, removed once it is built);
    ``model_fingerprint``, the training stage's fingerprint of a trained model (its folder path stays the same
    when it is retrained, and a copied run folder holds it at another path: the index is tied to this)."""

    corpus: Path
    token_dir: Path | None = None
    model_fingerprint: str | None = None


def _index(inputs: DenseIndexInputs, config: DenseConfig, out: Path, executor: Executor) -> DenseRetriever:
    """The body of :func:`dense_index_stage`; returns the retriever (encoder and index) it built or reused."""
    encoder = Encoder(config.encoder)
    prov = {"corpus_sha256": file_digest(inputs.corpus), "model_fingerprint": inputs.model_fingerprint}
    encoder.model_identity = inputs.model_fingerprint
    index = _reusable_dense_index(out, encoder.describe(), prov, config.index)
    if index is None:
        build_dense_index(inputs.corpus, out, encoder=encoder, index_config=config.index,
                          keep_shards=config.index.keep_shards, executor=executor, token_dir=inputs.token_dir,
                          corpus_sha256=prov["corpus_sha256"])
        _record_provenance(out, prov)
        index = DenseIndex.load(out)
    else:  # the folder records the search-time settings its runs were made with, and where its model is now
        _record_provenance(out, {"nprobe": index.meta.get("nprobe"), "ef_search": config.index.ef_search,
                                 "encoder": encoder.describe()})
    return DenseRetriever(encoder, index)


def dense_index_stage(inputs: DenseIndexInputs, config: DenseConfig, out_dir: str | Path,
                      executor: Executor) -> dict:
    """Encode a corpus and index it with FAISS: the stage of ``lexdr index dense`` and the index half of
    :func:`dense_stage`.

    =======================  ======  ================================================================
    file                     r / w   format
    =======================  ======  ================================================================
    ``inputs.corpus``        read    corpus JSONL (BEIR, Mr. TyDi / Pyserini; ``.gz`` too)
    ``inputs.token_dir/``    r / w   the corpus's token ids (``.npy`` shards + manifests), written once
    ``out_dir/``             write   a dense index folder: ``config.json`` (``kind = "dense"``, the
                                     encoder, index settings, ``corpus_sha256``, ``model_fingerprint``),
                                     the FAISS index, doc ids; ``shards/`` (float vectors ``.npy`` +
                                     JSON manifests) when ``config.index.keep_shards``
    =======================  ======  ================================================================

    An index already in ``out_dir`` built from the same corpus content by the same encoder and index settings
    is reused (search-time settings are applied to it); a killed build resumes from its shards. On a
    distributed ``executor`` the missing shards are encoded on its actors."""
    _index(inputs, config, Path(out_dir), executor)
    return {"model": config.encoder.model}


@dataclass(frozen=True)
class DenseInputs:
    """What :func:`dense_stage` reads: :class:`DenseIndexInputs`' files plus the query files to search (part
    name -> path)."""

    corpus: Path
    queries: Mapping[str, Path] = field(default_factory=dict)
    token_dir: Path | None = None
    model_fingerprint: str | None = None


def dense_stage(inputs: DenseInputs, config: DenseConfig, out_dir: str | Path, executor: Executor) -> dict:
    """The pipeline's dense stage: :func:`dense_index_stage` into ``out_dir/index``, then
    :func:`lexdr.retrieval.search_stage`'s search of each query file with that encoder, ``config.depth`` deep.

    ==========================  ======  =========================================================
    file                        r / w   format
    ==========================  ======  =========================================================
    ``inputs.corpus``           read    corpus JSONL
    each of ``inputs.queries``  read    topics TSV or BEIR ``queries.jsonl``
    ``out_dir/index/``          write   the dense index folder (:func:`dense_index_stage`)
    ``out_dir/run.<part>.trec`` write   a TREC run per query file, tagged ``config.tag``
    ==========================  ======  =========================================================
    """
    from lexdr.retrieval import SearchConfig, write_runs

    out = Path(out_dir)
    retriever = _index(DenseIndexInputs(inputs.corpus, inputs.token_dir, inputs.model_fingerprint), config,
                       out / "index", executor)
    write_runs(retriever, out / "index", {f"run.{part}.trec": Path(p) for part, p in inputs.queries.items()},
               SearchConfig(depth=config.depth, tag=config.tag), out, executor)
    return {"model": config.encoder.model}
