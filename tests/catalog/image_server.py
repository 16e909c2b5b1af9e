"""A local HTTP image server for download tests: good images, errors, slow and hostile
answers, and a count of what it was asked and what it sent."""

from __future__ import annotations

import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer with ``status`` and ``body`` (Content-Length set) plus ``headers``."""
    handler.send_response(status)
    if content_type:
        handler.send_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def image(data: bytes, content_type: str = "image/png", etag: str | None = '"v1"') -> Route:
    """A route serving ``data`` with an ETag, answering 304 to a matching If-None-Match."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        if etag and handler.headers.get("If-None-Match") == etag:
            send(handler, 304, headers={"ETag": etag})
        else:
            send(handler, 200, data, content_type, {"ETag": etag} if etag else {})

    return route


@dataclass
class ImageServer:
    """Routes by path on 127.0.0.1; ``requests`` counts every GET per path, ``bodies``
    counts the 200 answers (downloads), ``most_at_once`` the most requests in flight."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    bodies: Counter[str] = field(default_factory=Counter)
    most_at_once: int = 0
    base: str = ""
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return self.base + path

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        with self._lock:
            self.requests[path] += 1
            self._in_flight += 1
            self.most_at_once = max(self.most_at_once, self._in_flight)
        try:
            route = self.routes.get(path)
            if route is None:
                send(handler, 404, b"not found", "text/plain")
            else:
                route(handler)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should on hostile answers
        finally:
            with self._lock:
                self._in_flight -= 1

    def record(self, handler: BaseHTTPRequestHandler, status: int) -> None:
        """Count an answer about to be sent: a 200 is a download."""
        if status == 200:
            with self._lock:
                self.bodies[handler.path] += 1


@contextmanager
def serve(
    routes: dict[str, Route], tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> Iterator[ImageServer]:
    """Run an ImageServer with ``routes`` in a thread for the duration of the block; over
    HTTPS with ``tls`` (a server context), its URLs then naming ``host``."""
    server = ImageServer(routes)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            server._handle(self)

        def send_response(self, code: int, message: str | None = None) -> None:
            server.record(self, code)
            super().send_response(code, message)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    server.base = f"{scheme}://{host}:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def slow(seconds: float) -> Route:
    """A route that answers only after ``seconds`` (a server slower than the time-out)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        send(handler, 200, b"late", "image/png")

    return route


def trickle(interval: float) -> Route:
    """A route that sends a PNG header, then one byte every ``interval`` seconds, forever:
    never slow enough for the read time-out, only the deadline stops it."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        while True:
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(interval)

    return route


def endless(content_length: int | None) -> Route:
    """A route that streams zeros until the client hangs up, claiming ``content_length``
    (None: no length, the body ends when the connection closes)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        if content_length is None:
            handler.send_header("Connection", "close")
        else:
            handler.send_header("Content-Length", str(content_length))
        handler.end_headers()
        handler.close_connection = True
        chunk = bytes(64 * 1024)
        for _ in range(10_000):  # 640 MiB: far beyond any cap, yet finite
            handler.wfile.write(chunk)

    return route


def redirect(location: str, status: int = 302) -> Route:
    """A route that redirects to ``location``."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        send(handler, status, headers={"Location": location})

    return route


def failing(statuses: list[int], then: Route, retry_after: str | None = None) -> Route:
    """A route that answers ``statuses`` one by one on the first requests, then ``then``."""
    remaining = list(statuses)

    def route(handler: BaseHTTPRequestHandler) -> None:
        if remaining:
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            send(handler, remaining.pop(0), b"busy", "text/plain", headers)
        else:
            then(handler)

    return route
