"""The ``trained`` generation backend (LoRA on a tiny random Gemma-3), the copy/question measures, bootstrap."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from lexdr.errors import ConfigError, LexdrError  # noqa: E402
from lexdr.formats import write_corpus_jsonl  # noqa: E402
from lexdr.generation import GenerationConfig, generate_queries  # noqa: E402
from lexdr.generation.bootstrap import BootstrapSource, pick_bootstrap_source  # noqa: E402
from lexdr.generation.config import TrainedGeneratorConfig  # noqa: E402
from lexdr.generation.quality import copy_ratio, is_question  # noqa: E402
from lexdr.generation.trained import (LangExample, load_trained_generator, model_identity,  # noqa: E402
                                      train_on_examples, train_query_generator)
from lexdr.records import Doc  # noqa: E402

WORDS = ["paris", "tokyo", "cat", "dog", "river", "capital", "france", "japan", "nile", "africa", "mat", "python"]


def _tiny_gemma(out: Path) -> Path:
    """A 2-layer Gemma-3 (hidden 32) with random weights and a 400-word WordPiece tokenizer."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from fixtures.tiny_models import build_tokenizer

    tok = build_tokenizer(out)
    tok.bos_token, tok.eos_token = "[CLS]", "[SEP]"
    tok.save_pretrained(out)
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=256,
                           sliding_window=64, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id, initializer_range=0.3)
    # (0.3, not 0.02: with tied embeddings of norm ~0.1 the logits could barely move and nothing is learnable)
    Gemma3ForCausalLM(cfg).save_pretrained(out)
    return out


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: a 30k-parameter model gains nothing from more, and on a shared, loaded machine
    two spinning threads make each step ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory) -> Path:
    return _tiny_gemma(tmp_path_factory.mktemp("tiny-gemma"))


def _toy_examples(n: int = 24) -> list[LangExample]:
    """The query is the passage's second word: a task a tiny model learns in a few dozen steps."""
    out = []
    for i in range(n):
        words = [WORDS[(i * 5 + j * 7) % len(WORDS)] for j in range(5)]
        out.append(LangExample("de" if i % 2 else "ja", " ".join(words), words[1]))
    return out


def _cfg(base: Path, **kw) -> TrainedGeneratorConfig:
    settings = dict(base_model=str(base), lora_r=4, lora_alpha=8, lora_dropout=0.1, learning_rate=5e-3,
                    batch_size=4, max_length=32, max_query_tokens=8, min_pairs=4, checkpoint_every=2,
                    show_progress=False, device="cpu", target_modules=("q_proj", "v_proj", "up_proj", "down_proj"))
    settings.update(kw)
    return TrainedGeneratorConfig(**settings)


def _adapter(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def _losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_lora_training_loss_decreases(tiny_gemma, tmp_path):
    final = train_on_examples(_toy_examples(), tmp_path / "gen", _cfg(tiny_gemma, max_steps=40, lora_r=8,
                                                                     lora_alpha=16, learning_rate=2e-2))
    losses = _losses(tmp_path / "gen")
    assert len(losses) == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.6 * first, (first, last)
    info = json.loads((final / "lexdr_generator.json").read_text())
    assert info["languages"] == {"de": 12, "ja": 12} and info["steps"] == 40
    # Loadable without lexdr: a peft adapter in safetensors over the recorded base folder.
    from peft import AutoPeftModelForCausalLM

    assert json.loads((final / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_gemma)
    AutoPeftModelForCausalLM.from_pretrained(str(final))
    assert not (tmp_path / "gen" / "checkpoint").exists()


def test_resume_equals_uninterrupted_run(tiny_gemma, tmp_path):
    cfg = _cfg(tiny_gemma, max_steps=7)
    examples = _toy_examples()
    whole = train_on_examples(examples, tmp_path / "whole", cfg)
    ckpt = train_on_examples(examples, tmp_path / "killed", cfg, stop_after_steps=3)
    assert ckpt.name == "checkpoint" and json.loads((ckpt / "state.json").read_text())["step"] == 2
    resumed = train_on_examples(examples, tmp_path / "killed", cfg)
    a, b = _adapter(whole), _adapter(resumed)
    assert a.keys() == b.keys() and len(a) > 0
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    assert _losses(tmp_path / "whole") == pytest.approx(_losses(tmp_path / "killed"), abs=1e-6)
    # A finished model of the same training is reused, not retrained.
    before = (resumed / "adapter_model.safetensors").stat().st_mtime_ns
    train_on_examples(examples, tmp_path / "killed", cfg)
    assert (resumed / "adapter_model.safetensors").stat().st_mtime_ns == before


def test_checkpoint_of_another_config_or_data_is_not_resumed(tiny_gemma, tmp_path, caplog):
    examples = _toy_examples()
    train_on_examples(examples, tmp_path / "run", _cfg(tiny_gemma, max_steps=6), stop_after_steps=3)
    other = _cfg(tiny_gemma, max_steps=6, learning_rate=1e-3)
    with caplog.at_level(logging.WARNING, logger="lexdr"):
        got = train_on_examples(examples, tmp_path / "run", other)
    assert any("belongs to another config or data; starting over" in r.getMessage() for r in caplog.records)
    fresh = train_on_examples(examples, tmp_path / "fresh", other)
    for key, value in _adapter(fresh).items():
        torch.testing.assert_close(_adapter(got)[key], value, rtol=0, atol=1e-6)
    # Other pairs, same config: not resumed either.
    train_on_examples(examples, tmp_path / "run2", _cfg(tiny_gemma, max_steps=6), stop_after_steps=3)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lexdr"):
        train_on_examples(examples[:-2], tmp_path / "run2", _cfg(tiny_gemma, max_steps=6))
    assert any("starting over" in r.getMessage() for r in caplog.records)


def test_too_few_pairs_is_a_clear_error(tiny_gemma, tmp_path):
    with pytest.raises(LexdrError, match="min_pairs"):
        train_on_examples(_toy_examples(3), tmp_path / "gen", _cfg(tiny_gemma))


@pytest.fixture(scope="module")
def trained_folder(tiny_gemma, tmp_path_factory) -> Path:
    return train_on_examples(_toy_examples(), tmp_path_factory.mktemp("trained"), _cfg(tiny_gemma, max_steps=4))


def test_batched_generation_returns_n_queries_per_passage(trained_folder):
    passages = ["paris is the capital of france", "the cat sat on the mat", "tokyo", "a dog barked at the mailman",
                "the nile is a river in africa"]
    gen = load_trained_generator(trained_folder, GenerationConfig(backend="trained", model=str(trained_folder),
                                                                  n_per_passage=3, do_sample=True,
                                                                  max_new_tokens=6, device="cpu"))
    out = gen.generate(passages, "de")
    assert len(out) == len(passages) and all(len(qs) == 3 and all(isinstance(q, str) for q in qs) for qs in out)
    assert gen.generate(passages, "de") == out  # seeded sampling


def test_left_padded_batch_generates_what_each_passage_alone_does(trained_folder):
    gen = load_trained_generator(trained_folder, GenerationConfig(backend="trained", model=str(trained_folder),
                                                                  max_new_tokens=5, device="cpu"))
    passages = ["tokyo", "paris is the capital of france and the nile is a river in africa"]
    assert gen.generate(passages, "ja") == [gen.generate([p], "ja")[0] for p in passages]


def _corpus(tmp_path: Path) -> tuple[Path, Path]:
    docs = [Doc(f"d{i}", " ".join(WORDS[(i * 3 + j) % len(WORDS)] for j in range(6))) for i in range(10)]
    corpus = tmp_path / "corpus.jsonl"
    write_corpus_jsonl(docs, corpus)
    pairs = tmp_path / "mined.jsonl"
    pairs.write_text("".join(json.dumps({"query_id": f"q{i}", "query": docs[i].text.split()[1],
                                         "positive_ids": [f"d{i}"], "lang": "de"}) + "\n" for i in range(5)))
    return corpus, pairs


class _Counting:
    def __init__(self, inner):
        self.inner, self.name, self.seen = inner, inner.name, []

    def generate(self, passages, lang=None):
        self.seen.extend(passages)
        return self.inner.generate(passages, lang)


def test_stage_trains_generates_shards_and_resumes(tiny_gemma, tmp_path):
    corpus, pairs = _corpus(tmp_path)
    cfg = GenerationConfig(backend="trained", shard_size=2, batch_size=2, n_per_passage=2, do_sample=True,
                           max_new_tokens=4, top_k=None, show_progress=False, device="cpu",
                           trained=_cfg(tiny_gemma, max_steps=3, min_pairs=2))
    out = generate_queries(corpus, pairs, tmp_path / "gen", "de", cfg)
    assert (out / "work" / "generator" / "model" / "lexdr_generator.json").is_file()  # trained in the stage
    shards = sorted((out / "shards").glob("0*.jsonl"))
    assert len(shards) == 3  # 5 unreached passages, 2 per shard
    rows = [json.loads(line) for line in (out / "generated.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all({"copy_ratio", "question"} <= r.keys() for r in rows)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["generated"] == 10 and "question_share" in stats and "mean_copy_ratio" in stats

    first = [json.loads(line) for line in shards[1].read_text().splitlines()]
    shards[1].unlink()
    folder = out / "work" / "generator" / "model"
    spy = _Counting(load_trained_generator(folder, GenerationConfig(backend="trained", model=str(folder),
                                                                    n_per_passage=2, do_sample=True,
                                                                    max_new_tokens=4, device="cpu")))
    generate_queries(corpus, pairs, tmp_path / "gen", "de", cfg, generator=spy)
    assert len(spy.seen) == 2  # only the missing shard's passages
    again = [json.loads(line) for line in shards[1].read_text().splitlines()]
    assert [r["doc_id"] for r in again] == [r["doc_id"] for r in first]


def test_train_query_generator_reads_every_language_file(tiny_gemma, tmp_path):
    corpus, pairs = _corpus(tmp_path)
    with pytest.raises(ConfigError, match="no corpus file"):
        train_query_generator({"de": pairs, "ja": pairs}, {"de": corpus}, tmp_path / "g", _cfg(tiny_gemma))
    es_pairs = tmp_path / "es.jsonl"  # the same pairs without a "lang" field (pairs of "de" are not used for "es")
    es_pairs.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "lang"}) + "\n"
                                for line in pairs.read_text().splitlines()))
    final = train_query_generator({"de": pairs, "es": es_pairs}, {"de": corpus, "es": corpus}, tmp_path / "g",
                                  _cfg(tiny_gemma, max_steps=2, max_pairs_per_lang=3))
    assert json.loads((final / "lexdr_generator.json").read_text())["languages"] == {"de": 3, "es": 3}


def test_trained_backend_fingerprint_follows_the_model_folder(trained_folder, tmp_path):
    cfg = GenerationConfig(backend="trained", model=str(trained_folder))
    assert model_identity(trained_folder) and cfg.fingerprint() == cfg.fingerprint()
    assert cfg.fingerprint() != GenerationConfig(backend="trained").fingerprint()
    with pytest.raises(ConfigError, match="not a trained query generator"):
        GenerationConfig(backend="trained", model=str(tmp_path)).fingerprint()
    # Other backends' fingerprints do not depend on the trained settings.
    assert (GenerationConfig(backend="passage-cut").fingerprint()
            == GenerationConfig(backend="passage-cut", trained=TrainedGeneratorConfig(lora_r=4)).fingerprint())


def test_trained_config_validates():
    with pytest.raises(ConfigError, match="lora_r"):
        TrainedGeneratorConfig(lora_r=0)
    with pytest.raises(ConfigError, match="max_query_tokens"):
        TrainedGeneratorConfig(max_length=32, max_query_tokens=20)
    assert GenerationConfig(trained={"lora_r": 8, "target_modules": ["q_proj"]}).trained.target_modules == ("q_proj",)


def test_copy_ratio_and_question_flag():
    passage = "Berlin ist die Hauptstadt von Deutschland."
    assert copy_ratio("die Hauptstadt von", passage) == 1.0
    assert copy_ratio("Was ist die größte Stadt?", passage) < 0.5
    assert is_question("Was ist die Hauptstadt von Deutschland", "de")
    assert is_question("capital of germany?", "en")
    assert not is_question("Hauptstadt von Deutschland", "de")
    assert is_question("日本の首都はどこですか", "ja") and not is_question("日本の首都", "ja")
    assert is_question("Berapa jumlah penduduk Jakarta", "id") and not is_question("penduduk Jakarta", "id")
    assert is_question("中国的首都是什么", "zh") and not is_question("中国的首都", "zh")
    assert is_question("¿Cuál es la capital", "es") and is_question("dân số bao nhiêu", "vi")
    assert not is_question("")


def test_bootstrap_source_prefers_the_trained_generator(trained_folder):
    cfg = GenerationConfig(top_k=None, trained=TrainedGeneratorConfig(min_pairs=4))
    plan = pick_bootstrap_source("id", cfg, trained_folder, few_shot_available=True)
    assert plan.source is BootstrapSource.trained and plan.config.model == str(trained_folder)
    assert plan.config.top_k == 10  # a bootstrap is always round-trip filtered
    # Trained on "ja" and "de" only: for "de" itself 12 pairs of other languages remain; with a higher bar not.
    strict = GenerationConfig(trained=TrainedGeneratorConfig(min_pairs=13))
    assert pick_bootstrap_source("de", strict, trained_folder, few_shot_available=True).source \
        is BootstrapSource.causal_fewshot
    assert pick_bootstrap_source("id", cfg, None, few_shot_available=False).source is BootstrapSource.passage_cut


def test_corpus_only_language_is_generated_for_with_the_bootstrap_plan(trained_folder, tmp_path):
    """No mined pairs for this language (an empty pairs file): every passage is unreached, and the plan's
    trained generator (learnt from other languages) writes queries for them, round trip on."""
    corpus, _ = _corpus(tmp_path)
    empty = tmp_path / "none.jsonl"
    empty.write_text("")
    plan = pick_bootstrap_source("id", GenerationConfig(max_new_tokens=4, show_progress=False, device="cpu",
                                                        max_passages=4, trained=TrainedGeneratorConfig(min_pairs=4)),
                                 trained_folder, few_shot_available=False)
    out = generate_queries(corpus, empty, tmp_path / "gen", "id", dataclasses.replace(plan.config, top_k=None))
    stats = json.loads((out / "stats.json").read_text())
    assert stats["passages_unreached"] == 10 and stats["passages_selected"] == 4 and stats["generated"] == 4
    assert stats["backend"] == "trained"


def _pipeline_config(tmp_path: Path, encoder: Path, gemma: Path) -> Path:
    """tiny-en with unlabeled queries + tiny-de with none (corpus only), backend = "trained"."""
    from fixtures.tiny_corpus import write_tiny_config, write_tiny_task

    co = write_tiny_task(tmp_path / "data-de")
    extra = f"""
[generation]
enabled = true
backend = "trained"
max_passages = 6
max_new_tokens = 4
batch_size = 3
device = "cpu"
show_progress = false

[generation.trained]
base_model = "{gemma}"
lora_r = 4
lora_alpha = 8
max_steps = 2
batch_size = 4
max_length = 32
max_query_tokens = 8
min_pairs = 2
target_modules = ["q_proj", "v_proj"]

[[languages]]
lang = "de"
name = "tiny-de"
corpus = "{co['corpus']}"
test_queries = "{co['test']}"
test_qrels = "{co['qrels']}"
"""
    return write_tiny_config(tmp_path, encoder, tmp_path / "run", epochs=1, extra=extra)


def test_pipeline_trains_one_generator_for_all_languages_then_generates(tmp_path, tiny_encoder_dir, tiny_gemma):
    """The generator is its own stage after every language's mining and before any generation; each language's
    generation stage uses it (the corpus-only one through the bootstrap plan); a re-run skips everything."""
    from lexdr.pipeline import load_config, method_graph, run_pipeline

    cfg = load_config(_pipeline_config(tmp_path, tiny_encoder_dir, tiny_gemma))
    names = [s.name for s in method_graph(cfg)]
    assert names.index("generator") > max(names.index("tiny-en/mine"), names.index("tiny-de/mine"))
    assert names.index("generator") < min(names.index("tiny-en/generate"), names.index("tiny-de/generate"))
    spec = {s.name: s for s in method_graph(cfg)}
    assert [s.label for s in spec["generator"].inputs.sources] == ["tiny-en"]  # only languages with mined pairs
    assert spec["generator"].config.seed == 7  # [run] seed

    results = run_pipeline(cfg, quiet=True, report=False)
    run = tmp_path / "run"
    model = run / "generator" / "model"
    info = json.loads((model / "lexdr_generator.json").read_text())
    mined = [json.loads(x) for x in (run / "tiny-en" / "mine" / "mined.jsonl").read_text().splitlines()]
    assert info["languages"] == {"en": sum(1 for m in mined if m["positive_ids"])} and info["steps"] == 2
    en = json.loads((run / "tiny-en" / "generate" / "stats.json").read_text())
    assert en["backend"] == "trained" and en["model"] == str(model) and "bootstrap" not in en
    de = json.loads((run / "tiny-de" / "generate" / "stats.json").read_text())
    # tiny-de has no queries: every passage is unreached; the joint generator (learnt from "en") writes for it.
    assert de["bootstrap"].startswith("trained") and de["model"] == str(model)
    assert de["passages_unreached"] == de["passages"] and de["generated"] == 6 and de["round_trip"]["top_k"] == 10
    assert {"lexdr-gen"} <= set(results["tiny-de"]) and {"lexdr-r1", "lexdr-gen"} <= set(results["tiny-en"])
    done = json.loads((run / "generator" / "done.json").read_text())
    assert done["result"]["languages"] == info["languages"]
    from lexdr.report import write_report

    report = write_report(run).read_text()  # samples per backend with their round-trip rank and copy ratio
    assert "| trained |" in report and "| round-trip rank | copy |" in report and '"bootstrap": "trained' in report

    run_pipeline(load_config(_pipeline_config(tmp_path, tiny_encoder_dir, tiny_gemma)), quiet=True, report=False)
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    assert all(s["skipped"] for s in stages.values())


def test_cli_generator_train_writes_a_joint_generator(tiny_gemma, tmp_path, capsys):
    from lexdr.cli import main

    corpus, pairs = _corpus(tmp_path)
    es_pairs = tmp_path / "es.jsonl"  # the same pairs without their "lang": "de"
    es_pairs.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "lang"}) + "\n"
                                for line in pairs.read_text().splitlines()))
    common = ["--corpus", f"de={corpus}", "--corpus", f"es={corpus}", "--out", str(tmp_path / "gen"),
              "--base-model", str(tiny_gemma), "--max-steps", "2", "--lora-r", "4", "--device", "cpu"]
    assert main(["--quiet", "generator", "train", "--pairs", f"de={pairs}", "--pairs", f"es={es_pairs}", *common]) == 0
    info = json.loads((tmp_path / "gen" / "model" / "lexdr_generator.json").read_text())
    assert info["languages"] == {"de": 5, "es": 5} and info["steps"] == 2
    # the command calls the pipeline's generator stage: the stage on the same inputs writes the same adapters
    from lexdr.executors import LocalExecutor
    from lexdr.generation.config import TrainedGeneratorConfig
    from lexdr.generation.stage import GeneratorInputs, GeneratorSource, train_generator_stage

    cfg = TrainedGeneratorConfig(base_model=str(tiny_gemma), max_steps=2, lora_r=4, lora_alpha=8, device="cpu",
                                 show_progress=False)
    sources = (GeneratorSource("de-0", "de", pairs, corpus), GeneratorSource("es-1", "es", es_pairs, corpus))
    train_generator_stage(GeneratorInputs(sources), cfg, tmp_path / "stage", LocalExecutor())
    adapters = sorted((tmp_path / "gen" / "model").glob("*.safetensors"))
    assert adapters
    for weights in adapters:
        assert weights.read_bytes() == (tmp_path / "stage" / "model" / weights.name).read_bytes(), weights.name
    assert main(["--quiet", "generator", "train", "--pairs", str(pairs), *common]) != 0
    assert "LANG=PATH" in capsys.readouterr().err
    assert main(["--quiet", "generator", "train", "--pairs", f"ja={pairs}", *common]) != 0
    assert "no --corpus for ['ja']" in capsys.readouterr().err
