"""Download: conditional re-fetch, resume, verification, retries, offline mode, clean failures.

Every server is a loopback ``http.server`` started by the test; backoff is a millisecond.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recsys_core.data.archive_cache import (
    CACHE_FALLBACK,
    CACHED,
    DOWNLOADED,
    LOCAL,
    NOT_MODIFIED,
    OFFLINE,
    RESUMED,
    UNCHANGED,
)
from recsys_core.data.download import fetch_archive
from recsys_core.data.progress import make_terminal_progress
from recsys_core.errors import DownloadError, RecsysError

FAST = {"backoff_seconds": 0.001, "timeout": 2.0}
BODY = bytes(range(256)) * 400  # 100 KiB, not a zip: the downloader does not care
MD5 = hashlib.md5(BODY).hexdigest()
SHA = hashlib.sha256(BODY).hexdigest()
ETAG = '"v1"'

Route = Callable[["_Handler"], None]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route | list[Route]] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def hits(self, path: str) -> list[dict[str, str]]:
        return [headers for p, headers in self.seen if p == path]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers)))
        route = self.server.routes.get(self.path)
        if isinstance(route, list):  # a script: one answer per request, the last one repeats
            route = route.pop(0) if len(route) > 1 else route[0]
        if route is None:
            return status(404)(self)
        route(self)

    def log_message(self, *args: object) -> None:
        pass


def status(code: int) -> Route:
    def answer(h: _Handler) -> None:
        h.send_response(code)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return answer


def serve(
    body: bytes,
    *,
    etag: str | None = ETAG,
    ranges: bool = True,
    cut: int | None = None,
    conditional: bool = True,
) -> Route:
    """200 with ``body``; 206 for Range (+ If-Range) when ``ranges``; 304 on a matching ETag;
    ``cut`` sends only that many bytes of a full-length promise, then hangs up."""

    def answer(h: _Handler) -> None:
        if conditional and etag and h.headers.get("If-None-Match") == etag:
            return status(304)(h)
        start, rng = 0, h.headers.get("Range")
        if_range = h.headers.get("If-Range")
        if ranges and rng and (if_range is None or if_range == etag):
            start = int(rng.split("=")[1].rstrip("-"))
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        if etag:
            h.send_header("ETag", etag)
        h.send_header("Content-Length", str(len(body) - start))
        h.end_headers()
        payload = body[start:]
        h.wfile.write(payload if cut is None else payload[:cut])
        h.wfile.flush()

    return answer


def hang(h: _Handler) -> None:
    h.server.release.wait(5)  # longer than the client's timeout; released at teardown


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# --- the happy paths --------------------------------------------------------------------------


def test_download_verifies_and_records_sha256(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-100k.zip"] = serve(BODY)
    got = fetch_archive(f"{server.base}/ml-100k.zip", tmp_path, expected_md5=MD5, **FAST)
    assert (got.status, got.from_cache, got.md5, got.sha256, got.size) == (
        DOWNLOADED,
        False,
        MD5,
        SHA,
        len(BODY),
    )
    assert got.path.read_bytes() == BODY
    meta = json.loads((tmp_path / "ml-100k.zip.meta.json").read_text())
    assert (meta["sha256"], meta["etag"], meta["source"]) == (SHA, ETAG, got.source)
    assert cache_files(tmp_path) == ["ml-100k.zip", "ml-100k.zip.meta.json"]  # no .part left


def test_pinned_checksum_and_verified_cache_means_no_network(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-100k.zip"] = serve(BODY)
    url = f"{server.base}/ml-100k.zip"
    fetch_archive(url, tmp_path, expected_md5=MD5, **FAST)
    requests = len(server.seen)
    again = fetch_archive(url, tmp_path, expected_md5=MD5, **FAST)
    assert (again.status, again.from_cache, len(server.seen)) == (CACHED, True, requests)


def test_etag_304_reuses_the_cache_without_new_bytes(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-latest-small.zip"] = serve(BODY)
    url = f"{server.base}/ml-latest-small.zip"
    first = fetch_archive(url, tmp_path, **FAST)
    mtime = first.path.stat().st_mtime_ns
    again = fetch_archive(url, tmp_path, **FAST)
    assert again.status == NOT_MODIFIED and again.sha256 == SHA
    assert server.hits("/ml-latest-small.zip")[-1]["If-None-Match"] == ETAG
    assert first.path.stat().st_mtime_ns == mtime


def test_last_modified_304_with_a_plain_static_server(http_root, tmp_path: Path) -> None:
    """http.server's static handler answers If-Modified-Since with 304 (and ignores Range)."""
    base, root = http_root
    (root / "ml-100k.zip").write_bytes(BODY)
    first = fetch_archive(f"{base}/ml-100k.zip", tmp_path / "cache", **FAST)
    again = fetch_archive(f"{base}/ml-100k.zip", tmp_path / "cache", **FAST)
    assert (first.status, again.status) == (DOWNLOADED, NOT_MODIFIED)


def test_unchanged_sidecar_checksum_means_no_new_download(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-25m.zip"] = serve(BODY, etag=None)
    server.routes["/ml-25m.zip.md5"] = serve(f"MD5 (ml-25m.zip) = {MD5}\n".encode(), etag=None)
    url = f"{server.base}/ml-25m.zip"
    assert fetch_archive(url, tmp_path, **FAST).status == DOWNLOADED
    again = fetch_archive(url, tmp_path, **FAST)
    assert again.status == UNCHANGED and len(server.hits("/ml-25m.zip")) == 1


def test_sidecar_checksum_mismatch_is_refused(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-1m.zip"] = serve(BODY)
    server.routes["/ml-1m.zip.md5"] = serve(b"0" * 32 + b"  ml-1m.zip\n", etag=None)
    with pytest.raises(DownloadError, match=r"ml-1m\.zip failed verification: MD5"):
        fetch_archive(f"{server.base}/ml-1m.zip", tmp_path, **FAST)
    assert cache_files(tmp_path) == []


# --- resume and restart -----------------------------------------------------------------------


def test_interrupted_transfer_resumes_with_range(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-100k.zip"] = [serve(BODY, cut=40_000), serve(BODY)]
    got = fetch_archive(f"{server.base}/ml-100k.zip", tmp_path, expected_md5=MD5, **FAST)
    assert got.status == RESUMED and got.path.read_bytes() == BODY
    second = server.hits("/ml-100k.zip")[1]
    assert second["Range"] == "bytes=40000-" and second["If-Range"] == ETAG


def test_partial_file_from_an_earlier_run_is_resumed(server: _Server, tmp_path: Path) -> None:
    url = f"{server.base}/ml-100k.zip"
    (tmp_path / "ml-100k.zip.part").write_bytes(BODY[:10_000])
    (tmp_path / "ml-100k.zip.part.json").write_text(json.dumps({"source": url, "etag": ETAG}))
    server.routes["/ml-100k.zip"] = serve(BODY)
    got = fetch_archive(url, tmp_path, expected_md5=MD5, **FAST)
    assert got.status == RESUMED and got.path.read_bytes() == BODY
    assert [h["Range"] for h in server.hits("/ml-100k.zip")] == ["bytes=10000-"]
    assert cache_files(tmp_path) == ["ml-100k.zip", "ml-100k.zip.meta.json"]


def test_server_ignoring_range_restarts_cleanly(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-100k.zip"] = [serve(BODY, cut=40_000), serve(BODY, ranges=False)]
    got = fetch_archive(f"{server.base}/ml-100k.zip", tmp_path, expected_md5=MD5, **FAST)
    assert got.status == DOWNLOADED and got.path.read_bytes() == BODY


def test_changed_file_during_resume_restarts_cleanly(server: _Server, tmp_path: Path) -> None:
    """If-Range carries the old ETag; the server has a new file and sends all of it."""
    new = BODY[::-1]
    url = f"{server.base}/ml-100k.zip"
    (tmp_path / "ml-100k.zip.part").write_bytes(BODY[:10_000])
    (tmp_path / "ml-100k.zip.part.json").write_text(json.dumps({"source": url, "etag": ETAG}))
    server.routes["/ml-100k.zip"] = serve(new, etag='"v2"')
    got = fetch_archive(url, tmp_path, use_sidecar=False, **FAST)
    assert got.path.read_bytes() == new and got.status == DOWNLOADED


# --- failures: clear errors, nothing partial left ---------------------------------------------


def test_404_is_not_retried_and_names_the_url(server: _Server, tmp_path: Path) -> None:
    url = f"{server.base}/ml-100k.zip"
    with pytest.raises(DownloadError, match=r"HTTP 404.*ml-100k\.zip.*--source") as err:
        fetch_archive(url, tmp_path, attempts=4, **FAST)
    assert url in str(err.value) and "\n" not in str(err.value)
    assert len(server.hits("/ml-100k.zip")) == 1
    assert cache_files(tmp_path) == []


def test_500_is_retried_then_a_clear_error(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-100k.zip"] = status(500)
    url = f"{server.base}/ml-100k.zip"
    with pytest.raises(DownloadError, match=r"after 3 attempt\(s\): HTTP 500.*--source") as err:
        fetch_archive(url, tmp_path, attempts=3, **FAST)
    assert url in str(err.value)
    assert len(server.hits("/ml-100k.zip")) == 3
    assert cache_files(tmp_path) == []


def test_transient_500_recovers_on_retry(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-100k.zip"] = [status(503), status(500), serve(BODY)]
    got = fetch_archive(f"{server.base}/ml-100k.zip", tmp_path, expected_md5=MD5, **FAST)
    assert got.path.read_bytes() == BODY and len(server.hits("/ml-100k.zip")) == 3


def test_timeout_is_retried_then_a_clear_error(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-100k.zip"] = hang
    start = time.perf_counter()
    with pytest.raises(DownloadError, match=r"after 2 attempt\(s\).*timeout.*--source"):
        fetch_archive(
            f"{server.base}/ml-100k.zip",
            tmp_path,
            attempts=2,
            timeout=0.3,
            backoff_seconds=0.001,
            use_sidecar=False,
        )
    assert time.perf_counter() - start < 3
    assert len(server.hits("/ml-100k.zip")) == 2
    assert cache_files(tmp_path) == []


def test_connection_refused_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and is closed now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ml-100k.zip"
    with pytest.raises(DownloadError, match=r"connection failed.*--source") as err:
        fetch_archive(url, tmp_path, attempts=2, **FAST)
    assert url in str(err.value)
    assert cache_files(tmp_path) == []


def test_checksum_mismatch_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-100k.zip"] = serve(BODY)
    with pytest.raises(DownloadError, match=r"ml-100k\.zip failed verification: MD5 .*--source"):
        fetch_archive(f"{server.base}/ml-100k.zip", tmp_path, expected_md5="0" * 32, **FAST)
    assert cache_files(tmp_path) == []


def test_checksum_mismatch_keeps_the_previous_good_copy(server: _Server, tmp_path: Path) -> None:
    url = f"{server.base}/ml-100k.zip"
    server.routes["/ml-100k.zip"] = serve(BODY)
    fetch_archive(url, tmp_path, expected_md5=MD5, **FAST)
    before = {n: (tmp_path / n).read_bytes() for n in cache_files(tmp_path)}
    server.routes["/ml-100k.zip"] = serve(b"corrupted" + BODY[9:], etag='"v2"')
    with pytest.raises(DownloadError, match=r"SHA-256 .* expected"):
        fetch_archive(url, tmp_path, expected_sha256=hashlib.sha256(b"other").hexdigest(), **FAST)
    assert {n: (tmp_path / n).read_bytes() for n in cache_files(tmp_path)} == before


def test_size_mismatch_is_refused(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-100k.zip"] = serve(BODY)
    with pytest.raises(DownloadError, match=r"size 102,400 bytes, expected 4,924,029"):
        fetch_archive(f"{server.base}/ml-100k.zip", tmp_path, expected_size=4_924_029, **FAST)
    assert cache_files(tmp_path) == []


def test_short_body_every_time_is_a_clear_error(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-100k.zip"] = serve(BODY, cut=1_000, ranges=False)
    with pytest.raises(DownloadError, match=r"closed the connection early"):
        fetch_archive(f"{server.base}/ml-100k.zip", tmp_path, attempts=2, **FAST)
    assert cache_files(tmp_path) == []


def test_corrupted_cache_is_downloaded_again(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-100k.zip"] = serve(BODY)
    url = f"{server.base}/ml-100k.zip"
    fetch_archive(url, tmp_path, **FAST)
    (tmp_path / "ml-100k.zip").write_bytes(b"bit rot")
    again = fetch_archive(url, tmp_path, **FAST)
    assert again.status == DOWNLOADED and again.path.read_bytes() == BODY
    assert "If-None-Match" not in server.hits("/ml-100k.zip")[-1]


# --- offline, fallback, local sources ---------------------------------------------------------


def test_offline_without_cache_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"Offline mode.*http://127\.0\.0\.1:9/x\.zip.*--source"):
        fetch_archive("http://127.0.0.1:9/x.zip", tmp_path, offline=True)


def test_offline_uses_the_cache_and_says_so(server: _Server, tmp_path: Path, caplog) -> None:
    server.routes["/ml-100k.zip"] = serve(BODY)
    url = f"{server.base}/ml-100k.zip"
    fetch_archive(url, tmp_path, **FAST)
    requests = len(server.seen)
    got = fetch_archive(url, tmp_path, offline=True)
    assert (got.status, got.sha256, len(server.seen)) == (OFFLINE, SHA, requests)
    assert "Offline mode" in caplog.text


def test_unreachable_server_falls_back_to_a_verified_cache(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-100k.zip"] = serve(BODY)
    url = f"{server.base}/ml-100k.zip"
    fetch_archive(url, tmp_path, **FAST)
    server.routes["/ml-100k.zip"] = status(502)
    got = fetch_archive(url, tmp_path, attempts=2, **FAST)
    assert got.status == CACHE_FALLBACK and got.path.read_bytes() == BODY


def test_local_source_is_verified_in_place(tmp_path: Path) -> None:
    path = tmp_path / "ml-100k.zip"
    path.write_bytes(BODY)
    got = fetch_archive(str(path), tmp_path / "cache", expected_md5=MD5)
    assert (got.path, got.status, got.sha256) == (path, LOCAL, SHA)
    assert fetch_archive(path.as_uri(), tmp_path / "cache").path == path
    assert not (tmp_path / "cache").exists()


def test_missing_local_source_mentions_source_flag(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"nope\.zip does not exist.*--source"):
        fetch_archive(str(tmp_path / "nope.zip"), tmp_path)


def test_local_source_checksum_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "ml-100k.zip"
    path.write_bytes(BODY)
    with pytest.raises(DownloadError, match=r"ml-100k\.zip failed verification: MD5"):
        fetch_archive(str(path), tmp_path, expected_md5="0" * 32)


def test_every_failure_is_a_recsys_error() -> None:
    assert issubclass(DownloadError, RecsysError)


# --- progress ---------------------------------------------------------------------------------


def test_progress_callback_sees_every_byte(server: _Server, tmp_path: Path) -> None:
    server.routes["/ml-100k.zip"] = serve(BODY)
    calls: list[tuple[int, int | None]] = []
    fetch_archive(f"{server.base}/ml-100k.zip", tmp_path, progress=lambda d, t: calls.append((d, t)), **FAST)
    assert calls[-1] == (len(BODY), len(BODY))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_terminal_progress_only_on_a_tty(server: _Server, tmp_path: Path) -> None:
    assert make_terminal_progress() is None  # pytest's captured stderr is not a terminal
    bar = make_terminal_progress("ml-100k.zip", force=True)
    assert bar is not None
    server.routes["/ml-100k.zip"] = serve(BODY)
    fetch_archive(f"{server.base}/ml-100k.zip", tmp_path, progress=bar, **FAST)
    bar.close()  # idempotent: fetch_archive already closed it


def test_concurrent_fetches_download_once(server: _Server, tmp_path: Path) -> None:
    """Two runs sharing a cache: the second waits for the first, then reuses its file."""

    def slow(h: _Handler) -> None:
        time.sleep(0.3)
        serve(BODY)(h)

    server.routes["/ml-100k.zip"] = slow
    url = f"{server.base}/ml-100k.zip"
    results: list[str] = []

    def run() -> None:
        results.append(fetch_archive(url, tmp_path, expected_md5=MD5, **FAST).status)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == [CACHED, DOWNLOADED]
    assert len(server.hits("/ml-100k.zip")) == 1
