"""Per-call bookkeeping around the servicer: API key, request id, status mapping, metrics,
one log line.

With a `KeyRing`, a call's API key and rate are checked before the servicer sees it (the
key's name, never the key, goes in the log line). The servicer raises domain errors; here
they become statuses (via `errors.to_rpc_error`, the one mapping), every call is counted
by method and code and timed, the in-flight gauge is kept, and the request id (the
caller's `x-request-id`, or a new one) is put in the logs' context and sent back in the
trailers. Only the services under `prefix` are wrapped: health and reflection stay open.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from tryon.server.auth import KeyRing
from tryon.server.errors import InvalidFieldError, to_rpc_error
from tryon.server.logs import REQUEST_ID
from tryon.server.metrics import ServerMetrics

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Wraps the methods of the services whose full names start with `prefix`; with
    `keys`, each call needs one of their valid keys."""

    def __init__(
        self, metrics: ServerMetrics, prefix: str = "/tryon.", keys: KeyRing | None = None
    ) -> None:
        self.metrics = metrics
        self.prefix = prefix
        self.keys = keys

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(self.prefix):
            return handler
        method = details.method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(self, method: str, behaviour: Callable) -> Callable:
        async def call(request, context: grpc.aio.ServicerContext):  # noqa: ANN001, ANN202
            call_state = _CallState(self.metrics, method, context)
            try:
                call_state.authenticate(self.keys)
                _check_decoded(request)
                response = await behaviour(request, context)
            except Exception as error:
                del request  # the abort's traceback keeps this frame (see `_CallState.fail`)
                await call_state.fail(error)
            except asyncio.CancelledError:
                call_state.cancelled()
                raise
            else:
                call_state.succeed()
                return response
            finally:
                call_state.end()

        return call

    def _stream(self, method: str, behaviour: Callable) -> Callable:
        async def call(request, context: grpc.aio.ServicerContext) -> AsyncIterator:  # noqa: ANN001
            call_state = _CallState(self.metrics, method, context)
            response = None
            try:
                call_state.authenticate(self.keys)
                _check_decoded(request)
                async for response in behaviour(request, context):
                    yield response
            except Exception as error:
                # The abort's traceback keeps this frame (see `_CallState.fail`).
                del request, response
                await call_state.fail(error)
            except asyncio.CancelledError:
                call_state.cancelled()
                raise
            else:
                call_state.succeed()
            finally:
                call_state.end()

        return call


@dataclass(frozen=True)
class _Undecodable:
    """Request bytes that are not the method's message (`reason`: the parser's words)."""

    reason: str


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`deserializer`, returning `_Undecodable` instead of raising: gRPC answers a
    deserializer's exception with UNKNOWN, the caller's mistake is INVALID_ARGUMENT."""
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as error:
            return _Undecodable(str(error))

    return deserialize


def _check_decoded(request: object) -> None:
    if isinstance(request, _Undecodable):
        raise InvalidFieldError(
            "request",
            f"the request is not a valid message of this method ({request.reason}); "
            "build it with the stubs generated from proto/",
        )


def _drop_tracebacks(error: BaseException) -> None:
    """Clear the traceback of `error` and of every exception it chains (cause or context)."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending += [current.__cause__, current.__context__]


class _CallState:
    """One call's request id, caller (its key's name), start time and final code."""

    def __init__(
        self, metrics: ServerMetrics, method: str, context: grpc.aio.ServicerContext
    ) -> None:
        self.metrics = metrics
        self.method = method
        self.context = context
        self.start = time.perf_counter()
        self.code = grpc.StatusCode.UNKNOWN
        self.caller: str | None = None
        given = dict(context.invocation_metadata() or ()).get(REQUEST_ID_HEADER)
        self.request_id = (
            given
            if isinstance(given, str) and _VALID_REQUEST_ID.fullmatch(given)
            else uuid.uuid4().hex
        )
        # Each call runs in its own task, so its context holds this id until the call ends.
        REQUEST_ID.set(self.request_id)
        metrics.in_flight.inc()

    def authenticate(self, keys: KeyRing | None) -> None:
        """Check the call's API key (nothing to check without `keys`)."""
        if keys is not None:
            self.caller = keys.authenticate(self.context.invocation_metadata()).name

    def succeed(self) -> None:
        self.code = grpc.StatusCode.OK
        self.context.set_trailing_metadata(((REQUEST_ID_HEADER, self.request_id),))

    async def fail(self, error: Exception) -> None:
        rpc = to_rpc_error(error)
        self.code = rpc.code
        if rpc.code == grpc.StatusCode.INTERNAL:
            log.error("unexpected error", exc_info=error, extra={"fields": {"method": self.method}})
        # The abort's exception chains this one, and gRPC holds that in a reference cycle
        # until the next full garbage collection; through their tracebacks the chain held
        # the call's frames, the decoded photo and its analysis (~7 MB a refused photo:
        # 1.2-1.3 GiB resident under a stream of them, against 0.9). The caller drops its
        # request for the same reason: the abort's own traceback holds its frame.
        _drop_tracebacks(error)
        await self.context.abort(
            rpc.code, rpc.message, ((REQUEST_ID_HEADER, self.request_id), *rpc.trailing_metadata)
        )

    def cancelled(self) -> None:
        remaining = self.context.time_remaining()
        expired = remaining is not None and remaining <= 0
        self.code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED

    def end(self) -> None:
        seconds = time.perf_counter() - self.start
        self.metrics.in_flight.dec()
        self.metrics.requests.labels(self.method, self.code.name).inc()
        self.metrics.latency.labels(self.method).observe(seconds)
        if self.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            self.metrics.refusal_time.observe(seconds)
        log.info(
            "call",
            extra={
                "fields": {  # the id explicitly too: handlers may format in another context
                    "request_id": self.request_id,
                    "method": self.method,
                    "code": self.code.name,
                    "ms": round(seconds * 1e3, 1),
                    **({"caller": self.caller} if self.caller else {}),
                }
            },
        )
