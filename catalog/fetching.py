"""Downloading product photos named by ``http(s)`` URL into a local cache, safely.

An import hands over all its URLs at once; :func:`fetch_images` downloads them
concurrently and returns, for each, the cached file or the reason it failed. What a
slow, broken or hostile server can do is bounded: a size cap enforced while streaming
(a lying Content-Length changes nothing), connect and read time-outs and a deadline per
image, a bounded number of redirects, a content-type check, and a few retries with
exponential backoff on 429, 5xx and broken connections (honouring Retry-After).

Server-side request forgery: before connecting, every address the host name resolves
to is checked, and the connection goes to a checked address (no second lookup to race
against), on the first request and on every redirect. Loopback, private, link-local,
multicast and other non-public addresses are refused unless ``allow_private``
(``TRYON_ALLOW_PRIVATE_URLS=1``).

The cache keeps each URL's bytes with their ETag and Last-Modified; fetching the URL
again asks the server whether the image changed (a conditional GET) and reuses the
cached bytes on ``304 Not Modified``.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import ipaddress
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import httpcore
import httpx

from catalog.errors import CatalogError

MIB = 1024 * 1024
SCHEMES = ("http", "https")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
# Names some servers use for JPEG.
_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_TRUE = ("1", "true", "yes", "on")


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/tryon/images``, else ``~/.cache/tryon/images``."""
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tryon" / "images"


def _positive(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise CatalogError(
            f"{name} must be a positive number, not `{text}`; unset it for the default"
        )
    return value


@dataclass(frozen=True)
class FetchSettings:
    """Limits and the cache folder for downloading images.

    cache_dir: where downloaded images are kept between imports.
    max_bytes: the largest image accepted, in bytes.
    timeout: seconds allowed to connect, and to wait for each piece of an answer.
    deadline: seconds one image may take in all, retries and redirects included.
    concurrency: downloads running at once, in all.
    attempts: tries per image on 429, 5xx, time-outs and broken connections.
    backoff: seconds before the second try; it doubles with every further try.
    max_redirects: redirects followed per image.
    allow_private: whether URLs may reach non-public addresses (loopback, private, ...).
    """

    cache_dir: Path
    max_bytes: int = 20 * MIB
    timeout: float = 10.0
    deadline: float = 60.0
    concurrency: int = 8
    attempts: int = 3
    backoff: float = 0.5
    max_redirects: int = 5
    allow_private: bool = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> FetchSettings:
        """Settings from ``TRYON_IMAGE_CACHE``, ``TRYON_IMAGE_MAX_MB``, ``TRYON_IMAGE_TIMEOUT``,
        ``TRYON_IMAGE_DEADLINE``, ``TRYON_IMAGE_DOWNLOADS`` and ``TRYON_ALLOW_PRIVATE_URLS``."""
        cache = environ.get("TRYON_IMAGE_CACHE", "").strip()
        return cls(
            cache_dir=Path(cache).expanduser() if cache else default_cache_dir(environ),
            max_bytes=int(_positive(environ, "TRYON_IMAGE_MAX_MB", 20) * MIB),
            timeout=_positive(environ, "TRYON_IMAGE_TIMEOUT", 10.0),
            deadline=_positive(environ, "TRYON_IMAGE_DEADLINE", 60.0),
            concurrency=max(1, int(_positive(environ, "TRYON_IMAGE_DOWNLOADS", 8))),
            allow_private=environ.get("TRYON_ALLOW_PRIVATE_URLS", "").strip().lower() in _TRUE,
        )


class FetchError(CatalogError):
    """An image URL could not be downloaded: ``reason`` says why, ``status`` is the HTTP
    status when the server answered with one."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status

    def __reduce__(self) -> tuple[type, tuple[str, str, int | None]]:
        return (type(self), (self.url, self.reason, self.status))


class _Failure(Exception):
    """Why one try failed, and whether another try may succeed."""

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        *,
        retry: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry = retry
        self.retry_after = retry_after


@dataclass(frozen=True)
class FetchedImage:
    """A downloaded image: the file holding its bytes, and whether the cached copy was
    still current (the server answered 304, nothing was downloaded)."""

    url: str
    path: Path
    from_cache: bool


def is_url(source: str) -> bool:
    """Whether an image cell or option names an ``http(s)`` URL to download."""
    return urlparse(source.strip()).scheme.lower() in SCHEMES


# --- which addresses may be reached -------------------------------------------------

Resolver = Callable[[str, int], Sequence[str]]


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (IPv4 and IPv6), in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_problem(address: str) -> str | None:
    """What kind of non-public address ``address`` is (``"loopback"``, ``"private"``, ...),
    or None for a public one that downloads may reach."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    kinds = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),
    )
    return next((kind for kind, matches in kinds if matches), None)


@dataclass(frozen=True)
class AddressGuard:
    """Decides which addresses downloads may connect to: public ones only, unless
    ``allow_private``. ``resolver`` and ``problem`` are replaceable for tests."""

    allow_private: bool = False
    resolver: Resolver = resolve_host
    problem: Callable[[str], str | None] = address_problem

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``; refuses the host when any one of them is
        not allowed (a name resolving to a public and a private address is refused)."""
        try:
            found = list(self.resolver(host, port))
        except OSError as error:
            raise _Failure(f"cannot resolve the host {host} ({error.strerror or error})") from None
        if not found:
            raise _Failure(f"the host {host} resolves to no address")
        if self.allow_private:
            return found
        for address in found:
            kind = self.problem(address)
            if kind is not None:
                shown = f"{host} is" if host == address else f"{host} resolves to"
                raise _Failure(
                    f"refused: {shown} the {kind} address {address}; the catalog downloads only "
                    "from public addresses (server-side request forgery); set "
                    "TRYON_ALLOW_PRIVATE_URLS=1 if the image server is on your own network"
                )
        return found


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the guard allows."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await asyncio.to_thread(self._guard.addresses, host, port)
        last: Exception | None = None
        for address in addresses:  # TLS still checks the certificate against ``host``
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last = error
        assert last is not None
        raise last

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _client(settings: FetchSettings, guard: AddressGuard) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx has no public hook for the network backend: its pool is replaced by one whose
    # backend checks every address it connects to.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=settings.concurrency,
        network_backend=_GuardedBackend(guard),
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(settings.timeout, pool=None),
        follow_redirects=False,
        trust_env=False,
        headers={"Accept": ", ".join(IMAGE_TYPES), "Accept-Encoding": "identity"},
    )


# --- the cache -----------------------------------------------------------------------


@dataclass(frozen=True)
class _CachedCopy:
    path: Path
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class ImageCache:
    """Downloaded images on disk: per URL a body file and a JSON record of its validators.

    Files are replaced atomically, so concurrent imports and an import killed halfway
    leave either the old copy or the new one, never a mixture.
    """

    folder: Path

    def _files(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode()).hexdigest()
        return self.folder / f"{key}.img", self.folder / f"{key}.json"

    def body(self, url: str) -> Path:
        """The file that holds (or will hold) ``url``'s bytes."""
        return self._files(url)[0]

    def lookup(self, url: str) -> _CachedCopy | None:
        """The cached copy of ``url`` when it is complete."""
        body, record_file = self._files(url)
        try:
            record = json.loads(record_file.read_text())
            if record["url"] != url or body.stat().st_size != record["bytes"]:
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return _CachedCopy(body, record.get("etag"), record.get("last_modified"))

    @contextmanager
    def writer(self, url: str, headers: httpx.Headers) -> Iterator[IO[bytes]]:
        """A file to write ``url``'s new bytes to; they replace the cached copy when the
        block ends without an exception, and are thrown away otherwise."""
        body, record_file = self._files(url)
        handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                yield out
                size = out.tell()
            record_file.unlink(missing_ok=True)  # no record may describe other bytes
            os.replace(temporary, body)
            record = {
                "url": url,
                "bytes": size,
                "etag": headers.get("ETag"),
                "last_modified": headers.get("Last-Modified"),
            }
            _write_atomically(record_file, json.dumps(record).encode())
        finally:
            Path(temporary).unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


# --- downloading ---------------------------------------------------------------------


def fetch_images(
    urls: Iterable[str],
    settings: FetchSettings,
    *,
    guard: AddressGuard | None = None,
    on_fetched: Callable[[FetchedImage | FetchError], None] | None = None,
) -> dict[str, FetchedImage | FetchError]:
    """Download every URL once, ``settings.concurrency`` at a time, into the cache.

    Returns each URL's cached file or the FetchError saying why it failed; never raises
    for a bad URL. ``guard`` decides which addresses may be reached (default: public ones
    unless ``settings.allow_private``). ``on_fetched`` is called as each URL finishes.
    Raises CatalogError only when the cache folder cannot be used.
    """
    unique = list(dict.fromkeys(urls))
    if not unique:
        return {}
    try:
        settings.cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CatalogError(
            f"cannot use the image cache folder {settings.cache_dir} ({error.strerror}); "
            "set TRYON_IMAGE_CACHE to a folder you can write to"
        ) from None
    guard = guard or AddressGuard(allow_private=settings.allow_private)
    return asyncio.run(_fetch_all(unique, settings, guard, on_fetched))


async def _fetch_all(
    urls: list[str],
    settings: FetchSettings,
    guard: AddressGuard,
    on_fetched: Callable[[FetchedImage | FetchError], None] | None,
) -> dict[str, FetchedImage | FetchError]:
    cache = ImageCache(settings.cache_dir)
    slots = asyncio.Semaphore(settings.concurrency)
    async with _client(settings, guard) as client:

        async def one(url: str) -> tuple[str, FetchedImage | FetchError]:
            async with slots:
                result = await _fetch_within_deadline(client, cache, url, settings)
            if on_fetched is not None:
                on_fetched(result)
            return url, result

        return dict(await asyncio.gather(*(one(url) for url in urls)))


async def _fetch_within_deadline(
    client: httpx.AsyncClient, cache: ImageCache, url: str, settings: FetchSettings
) -> FetchedImage | FetchError:
    try:
        return await asyncio.wait_for(_fetch(client, cache, url, settings), settings.deadline)
    except _Failure as failure:
        return FetchError(url, failure.reason, failure.status)
    except asyncio.TimeoutError:
        return FetchError(
            url,
            f"took longer than the {settings.deadline:g} s allowed per image "
            "(TRYON_IMAGE_DEADLINE); the server is too slow",
        )
    except OSError as error:
        return FetchError(url, f"cannot write to the image cache ({error})")


def _check_url(url: str, redirect: bool = False) -> None:
    parsed = urlparse(url)
    where = f"redirects to {url}, which" if redirect else "the URL"
    if parsed.scheme.lower() not in SCHEMES:
        raise _Failure(f"{where} is not an http:// or https:// URL")
    if not parsed.hostname:
        raise _Failure(f"{where} names no host")


async def _fetch(
    client: httpx.AsyncClient, cache: ImageCache, url: str, settings: FetchSettings
) -> FetchedImage:
    """One URL, tried up to ``settings.attempts`` times."""
    _check_url(url)
    cached = cache.lookup(url)
    attempt = 1
    while True:
        try:
            return await _download(client, cache, url, cached, settings)
        except _Failure as failure:
            if not failure.retry or attempt == settings.attempts:
                if attempt > 1:
                    raise _Failure(
                        f"{failure.reason} (gave up after {attempt} tries)", failure.status
                    ) from None
                raise
            delay = settings.backoff * 2 ** (attempt - 1)
            if failure.retry_after is not None:
                if failure.retry_after >= settings.deadline:
                    raise _Failure(
                        f"{failure.reason}, and the server asks to retry after "
                        f"{failure.retry_after:g} s, longer than the {settings.deadline:g} s "
                        "allowed per image",
                        failure.status,
                    ) from None
                delay = max(delay, failure.retry_after)
            await asyncio.sleep(delay)
            attempt += 1


async def _download(
    client: httpx.AsyncClient,
    cache: ImageCache,
    url: str,
    cached: _CachedCopy | None,
    settings: FetchSettings,
) -> FetchedImage:
    """One try: follow redirects (each target checked again) and receive the image."""
    headers = {}
    if cached is not None and cached.etag:
        headers["If-None-Match"] = cached.etag
    if cached is not None and cached.last_modified:
        headers["If-Modified-Since"] = cached.last_modified
    request = client.build_request("GET", url, headers=headers)
    try:
        for _ in range(settings.max_redirects + 1):
            response = await client.send(request, stream=True)
            try:
                if response.next_request is None:
                    return await _receive(response, cache, url, cached, settings)
                request = response.next_request
                _check_url(str(request.url), redirect=True)
            finally:
                await response.aclose()
    except httpx.HTTPError as error:
        raise _transport_failure(error, settings) from None
    raise _Failure(f"more than {settings.max_redirects} redirects")


async def _receive(
    response: httpx.Response,
    cache: ImageCache,
    url: str,
    cached: _CachedCopy | None,
    settings: FetchSettings,
) -> FetchedImage:
    """Check a final answer's status, type and size, and stream its body into the cache."""
    status = response.status_code
    if status == 304 and cached is not None:
        return FetchedImage(url, cached.path, from_cache=True)
    said = f"HTTP {status} {response.reason_phrase}".strip()
    if status in RETRY_STATUSES:
        retry_after = _seconds(response.headers.get("Retry-After"))
        raise _Failure(said, status, retry=True, retry_after=retry_after)
    if status != 200:
        raise _Failure(said, status)
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    content_type = _TYPE_ALIASES.get(content_type, content_type)
    if content_type not in IMAGE_TYPES:
        raise _Failure(
            f"the server sent {content_type or 'no Content-Type'}, not an image "
            f"({', '.join(IMAGE_TYPES)})",
            status,
        )
    limit = f"the {settings.max_bytes / MIB:g} MiB limit (TRYON_IMAGE_MAX_MB)"
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > settings.max_bytes:
        raise _Failure(f"the image is {int(length):,} bytes, over {limit}", status)
    with cache.writer(url, response.headers) as out:
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > settings.max_bytes:
                raise _Failure(f"the image is larger than {limit}", status)
            out.write(chunk)
    return FetchedImage(url, cache.body(url), from_cache=False)


def _seconds(retry_after: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay seconds or an HTTP date)."""
    if not retry_after:
        return None
    text = retry_after.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _transport_failure(error: httpx.HTTPError, settings: FetchSettings) -> _Failure:
    """A retryable failure for time-outs and broken connections, a final one otherwise."""
    if isinstance(error, httpx.ConnectTimeout):
        return _Failure(f"no connection within {settings.timeout:g} s", retry=True)
    if isinstance(error, httpx.ReadTimeout):
        return _Failure(
            f"the server sent nothing for {settings.timeout:g} s (TRYON_IMAGE_TIMEOUT)", retry=True
        )
    if isinstance(error, httpx.TimeoutException):
        return _Failure(f"timed out ({type(error).__name__})", retry=True)
    if isinstance(error, httpx.ConnectError):
        return _Failure(f"cannot connect ({error or 'connection refused'})", retry=True)
    if isinstance(error, httpx.NetworkError | httpx.RemoteProtocolError):
        return _Failure(f"the connection broke off ({error or type(error).__name__})", retry=True)
    return _Failure(f"{type(error).__name__}: {error}")
