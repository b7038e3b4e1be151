"""PNG plots for the report (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_metrics", "plot_losses", "plot_mining"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metrics(metrics: dict[str, dict[str, dict[str, float]]], metric: str, path: Path) -> Path:
    """Grouped bars: one group per language, one bar per system."""
    plt = _plt()
    langs = list(metrics)
    systems = list(dict.fromkeys(s for m in metrics.values() for s in m))
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(max(7, 1.7 * len(langs) + 3.5), 4.4))
    for i, s in enumerate(systems):
        xs = [j + i * width for j in range(len(langs))]
        ys = [metrics[l].get(s, {}).get(metric, 0.0) for l in langs]
        ax.bar(xs, ys, width, label=s)
        for x, y in zip(xs, ys):
            ax.text(x, y + 0.005, f"{y:.3f}", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_xticks([j + width * (len(systems) - 1) / 2 for j in range(len(langs))])
    ax.set_xticklabels(langs)
    ax.set_ylabel(metric)
    lo = min((metrics[l].get(s, {}).get(metric, 1.0) for l in langs for s in systems), default=0.0)
    ax.set_ylim(max(0.0, lo - 0.1), 1.12)  # headroom for the value labels
    ax.set_title(f"{metric} on the test queries, per language", pad=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_losses(logs: dict[str, list[dict]], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, log in logs.items():
        if not log:
            continue
        steps = [r["step"] for r in log]
        loss = [r["loss"] for r in log]
        ax.plot(steps, loss, alpha=0.35, linewidth=0.8)
        # A running mean shows the trend through the per-batch noise.
        w = max(1, len(loss) // 20)
        smooth = [sum(loss[max(0, i - w + 1):i + 1]) / len(loss[max(0, i - w + 1):i + 1]) for i in range(len(loss))]
        ax.plot(steps, smooth, label=name, color=ax.lines[-1].get_color(), linewidth=1.8)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss (thin: per batch, thick: running mean)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_mining(stats: dict[str, dict], path: Path) -> Path:
    plt = _plt()
    langs = list(stats)
    cov = [stats[l].get("with_positive", 0) / max(1, stats[l].get("queries", 1)) for l in langs]
    prec = [stats[l].get("quality", {}).get("precision") for l in langs]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(langs) + 2), 3.6))
    xs = range(len(langs))
    ax.bar([x - 0.2 for x in xs], cov, 0.4, label="coverage (queries with a pseudo positive)")
    if any(p is not None for p in prec):
        ax.bar([x + 0.2 for x in xs], [p or 0.0 for p in prec], 0.4, label="precision of pseudo positives (qrels)")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(langs)
    ax.set_ylim(0, 1.05)
    ax.set_title("Mining: agreement coverage and precision")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
