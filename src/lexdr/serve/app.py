"""The HTTP service: a JSON search API and the inspection pages, in one FastAPI app.

Every system is opened before the app is made (:mod:`lexdr.serve.systems`); the app's lifespan starts and
stops the micro-batchers. Requests are validated before any work (k capped, query length and body size
limited, unknown language or system answered with 404 naming the valid values); an error inside the service
answers 500 with one line and is logged with its traceback on the server side only. Nothing here writes a file.
"""


import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from lexdr.serve.pages import build_columns, generated_context, mining_context, tests_context
from lexdr.serve.render import LiveLinks, environment
from lexdr.serve.systems import Systems
from lexdr.serve.views import RunViews

__all__ = ["create_app"]

# (no `from __future__ import annotations` here: FastAPI reads the request models from the annotations)
logger = logging.getLogger(__name__)
access_logger = logging.getLogger("lexdr.serve.access")


def _json(obj: Any) -> Response:
    """``obj`` as a JSON response, written by the json module's C encoder in one call: FastAPI's default path
    (``jsonable_encoder`` walking every hit, then ``json.dumps``) cost more server CPU than a BM25 search."""
    return Response(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
                    media_type="application/json")


class _Guard:
    """ASGI middleware: refuses bodies over ``max_body`` bytes (413) and writes one JSON access-log line per
    request (method, path, status, milliseconds, client; never the query text)."""

    def __init__(self, app, max_body: int):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = [0]
        received = [0]

        async def send_logged(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        async def receive_limited():
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > self.max_body:  # a chunked body that grew past the limit: stop reading it
                    return {"type": "http.disconnect"}
            return message

        too_large = JSONResponse({"detail": f"request body over {self.max_body} bytes"}, status_code=413)
        try:
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await too_large(scope, receive, send_logged)
                return
            if length is None and scope.get("method") in ("POST", "PUT", "PATCH"):
                # a chunked body: read it here, up to the limit, and hand the app the bytes read
                chunks, more = [], True
                while more:
                    message = await receive_limited()
                    if message["type"] == "http.disconnect":
                        if received[0] > self.max_body:
                            await too_large(scope, receive, send_logged)
                        return
                    chunks.append(message.get("body", b""))
                    more = message.get("more_body", False)
                body = b"".join(chunks)
                sent = [False]

                async def replay():
                    if not sent[0]:
                        sent[0] = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()

                await self.app(scope, replay, send_logged)
                return
            await self.app(scope, receive_limited, send_logged)
        finally:
            client = scope.get("client")
            access_logger.info(json.dumps({
                "method": scope.get("method"), "path": scope.get("path"), "status": status[0] or None,
                "ms": round((time.perf_counter() - start) * 1000, 2), "bytes_in": received[0],
                "client": f"{client[0]}:{client[1]}" if client else None}))


def create_app(systems: Systems, views: RunViews | None = None) -> FastAPI:
    """The app serving ``systems`` (and, for a run folder, its inspection pages from ``views``)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        systems.start()
        try:
            yield
        finally:
            await systems.stop()

    app = FastAPI(title="lexdr serve", version="1", lifespan=lifespan,
                  description=f"Search the retrievers of `{systems.name}` (BM25, dense, trained, hybrids) and look "
                              "inside the run. Read-only.")
    app.add_middleware(_Guard, max_body=systems.config.max_body_bytes)
    _add_error_handlers(app)
    _add_api(app, systems)
    _add_pages(app, systems, views)
    return app


def _request_models(cfg) -> tuple[type[BaseModel], type[BaseModel]]:
    """The bodies of POST /api/search and /api/search/batch, with this service's limits."""

    class SearchRequest(BaseModel):
        query: str = Field(min_length=1, max_length=cfg.query_char_limit, description="The query text.")
        lang: str = Field(max_length=100, description="A language label of the run (see /api/systems), or its code.")
        system: str = Field(max_length=100, description="A system of that language (see /api/systems).")
        k: int = Field(10, ge=1, le=cfg.max_k, description="Hits to return.")

    class BatchRequest(BaseModel):
        queries: list[str] = Field(min_length=1, max_length=cfg.max_batch_queries)
        lang: str = Field(max_length=100)
        system: str = Field(max_length=100)
        k: int = Field(10, ge=1, le=cfg.max_k)

    return SearchRequest, BatchRequest


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        # the errors without the offending input: a 1 MB query is not sent back
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        logger.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error; the service logged it"}, status_code=500)


def _add_api(app: FastAPI, systems: Systems) -> None:
    """The JSON API: health, systems, search (GET and POST) and batch search."""
    cfg = systems.config
    started = time.time()
    SearchRequest, BatchRequest = _request_models(cfg)

    def _hits(language, hits) -> list[dict[str, Any]]:
        out = []
        for rank, h in enumerate(hits, start=1):
            title, text = language.passages.get(h.doc_id, ("", ""))
            out.append({"rank": rank, "doc_id": h.doc_id, "score": float(h.score), "title": title, "text": text})
        return out

    async def _search(lang: str, system: str, texts: list[str], k: int):
        try:
            language, _ = systems.system(lang, system)
        except KeyError as e:
            return None, JSONResponse({"detail": e.args[0]}, status_code=404)
        return language, await systems.search(lang, system, texts, k)

    @app.get("/api/health", tags=["service"])
    async def health() -> dict:
        """Liveness, uptime and the micro-batchers' counters (batches, items, largest batch)."""
        return {"status": "ok", "run": systems.name, "uptime_s": round(time.time() - started, 1),
                "batchers": systems.stats()}

    @app.get("/api/systems", tags=["service"])
    async def list_systems() -> dict:
        """Languages, their systems (with the run's metrics and hybrids' fitted weights), and the limits."""
        return {"run": systems.name, "languages": [
            {"label": l.label, "lang": l.lang, "passages": len(l.passages),
             "systems": [dict(s.describe(), metrics=l.metrics.get(s.name, {})) for s in l.systems.values()]}
            for l in systems.languages.values()],
            "limits": {"max_k": cfg.max_k, "query_char_limit": cfg.query_char_limit,
                       "max_batch_queries": cfg.max_batch_queries, "max_body_bytes": cfg.max_body_bytes}}

    @app.post("/api/search", tags=["search"])
    async def search(req: SearchRequest):
        """One query's top ``k`` hits: rank, doc id, score, title and text."""
        t0 = time.perf_counter()
        language, result = await _search(req.lang, req.system, [req.query], req.k)
        if language is None:
            return result
        return _json({"query": req.query, "lang": language.label, "system": req.system, "k": req.k,
                      "hits": _hits(language, result[0]), "took_ms": round((time.perf_counter() - t0) * 1000, 2)})

    @app.get("/api/search", tags=["search"])
    async def search_get(query: str = Query(min_length=1, max_length=cfg.query_char_limit),
                         lang: str = Query(max_length=100), system: str = Query(max_length=100),
                         k: int = Query(10, ge=1, le=cfg.max_k)):
        """The same as POST /api/search, with query-string parameters."""
        return await search(SearchRequest(query=query, lang=lang, system=system, k=k))

    @app.post("/api/search/batch", tags=["search"])
    async def search_batch(req: BatchRequest):
        """Several queries of one language and system; answered in order, encoded together."""
        t0 = time.perf_counter()
        too_long = [i for i, q in enumerate(req.queries) if not 1 <= len(q) <= cfg.query_char_limit]
        if too_long:
            return JSONResponse({"detail": [{"loc": ["body", "queries", i], "msg": f"a query must have 1 to "
                                             f"{cfg.query_char_limit} characters"} for i in too_long[:10]]},
                                status_code=422)
        language, result = await _search(req.lang, req.system, req.queries, req.k)
        if language is None:
            return result
        return _json({"lang": language.label, "system": req.system, "k": req.k,
                      "results": [{"query": q, "hits": _hits(language, hits)} for q, hits in zip(req.queries, result)],
                      "took_ms": round((time.perf_counter() - t0) * 1000, 2)})


def _add_pages(app: FastAPI, systems: Systems, views: RunViews | None) -> None:
    """The HTML pages: search for every app; tests, mining and generated queries for a run folder."""
    cfg = systems.config
    env = environment()
    links = LiveLinks()

    def _base(lang: str | None) -> tuple[dict[str, Any], Any]:
        label = lang or next(iter(systems.languages))
        language = systems.language(label)  # KeyError: unknown
        return {"run_name": systems.name, "links": links, "has_run": views is not None, "lang": language.label,
                "langs": list(systems.languages), "ncols": 4}, language

    def _page(template: str, ctx: dict, status: int = 200) -> HTMLResponse:
        return HTMLResponse(env.get_template(template).render(**ctx), status_code=status)

    def _unknown(e: KeyError) -> HTMLResponse:
        return HTMLResponse(f"<!doctype html><title>not found</title><p>{_esc(e.args[0])}</p>", status_code=404)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page_search(lang: str | None = None, q: str = "", qid: str | None = None, trained: str | None = None,
                          k: int = 10):
        try:
            base, language = _base(lang)
        except KeyError as e:
            return _unknown(e)
        label = language.label
        if views is not None:
            trained = trained if trained in views.trained_systems(label) else views.best_trained(label)
            names = [n for n in views.columns(label, trained) if n in language.systems]
        else:
            names = list(language.systems)[:4]
        k = min(max(1, k), cfg.max_k)
        ctx = dict(base, page="search", q=q, qid=qid, trained=trained, k=k, max_k=cfg.max_k, columns=[],
                   trained_options=views.trained_systems(label) if views else [], error=None, test_query=None,
                   query_char_limit=cfg.query_char_limit, column_names=names, depth=max(cfg.compare_depth, k),
                   main_metric=views.main_metric() if views else "", ncols=max(1, len(names)))
        q = q.strip()
        if not q:
            return _page("search.html", ctx)
        if len(q) > cfg.query_char_limit:
            ctx["error"] = f"the query is over {cfg.query_char_limit} characters"
            return _page("search.html", ctx, 422)
        depth = max(cfg.compare_depth, k)
        results = await asyncio.gather(*(systems.search(label, n, [q], depth) for n in names))
        full = {n: r[0] for n, r in zip(names, results)}
        gold: set[str] = set()
        if views is not None and qid and qid in views.test_qrels(label):
            gold = {d for d, rel in views.test_qrels(label)[qid].items() if rel > 0}
            ctx["test_query"] = {"query_id": qid, "gold": sorted(gold)}
        ctx["columns"] = build_columns(
            names, {n: [(h.doc_id, h.score) for h in hits[:k]] for n, hits in full.items()},
            {n: {h.doc_id: r for r, h in enumerate(hits, start=1)} for n, hits in full.items()},
            language.passages, language.analyzer, q, gold,
            views.mined_labels_by_doc(label) if views else {}, language.metrics,
            views.main_metric() if views else "", trained)
        return _page("search.html", ctx)

    if views is not None:
        def _language_page(template: str, lang: str | None, context) -> HTMLResponse:
            """A page of one language: 404 for an unknown one, else ``template`` with ``context(label)``."""
            try:
                base, language = _base(lang)
            except KeyError as e:
                return _unknown(e)
            return _page(template, dict(base, **context(language.label)))

        @app.get("/tests", response_class=HTMLResponse, include_in_schema=False)
        def page_tests(lang: str | None = None, trained: str | None = None, versus: str = "bm25", only: str = "all"):
            return _language_page("tests.html", lang, lambda label: tests_context(views, label, trained, versus, only))

        @app.get("/mining", response_class=HTMLResponse, include_in_schema=False)
        def page_mining(lang: str | None = None, stage: str = "mine", only: str = "all", doc: str | None = None):
            return _language_page("mining.html", lang, lambda label: mining_context(views, label, stage, only, doc))

        @app.get("/generated", response_class=HTMLResponse, include_in_schema=False)
        def page_generated(lang: str | None = None):
            return _language_page("generated.html", lang, lambda label: generated_context(views, label))


def _esc(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
