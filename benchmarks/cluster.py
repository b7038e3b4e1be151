"""Local executor vs Ray executor on one dev task: wall time and whether the outputs are equal.

    nice -n 10 .venv/bin/python benchmarks/cluster.py --task xquad-r-de --out benchmarks/out/cluster

For one dev task's corpus: (1) BM25 built out of core in shards, the analysis shards in a local process pool
vs as Ray tasks (plus the in-memory build for reference), then the test queries' run files compared byte for
byte; (2) dense encoding of the corpus shards with the encoder (default: the provisioned e5-small), in this
process vs on Ray Data actors, then the vectors compared. Ray is started here with ``ray.init(num_cpus=N)``
(its start-up time is reported apart). Writes ``benchmarks/results/cluster.md`` with ``--write``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="xquad-r-de")
    ap.add_argument("--out", default="benchmarks/out/cluster")
    ap.add_argument("--model", default=None, help="encoder folder or id (default: the provisioned e5-small)")
    ap.add_argument("--num-cpus", type=int, default=2, help="ray.init(num_cpus=...)")
    ap.add_argument("--bm25-max-docs", type=int, default=600, help="max_docs_in_memory (3 analysis shards "
                    "in flight: 200 passages a shard)")
    ap.add_argument("--shard-size", type=int, default=256, help="passages per dense shard")
    ap.add_argument("--encode-actors", type=int, default=1)
    ap.add_argument("--encode-num-cpus", type=float, default=1.0, help="CPUs per encoding actor (Ray sets the "
                    "actor's OMP_NUM_THREADS, so torch's threads, to it)")
    ap.add_argument("--max-passages", type=int, default=None, help="encode only the first N passages")
    ap.add_argument("--write", action="store_true", help="write benchmarks/results/cluster.md")
    args = ap.parse_args()

    from lexdr.dense import Encoder, EncoderConfig
    from lexdr.dense.stage import encode_corpus
    from lexdr.executors import ClusterSettings, RayExecutor
    from lexdr.formats import iter_corpus, read_queries, write_corpus_jsonl, write_run
    from lexdr.sparse import BM25Index
    from lexdr.sparse.outofcore import build_out_of_core
    from lexdr.tasks import load_dev_task, write_dev_task

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    task = load_dev_task(args.task)
    files = write_dev_task(task, out / "data")
    corpus = files["corpus"]
    if args.max_passages:
        write_corpus_jsonl(list(iter_corpus(corpus))[: args.max_passages], out / "data" / "corpus.small.jsonl")
        dense_corpus = out / "data" / "corpus.small.jsonl"
    else:
        dense_corpus = corpus
    queries = read_queries(files["queries_test"])
    n_docs = sum(1 for _ in iter_corpus(corpus))
    n_dense = sum(1 for _ in iter_corpus(dense_corpus))
    rows: list[tuple[str, str, float, str]] = []

    t = time.perf_counter()
    import ray

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    t_ray = time.perf_counter() - t
    cluster = ClusterSettings(encode_actors=args.encode_actors, encode_num_cpus=args.encode_num_cpus,
                              analysis_tasks=2)
    ray_ex = RayExecutor(cluster=cluster)

    # BM25
    def bm25(name: str, build) -> Path:
        t0 = time.perf_counter()
        folder = out / f"bm25-{name}"
        build(folder)
        index = BM25Index.load(folder)
        run_path = out / f"run.bm25-{name}.trec"
        write_run(index.search(queries, k=100), run_path, tag="bm25")
        rows.append(("BM25 build + search", name, time.perf_counter() - t0, ""))
        return run_path

    ref = bm25("in memory", lambda f: BM25Index.build(iter_corpus(corpus), lang=task.lang).save(f))
    local = bm25("out of core, local pool", lambda f: build_out_of_core(
        iter_corpus(corpus), f, lang=task.lang, max_docs_in_memory=args.bm25_max_docs, n_jobs=2))
    remote = bm25("out of core, Ray tasks", lambda f: build_out_of_core(
        iter_corpus(corpus), f, lang=task.lang, max_docs_in_memory=args.bm25_max_docs, n_jobs=2, executor=ray_ex))
    same = [p.read_bytes() == ref.read_bytes() for p in (local, remote)]
    rows[-2] = rows[-2][:3] + (f"run file identical to in-memory: {same[0]}",)
    rows[-1] = rows[-1][:3] + (f"run file identical to in-memory: {same[1]}",)

    # dense encoding
    model = args.model
    if model is None:
        from lexdr.models.resolve import DEFAULT_ENCODER, provisioned_dir

        model = str(provisioned_dir(DEFAULT_ENCODER))
    encoder = Encoder(EncoderConfig(model=model, show_progress=False))
    t0 = time.perf_counter()
    a = encode_corpus(dense_corpus, encoder, out / "dense-local", shard_size=args.shard_size)
    rows.append(("dense encode", "local (this process)", time.perf_counter() - t0, ""))
    t0 = time.perf_counter()
    b = encode_corpus(dense_corpus, encoder, out / "dense-ray", shard_size=args.shard_size, executor=ray_ex)
    diff = max(float(np.abs(np.asarray(x.open()) - np.asarray(y.open())).max()) for x, y in zip(a, b))
    rows.append(("dense encode", f"Ray Data, {args.encode_actors} actor(s) x {args.encode_num_cpus:g} CPU",
                 time.perf_counter() - t0,
                 f"max |Δ| vs local {diff:.2e} ({len(b)} shards)"))
    ray.shutdown()

    load = os.getloadavg()
    lines = [f"# Local vs Ray executor ({args.task})", "",
             f"{datetime.date.today().isoformat()}, {cpu_name()}, {os.cpu_count()} cores, no GPU; "
             f"`ray.init(num_cpus={args.num_cpus})` on the same machine; ray {ray.__version__}. "
             f"**The machine was shared** with other jobs (load average at the end {load[0]:.1f}/{load[1]:.1f}/"
             f"{load[2]:.1f} on 2 cores): times compare the two executors in one run, not absolute speed.", "",
             f"Corpus: {n_docs} passages (BM25), {n_dense} encoded with `{Path(model).name}` (shards of "
             f"{args.shard_size}); {len(queries)} test queries, 100 hits. Ray start-up "
             f"(`ray.init`): {t_ray:.1f} s, not included below.", "",
             "| work | executor | wall s | outputs |", "|---|---|---:|---|"]
    lines += [f"| {w} | {e} | {s:.1f} | {o} |" for w, e, s, o in rows]
    lines += ["", "Ray sets an actor's OMP_NUM_THREADS (torch's intra-op threads) to its `num_cpus`; the local run "
              f"uses torch's default ({os.cpu_count()} threads here). Ray's start-up, actor start (importing torch "
              "and loading the model in a new process) and object-store transfers are the overhead on one machine; "
              "Ray pays off when the actors are on other GPUs or nodes.", "",
              "Command: `nice -n 10 .venv/bin/python benchmarks/cluster.py " + " ".join(sys.argv[1:]) + "`"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        Path("benchmarks/results/cluster.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
