"""The OpenAPI schema /docs.json answers (serving/openapi.py): what the service really answers.
(tests/system/test_service_probe.py fuzzes the running service against it with schemathesis.)"""

from __future__ import annotations

import json
import re

import pytest

from serving.guard import OPEN_PATHS


@pytest.fixture(scope="module")
def specs() -> dict[bool, dict]:
    from serving.service import _openapi

    return {keyed: _openapi(keyed) for keyed in (True, False)}


def test_every_reference_resolves(specs: dict[bool, dict]) -> None:
    for spec in specs.values():
        text = json.dumps(spec)
        refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text))
        assert refs and refs <= set(spec["components"]["schemas"]), refs - set(spec["components"]["schemas"])


def test_classify_declares_every_answer(specs: dict[bool, dict]) -> None:
    op = specs[True]["paths"]["/classify"]["post"]
    assert op["requestBody"]["required"] is True
    assert set(op["responses"]) == {"200", "400", "401", "408", "413", "415", "500", "503"}
    assert "Retry-After" in op["responses"]["503"]["headers"]
    items = op["requestBody"]["content"]["application/json"]["schema"]["properties"]["texts"]["items"]
    assert "visible character" in items["description"] and items["maxLength"] == 500
    top_k = op["requestBody"]["content"]["application/json"]["schema"]["properties"]["top_k"]
    assert (top_k["minimum"], top_k["maximum"]) == (1, 10) and "top_k" in op["responses"]["400"][
        "description"
    ]
    error = specs[True]["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"] and "detail" in error["properties"]  # a list, as the service sends


def test_401_only_where_the_key_is_asked(specs: dict[bool, dict]) -> None:
    for path, ops in specs[True]["paths"].items():
        for op in ops.values():
            has_401 = "401" in op["responses"]
            assert has_401 == (path not in OPEN_PATHS or path == "/metrics"), path
    for path, ops in specs[False]["paths"].items():
        for op in ops.values():
            assert "401" not in op["responses"] or path == "/metrics", path  # no key: only the metrics token


def test_recent_limit_is_a_positive_integer(specs: dict[bool, dict]) -> None:
    op = specs[True]["paths"]["/recent"]["get"]
    (limit,) = op["parameters"]
    assert limit["schema"] == {"type": "integer", "minimum": 1}
    assert "422" not in op["responses"] and "400" in op["responses"]


def test_review_routes_declare_their_answers(specs: dict[bool, dict]) -> None:
    paths = specs[True]["paths"]
    assert "401" not in paths["/review"]["get"]["responses"]  # the page is open; its calls are not
    label = paths["/review/label"]["post"]
    assert set(label["responses"]) == {"200", "400", "401", "404", "408", "409", "413", "415"}
    body = label["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["id", "status", "reviewer"] and body["additionalProperties"] is False
    assert body["properties"]["status"]["enum"] == ["labeled", "skipped", "unsure"]
    nxt = paths["/review/next"]["get"]
    assert [p["name"] for p in nxt["parameters"]] == ["since"]
    assert set(nxt["responses"]) == {"200", "400", "401"}
