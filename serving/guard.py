"""An ASGI middleware in front of every route: the optional API key and a cap on the body size.

- API key (`HEARA_API_KEY`): without `Authorization: Bearer <key>` a request gets 401, except the
  probes and the docs (OPEN_PATHS), which load balancers and Prometheus call without credentials,
  and the try-it page `/try` (static: a browser cannot send the header when it opens a page; the
  page sends the key it is given on its own calls, so `/recent`, which shows utterances, stays closed).
  Deny by default, so a route added later is protected too.
- Body cap: a POST body beyond what any valid request needs gets 413 before it is read into memory
  (a declared Content-Length is checked first; a chunked body is counted while it arrives).
- JSON only on the JSON routes: another Content-Type gets 415 (BentoML would try to parse forms and
  multipart bodies, and a multipart body without a boundary ends in a 500 there). A request without
  a Content-Type is taken as JSON.

Errors are JSON `{"error": "<what is wrong>"}`. Written as a plain ASGI class: BentoML's own
exception handler answers 401/403 with a generic text, which would hide the reason.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from training import env

OPEN_PATHS = frozenset(
    {"/healthz", "/livez", "/readyz", "/metrics", "/", "/docs.json", "/schema.json", "/try"}
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


class RequestGuard:
    def __init__(
        self, app: Any, *, max_body_bytes: int, json_paths: tuple[str, ...] = ("/classify",)
    ) -> None:
        """Built when a worker builds its app: the key is read from the environment then."""
        self.app = app
        self.json_paths = frozenset(json_paths)
        key = env.api_key()
        self.api_key = key.encode() if key else None
        self.max_body_bytes = max_body_bytes

    def _is_open(self, path: str) -> bool:
        return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)

    def _auth_error(self, headers: dict[bytes, bytes]) -> str | None:
        value = headers.get(b"authorization")
        if value is None:
            return "missing API key: send the header 'Authorization: Bearer <key>'"
        scheme, _, token = value.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.api_key):
            return "wrong API key in the Authorization header (expected 'Bearer <key>')"
        return None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        problem = self._auth_error(headers) if self.api_key and not self._is_open(scope["path"]) else None
        if problem is not None:
            return await _reply(send, 401, problem, {"WWW-Authenticate": "Bearer"})
        if scope["method"] not in _BODY_METHODS:
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
                    f"request body is over the limit of {limit} bytes (serve.max_texts x serve.max_chars)",
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)
