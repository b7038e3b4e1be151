"""Generated queries as training data, per generator: MRR@10 of mined-only, + passage-cut, + trained, + both.

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/generator_mix.py \
        --config examples/dev-quick.toml --cut runs/dev-quick --trained runs/gen-trained/with-queries \
        [--work runs/generator-mix] [--out benchmarks/results/generator_mix.md]

``--cut`` and ``--trained``: two finished ``lexdr run`` folders of ``--config`` that differ only in
``[generation] backend`` (passage-cut; trained, e.g. ``benchmarks/corpus_only.py --variants with-queries
--backend trained``). Their ``lexdr-r1`` (mined only) must agree, since the seeds and the mined data are the
same: the script checks it. ``lexdr-gen`` of each is "+ passage-cut" and "+ trained". "+ both" is trained here
by the pipeline's own ``train_stage`` with the config's ``[training]``, on every language's mined queries +
the passage-cut run's generated-and-mined queries + the trained run's (their query ids prefixed ``trained:``;
both generators wrote for the same seeded sample of unreached passages), then scored like the pipeline scores
``lexdr-gen``: ``dense_stage`` over the corpus, the test half searched ``100`` deep, ``evaluate``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEASURE = "MRR@10"


def _prefixed(src: Path, dst: Path, prefix: str) -> Path:
    """A copy of a mined.jsonl with every query id prefixed (two generators may write the same ids)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
        for line in fin:
            row = json.loads(line)
            row["query_id"] = prefix + row["query_id"]
            fout.write(json.dumps(row, ensure_ascii=False) + "\n")
    return dst


def train_both(cfg, cut: Path, trained: Path, work: Path) -> dict[str, dict[str, float]]:
    from lexdr.dense.stage import dense_stage
    from lexdr.evaluation import evaluate
    from lexdr.formats import read_qrels, read_run
    from lexdr.pipeline.graph import _encoder
    from lexdr.training.stage import TrainSource, train_stage

    labels = [p.name for p in sorted(cut.iterdir()) if (p / "data" / "corpus.jsonl").is_file()]
    sources = []
    for label in labels:
        extra = _prefixed(trained / label / "generate" / "mined.jsonl", work / label / "trained-generated.jsonl",
                          "trained:")
        sources.append(TrainSource(label, cut / label / "data" / "corpus.jsonl",
                                   (cut / label / "mine" / "mined.jsonl", cut / label / "generate" / "mined.jsonl",
                                    extra)))
    tcfg = dataclasses.replace(cfg.training, show_progress=False)
    train_stage(tuple(sources), work / "train-both", tcfg)
    enc = _encoder(cfg, str(work / "train-both" / "model"))
    out = {}
    for label in labels:
        data = cut / label / "data"
        dense_stage(data / "corpus.jsonl", {"test": data / "queries.test.tsv"}, enc, 100, work / label / "dense-both",
                    tag="dense-both", index_config=cfg.dense_index)
        run = read_run(work / label / "dense-both" / "run.test.trec")
        out[label] = evaluate(run, read_qrels(data / "qrels.test.txt"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "dev-quick.toml")
    ap.add_argument("--cut", type=Path, required=True, help="finished run folder, backend passage-cut")
    ap.add_argument("--trained", type=Path, required=True, help="finished run folder, backend trained")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "generator-mix")
    ap.add_argument("--out", type=Path, default=None, help="also write the table here (Markdown)")
    args = ap.parse_args()

    from lexdr.pipeline.config import load_config

    cfg = load_config(args.config)
    m_cut = json.loads((args.cut / "metrics.json").read_text())
    m_tr = json.loads((args.trained / "metrics.json").read_text())
    both = train_both(cfg, args.cut, args.trained, args.work)
    lines = [f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {cpu_name()} "
             f"(Python {platform.python_version()}); config `{args.config.resolve().relative_to(ROOT)}`; test halves, "
             f"{MEASURE}.", "",
             "| task | BM25 | base | mined only (cut run) | mined only (trained run) | + passage-cut | + trained "
             "generator | + both |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label in both:
        c, t = m_cut[label], m_tr[label]
        cells = [c["bm25"][MEASURE], c["dense-base"][MEASURE], c["lexdr-r1"][MEASURE], t["lexdr-r1"][MEASURE],
                 c["lexdr-gen"][MEASURE], t["lexdr-gen"][MEASURE], both[label][MEASURE]]
        lines.append(f"| {label} | " + " | ".join(f"{v:.4f}" for v in cells) + " |")
    agree = all(abs(m_cut[k]["lexdr-r1"][MEASURE] - m_tr[k]["lexdr-r1"][MEASURE]) < 1e-9 for k in both)
    lines += ["", f"Mined-only models of the two runs agree: {'yes' if agree else 'NO (the runs differ in more than the generator)'}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
