# Copied by videovector-codegen from codegen/python/retries.py; edit it there.
"""Retries that are safe by construction, as an httpx transport.

A dropped connection, a timeout, a 429, 502, 503 or 504, or a 409 that says the same
idempotent request is still in flight is tried again after a capped exponential backoff with
jitter, or after the server's ``Retry-After`` (or ``RateLimit`` reset) when it gives one. A
``POST`` or ``PATCH`` is retried only when it carries an ``Idempotency-Key``; the transport
adds a fresh one to every operation the spec marks idempotent when the caller gave none, so
a create whose answer was lost is retried without creating twice. ``GET``, ``PUT`` and
``DELETE`` are retried as they are. The same policy as the Rust client's ``RetryPolicy``.

``videovector_client.connect`` builds clients with it; to use it with a client of your own:

    httpx.Client(transport=RetryingTransport(RetryPolicy(max_attempts=3)))
"""

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from typing import Optional

import httpx

from ._idempotent import IDEMPOTENT
from .problems import RETRYABLE_STATUSES

#: Failures of the connection or of the wait, not answers.
TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
REPEATABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    """How a client retries. The default makes up to 4 attempts; ``RetryPolicy.none()`` one."""

    #: Attempts in all, the first included (1: never retry).
    max_attempts: int = 4
    #: The backoff before the first retry, in seconds; it doubles for each retry after.
    initial_backoff: float = 0.25
    #: The longest backoff between two attempts, in seconds.
    max_backoff: float = 8.0
    #: The longest wait accepted from ``Retry-After`` or a ``RateLimit`` reset; an answer
    #: that asks for more is returned to the caller instead.
    max_server_wait: float = 60.0
    #: Whether to add an ``Idempotency-Key`` to operations that take one (while retrying).
    add_idempotency_keys: bool = True

    @classmethod
    def none(cls) -> "RetryPolicy":
        return cls(max_attempts=1)

    def backoff(self, attempt: int) -> float:
        """Full jitter: between half and all of ``initial × 2^(attempt-1)``, capped."""
        ceiling = min(self.max_backoff, self.initial_backoff * (2 ** min(attempt - 1, 20)))
        return ceiling / 2 + random.random() * ceiling / 2

    def wait_after(self, response: httpx.Response, attempt: int) -> Optional[float]:
        """Seconds to wait before another attempt after ``response``, or ``None`` to stop."""
        status = response.status_code
        retryable = status in RETRYABLE_STATUSES or (status == 409 and "retry-after" in response.headers)
        if not retryable:
            return None
        wait = server_wait(response.headers)
        if wait is None:
            return self.backoff(attempt)
        if wait > self.max_server_wait:
            return None
        return max(wait, self.backoff(attempt) / 4)


def server_wait(headers: httpx.Headers) -> Optional[float]:
    """``Retry-After`` in seconds, else the ``t`` of a ``RateLimit`` with ``r=0``."""
    retry_after = headers.get("retry-after", "").strip()
    if retry_after.isdigit():
        return float(retry_after)
    params = {}
    for part in headers.get("ratelimit", "").split(";"):
        key, _, value = part.strip().partition("=")
        if value.isdigit():
            params[key] = int(value)
    if params.get("r") == 0 and "t" in params:
        return float(params["t"])
    return None


def _prepare(request: httpx.Request, policy: RetryPolicy) -> bool:
    """Adds an idempotency key where the spec takes one; whether the request may repeat."""
    if policy.max_attempts > 1 and policy.add_idempotency_keys and "idempotency-key" not in request.headers:
        if any(method == request.method and path.match(request.url.path) for method, path in IDEMPOTENT):
            request.headers["Idempotency-Key"] = f"vvc_{uuid.uuid4().hex}"
    return request.method in REPEATABLE_METHODS or "idempotency-key" in request.headers


class RetryingTransport(httpx.BaseTransport):
    """An httpx transport that retries as its ``RetryPolicy`` says."""

    def __init__(self, policy: Optional[RetryPolicy] = None, inner: Optional[httpx.BaseTransport] = None):
        self.policy = policy or RetryPolicy()
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        repeatable = _prepare(request, self.policy)
        attempt = 1
        while True:
            last = not repeatable or attempt >= self.policy.max_attempts
            try:
                response = self.inner.handle_request(request)
            except TRANSIENT_ERRORS:
                if last:
                    raise
                wait = self.policy.backoff(attempt)
            else:
                wait = None if last else self.policy.wait_after(response, attempt)
                if wait is None:
                    return response
                response.close()
            time.sleep(wait)
            attempt += 1

    def close(self) -> None:
        self.inner.close()


class AsyncRetryingTransport(httpx.AsyncBaseTransport):
    """``RetryingTransport`` for an ``httpx.AsyncClient``."""

    def __init__(self, policy: Optional[RetryPolicy] = None, inner: Optional[httpx.AsyncBaseTransport] = None):
        self.policy = policy or RetryPolicy()
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        repeatable = _prepare(request, self.policy)
        attempt = 1
        while True:
            last = not repeatable or attempt >= self.policy.max_attempts
            try:
                response = await self.inner.handle_async_request(request)
            except TRANSIENT_ERRORS:
                if last:
                    raise
                wait = self.policy.backoff(attempt)
            else:
                wait = None if last else self.policy.wait_after(response, attempt)
                if wait is None:
                    return response
                await response.aclose()
            await asyncio.sleep(wait)
            attempt += 1

    async def aclose(self) -> None:
        await self.inner.aclose()
