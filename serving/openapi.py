"""The OpenAPI schema at /docs.json, made to match what the service answers.

BentoML generates the schema from the API's input and output models and the FastAPI routes; it does
not know the request guard (serving/guard.py), the protocol limits (serving/protocol.py) or the
service's own error bodies, and its error models type `detail` as a string where the service returns
pydantic's list. `build()` starts from BentoML's schema and states what actually comes back:
- the request body of /classify is required, each text's rule (at least one visible character) is in
  its description, and so is what an out-of-range `top_k` gets (400);
- `/timeline`'s query (speaker_id or session_id, limit, since: 400 naming it) and its answer;
- every answer of every operation is declared, with its body: 400 (with `detail` for validation),
  401 (with WWW-Authenticate) on routes behind the API key, 408 (body too slow), 413, 415 and
  503 (with Retry-After) on /classify and /explain, 503 from /readyz while the model loads;
- `/recent?limit` is an integer of at least 1 (anything else: 400, not FastAPI's 422);
- the review routes: `/review/next?since`, and the body of `POST /review/label` (read by the route
  itself, so that a wrong field is a 400 naming it), with its 404 and 409.
tests/system/test_service_probe.py fuzzes the service against this schema with schemathesis.
"""

from __future__ import annotations

import copy
from typing import Any

from serving import schemas
from serving.guard import OPEN_PATHS

_REF = "#/components/schemas/{model}"
_MODELS = (
    schemas.ErrorResponse,
    schemas.ReloadResult,
    schemas.RecentPredictions,
    schemas.ExplainResponse,
    schemas.ReviewNext,
    schemas.ReviewRecorded,
)
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_TEXT = {"text/plain": {"schema": {"type": "string"}}}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ERROR_REF}},
    }
    if headers:
        out["headers"] = headers
    return out


def _json(ref_or_schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref_or_schema}}}


def _optional_query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}
}
WWW_AUTH = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}


def _timeline(
    paths: dict[str, Any], components: dict[str, Any], max_id_chars: int | None, max_entries: int | None
) -> None:
    """GET /timeline: its query (checked by the route itself: 400 naming the parameter) and answer."""
    timeline = paths.get("/timeline", {}).get("get")
    if timeline is None:
        return
    schema = schemas.Timeline.model_json_schema(ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    components["Timeline"] = schema

    def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}

    an_id = {"type": "string", "minLength": 1, **({"maxLength": max_id_chars} if max_id_chars else {})}
    limit = {"type": "integer", "minimum": 1, **({"maximum": max_entries} if max_entries else {})}
    timeline["parameters"] = [
        query(
            "speaker_id",
            "the speaker, as /classify was sent it (exactly one of speaker_id and session_id; printable "
            "characters only)",
            an_id,
        ),
        query("session_id", "the session, as /classify was sent it", an_id),
        query("limit", "at most this many predictions, the newest (default: timeline.max_entries)", limit),
        query("since", "only predictions at or after this time (ISO-8601)", {"type": "string"}),
    ]
    timeline["responses"]["200"] = _json({"$ref": _REF.format(model="Timeline")})
    timeline["responses"]["400"] = _error(
        "not exactly one of speaker_id and session_id, a bad id, limit or since (named in `error`)"
    )
    timeline["responses"]["503"] = _error("the prediction log cannot be read now", RETRY_AFTER)


def build(
    base: dict[str, Any],
    *,
    max_texts: int,
    max_chars: int,
    keyed: bool,
    max_id_chars: int | None = None,
    max_entries: int | None = None,
) -> dict[str, Any]:
    """BentoML's schema `base` (not modified) -> the service's schema. `keyed`: an API key is set, so
    the routes outside serving.guard.OPEN_PATHS may answer 401. `max_id_chars`, `max_entries`:
    params.yaml timeline's limits on GET /timeline's query (None: not stated)."""
    spec = copy.deepcopy(base)
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in _MODELS:
        schema = model.model_json_schema(ref_template=_REF)
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):  # BentoML's, with `detail: str`
        components.pop(name, None)
    spec["info"] = {
        "title": "Heara",
        "version": base.get("info", {}).get("version") or "1",
        "description": "Classify Korean utterances: label, probabilities and a danger flag per text, "
        "and with `top_k` the k most probable labels (for tasks with many labels, e.g. 359 counselling "
        "categories). Send `Authorization: Bearer <key>` when the service has an API key.",
    }
    paths = spec.setdefault("paths", {})
    for path, operations in paths.items():
        for method, op in operations.items():
            responses = op["responses"] = {str(k): v for k, v in op.get("responses", {}).items()}
            for code in ("404", "422"):
                responses.pop(code, None)
            if keyed and path not in OPEN_PATHS:
                responses["401"] = _error("missing or wrong API key", WWW_AUTH)
            if method.lower() == "post":
                responses["408"] = _error("the request body did not arrive within serve.body_timeout_s")
                responses["413"] = _error("request body over the limit (serve.max_texts x serve.max_chars)")
                responses["400"] = _error("bad request: the body or a header, named in `error`")
    for path in ("/healthz", "/livez"):
        if path in paths:
            paths[path]["get"]["responses"] = {"200": {"description": "alive", "content": _TEXT}}
    if "/readyz" in paths:
        paths["/readyz"]["get"]["responses"] = {
            "200": {"description": "ready", "content": _TEXT},
            "503": {"description": "not ready yet (loading or warming up the model)", "content": _TEXT},
        }
    if "/metrics" in paths:
        responses = {"200": {"description": "Prometheus text format", "content": _TEXT}}
        responses["401"] = _error(
            "missing or wrong metrics token (when HEARA_METRICS_TOKEN is set)", WWW_AUTH
        )
        paths["/metrics"]["get"]["responses"] = responses
    classify = paths.get("/classify", {}).get("post")
    if classify is not None:
        body = classify["requestBody"]
        body["required"] = True
        texts = body["content"]["application/json"]["schema"]["properties"]["texts"]
        texts["items"]["description"] = (
            f"an utterance of 1 to {max_chars} characters with at least one visible character (a text "
            "of only whitespace, control or format characters such as U+200B is a 400)"
        )
        texts["description"] = f"1 to {max_texts} utterances"
        r = classify["responses"]
        r["400"] = _error(
            "invalid body: not UTF-8 JSON, a duplicate key, a text breaking a rule, or a `top_k` that is "
            "not a whole number from 1 to serve.max_top_k (`detail[].loc` names the field)"
        )
        r["415"] = _error("not JSON, or a charset other than UTF-8")
        r["503"] = _error(
            "overloaded (retry after Retry-After) or the prediction log is unavailable", RETRY_AFTER
        )
        r["500"] = _error("an unexpected error (see the server log)")
    explain = paths.get("/explain", {}).get("post")
    if explain is not None:
        explain["requestBody"]["required"] = True
        r = explain["responses"]
        r["200"] = _json({"$ref": _REF.format(model="ExplainResponse")})
        r["400"] = _error("invalid body (as for /classify), or a label the model does not have")
        r["500"] = _error("an unexpected error (see the server log)")
        r["415"] = _error("not JSON, or a charset other than UTF-8")
        r["503"] = _error(
            "busy: explain.max_concurrency explanations run and explain.max_waiting wait", RETRY_AFTER
        )
    if "/reload" in paths:
        paths["/reload"]["post"]["responses"]["200"] = _json({"$ref": _REF.format(model="ReloadResult")})
    _timeline(paths, components, max_id_chars, max_entries)
    recent = paths.get("/recent", {}).get("get")
    if recent is not None:
        recent["parameters"] = [
            _optional_query(
                "limit",
                "at most this many predictions (a whole number of at least 1)",
                {"type": "integer", "minimum": 1},
            )
        ]
        recent["responses"]["200"] = _json({"$ref": _REF.format(model="RecentPredictions")})
        recent["responses"]["400"] = _error("limit is not a whole number of at least 1")
    _review(paths)
    return spec


def _review(paths: dict[str, Any]) -> None:
    """GET /review/next and POST /review/label (serving.schemas.review_answer states the rules)."""
    from serving.review_queue import REVIEWED

    nxt = paths.get("/review/next", {}).get("get")
    if nxt is not None:
        nxt["parameters"] = [
            _optional_query(
                "since",
                "count the items labeled since this time (ISO 8601, e.g. the reviewer's local midnight "
                "2026-11-28T00:00:00+09:00); default: UTC midnight",
                {"type": "string"},
            )
        ]
        nxt["responses"]["200"] = _json({"$ref": _REF.format(model="ReviewNext")})
        nxt["responses"]["400"] = _error("since is not an ISO 8601 time")
    label = paths.get("/review/label", {}).get("post")
    if label is not None:
        body = {
            "type": "object",
            "properties": {
                "id": {"type": "integer", "minimum": 1, "description": "the review item's id"},
                "status": {"type": "string", "enum": list(REVIEWED)},
                "label": {
                    "type": "string",
                    "nullable": True,
                    "description": "one of the served model's labels: required with labeled, a guess "
                    "with unsure, none with skipped",
                },
                "reviewer": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": schemas.MAX_REVIEWER_CHARS,
                    "description": "who answered",
                },
            },
            "required": ["id", "status", "reviewer"],
            "additionalProperties": False,
        }
        label["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        r = label["responses"]
        r["200"] = _json({"$ref": _REF.format(model="ReviewRecorded")}, "recorded")
        r["400"] = _error(
            "invalid body: `detail[].loc` names the field (a label the served model does not have, no "
            "reviewer, an unknown status, ...)"
        )
        r["404"] = _error("no review item has this id")
        r["409"] = _error("the item was reviewed already (or exported)")
        r["415"] = _error("not JSON, or a charset other than UTF-8")
