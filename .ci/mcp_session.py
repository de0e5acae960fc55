"""An MCP session with the official Python SDK (`mcp` on PyPI) against a live server.

    python .ci/mcp_session.py URL EMAIL PASSWORD [TRANSCRIPT_FILE]

Sets up through the REST API (a token, an index with segments, a saved prompt, keys with
the search, read and write scopes), then checks, each through a real MCP client session
configured from `GET /mcp/config`:
  initialize; the tool lists of a search key and a write key differ as the committed spec's
  scopes say; the search tool returns ingested segments; a saved prompt runs and its result
  is read back; a read key calling a write tool gets an error naming `write`; indexes are
  resources and saved prompts are prompts; a revoked key is refused at once; a JWT gets the
  same tools as a key of its scopes; a key past its rate limit gets the 429 problem as a tool
  error with `retry_after_seconds`. Exits non-zero on the first failure. With
  TRANSCRIPT_FILE, the search key's session (requests and answers) is written there.
"""

import asyncio
import json
import sys
import time

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

SCOPES = ["search", "read", "write", "admin"]


def check(condition, message):
    if not condition:
        raise SystemExit(f"mcp: FAILED: {message}")


def tools_for(spec, scope):
    """The tools the spec says a credential holding `scope` may call."""
    names = {"credential_inspect"}
    for item in spec["paths"].values():
        for operation in item.values():
            schemes = [name for requirement in operation.get("security", []) for name in requirement]
            required = operation.get("x-required-scope")
            if "ApiKey" in schemes and (required is None or SCOPES.index(scope) >= SCOPES.index(required)):
                names.add(operation["operationId"])
    return names


class Transcript:
    """Records a session's calls and answers, for the docs."""

    def __init__(self):
        self.lines = []

    def add(self, method, params, answer):
        self.lines.append({"method": method, "params": params, "result": answer})


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def session_for(url, headers):
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
    transport = streamable_http_client(url, http_client=http)
    read, write = await transport.__aenter__()
    session = ClientSession(read, write)
    await session.__aenter__()
    return http, transport, session


async def close(http, transport, session):
    await session.__aexit__(None, None, None)
    await transport.__aexit__(None, None, None)
    await http.aclose()


async def main(url, email, password, transcript_file):
    api = f"{url}/api/v2"
    async with httpx2.AsyncClient(timeout=30.0) as rest:
        token = (await rest.post(f"{api}/auth/token", json={"email": email, "password": password})).json()[
            "access_token"
        ]
        auth = {"Authorization": f"Bearer {token}"}
        config = (await rest.get(f"{api}/mcp/config", headers=auth)).json()
        server = config["mcpServers"]["videovector"]
        check(server["url"] == f"{url}/mcp" and server["type"] == "http", f"mcp/config: {server}")
        spec = (await rest.get(f"{api}/openapi.json")).json()
        await rest.post(f"{api}/indexes", headers=auth, json={"id": "idx_news", "name": "Evening news"})
        segments = [
            {"media_id": "bulletin", "start_seconds": 0, "end_seconds": 4, "text": "the mayor opened the new bridge over the river"},
            {"media_id": "bulletin", "start_seconds": 4, "end_seconds": 8, "text": "heavy rain is expected over the weekend"},
            {"media_id": "sport", "start_seconds": 0, "end_seconds": 4, "text": "the home team won the cup final"},
        ]
        ingested = await rest.post(f"{api}/indexes/idx_news/segments", headers=auth, json={"segments": segments, "wait": True})
        check(ingested.status_code in (200, 201), f"ingest: {ingested.text}")
        prompt = (
            await rest.post(
                f"{api}/prompts",
                headers=auth,
                json={"name": "Topic watch", "description": "Evidence about a topic",
                      "query_template": "{{topic}} over the river", "variables": ["topic"]},
            )
        ).json()
        keys = {}
        for scope in ["search", "read", "write"]:
            created = (await rest.post(f"{api}/api-keys", headers=auth, json={"name": f"mcp {scope}", "scopes": [scope]})).json()
            keys[scope] = (created["key"]["id"], created["secret"])

        def key_headers(scope):
            return {name: value.replace("${VIDEOVECTOR_API_KEY}", keys[scope][1]) for name, value in server["headers"].items()}

        transcript = Transcript()

        # A search key.
        http, transport, session = await session_for(server["url"], key_headers("search"))
        init = await session.initialize()
        transcript.add("initialize", {"clientInfo": "mcp (Python SDK)"}, dump(init))
        check(init.server_info.name == "videovector", f"initialize: {dump(init)}")
        listed = await session.list_tools()
        names = {tool.name for tool in listed.tools}
        transcript.add("tools/list", {}, {"tools": [{"name": t.name, "description": t.description} for t in listed.tools]})
        check(names == tools_for(spec, "search"), f"search key tools {sorted(names)}")
        print("mcp: tools/list for a search key:", ", ".join(sorted(names)))
        arguments = {"index_id": "idx_news", "body": {"query": "bridge over the river"}}
        result = await session.call_tool("index_search", arguments)
        transcript.add("tools/call", {"name": "index_search", "arguments": arguments}, dump(result))
        check(not result.is_error, f"index_search: {dump(result)}")
        check(result.structured_content["hits"][0]["media_id"] == "bulletin", f"index_search: {dump(result)}")
        # The same tool searches by meaning, with the arguments the contract gives it.
        arguments = {"index_id": "idx_news", "body": {"query": "a crossing above the water", "mode": "semantic", "top_k": 3}}
        result = await session.call_tool("index_search", arguments)
        transcript.add("tools/call", {"name": "index_search", "arguments": arguments}, dump(result))
        check(not result.is_error, f"index_search (semantic): {dump(result)}")
        hits = result.structured_content["hits"]
        check(hits and all(h["found_by"] == ["semantic"] for h in hits), f"index_search (semantic): {dump(result)}")
        total = result.structured_content["total"]
        check(total["relation"] == "eq" and total["value"] >= len(hits), f"index_search (total): {dump(result)}")
        # Across indexes, hybrid and grouped by media: one hit per media.
        arguments = {"body": {"query": "a crossing above the water", "index_ids": ["idx_news"],
                              "mode": "hybrid", "group_by": "media"}}
        result = await session.call_tool("search_query", arguments)
        transcript.add("tools/call", {"name": "search_query", "arguments": arguments}, dump(result))
        check(not result.is_error, f"search_query (grouped): {dump(result)}")
        grouped = result.structured_content["hits"]
        media = [h["media_id"] for h in grouped]
        check(grouped and len(media) == len(set(media)) and all(h["media_matches"] >= 1 for h in grouped),
              f"search_query (grouped): {dump(result)}")
        inspected = await session.call_tool("credential_inspect", {})
        missing = {t["name"]: t["required_scope"] for t in inspected.structured_content["tools"] if not t["allowed"]}
        check(missing.get("run_create") == "write", f"credential_inspect: {missing}")
        await close(http, transport, session)

        # A write key: more tools; the saved prompt runs and its result is read back.
        http, transport, session = await session_for(server["url"], key_headers("write"))
        await session.initialize()
        names = {tool.name for tool in (await session.list_tools()).tools}
        check(names == tools_for(spec, "write"), f"write key tools {sorted(names)}")
        run = await session.call_tool(
            "run_create",
            {"idempotency_key": "mcp-ci-run", "body": {"prompt_id": prompt["id"], "index_id": "idx_news", "variables": {"topic": "the bridge"}}},
        )
        check(not run.is_error, f"run_create: {dump(run)}")
        run_id = run.structured_content["id"]
        for _ in range(200):
            viewed = (await session.call_tool("run_view", {"run_id": run_id})).structured_content
            if viewed["status"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.05)
        check(viewed["status"] == "succeeded", f"run_view: {viewed}")
        check(viewed["result"]["citations"][0]["media_id"] == "bulletin", f"run result: {viewed}")
        await close(http, transport, session)

        # A read key: a write tool is refused naming `write`; resources and prompts.
        http, transport, session = await session_for(server["url"], key_headers("read"))
        await session.initialize()
        refused = await session.call_tool(
            "segment_ingest", {"index_id": "idx_news", "body": {"segments": segments[:1]}}
        )
        check(refused.is_error and refused.structured_content["required_scope"] == "write", f"read key: {dump(refused)}")
        check("`write`" in refused.structured_content["detail"], f"read key: {dump(refused)}")
        resources = await session.list_resources()
        check(resources.resources[0].uri == "videovector://indexes/idx_news", f"resources: {dump(resources)}")
        contents = await session.read_resource("videovector://indexes/idx_news")
        check(json.loads(contents.contents[0].text)["segment_count"] == 3, f"resource: {dump(contents)}")
        prompts = await session.list_prompts()
        check(prompts.prompts[0].name == prompt["id"], f"prompts: {dump(prompts)}")
        got = await session.get_prompt(prompt["id"], {"topic": "rain"})
        check("rain over the river" in got.messages[0].content.text, f"prompt: {dump(got)}")
        # Revoked: refused on the very next request.
        revoked = await rest.post(f"{api}/api-keys/{keys['read'][0]}/revoke", headers=auth)
        check(revoked.status_code == 200, f"revoke: {revoked.text}")
        try:
            await session.list_resources()
            check(False, "a revoked key was served")
        except SystemExit:
            raise
        except Exception as refused_error:  # noqa: BLE001 - any failure is the refusal
            print("mcp: the revoked key is refused:", type(refused_error).__name__, str(refused_error)[:120])
        try:
            await close(http, transport, session)
        except Exception:  # noqa: BLE001 - the session of a revoked key may fail to close
            pass

        # A JWT with the search scope: the search key's tools.
        search_token = (
            await rest.post(f"{api}/auth/token", json={"email": email, "password": password, "scopes": ["search"]})
        ).json()["access_token"]
        http, transport, session = await session_for(server["url"], {"Authorization": f"Bearer {search_token}"})
        await session.initialize()
        names = {tool.name for tool in (await session.list_tools()).tools}
        check(names == tools_for(spec, "search"), f"search JWT tools {sorted(names)}")
        refused = await session.call_tool("index_create", {"body": {"id": "idx_no", "name": "No"}})
        check(refused.is_error and refused.structured_content["required_scope"] == "write", f"JWT: {dump(refused)}")
        await close(http, transport, session)

        # A key past its limit: the tool error is the 429 problem and names the wait.
        limited = (
            await rest.post(
                f"{api}/api-keys",
                headers=auth,
                json={"name": "mcp limited", "scopes": ["search"], "rate_limits": [
                    {"name": "searches_today", "family": "search", "quota": 1, "window_seconds": 86400}]},
            )
        ).json()
        http, transport, session = await session_for(server["url"], {"X-API-Key": limited["secret"]})
        await session.initialize()
        arguments = {"index_id": "idx_news", "body": {"query": "bridge"}}
        first = await session.call_tool("index_search", arguments)
        check(not first.is_error, f"limited key, first search: {dump(first)}")
        second = await session.call_tool("index_search", arguments)
        problem = second.structured_content or {}
        check(second.is_error and problem.get("code") == "rate_limited", f"limited key: {dump(second)}")
        check(problem.get("retry_after_seconds", 0) >= 1, f"limited key: {dump(second)}")
        print("mcp: past its limit:", problem["detail"])
        await close(http, transport, session)

        # No credential: 401 with a challenge.
        anonymous = await rest.post(server["url"], json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        check(anonymous.status_code == 401 and "www-authenticate" in anonymous.headers, f"anonymous: {anonymous.status_code}")

    if transcript_file:
        with open(transcript_file, "w") as out:
            json.dump(transcript.lines, out, indent=2)
    print("mcp: every check passed")


if __name__ == "__main__":
    started = time.monotonic()
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None))
    print(f"mcp: the session took {time.monotonic() - started:.1f} s")
