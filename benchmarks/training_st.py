"""lexdr's training loop vs sentence-transformers' trainer with its cached loss, on the same data.

    nice -n 10 .venv/bin/python benchmarks/training_st.py --model PATH [--steps 6 --batch 16 --mini-batch 4]

Both train the same model on the same (query, positive, hard negative) triples — XQuAD-R questions, their
paragraph, another article's paragraph — with in-batch InfoNCE under a gradient cache of ``--mini-batch``
sequences: lexdr ``train(loss="contrastive")`` vs ``SentenceTransformerTrainer`` +
``CachedMultipleNegativesRankingLoss`` (scale = 1 / lexdr's temperature), AdamW, constant learning rate, no
warmup, word embeddings frozen in both. Each side runs three times in its own process: uninterrupted;
stopped after half the steps (right after a checkpoint); resumed from that checkpoint. Reported: peak
resident memory (RSS) of the uninterrupted run, mean seconds per step, and whether the resumed run's loss
trajectory and final weights equal the uninterrupted run's.

Data order differs between the two sides (each has its own sampler), so their losses are not compared to
each other — only each side's resume to its own uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")
sys.path.insert(0, str(Path(__file__).resolve().parent))
TEMPERATURE = 0.05


def triples(n: int) -> list[tuple[str, str, str]]:
    from lexdr.tasks import find_data_dir

    data = find_data_dir()
    if data is None:
        raise SystemExit("needs the dev data (set LEXDR_DATA to the shared data folder)")
    articles = json.loads((data / "xquad-r" / "de.json").read_text())["data"]
    paras = [(a_i, p["context"], p["qas"]) for a_i, a in enumerate(articles) for p in a["paragraphs"]]
    out = []
    for k, (a_i, ctx, qas) in enumerate(paras):
        neg = next(c for j, c, _ in paras[k + 7:] + paras[:k] if j != a_i)
        out.append((qas[0]["question"], ctx, neg))
    return out[:n]


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_lexdr(args, data, out: Path, stop: int | None) -> dict:
    from lexdr.training import TrainConfig, TrainingExample, train

    corpus = {}
    examples = []
    for i, (q, pos, neg) in enumerate(data):
        corpus[f"p{i}"], corpus[f"n{i}"] = pos, neg
        examples.append(TrainingExample(q, [f"p{i}", f"n{i}"], [1.0, 0.0], f"p{i}", [f"n{i}"]))
    cfg = TrainConfig(model=args.model, loss="contrastive", epochs=args.steps * args.batch / len(examples),
                      lr=args.lr, batch_size=args.batch, mini_batch_size=args.mini_batch, warmup_ratio=0.0,
                      max_query_length=64, max_passage_length=args.max_len, contrastive_temperature=TEMPERATURE,
                      checkpoint_every=args.steps // 2, show_progress=False, seed=13, device="cpu")
    t = time.perf_counter()
    train(examples, corpus, out, cfg, stop_after_steps=stop)
    wall = time.perf_counter() - t
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    return {"loss": [r["loss"] for r in log], "step_s": [r["seconds"] for r in log], "wall_s": wall,
            "model": str(out / "model")}


def run_st(args, data, out: Path, stop: int | None, resume: bool) -> dict:
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss
    from transformers import TrainerCallback

    model = SentenceTransformer(args.model, device="cpu", local_files_only=True)
    model.max_seq_length = args.max_len
    for name, p in model.named_parameters():
        if "word_embeddings" in name:
            p.requires_grad_(False)
    prompts = getattr(model, "prompts", None) or {}
    pq, pp = prompts.get("query", "query: "), prompts.get("passage", "passage: ")
    ds = Dataset.from_dict({"anchor": [pq + q for q, _, _ in data], "positive": [pp + p for _, p, _ in data],
                            "negative": [pp + n for _, _, n in data]})
    loss = CachedMultipleNegativesRankingLoss(model, scale=1 / TEMPERATURE, mini_batch_size=args.mini_batch)
    targs = SentenceTransformerTrainingArguments(
        output_dir=str(out), per_device_train_batch_size=args.batch, max_steps=args.steps, learning_rate=args.lr,
        lr_scheduler_type="constant", warmup_ratio=0.0, weight_decay=0.01, max_grad_norm=1.0, seed=13,
        save_strategy="steps", save_steps=args.steps // 2, logging_steps=1, report_to=[], use_cpu=True,
        dataloader_drop_last=True, disable_tqdm=True)
    losses, times = [], []

    class Record(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            times.append(time.perf_counter() - self.t)
            if stop is not None and state.global_step >= stop:
                control.should_save = True
                control.should_training_stop = True

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=ds, loss=loss, callbacks=[Record()])
    t = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume or None)
    wall = time.perf_counter() - t
    final = out / "final"
    model.save(str(final))
    del torch
    return {"loss": losses, "step_s": times, "wall_s": wall, "model": str(final)}


def child(args) -> None:
    data = triples(args.steps * args.batch)
    out = Path(args.work) / args.side / args.phase
    if args.phase == "resumed":
        out = Path(args.work) / args.side / "stopped"
    stop = args.steps // 2 if args.phase == "stopped" else None
    if args.side == "lexdr":
        res = run_lexdr(args, data, out, stop)
    else:
        res = run_st(args, data, out, stop, resume=args.phase == "resumed")
    res["peak_rss_mib"] = _max_rss_mib()
    print("RESULT " + json.dumps(res))


def _weights_equal(a: str, b: str) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(str(Path(a) / "model.safetensors")), load_file(str(Path(b) / "model.safetensors"))
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--mini-batch", type=int, default=4)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--work", default="benchmarks/out/training_st")
    ap.add_argument("--side", choices=["lexdr", "st"], default=None)
    ap.add_argument("--phase", choices=["straight", "stopped", "resumed"], default=None)
    ap.add_argument("--no-resume", action="store_true", help="only the uninterrupted runs (memory and time)")
    args = ap.parse_args()
    if args.side:
        return child(args)
    import shutil

    shutil.rmtree(args.work, ignore_errors=True)
    results = {}
    for side in ("lexdr", "st"):
        for phase in ("straight",) if args.no_resume else ("straight", "stopped", "resumed"):
            cmd = [sys.executable, __file__, "--side", side, "--phase", phase, "--model", args.model, "--steps",
                   str(args.steps), "--batch", str(args.batch), "--mini-batch", str(args.mini_batch), "--max-len",
                   str(args.max_len), "--lr", str(args.lr), "--work", args.work]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{side}/{phase} failed:\n{proc.stderr[-3000:]}")
            results[(side, phase)] = json.loads(line[7:])
    print(f"# lexdr loop vs sentence-transformers trainer — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n")
    from _machine import cpu_name

    print(f"{cpu_name()}, {os.cpu_count()} cores (shared); python {platform.python_version()}; model {args.model}; "
          f"{args.steps} steps of {args.batch} queries (+2 passages each, max {args.max_len} tokens), gradient "
          f"cache chunks of {args.mini_batch}\n")
    print("| trainer | peak RSS (MiB) | s/step | resumed losses = uninterrupted | max weight diff, resumed vs "
          "uninterrupted |\n|---|---:|---:|---|---:|")
    for side, name in (("lexdr", "lexdr train()"), ("st", "SentenceTransformerTrainer + CachedMNRL")):
        s, half = results[(side, "straight")], args.steps // 2
        steady = s["step_s"][1:]
        if args.no_resume:
            print(f"| {name} | {s['peak_rss_mib']:,.0f} | {sum(steady) / len(steady):.2f} | not run | |")
            continue
        r = results[(side, "resumed")]
        resumed_tail = r["loss"][-(args.steps - half):]
        same = all(abs(a - b) <= 1e-6 * max(1.0, abs(a)) for a, b in zip(s["loss"][half:], resumed_tail))
        print(f"| {name} | {s['peak_rss_mib']:,.0f} | {sum(steady) / len(steady):.2f} | "
              f"{'yes' if same and len(resumed_tail) == args.steps - half else 'NO'} "
              f"({[round(x, 5) for x in s['loss'][half:]]} vs {[round(x, 5) for x in resumed_tail]}) | "
              f"{_weights_equal(s['model'], r['model']):.2e} |")


if __name__ == "__main__":
    main()
