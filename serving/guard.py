"""An ASGI middleware in front of every route: the optional API key and a cap on the body size.

- API key (`HEARA_API_KEY`): without `Authorization: Bearer <key>` a request gets 401, except the
  probes and the docs (OPEN_PATHS), which load balancers and Prometheus call without credentials,
  and the pages `/try` and `/review` (static: a browser cannot send the header when it opens a page;
  a page sends the key it is given on its own calls, so `/recent` and `/review/next`, which show
  utterances, stay closed).
  The timeline page `/timeline/page` is open too; what it shows comes from `/timeline`, behind the key.
  Deny by default, so a route added later is protected too.
- Body cap: a POST body beyond what any valid request needs gets 413 before it is read into memory
  (a declared Content-Length is checked first; a chunked body is counted while it arrives).
- JSON only on the JSON routes: another Content-Type gets 415 (BentoML would try to parse forms and
  multipart bodies, and a multipart body without a boundary ends in a 500 there), and so does a
  charset other than UTF-8 (`charset=cp949` was silently read as UTF-8). A request without a
  Content-Type is taken as JSON. The body must be UTF-8 JSON without duplicate keys (400 naming the
  problem): with `{"texts": [...], "texts": [...]}` the last one won silently.
- Body time limit: the whole body must arrive within `serve.body_timeout_s` (408), so a client sending
  a byte a second cannot hold a worker (the head's limits are in serving/protocol.py).
- `/metrics` behind its own token when `HEARA_METRICS_TOKEN(_FILE)` is set (Prometheus sends it as
  `authorization: Bearer`); open otherwise, like the probes.
- `/docs.json` answers the service's own OpenAPI schema (serving/openapi.py), which matches its answers.

Errors are JSON `{"error": "<what is wrong>"}`. Written as a plain ASGI class: BentoML's own
exception handler answers 401/403 with a generic text, which would hide the reason.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable
from typing import Any

from training import env
from training.pii import mask_pii

OPEN_PATHS = frozenset(
    {"/healthz", "/livez", "/readyz", "/metrics", "/", "/docs.json", "/schema.json", "/try", "/review"}
    | {"/timeline/page"}  # a page like /try: its data (GET /timeline) needs the key
)
OPEN_PREFIXES = ("/static_content/", "/assets/")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def _reply(send: Any, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";")[0].strip().lower()
    return media in (b"", b"application/json") or media.endswith(b"+json")


def _charset(content_type: bytes) -> str | None:
    """The Content-Type's charset parameter, lower-case and unquoted; None when there is none."""
    for param in content_type.decode("latin-1").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def json_body_problem(body: bytes, content_type: bytes) -> tuple[int, str] | None:
    """(status, message) when a JSON route's body is not UTF-8 JSON without duplicate keys; else None."""
    charset = _charset(content_type)
    if charset not in (None, "utf-8", "utf8"):
        return 415, f"send JSON in UTF-8 (the Content-Type says charset={charset[:20]!r})"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return 400, f"the body is not valid UTF-8 (byte {exc.start} of {len(body)})"
    try:
        json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        return 400, f"duplicate key {mask_pii(str(exc.args[0]))[:40]!r} in the JSON body: send each key once"
    except json.JSONDecodeError as exc:
        return 400, f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return 400, "the body is not valid JSON: nested too deeply"
    return None


class RequestGuard:
    def __init__(
        self,
        app: Any,
        *,
        max_body_bytes: int,
        body_timeout_s: float = 10.0,
        json_paths: tuple[str, ...] = ("/classify",),
        openapi: Callable[[bool], dict] | None = None,
    ) -> None:
        """Built when a worker builds its app: the key and the metrics token are read then.
        openapi(keyed) -> the schema /docs.json answers (None: BentoML's own)."""
        self.app = app
        self.json_paths = frozenset(json_paths)
        key = env.api_key()
        self.api_key = key.encode() if key else None
        token = env.metrics_token()
        self.metrics_token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self._openapi = openapi
        self._openapi_body: bytes | None = None

    def _is_open(self, path: str) -> bool:
        return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)

    @staticmethod
    def _auth_error(headers: dict[bytes, bytes], expected: bytes, what: str) -> str | None:
        value = headers.get(b"authorization")
        if value is None:
            return f"missing {what}: send the header 'Authorization: Bearer <{what.split()[-1]}>'"
        scheme, _, token = value.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), expected):
            return f"wrong {what} in the Authorization header (expected 'Bearer <{what.split()[-1]}>')"
        return None

    def _access_problem(self, path: str, headers: dict[bytes, bytes]) -> str | None:
        if path == "/metrics":
            return (
                self._auth_error(headers, self.metrics_token, "metrics token") if self.metrics_token else None
            )
        if self.api_key and not self._is_open(path):
            return self._auth_error(headers, self.api_key, "API key")
        return None

    async def _docs(self, send: Any) -> None:
        if self._openapi_body is None:
            self._openapi_body = json.dumps(
                self._openapi(self.api_key is not None), ensure_ascii=False
            ).encode()
        raw = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._openapi_body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": self._openapi_body})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        problem = self._access_problem(scope["path"], headers)
        if problem is not None:
            return await _reply(send, 401, problem, {"WWW-Authenticate": "Bearer"})
        if scope["method"] not in _BODY_METHODS:
            if self._openapi is not None and scope["path"] == "/docs.json" and scope["method"] == "GET":
                return await self._docs(send)
            return await self.app(scope, receive, send)
        content_type = headers.get(b"content-type", b"")
        if scope["path"] in self.json_paths and not _is_json(content_type):
            return await _reply(
                send,
                415,
                f"send JSON with 'Content-Type: application/json' (got "
                f"{content_type.decode('latin-1')[:60]!r})",
            )

        limit = self.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _reply(send, 400, f"invalid Content-Length header: {declared[:40]!r}")
            if int(declared) > limit:
                return await _reply(
                    send,
                    413,
                    f"request body of {int(declared)} bytes is over the limit of "
                    f"{limit} bytes (serve.max_texts x serve.max_chars)",
                )
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:  # read the whole (bounded) body here, then replay it to the app
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        return await _reply(
                            send,
                            413,
                            f"request body is over the limit of {limit} bytes "
                            "(serve.max_texts x serve.max_chars)",
                        )
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            return await _reply(
                send,
                408,
                f"the request body did not arrive within {self.body_timeout_s:g} s (serve.body_timeout_s)",
            )
        body, replayed = b"".join(chunks), False
        if scope["path"] in self.json_paths:
            bad = json_body_problem(body, content_type)
            if bad is not None:
                return await _reply(send, *bad)

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)
