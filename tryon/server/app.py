"""The try-on server object: start, warm up, drain and stop; and ways to run it.

Start binds the port at once and reports NOT_SERVING in health until the database schema
is at this code's revision (checked again every `schema_retry_s`, with a log line saying
what to run), the weights are loaded and one warm-up batch has run. The `liveness` health
name answers from a watchdog of the event loop instead (tryon.server.watchdog), so it
stays SERVING through warm-up and drain. Stop (SIGTERM) reports NOT_SERVING, keeps serving
for `drain_s` while load balancers take the replica out, then `stop(grace_s)` refuses new
calls and lets running ones finish; the batch queue runs until the last accepted try-on
is done.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy.exc import SQLAlchemyError
from tryon_client.stubs.tryon.v1 import (
    experiments_pb2,
    experiments_pb2_grpc,
    tryon_pb2,
    tryon_pb2_grpc,
)
from tryon_client.stubs.tryon.v2 import tryon_pb2 as tryon_v2_pb2
from tryon_client.stubs.tryon.v2 import tryon_pb2_grpc as tryon_v2_pb2_grpc

from catalog.database import (
    check_schema,
    create_catalog_engine,
    make_sessionmaker,
    resolve_database_url,
)
from catalog.errors import SchemaOutOfDateError
from tryon.errors import InvalidInputError
from tryon.pipeline import TryOnPipeline, weights_folder
from tryon.server.auth import KeyRing
from tryon.server.caches import BoundedCache
from tryon.server.engine import TryOnEngine
from tryon.server.experiments import ExperimentServicer, TryOnLedger
from tryon.server.garments import GarmentStore
from tryon.server.interceptor import CallInterceptor
from tryon.server.loop_thread import LoopThread
from tryon.server.memory import limit_malloc_arenas
from tryon.server.metrics import ServerMetrics
from tryon.server.servicer import TryOnServicer, TryOnServicerV1
from tryon.server.settings import ServerSettings
from tryon.server.watchdog import HealthServicer, LoopWatchdog

log = logging.getLogger(__name__)

SERVICE_NAME = tryon_pb2.DESCRIPTOR.services_by_name["TryOnService"].full_name
SERVICE_NAME_V2 = tryon_v2_pb2.DESCRIPTOR.services_by_name["TryOnService"].full_name
EXPERIMENT_SERVICE_NAME = experiments_pb2.DESCRIPTOR.services_by_name["ExperimentService"].full_name
# Room in a message for the fields around the photo, which alone may take max_message_mib.
MESSAGE_OVERHEAD = 64 * 1024


class TryOnServer:
    """One gRPC server: TryOnService (v2 and v1), ExperimentService, health, reflection if
    enabled, and `/metrics` on its own port; API keys and TLS as the settings say.

    Args:
        settings: everything configurable.
        pipeline: an already built pipeline (tests); default: load `settings.weights`.
    """

    def __init__(self, settings: ServerSettings, pipeline: TryOnPipeline | None = None) -> None:
        if pipeline is None:
            weights_folder(settings.weights)  # a missing folder fails now, with the names
        self.settings = settings
        self.metrics = ServerMetrics(settings.max_batch)
        self.database = create_catalog_engine(resolve_database_url(settings.database_url))
        garment_cache = BoundedCache(
            settings.garment_cache_entries,
            weigh=lambda garment: garment.nbytes,
            max_weight=settings.garment_cache_bytes,
            on_lookup=self.metrics.cache_observer("garment"),
            on_change=self.metrics.cache_size_observer("garment"),
        )
        self.engine = TryOnEngine(
            settings,
            GarmentStore(make_sessionmaker(self.database), garment_cache),
            self.metrics,
            pipeline,
        )
        self.port: int | None = None
        self.health_port: int | None = None
        self.metrics_port: int | None = None
        self.started = time.perf_counter()
        self.seconds_to_ready: float | None = None
        self._server: grpc.aio.Server | None = None
        self._health_server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None
        self.watchdog = LoopWatchdog(settings.stall_s, on_lag=self.metrics.loop_lag.set)
        self._warming: asyncio.Task | None = None
        self.ledger: TryOnLedger | None = None

    async def start(self) -> int:
        """Listen (NOT_SERVING), start loading the models in the background; return the port."""
        s = self.settings
        self.started = time.perf_counter()
        keys = None
        if s.api_keys_file is not None:
            keys = KeyRing(s.api_keys_file, s.api_keys_reload_s)  # a bad file fails here
            log.info("API keys required", extra={"fields": {"keys": len(keys.keys)}})
        else:
            log.warning(
                "no API keys file: the service is open to every caller (set "
                "TRYON_API_KEYS_FILE, see `tryon keys add`)"
            )
        server = grpc.aio.server(
            interceptors=[CallInterceptor(self.metrics, keys=keys)], options=self._options()
        )
        sessions = make_sessionmaker(self.database)
        self.ledger = TryOnLedger(sessions)
        servicer = TryOnServicer(self.engine, s.max_skus, s.max_message_bytes, self.ledger)
        tryon_v2_pb2_grpc.add_TryOnServiceServicer_to_server(servicer, server)
        tryon_pb2_grpc.add_TryOnServiceServicer_to_server(TryOnServicerV1(servicer), server)
        experiments_pb2_grpc.add_ExperimentServiceServicer_to_server(
            ExperimentServicer(sessions), server
        )
        self._health = HealthServicer(self.watchdog)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        if s.reflection:
            names = (SERVICE_NAME_V2, SERVICE_NAME, EXPERIMENT_SERVICE_NAME, health.SERVICE_NAME)
            reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server)
        credentials = _server_credentials(s)
        if credentials is None:
            self.port = server.add_insecure_port(f"{s.host}:{s.port}")
        else:
            self.port = server.add_secure_port(f"{s.host}:{s.port}", credentials)
        log.info(
            "transport",
            extra={
                "fields": {
                    "tls": "off"
                    if credentials is None
                    else ("mutual" if s.tls_client_ca else "server"),
                    "reflection": s.reflection,
                }
            },
        )
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await server.start()
        self._server = server
        if s.health_port >= 0:
            await self._start_health_port()
        self.watchdog.start()
        if s.metrics_port >= 0:
            self.metrics_port = self.metrics.serve(_http_host(s.host), s.metrics_port)
        self._warming = asyncio.create_task(self._warm_up(), name="warm-up")
        log.info(
            "listening",
            extra={
                "fields": {
                    "port": self.port,
                    "health_port": self.health_port,
                    "metrics_port": self.metrics_port,
                }
            },
        )
        return self.port

    async def _start_health_port(self) -> None:
        """Serve the health service alone, in plaintext, on `health_port`: the same
        servicer as the API port's, so both report the same statuses."""
        # Without SO_REUSEPORT a port another process (or the API server) holds fails the
        # start instead of splitting the probes' connections between two servers.
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self.health_port = server.add_insecure_port(
            f"{self.settings.host}:{self.settings.health_port}"
        )
        await server.start()
        self._health_server = server

    async def wait_until_ready(self) -> float:
        """Wait for SERVING; return the seconds since start. Raises what loading raised."""
        await asyncio.shield(self._warming)
        return self.seconds_to_ready

    async def stop(self, drain_s: float | None = None, grace_s: float | None = None) -> None:
        """NOT_SERVING, drain, stop accepting, finish accepted calls, release everything."""
        s = self.settings
        drain_s = s.drain_s if drain_s is None else drain_s
        grace_s = s.grace_s if grace_s is None else grace_s
        log.info("stopping", extra={"fields": {"drain_s": drain_s, "grace_s": grace_s}})
        if self._health is not None:
            # Not enter_graceful_shutdown(): it would turn `liveness` NOT_SERVING too.
            await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()
        elif drain_s > 0:
            await asyncio.sleep(drain_s)
        if self._server is not None:
            await self._server.stop(grace_s)
        if self._health_server is not None:
            await self._health_server.stop(0)
        await self.engine.close()
        if self.ledger is not None:
            await self.ledger.close()
        await self.watchdog.stop()
        self.metrics.close()
        self.database.dispose()
        log.info("stopped")

    async def _warm_up(self) -> None:
        await self._wait_for_schema()
        try:
            await self.engine.start()
        except Exception:
            log.exception("the models could not be loaded; the server stays NOT_SERVING")
            raise
        self.seconds_to_ready = time.perf_counter() - self.started
        self.metrics.seconds_to_ready.set(self.seconds_to_ready)
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info("serving", extra={"fields": {"seconds": round(self.seconds_to_ready, 2)}})

    async def _wait_for_schema(self) -> None:
        """Return once the database schema is at this code's revision; until then, check
        every `schema_retry_s` and log each new reason once (health stays NOT_SERVING)."""
        reported = None
        while True:
            try:
                await asyncio.to_thread(check_schema, self.database)
                break
            except SchemaOutOfDateError as error:
                reason = f"{error}; with Kubernetes, the migration Job runs `tryon db upgrade`"
            except SQLAlchemyError as error:
                cause = getattr(error, "orig", None) or error  # the driver's own words
                reason = f"the database cannot be reached: {type(cause).__name__}: {cause}"
            if reason != reported:
                log.warning(
                    "database not ready; NOT_SERVING until it is",
                    extra={"fields": {"reason": reason, "retry_s": self.settings.schema_retry_s}},
                )
                reported = reason
            await asyncio.sleep(self.settings.schema_retry_s)
        self.metrics.schema_ready.set(1)
        if reported is not None:
            log.info("database schema ready")

    async def _set_health(self, status: int) -> None:
        for service in ("", SERVICE_NAME, SERVICE_NAME_V2):
            await self._health.set(service, status)

    def _options(self) -> list[tuple[str, int]]:
        s = self.settings
        message = s.max_message_bytes + MESSAGE_OVERHEAD
        return [
            ("grpc.max_receive_message_length", message),
            ("grpc.max_send_message_length", message),
            ("grpc.keepalive_time_ms", int(s.keepalive_s * 1e3)),
            ("grpc.keepalive_timeout_ms", int(s.keepalive_timeout_s * 1e3)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
            ("grpc.max_connection_age_ms", int(s.max_connection_age_s * 1e3)),
            ("grpc.max_connection_age_grace_ms", int(s.max_connection_age_grace_s * 1e3)),
        ]


def _server_credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    """TLS credentials from the settings' PEM files (mutual TLS with a client CA); None
    for plaintext."""
    if settings.tls_cert is None:
        return None

    def pem(path: str, what: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as error:
            raise InvalidInputError(f"cannot read the {what} {path}: {error.strerror}") from None

    pair = (pem(settings.tls_key, "TLS private key"), pem(settings.tls_cert, "TLS certificate"))
    client_ca = settings.tls_client_ca
    return grpc.ssl_server_credentials(
        [pair],
        root_certificates=None if client_ca is None else pem(client_ca, "TLS client CA"),
        require_client_auth=client_ca is not None,
    )


def _http_host(host: str) -> str:
    """The metrics server's address for the gRPC host ("[::]" -> "::")."""
    return host.strip("[]")


async def serve(settings: ServerSettings) -> None:
    """Run a server until SIGTERM or SIGINT, then drain and stop it (`tryon serve`)."""
    limit_malloc_arenas()
    server = TryOnServer(settings)
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    warming = asyncio.ensure_future(server.wait_until_ready())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({warming, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if warming.done() and warming.exception() is not None:
        stopping.cancel()
        await server.stop(drain_s=0)
        raise warming.exception()
    await stopping
    await server.stop()


class ServerThread:
    """A `TryOnServer` on its own event loop in a background thread (demo, tests, bench).

        with ServerThread(settings, pipeline) as running:
            client = TryOnClient(running.target)

    Entering waits until the server is SERVING (or raises why it could not start) unless
    `wait_until_ready` is False.
    """

    def __init__(
        self,
        settings: ServerSettings,
        pipeline: TryOnPipeline | None = None,
        ready_timeout_s: float = 300.0,
        *,
        wait_until_ready: bool = True,
    ) -> None:
        self.server = TryOnServer(settings, pipeline)
        self.ready_timeout_s = ready_timeout_s
        self.wait_until_ready = wait_until_ready
        self._loop_thread = LoopThread("tryon-server")
        self.loop = self._loop_thread.loop

    @property
    def target(self) -> str:
        """Where clients connect: `localhost:<port>`."""
        return f"localhost:{self.server.port}"

    def run(self, coroutine) -> object:  # noqa: ANN001
        """Run `coroutine` on the server's loop and return its result."""
        return self._loop_thread.run(coroutine)

    def __enter__(self) -> ServerThread:
        self._loop_thread.start()
        try:
            self.run(self.server.start())
            if self.wait_until_ready:
                self.run(asyncio.wait_for(self.server.wait_until_ready(), self.ready_timeout_s))
        except BaseException:
            self.close(drain_s=0, grace_s=0)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(drain_s=0)

    def close(self, drain_s: float | None = None, grace_s: float | None = None) -> None:
        """Stop the server (drain and grace from settings unless given) and the loop."""
        if self._loop_thread.running:
            self.run(self.server.stop(drain_s, grace_s))
        self._loop_thread.close()
