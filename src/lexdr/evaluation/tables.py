"""Per-language (or per-task) result tables: as Markdown, as a rich table, as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from lexdr.formats.files import atomic_write

__all__ = ["average_row", "markdown_table", "rich_table", "write_results_json"]

Results = Mapping[str, Mapping[str, float]]  # row name (language/task/system) -> metric -> value


def average_row(results: Results, metrics: list[str]) -> dict[str, float]:
    """Unweighted mean over rows (each language counts once, as in the Mr. TyDi papers)."""
    rows = [r for r in results.values() if all(m in r for m in metrics)]
    return {m: sum(r[m] for r in rows) / len(rows) for m in metrics} if rows else {}


def markdown_table(results: Results, metrics: list[str], first_col: str = "language", average: bool = True,
                   digits: int = 4) -> str:
    lines = [f"| {first_col} | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    rows = dict(results)
    if average and len(rows) > 1:
        rows["**average**"] = average_row(results, metrics)
    for name, vals in rows.items():
        cells = [f"{vals[m]:.{digits}f}" if m in vals else "" for m in metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def rich_table(results: Results, metrics: list[str], title: str | None = None, first_col: str = "language",
               average: bool = True):
    from rich.table import Table

    table = Table(title=title)
    table.add_column(first_col)
    for m in metrics:
        table.add_column(m, justify="right")
    rows = dict(results)
    if average and len(rows) > 1:
        rows["average"] = average_row(results, metrics)
    for name, vals in rows.items():
        table.add_row(name, *[f"{vals[m]:.4f}" if m in vals else "" for m in metrics])
    return table


def write_results_json(results: Mapping, path: str | Path) -> None:
    with atomic_write(path) as fh:
        json.dump(results, fh, ensure_ascii=False, indent=2)
