"""Traces from outside: a real OTLP/HTTP receiver (oteltest's sink, which parses with the
OpenTelemetry protobuf definitions) takes the spans a live server exports, a peer stands in
for an embedder and a webhook endpoint and records the trace context each call carried, and
a driver makes requests with callers' `traceparent`s and checks who is whose parent.

    python traces.py receive DIR OTLP_PORT PEER_PORT   # until killed
    python traces.py drive DIR SERVER_URL EMAIL PASSWORD PEER_URL
"""

import json
import logging
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

lock = threading.Lock()


def append(path, record):
    with lock, open(path, "a") as out:
        out.write(json.dumps(record) + "\n")


def receive(folder, otlp_port, peer_port):
    from oteltest.sink import HttpSink
    from oteltest.sink.handler import RequestHandler

    spans_file = os.path.join(folder, "spans.jsonl")
    calls_file = os.path.join(folder, "calls.jsonl")

    class Spans(RequestHandler):
        def handle_trace(self, request, headers):  # noqa: ARG002
            for resource in request.resource_spans:
                service = next(
                    (a.value.string_value for a in resource.resource.attributes if a.key == "service.name"),
                    None,
                )
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        attributes = {}
                        for a in span.attributes:
                            kind = a.value.WhichOneof("value")
                            attributes[a.key] = getattr(a.value, kind) if kind else None
                        append(spans_file, {
                            "service": service,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "name": span.name,
                            "kind": span.kind,
                            "status": span.status.code,
                            "attributes": attributes,
                        })

        def handle_metrics(self, request, headers):
            pass

        def handle_logs(self, request, headers):
            pass

    class Peer(BaseHTTPRequestHandler):
        """An OpenAI-compatible embedder at /embed, a webhook endpoint at /hook."""

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            append(calls_file, {
                "path": self.path,
                "traceparent": self.headers.get("traceparent"),
                "request_id": self.headers.get("x-request-id"),
                "type": body.get("type") if isinstance(body, dict) else None,
            })
            if self.path == "/embed":
                data = [
                    {"index": i, "embedding": [1.0 + i, 0.5, 0.25, float(len(text) % 7)]}
                    for i, text in enumerate(body["input"])
                ]
                answer = json.dumps({"data": data}).encode()
            else:
                answer = b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    # Started in the background by a script, this process inherits SIGINT ignored: the
    # script's cleanup (and a person's Ctrl-C) must still end it.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda *_: os._exit(0))
    logging.basicConfig(level=logging.WARNING)
    sink = HttpSink(Spans(), logging.getLogger("otelsink"), port=int(otlp_port))
    sink.start()
    peer = ThreadingHTTPServer(("127.0.0.1", int(peer_port)), Peer)
    peer.daemon_threads = True
    peer.serve_forever()


def traceparent(n):
    """A caller's sampled trace: trace id 0…0n, parent span id 0…0n."""
    return f"{n:032x}", f"{n:016x}", f"00-{n:032x}-{n:016x}-01"


def drive(folder, url, email, password, peer):
    api = f"{url}/api/v2"
    s = requests.Session()

    def call(method, path, trace, **kwargs):
        headers = kwargs.pop("headers", {})
        headers["traceparent"] = trace[2]
        answer = s.request(method, f"{api}{path}", headers=headers, timeout=30, **kwargs)
        assert answer.status_code < 300, (method, path, answer.status_code, answer.text)
        return answer.json() if answer.content else None

    login, search, key, run = traceparent(1), traceparent(2), traceparent(3), traceparent(4)
    token = call("POST", "/auth/token", login, json={"email": email, "password": password})["access_token"]
    s.headers["Authorization"] = f"Bearer {token}"
    setup = traceparent(9)
    call("POST", "/indexes", setup, json={
        "id": "idx_traces", "name": "Traces",
        "embedder": {"source": "rest", "url": f"{peer}/embed", "model": "peer", "dimensions": 4},
    })
    call("POST", "/indexes/idx_traces/segments", setup, json={"wait": True, "segments": [
        {"media_id": "m", "start_seconds": 0, "end_seconds": 2, "text": "the bridge at dawn"},
    ]})
    call("POST", "/webhooks", setup, json={
        "url": f"{peer}/hook", "event_types": ["api_key.created", "run.succeeded"],
    })
    call("POST", "/indexes/idx_traces/search", search, json={"query": "bridge", "mode": "semantic"})
    call("POST", "/api-keys", key, json={"name": "traced", "scopes": ["search"]})
    prompt = call("POST", "/prompts", setup, json={"name": "p", "query_template": "bridge"})["id"]
    call("POST", "/runs", run, json={"prompt_id": prompt, "index_id": "idx_traces", "variables": {}})

    spans_file = os.path.join(folder, "spans.jsonl")
    calls_file = os.path.join(folder, "calls.jsonl")

    def read(path):
        try:
            with open(path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def named(spans, trace, name):
        return [x for x in spans if x["trace_id"] == trace[0] and x["name"] == name]

    def wanted(spans):
        return (named(spans, key, "webhook deliver") and named(spans, run, "webhook deliver")
                and named(spans, search, "embedding") and named(spans, run, "run execute"))

    # The SDK sends a batch every 5 s: wait for the last spans to land.
    deadline = time.monotonic() + 60
    spans = read(spans_file)
    while not wanted(spans) and time.monotonic() < deadline:
        time.sleep(0.5)
        spans = read(spans_file)
    calls = read(calls_file)
    by_id = {x["span_id"]: x for x in spans}

    def one(trace, name):
        found = named(spans, trace, name)
        summary = [(x["trace_id"][-2:], x["name"], x["span_id"], x["parent_span_id"]) for x in spans]
        assert len(found) == 1, f"{name} in trace {trace[0]}: {found}\nall: {summary}"
        return found[0]

    def server(trace, operation):
        span = one(trace, f"POST {operation}")
        assert span["kind"] == 2, span  # SERVER
        assert span["parent_span_id"] == trace[1], f"{operation} does not continue the caller's span: {span}"
        assert span["attributes"]["videovector.operation_id"] == operation, span
        assert span["attributes"]["http.response.status_code"] < 300, span
        assert span["attributes"]["videovector.request_id"].startswith("req_"), span
        assert span["service"] == "videovector", span
        return span

    # A login: its server span, and its database statements below it.
    login_span = server(login, "token_create")
    statements = [x for x in spans if x["parent_span_id"] == login_span["span_id"]]
    assert statements and all("db.system.name" in x["attributes"] for x in statements), statements
    # Statements with placeholders, never values: no password, token or key in any span.
    everything = json.dumps(spans)
    assert password not in everything and token not in everything and "sk_live_" not in everything

    # A search by meaning: the search and the embedder's call are children of the request,
    # and the embedder was sent the call's own span as its parent.
    search_span = server(search, "index_search")
    assert one(search, "search")["parent_span_id"] == search_span["span_id"]
    embedding = one(search, "embedding")
    assert embedding["parent_span_id"] == search_span["span_id"] and embedding["kind"] == 3, embedding
    sent = [c["traceparent"] for c in calls if c["path"] == "/embed" and c["traceparent"]
            and c["traceparent"].split("-")[1] == search[0]]
    assert sent == [f"00-{search[0]}-{embedding['span_id']}-01"], (sent, calls)

    # A key created: its webhook delivery is a client span under the request's, and the
    # receiver got the delivery's span as its parent, beside the request's id.
    key_span = server(key, "api_key_create")
    delivery = one(key, "webhook deliver")
    assert delivery["parent_span_id"] == key_span["span_id"] and delivery["kind"] == 3, delivery
    hooks = [c for c in calls if c["path"] == "/hook" and c["type"] == "api_key.created"]
    assert len(hooks) == 1, calls
    assert hooks[0]["traceparent"] == f"00-{key[0]}-{delivery['span_id']}-01", hooks
    assert hooks[0]["request_id"] == key_span["attributes"]["videovector.request_id"], hooks

    # A run: the worker's span continues the request's trace, and the run's webhook
    # delivery continues the worker's span.
    run_span = server(run, "run_create")
    execute = one(run, "run execute")
    assert execute["parent_span_id"] == run_span["span_id"] and execute["kind"] == 5, execute
    run_delivery = one(run, "webhook deliver")
    assert run_delivery["parent_span_id"] == execute["span_id"], run_delivery
    assert any(x["parent_span_id"] == execute["span_id"] and "db.system.name" in x["attributes"]
               for x in spans), "the run's statements are not below its span"

    # Every span's parent is either the caller's or a span the server sent.
    callers = {t[1] for t in (login, search, key, run, setup)}
    orphans = [x for x in spans if x["parent_span_id"] and x["parent_span_id"] not in by_id
               and x["parent_span_id"] not in callers]
    assert not orphans, f"spans whose parent never arrived: {orphans}"
    print(f"traces: {len(spans)} spans arrived at the OTLP receiver with the right parents")


if __name__ == "__main__":
    {"receive": receive, "drive": drive}[sys.argv[1]](*sys.argv[2:])
