"""The request guard of `qos ui`, on forged requests: only a Host it serves, no foreign Origin, and no
GraphQL mutation by GET (a link or image tag of any page could send one)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest

from qos_pipeline.cli.guard import LocalOnly, refusal, served_names

ACCEPTED = served_names("127.0.0.1", 3000, ["box.lan"])
MUTATION = 'mutation { addDynamicPartition(partitionsDefName: "model", partitionKey: "x", repositorySelector: ' \
           '{repositoryName: "__repository__", repositoryLocationName: "qos"}) { __typename } }'


def _scope(method="POST", host="127.0.0.1:3000", origin=None, path="/graphql", query="", kind="http"):
    headers = [(b"host", host.encode())] + ([(b"origin", origin.encode())] if origin else [])
    return {"type": kind, "method": method, "path": path, "query_string": query.encode(), "headers": headers}


@pytest.mark.parametrize("scope,why", [
    (_scope(), None),
    (_scope(host="localhost:3000", origin="http://localhost:3000"), None),
    (_scope(host="[::1]:3000"), None),
    (_scope(host="box.lan:3000", origin="http://box.lan:3000"), None),
    (_scope(method="GET", query="query=" + quote("{ version }")), None),
    (_scope(host="attacker.example"), "Host 'attacker.example' is not a name this UI serves"),
    (_scope(host="127.0.0.1:3001"), "Host '127.0.0.1:3001'"),
    (_scope(origin="http://attacker.example"), "Origin 'http://attacker.example' is another site"),
    (_scope(origin="null"), "Origin 'null' is another site"),
    (_scope(origin="http://127.0.0.1:3000.attacker.example"), "is another site"),
    (_scope(kind="websocket", origin="http://attacker.example"), "is another site"),
    (_scope(method="GET", query="query=" + quote(MUTATION)), "a GraphQL mutation sent with GET"),
    (_scope(method="GET", query="query=" + quote("{ version } mutation m { x }")), "mutation sent with GET"),
    (_scope(method="GET", query="query=" + quote("mutation {")), "mutation sent with GET"),  # unparsable
])
def test_forged_requests_are_refused_saying_why(scope, why):
    found = refusal(scope, ACCEPTED)
    assert (found is None) if why is None else (found is not None and why in found)


def test_a_refused_request_never_reaches_the_ui_and_gets_403():
    reached, sent = [], []

    async def app(scope, receive, send):
        reached.append(scope["type"])

    async def send(message):
        sent.append(message)

    guard = LocalOnly(app, ACCEPTED)
    asyncio.run(guard(_scope(host="attacker.example"), None, send))
    asyncio.run(guard(_scope(kind="websocket", origin="http://evil.example"), None, send))
    asyncio.run(guard({"type": "lifespan"}, None, send))
    asyncio.run(guard(_scope(), None, send))
    assert reached == ["lifespan", "http"]
    assert sent[0]["status"] == 403 and b"request guard: Host 'attacker.example'" in sent[1]["body"]
    assert sent[2] == {"type": "websocket.close", "code": 1008}
