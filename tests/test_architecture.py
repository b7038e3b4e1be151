"""The shape of the package, pinned: the public API of lexdr and of each package, no import cycles inside a
package, no private module imported across packages, one retriever protocol that every retriever satisfies,
and each shared default written once."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lexdr"

# The public surface. Changing it is a decision: update this table in the same commit.
PUBLIC_API = {
    "lexdr": ["LexdrError", "InputError", "Doc", "Query", "Qrel", "Hit", "Run", "__version__"],
    "lexdr.retrieval": ["Retriever", "HybridRetriever", "load_retriever"],
    "lexdr.defaults": ["DEFAULT_ENCODER", "DEFAULT_SEED", "DEFAULT_DEPTH"],
    "lexdr.settings": ["setting", "help_of", "default_of", "fingerprint_fields", "build", "to_plain", "require"],
    "lexdr.formats": ["atomic_write", "open_text", "EmptyTextPolicy", "iter_corpus", "read_corpus",
                      "write_corpus_jsonl", "iter_queries", "read_queries", "write_queries_tsv",
                      "write_queries_jsonl", "read_qrels", "write_qrels_trec", "read_run", "write_run"],
    "lexdr.sparse": ["BM25Index", "BM25Config", "BM25_METHODS", "build_index", "search_index", "bm25_stage", "build_out_of_core"],
    "lexdr.dense": ["Encoder", "EncoderConfig", "DenseIndex", "IndexType", "DenseRetriever", "encoder_for_index",
                    "build_dense_index", "dense_search", "dense_stage"],
    "lexdr.fusion": ["FusionMethod", "Normalization", "FusionConfig", "rrf", "interpolate", "fuse", "fuse_runs",
                     "normalize_scores"],
    "lexdr.evaluation": ["DEFAULT_METRICS", "evaluate", "evaluate_per_query", "trec_order", "evaluate_stage"],
    "lexdr.mining": ["Candidate", "candidate_table", "RULES", "MineConfig", "MinedExample", "mine_from_runs",
                     "mine", "read_mined", "write_mined", "rule_quality"],
    "lexdr.training": ["LossKind", "TrainConfig", "listwise_kl_loss", "contrastive_loss", "train",
                       "TrainingExample", "examples_from_mined", "TrainSource", "joint_examples", "train_stage"],
    "lexdr.tasks": ["DEV_TASKS", "DevTask", "find_data_dir", "load_dev_task", "write_dev_task", "LanguageInput",
                    "prepare_language", "take_evenly"],
    "lexdr.executors": ["ExecutorKind", "ClusterSettings", "ExecutorSpec", "Executor", "LocalExecutor", "RayExecutor",
                        "RAY_INSTALL", "require_ray", "resolve_executor"],
    "lexdr.serve": ["ServeConfig", "serve", "write_html"],
    "lexdr.pipeline": ["LanguageInput", "RunConfig", "RunSettings", "GenerationSettings", "load_config",
                       "StageSpec", "method_graph", "run_pipeline"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC_API))
def test_public_api_is_pinned(module):
    mod = importlib.import_module(module)
    # A superset is allowed only where another package is still being extended; the pinned names must exist
    # and be exported.
    exported = set(mod.__all__)
    missing = [n for n in PUBLIC_API[module] if n not in exported]
    assert not missing, f"{module}.__all__ lost {missing}"
    for name in mod.__all__:
        assert hasattr(mod, name) or getattr(mod, "__getattr__", None), f"{module}.{name} is exported but missing"
        getattr(mod, name)  # lazy names must resolve too


def _imports(path: Path, module: str) -> set[str]:
    """Every lexdr module ``path`` imports (top level or inside functions), resolved to module names."""
    out = set()
    pkg = module.rsplit(".", 1)[0] if not path.name == "__init__.py" else module
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("lexdr"):
                for alias in node.names:
                    cand = f"{base}.{alias.name}"
                    out.add(cand if (SRC.parent / (cand.replace(".", "/") + ".py")).exists() else base)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("lexdr"))
    return out


def _modules() -> dict[str, Path]:
    mods = {}
    for p in SRC.rglob("*.py"):
        rel = p.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if p.name == "__init__.py" else rel.parts)
        mods[name] = p
    return mods


def test_no_import_cycles_inside_a_package():
    mods = _modules()
    graph = {m: {d for d in _imports(p, m) if d in mods and d != m} for m, p in mods.items()}
    cycles = []
    for m, deps in graph.items():
        pkg = m.rsplit(".", 1)[0]
        for d in deps:
            if d.rsplit(".", 1)[0] != pkg or mods[d].name == "__init__.py" or mods[m].name == "__init__.py":
                continue
            # is there a path back from d to m inside the package (not through __init__)?
            seen, todo = set(), [d]
            while todo:
                x = todo.pop()
                if x == m:
                    cycles.append((m, d))
                    break
                for y in graph.get(x, ()):
                    if y not in seen and y.rsplit(".", 1)[0] == pkg and mods[y].name != "__init__.py":
                        seen.add(y)
                        todo.append(y)
    assert not cycles, f"import cycles inside packages: {sorted(cycles)}"


def test_no_private_module_is_imported_across_packages():
    mods = _modules()
    bad = []
    for m, p in mods.items():
        for d in _imports(p, m):
            leaf = d.rsplit(".", 1)[-1]
            if leaf.startswith("_") and not leaf.startswith("__") and d.rsplit(".", 1)[0] != m.rsplit(".", 1)[0]:
                bad.append((m, d))
    assert not bad, f"private modules imported from another package: {bad}"


def test_every_retriever_satisfies_the_protocol(tmp_path):
    from lexdr.dense import DenseRetriever
    from lexdr.records import Doc, Query
    from lexdr.retrieval import HybridRetriever, Retriever
    from lexdr.sparse import BM25Index

    bm25 = BM25Index.build([Doc("d1", "Paris is the capital of France"), Doc("d2", "Berlin is in Germany")], lang="en")
    assert isinstance(bm25, Retriever)
    assert issubclass(DenseRetriever, Retriever) and issubclass(HybridRetriever, Retriever)
    run = HybridRetriever([bm25, bm25]).search([Query("q", "capital of France")], k=1)
    assert [h.doc_id for h in run["q"]] == ["d1"]


def test_only_the_retrievers_encode_and_search():
    """"Encode the queries, then search the index" lives in dense/retriever.py only."""
    offenders = []
    for p in SRC.rglob("*.py"):
        text = p.read_text(encoding="utf-8")
        if re.search(r"encode_queries\(", text) and p.name not in ("retriever.py", "encoder.py"):
            offenders.append(str(p.relative_to(SRC)))
    assert not offenders, f"query encoding outside lexdr.dense.retriever: {offenders}"


def test_shared_defaults_are_written_once():
    """The encoder id and the seed are literals only in lexdr/defaults.py (docstrings and messages aside)."""
    offenders = []
    for p in SRC.rglob("*.py"):
        if p.name == "defaults.py":
            continue
        for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            if re.search(r"(seed|SEED)\w*\s*(:\s*int\s*)?=\s*13\b", code) or \
               re.search(r"=\s*\"intfloat/multilingual-e5-small\"", code):
                offenders.append(f"{p.relative_to(SRC)}:{lineno}: {line.strip()}")
    assert not offenders, "defaults written again:\n" + "\n".join(offenders)


def test_cli_option_defaults_come_from_the_settings():
    from typer.main import get_command

    from lexdr.cli import app
    from lexdr.mining import MineConfig
    from lexdr.training import TrainConfig

    cmd = get_command(app)
    train = {p.name: p for p in cmd.commands["train"].params}
    mine = {p.name: p for p in cmd.commands["mine"].params}
    assert train["epochs"].default == TrainConfig().epochs and train["seed"].default == TrainConfig().seed
    assert mine["rule"].default == MineConfig().rule
    from lexdr.settings import help_of

    assert train["lr"].help == help_of(TrainConfig, "lr")
