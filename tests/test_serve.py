"""`unitrim serve`: a real server subprocess on a small index, driven through its JSON API and, in headless
Debian chromium (Playwright's Python API), through its page; bad input answered with 4xx and a message."""

from __future__ import annotations

import io
import os
import shutil
import threading
from pathlib import Path

import httpx
import pytest
from PIL import Image

from test_search_helpers import save_model, write_media
from test_serve_helpers import ServedApp, SmallIndex, build_small_index
from unitrim_hf import UniTriMModel, UniTriMProcessor
from unitrim_hf.search import Indexer
from unitrim_hf.search.cli import main
from unitrim_hf.search.query_words import STOP_WORDS
from unitrim_hf.modeling.relevance import LABELS
from unitrim_hf.search.searcher import MAX_QUERY_CHARACTERS
from unitrim_hf.search.serve.live_index import media_token

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUERIES = ("a red car drives down the road", "a woman shrinks a circle", "waves roll onto a beach",
           "a man rides a horse", "two squares zigzag across the screen")
# Where the browser test also writes its screenshot (docs/images/search_page.png is made with it).
SCREENSHOT_ENV = "UNITRIM_SCREENSHOT_PATH"


@pytest.fixture(scope="module")
def small_index(tmp_path_factory) -> SmallIndex:
    return build_small_index(tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def served(small_index, tmp_path_factory):
    app = ServedApp(small_index, tmp_path_factory.mktemp("log") / "serve.log")
    yield app
    app.stop()


@pytest.fixture(scope="module")
def client(served):
    with httpx.Client(base_url=served.url, timeout=60) as session:
        yield session


def _expected(small_index: SmallIndex, query: str, kind: str = "all", top_k: int = 12):
    """The in-process search of the same index: the reference the server must reproduce."""
    return small_index.searcher.search(query, top_k=top_k, kind=kind)


def test_json_api_returns_the_searchers_results(client, small_index):
    for query in QUERIES[:2]:
        reply = client.get("/api/search", params={"q": query, "kind": "all", "top_k": 4})
        assert reply.status_code == 200, reply.text
        payload = reply.json()
        expected = _expected(small_index, query, top_k=4)
        assert [r["path"] for r in payload["results"]] == [r.display_path for r in expected]
        assert [r["score"] for r in payload["results"]] == pytest.approx([r.score for r in expected], abs=1e-5)
        assert [r["relevance_label"] for r in payload["results"]] == [r.relevance_label for r in expected]
        assert {r["relevance_label"] for r in payload["results"]} <= set(LABELS)
        assert payload["query"] == query and payload["items"] == 4 and payload["legend"]
        assert payload["query_triplets"] == [list(t) for t in small_index.searcher.encode(query).triplets]
        first = payload["results"][0]
        assert {"rank", "name", "kind", "score", "relevance", "alignment_scores", "explanation", "media_url",
                "thumbnail_url", "source_problem"} <= set(first)
    posted = client.post("/api/search", json={"query": QUERIES[0], "kind": "image", "top_k": 2}).json()
    assert [r["kind"] for r in posted["results"]] == ["image", "image"]
    assert [r["path"] for r in posted["results"]] == [r.display_path for r in _expected(small_index, QUERIES[0], "image", 2)]


def test_media_and_thumbnails_are_the_indexed_files(client, small_index):
    result = _expected(small_index, QUERIES[0], "video", 1)[0]
    media = client.get(f"/media/{media_token(result.path)}")
    assert media.status_code == 200 and media.content == Path(result.path).read_bytes()
    partial = client.get(f"/media/{media_token(result.path)}", headers={"Range": "bytes=10-19"})
    assert partial.status_code == 206 and partial.content == Path(result.path).read_bytes()[10:20]
    timestamp = result.explanation.best_frame_timestamp
    picture = client.get(f"/thumbnail/{media_token(result.path)}", params={"t": timestamp})
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(picture.content))
    assert image.format == "PNG" and image.width > 0


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/search?q=", 400, "the query is empty"),
        ("/api/search?q=%20%20", 400, "the query is empty"),
        (f"/api/search?q={'x' * (MAX_QUERY_CHARACTERS + 1)}", 400, "too long"),
        ("/api/search?q=car&kind=audio", 400, "kind must be one of"),
        ("/api/search?q=car&top_k=0", 422, "greater than or equal to 1"),
        ("/media/0123456789abcdef0123456789abcdef", 404, "no file of the index"),
        ("/media/..%2F..%2F..%2Fetc%2Fpasswd", 404, ""),
        ("/thumbnail/..%2Fetc%2Fpasswd?t=0", 404, ""),
    ],
)
def test_bad_requests_are_4xx_with_a_message(client, path, status, message):
    reply = client.get(path)
    assert reply.status_code == status
    assert message in reply.text and "Traceback" not in reply.text


def test_media_of_a_file_outside_the_index_is_refused(client, small_index):
    outside = small_index.model_dir / "config.json"  # a real file, but not one of the index
    assert client.get(f"/media/{media_token(outside)}").status_code == 404


def test_queries_are_answered_while_an_update_is_committed(client, small_index, tmp_path):
    """A writer adds files one commit at a time; every answer is one whole version (all its items, once)."""
    extra = write_media(tmp_path / "more", ("clip_b.avi", "no_extension_jpeg"))
    searcher = small_index.searcher
    indexer = Indexer(small_index.index_dir, searcher.model, searcher.processor, batch_size=1, flush_every=1,
                      progress=False)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            indexer.add_files(sorted(extra.iterdir()))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    writer = threading.Thread(target=write)
    writer.start()
    seen = []

    def query() -> None:
        reply = client.get("/api/search", params={"q": QUERIES[1], "top_k": 100})
        assert reply.status_code == 200, reply.text
        paths = [r["path"] for r in reply.json()["results"]]
        assert len(paths) == len(set(paths)) == reply.json()["items"]
        seen.append(reply.json()["items"])

    while writer.is_alive():
        query()
    writer.join()
    query()
    assert not errors
    assert seen == sorted(seen) and seen[-1] == 6
    try:
        indexer.store.delete_paths([str(path) for path in sorted(extra.iterdir())])
    finally:
        small_index.searcher.refresh()
    assert client.get("/api/search", params={"q": QUERIES[1]}).json()["items"] == 4


def _chromium_problem() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (Debian's chromium package; .ci/bootstrap installs it where it can)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (the dev extra)"
    return None


def _video_query(small_index: SmallIndex):
    """A query whose best video's best frame is not the first one (so the player's start time says something)."""
    for query in QUERIES:
        best = _expected(small_index, query, "video", 1)[0]
        if best.explanation.best_frame_timestamp > 0:
            return query, best
    pytest.fail("no query of QUERIES has a best frame after the start")


def test_search_page_in_headless_chromium(served, small_index, tmp_path):
    problem = _chromium_problem()
    if problem:
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    query, best = _video_query(small_index)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(served.url, timeout=60_000)
            page.fill("#query", query)
            page.check("input[name=kind][value=video]")
            page.click("button[type=submit]")
            page.wait_for_selector("article.card", timeout=60_000)
            first = page.locator("article.card").first
            assert first.get_attribute("data-path") == best.display_path
            assert first.locator(".label").inner_text() == best.relevance_label
            thumbnail = first.locator("img.thumbnail").element_handle()
            page.wait_for_function("image => image.complete && image.naturalWidth > 0", arg=thumbnail, timeout=30_000)

            first.locator("details.why summary").click()
            words = first.locator(".words").inner_text().removeprefix("matching words: ")
            shown = [part.split(" (")[0] for part in words.split(", ")]
            assert shown == [word.word for word in best.explanation.top_words]
            assert not set(shown) & STOP_WORDS and set(shown) <= set(query.lower().split())

            first.locator("button.play").click()
            video = first.locator("video.player").element_handle()
            page.wait_for_function("video => video.readyState >= 1", arg=video, timeout=30_000)
            start = page.evaluate("video => video.currentTime", video)
            assert start == pytest.approx(best.explanation.best_frame_timestamp, abs=1e-3)

            screenshot = tmp_path / "search_page.png"
            page.screenshot(path=str(screenshot), full_page=True)
            assert Image.open(screenshot).format == "PNG"
            if os.environ.get(SCREENSHOT_ENV):
                shutil.copyfile(screenshot, os.environ[SCREENSHOT_ENV])
        finally:
            browser.close()


def test_cli_serve_bad_input_is_one_line(tmp_path, small_index, capsys):
    assert main(["serve", "--index", str(tmp_path / "nothing"), "--model", str(small_index.model_dir)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("unitrim serve: error: no index at") and error.count("\n") == 1
    other = save_model(tmp_path / "other", seed=3)
    assert main(["serve", "--index", str(small_index.index_dir), "--model", str(other)]) == 2
    error = capsys.readouterr().err
    assert error.splitlines()[-1].startswith("unitrim serve: error: the index at") and "was built by" in error
    assert main(["serve", "--index", str(small_index.index_dir), "--model", str(tmp_path / "no_model")]) == 2
    assert "no such model folder" in capsys.readouterr().err


def test_cli_serve_refuses_a_port_in_use(small_index, capsys):
    from unitrim_hf.search.serve.server import bind

    taken = bind("127.0.0.1", 0)
    try:
        port = str(taken.getsockname()[1])
        assert main(["serve", "--index", str(small_index.index_dir), "--model", str(small_index.model_dir),
                     "--port", port]) == 2
    finally:
        taken.close()
    error = capsys.readouterr().err
    assert error.splitlines()[-1].startswith("unitrim serve: error: cannot listen on 127.0.0.1:")
