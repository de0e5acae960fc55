"""Runs every operation's example from the built docs site against live servers.

The reference pages hold each operation's example as programs (`<code data-example=ID
data-lang=LANG>`): a curl command, a Python program on the generated SDK and a Rust program
(compiled into `videovector-snippets`, run by operation id). For each language a fresh
server is started (workers off, so queued runs and jobs wait to be cancelled and retried
as the examples do), and the examples run in the order of api-spec/examples.json, each as
its own process with VIDEOVECTOR_URL, VIDEOVECTOR_API_KEY and VIDEOVECTOR_TOKEN set.

The programs name ids the server did not make (`key_...` from the recorded run). They reach
the server through a proxy that swaps each such id for the one this server made: when an
operation's answer names a resource (the spec's response `links`, e.g. `api_key_create`'s
`/key/id` feeds `api_key_view`'s `key_id`), the id the example file gives that parameter
stands for the id in this answer from then on. The programs themselves run as written.

Each example must exit 0 after exactly one call of its operation that got the spec's
success status, with an answer whose fields are the recorded answer's fields.
With --record, the curl run's answers (and the ids they hold, in place of the file's) are
written back into the examples file.
"""

import argparse
import html
import http.client
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

LANGUAGES = ["curl", "python", "rust"]
# The secret scanner the leaked_key_report example speaks for: its public key, and in the
# example its signature of the body's exact bytes (the compact JSON all three clients send).
# The private key was made for the example and thrown away: to change that body, make a new
# pair (`openssl ecparam -name prime256v1 -genkey -noout -out k.pem`, `openssl ec -in k.pem
# -pubout`), sign the new bytes (`openssl dgst -sha256 -sign k.pem body | base64 -w0`) and
# replace both.
LEAK_REPORTER = {
    "name": "example-scanner",
    "key_identifier": "example-scanner-1",
    "public_key_pem": """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEq9W4NXxPULXOyQOg1OBt0wo8zCA1
U1k3+7WFC6XXeObAanXAVF0ECSelwiK2nwEi2kpnsiJNDirZUu37LViVLA==
-----END PUBLIC KEY-----
""",
}
BASE = "/api/v2"
TIMEOUT = 120


def fail(message):
    print(f"snippets: {message}", file=sys.stderr)
    sys.exit(1)


def programs_from_site(site):
    """{(operation_id, language): program} from the reference pages of the built site."""
    found = {}
    pattern = re.compile(r'<code class="[^"]*" data-example="([^"]+)" data-lang="([^"]+)">(.*?)</code>', re.S)
    for page in sorted(Path(site).glob("reference*.html")):
        for op_id, lang, body in pattern.findall(page.read_text(encoding="utf-8")):
            found[(op_id, lang)] = code_text(body)
    return found


def code_text(markup):
    """A highlighted code block's text: its tags dropped, its entities read."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def substitute(text, aliases):
    """`text` with each declared id replaced by its alias (longest first, so no id is cut
    by a shorter one it begins with)."""
    for declared, actual in sorted(aliases.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(declared, actual)
    return text


class Operation:
    def __init__(self, method, path, op):
        self.method = method.upper()
        self.path = path
        self.op = op
        self.id = op["operationId"]
        self.pattern = re.compile("^" + BASE + re.sub(r"\{[^}]+\}", "[^/]+", re.escape(path).replace(r"\{", "{").replace(r"\}", "}")) + "$")
        self.success = next(s for s in op["responses"] if s.startswith("2"))
        self.links = [
            (link["operationId"], name, expr.split("#", 1)[1])
            for link in op["responses"][self.success].get("links", {}).values()
            for name, expr in link["parameters"].items()
        ]

    def matches(self, method, path):
        return method == self.method and self.pattern.match(path.split("?", 1)[0])


def operations_of(spec):
    return {
        op["operationId"]: Operation(method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    }


def pointer(document, path):
    for token in path.strip("/").split("/"):
        if isinstance(document, list):
            document = document[int(token)]
        elif isinstance(document, dict) and token in document:
            document = document[token]
        else:
            return None
    return document


class Proxy:
    """Forwards to the server, swapping the example file's ids for this server's, and keeps
    every exchange."""

    def __init__(self, upstream):
        self.upstream = urllib.parse.urlparse(upstream)
        self.aliases = {}
        self.exchanges = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = proxy.swap(self.path)
                body = proxy.swap(body.decode("utf-8")).encode("utf-8") if body else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
                if body:
                    headers["Content-Length"] = str(len(body))
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=TIMEOUT)
                connection.request(self.command, path, body=body or None, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                with proxy.lock:
                    proxy.exchanges.append((self.command, path, answer.status, data))
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                connection.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def swap(self, text):
        with self.lock:
            aliases = dict(self.aliases)
        return substitute(text, aliases)

    def take(self):
        with self.lock:
            taken, self.exchanges = self.exchanges, []
        return taken

    def stop(self):
        self.server.shutdown()


class Server:
    """`videovector serve` on 127.0.0.1:0 with a fresh data dir (or database)."""

    def __init__(self, binary, work, name, email, password, database_url, workers=False):
        self.dir = Path(work) / name
        self.dir.mkdir()
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith("VIDEOVECTOR_") and k != "RUST_LOG"
        }
        environment.update(
            VIDEOVECTOR_DATA_DIR=str(self.dir / "data"),
            VIDEOVECTOR_LISTEN="127.0.0.1:0",
            VIDEOVECTOR_BOOTSTRAP_EMAIL=email,
            VIDEOVECTOR_BOOTSTRAP_PASSWORD=password,
            # For the reference's examples, queued runs and jobs stay queued: they cancel
            # them, then retry them.
            VIDEOVECTOR_WORKERS="true" if workers else "false",
            VIDEOVECTOR_LOG="warn,videovector=info,videovector_server=info",
            NO_COLOR="1",
        )
        if database_url:
            environment["VIDEOVECTOR_DATABASE_URL"] = database_url
        config = self.dir / "videovector.toml"
        config.write_text(
            "[[leak_reporters]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in LEAK_REPORTER.items()),
            encoding="utf-8",
        )
        self.log = self.dir / "server.log"
        self.process = subprocess.Popen(
            [binary, "--config", str(config), "serve"], env=environment, stdout=open(self.log, "w"), stderr=subprocess.STDOUT
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            found = re.search(r"http://127\.0\.0\.1:\d+", self.log.read_text(errors="replace"))
            if found:
                self.url = found.group(0)
                return
            if self.process.poll() is not None:
                fail(f"the server exited before listening:\n{self.log.read_text()}")
            time.sleep(0.1)
        fail("the server did not listen within 60 s")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def call(url, method, path, body=None, headers=None):
    request = urllib.request.Request(
        url + BASE + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
        return json.loads(answer.read())


def run_program(language, program, op_id, rust_binary, python, environment, work):
    if language == "curl":
        command = ["bash", "-euo", "pipefail", "-c", program]
    elif language == "python":
        script = Path(work) / f"{op_id}.py"
        script.write_text(program, encoding="utf-8")
        command = [python, str(script)]
    else:
        command = [rust_binary, op_id]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=TIMEOUT)


def psql(base_url, *commands, check=True):
    quiet = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}
    arguments = ["psql", "-q", f"{base_url}/test"]
    for command in commands:
        arguments += ["-c", command]
    subprocess.run(arguments, check=check, env=quiet)


def run_language(language, args, examples, operations, programs, credentials):
    email, password = credentials
    database_url = None
    if args.database_url:
        name = f"videovector_snippets_{language}_{os.getpid()}"
        psql(args.database_url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
        database_url = f"{args.database_url}/{name}"
    server = Server(args.server, args.work, f"server-{language}", email, password, database_url)
    proxy = Proxy(server.url)
    recorded = {}
    try:
        token = call(server.url, "POST", "/auth/token", {"email": email, "password": password})["access_token"]
        key = call(
            server.url, "POST", "/api-keys",
            {"name": "snippets runner", "scopes": ["admin"]},
            {"Authorization": f"Bearer {token}"},
        )["secret"]
        environment = {**os.environ, "VIDEOVECTOR_URL": proxy.url, "VIDEOVECTOR_API_KEY": key, "VIDEOVECTOR_TOKEN": token}
        for example in examples:
            op_id = example["operation_id"]
            operation = operations[op_id]
            program = programs.get((op_id, language))
            if program is None:
                fail(f"the site shows no {language} example for {op_id}")
            proxy.take()
            done = run_program(language, program, op_id, args.rust, sys.executable, environment, args.work)
            exchanges = [e for e in proxy.take() if operation.matches(e[0], e[1])]
            where = f"{op_id} ({language})"
            if done.returncode != 0:
                fail(f"{where} exited {done.returncode}:\n{done.stdout}\n{done.stderr}\nserver log tail:\n{server.log.read_text()[-3000:]}")
            if len(exchanges) != 1:
                fail(f"{where} made {len(exchanges)} calls of {operation.method} {operation.path}: {[(e[0], e[1], e[2]) for e in exchanges]}")
            method, path, status, data = exchanges[0]
            if str(status) != operation.success:
                fail(f"{where} got {status}, not {operation.success}: {data[:500]!r}")
            answer = json.loads(data) if data else None
            declared = example.get("response")
            if declared is not None and not args.record:
                if type(declared) is not type(answer):
                    fail(f"{where}: the answer is {type(answer).__name__}, the example's {type(declared).__name__}")
                if isinstance(declared, dict) and set(declared) != set(answer):
                    fail(f"{where}: the answer's fields {sorted(answer)} are not the example's {sorted(declared)}")
            if os.environ.get("SNIPPETS_DEBUG"):  # each answer and the ids learnt so far
                print(op_id, json.dumps(answer)[:400], proxy.aliases)
            recorded[op_id] = answer
            learn(proxy, operation, answer, examples)
        return recorded, dict(proxy.aliases), len(examples)
    finally:
        proxy.stop()
        server.stop()
        if database_url:
            psql(args.database_url, f"DROP DATABASE IF EXISTS {database_url.rsplit('/', 1)[1]} WITH (FORCE)", check=False)


def learn(proxy, operation, answer, examples):
    """Each id the answer names for a later operation's parameter stands for the id the
    example file gives that parameter (the first such answer wins)."""
    for target, parameter, location in operation.links:
        actual = pointer(answer, location)
        if not isinstance(actual, str):
            continue
        for example in examples:
            if example["operation_id"] != target:
                continue
            declared = example.get("path", {}).get(parameter)
            if isinstance(declared, str) and declared != actual:
                with proxy.lock:
                    proxy.aliases.setdefault(declared, actual)


def swap_in(value, aliases):
    if isinstance(value, str):
        return substitute(value, aliases)
    if isinstance(value, list):
        return [swap_in(v, aliases) for v in value]
    if isinstance(value, dict):
        return {k: swap_in(v, aliases) for k, v in value.items()}
    return value


# The guides' code blocks. A block's info string says what becomes of it:
#   sh, bash, python   run, in page order, against a fresh server per page; every sh block
#                      runs in bash with `set -euo pipefail`, and the variables it sets are
#                      kept for the page's later blocks (python blocks see them in their
#                      environment); `http://127.0.0.1:8080` (the README's server) is this
#                      server (its operator admin@example.com, change-me-now), and each
#                      page's blocks run after the quickstart's `sh setup` block (which
#                      exports VIDEOVECTOR_URL, VIDEOVECTOR_TOKEN and VIDEOVECTOR_API_KEY and
#                      makes `idx_archive`); the workspace's binaries (vvctl) are on PATH
#   json, toml, yaml   parsed: the text must be what it says it is
#   rust               compiled as doc tests of the client: the page must be one of
#                      RUST_DOC_TEST_PAGES (client/src/lib.rs includes them)
#   text, none         output or a picture, not code
#   ... illustration   not run, on purpose, said on the page (`sh illustration`)
#   ... ci=NAME        run as written by .ci/NAME (which must name the page)
RUST_DOC_TEST_PAGES = {"rust-client.html", "tenant-tokens.html"}
GUIDE_SERVER = "http://127.0.0.1:8080"


def guide_blocks(site):
    """[(page, info, text)] of every code block of every guide page, in order."""
    pattern = re.compile(r'<pre><code(?: class="[^"]*")? data-info="([^"]*)">(.*?)</code></pre>', re.S)
    blocks = []
    for page in sorted(Path(site).glob("*.html")):
        if page.name.startswith("reference"):
            continue
        for info, body in pattern.findall(page.read_text(encoding="utf-8")):
            blocks.append((page.name, html.unescape(info), code_text(body)))
    return blocks


def check_data(language, text):
    if language == "json":
        json.loads(text)
    elif language == "toml":
        import tomllib
        tomllib.loads(text)
    else:
        import yaml
        yaml.safe_load(text)


def run_guides(args, credentials, binaries):
    email, password = credentials
    counts = {"ran": 0, "parsed": 0, "doc tests": 0, "text": 0, "illustration": 0, "other CI steps": 0}
    by_page = {}
    setups = []
    for page, info, text in guide_blocks(args.site):
        by_page.setdefault(page, []).append((info, text))
        if "setup" in info.split():
            setups.append((page, text))
    if len(setups) != 1:
        fail(f"expected one `sh setup` block (the quickstart's), found {len(setups)}")
    setup_page, setup = setups[0]
    for page, blocks in by_page.items():
        runnable = []
        for info, text in blocks:
            words = info.replace(",", " ").split()
            language = words[0] if words else ""
            where = f"{page}: a `{info}` block"
            step = next((w.split("=", 1)[1] for w in words if w.startswith("ci=")), None)
            if "illustration" in words:
                counts["illustration"] += 1
            elif step:
                script = Path(".ci") / step
                if not script.exists() or page.removesuffix(".html") not in script.read_text(encoding="utf-8"):
                    fail(f"{where} says .ci/{step} runs it, but .ci/{step} does not name {page}")
                counts["other CI steps"] += 1
            elif language in ("json", "toml", "yaml"):
                try:
                    check_data(language, text)
                except Exception as error:
                    fail(f"{where} is not {language}: {error}\n{text}")
                counts["parsed"] += 1
            elif language == "rust":
                if page not in RUST_DOC_TEST_PAGES:
                    fail(f"{where} is compiled by nothing: include the page as doc tests or mark it")
                counts["doc tests"] += 1
            elif language in ("", "text"):
                counts["text"] += 1
            elif language in ("sh", "bash", "python"):
                runnable.append((language, text))
            else:
                fail(f"{where}: no rule for `{language}` (run it, or mark it `illustration`)")
        if runnable:
            run_page(args, page, runnable, email, password, binaries, None if page == setup_page else setup)
            counts["ran"] += len(runnable)
    summary = ", ".join(f"{n} {what}" for what, n in counts.items())
    print(f"snippets: the guides' code blocks: {summary}")


def run_page(args, page, blocks, email, password, binaries, setup):
    server = Server(args.server, args.work, f"guide-{page}", email, password, None, workers=True)
    state = Path(args.work) / f"guide-{page}.env"
    state.write_text("", encoding="utf-8")
    try:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOVECTOR_")}
        environment["PATH"] = f"{binaries}:{os.environ['PATH']}"
        if setup is not None:
            blocks = [("sh", setup)] + blocks
        for number, (language, text) in enumerate(blocks, 1):
            text = text.replace(GUIDE_SERVER, server.url)
            source = Path(args.work) / f"guide-{page}-{number}"
            source.write_text(text, encoding="utf-8")
            if language == "python":
                body = f'{sys.executable} "{source}" || exit $?'
            else:
                # Not in an `&&` list: there, bash would ignore `set -e`.
                body = f'set -euo pipefail; source "{source}"; set +eu +o pipefail'
            script = f'set -a; source "{state}"; {body}; export -p | grep -v -E "^declare -x (BASH|SHELL|SHLVL|PWD|OLDPWD|_)=" > "{state}.new"; mv "{state}.new" "{state}"'
            done = subprocess.run(["bash", "-c", script], env=environment, capture_output=True, text=True, timeout=TIMEOUT, cwd=args.work)
            if done.returncode != 0:
                fail(f"{page}: block {number} ({language}) exited {done.returncode}:\n{text}\n--- output:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--rust", required=True)
    parser.add_argument("--site", required=True)
    parser.add_argument("--examples", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--database-url")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--languages", default=",".join(LANGUAGES))
    parser.add_argument("--guides-only", action="store_true")
    args = parser.parse_args()

    examples = json.loads(Path(args.examples).read_text(encoding="utf-8"))
    spec = json.loads((Path(args.site) / "openapi.json").read_text(encoding="utf-8"))
    operations = operations_of(spec)
    missing = sorted(set(operations) - {e["operation_id"] for e in examples})
    if missing:
        fail(f"operations without an example: {missing}")
    programs = programs_from_site(args.site)
    login = next(e for e in examples if e["operation_id"] == "token_create")["body"]
    credentials = (login["email"], login["password"])

    # The guides' blocks need no database of their own: once, on the embedded default.
    if not args.record and not args.database_url:
        began = time.time()
        run_guides(args, ("admin@example.com", "change-me-now"), str(Path(args.rust).parent))
        print(f"snippets: the guides' blocks took {time.time() - began:.1f} s")
    if args.guides_only:
        return
    started = time.time()
    total = 0
    languages = ["curl"] if args.record else args.languages.split(",")
    for language in languages:
        began = time.time()
        recorded, aliases, count = run_language(language, args, examples, operations, programs, credentials)
        total += count
        print(f"snippets: {count} {language} examples ran against a live server in {time.time() - began:.1f} s")
        if args.record:
            for example in examples:
                for part in ("path", "query", "headers", "body"):
                    if part in example:
                        example[part] = swap_in(example[part], aliases)
                answer = recorded.get(example["operation_id"])
                if answer is None:
                    example.pop("response", None)
                else:
                    example["response"] = answer
            Path(args.examples).write_text(json.dumps(examples, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"snippets: recorded {len(recorded)} answers into {args.examples}")
    print(f"snippets: {total} examples ({len(examples)} operations x {len(languages)} languages) ran in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
