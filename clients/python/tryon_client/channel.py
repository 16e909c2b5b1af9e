"""How a client reaches the service: TLS, the API key, load balancing and retries.

Two retry mechanisms, each for what it can do:

- **UNAVAILABLE** (a replica warming up or shutting down, a connection lost) is retried by
  gRPC itself, from the `retryPolicy` of the service config this module builds: a new
  attempt (on another replica, with round robin) after an exponential backoff with
  jitter, transparently, while the call's deadline allows. `retryThrottling` stops
  retrying while most calls to a server fail, so an outage is not multiplied.
- **RESOURCE_EXHAUSTED** (the server's queue is full or the API key's rate is used up)
  comes with a google.rpc.RetryInfo delay that gRPC's retry cannot read. The clients retry
  it themselves (`RetryPolicy.delay_before_retry`): after the server's delay (plus up to
  20% jitter), only when the delay is at most `max_retry_delay_s` and fits in what is left
  of the deadline. Without RetryInfo (a message over gRPC's size limit) it is not retried.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import grpc

from tryon_client.errors import ServiceError
from tryon_client.stubs.tryon.v1 import experiments_pb2
from tryon_client.stubs.tryon.v1 import tryon_pb2 as tryon_v1_pb2
from tryon_client.stubs.tryon.v2 import tryon_pb2

RESPONSE_LIMIT = 64 * 1024 * 1024  # a PNG of a large photo is bigger than any request
# gRPC keeps a call's request for retries only up to this size (256 KiB by default, less
# than a photo); the server takes requests of up to 10 MiB.
RETRY_BUFFER = 16 * 1024 * 1024
LOAD_BALANCING = ("round_robin", "pick_first")
SERVICES = [
    service.full_name
    for module in (tryon_pb2, tryon_v1_pb2, experiments_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
]


@dataclass(frozen=True)
class TlsOptions:
    """TLS for the channel: `root_certificates` (PEM) to trust, None for the system's CAs;
    `certificate_chain` and `private_key` (PEM): the client certificate a mutual-TLS
    server asks for."""

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError(
                "a client certificate needs its private key: give both certificate_chain "
                "and private_key (mutual TLS), or neither"
            )

    @classmethod
    def from_files(
        cls,
        ca: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
    ) -> TlsOptions:
        """TLS options from PEM files: the CA to trust (None: the system's CAs), and for
        mutual TLS the client certificate and its key."""

        def read(path: str | Path | None) -> bytes | None:
            return None if path is None else Path(path).read_bytes()

        return cls(read(ca), read(cert), read(key))

    def credentials(self) -> grpc.ChannelCredentials:
        """The channel credentials for these options."""
        return grpc.ssl_channel_credentials(
            self.root_certificates, self.private_key, self.certificate_chain
        )


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long calls are retried (see the module's docstring for which
    failures each mechanism retries).

    Attributes:
        max_attempts: tries of one call, the first included; 1 turns retries off. gRPC
            caps its own UNAVAILABLE retries at 5 tries.
        initial_backoff_s, max_backoff_s, backoff_multiplier: gRPC's exponential backoff
            between UNAVAILABLE tries (each wait is random up to the current bound).
        max_retry_delay_s: the longest RetryInfo delay waited for on RESOURCE_EXHAUSTED; a
            longer one is raised at once (its `retry_after_s` says how long to wait).
    """

    max_attempts: int = 4
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 1.0
    backoff_multiplier: float = 2.0
    max_retry_delay_s: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(
                f"max_attempts must be at least 1 (no retries), got {self.max_attempts}"
            )

    def service_config(self, load_balancing: str = "round_robin") -> dict:
        """The gRPC service config: the load-balancing policy, and for every method of the
        try-on and experiment services the UNAVAILABLE retry policy (every method is safe
        to retry: try-ons change nothing, Assign and RecordEvents are idempotent)."""
        config: dict = {"loadBalancingConfig": [{load_balancing: {}}]}
        if self.max_attempts > 1:
            config["methodConfig"] = [
                {
                    "name": [{"service": service} for service in SERVICES],
                    "retryPolicy": {
                        "maxAttempts": self.max_attempts,
                        "initialBackoff": f"{self.initial_backoff_s:.3f}s",
                        "maxBackoff": f"{self.max_backoff_s:.3f}s",
                        "backoffMultiplier": self.backoff_multiplier,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
            config["retryThrottling"] = {"maxTokens": 10, "tokenRatio": 0.1}
        return config

    def delay_before_retry(
        self, error: ServiceError, attempt: int, remaining_s: float
    ) -> float | None:
        """Seconds to wait before trying a call again after `error` ended try number
        `attempt` with `remaining_s` of its deadline left, or None: do not retry."""
        if (
            error.code != grpc.StatusCode.RESOURCE_EXHAUSTED
            or error.retry_after_s is None
            or attempt >= self.max_attempts
            or error.retry_after_s > self.max_retry_delay_s
        ):
            return None
        # Jitter after the server's delay, so that clients refused together do not all
        # come back at the same instant.
        delay = error.retry_after_s * random.uniform(1.0, 1.2)
        return delay if delay < remaining_s else None


def channel_options(retry: RetryPolicy, load_balancing: str) -> list[tuple[str, str | int]]:
    """Channel arguments: the service config (load balancing and retries), the response
    size limit and the retry buffer."""
    if load_balancing not in LOAD_BALANCING:
        raise ValueError(f"unknown load_balancing {load_balancing!r}, supported: {LOAD_BALANCING}")
    return [
        ("grpc.service_config", json.dumps(retry.service_config(load_balancing))),
        # A DNS TXT record must not replace this config (nor turn retries off).
        ("grpc.service_config_disable_resolution", 1),
        ("grpc.enable_retries", 1),
        ("grpc.per_rpc_retry_buffer_size", RETRY_BUFFER),
        ("grpc.max_receive_message_length", RESPONSE_LIMIT),
    ]


def open_channel(
    transport: ModuleType, target: str, tls: TlsOptions | None, options: list
) -> grpc.Channel | grpc.aio.Channel:
    """A channel to `target` from `transport` (`grpc` or `grpc.aio`): TLS with `tls`,
    plaintext without."""
    if tls is None:
        return transport.insecure_channel(target, options=options)
    return transport.secure_channel(target, tls.credentials(), options=options)


def key_metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    """The API key as call metadata, `authorization: Bearer <key>` (none without a key)."""
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


def check_api_key(api_key: str | None) -> str | None:
    """`api_key` without surrounding whitespace (a key read from a file ends in a newline);
    ValueError, not naming the key, when it cannot be a key."""
    if api_key is None:
        return None
    key = api_key.strip()
    if not key or not key.isascii() or not key.isprintable() or " " in key:
        raise ValueError(
            "api_key is not a key: give the one `tryon keys add` printed (printable ASCII, "
            "no spaces), or None on a server without keys"
        )
    return key


@dataclass
class Connection:
    """What the sync and async clients share: where and how they connect.

    Attributes:
        target: `host:port`, or `dns:///name:port` to balance over every address of the
            name (the headless Service in Kubernetes).
        timeout_s: each call's deadline, retries included.
        request_id: sent as `x-request-id` with every call, to find them in the server's
            log; None: the server makes one per call.
        api_key: sent as `authorization: Bearer <key>` with every call; never shown in
            reprs or errors.
        tls: TLS options; None: plaintext.
        retry: the retry policy.
        load_balancing: "round_robin" (every call to the next address) or "pick_first".
    """

    target: str
    timeout_s: float = 60.0
    request_id: str | None = None
    api_key: str | None = field(default=None, repr=False)
    tls: TlsOptions | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    load_balancing: str = "round_robin"

    def __post_init__(self) -> None:
        self.api_key = check_api_key(self.api_key)
        self._options = channel_options(self.retry, self.load_balancing)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        request_id = (("x-request-id", self.request_id),) if self.request_id else ()
        return (*request_id, *key_metadata(self.api_key))
