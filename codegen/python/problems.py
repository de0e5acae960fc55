"""Errors as exceptions: a ``ProblemError`` carries the problem the server answered.

Every error the API answers is an RFC 9457 problem (``application/problem+json``) with a
stable ``code``. The generated operations return it as a ``Problem`` beside the success
model; a client made by ``videovector_client.connect`` with ``raise_problems=True`` raises
it instead, and ``ok()`` turns any operation's answer into its success model or the error:

    from videovector_client.problems import ProblemError, ok

    try:
        index = ok(index_view.sync_detailed("idx_missing", client=api))
    except ProblemError as error:
        print(error.code, error.detail, error.request_id)
"""

import json
from typing import Any, Optional

import httpx

from .models import ErrorCode, FieldError, Problem
from .types import Response

#: Statuses another attempt may not get (a 409 only with ``Retry-After``: the same
#: idempotent request still in flight).
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


class ProblemError(Exception):
    """The server answered a problem: ``status``, ``code``, ``detail``, ``errors`` (field
    errors, each with ``location``, ``pointer`` and ``message``), ``request_id`` (quote it
    when asking for help), ``retry_after`` (seconds, when the answer said) and ``problem``
    (the typed ``Problem``)."""

    def __init__(self, problem: Problem, *, status: int, retry_after: Optional[int] = None):
        self.problem = problem
        self.status = status
        self.code: ErrorCode = problem.code
        self.detail: str = problem.detail
        self.errors: list[FieldError] = list(problem.errors or [])
        self.request_id: Optional[str] = problem.request_id or None
        self.retry_after = retry_after
        super().__init__(str(self))

    @property
    def is_retryable(self) -> bool:
        """Whether the same request may succeed later (a rate limit, an overloaded server,
        the same idempotent request still in flight)."""
        return self.status in RETRYABLE_STATUSES or (self.status == 409 and self.retry_after is not None)

    def __str__(self) -> str:
        text = f"{self.status} {self.code.value}: {self.detail}"
        for field in self.errors:
            text += f"; {field.location.value} {field.pointer}: {field.message}"
        if self.request_id:
            text += f" (request {self.request_id})"
        return text

    @classmethod
    def from_answer(cls, status: int, headers: Any, content: bytes) -> "ProblemError":
        """The error for an answer whose body is a problem."""
        problem = Problem.from_dict(json.loads(content))
        if not problem.request_id and headers.get("x-request-id"):
            problem.request_id = headers["x-request-id"]
        retry_after = headers.get("retry-after")
        return cls(
            problem,
            status=status,
            retry_after=int(retry_after) if retry_after and retry_after.strip().isdigit() else None,
        )


def is_problem(response: httpx.Response) -> bool:
    return response.status_code >= 400 and response.headers.get("content-type", "").startswith(
        "application/problem+json"
    )


def raise_problem(response: httpx.Response) -> None:
    """An httpx response hook: raises the ``ProblemError`` of a problem answer."""
    if is_problem(response):
        response.read()
        raise ProblemError.from_answer(response.status_code, response.headers, response.content)


async def raise_problem_async(response: httpx.Response) -> None:
    """``raise_problem`` for an ``httpx.AsyncClient``."""
    if is_problem(response):
        await response.aread()
        raise ProblemError.from_answer(response.status_code, response.headers, response.content)


def ok(answer: Any) -> Any:
    """The success model of an operation's answer, or its ``ProblemError``.

    Takes a ``*_detailed`` answer (a ``Response``, which knows the status and the request
    id) or a plain one (the model, a ``Problem``, or ``None`` for an undeclared status)."""
    if isinstance(answer, Response):
        if isinstance(answer.parsed, Problem) or answer.status_code >= 400:
            if answer.content:
                try:
                    raise ProblemError.from_answer(int(answer.status_code), answer.headers, answer.content)
                except (ValueError, KeyError, TypeError):
                    pass
            raise RuntimeError(f"the API answered {int(answer.status_code)}: {answer.content[:200]!r}")
        return answer.parsed
    if isinstance(answer, Problem):
        raise ProblemError(answer, status=answer.status)
    if answer is None:
        raise RuntimeError("the API answered a status its spec does not declare")
    return answer
