"""The request guard of `qos ui`: the Dagster UI has no login and its GraphQL API launches runs, so it
accepts only requests that a page it served itself, or a local tool, can make.

An ASGI middleware around the webserver's app (``webserver.py``). It refuses, with 403 and one line saying
why:
- a request (HTTP or WebSocket) whose ``Host`` is not a name the UI serves: ``127.0.0.1``, ``localhost``,
  ``[::1]`` with its port, the ``--host`` given, and names added with ``--allow-host``. A page of another
  site that rebinds its DNS name to 127.0.0.1 still sends its own name, so it cannot read the UI's answers;
- a request with an ``Origin`` header that is not ``http(s)://`` one of those names (a page of another site,
  or a sandboxed/file page whose origin is ``null``): browsers send it on every cross-site POST and
  WebSocket handshake, which a page could otherwise send blindly;
- a GraphQL mutation sent with GET (``/graphql?query=mutation...``), which a plain link or image tag can
  trigger without any header check: mutations must be POSTed.
Local tools (curl, scripts/ui_smoke.py) send no Origin and a loopback Host, and pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "")


def served_names(host: str, port: int, extra: list[str] | tuple[str, ...] = ()) -> set[str]:
    """The ``Host`` values the UI accepts: ``name:port`` for the loopback names, the bound host (unless a
    wildcard), and ``extra`` names (``NAME`` or ``NAME:PORT``)."""
    names = [*LOOPBACK, *([] if host in WILDCARDS else [f"[{host}]" if ":" in host else host])]
    accepted = {f"{name.lower()}:{port}" for name in names}
    for name in extra:
        accepted.add(name.lower() if name.rsplit(":", 1)[-1].isdigit() and not name.endswith("]") else
                     f"{name.lower()}:{port}")
    return accepted


def refusal(scope: dict, accepted: set[str]) -> str | None:
    """Why the request of ``scope`` is refused, or None."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    host = headers.get("host", "").lower()
    if host not in accepted:
        return f"Host {host!r} is not a name this UI serves ({', '.join(sorted(accepted))})"
    origin = headers.get("origin")
    if origin is not None:
        scheme, _, rest = origin.lower().partition("://")
        if scheme not in ("http", "https") or rest.rstrip("/") not in accepted:
            return f"Origin {origin!r} is another site; the UI answers only its own pages and local tools"
    is_read = scope.get("method") in ("GET", "HEAD")
    if scope["type"] == "http" and is_read and scope.get("path", "").endswith("/graphql"):
        queries = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("query", [])
        if any(_mutates(q) for q in queries):
            return "a GraphQL mutation sent with GET; send it with POST"
    return None


def _mutates(query: str) -> bool:
    """Whether a GraphQL document holds a mutation (an unparsable one counts: it is not let through)."""
    from graphql import GraphQLError, OperationType, parse
    from graphql.language import OperationDefinitionNode

    try:
        document = parse(query)
    except GraphQLError:
        return True
    return any(isinstance(d, OperationDefinitionNode) and d.operation == OperationType.MUTATION
               for d in document.definitions)


class LocalOnly:
    """ASGI middleware: ``app`` answers only requests that pass ``refusal``."""

    def __init__(self, app: Callable[..., Awaitable[None]], accepted: set[str]):
        self.app, self.accepted = app, accepted

    async def __call__(self, scope: dict, receive, send) -> None:
        """Pass the request to ``app``, or answer it with a refusal (lifespan events always pass)."""
        if scope["type"] not in ("http", "websocket"):  # lifespan
            return await self.app(scope, receive, send)
        why = refusal(scope, self.accepted)
        if why is None:
            return await self.app(scope, receive, send)
        body = f"refused by the qos ui request guard: {why}\n".encode()
        if scope["type"] == "websocket":  # closing before accepting answers the handshake with 403
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
