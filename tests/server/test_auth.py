"""API keys, rate limits, TLS and mutual TLS: against servers on loopback ports and the
keys file and CLI directly."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from loopback import SKUS, loopback_settings, run_cli
from typer.testing import CliRunner

from tryon.cli import app
from tryon.client import ExperimentClient, ServiceError, TlsOptions, TryOnClient
from tryon.errors import InvalidInputError
from tryon.server.app import SERVICE_NAME as SERVICE_V1
from tryon.server.app import ServerThread
from tryon.server.auth import KeyRing, add_key, read_keys, revoke_key
from tryon.server.errors import KeyRevokedError, RateLimitedError, UnauthenticatedError
from tryon.server.logs import JsonFormatter
from tryon.server.settings import ServerSettings


@dataclass(frozen=True)
class Pem:
    """A throw-away CA and what it signed, as PEM files and bytes."""

    ca: bytes
    server_cert: Path
    server_key: Path
    ca_file: Path
    client_cert: bytes
    client_key: bytes


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    usage: ExtendedKeyUsageOID | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> Pem:
    folder = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test CA", ca_key, None, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(
        "localhost", server_key, ca.subject, ca_key, usage=ExtendedKeyUsageOID.SERVER_AUTH
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate(
        "shop-a", client_key, ca.subject, ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    paths = {name: folder / name for name in ("server.pem", "server.key", "ca.pem")}
    paths["server.pem"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths["server.key"].write_bytes(_key_pem(server_key))
    paths["ca.pem"].write_bytes(ca_pem)
    return Pem(
        ca=ca_pem,
        server_cert=paths["server.pem"],
        server_key=paths["server.key"],
        ca_file=paths["ca.pem"],
        client_cert=client.public_bytes(serialization.Encoding.PEM),
        client_key=_key_pem(client_key),
    )


@dataclass
class Keys:
    """The keys file of the secured server and keys made for it."""

    file: Path
    good: str
    revoked: str
    limited: str


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    file = tmp_path_factory.mktemp("keys") / "keys.json"
    good = add_key(file, "shop-a")
    revoked = add_key(file, "shop-old")
    limited = add_key(file, "shop-slow", rate_per_s=0.01, burst=1)
    revoke_key(file, "shop-old")
    return Keys(file, good, revoked, limited)


@pytest.fixture(scope="module")
def secured(pipeline, catalog_url, pem: Pem, keys: Keys) -> Iterator[ServerThread]:
    """A server with API keys (checked on every call) and TLS."""
    settings = loopback_settings(
        catalog_url,
        warmup=False,
        reflection=False,
        api_keys_file=str(keys.file),
        api_keys_reload_s=0.0,
        tls_cert=str(pem.server_cert),
        tls_key=str(pem.server_key),
    )
    with ServerThread(settings, pipeline) as running:
        yield running


def tls_client(secured: ServerThread, pem: Pem, api_key: str | None) -> TryOnClient:
    return TryOnClient(secured.target, timeout_s=30, api_key=api_key, tls=TlsOptions(pem.ca))


def list_first(client: TryOnClient) -> str:
    """The first garment's SKU: a cheap authenticated call."""
    return next(client.list_garments(page_size=1)).sku


def refusal(call) -> ServiceError:  # noqa: ANN001
    with pytest.raises(ServiceError) as failure:
        call()
    return failure.value


def test_a_good_key_over_tls_is_served(secured, pem, keys, photo):
    with tls_client(secured, pem, keys.good) as client:
        assert client.try_on(photo, SKUS[0]).garment_sku == SKUS[0]


@pytest.mark.parametrize(
    ("api_key", "code", "words"),
    [
        (None, grpc.StatusCode.UNAUTHENTICATED, "authorization: Bearer"),
        ("tryon_00000000_" + "x" * 43, grpc.StatusCode.UNAUTHENTICATED, "not valid"),
        ("not-even-a-key", grpc.StatusCode.UNAUTHENTICATED, "not valid"),
    ],
)
def test_a_missing_or_wrong_key_is_unauthenticated(secured, pem, api_key, code, words):
    with tls_client(secured, pem, api_key) as client:
        error = refusal(lambda: list_first(client))
    assert error.code == code and words in error.message


def test_a_tampered_good_key_is_unauthenticated(secured, pem, keys):
    tampered = keys.good[:-1] + ("A" if keys.good[-1] != "A" else "B")
    with tls_client(secured, pem, tampered) as client:
        assert refusal(lambda: list_first(client)).code == grpc.StatusCode.UNAUTHENTICATED


def test_the_try_on_command_sends_the_key_from_the_environment_over_tls(
    secured, pem, keys, photo, tmp_path, monkeypatch, capsys
):
    (tmp_path / "me.jpg").write_bytes(photo)
    command = ["try-on", "--photo", str(tmp_path / "me.jpg"), "--sku", SKUS[0],
               "-o", str(tmp_path / "out"), "--target", secured.target,
               "--tls-ca", str(pem.ca_file)]  # fmt: skip
    assert run_cli(command) == 1  # a product error
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    monkeypatch.setenv("TRYON_API_KEY", keys.good)
    assert run_cli(command) == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"me-{SKUS[0]}.jpg"]
    assert keys.good not in str(capsys.readouterr())


def test_a_revoked_key_is_permission_denied(secured, pem, keys):
    with tls_client(secured, pem, keys.revoked) as client:
        error = refusal(lambda: list_first(client))
    assert error.code == grpc.StatusCode.PERMISSION_DENIED
    assert "shop-old" in error.message and "revoked" in error.message


def test_the_experiment_service_needs_a_key_too(secured, pem, keys):
    with ExperimentClient(secured.target, tls=TlsOptions(pem.ca)) as anonymous:
        assert refusal(lambda: anonymous.results("x")).code == grpc.StatusCode.UNAUTHENTICATED
    with ExperimentClient(secured.target, api_key=keys.good, tls=TlsOptions(pem.ca)) as client:
        assert refusal(lambda: client.results("no-such")).code == grpc.StatusCode.NOT_FOUND


def test_health_needs_no_key_and_reflection_is_off(secured, pem):
    credentials = grpc.ssl_channel_credentials(pem.ca)
    with grpc.secure_channel(secured.target, credentials) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as failure:
            next(stub.ServerReflectionInfo(iter([request]), timeout=5))
    assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_plaintext_client_cannot_talk_to_the_tls_port(secured, keys):
    with TryOnClient(secured.target, timeout_s=5, api_key=keys.good) as client:
        assert refusal(lambda: list_first(client)).code == grpc.StatusCode.UNAVAILABLE


def test_a_key_over_its_rate_is_told_when_to_retry(secured, pem, keys):
    with tls_client(secured, pem, keys.limited) as client:
        list_first(client)  # the burst of one
        error = refusal(lambda: list_first(client))
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.retry_after_s is not None and 50 < error.retry_after_s <= 100  # 0.01/s


def test_a_key_added_while_serving_works_without_a_restart(secured, pem, keys):
    later = add_key(keys.file, f"shop-new-{time.monotonic_ns()}")
    with tls_client(secured, pem, later) as client:
        assert list_first(client) == SKUS[0]


def test_keys_never_appear_in_the_logs(secured, pem, keys, photo, caplog):
    caplog.set_level(logging.DEBUG)
    for api_key in (keys.good, keys.revoked, keys.good[:-2] + "zz"):
        with tls_client(secured, pem, api_key) as client, contextlib.suppress(ServiceError):
            client.try_on(photo, SKUS[1])
    expected = {"OK", "PERMISSION_DENIED", "UNAUTHENTICATED"}
    deadline = time.monotonic() + 5  # a refused call's line is written after its status
    while True:
        lines = [JsonFormatter().format(record) for record in caplog.records]
        calls = [json.loads(line) for line in lines if '"message": "call"' in line]
        if expected <= {call["code"] for call in calls} or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert expected <= {call["code"] for call in calls}
    assert any(call.get("caller") == "shop-a" for call in calls)
    text = "\n".join(lines)
    for api_key in (keys.good, keys.revoked):
        secret = api_key.split("_", 2)[2]  # tryon_<id>_<secret>; the secret may hold "_"
        assert secret not in text and api_key not in text


def test_mutual_tls_needs_a_client_certificate(pipeline, catalog_url, pem):
    settings = loopback_settings(
        catalog_url,
        warmup=False,
        tls_cert=str(pem.server_cert),
        tls_key=str(pem.server_key),
        tls_client_ca=str(pem.ca_file),
    )
    with ServerThread(settings, pipeline) as running:
        certified = TlsOptions(pem.ca, pem.client_cert, pem.client_key)
        with TryOnClient(running.target, timeout_s=10, tls=certified) as client:
            assert list_first(client) == SKUS[0]
        with TryOnClient(running.target, timeout_s=5, tls=TlsOptions(pem.ca)) as client:
            assert refusal(lambda: list_first(client)).code == grpc.StatusCode.UNAVAILABLE


def plaintext_health(port: int, service: str) -> int:
    """The health status of `service` on a plaintext port, as the kubelet asks it."""
    with grpc.insecure_channel(f"localhost:{port}") as channel:
        request = health_pb2.HealthCheckRequest(service=service)
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status


def test_probes_reach_a_mutual_tls_server_on_its_plaintext_health_port(pipeline, catalog_url, pem):
    """With `health_port` the API port speaks mutual TLS while the kubelet's plaintext gRPC
    probes read the same health statuses on a second port that serves health alone."""
    settings = loopback_settings(
        catalog_url,
        warmup=False,
        drain_s=1.5,
        tls_cert=str(pem.server_cert),
        tls_key=str(pem.server_key),
        tls_client_ca=str(pem.ca_file),
        health_port=0,
    )
    running = ServerThread(settings, pipeline).__enter__()
    try:
        port = running.server.health_port
        assert port not in (None, running.server.port)
        serving = [plaintext_health(port, name) for name in ("", SERVICE_V1, "liveness")]
        with TryOnClient(f"localhost:{port}", timeout_s=5) as client:
            assert refusal(lambda: list_first(client)).code == grpc.StatusCode.UNIMPLEMENTED
        stopping = threading.Thread(target=running.close)
        stopping.start()
        time.sleep(0.4)
        draining = [plaintext_health(port, name) for name in (SERVICE_V1, "liveness")]
        stopping.join(30)
    finally:
        running.close()
    assert serving == [health_pb2.HealthCheckResponse.SERVING] * 3
    assert draining == [
        health_pb2.HealthCheckResponse.NOT_SERVING,
        health_pb2.HealthCheckResponse.SERVING,
    ]


@pytest.mark.parametrize(
    ("ports", "why"),
    [
        ({"port": 50051, "health_port": 50051}, "must differ"),
        ({"metrics_port": 9095, "health_port": 9095}, "must differ"),
        ({"health_port": 70000}, "port number"),
        ({"health_port": -2}, "port number"),
    ],
)
def test_the_health_port_must_be_a_port_of_its_own(ports, why):
    with pytest.raises(InvalidInputError, match=why):
        ServerSettings(**ports)


def test_a_health_port_in_use_fails_the_start(pipeline, catalog_url):
    """Not a second listener sharing the port (SO_REUSEPORT) that would take some probes."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        settings = loopback_settings(catalog_url, warmup=False, health_port=holder.getsockname()[1])
        with pytest.raises(RuntimeError, match="bind"), ServerThread(settings, pipeline):
            pass


def test_a_server_without_keys_is_open_and_says_so(pipeline, catalog_url, photo, caplog):
    caplog.set_level(logging.INFO, logger="tryon")
    with (
        ServerThread(loopback_settings(catalog_url, warmup=False), pipeline) as running,
        TryOnClient(running.target, timeout_s=30) as client,
    ):
        assert list_first(client) == SKUS[0]
    assert any("open to every caller" in record.getMessage() for record in caplog.records)


def test_a_server_with_a_broken_keys_file_does_not_start(pipeline, catalog_url, tmp_path):
    broken = tmp_path / "keys.json"
    broken.write_text("{not json")
    settings = loopback_settings(catalog_url, warmup=False, api_keys_file=str(broken))
    with pytest.raises(InvalidInputError, match="not JSON"):
        ServerThread(settings, pipeline).__enter__()


class Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


def test_the_keys_file_holds_digests_only(tmp_path):
    file = tmp_path / "keys.json"
    key = add_key(file, "shop-a")
    assert key.startswith("tryon_") and key not in file.read_text()
    secret = key.split("_", 2)[2]  # the secret itself may hold "_"
    assert len(secret) == 43 and secret not in file.read_text()
    assert file.stat().st_mode & 0o077 == 0  # its owner's only
    assert [entry.name for entry in read_keys(file)] == ["shop-a"]
    with pytest.raises(InvalidInputError, match="already"):
        add_key(file, "shop-a")


def test_a_broken_keys_file_keeps_the_last_good_keys_and_says_why(tmp_path, caplog):
    file = tmp_path / "keys.json"
    key = add_key(file, "shop-a")
    ring = KeyRing(file, reload_s=0.0)
    file.write_text('{"version": 1, "keys": [{"name": "x"}]}')
    with caplog.at_level(logging.WARNING, logger="tryon.server.auth"):
        assert ring.authenticate(bearer(key)).name == "shop-a"
    assert "previous keys stay in force" in caplog.text
    assert "needs name, id, sha256 and created" in caplog.records[0].fields["reason"]
    other = add_key(tmp_path / "other.json", "shop-b")  # a valid file again
    file.write_text((tmp_path / "other.json").read_text())
    assert ring.authenticate(bearer(other)).name == "shop-b"
    with pytest.raises(UnauthenticatedError):
        ring.authenticate(bearer(key))


def test_reloads_wait_for_the_reload_interval(tmp_path):
    clock = Clock()
    file = tmp_path / "keys.json"
    first = add_key(file, "shop-a")
    ring = KeyRing(file, reload_s=5.0, clock=clock)
    revoke_key(file, "shop-a")
    assert ring.authenticate(bearer(first)).name == "shop-a"  # not checked again yet
    clock.now += 5.0
    with pytest.raises(KeyRevokedError):
        ring.authenticate(bearer(first))


def test_the_token_bucket_allows_the_burst_then_the_rate(tmp_path):
    clock = Clock()
    file = tmp_path / "keys.json"
    key = add_key(file, "shop-a", rate_per_s=2.0, burst=3)
    ring = KeyRing(file, clock=clock)
    for _ in range(3):
        ring.authenticate(bearer(key))
    with pytest.raises(RateLimitedError) as limited:
        ring.authenticate(bearer(key))
    assert limited.value.retry_after_s == pytest.approx(0.5)
    clock.now += 0.5
    ring.authenticate(bearer(key))


def test_keys_cli_adds_lists_and_revokes(tmp_path):
    runner = CliRunner()
    file = str(tmp_path / "keys.json")
    added = runner.invoke(app, ["keys", "add", "shop-a", "--keys-file", file, "--rate", "5"])
    assert added.exit_code == 0, added.output
    key = added.stdout.strip()
    assert key.startswith("tryon_") and len(added.stdout.splitlines()) == 1
    listed = runner.invoke(app, ["keys", "list", "--keys-file", file, "--json"])
    (entry,) = json.loads(listed.stdout)
    assert (entry["name"], entry["rate_per_s"], entry["revoked"]) == ("shop-a", 5.0, None)
    assert key not in listed.stdout and "sha256" not in listed.stdout
    revoked = runner.invoke(app, ["keys", "revoke", "shop-a", "--keys-file", file, "--yes"])
    assert revoked.exit_code == 0, revoked.output
    with pytest.raises(KeyRevokedError):
        KeyRing(file).authenticate(bearer(key))
    missing = runner.invoke(app, ["keys", "revoke", "shop-z", "--keys-file", file, "--yes"])
    assert missing.exit_code != 0
