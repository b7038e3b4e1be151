"""PNG plots for the report (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_metrics", "plot_losses", "plot_mining", "running_mean"]


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
    fig, ax = plt.subplots(figsize=(max(7, 0.55 * len(langs) * len(systems) + 3.5), 4.6))
    lo = min((metrics[l].get(s, {}).get(metric, 1.0) for l in langs for s in systems), default=0.0)
    bottom = 0.0 if lo < 0.35 else round(max(0.0, lo - 0.15), 1)  # a metric lives in [0, 1]: stop at 1.0
    span = 1.0 - bottom
    for i, s in enumerate(systems):
        xs = [j + i * width for j in range(len(langs))]
        ys = [metrics[l].get(s, {}).get(metric, 0.0) for l in langs]
        bars = ax.bar(xs, ys, width, label=s)
        for x, y in zip(xs, ys):
            # Inside the top of the bar (white on the bar's colour) where there is room, else just above it:
            # labels never leave the [bottom, 1] axis and never overlap the neighbouring bar's.
            inside = y - bottom > 0.22 * span
            ax.text(x, y - 0.01 * span if inside else max(y, bottom) + 0.01 * span, f"{y:.3f}", ha="center",
                    va="top" if inside else "bottom", rotation=90, fontsize=8,
                    color="white" if inside else "black", fontweight="bold" if inside else "normal")
        del bars
    ax.set_xticks([j + width * (len(systems) - 1) / 2 for j in range(len(langs))])
    ax.set_xticklabels(langs)
    ax.set_ylabel(metric)
    ax.set_ylim(bottom, 1.0)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(f"{metric} on the test queries, per language", pad=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def running_mean(values: list[float], window: int = 25) -> list[float]:
    """Mean of the last ``window`` values at each step (fewer at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_losses(logs: dict[str, list[dict]], path: Path, window: int = 25) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, log in logs.items():
        if not log:
            continue
        steps = [r["step"] for r in log]
        loss = [r["loss"] for r in log]
        ax.plot(steps, loss, alpha=0.35, linewidth=0.8)
        # A running mean shows the trend through the per-batch noise.
        ax.plot(steps, running_mean(loss, window), label=name, color=ax.lines[-1].get_color(), linewidth=1.8)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title(f"Training loss (thin: per batch, thick: running mean over {window} steps)", fontsize=10)
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
    fig, ax = plt.subplots(figsize=(max(5.5, 1.2 * len(langs) + 2), 4.2))
    xs = range(len(langs))
    pairs = any(p is not None for p in prec)  # without qrels there is one bar per language, on its tick
    ax.bar([x - 0.2 if pairs else x for x in xs], cov, 0.4, label="coverage (queries with a pseudo positive)")
    if pairs:
        ax.bar([x + 0.2 for x in xs], [p or 0.0 for p in prec], 0.4, label="precision of pseudo positives (qrels)")
    ax.set_xticks(list(xs))
    ax.set_xlim(-0.7, len(langs) - 0.3)  # every tick (a single language's too) inside the axes, not at an edge
    ax.set_xticklabels(langs)
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("fraction (coverage: of the queries;\nprecision: of their pseudo positives)", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title("Mining: agreement coverage and precision")
    # Below the axes, never over the bars.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
