"""`heara bench serve`'s choices made before any server starts: which peers, what each is sent."""

from __future__ import annotations

import pytest

from training.bench.pool import build_pool
from training.bench.serve import PEERS, PRIME_TEXT, REQUESTS, _ratio, parse_durabilities, parse_peers
from training.errors import ConfigError


def test_peers_are_parsed_in_the_given_order_once() -> None:
    assert parse_peers("heara,flask,mlflow") == PEERS
    assert parse_peers(" mlflow , heara,mlflow") == ("mlflow", "heara")
    assert parse_peers(["flask"]) == ("flask",)


@pytest.mark.parametrize("bad", ["", "heara,bento", "torchserve"])
def test_an_unknown_peer_is_a_user_mistake(bad: str) -> None:
    with pytest.raises(ConfigError, match="choose among heara, flask, mlflow"):
        parse_peers(bad)


def test_each_peer_gets_one_text_per_request_in_its_own_format() -> None:
    assert set(REQUESTS) == set(PEERS)
    assert REQUESTS["heara"][0] == REQUESTS["flask"][0] == "/classify"
    assert REQUESTS["heara"][1]("가") == REQUESTS["flask"][1]("가") == {"texts": ["가"]}
    # MLflow's scoring server: a DataFrame with the `text` column the pyfunc reads (training/model/pyfunc.py)
    assert REQUESTS["mlflow"] == ("/invocations", REQUESTS["mlflow"][1])
    assert REQUESTS["mlflow"][1]("가") == {"dataframe_records": [{"text": "가"}]}


def test_the_first_request_is_not_one_of_the_measured_texts() -> None:
    assert PRIME_TEXT not in build_pool()


def test_ratios_need_both_servers() -> None:
    assert _ratio({"heara_rps": 30.0, "flask_rps": 20.0}, "heara_rps", "flask_rps") == 1.5
    assert _ratio({"heara_rps": 30.0}, "heara_rps", "mlflow_rps") is None
    assert _ratio({"flask_rps": 20.0}, "heara_rps", "flask_rps") is None
    assert _ratio({"heara_rps": 30.0, "flask_rps": 0.0}, "heara_rps", "flask_rps") is None


def test_durabilities_are_parsed_and_validated_before_anything_starts() -> None:
    assert parse_durabilities(None, "durable") == ("durable",)
    assert parse_durabilities("async, durable,async", "durable") == ("async", "durable")
    assert parse_durabilities(["durable"], "async") == ("durable",)
    for bad in ("", "async,fsync"):
        with pytest.raises(ConfigError, match="predlog_durability|async, durable"):
            parse_durabilities(bad, "durable")
