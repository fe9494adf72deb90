"""`heara bench serve`'s choices made before any server starts: which peers, what each is sent."""

from __future__ import annotations

import pytest

from training.bench.pool import build_pool
from training.bench.serve import PEERS, PRIME_TEXT, REQUESTS, _ratio, parse_peers
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
    assert _ratio({"heara_rps": 30.0, "flask_rps": 20.0}, "flask") == 1.5
    assert _ratio({"heara_rps": 30.0}, "mlflow") is None
    assert _ratio({"flask_rps": 20.0}, "flask") is None
    assert _ratio({"heara_rps": 30.0, "flask_rps": 0.0}, "flask") is None
