"""The server's one settings object, from `TRYON_*` environment variables and CLI flags."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from tryon.errors import InvalidInputError
from tryon.models.openvino_parser import PARSER_RUNTIMES
from tryon.models.precision import PRECISIONS

ENV_PREFIX = "TRYON_"
MIB = 1024 * 1024
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class ServerSettings:
    """Everything the try-on server can be told; each field `name` is also read from the
    environment variable `TRYON_<NAME>` (CLI flags win over the environment).

    Attributes:
        host, port: where gRPC listens; port 0 picks a free one.
        metrics_port: the Prometheus `/metrics` HTTP port; 0 picks a free one, -1 turns
            metrics serving off.
        weights: bundled weights name or pipeline folder (None: `TRYON_WEIGHTS`/synthetic).
        device: torch device for the models.
        precision: what the networks' convolutions run in: auto (bfloat16 on CPUs with
            AVX512-BF16, float32 elsewhere), float32 or bfloat16.
        parser_runtime: what runs the parser's network: auto (OpenVINO where the networks
            run in bfloat16 on the CPU and the weights hold an export from `tryon
            export-parser`, else PyTorch), openvino or torch.
        database_url: the catalog (None: `TRYON_DATABASE_URL` or ./tryon.db).
        workers: torch threads for model work (0: one per CPU core).
        model_niceness: how many nice steps (0-19) below the rest of the server the model
            thread and its torch workers run: under full load the event loop still gets
            a core at once, so refusals and health answers do not wait for a batch
            (`python -m tryon.bench_grpc --overload 4`: refusals p99 about 21 -> 18 ms on
            2 cores, 3-5% fewer try-ons/s with the load generator on the same cores); 0
            runs them at the same priority.
        max_batch: most try-ons in one model batch.
        max_wait_ms: how long the first request of a batch waits for others.
        max_queue: try-ons waiting or running; beyond it calls fail RESOURCE_EXHAUSTED.
        max_queue_wait_ms: a call that does not fit in one batch with the try-ons queued
            is also refused while they are expected to take longer than this (their
            number times the recent time per try-on), so that accepted calls stay fast
            under overload; 0 (the default) turns it off.
        retry_after_ms: the retry delay suggested with RESOURCE_EXHAUSTED.
        min_confidence: persons analysed with lower confidence fail FAILED_PRECONDITION.
        person_cache_entries, person_cache_mib, person_cache_ttl_s: analysed photos kept,
            in memory only, each for at most the TTL (seconds); 0 entries turns the cache off.
        garment_cache_entries, garment_cache_mib: prepared garments kept (checked against
            revisions), at most this many and this many MiB (8-bit, ~0.19 MiB each at
            256x192; 0 MiB keeps none).
        max_skus: most garments in one TryOnMany.
        max_message_mib: largest request or response message.
        max_pixels: largest photo accepted (width x height): 12 MP is a 4000x3000 phone
            photo; a decoded 25 MP photo alone costs the process over 1 GiB more.
        keepalive_s, keepalive_timeout_s: HTTP/2 pings on idle connections.
        max_connection_age_s, max_connection_age_grace_s: connections are closed after
            this age so that clients re-resolve and spread over new replicas.
        drain_s: after SIGTERM, how long the server keeps serving (NOT_SERVING in health)
            so that load balancers move traffic away before it stops.
        grace_s: then how long running calls get to finish.
        warmup: run one batch before reporting SERVING.
        schema_retry_s: while the database schema is behind (or the database cannot be
            reached) at start, NOT_SERVING and check again after this many seconds.
        stall_s: the event loop not turning for this long turns the liveness health
            service (`liveness`) NOT_SERVING, so the kubelet restarts the container.
        log_level: DEBUG, INFO, WARNING or ERROR.
        c2pa_cert, c2pa_key: PEM files of the store's C2PA signing certificate chain and
            its private key; every try-on then carries a signed C2PA manifest.
        c2pa_required: refuse to start without them (production); otherwise the server
            warns at start and try-ons carry the watermark and EXIF note only.
        api_keys_file: the API keys file (`tryon keys add`); every TryOnService and
            ExperimentService call then needs one of its keys. None: open to all callers.
        api_keys_reload_s: how often, at most, the keys file is checked for changes.
        tls_cert, tls_key: PEM files of the server's certificate chain and private key;
            the port then speaks TLS only.
        tls_client_ca: PEM file of the CAs whose client certificates are accepted; every
            client must then present one (mutual TLS). Needs tls_cert and tls_key.
        reflection: serve gRPC server reflection (what `grpcurl list` reads).
        health_port: a second port, always plaintext, that serves the gRPC health service
            alone (the same statuses, `liveness` included), for probes that cannot speak
            TLS when the API port does (the kubelet's gRPC probes); 0 picks a free one,
            -1 (the default) serves health on the API port only.
    """

    host: str = "[::]"
    port: int = 50051
    metrics_port: int = 9095
    weights: str | None = None
    device: str = "cpu"
    precision: str = "auto"
    parser_runtime: str = "auto"
    database_url: str | None = None
    workers: int = 0
    model_niceness: int = 5
    max_batch: int = 2
    max_wait_ms: float = 2.0
    max_queue: int = 64
    max_queue_wait_ms: float = 0.0
    retry_after_ms: int = 200
    min_confidence: float = 0.25
    person_cache_entries: int = 256
    person_cache_mib: int = 16
    person_cache_ttl_s: float = 600.0
    garment_cache_entries: int = 1024
    garment_cache_mib: int = 128
    max_skus: int = 16
    max_message_mib: int = 10
    max_pixels: int = 12_000_000
    keepalive_s: float = 60.0
    keepalive_timeout_s: float = 20.0
    max_connection_age_s: float = 300.0
    max_connection_age_grace_s: float = 30.0
    drain_s: float = 5.0
    grace_s: float = 20.0
    warmup: bool = True
    schema_retry_s: float = 5.0
    stall_s: float = 10.0
    log_level: str = "INFO"
    c2pa_cert: str | None = None
    c2pa_key: str | None = None
    c2pa_required: bool = False
    api_keys_file: str | None = None
    api_keys_reload_s: float = 2.0
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    reflection: bool = False
    health_port: int = -1

    def __post_init__(self) -> None:
        positive = ("max_batch", "max_queue", "max_skus", "max_message_mib", "max_pixels")
        for name in positive:
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise InvalidInputError(
                f"min_confidence must be between 0 and 1, not {self.min_confidence}"
            )
        if not -1 <= self.health_port <= 65535:
            raise InvalidInputError(
                f"health_port must be a port number, 0 (a free one) or -1 (none), not "
                f"{self.health_port}"
            )
        if self.health_port >= 1 and self.health_port in (self.port, self.metrics_port):
            raise InvalidInputError(
                f"health_port ({self.health_port}) must differ from port ({self.port}) and "
                f"metrics_port ({self.metrics_port}): it is a second, plaintext port for "
                "probes; use -1 to serve health on the API port only"
            )
        if self.max_queue < self.max_batch:
            raise InvalidInputError(
                f"max_queue ({self.max_queue}) must be at least max_batch ({self.max_batch})"
            )
        if self.precision not in PRECISIONS:
            raise InvalidInputError(
                f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}"
            )
        if self.parser_runtime not in PARSER_RUNTIMES:
            raise InvalidInputError(
                f"parser_runtime {self.parser_runtime!r} is not one of {', '.join(PARSER_RUNTIMES)}"
            )
        if not 0 <= self.model_niceness <= 19:
            raise InvalidInputError(
                f"model_niceness must be between 0 and 19 (Linux nice steps), not "
                f"{self.model_niceness}"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise InvalidInputError(f"log_level {self.log_level!r} is not one of {LOG_LEVELS}")
        for name in (
            "max_wait_ms",
            "max_queue_wait_ms",
            "drain_s",
            "grace_s",
            "person_cache_ttl_s",
            "workers",
            "garment_cache_mib",
        ):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"{name} must not be negative")
        for name in ("schema_retry_s", "stall_s"):
            if getattr(self, name) <= 0:
                raise InvalidInputError(f"{name} must be positive, not {getattr(self, name)}")
        if self.api_keys_reload_s < 0:
            raise InvalidInputError("api_keys_reload_s must not be negative")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidInputError(
                "TLS needs both TRYON_TLS_CERT (certificate chain) and TRYON_TLS_KEY "
                "(private key); set both or neither"
            )
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise InvalidInputError(
                "TRYON_TLS_CLIENT_CA (mutual TLS) needs TRYON_TLS_CERT and TRYON_TLS_KEY too"
            )

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_mib * MIB

    @property
    def garment_cache_bytes(self) -> int:
        return self.garment_cache_mib * MIB

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **flags: Any) -> ServerSettings:
        """Defaults, overridden by `TRYON_*` variables, overridden by `flags` that are not None."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None and raw != "":
                values[field.name] = _parse(field, raw)
        unknown = set(flags) - {field.name for field in fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}")
        values.update({name: value for name, value in flags.items() if value is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> ServerSettings:
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def _parse(field: dataclasses.Field, raw: str) -> Any:
    kind = str(field.type)
    name = ENV_PREFIX + field.name.upper()
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes", "on")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise InvalidInputError(f"{name}={raw!r} is not a valid {kind}") from None
    return raw
