"""Downloading image URLs against a local server: the limits, the cache, the refusals."""

from __future__ import annotations

import dataclasses
import datetime
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from catalog_pictures import encode, product_photo, tshirt_mask
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from image_server import (
    ImageServer,
    endless,
    failing,
    image,
    redirect,
    send,
    serve,
    slow,
    trickle,
)

from catalog import fetching
from catalog.errors import CatalogError
from catalog.fetching import (
    MIB,
    AddressGuard,
    FetchedImage,
    FetchError,
    FetchSettings,
    address_problem,
    default_cache_dir,
    fetch_images,
)

PNG = encode(product_photo(tshirt_mask()))
JPEG = encode(product_photo(tshirt_mask()), "JPEG")


@pytest.fixture
def settings(tmp_path: Path) -> FetchSettings:
    """Short limits so that every test is quick; loopback allowed (the server is local)."""
    return FetchSettings(
        cache_dir=tmp_path / "cache",
        max_bytes=1 * MIB,
        timeout=0.3,
        deadline=2.0,
        attempts=3,
        backoff=0.01,
        allow_private=True,
    )


@pytest.fixture
def server() -> Iterator[ImageServer]:
    with serve(
        {
            "/tee.png": image(PNG),
            "/tee.jpg": image(JPEG, "image/jpeg; charset=binary", etag=None),
            "/page.html": image(b"<html></html>", "text/html; charset=utf-8"),
            "/slow.png": slow(1.0),
            "/trickle.png": trickle(0.05),
            "/huge.png": image(bytes(2 * MIB)),
            "/endless.png": endless(None),
            "/liar.png": endless(1000),
            "/moved.png": redirect("/tee.png", 301),
            "/loop.png": redirect("/loop.png"),
            "/ftp.png": redirect("ftp://example.com/tee.png"),
            "/flaky.png": failing([503, 502], image(PNG), retry_after="0"),
            "/busy.png": failing([429] * 10, image(PNG), retry_after="3600"),
            "/broken.png": failing([500] * 10, image(PNG)),
        }
    ) as running:
        yield running


def fetch_one(url: str, settings: FetchSettings, **options: object) -> FetchedImage | FetchError:
    (result,) = fetch_images([url], settings, **options).values()  # type: ignore[arg-type]
    return result


def reason(result: FetchedImage | FetchError) -> str:
    assert isinstance(result, FetchError), f"expected a failure, got {result}"
    return result.reason


def test_good_images_are_downloaded_byte_for_byte(
    server: ImageServer, settings: FetchSettings
) -> None:
    results = fetch_images([server.url("/tee.png"), server.url("/tee.jpg")], settings)
    png, jpeg = results.values()
    assert isinstance(png, FetchedImage) and png.path.read_bytes() == PNG
    assert isinstance(jpeg, FetchedImage) and jpeg.path.read_bytes() == JPEG
    assert not png.from_cache and png.path.parent == settings.cache_dir


def test_etag_revalidation_reuses_the_cached_bytes(
    server: ImageServer, settings: FetchSettings
) -> None:
    first = fetch_one(server.url("/tee.png"), settings)
    again = fetch_one(server.url("/tee.png"), settings)
    assert isinstance(again, FetchedImage) and again.from_cache
    assert again.path.read_bytes() == PNG and again.path == first.path
    assert server.requests["/tee.png"] == 2 and server.bodies["/tee.png"] == 1  # one 304
    # Without validators there is nothing to revalidate: the image is downloaded again.
    fetch_one(server.url("/tee.jpg"), settings)
    assert not fetch_one(server.url("/tee.jpg"), settings).from_cache
    assert server.bodies["/tee.jpg"] == 2


def test_a_changed_image_replaces_the_cached_copy(
    server: ImageServer, settings: FetchSettings
) -> None:
    fetch_one(server.url("/tee.png"), settings)
    server.routes["/tee.png"] = image(JPEG, "image/jpeg", etag='"v2"')
    changed = fetch_one(server.url("/tee.png"), settings)
    assert isinstance(changed, FetchedImage) and not changed.from_cache
    assert changed.path.read_bytes() == JPEG


def test_http_errors_name_the_status(server: ImageServer, settings: FetchSettings) -> None:
    result = fetch_one(server.url("/missing.png"), settings)
    assert reason(result) == "HTTP 404 Not Found" and result.status == 404
    assert server.requests["/missing.png"] == 1  # a 404 is not retried
    assert str(result).startswith(server.url("/missing.png"))


def test_non_images_are_refused_saying_what_came(
    server: ImageServer, settings: FetchSettings
) -> None:
    assert "sent text/html, not an image" in reason(fetch_one(server.url("/page.html"), settings))


def test_a_slow_server_times_out(server: ImageServer, settings: FetchSettings) -> None:
    start = time.monotonic()
    result = fetch_one(server.url("/slow.png"), settings)
    assert "sent nothing for 0.3 s" in reason(result) and "after 3 tries" in reason(result)
    assert time.monotonic() - start < 1.5


def test_a_trickling_server_is_cut_off_at_the_deadline(
    server: ImageServer, settings: FetchSettings
) -> None:
    start = time.monotonic()
    quick = dataclasses.replace(settings, deadline=1.0)
    assert "longer than the 1 s allowed per image" in reason(
        fetch_one(server.url("/trickle.png"), quick)
    )
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/huge.png", "2,097,152 bytes, over the 1 MiB limit"),  # refused by its length
        ("/endless.png", "larger than the 1 MiB limit"),  # no length: cut off while streaming
    ],
)
def test_huge_bodies_are_refused(
    server: ImageServer, settings: FetchSettings, path: str, message: str
) -> None:
    assert message in reason(fetch_one(server.url(path), settings))
    assert not list(settings.cache_dir.glob("*.img"))  # nothing half-kept in the cache
    assert not list(settings.cache_dir.glob("*.part"))


def test_a_lying_content_length_never_gets_more_than_it_claimed(
    server: ImageServer, settings: FetchSettings
) -> None:
    result = fetch_one(server.url("/liar.png"), settings)
    assert isinstance(result, FetchedImage) and result.path.stat().st_size == 1000


def test_redirects_are_followed_within_bounds(server: ImageServer, settings: FetchSettings) -> None:
    moved = fetch_one(server.url("/moved.png"), settings)
    assert isinstance(moved, FetchedImage) and moved.path.read_bytes() == PNG
    assert reason(fetch_one(server.url("/loop.png"), settings)) == "more than 5 redirects"
    assert server.requests["/loop.png"] == 6
    assert "redirects to ftp://example.com/tee.png, which is not an http" in reason(
        fetch_one(server.url("/ftp.png"), settings)
    )


def test_5xx_is_retried_with_backoff(server: ImageServer, settings: FetchSettings) -> None:
    flaky = fetch_one(server.url("/flaky.png"), settings)
    assert isinstance(flaky, FetchedImage) and flaky.path.read_bytes() == PNG
    assert server.requests["/flaky.png"] == 3
    broken = fetch_one(server.url("/broken.png"), settings)
    assert reason(broken) == "HTTP 500 Internal Server Error (gave up after 3 tries)"
    assert broken.status == 500 and server.requests["/broken.png"] == 3


def test_retry_after_beyond_the_deadline_fails_at_once(
    server: ImageServer, settings: FetchSettings
) -> None:
    start = time.monotonic()
    result = fetch_one(server.url("/busy.png"), settings)
    assert "HTTP 429 Too Many Requests" in reason(result)
    assert "retry after 3600 s, longer than the 2 s allowed" in reason(result)
    assert server.requests["/busy.png"] == 1 and time.monotonic() - start < 1.0


def test_a_refused_connection_is_retried_then_reported(settings: FetchSettings) -> None:
    with serve({}) as gone:
        url = gone.url("/tee.png")
    assert "cannot connect" in reason(fetch_one(url, settings))


def test_downloads_run_concurrently_within_the_limit(
    settings: FetchSettings, tmp_path: Path
) -> None:
    def pause(handler) -> None:  # noqa: ANN001
        time.sleep(0.15)
        send(handler, 200, PNG, "image/png")

    with serve({f"/{i}.png": pause for i in range(8)}) as server:
        start = time.monotonic()
        limited = dataclasses.replace(settings, concurrency=3)
        results = fetch_images([server.url(f"/{i}.png") for i in range(8)], limited)
        elapsed = time.monotonic() - start
    assert all(isinstance(r, FetchedImage) for r in results.values())
    assert server.most_at_once == 3
    assert elapsed < 8 * 0.15  # in parallel, not one after another


def test_each_url_is_fetched_once(server: ImageServer, settings: FetchSettings) -> None:
    results = fetch_images([server.url("/tee.png")] * 3, settings)
    assert len(results) == 1 and server.requests["/tee.png"] == 1


def _certificate_for(name: str, folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the DNS name ``name`` and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_https_checks_the_certificate_against_the_host_name(
    settings: FetchSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections go to the checked address, yet TLS still verifies the host's name."""
    cert_file, key_file = _certificate_for("localhost", tmp_path)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert_file, key_file)
    trusting = ssl.create_default_context(cafile=str(cert_file))
    monkeypatch.setattr(fetching.httpx, "create_ssl_context", lambda: trusting)
    single = dataclasses.replace(settings, attempts=1)
    with serve({"/tee.png": image(PNG)}, tls=server_side, host="localhost") as server:
        by_name = fetch_one(server.url("/tee.png"), single)
        by_address = fetch_one(server.url("/tee.png").replace("localhost", "127.0.0.1"), single)
    assert isinstance(by_name, FetchedImage) and by_name.path.read_bytes() == PNG
    assert "certificate is not valid for '127.0.0.1'" in reason(by_address)


# --- private addresses ----------------------------------------------------------------


def test_loopback_is_refused_unless_allowed(server: ImageServer, settings: FetchSettings) -> None:
    closed = dataclasses.replace(settings, allow_private=False)
    refused = reason(fetch_one(server.url("/tee.png"), closed))
    assert "refused: 127.0.0.1 is the loopback address 127.0.0.1" in refused
    assert "TRYON_ALLOW_PRIVATE_URLS=1" in refused
    assert server.requests["/tee.png"] == 0  # not even connected
    assert isinstance(fetch_one(server.url("/tee.png"), settings), FetchedImage)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_problem(address) == kind


def _resolver(table: dict[str, list[str]]):  # noqa: ANN202
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


def test_every_resolved_address_is_checked() -> None:
    guard = AddressGuard(
        resolver=_resolver(
            {
                "cdn.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
                "sneaky.example": ["93.184.216.34", "10.0.0.7"],
                "metadata.example": ["169.254.169.254"],
            }
        )
    )
    assert guard.addresses("cdn.example", 443) == [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
    ]
    with pytest.raises(Exception, match="sneaky.example resolves to the private address 10.0.0.7"):
        guard.addresses("sneaky.example", 443)
    with pytest.raises(Exception, match="link-local address 169.254.169.254"):
        guard.addresses("metadata.example", 80)
    with pytest.raises(Exception, match="cannot resolve the host nowhere.example"):
        guard.addresses("nowhere.example", 80)
    allowing = AddressGuard(allow_private=True, resolver=guard.resolver)
    assert allowing.addresses("sneaky.example", 443) == ["93.184.216.34", "10.0.0.7"]


def test_a_redirect_to_a_private_address_is_refused(
    server: ImageServer, settings: FetchSettings
) -> None:
    """The first hop is allowed (the test server stands in for a public CDN); the redirect
    goes to a name that resolves to a private address and is checked again."""
    port = int(server.base.rsplit(":", 1)[1])
    server.routes["/hop.png"] = redirect(f"http://intranet.example:{port}/tee.png")
    real = _resolver({"127.0.0.1": ["127.0.0.1"], "intranet.example": ["10.0.0.7"]})
    guard = AddressGuard(
        resolver=real,
        problem=lambda address: None if address == "127.0.0.1" else address_problem(address),
    )
    closed = dataclasses.replace(settings, allow_private=False)
    refused = reason(fetch_one(server.url("/hop.png"), closed, guard=guard))
    assert "intranet.example resolves to the private address 10.0.0.7" in refused
    assert server.requests["/hop.png"] == 1 and server.requests["/tee.png"] == 0


# --- settings ----------------------------------------------------------------------------


def test_settings_from_the_environment(tmp_path: Path) -> None:
    defaults = FetchSettings.from_environ({"XDG_CACHE_HOME": str(tmp_path)})
    assert defaults.cache_dir == tmp_path / "tryon" / "images"
    assert (defaults.max_bytes, defaults.timeout, defaults.deadline) == (20 * MIB, 10.0, 60.0)
    assert (defaults.concurrency, defaults.allow_private) == (8, False)
    assert default_cache_dir({}) == Path.home() / ".cache" / "tryon" / "images"
    chosen = FetchSettings.from_environ(
        {
            "TRYON_IMAGE_CACHE": str(tmp_path / "imgs"),
            "TRYON_IMAGE_MAX_MB": "5",
            "TRYON_IMAGE_TIMEOUT": "2.5",
            "TRYON_IMAGE_DOWNLOADS": "3",
            "TRYON_ALLOW_PRIVATE_URLS": "1",
        }
    )
    assert chosen.cache_dir == tmp_path / "imgs" and chosen.max_bytes == 5 * MIB
    assert (chosen.timeout, chosen.concurrency, chosen.allow_private) == (2.5, 3, True)
    with pytest.raises(CatalogError, match="TRYON_IMAGE_MAX_MB must be a positive number"):
        FetchSettings.from_environ({"TRYON_IMAGE_MAX_MB": "lots"})


def test_an_unusable_cache_folder_is_explained(tmp_path: Path, settings: FetchSettings) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    unusable = dataclasses.replace(settings, cache_dir=blocker / "cache")
    with pytest.raises(CatalogError, match="set TRYON_IMAGE_CACHE to a folder"):
        fetch_images(["http://127.0.0.1:9/x.png"], unusable)
