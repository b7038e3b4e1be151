"""The inspection pages' contexts, shared by the live service (:mod:`lexdr.serve.app`) and the static copy
(:func:`write_html`, behind ``lexdr report --html``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from lexdr.formats.files import atomic_folder
from lexdr.serve.render import StaticLinks, _safe, environment, highlight
from lexdr.serve.views import FILTERS, MINING_FILTERS, VERSUS, RunViews

__all__ = ["column_title", "build_columns", "tests_context", "mining_context", "generated_context", "write_html"]

ROW_LIMIT = 1000  # rows per page: a browser stays quick, the static files stay small


def column_title(name: str, trained: str | None) -> str:
    if name == "bm25":
        return "BM25"
    if name == "dense-base":
        return "base encoder"
    if name.startswith("adaptive-"):
        return "adaptive hybrid"
    if name.startswith("hybrid"):
        return "RRF hybrid"
    return "trained"


def build_columns(names: list[str], hits: dict[str, list[tuple[str, float]]], ranks: dict[str, dict[str, int]],
                  passages: dict[str, tuple[str, str]], analyzer: Callable | None, query: str, gold: set[str],
                  mined: dict[str, dict[str, int]], metrics: dict[str, dict], main_metric: str,
                  trained: str | None) -> list[dict[str, Any]]:
    """Each column's hits with the passage text (query terms marked), and the rank each other column gives it."""
    titles = {n: column_title(n, trained) for n in names}
    columns = []
    for name in names:
        rows = []
        for rank, (doc, score) in enumerate(hits.get(name, []), start=1):
            title, text = passages.get(doc, ("", ""))
            rows.append({"rank": rank, "doc_id": doc, "score": score, "gold": doc in gold,
                         "title": highlight(title, analyzer, query) if title else "",
                         "text": highlight(_cut(text), analyzer, query),
                         "elsewhere": [(titles[o], ranks.get(o, {}).get(doc)) for o in names if o != name],
                         "mined": mined.get(doc)})
        columns.append({"name": name, "title": titles[name], "hits": rows,
                        "metric": metrics.get(name, {}).get(main_metric)})
    return columns


def _cut(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def tests_context(views: RunViews, lang: str, trained: str | None, versus: str, only: str) -> dict[str, Any]:
    trained = trained if trained in views.trained_systems(lang) else views.best_trained(lang)
    versus = versus if versus in VERSUS else "bm25"
    only = only if only in FILTERS else "all"
    every = views.test_rows(lang, trained, versus, "all")
    counts = {"all": len(every), "wins": sum(r["gap"] > 0 for r in every),
              "loses": sum(r["gap"] < 0 for r in every), "ties": sum(r["gap"] == 0 for r in every)}
    rows = views.test_rows(lang, trained, versus, only)
    return {"page": "tests", "trained": trained, "trained_options": views.trained_systems(lang), "versus": versus,
            "versus_options": VERSUS, "only": only, "filters": FILTERS, "counts": counts,
            "rows": rows[:ROW_LIMIT], "truncated": len(rows) if len(rows) > ROW_LIMIT else 0,
            "systems": list(views.test_runs(lang)), "depth": _depth(views)}


def mining_context(views: RunViews, lang: str, stage: str, only: str, doc: str | None) -> dict[str, Any]:
    stages = views.mining_stages(lang)
    stage = stage if stage in stages else (stages[0] if stages else "mine")
    only = only if only in MINING_FILTERS else "all"
    rows = views.mining_rows(lang, stage, only, doc)
    _, summary = views.mining(lang, stage)
    overview = [{"label": l, "summary": views.mining(l, s)[1]} for l in views.labels for s in views.mining_stages(l)]
    passages = views.passages(lang)
    return {"page": "mining", "stages": stages, "stage": stage, "only": only, "filters": MINING_FILTERS,
            "doc": doc, "rows": rows[:ROW_LIMIT], "truncated": len(rows) if len(rows) > ROW_LIMIT else 0,
            "summary": summary, "overview": overview, "passage": lambda d: _text(passages, d)}


def generated_context(views: RunViews, lang: str) -> dict[str, Any]:
    rows, stats = views.generated(lang)
    passages = views.passages(lang)
    return {"page": "generated", "rows": rows[:ROW_LIMIT], "truncated": len(rows) if len(rows) > ROW_LIMIT else 0,
            "stats": stats, "passage": lambda d: _text(passages, d)}


def _text(passages: dict[str, tuple[str, str]], doc: str) -> str:
    title, text = passages.get(doc, ("", ""))
    return f"{title}: {text}" if title else text


def _depth(views: RunViews) -> int:
    return int((views.manifest["config"].get("bm25") or {}).get("depth") or 100)


def write_html(run_dir: str | Path, out_dir: str | Path | None = None, max_queries: int = 100) -> Path:
    """Write the inspection pages of a run as static HTML (default ``RUN/report/html/``; the folder is
    replaced as a whole): an index with the metrics, per language the test set under every filter, the mining
    of each stage and the generated queries, and side-by-side pages (from the run's own test runs) for the
    ``max_queries`` test queries per language with the largest gap between the best trained model and BM25."""
    from lexdr.sparse import BM25Index

    views = RunViews(run_dir)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "report" / "html"
    env = environment()
    chosen: dict[str, list[dict]] = {}
    for label in views.labels:
        rows = views.test_rows(label, views.best_trained(label), "bm25", "all") if views.metrics.get(label) else []
        chosen[label] = rows[:max_queries]
    links = StaticLinks({(l, r["query_id"]) for l, rows in chosen.items() for r in rows})
    base = {"run_name": views.run_dir.name, "links": links, "has_run": True, "langs": views.labels, "ncols": 4}
    with atomic_folder(out, mode=0o755) as tmp:
        def page(name: str, template: str, ctx: dict) -> None:
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(env.get_template(template).render(**{**base, **ctx}), encoding="utf-8")

        first = views.labels[0] if views.labels else ""
        page("index.html", "index.html", {"page": "index", "lang": first, "metrics": views.metrics,
                                          "metric_names": views.metric_names, "run_path": os.path.normpath(str(run_dir))})
        for label in views.labels:
            ctx = {"lang": label}
            for versus in VERSUS:  # (a language without test queries gets empty lists, not broken links)
                for only in FILTERS:
                    page(links.tests(label, None, versus, only), "tests.html",
                         {**ctx, **tests_context(views, label, None, versus, only), "written": len(chosen[label])})
            for stage in views.mining_stages(label) or ["mine"]:
                page(links.mining(label, stage), "mining.html", {**ctx, **mining_context(views, label, stage, "all", None)})
            page(links.generated(label), "generated.html", {**ctx, **generated_context(views, label)})
            if not chosen[label]:
                continue
            analyzer = None
            bm25_dir = views.run_dir / label / "bm25" / "index"
            if (bm25_dir / "config.json").is_file():
                analyzer = BM25Index.load(bm25_dir, mmap=True).analyzer
            trained = views.best_trained(label)
            names = views.columns(label, trained)
            mined = views.mined_labels_by_doc(label)
            for r in chosen[label]:
                hits = views.side_by_side_from_runs(label, r["query_id"], names, 10)
                cols = build_columns(names, hits, views.rank_maps_from_runs(label, r["query_id"], names),
                                     views.passages(label), analyzer, r["query"], set(r["gold"]), mined,
                                     views.metrics.get(label, {}), views.main_metric(), trained)
                page(f"q/{_safe(label)}/{_safe(r['query_id'])}.html", "search.html",
                     {**ctx, "page": "search", "q": r["query"], "qid": r["query_id"], "columns": cols,
                      "test_query": r, "error": None, "depth": _depth(views), "main_metric": views.main_metric(),
                      "trained": trained, "trained_options": [], "k": 10, "max_k": 10, "query_char_limit": 0,
                      "column_names": names, "links": _Up(links)})
    return out


class _Up(StaticLinks):
    """Links from a page two folders down (``q/<label>/``)."""

    def __init__(self, links: StaticLinks):
        super().__init__(links.written)

    def search(self, *a, **kw) -> str:
        href = super().search(*a, **kw)
        return "../../" + href if href else ""

    def tests(self, *a, **kw) -> str:
        return "../../" + super().tests(*a, **kw)

    def mining(self, *a, **kw) -> str:
        return "../../" + super().mining(*a, **kw)

    def generated(self, *a, **kw) -> str:
        return "../../" + super().generated(*a, **kw)

    def home(self) -> str:
        return "../../index.html"
