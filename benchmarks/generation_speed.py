"""How fast the trained query generator writes queries on this machine, one passage per generate() call against
several: sizes a CPU run of the trained backend before starting one.

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/generation_speed.py GENERATOR_FOLDER \
        [--task xquad-r-de] [--passages 4] [--batch-sizes 1 4] [--max-new-tokens 32] [--threads 2]

GENERATOR_FOLDER: a ``model/`` folder written by ``lexdr generator train`` / the pipeline's generator stage /
``benchmarks/generation_trained.py``. The passages are the first ``--passages`` of the task's corpus (the same
ones for every batch size); greedy decoding, as the pipeline's default. Prints a Markdown table: seconds per
passage per batch size and the speed-up over batch 1, plus that the outputs are equal across batch sizes
(left padding must not change what a passage gets).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("generator", type=Path)
    ap.add_argument("--task", default="xquad-r-de")
    ap.add_argument("--passages", type=int, default=4)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from lexdr.generation import GenerationConfig
    from lexdr.generation.trained import load_trained_generator
    from lexdr.tasks import DEV_TASKS, load_dev_task

    torch.set_num_threads(args.threads)
    task = load_dev_task(args.task)
    passages = [d.full_text() for d in task.corpus[:args.passages]]
    t0 = time.perf_counter()
    gen = load_trained_generator(args.generator, GenerationConfig(backend="trained", model=str(args.generator),
                                                                  max_new_tokens=args.max_new_tokens))
    load_s = time.perf_counter() - t0
    rows, outputs = [], {}
    for bs in args.batch_sizes:
        t0 = time.perf_counter()
        out = []
        for i in range(0, len(passages), bs):
            out.extend(gen.generate(passages[i:i + bs], DEV_TASKS[args.task]))
        seconds = time.perf_counter() - t0
        outputs[bs] = out
        rows.append((bs, seconds / len(passages)))
        print(f"batch {bs}: {seconds / len(passages):.2f} s/passage", flush=True)
    base = rows[0][1]
    same = all(outputs[bs] == outputs[args.batch_sizes[0]] for bs in args.batch_sizes)
    print(f"\n{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_name()}, {os.cpu_count()} CPUs, "
          f"{args.threads} torch threads, Python {platform.python_version()}, torch {torch.__version__}; "
          f"{args.task}, {len(passages)} passages, greedy, max_new_tokens {args.max_new_tokens}; "
          f"model load {load_s:.0f} s\n")
    print("| passages per generate() call | seconds per passage | speed-up over 1 |")
    print("|---:|---:|---:|")
    for bs, per in rows:
        print(f"| {bs} | {per:.2f} | {base / per:.2f}x |")
    print(f"\nOutputs identical across batch sizes: {'yes' if same else 'no'}")
    for p, q in zip(passages, outputs[args.batch_sizes[-1]]):
        print(f"- {q[0] if q else ''!r} <- {p[:70]!r}")


if __name__ == "__main__":
    main()
