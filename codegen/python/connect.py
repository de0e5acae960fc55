"""Clients that cannot be misconfigured: the server's root URL (as the Rust client's
helpers take it, not ``.../api/v2``), the credential in the header it belongs in, retries
(``RetryPolicy``) on, and, if asked, problems raised as ``ProblemError``:

    from videovector_client.connect import api_key_client

    api = api_key_client("http://127.0.0.1:8080", os.environ["VIDEOVECTOR_API_KEY"], raise_problems=True)
    results = index_search.sync("idx_archive", client=api, body=SearchRequest(query="bridge"))

Each returns the generated ``Client``/``AuthenticatedClient``, so every operation takes it.
"""

from typing import Optional

import httpx

from .client import AuthenticatedClient, Client
from .problems import raise_problem, raise_problem_async
from .retries import AsyncRetryingTransport, RetryingTransport, RetryPolicy

#: The API's base path below the server's root.
BASE_PATH = "/api/v2"


def api_base_url(server_url: str) -> str:
    """The API's base URL for a server's root URL (``http://127.0.0.1:8080``)."""
    root = server_url.rstrip("/")
    if root.endswith(BASE_PATH):
        raise ValueError(f"give the server's root URL, without {BASE_PATH}: {root[: -len(BASE_PATH)]}")
    if not root.startswith(("http://", "https://")):
        raise ValueError(f"the server URL needs http:// or https://: {server_url!r}")
    return root + BASE_PATH


def _looks_like_jwt(credential: str) -> bool:
    return credential.startswith("eyJ") and credential.count(".") == 2


def _wire(
    client: Client,
    headers: dict[str, str],
    retries: Optional[RetryPolicy],
    raise_problems: bool,
    timeout: float,
) -> None:
    """Gives `client` httpx clients with the credential, the retrying transports and hooks."""
    policy = retries or RetryPolicy()
    base_url = client._base_url
    client.set_httpx_client(
        httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            transport=RetryingTransport(policy),
            event_hooks={"response": [raise_problem]} if raise_problems else {},
        )
    )
    client.set_async_httpx_client(
        httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            transport=AsyncRetryingTransport(policy),
            event_hooks={"response": [raise_problem_async]} if raise_problems else {},
        )
    )


def api_key_client(
    server_url: str,
    api_key: str,
    *,
    retries: Optional[RetryPolicy] = None,
    raise_problems: bool = False,
    timeout: float = 60.0,
) -> AuthenticatedClient:
    """A client that sends ``X-API-Key: <api_key>`` (an API key or a tenant token)."""
    if _looks_like_jwt(api_key):
        raise ValueError("that is a JWT, not an API key: use bearer_client")
    client = AuthenticatedClient(
        base_url=api_base_url(server_url), token=api_key, prefix="", auth_header_name="X-API-Key"
    )
    _wire(client, {"X-API-Key": api_key}, retries, raise_problems, timeout)
    return client


def bearer_client(
    server_url: str,
    token: str,
    *,
    retries: Optional[RetryPolicy] = None,
    raise_problems: bool = False,
    timeout: float = 60.0,
) -> AuthenticatedClient:
    """A client that sends ``Authorization: Bearer <token>`` (a JWT from ``token_create``)."""
    if token.lower().startswith("bearer "):
        raise ValueError("give the token alone, without 'Bearer '")
    if not _looks_like_jwt(token):
        raise ValueError("that is not a JWT: an API key goes in api_key_client")
    client = AuthenticatedClient(base_url=api_base_url(server_url), token=token)
    _wire(client, {"Authorization": f"Bearer {token}"}, retries, raise_problems, timeout)
    return client


def public_client(
    server_url: str,
    *,
    retries: Optional[RetryPolicy] = None,
    raise_problems: bool = False,
    timeout: float = 60.0,
) -> Client:
    """A client without credentials (for ``token_create``)."""
    client = Client(base_url=api_base_url(server_url))
    _wire(client, {}, retries, raise_problems, timeout)
    return client
