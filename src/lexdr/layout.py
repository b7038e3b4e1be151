"""The run folder's layout, named once: the pipeline's graph declares its stages into these folders, and the
report, the trained models' cards and ``lexdr serve`` read them back through the same object.

    manifest.json                config, environment, per-stage fingerprint/time/peak memory/result
    <label>/data/                the language's inputs as standard files (corpus.jsonl, queries.<part>.tsv,
                                 qrels.<part>.txt)
    <label>/bm25/                BM25 index + runs (run.<part>.trec)
    <label>/tokens/<key>/        the corpus's token ids (one folder per tokenizer, length and prompt), written by
                                 the first dense stage and read by the others (lexdr.dense.token_ids)
    <label>/dense-base/          FAISS index of the base encoder + runs
    <label>/mine/                mined.jsonl + stats.json
    generator/                   [generation] backend = "trained": one query generator for every language
    <label>/generate/            generated.jsonl, pairs.jsonl, stats.json, the kept queries (queries.generated.tsv)
    <label>/generated-bm25/, generated-dense/   the kept generated queries' runs (run.generated.trec)
    <label>/mine-generated/      their mining: mined.jsonl + stats.json
    train-r1/, train-gen/, train-r2/, train-gold/    a trained model (model/) + train_log.jsonl
    <label>/dense-r1/, dense-gen/, dense-r2/, dense-gold/   its index and runs
    <label>/mine-r2/             round 2's mining (with dense-r1's runs)
    <label>/evaluate/            metrics.json, fusion.json, gain.json and the fused runs (run.<system>.trec)
    metrics.json                 all languages' metrics
    report/                      report.md + PNG plots (+ html/ with ``lexdr report --html``)

Imports nothing of lexdr's: every package may use it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA", "BM25", "DENSE_BASE", "MINE", "MINE_R2", "GENERATE", "GENERATED_BM25", "GENERATED_DENSE",
           "MINE_GENERATED", "EVALUATE", "TOKENS", "GENERATOR", "REPORT", "TRAIN_STAGES", "RunLayout"]

DATA, BM25, DENSE_BASE, MINE, MINE_R2, GENERATE, EVALUATE, TOKENS = (
    "data", "bm25", "dense-base", "mine", "mine-r2", "generate", "evaluate", "tokens")
GENERATOR, REPORT = "generator", "report"
# the generated queries' search (one stage per index) and mining, each its own stage after "generate"
GENERATED_BM25, GENERATED_DENSE, MINE_GENERATED = "generated-bm25", "generated-dense", "mine-generated"
TRAIN_STAGES = ("train-r1", "train-gen", "train-r2", "train-gold")  # the joint training stages, in run order


class RunLayout:
    """Paths inside one run folder (``root``); nothing is created or read here."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def f(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    # the run as a whole
    @property
    def manifest(self) -> Path:
        return self.f("manifest.json")

    @property
    def metrics(self) -> Path:
        return self.f("metrics.json")

    @property
    def report(self) -> Path:
        return self.f(REPORT)

    def model(self, train_stage: str) -> Path:
        """The sentence-transformers folder a training stage writes."""
        return self.f(train_stage, "model")

    def train_log(self, train_stage: str) -> Path:
        return self.f(train_stage, "train_log.jsonl")

    # one language (its label)
    def stage(self, label: str, stage: str) -> Path:
        return self.f(label, stage)

    def corpus(self, label: str) -> Path:
        return self.f(label, DATA, "corpus.jsonl")

    def queries(self, label: str, part: str) -> Path:
        return self.f(label, DATA, f"queries.{part}.tsv")

    def qrels(self, label: str, part: str) -> Path:
        return self.f(label, DATA, f"qrels.{part}.txt")

    def run(self, label: str, stage: str, part: str) -> Path:
        """A retrieval stage's TREC run of one query part (``unlabeled``, ``test``)."""
        return self.f(label, stage, f"run.{part}.trec")

    def mined(self, label: str, stage: str = MINE) -> Path:
        return self.f(label, stage, "mined.jsonl")

    def stats(self, label: str, stage: str) -> Path:
        return self.f(label, stage, "stats.json")

    def generated(self, label: str) -> Path:
        return self.f(label, GENERATE, "generated.jsonl")

    def generated_queries(self, label: str) -> Path:
        """The kept generated queries (topics TSV), which the generated-* stages search and mine."""
        return self.f(label, GENERATE, "queries.generated.tsv")

    def generated_mining(self, label: str) -> Path:
        """The folder holding the generated queries' ``mined.jsonl`` and the two runs it was mined from (as
        ``run.bm25.trec`` / ``run.dense.trec`` in a run folder made before mining had its own stage, where the
        generate stage mined them itself)."""
        old = self.stage(label, GENERATE)
        return old if (old / "mined.jsonl").is_file() and not self.mined(label, MINE_GENERATED).is_file() \
            else self.stage(label, MINE_GENERATED)

    def generated_runs(self, label: str) -> tuple[Path, Path]:
        """The BM25 and dense runs the generated queries were mined from (an older run folder: see
        :meth:`generated_mining`)."""
        if self.generated_mining(label) == self.stage(label, GENERATE):
            return self.f(label, GENERATE, "run.bm25.trec"), self.f(label, GENERATE, "run.dense.trec")
        return self.run(label, GENERATED_BM25, "generated"), self.run(label, GENERATED_DENSE, "generated")

    def evaluation(self, label: str, name: str) -> Path:
        """A file of the evaluation stage: ``metrics.json``, ``fusion.json``, ``gain.json``."""
        return self.f(label, EVALUATE, name)

    def evaluated_run(self, label: str, system: str) -> Path:
        """A fused run the evaluation stage wrote (``run.<system>.trec``)."""
        return self.f(label, EVALUATE, f"run.{system}.trec")
