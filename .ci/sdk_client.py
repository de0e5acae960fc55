"""The Python SDK's hand-written layer against a live server: clients that refuse a
misconfiguration, lists walked page by page, problems raised as ProblemError, readable
models, enum values a newer server may send, and retries through a transport that drops
connections and answers 503 on purpose (faults injected here, in the test, never in the
server): one resource created however many attempts.

    VIDEOVECTOR_URL=... VIDEOVECTOR_EMAIL=... VIDEOVECTOR_PASSWORD=... python sdk_client.py
"""

import json
import os
import sys

import httpx

from videovector_client.api.auth import token_create
from videovector_client.api.indexes import index_create, index_list, index_view
from videovector_client.api.search import search_query
from videovector_client.connect import api_key_client, bearer_client, public_client
from videovector_client.models import CrossSearchRequest, ErrorCode, IndexCreate, Problem, TokenRequest
from videovector_client.pages import items
from videovector_client.problems import ProblemError, ok, raise_problem
from videovector_client.retries import RetryingTransport, RetryPolicy

SERVER = os.environ["VIDEOVECTOR_URL"]
QUICK = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, max_server_wait=5)


def refuses(make, why):
    try:
        make()
    except ValueError as error:
        assert why in str(error), error
    else:
        raise AssertionError(f"accepted: {why}")


# Clients that cannot be misconfigured.
refuses(lambda: public_client(SERVER + "/api/v2"), "root URL")
refuses(lambda: public_client("127.0.0.1:8080"), "http://")
refuses(lambda: api_key_client(SERVER, "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"), "bearer_client")
refuses(lambda: bearer_client(SERVER, "sk_live_abc"), "api_key_client")
refuses(lambda: bearer_client(SERVER, "Bearer eyJ.a.b"), "without 'Bearer '")

login = TokenRequest(email=os.environ["VIDEOVECTOR_EMAIL"], password=os.environ["VIDEOVECTOR_PASSWORD"])
jwt = ok(token_create.sync_detailed(client=public_client(SERVER), body=login)).access_token
api = bearer_client(SERVER, jwt, raise_problems=True, retries=QUICK)

# Lists as iterators, more than one page.
names = [f"sdk-page-{i}" for i in range(5)]
for name in names:
    index_create.sync(client=api, body=IndexCreate(name=name))
listed = [index.name for index in items(index_list, client=api, limit=2) if index.name.startswith("sdk-page-")]
assert listed == names, listed

# Problems raised, readable, with their request id.
try:
    index_view.sync("idx_missing", client=api)
    raise AssertionError("a missing index was found")
except ProblemError as error:
    assert error.status == 404 and error.code == ErrorCode.NOT_FOUND, error
    assert error.request_id and error.request_id.startswith("req_"), error
    assert str(error).startswith("404 not_found: ") and str(error).endswith(f"(request {error.request_id})")
    assert not error.is_retryable
    assert "Unset object" not in repr(error.problem), repr(error.problem)
try:
    index_list.sync(client=api, limit=500)
    raise AssertionError("limit=500 was taken")
except ProblemError as error:
    assert error.code == ErrorCode.VALIDATION_FAILED and error.errors[0].pointer == "/limit", error

# Without raise_problems, ok() raises the same error from any answer.
quiet = bearer_client(SERVER, jwt)
answer = index_view.sync("idx_missing", client=quiet)
assert isinstance(answer, Problem) and "UNSET" in repr(answer), repr(answer)
try:
    ok(index_view.sync_detailed("idx_missing", client=quiet))
    raise AssertionError("ok() passed a problem")
except ProblemError as error:
    assert error.code == ErrorCode.NOT_FOUND and error.request_id

# A code a newer server sends is read, not a failure.
newer = Problem.from_dict({"type": "urn:videovector:problem:x", "title": "X", "status": 418, "code": "brand_new_code", "detail": "d"})
assert newer.code == "brand_new_code" and newer.code.name == "UNKNOWN", newer.code


class Faults(httpx.BaseTransport):
    """Forwards each request to the server, except the scripted ones: `drop-after` lets the
    server act and then loses the answer; `503` answers without forwarding."""

    def __init__(self, script):
        self.script = list(script)
        self.inner = httpx.HTTPTransport()
        self.seen = []

    def handle_request(self, request):
        self.seen.append((request.method, request.url.path, request.headers.get("idempotency-key")))
        fault = self.script.pop(0) if self.script else "pass"
        if fault == "503":
            # What the server itself answers when a dependency is down.
            problem = {"type": "urn:videovector:problem:unavailable", "title": "Service Unavailable",
                       "status": 503, "code": "unavailable", "detail": "injected"}
            return httpx.Response(
                503,
                headers={"retry-after": "0", "content-type": "application/problem+json"},
                content=json.dumps(problem).encode(),
            )
        response = self.inner.handle_request(request)
        if fault == "drop-after":
            response.read()
            response.close()
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return response


def faulty(script, policy=QUICK):
    client = bearer_client(SERVER, jwt, raise_problems=True, retries=policy)
    faults = Faults(script)
    client.set_httpx_client(
        httpx.Client(
            base_url=SERVER + "/api/v2",
            headers={"Authorization": f"Bearer {jwt}"},
            transport=RetryingTransport(policy, inner=faults),
            event_hooks={"response": [raise_problem]},
        )
    )
    return client, faults


def named(name):
    return [i for i in items(index_list, client=api) if i.name == name]


# A create whose answer was lost, then a 503: one index, every attempt under one key.
client, faults = faulty(["drop-after", "503"])
created = index_create.sync(client=client, body=IndexCreate(name="sdk-created-once"))
assert len(faults.seen) == 3, faults.seen
keys = {key for _, _, key in faults.seen}
assert len(keys) == 1 and next(iter(keys)).startswith("vvc_"), faults.seen
assert [i.id for i in named("sdk-created-once")] == [created.id]

# A caller's own key is kept.
client, faults = faulty(["drop-after"])
index_create.sync(client=client, body=IndexCreate(name="sdk-keyed"), idempotency_key="caller-chosen-py")
assert [key for _, _, key in faults.seen] == ["caller-chosen-py"] * 2, faults.seen
assert len(named("sdk-keyed")) == 1

# A search is a POST that takes no key: sent once. Retries off: sent once, no key added.
client, faults = faulty(["503"])
try:
    search_query.sync(client=client, body=CrossSearchRequest(query="x", index_ids=[created.id]))
    raise AssertionError("the injected 503 was not raised")
except ProblemError as error:
    assert error.status == 503 and error.is_retryable, error
assert len(faults.seen) == 1 and faults.seen[0][2] is None, faults.seen
client, faults = faulty(["drop-after"], RetryPolicy.none())
try:
    index_create.sync(client=client, body=IndexCreate(name="sdk-no-retry"))
    raise AssertionError("a dropped answer was not an error")
except httpx.RemoteProtocolError:
    pass
assert len(faults.seen) == 1 and faults.seen[0][2] is None, faults.seen

print("sdk_client: connect, pages, problems, enums and retries held against the server", file=sys.stderr)
