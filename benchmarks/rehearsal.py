"""The whole method at 10k, 100k and 1M passages: one ``lexdr run`` config per size, every stage on, each stage's
peak memory and time, ``lexdr plan``'s prediction beside it, and at 10k every stage's result checked against an
in-memory run.

What runs (the same command at every size; only ``--sizes`` differs):

- **Corpus**: the first N passages of a synthetic Indonesian corpus (:mod:`lexdr.synthetic`: a word-bigram model
  fitted on the facqa-id dev corpus with its open-vocabulary tail; about 80 words, 520 characters, 118 XLM-R
  tokens a passage; the first m passages of any size are the m-passage corpus). Indonesian has a real analyzer
  (stop words + the Indonesian stemmer).
- **Queries**, the same at every size: 10,000 unlabeled and 2,000 test questions written from passages among the
  first 10,000: a question word and 3-5 of the passage's rarer terms (lowest document frequency over those
  10,000 passages), shuffled. A test question's known positive is the passage it was written from.
- **Encoder**: the provisioned multilingual-e5-small cut to its first two transformer layers and its first 128
  hidden units (``--encoder-layers``, ``--encoder-hidden``; made once by :func:`make_encoder`; the XLM-R tokenizer
  and the e5 prompts unchanged): BERT, hidden 128, 4 heads of 32, FFN 512, 2 layers, vocabulary 250,037 (32.5M
  parameters of which 32.0M are the embedding table). It tests the mechanics at a real tokenizer's cost, not
  retrieval quality. (The first rehearsal kept all 384 hidden units, ``--encoder-hidden 384``: its three encodes
  of 1M passages were priced at 2.7 hours on this machine, against the issue's hour for the whole run.)
- **Config** (:func:`write_config`): BM25 out of core (``[bm25] max_docs_in_memory = 15000``: 5,000-document
  shards), ``[dense.index]`` auto (flat to 1M passages) in 5,000-passage shards, ``max_seq_length = 32``,
  agree@3 mining, generation with the ``passage-cut`` backend (1,000 passages), one epoch of training
  (round 1, and the mined + generated model), dense-r1 and dense-gen, evaluation, report.

Each stage runs in its own fresh process (the ones before it are skipped by the stage engine), so its peak is
its own (the manifest's ``peak_rss_mb``, VmRSS sampled every 0.2 s); after the last one, ``lexdr run CONFIG``
itself runs (every stage skipped) and writes ``metrics.json`` and the report: its time and peak are the
"report" row. A killed size resumes: run the same command again (finished stages are skipped by the engine;
a dense stage's token-id shards and encoded shards are reused).

``--check`` (10k only): the same inputs run in memory (``[bm25]`` in-memory build, one dense shard), and every
stage's output files are compared with the rehearsal's; then the dense index kinds (flat vs ivf-sq8) compared by
dense-base's metrics.

Usage: PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/rehearsal.py --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

QUESTION_WORDS = ("apa", "siapa", "di mana", "kapan", "mengapa", "bagaimana", "berapa")
HEAD = 10_000  # queries are written from passages among the first HEAD (the same at every size)
_WORD = re.compile(r"\w+")


# ------------------------------------------------------------------------------------------------ inputs
def make_encoder(dest: Path, layers: int = 2, hidden: int = 128) -> Path:
    """The provisioned multilingual-e5-small cut to its first ``layers`` transformer layers and its first
    ``hidden`` hidden units (safetensors): every weight's 384-wide dimension sliced to ``hidden`` and its
    1,536-wide (the FFN) to ``4 * hidden``; the heads keep their 32 dimensions (``hidden / 32`` of them). The
    XLM-R tokenizer, the 250,037-piece vocabulary and the e5 prompts are unchanged. Sliced weights are no longer
    a trained model: the rehearsal tests the mechanics at a real tokenizer's cost, not retrieval quality."""
    from safetensors.torch import load_file, save_file

    from lexdr.models.resolve import resolve_model

    if (dest / "model.safetensors").exists():
        return dest
    src = Path(resolve_model("intfloat/multilingual-e5-small"))
    conf = json.loads((src / "config.json").read_text())
    width, ffn = conf["hidden_size"], conf["intermediate_size"]
    if hidden % 32 or not 32 <= hidden <= width:
        raise SystemExit(f"--encoder-hidden must be a multiple of 32 between 32 and {width} (got {hidden})")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    (tmp / "lexdr_provenance.json").unlink(missing_ok=True)  # it describes the 12-layer weights

    def cut(t):
        index = tuple(slice(0, hidden) if d == width else slice(0, hidden * ffn // width) if d == ffn else slice(None)
                      for d in t.shape)
        return t[index].contiguous()

    keep = {k: cut(v) for k, v in load_file(src / "model.safetensors").items()
            if not (k.startswith("encoder.layer.") and int(k.split(".")[2]) >= layers)}
    save_file(keep, tmp / "model.safetensors", metadata={"format": "pt"})
    conf.update(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=hidden // 32,
                intermediate_size=hidden * ffn // width)
    (tmp / "config.json").write_text(json.dumps(conf, indent=2))
    pooling = tmp / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "word_embedding_dimension": hidden}, indent=2))
    tmp.rename(dest)
    return dest


def encoder_shape(folder: Path) -> dict:
    """What the rehearsal's encoder is: its config's shape and its parameter count."""
    from safetensors import safe_open

    conf = json.loads((folder / "config.json").read_text())
    with safe_open(str(folder / "model.safetensors"), "np") as f:
        sizes = {k: math.prod(f.get_slice(k).get_shape()) for k in f.keys()}
    return {"layers": conf["num_hidden_layers"], "hidden": conf["hidden_size"], "heads": conf["num_attention_heads"],
            "ffn": conf["intermediate_size"], "vocabulary": conf["vocab_size"], "parameters": sum(sizes.values()),
            "embedding_table": sum(v for k, v in sizes.items() if "word_embeddings" in k)}


def encoder_line(shape: dict | None) -> str:
    if not shape:  # the first rehearsal recorded no shape: it was the 384-wide cut
        shape = {"layers": 2, "hidden": 384, "heads": 12, "ffn": 1536, "vocabulary": 250037,
                 "parameters": 99_900_000, "embedding_table": 96_000_000}
    return (f"**e5-small cut to its first {shape['layers']} layers and {shape['hidden']} hidden units** (BERT, "
            f"{shape['heads']} heads, FFN {shape['ffn']:,}, vocabulary {shape['vocabulary']:,}, "
            f"{shape['parameters'] / 1e6:.1f}M parameters of which {shape['embedding_table'] / 1e6:.1f}M the "
            "embedding table; the real XLM-R tokenizer and e5 prompts; sliced weights test the mechanics, not "
            "retrieval quality)")


def write_corpus_n(folder: Path, n: int) -> Path:
    from lexdr.synthetic import fit_bigram_model, write_corpus
    from lexdr.tasks import load_dev_task

    path = folder / "corpus.jsonl"
    if not path.is_file():
        model = fit_bigram_model(d.full_text() for d in load_dev_task("facqa-id").corpus)
        write_corpus(model, n, path, seed=0)
    return path


def question(words: list[str], df: Counter, r: random.Random) -> str:
    """A question word and 3-5 of the rarer half of a passage's distinct words (length >= 4), shuffled."""
    distinct = sorted({w for w in words if len(w) >= 4}, key=lambda w: (df[w], w))
    rare = distinct[:max(5, len(distinct) // 2)]
    picked = r.sample(rare, min(len(rare), r.randint(3, 5)))
    return f"{r.choice(QUESTION_WORDS)} {' '.join(picked)}"


def write_queries(corpus: Path, folder: Path, unlabeled: int, test: int) -> dict[str, Path]:
    """Unlabeled and test questions from the first ``HEAD`` passages; test qrels: the passage written from."""
    paths = {"unlabeled": folder / "unlabeled.tsv", "test": folder / "test.tsv", "qrels": folder / "qrels.test.txt"}
    if all(p.is_file() for p in paths.values()):
        return paths
    head = []
    with open(corpus, encoding="utf-8") as fh:
        for _, line in zip(range(HEAD), fh):
            d = json.loads(line)
            head.append((d["_id"], _WORD.findall(d["text"].lower())))
    df = Counter(w for _, words in head for w in set(words))
    r = random.Random(0)
    with open(paths["unlabeled"], "w", encoding="utf-8") as fh:
        for j in range(unlabeled):
            _, words = head[r.randrange(len(head))]
            fh.write(f"u{j:06d}\t{question(words, df, r)}\n")
    picks = random.Random(1).sample(range(len(head)), test)
    with open(paths["test"], "w", encoding="utf-8") as fh, open(paths["qrels"], "w", encoding="utf-8") as qr:
        for j, i in enumerate(picks):
            fh.write(f"t{j:05d}\t{question(head[i][1], df, r)}\n")
            qr.write(f"t{j:05d} 0 {head[i][0]} 1\n")
    return paths


def write_config(folder: Path, corpus: Path, q: dict[str, Path], model: Path, out_dir: Path, *,
                 bm25_max_docs: int | None = 15_000, shard_size: int = 5_000, index_type: str = "auto") -> Path:
    bm25 = f"max_docs_in_memory = {bm25_max_docs}" if bm25_max_docs else ""
    cfg = folder / f"{out_dir.name}.toml"
    cfg.write_text(f"""
[run]
out_dir = "{out_dir}"
base_model = "{model}"
seed = 7

[[languages]]
lang = "id"
name = "syn"
corpus = "{corpus}"
unlabeled_queries = "{q['unlabeled']}"
test_queries = "{q['test']}"
test_qrels = "{q['qrels']}"

[bm25]
{bm25}

[dense]
max_seq_length = 32
batch_size = 128

[dense.index]
index_type = "{index_type}"
shard_size = {shard_size}

[mining]
rule = "agree@3"
n_candidates_each = 2

[generation]
enabled = true
backend = "passage-cut"
max_passages = 1000

[training]
epochs = 0.2
batch_size = 16
mini_batch_size = 64
max_query_length = 16
max_passage_length = 32
lr = 1e-4
""", encoding="utf-8")
    return cfg


# ------------------------------------------------------------------------------------------------ running
def child(config: str, k: int) -> None:
    """Run stage ``k`` of the config's graph in this process (stages before it are skipped by the engine)."""
    from lexdr.pipeline import load_config, method_graph
    from lexdr.pipeline.engine import StageRunner
    from lexdr.pipeline.run import run_stages

    cfg = load_config(config)
    specs = method_graph(cfg, quiet=True)
    runner = StageRunner(cfg.out_dir, cfg.to_dict())
    run_stages(runner, specs[:k])
    start = _rss_mib()
    t0 = time.perf_counter()
    cpu0 = _cpu_s()
    run_stages(runner, [specs[k]])
    rec = runner.manifest["stages"][specs[k].name]
    print(json.dumps({"stage": specs[k].name, "start_mb": round(start, 1), "peak_rss_mb": rec["peak_rss_mb"],
                      "seconds": rec["seconds"], "skipped": rec.get("skipped", False),
                      "wall_s": round(time.perf_counter() - t0, 1), "load": round(os.getloadavg()[0], 1),
                      "cpu_s": round(_cpu_s() - cpu0, 1), "cpu_with_children": True}))


def _cpu_s() -> float:
    """CPU-seconds of this process and its finished children (BM25's analysis workers)."""
    return sum(sum(resource.getrusage(who)[:2]) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}


def stage_names(config: Path) -> list[str]:
    from lexdr.pipeline import load_config, method_graph

    return [s.name for s in method_graph(load_config(config), quiet=True)]


def _in_subprocess(args: list[str], log, what: str) -> dict:
    """This script with ``args`` in a fresh process; its stderr's tail to ``log``, its last stdout line (JSON)."""
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=_env())
    log.write(proc.stderr[-6000:])
    log.flush()
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_child(config: Path, k: int, log) -> dict:
    return _in_subprocess(["_child", str(config), str(k)], log, f"stage {k} of {config}")


def whole(config: str) -> None:
    """``lexdr run CONFIG`` in this process; prints its wall time, CPU time and peak RSS (``ru_maxrss``)."""
    from lexdr.cli import main as lexdr_main

    t0 = time.perf_counter()
    rc = lexdr_main(["run", config])
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"stage": "report", "seconds": round(time.perf_counter() - t0, 1),
                      "peak_rss_mb": round(ru.ru_maxrss / 1024, 1), "start_mb": 0.0, "skipped": False,
                      "cpu_s": round(ru.ru_utime + ru.ru_stime, 1), "rc": rc or 0}))


def run_whole(config: Path, log) -> dict:
    """``lexdr run CONFIG`` in its own process (every stage done already: it skips them and writes
    ``metrics.json`` and the report; on a fresh folder it is the whole run)."""
    return _in_subprocess(["_whole", str(config)], log, f"lexdr run {config}")


def prepare(work: Path, n: int, args) -> tuple[Path, Path, dict[str, Path], Path]:
    folder = work / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    corpus = write_corpus_n(folder, n)
    q = write_queries(corpus, folder, args.unlabeled, args.test)
    model = make_encoder(work / f"e5-small-{args.encoder_layers}l-h{args.encoder_hidden}", args.encoder_layers,
                         args.encoder_hidden)
    return folder, corpus, q, model


# ------------------------------------------------------------------------------------------------ plan vs measured
def plan_rows(config: Path) -> dict[str, float]:
    """``lexdr plan``'s CPU seconds per plan stage (dense: every model's index of the language together)."""
    from lexdr.pipeline import load_config
    from lexdr.pipeline.planning import plan_config

    from lexdr import plan as P

    plan = plan_config(load_config(config))
    out: dict[str, float] = {}
    for e in plan.estimates:
        key = e.stage.value if not e.lang.startswith("*") else f"train{e.lang[1:]}".strip()
        out[key] = out.get(key, 0.0) + e.cpu_seconds
    # the plan's dense row is every model's index of the language; apart: the base model's (its unlabeled and
    # test queries) and a trained model's (test queries)
    (lang, (n, unl, test)), = plan.sizes.items()
    out["dense-base"] = P._dense(lang, n, unl + test, plan.settings).cpu_seconds
    out["dense (a trained model)"] = P._dense(lang, n, test, plan.settings).cpu_seconds
    return out


PLAN_OF = {"bm25": "bm25", "dense-base": "dense-base", "dense-r1": "dense (a trained model)",
           "dense-gen": "dense (a trained model)", "mine": "mine",
           "generate": "generate", "generated-bm25": "generate", "generated-dense": "generate",
           "mine-generated": "generate",  # the plan prices the round trip and its mining with generation
           "train-r1": "train", "train-gen": "train (mined + generated)",
           "evaluate": "evaluate"}


def measured_by_plan_stage(rows: list[dict], free: bool = False) -> dict[str, float]:
    """Measured seconds per plan stage: wall, or (``free``) the free-core estimate of :func:`free_core_seconds`."""
    out: dict[str, float] = {}
    for r in rows:
        key = PLAN_OF.get(kind(r["stage"]))
        if key:
            out[key] = out.get(key, 0.0) + (free_core_seconds(r) if free else r["seconds"])
    return out


def kind(stage: str) -> str:
    return stage.split("/", 1)[1] if "/" in stage else stage


# ------------------------------------------------------------------------------------------------ 10k checks
# timings; the model card (written by `lexdr run` after every stage, naming the whole config's hash)
_NOT_RESULTS = {"done.json", "train_log.jsonl", "README.md"}


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_TIMING = re.compile(r"second|show_progress|elapsed")  # JSON keys that record time or a display setting
# JSON keys that record the settings the comparison varies ([bm25] max_docs_in_memory: the build's record; the
# dense index's shard size) or the run itself (a trained model's folder in the run, the fingerprint of its stage)
_VARIED = re.compile(r"^build\b|^build$|shard_size|max_docs_in_memory|(^|\.)model$|model_fingerprint")


def _json_diff(a: Path, b: Path) -> list[str] | None:
    """The flattened keys in which two JSON files differ (None: not both JSON)."""
    def flat(x, prefix=""):
        if isinstance(x, dict):
            return {k2: v2 for k, v in x.items() for k2, v2 in flat(v, f"{prefix}{k}.").items()}
        return {prefix.rstrip("."): x}
    try:
        fa, fb = flat(json.loads(a.read_text())), flat(json.loads(b.read_text()))
    except (OSError, ValueError):
        return None
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))


def compare_runs(a: Path, b: Path, stages: list[str]) -> list[dict]:
    """Per stage folder: the result files of run ``a`` and run ``b`` (relative paths) and which differ; a stage
    that one of them has not finished (no ``done.json``) is listed as not compared."""
    out = []
    for st in stages:
        fa, fb = a / st, b / st
        if not ((fa / "done.json").is_file() and (fb / "done.json").is_file()):
            out.append({"stage": st, "files": 0, "differ": [], "compared": False})
            continue
        files = sorted({p.relative_to(fa).as_posix() for p in fa.rglob("*") if p.is_file()}
                       | {p.relative_to(fb).as_posix() for p in fb.rglob("*") if p.is_file()})
        # the encoded float32 shards and token ids are inputs of the index (compared through it), not results
        files = [f for f in files if Path(f).name not in _NOT_RESULTS and "shards/" not in f
                 and not f.startswith("tokens/")]
        diff, timing_only, setting_only = [], [], []
        for f in files:
            if (fa / f).is_file() and (fb / f).is_file() and _digest(fa / f) == _digest(fb / f):
                continue
            keys = _json_diff(fa / f, fb / f)
            if keys is not None and all(_TIMING.search(k) for k in keys):
                timing_only.append(f"{f} ({', '.join(keys)})")
            elif keys is not None and all(_TIMING.search(k) or _VARIED.search(k) for k in keys):
                parts = [k for k in keys if not k.startswith("build")]
                parts += ["build.*"] if any(k.startswith("build") for k in keys) else []
                setting_only.append(f"{f} ({', '.join(parts)})")
            else:
                diff.append(f)
        out.append({"stage": st, "files": len(files), "differ": diff, "timing_only": timing_only,
                    "setting_only": setting_only, "compared": True})
    return out


def metrics_of(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def check_10k(work: Path, args, log) -> dict:
    n = 10_000
    folder, corpus, q, model = prepare(work, n, args)
    rehearsal = folder / "run"
    ref = folder / "in-memory"
    ivf = folder / "ivf-sq8"
    res = {}
    variants = [(ref, {"bm25_max_docs": None, "shard_size": 1_000_000})]
    if args.check_ivf:
        variants.append((ivf, {"index_type": "ivf-sq8"}))
    for out_dir, kw in variants:
        cfg = write_config(folder, corpus, q, model, out_dir, **kw)
        if args.compare_only:
            continue
        t0 = time.perf_counter()
        run_whole(cfg, log)
        res[out_dir.name] = round(time.perf_counter() - t0, 1)
        print(f"check run {out_dir.name}: {res[out_dir.name]} s", flush=True)
    names = stage_names(folder / "run.toml")
    res["compare"] = compare_runs(rehearsal, ref, names)
    res["metrics_equal"] = (metrics_of(rehearsal) == metrics_of(ref)) if (ref / "metrics.json").is_file() else None
    if not args.check_ivf:
        return res
    m_a, m_b = metrics_of(rehearsal), metrics_of(ivf)
    res["ivf"] = {lang: {sys_: {k: (v, m_b[lang][sys_][k]) for k, v in vals.items()}
                         for sys_, vals in m_a[lang].items() if sys_ == "dense-base"}
                  for lang in m_a}
    res["ivf_compare"] = compare_runs(rehearsal, ivf, [s for s in names if s.endswith(("/bm25", "/data"))])
    return res


# ------------------------------------------------------------------------------------------------ report
def fmt_s(s: float) -> str:
    return f"{s:,.0f}" if s >= 10 else f"{s:.1f}"


def render(results: dict) -> str:
    sizes = sorted(int(n) for n in results["sizes"])
    order = [kind(r["stage"]) for r in results["sizes"][str(sizes[-1])]["stages"]]
    for n in sizes:
        for r in results["sizes"][str(n)]["stages"]:
            if kind(r["stage"]) not in order:
                order.append(kind(r["stage"]))
    rows = {n: {kind(r["stage"]): r for r in results["sizes"][str(n)]["stages"]} for n in sizes}
    head = " | ".join(f"N={n:,}: peak MiB / above start / s" for n in sizes)
    lines = [f"| stage | {head} | peak growth exponent |", "|---|" + "---:|" * (len(sizes) + 1)]
    for st in order:
        cells, ns, above = [], [], []
        for n in sizes:
            r = rows[n].get(st)
            if r is None:
                cells.append("–")
                continue
            a = r["peak_rss_mb"] - r["start_mb"] if r["start_mb"] else float("nan")
            cells.append(f"{r['peak_rss_mb']:,.0f} / {'–' if math.isnan(a) else f'{a:,.0f}'} / {fmt_s(r['seconds'])}")
            if not math.isnan(a):
                ns.append(n)
                above.append(max(a, 1.0))
        e = exponent(ns, above)
        lines.append(f"| {st} | " + " | ".join(cells) + f" | {'–' if e is None else f'{e:.2f}'} |")
    return "\n".join(lines)


def render_plan(results: dict) -> str:
    sizes = sorted(int(n) for n in results["sizes"])
    keys = ["bm25", "dense-base", "mine", "generate", "train", "dense (a trained model)", "train (mined + generated)",
            "evaluate"]
    lines = ["| plan stage | " + " | ".join(f"N={n:,}: plan / wall / free-core est. s (plan ÷ free)" for n in sizes)
             + " |", "|---|" + "---:|" * len(sizes)]
    for k in keys:
        cells = []
        for n in sizes:
            d = results["sizes"][str(n)]
            p, m = d.get("plan", {}).get(k), measured_by_plan_stage(d["stages"]).get(k)
            f = measured_by_plan_stage(d["stages"], free=True).get(k)
            if k == "dense (a trained model)" and m is not None:  # planned per model: dense-r1 and dense-gen apart
                rs = [r for r in d["stages"] if kind(r["stage"]) in ("dense-r1", "dense-gen")]
                cells.append(" · ".join(f"{fmt_s(p)} / {fmt_s(r['seconds'])} / {fmt_s(free_core_seconds(r))} "
                                        f"(**{p / free_core_seconds(r):.2f}**)" for r in rs))
                continue
            cells.append("–" if p is None or m is None else
                         f"{fmt_s(p)} / {fmt_s(m)} / {fmt_s(f)} (**{p / f:.2f}**)")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def exponent(ns: list[int], ys: list[float]) -> float | None:
    """The log-log slope of y against N: 0 = flat, 1 = proportional to N."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(ns, ys) if y > 0]
    if len(pts) < 2:
        return None
    mx, my = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    var = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / var if var else None


# ------------------------------------------------------------------------------------------------ refitting the plan
# On 2 free cores the README job used 758 CPU-seconds in 7 min 8 s (README, 2026-12-07): 1.77 cores busy on
# average. A stage measured on loaded cores is counted as its own CPU-seconds over that (the stages that use both
# cores: torch's encode and training), or its CPU-seconds (the single-threaded ones: mining, evaluation), to
# price 2 free cores; BM25 by its wall time (its analysis workers' CPU is not counted).
FREE_CORES_PARALLELISM = 758 / 428
_PARALLEL_STAGES = ("dense", "train", "generate")


def free_core_seconds(r: dict) -> float:
    """What a stage measured under load would take on 2 free cores (see FREE_CORES_PARALLELISM); the wall time
    when that is shorter."""
    st = kind(r["stage"])
    if not r.get("cpu_s") or st == "bm25":
        return r["seconds"]  # BM25's analysis workers are the forkserver's children: their CPU is not counted
    par = FREE_CORES_PARALLELISM if st.startswith(_PARALLEL_STAGES) else 1.0
    return min(r["seconds"], r["cpu_s"] / par)


def fit_points(results: dict, dev_quick: Path | None, extra: list[Path] = ()) -> list[dict]:
    """Every measured stage with what the plan's cost model needs to price it: (plan settings, passages,
    queries, examples, seconds)."""
    from lexdr.pipeline import load_config
    from lexdr.pipeline.planning import plan_config

    pts = []

    def add(cfg_path, stage_rows, free: bool, run_dir: Path):
        plan = plan_config(load_config(cfg_path))
        s = plan.settings
        for r in stage_rows:
            st = kind(r["stage"])
            lang = r["stage"].split("/")[0] if "/" in r["stage"] else "*"
            n, unl, test = plan.sizes[lang] if lang in plan.sizes else next(iter(plan.sizes.values()))
            pts.append({"stage": st, "lang": lang, "settings": s, "n": n, "unl": unl, "test": test,
                        "result": r.get("result") or {},
                        "seconds": free_core_seconds(r) if free else r["seconds"], "source": str(cfg_path),
                        "folder": run_dir / r["stage"]})

    sizes = [d for d in results.get("sizes", {}).values()]
    for path in extra:  # other rehearsal work folders' results (e.g. a smaller trial)
        sizes += [{**d, "config": d.get("config") or str(path.parent / f"n{n}" / "run.toml")}
                  for n, d in json.loads(path.read_text()).get("sizes", {}).items()]
    for d in sizes:
        cfg = Path(d.get("config") or ROOT / "missing")
        man = json.loads((cfg.parent / "run" / "manifest.json").read_text())["stages"]
        add(cfg, [{**r, "result": (man.get(r["stage"]) or {}).get("result")} for r in d["stages"]
                  if r["stage"] != "report"], True, cfg.parent / "run")
    if dev_quick is not None:
        man = json.loads(dev_quick.read_text())
        rows = [{"stage": k, "seconds": v["seconds"], "result": v.get("result")} for k, v in man["stages"].items()]
        add(ROOT / "examples" / "dev-quick.toml", rows, False, dev_quick.parent)
    return pts


def refit(results: dict, dev_quick: Path | None, extra: list[Path] = ()) -> dict[str, float]:
    """Least squares (relative errors, non-negative) of the plan's CPU rates on every measured stage."""
    import numpy as np
    from scipy.optimize import nnls

    from lexdr import plan as P

    pts = fit_points(results, dev_quick, extra)

    def solve(rows):
        """Non-negative least squares of relative errors, each source (a run) weighing the same in all."""
        X = np.array([r[0] for r in rows], float)
        y = np.array([r[1] for r in rows], float)
        groups = Counter(r[2] for r in rows)
        w = np.array([1 / (max(r[1], 0.5) * math.sqrt(groups[r[2]])) for r in rows])
        coef, _ = nnls(X * w[:, None], y * w)
        return coef

    dense = []
    for p in pts:
        if not p["stage"].startswith("dense"):
            continue
        s = p["settings"]
        queries = p["unl"] + p["test"] if p["stage"] == "dense-base" else p["test"]
        tp, tq = min(s.tokens_of(p["lang"]), s.max_seq_length), min(s.query_tokens, s.max_seq_length)
        tokens = p["n"] * tp + queries * tq
        hidden, layers, _ = s.model_shape
        # the search of the stage's queries (flat: queries x passages x dimensions) is fitted with the encoding
        scan = P._scan_seconds(queries, p["n"], s) / P.RATES["flat_search_s_per_vec_query"]
        dense.append(([1.0, tokens, tokens * layers * (hidden / 384) ** 2, scan], p["seconds"], p["source"]))
    bm25, bm25_build = [], []
    for p in pts:
        if p["stage"] == "bm25":  # the build (its index's config.json times it), then the search of every query
            s = p["settings"]
            built = json.loads((p["folder"] / "index" / "config.json").read_text())["build"]["seconds"]
            build_s = min(sum(built.values()), p["seconds"])
            build_x = p["n"] ** P.RATES["bm25_ooc_build_p"] * s.tokens_of(p["lang"]) / P.RATES["bm25_ref_tokens"]
            search_x = (p["unl"] + p["test"]) * p["n"] ** P.RATES["bm25_search_p"]
            bm25_build.append(([1.0, build_x], build_s, p["source"]))
            queries = p["unl"] + p["test"]
            bm25.append(([1.0, queries, search_x], max(0.01, p["seconds"] - build_s), p["source"]))
    d0, e0, e1, scan_rate = solve(dense)
    (b0, b_build), (s0, s_query, b_search) = solve(bm25_build), solve(bm25)  # exponents: scale.py's, 10k..10M
    fitted = {"dense_stage_s": d0, "cpu_encode_s_per_token": e0, "cpu_encode_s_per_token_layer": e1,
              "flat_search_s_per_vec_query": scan_rate, "bm25_stage_s": b0 + s0, "bm25_ooc_build_a": b_build,
              "bm25_search_a": b_search, "bm25_search_s_per_query": s_query}
    old = {k: P.RATES[k] for k in fitted}
    P.RATES.update(fitted)  # the stages below subtract searches priced with these
    train, gen, ev, mine = [], [], [], []
    # the plan's generate row is the generate stage and its round trip (generated-bm25, generated-dense,
    # mine-generated): their seconds are added to the generate stage's of the same run and language
    round_trip = Counter()
    for p in pts:
        if PLAN_OF.get(p["stage"]) == "generate" and p["stage"] != "generate":
            round_trip[p["source"], p["lang"]] += p["seconds"]
    for p in pts:
        s, st = p["settings"], p["stage"]
        if st.startswith("train-"):
            ex = p["result"].get("examples")
            if ex is None:
                continue
            # the trainer reports all its examples; a fractional epoch trains on that share
            ex = math.ceil(ex * s.training.epochs)
            steps = p["result"].get("steps") or math.ceil(ex / s.training.batch_size)
            train.append(([1.0, ex * P.train_tokens(s) * P.cpu_seconds_per_token(s.model_shape), steps],
                          p["seconds"], p["source"]))
        elif st == "generate":
            k = min(p["n"], s.generate_passages)
            search = P._bm25_search_seconds(k, p["n"]) + P._scan_seconds(k, p["n"], s)
            seconds = p["seconds"] + round_trip[p["source"], p["lang"]]
            gen.append(([1.0, k, p["n"]], max(0.1, seconds - search), p["source"]))
        elif st == "evaluate":
            ev.append(([1.0, p["test"], p["unl"]], p["seconds"], p["source"]))
        elif st == "mine":
            mine.append(([p["unl"]], p["seconds"], p["source"]))
    P.RATES.update(old)
    t0, f, step = solve(train)
    g0, g1, g2 = solve(gen)
    v0, v1, v2 = solve(ev)
    (m1,) = solve(mine)
    fitted.update({"train_stage_s": t0, "cpu_train_forwards": f, "cpu_train_s_per_step": step, "generate_stage_s": g0,
                   "generate_s_per_passage": g1, "generate_s_per_corpus_passage": g2, "evaluate_stage_s": v0, "evaluate_s_per_query": v1,
                   "evaluate_s_per_unlabeled_query": v2,
                   "mine_s_per_query": m1})
    return fitted


# The index each stage searches (folders under the run, their bytes on disk at each size): a stage's peak may not
# grow faster than these. Training, mining and evaluation search none: their peak must not grow with N.
SEARCHES = {"bm25": ("bm25/index",), "dense-base": ("dense-base/index",), "dense-r1": ("dense-r1/index",),
            "dense-gen": ("dense-gen/index",), "generate": ("bm25/index", "dense-base/index"),
            "generated-bm25": ("bm25/index",), "generated-dense": ("dense-base/index",)}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def index_bytes(run: Path, label: str = "syn") -> dict[str, int]:
    """Bytes on disk of each index folder of the run (``SEARCHES``' values), the dense ones without their kept
    float32 shards (``index/shards``, read while the index is filled; reported apart)."""
    out = {}
    for sub in {x for v in SEARCHES.values() for x in v}:
        folder = run / label / sub
        out[sub] = folder_bytes(folder) - folder_bytes(folder / "shards")
        out[sub + "/shards"] = folder_bytes(folder / "shards")
    return out


def growth_check(results: dict) -> str:
    """Per stage, between consecutive sizes: the peak's growth against the growth of the index it searches."""
    sizes = sorted(int(n) for n in results["sizes"])
    if len(sizes) < 2:
        return "(one size so far: the growth check needs two)"
    lines = ["| stage | index it searches | " + " | ".join(f"{a:,} → {b:,}: Δpeak / Δindex MiB" for a, b in
                                                           zip(sizes, sizes[1:])) + " | verdict |",
             "|---|---|" + "---:|" * (len(sizes) - 1) + "---|"]
    rows = {n: {kind(r["stage"]): r for r in results["sizes"][str(n)]["stages"]} for n in sizes}
    for st in [kind(r["stage"]) for r in results["sizes"][str(sizes[0])]["stages"]]:
        if st in ("data", "report"):
            continue
        cells, ok = [], True
        for a, b in zip(sizes, sizes[1:]):
            ra, rb = rows[a].get(st), rows[b].get(st)
            if ra is None or rb is None:
                cells.append("–")
                continue
            dpeak = rb["peak_rss_mb"] - ra["peak_rss_mb"]
            ia = sum(results["sizes"][str(a)].get("index_bytes", {}).get(x, 0) for x in SEARCHES.get(st, ()))
            ib = sum(results["sizes"][str(b)].get("index_bytes", {}).get(x, 0) for x in SEARCHES.get(st, ()))
            dindex = (ib - ia) / 2**20
            cells.append(f"{dpeak:+,.0f} / {dindex:+,.0f}")
            # a few MiB of noise (sampling every 0.2 s, the allocator) is not growth
            ok &= dpeak <= max(dindex, 0) + 16
        verdict = "ok" if ok else "**grows faster than its index**"
        lines.append(f"| {st} | {' + '.join(SEARCHES.get(st, ('none',)))} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines)


_LINE = re.compile(r"N=\s*([\d,]+) (\S+)\s+(?:started (\S+)|peak\s+([\d.]+) MiB\s+start\s+([\d.]+)\s+([\d.]+) s\s+"
                   r"cpu\s+([\d.]+) s)")


def partial_size(log: Path, n: int) -> dict | None:
    """A size that did not finish, from the script's own log: its finished stages and where it stopped."""
    rows, last = [], None
    for line in log.read_text(encoding="utf-8").splitlines():
        m = _LINE.match(line)
        if not m or int(m.group(1).replace(",", "")) != n:
            continue
        if m.group(3):
            last = (m.group(2), m.group(3))
        else:
            rows.append({"stage": m.group(2), "peak_rss_mb": float(m.group(4)), "start_mb": float(m.group(5)),
                         "seconds": float(m.group(6)), "cpu_s": float(m.group(7))})
            last = None
    if not rows and last is None:
        return None
    return {"stages": rows, "partial": True, "stopped_in": last}


def render_check(check: dict) -> str:
    lines = ["| stage | result files compared | verdict |", "|---|---:|---|"]
    for r in check.get("compare", []):
        if not r.get("compared"):
            lines.append(f"| {kind(r['stage'])} | – | not compared: the in-memory run had not finished it |")
            continue
        notes = []
        if r.get("setting_only"):
            notes.append("differ only where they record the varied setting or the run's own folder and "
                         "fingerprint: " + "; ".join(r["setting_only"]))
        if r.get("timing_only"):
            notes.append("differ only in timings: " + "; ".join(r["timing_only"]))
        verdict = ("**differ**: " + ", ".join(r["differ"])) if r["differ"] else "identical" + (
            " (" + "; ".join(notes) + ")" if notes else "")
        lines.append(f"| {kind(r['stage'])} | {r['files']} | {verdict} |")
    if check.get("metrics_equal") is not None:
        lines.append(f"| metrics.json | 1 | {'identical' if check['metrics_equal'] else '**differ**'} |")
    return "\n".join(lines)


BEGIN, END = "<!-- rehearsal:begin -->", "<!-- rehearsal:end -->"


def write_doc(results: dict, path: Path, notes: str = "") -> None:
    """The rehearsal's section of ``stage_memory.md`` (between BEGIN and END; the rest of the file is kept)."""
    sizes = sorted(int(n) for n in results["sizes"])

    def when(n):
        d = results["sizes"][str(n)]
        if d.get("partial"):
            stage, t = d.get("stopped_in") or ("?", "?")
            return f"N={n:,}: **not finished**, stopped in {stage} (started {t} UTC)"
        start = f" (load average {d['load_start'][0]:.1f})" if d.get("load_start") else ""
        return (f"N={n:,}: {d['started']}{start} to {d['finished']}, load average at the end "
                f"{d['load'][0]:.1f}")
    machine_ = next((d["machine"] for d in results["sizes"].values() if d.get("machine")), "")
    shape_ = next((d["encoder"] for d in results["sizes"].values() if d.get("encoder")), None)
    body = f"""{BEGIN}
## The whole method at 10k, 100k and 1M passages (issue 21's rehearsal)

Measured by `benchmarks/rehearsal.py` on {machine_} ({'; '.join(when(n) for n in sizes)}).
Command (the same at every size): `PYTHONPATH=src .venv/bin/python benchmarks/rehearsal.py --sizes 10000 100000
1000000 --check --work /somewhere/outside/the/repo` (`--check` adds the 10k comparison run), then `--doc-only --doc
benchmarks/results/stage_memory.md --notes NOTES.md` renders this section from its `results.json`.

The script's docstring says what runs: synthetic Indonesian passages (about 520 characters, 118 XLM-R tokens),
the same 10,000 unlabeled and 2,000 test questions at every size (a question word and 3-5 of a passage's rarer
terms; a test question's known positive is its passage), **every stage on**: BM25 out of core
(`max_docs_in_memory = 15000`), dense-base with the size's `auto` index (flat up to 1M) in 5,000-passage shards,
agree@3 mining, generation (`passage-cut` backend, 1,000 passages), training (round 1, then mined + generated;
`epochs = 0.2`: 2,000-odd examples each), dense-r1 and dense-gen, evaluation, report. Encoder: {encoder_line(shape_)},
`max_seq_length = 32`.

Each stage ran in its own fresh process (earlier stages skipped by the engine): **peak** is the manifest's
`peak_rss_mb` (VmRSS sampled every 0.2 s), **above start** the peak less the process's RSS when the stage began
(imports, the skipped stages), seconds are wall seconds (CPU-seconds in `results.json`; the load averages above
say how free the cores were).
"report" is `lexdr run CONFIG` itself afterwards (every stage skipped; metrics.json, model cards, report):
its peak is its `ru_maxrss`. BM25's analysis workers are separate processes and not in these peaks.

{render(results)}

### Does any stage's peak grow faster than the index it searches?

Δpeak between sizes against the growth of the index folder(s) the stage searches (bytes on disk; the dense
stages' kept float32 shards, mapped while the index is filled, are not counted in Δindex). Mining, training
and evaluation search no index: their peak must not grow (a 16 MiB allowance for sampling noise).

{growth_check(results)}

### `lexdr plan` against these runs

Plan CPU seconds (2 free cores) against the measured wall seconds and the free-core estimate
(the stage's own CPU-seconds over 1.77 for the stages that keep both cores busy, the README job's measured
ratio on free cores; over 1 for mining and evaluation; BM25: its wall time, as its analysis workers' CPU is not
counted; `free_core_seconds()`). Dense: the base model's stage, and each trained model's (dense-r1 · dense-gen;
the plan prints them together as the language's dense row). The plan's CPU rates were refitted on these sizes and
the README job's manifest (`benchmarks/rehearsal.py --refit MANIFEST`): the ratios are in sample.

{render_plan(results)}

### Every stage at 10k against an in-memory run

The same inputs and config with `[bm25]` built in memory (no `max_docs_in_memory`) and the dense corpus encoded
as one shard (`shard_size = 1000000`), run with `lexdr run`; every result file of each stage folder compared
byte for byte with the rehearsal's (`compare_runs()`: runs, indexes, mined and generated files, trained model
files, metrics; the encoded float32 shards and token ids are compared through the index built from them).

{render_check(results.get("check_10k", {}))}
{notes}
{END}
"""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + body.strip() + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + body.strip() + "\n"
    path.write_text(text, encoding="utf-8")


def save(results: dict, path: Path) -> None:
    """Write ``results`` over ``path``, keeping what another invocation wrote there meanwhile (sizes and checks
    this one does not hold)."""
    on_disk = json.loads(path.read_text()) if path.exists() else {}
    merged = {**on_disk, **results, "sizes": {**on_disk.get("sizes", {}), **results.get("sizes", {})}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(merged, indent=2))
    tmp.replace(path)
    results.update(merged)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        return child(argv[1], int(argv[2]))
    if argv and argv[0] == "_whole":
        return whole(argv[1])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--unlabeled", type=int, default=10_000)
    ap.add_argument("--test", type=int, default=2_000)
    ap.add_argument("--encoder-layers", type=int, default=2, help="transformer layers kept of e5-small's 12")
    ap.add_argument("--encoder-hidden", type=int, default=128, help="hidden units kept of e5-small's 384 (a "
                    "multiple of 32; 384 keeps them all: the first rehearsal's encoder)")
    ap.add_argument("--check", action="store_true", help="also the 10k in-memory and ivf-sq8 comparison runs")
    ap.add_argument("--compare-only", action="store_true", help="with --check: compare what the comparison runs "
                    "have finished so far, run nothing")
    ap.add_argument("--check-ivf", action="store_true", help="with --check: also a 10k run with an ivf-sq8 index")
    ap.add_argument("--work", type=Path, required=True, help="a folder outside the repository for corpora and runs")
    ap.add_argument("--results", type=Path, default=None, help="results JSON (default: WORK/results.json)")
    ap.add_argument("--refit", type=Path, default=None, metavar="MANIFEST",
                    help="print the plan's CPU rates refitted on the sizes measured so far and the README job's "
                         "manifest.json (a finished run of examples/dev-quick.toml); runs nothing")
    ap.add_argument("--doc", type=Path, default=None, help="rewrite the rehearsal section of this markdown file "
                    "(benchmarks/results/stage_memory.md) after each size")
    ap.add_argument("--also", type=Path, nargs="*", default=[], help="--refit: also these results.json files")
    ap.add_argument("--partial", nargs="*", default=[], metavar="N=LOG",
                    help="--doc-only: sizes that did not finish, read from this script's log")
    ap.add_argument("--check-json", type=Path, default=None, help="--doc-only: a --check --compare-only result")
    ap.add_argument("--notes", type=Path, default=None, help="--doc-only: markdown appended to the section")
    ap.add_argument("--doc-only", action="store_true", help="only rewrite --doc from the results so far")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results_path = args.results or args.work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"sizes": {}}
    for n, d in results["sizes"].items():  # recomputed: the plan's rates may have changed since the size ran
        d.setdefault("config", str(args.work / f"n{n}" / "run.toml"))
        if Path(d["config"]).is_file():
            d["plan"] = plan_rows(Path(d["config"]))
            d.setdefault("index_bytes", index_bytes(Path(d["config"]).parent / "run"))
    if args.refit:
        for k, v in refit(results, args.refit, args.also).items():
            print(f"    \"{k}\": {v:.4g},")
        return
    if args.doc_only:
        for spec in args.partial:
            n, log = spec.split("=", 1)
            if n not in results["sizes"] and (part := partial_size(Path(log), int(n))):
                results["sizes"][n] = {**part, "config": str(args.work / f"n{n}" / "run.toml")}
                results["sizes"][n]["plan"] = plan_rows(Path(results["sizes"][n]["config"]))
                results["sizes"][n]["index_bytes"] = index_bytes(args.work / f"n{n}" / "run")
        if args.check_json:
            results["check_10k"] = json.loads(args.check_json.read_text())
        write_doc(results, args.doc, args.notes.read_text() if args.notes else "")
        return
    with open(args.work / "children.log", "a", encoding="utf-8") as log:
        for n in args.sizes:
            folder, corpus, q, model = prepare(args.work, n, args)
            cfg = write_config(folder, corpus, q, model, folder / "run")
            started, load_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
            rows = []
            for k, name in enumerate(stage_names(cfg)):
                print(f"N={n:>9,} {name:24s} started {time.strftime('%H:%M:%S', time.gmtime())}", flush=True)
                r = run_child(cfg, k, log)
                rows.append(r)
                print(f"N={n:>9,} {name:24s} peak {r['peak_rss_mb']:8.1f} MiB  start {r['start_mb']:7.1f}  "
                      f"{r['seconds']:8.1f} s  cpu {r['cpu_s']:8.1f} s{'  (skipped)' if r['skipped'] else ''}",
                      flush=True)
            rows.append(run_whole(cfg, log))
            results["sizes"][str(n)] = {"stages": rows, "plan": plan_rows(cfg), "started": started, "config": str(cfg),
                                        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                        "load": os.getloadavg(), "load_start": load_start, "machine": machine(),
                                        "encoder": encoder_shape(model)}
            results["sizes"][str(n)]["index_bytes"] = index_bytes(folder / "run")
            save(results, results_path)
            print(render(results), render_plan(results), sep="\n\n", flush=True)
            if args.doc:
                write_doc(results, args.doc)
        if args.check:
            results["check_10k"] = check_10k(args.work, args, log)
            save(results, results_path)
            print(json.dumps(results["check_10k"], indent=1))


def machine() -> str:
    from _machine import cpu_name

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu_name()}, {os.cpu_count()} cores, {mem:.1f} GiB, {platform.platform()}"


if __name__ == "__main__":
    main()
