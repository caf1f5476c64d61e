"""The REST API over HTTP (aiohttp): bounded bodies, admission control, timeouts and two thread pools.

- A `Content-Length` above the limit is answered 413 before any of the body is read.
- A request is admitted only if its bytes fit the in-flight budget (429 with a JSON error at once
  otherwise), and holds them until its work ends, even after a 504.
- The whole request, body included, has the request timeout: a body still arriving then is answered 408
  and its connection closed; work that has not started by then is skipped.
- `Content-Encoding: gzip` bodies are inflated up to the same limit, as TF Serving does.
- Requests above `large_request_bytes` run in a pool of their own, so large requests cannot take every
  thread while small ones wait (and the model runs of requests with many rows go in row chunks behind
  small ones: `serving/chunking.py`, which stops a timed-out request between chunks).
"""

import asyncio
import concurrent.futures
import dataclasses
import logging
import time
import typing
import zlib

from aiohttp import web

from serving import admission
from serving import deadlines
from serving import json_tensor
from serving import rest_api
from serving import status

logger = logging.getLogger("serving")

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type"}


@dataclasses.dataclass(frozen=True)
class RestSettings:
    """How the REST front end treats requests.

    Attributes:
        timeout_seconds: Time for a whole request: receiving its body and running it.
        max_request_bytes: Largest body, before and after gzip inflation.
        large_request_bytes: Bodies above this run in the pool for large requests.
        enable_cors: Answer with CORS headers and accept OPTIONS preflights (--rest_api_enable_cors_support).
    """
    timeout_seconds: float = 30.0
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    large_request_bytes: int = 1 << 20
    enable_cors: bool = False


class RequestPools:
    """The threads requests run on: one pool for small requests, one for large ones.

    Args:
        num_threads: Threads for small requests.
        large_request_threads: Threads for large requests.
        large_request_bytes: Size from which a request is large.
    """

    def __init__(self, num_threads: int, large_request_threads: int, large_request_bytes: int):
        self._small = concurrent.futures.ThreadPoolExecutor(num_threads, thread_name_prefix="request")
        self._large = concurrent.futures.ThreadPoolExecutor(large_request_threads, thread_name_prefix="large-request")
        self._large_request_bytes = large_request_bytes

    def pool_for(self, size: int) -> concurrent.futures.Executor:
        return self._large if size > self._large_request_bytes else self._small

    def shutdown(self) -> None:
        for pool in (self._small, self._large):
            pool.shutdown(wait=False, cancel_futures=True)


class _Refusal(Exception):
    """A request answered before its work started (the body may be unread, so the connection closes)."""

    def __init__(self, http_status: int, message: str):
        super().__init__(message)
        self.http_status = http_status
        self.message = message


def create_app(api: rest_api.RestApi, pools: RequestPools, budget: admission.ByteBudget,
               settings: RestSettings) -> web.Application:
    """An aiohttp application answering every path through `api.process`."""
    cors = CORS_HEADERS if settings.enable_cors else {}

    async def handle(request: web.Request) -> web.Response:
        if settings.enable_cors and request.method == "OPTIONS":
            return web.Response(status=200, headers=cors)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.timeout_seconds
        reservation = admission.Reservation(budget)
        try:
            async with asyncio.timeout_at(deadline):
                body = await _read_body(request, settings.max_request_bytes, reservation)
        except (_Refusal, TimeoutError) as refusal:
            reservation.release()
            if isinstance(refusal, TimeoutError):
                refusal = _Refusal(408, f"Request body not received within {settings.timeout_seconds:g} s "
                                        "(--rest_api_timeout_in_ms)")
            response = _json_response(refusal.http_status, {"error": refusal.message}, cors)
            response.force_close()
            return response
        gzipped = "gzip" in request.headers.get("Content-Encoding", "").lower()
        path = request.raw_path.split("?", 1)[0]
        work = loop.run_in_executor(pools.pool_for(len(body)), _run, api, request.method, path, body, gzipped,
                                    reservation, deadline, settings.max_request_bytes)
        try:
            # shield: on timeout the work is not cancelled (it would never release its reservation); if it
            # has not started by then, it skips itself.
            http_status, payload = await asyncio.wait_for(asyncio.shield(work), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            return _json_response(504, {"error": f"Request timed out after {settings.timeout_seconds:g} s"}, cors)
        return web.Response(status=http_status, body=payload, content_type="application/json", headers=cors)

    app = web.Application(client_max_size=settings.max_request_bytes)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def runner_options(settings: RestSettings) -> dict:
    """aiohttp connection settings: no lingering read of unread bodies (a refused request's connection just
    closes), request bodies left compressed (inflated under the size limit by `_run`), idle connections
    closed after the request timeout."""
    return {"lingering_time": 0, "auto_decompress": False, "keepalive_timeout": max(1.0, settings.timeout_seconds),
            "access_log": None}


async def _read_body(request: web.Request, max_bytes: int, reservation: admission.Reservation) -> bytes:
    """The request body, refused with 413 (too large) or 429 (over the in-flight budget) as soon as known."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise _Refusal(413, f"Request body of {declared} bytes is larger than the limit of {max_bytes} bytes "
                            "(--max_request_bytes)")
    try:
        reservation.take(declared or 0)
    except status.ServingError as error:
        raise _Refusal(error.http_status, error.message) from None
    if declared is not None:
        body = bytearray(declared)  # filled in place: no copies as the body grows
        view, received = memoryview(body), 0
        while received < declared:
            chunk = await request.content.readany()
            if not chunk:
                raise _Refusal(400, f"Request body ended after {received} of {declared} bytes")
            view[received:received + len(chunk)] = chunk[:declared - received]
            received += len(chunk)
        return bytes(body) if declared < 4096 else body
    body = bytearray()
    while chunk := await request.content.readany():
        if len(body) + len(chunk) > max_bytes:
            raise _Refusal(413, f"Request body larger than the limit of {max_bytes} bytes (--max_request_bytes)")
        try:
            reservation.take(len(chunk))
        except status.ServingError as error:
            raise _Refusal(error.http_status, error.message) from None
        body += chunk
    return body


def _inflate(body: bytes, max_bytes: int) -> bytes:
    """A gzip body inflated (empty if it is not valid gzip, which then reads as an empty document, as in TF
    Serving); refused with 413 beyond `max_bytes`."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(body, max_bytes + 1)
    except zlib.error:
        return b""
    if len(inflated) > max_bytes:
        raise status.ServingError("RESOURCE_EXHAUSTED", f"Inflated request body larger than the limit of "
                                  f"{max_bytes} bytes (--max_request_bytes)", http_status=413)
    return inflated if inflater.eof else b""


def _run(api: rest_api.RestApi, method: str, path: str, body: bytes, gzipped: bool,
         reservation: admission.Reservation, deadline: float, max_bytes: int) -> tuple[int, bytes]:
    """One request on a pool thread; its reservation is released when it ends, however it ends."""
    try:
        if time.monotonic() > deadline:
            return 504, b""  # answered 504 already: do not spend a thread on it
        if gzipped:
            try:
                body = _inflate(body, max_bytes)
                reservation.take(len(body))
            except status.ServingError as error:
                return error.http_status, json_tensor.dumps({"error": error.message})
        with deadlines.scope(deadline):  # a request run in row chunks stops between chunks once it passes
            return api.process(method, path, body, reserve=reservation.cover_memory)
    finally:
        reservation.release()


def _json_response(http_status: int, document: typing.Any, headers: dict) -> web.Response:
    return web.Response(status=http_status, body=json_tensor.dumps(document), content_type="application/json",
                        headers=headers)
