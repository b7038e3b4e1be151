"""`lexdr serve`: the JSON API and the pages, through a real HTTP client against a server started as users
start it (`python -m lexdr serve RUN --port 0`), on a finished tiny run."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx", reason="the serve extra: pip install 'lexdr[serve]'")
pytest.importorskip("fastapi", reason="the serve extra: pip install 'lexdr[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra: pip install 'lexdr[serve]'")

from fixtures.serving import start_server, stop_server  # noqa: E402
from fixtures.tiny_run import weakest_trained  # noqa: E402
from lexdr.cli import main  # noqa: E402
from lexdr.formats import read_qrels, read_queries, read_run  # noqa: E402


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _test_run(run: Path, system: str) -> Path:
    stage = {"bm25": "bm25", "dense-base": "dense-base", "lexdr-r1": "dense-r1", "lexdr-gen": "dense-gen"}.get(system)
    return run / "tiny-en" / stage / "run.test.trec" if stage else run / "tiny-en" / "evaluate" / f"run.{system}.trec"


def test_every_system_answers_as_in_the_run(served_tiny_run, tiny_run_dir):
    """Each served system (hybrids with the weights the run fitted) ranks the test queries as the run did."""
    listing = httpx.get(served_tiny_run + "api/systems").json()
    (lang,) = listing["languages"]
    names = [s["name"] for s in lang["systems"]]
    metrics = json.loads((tiny_run_dir / "metrics.json").read_text())["tiny-en"]
    assert set(names) == set(metrics)  # every system of the run, each with its metrics
    assert all(s["metrics"] == metrics[s["name"]] for s in lang["systems"])
    fitted = {s["name"]: s["fusion"]["weights"] for s in lang["systems"] if s["kind"] == "adaptive-hybrid"}
    assert len(fitted) == 3 and all(w and len(w) == 2 for w in fitted.values())
    queries = read_queries(tiny_run_dir / "tiny-en" / "data" / "queries.test.tsv")
    for name in names:
        r = httpx.post(served_tiny_run + "api/search/batch", timeout=60,
                       json={"queries": [q.text for q in queries], "lang": "tiny-en", "system": name, "k": 5})
        assert r.status_code == 200, r.text
        expected = read_run(_test_run(tiny_run_dir, name))
        for q, res in zip(queries, r.json()["results"]):
            got = [h["doc_id"] for h in res["hits"]]
            want = [h.doc_id for h in expected[q.query_id][:5]]
            # the same ranking, up to passages whose scores tie to float rounding (a batch of other queries
            # pads differently than the run's encode)
            run_score = {h.doc_id: h.score for h in expected[q.query_id]}
            assert len(got) == len(want) and all(d in run_score for d in got), (name, q.query_id)
            assert [run_score[d] for d in got] == pytest.approx([run_score[d] for d in want], abs=1e-4), \
                (name, q.query_id)
            # the same scores too: a hybrid fuses with the weights the run fitted, not weights fitted anew
            assert [h["score"] for h in res["hits"]] == pytest.approx([h.score for h in expected[q.query_id][:5]],
                                                                      abs=1e-3), (name, q.query_id)
            assert [h["rank"] for h in res["hits"]] == list(range(1, len(got) + 1))
            assert all(h["text"] for h in res["hits"])  # the passage text comes with each hit


def test_concurrent_queries_are_encoded_together(served_tiny_run):
    def counters():
        return httpx.get(served_tiny_run + "api/health").json()["batchers"]

    before = counters()

    async def fire(n: int):
        async with httpx.AsyncClient(base_url=served_tiny_run, timeout=60) as client:
            return await asyncio.gather(*(client.post("api/search", json={
                "query": f"query number {i}", "lang": "en", "system": "lexdr-r1" if i % 2 else "lexdr-gen", "k": 3})
                for i in range(n)))

    responses = asyncio.run(fire(24))
    assert all(r.status_code == 200 for r in responses)
    assert {r.json()["query"] for r in responses} == {f"query number {i}" for i in range(24)}  # each its own answer
    after = counters()
    for encoder in ("encoder:lexdr-r1", "encoder:lexdr-gen"):  # two models, one batcher each
        items = after[encoder]["items"] - before[encoder]["items"]
        batches = after[encoder]["batches"] - before[encoder]["batches"]
        # 12 concurrent queries per model share far fewer forwards than 12
        assert items == 12 and batches < items and after[encoder]["largest_batch"] > 1, (encoder, after[encoder])


def test_requests_are_validated_and_errors_stay_short(served_tiny_run):
    url = served_tiny_run + "api/search"
    ok = {"query": "paris", "lang": "tiny-en", "system": "bm25", "k": 3}
    r = httpx.post(url, json={**ok, "system": "../../etc/passwd"})
    assert r.status_code == 404 and "valid: bm25, dense-base" in r.json()["detail"]
    r = httpx.post(url, json={**ok, "lang": "xx"})
    assert r.status_code == 404 and "valid: tiny-en" in r.json()["detail"]
    r = httpx.post(url, json={**ok, "k": 101})
    assert r.status_code == 422 and "less than or equal to 100" in r.text
    r = httpx.post(url, json={**ok, "query": ""})
    assert r.status_code == 422
    long = "paris " * 200
    r = httpx.post(url, json={**ok, "query": long})
    assert r.status_code == 422 and long not in r.text  # refused, and the query is not echoed back
    r = httpx.post(url, json={**ok, "query": "x" * 1_000_000}, timeout=30)
    assert r.status_code == 413
    r = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = httpx.post(served_tiny_run + "api/search/batch", json={**ok, "queries": ["a"] * 257})
    assert r.status_code == 422
    for r in (httpx.get(served_tiny_run + "nothing/here"), httpx.delete(url)):
        assert r.status_code in (404, 405)
    assert httpx.post(url, json=ok).status_code == 200  # and it keeps answering


def test_an_internal_error_answers_500_without_a_traceback(tiny_run_dir):
    from fastapi.testclient import TestClient

    from lexdr.serve.app import create_app
    from lexdr.serve.systems import open_run

    systems = open_run(tiny_run_dir)

    def broken(items):
        raise RuntimeError("secret internal detail")

    systems.languages["tiny-en"].systems["bm25"].batcher.fn = broken
    try:
        with TestClient(create_app(systems), raise_server_exceptions=False) as client:
            r = client.post("/api/search", json={"query": "paris", "lang": "tiny-en", "system": "bm25"})
            assert r.status_code == 500
            assert "secret" not in r.text and "Traceback" not in r.text
            assert client.post("/api/search", json={"query": "paris", "lang": "tiny-en",
                                                    "system": "dense-base"}).status_code == 200
    finally:
        systems.close()


def test_pages_show_the_run(served_tiny_run, tiny_run_dir):
    qrels = read_qrels(tiny_run_dir / "tiny-en" / "data" / "qrels.test.txt")
    page = httpx.get(served_tiny_run, params={"q": "paris capital", "lang": "tiny-en", "qid": "t0"}, timeout=60)
    assert page.status_code == 200
    assert page.text.count('class="column"') == 4
    metrics = json.loads((tiny_run_dir / "metrics.json").read_text())["tiny-en"]
    best = max(("lexdr-r1", "lexdr-gen"), key=lambda s: (metrics[s]["MRR@10"], s))  # the best trained model
    for system in ("bm25", "dense-base", best, f"adaptive-hybrid-{best}"):
        assert f'data-system="{system}"' in page.text
    assert "<mark>paris</mark>" in page.text and "<mark>capital</mark>" in page.text
    assert f'class="hit gold" data-doc="{next(iter(qrels["t0"]))}"' in page.text
    weakest = weakest_trained(tiny_run_dir)
    assert metrics[weakest]["MRR@10"] < metrics["bm25"]["MRR@10"]  # so it loses at least one test query
    tests = httpx.get(served_tiny_run + "tests", params={"lang": "tiny-en", "only": "loses", "trained": weakest}).text
    gaps = [float(x) for x in re.findall(r'class="num lose">([-+0-9.]+)<', tests)]
    assert gaps and gaps == sorted(gaps)  # losses only, worst first
    stats = json.loads((tiny_run_dir / "tiny-en" / "mine" / "stats.json").read_text())
    mining = httpx.get(served_tiny_run + "mining", params={"lang": "tiny-en"}).text
    assert f'class="num precision">{stats["quality"]["precision"]:.3f}<' in mining
    generated = [json.loads(x) for x in (tiny_run_dir / "tiny-en" / "generate" / "generated.jsonl").read_text().splitlines()]
    page = httpx.get(served_tiny_run + "generated", params={"lang": "tiny-en"}).text
    assert generated and all(g["query"] in page for g in generated)
    assert httpx.get(served_tiny_run + "tests", params={"lang": "nope"}).status_code == 404
    assert httpx.get(served_tiny_run + "openapi.json").json()["paths"]["/api/search"]


def test_serving_writes_nothing(served_tiny_run, tiny_run_dir):
    before = _snapshot(tiny_run_dir)
    for path in ("", "tests", "mining", "generated"):
        assert httpx.get(served_tiny_run + path, params={"q": "moon", "lang": "tiny-en"}, timeout=60).status_code == 200
    assert httpx.post(served_tiny_run + "api/search", json={"query": "moon", "lang": "tiny-en",
                                                            "system": "hybrid"}).status_code == 200
    assert _snapshot(tiny_run_dir) == before


def test_ctrl_c_stops_cleanly(tiny_run_dir, tmp_path):
    log = tmp_path / "stderr.txt"
    with log.open("w") as fh:
        proc, url = start_server([str(tiny_run_dir)], stderr=fh)
        assert httpx.get(url + "api/search", params={"query": "nile", "lang": "tiny-en", "system": "bm25"}).status_code == 200
        assert stop_server(proc) == 0
    text = log.read_text()
    assert "lexdr serve: stopped" in text and "Traceback" not in text
    access = [json.loads(line.split("lexdr.serve.access: ", 1)[1]) for line in text.splitlines() if "serve.access" in line]
    assert any(a["path"] == "/api/search" and a["status"] == 200 and a["ms"] > 0 for a in access)


def test_bad_folder_or_busy_port_is_a_one_line_error(tiny_run_dir, tmp_path, capsys):
    assert main(["serve", str(tmp_path)]) == 2
    assert "is neither a lexdr run folder" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        assert main(["serve", str(tiny_run_dir), "--port", str(busy.getsockname()[1])]) == 2
        assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


def test_report_writes_the_pages_as_static_html(tiny_run_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run)
    assert main(["report", str(run), "--html", "--html-queries", "3"]) == 0
    html = run / "report" / "html"
    assert "lexdr-gen" in (html / "index.html").read_text()
    every = (html / "tests-tiny-en-bm25-all.html").read_text()
    pages = sorted((html / "q" / "tiny-en").glob("*.html"))
    # side-by-side pages for the 3 queries with the largest gaps, and the test list links exactly those
    assert len(pages) == 3
    assert set(re.findall(r'href="(q/tiny-en/[^"]+)"', every)) == {f"q/tiny-en/{p.name}" for p in pages}
    side = pages[0].read_text()
    assert side.count('class="column"') == 4 and "../../tests-tiny-en-bm25-all.html" in side
    assert (html / "mining-tiny-en-mine.html").is_file() and (html / "generated-tiny-en.html").is_file()
    report = (run / "report" / "report.md").read_text()
    assert "lexdr serve" in report and "html/index.html" in report


def test_index_folders_are_served_too(tiny_run_dir, tmp_path):
    import shutil

    from fastapi.testclient import TestClient

    from lexdr.serve.app import create_app
    from lexdr.serve.server import open_any
    from lexdr.serve.config import ServeConfig

    shutil.copytree(tiny_run_dir / "tiny-en" / "bm25" / "index", tmp_path / "bm25")
    shutil.copytree(tiny_run_dir / "tiny-en" / "dense-base" / "index", tmp_path / "e5")
    systems, views = open_any([tmp_path / "bm25", tmp_path / "e5"], ServeConfig())
    try:
        assert views is None and list(systems.languages["index"].systems) == ["bm25", "e5"]
        with TestClient(create_app(systems)) as client:
            expected = read_run(tiny_run_dir / "tiny-en" / "dense-base" / "run.test.trec")["t3"][:3]
            r = client.post("/api/search", json={"query": "python language", "lang": "index", "system": "e5", "k": 3})
            assert [h["doc_id"] for h in r.json()["hits"]] == [h.doc_id for h in expected]
            assert r.json()["hits"][0]["text"]  # the passages, from the corpus the index records
            page = client.get("/", params={"q": "python language"})
            assert page.status_code == 200 and page.text.count('class="column"') == 2
            assert client.get("/tests").status_code == 404  # no run, no run pages
    finally:
        systems.close()


def test_highlighting_marks_analyzed_matches_and_escapes_everything_else():
    from lexdr.analysis import get_analyzer
    from lexdr.serve.render import highlight

    out = str(highlight("<b>Cats</b> & dogs; catalogue", get_analyzer("en"), "cat <script>"))
    assert out == "&lt;b&gt;<mark>Cats</mark>&lt;/b&gt; &amp; dogs; catalogue"  # stemmed match, markup escaped
    ja = get_analyzer("ja")
    out = str(highlight("東京は日本の首都です", ja, "東京"))
    assert "<mark>東京</mark>" in out and "首都" in out and "<mark>首都" not in out


def test_one_forward_serves_queries_of_several_languages(tiny_run_dir):
    from lexdr.dense.index import open_dense_index
    from lexdr.dense.retriever import encoder_for_index, search_shared
    from lexdr.records import Query

    folder = tiny_run_dir / "tiny-en" / "dense-base" / "index"
    one, two = open_dense_index(folder), open_dense_index(folder)  # two languages' indexes of one model
    encoder = encoder_for_index(one, show_progress=False)
    calls = []
    encode = encoder.encode_queries
    encoder.encode_queries = lambda texts: calls.append(len(texts)) or encode(texts)
    requests = [(one, "paris capital", 3), (two, "nile river", 5), (one, "moon", 1)]
    got = search_shared(encoder, requests)
    assert calls == [3]  # one forward for all three
    for (index, text, k), hits in zip(requests, got):
        assert hits == index.search_vectors(["q"], encode([text]), k)["q"]


def test_a_chunked_body_is_held_to_the_same_limit(served_tiny_run):
    def chunks(total: int):
        yield b'{"query": "paris", "lang": "tiny-en", "system": "bm25", "k": 2, "pad": "'
        for _ in range(total // 65536):
            yield b"x" * 65536
        yield b'"}'

    url = served_tiny_run + "api/search"
    headers = {"content-type": "application/json"}
    r = httpx.post(url, content=chunks(2_000_000), headers=headers, timeout=60)  # no Content-Length: chunked
    assert r.status_code == 413
    r = httpx.post(url, content=chunks(100_000), headers=headers, timeout=60)
    assert r.status_code == 200 and r.json()["hits"][0]["doc_id"] == "d0"
