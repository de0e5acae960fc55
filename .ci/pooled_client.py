"""A pooled client across a long mixed run: one `httpx.Client` (what the generated Python SDK
holds) sends 10,000 requests, a third of them refusals that carry bodies (401, 403, 404,
422), against a live server. Every request must get its answer: a connection the server
ends without saying so shows here as "Server disconnected without sending a response",
which httpx does not retry (the review's finding 1: 31 of 1,680 lost).

    python .ci/pooled_client.py URL EMAIL PASSWORD [COUNT]
"""

import sys
import time

import httpx


def main(url, email, password, count):
    api = f"{url}/api/v2"
    with httpx.Client(timeout=30) as setup:
        token = setup.post(f"{api}/auth/token", json={"email": email, "password": password}).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}

        def key(scopes):
            return setup.post(f"{api}/api-keys", headers=bearer, json={"name": "pooled", "scopes": scopes}).json()["secret"]

        read, write = key(["read"]), key(["write"])
    padding = "x" * 48_000
    mix = [
        ("GET", "/indexes", {"X-API-Key": read}, None, 200),
        ("POST", "/runs/run_x/retry", {}, {"padding": padding}, 401),
        ("POST", "/indexes", {"X-API-Key": read}, {"name": "no", "padding": padding}, 403),
        ("POST", "/runs/run_missing/retry", {"X-API-Key": write}, {"padding": padding[:9_000]}, 404),
        ("POST", "/indexes", {"X-API-Key": write}, {"padding": padding}, 422),
        ("GET", "/runs/run_missing", {"X-API-Key": read}, None, 404),
    ]
    lost, wrong = [], []
    started = time.monotonic()
    with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=4)) as pooled:
        for i in range(count):
            method, path, headers, body, status = mix[i % len(mix)]
            try:
                answer = pooled.request(method, f"{api}{path}", headers=headers, json=body)
            except httpx.TransportError as error:
                lost.append(f"{i} {method} {path}: {error!r}")
                continue
            if answer.status_code != status:
                wrong.append(f"{i} {method} {path}: {answer.status_code}")
    took = time.monotonic() - started
    print(f"pooled: {count} requests on one httpx.Client in {took:.1f} s: {len(lost)} lost, {len(wrong)} wrong status")
    if lost or wrong:
        raise SystemExit(f"pooled: FAILED: {(lost + wrong)[:5]}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 10_000)
