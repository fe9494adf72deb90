"""serving.timeline: ids as stored, the escalation rule (live and over a stored history), GET /timeline's
query and answer; and the id fields of /classify's request model (serving.schemas)."""

from __future__ import annotations

import hashlib
import hmac
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from serving import schemas
from serving.timeline import Escalations, IdKeys, Rule, body, episodes, escalated_now, parse_query

RULE = Rule(danger_count=3, window_s=600.0)  # 3 danger predictions within 10 minutes
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


# Ids ---------------------------------------------------------------------------------------------


def test_a_keyed_id_is_its_truncated_hmac_and_the_key_is_never_shown():
    keys = IdKeys("s3cret-salt")
    expected = hmac.new(b"s3cret-salt", "환자-17".encode(), hashlib.sha256).hexdigest()[:16]
    assert keys.key("환자-17") == expected and len(expected) == 16
    assert keys.key("환자-17") != IdKeys("other-salt").key("환자-17")  # another key: other pseudonyms
    assert keys.keys({"speaker_id": "a", "device_id": "d"}) == {
        "speaker_id": keys.key("a"),
        "session_id": None,
        "device_id": keys.key("d"),
    }
    assert "s3cret" not in repr(keys) and keys.keyed


def test_without_a_key_an_id_is_stored_as_given_but_masked():
    keys = IdKeys(None)
    assert not keys.keyed
    assert keys.key("patient-17") == "patient-17"
    assert "1234" not in keys.key("010-1234-5678") and keys.key(None) is None


def test_the_salt_is_a_secret_read_like_the_api_key(monkeypatch, tmp_path):
    from serving import supervisor
    from training import env
    from training.errors import ConfigError

    for name in ("HEARA_API_KEY", "HEARA_METRICS_TOKEN", "HEARA_ID_SALT"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    assert env.id_salt() is None
    monkeypatch.setenv("HEARA_ID_SALT", "pepper")
    hidden = supervisor.hide_secrets(tmp_path)  # `heara serve` hands it to the workers as a file
    assert "HEARA_ID_SALT" not in hidden and "pepper" not in hidden.values()
    salt_file = Path(hidden["HEARA_ID_SALT_FILE"])
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    monkeypatch.delenv("HEARA_ID_SALT")
    monkeypatch.setenv("HEARA_ID_SALT_FILE", str(salt_file))
    assert env.id_salt() == "pepper"
    salt_file.chmod(0o644)
    with pytest.raises(ConfigError, match="HEARA_ID_SALT_FILE"):
        env.id_salt()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "visible"),
        ("   ", "visible"),
        ("x" * 65, "at most 64"),
        ("a\nb", "printable"),
        ("a\x00b", "printable"),
        ("a\u200bb", "printable"),  # zero-width space: a format character
    ],
)
def test_bad_ids_are_named(value, words):
    assert words in schemas.id_problem(value, 64)
    Request = schemas.request_model(3, 10, 5, max_id_chars=64)
    with pytest.raises(ValidationError) as err:
        Request(texts=["안녕"], speaker_id=value)
    assert err.value.errors()[0]["loc"] == ("speaker_id",)


def test_good_ids_pass_and_are_optional():
    Request = schemas.request_model(3, 10, 5, max_id_chars=64)
    r = Request(texts=["안녕"], speaker_id="환자 17", session_id="s" * 64, device_id="mic-1")
    assert (r.speaker_id, r.device_id) == ("환자 17", "mic-1")
    assert Request(texts=["안녕"]).speaker_id is None
    with pytest.raises(ValidationError):
        Request(texts=["안녕"], speaker_id=17)  # a JSON string, not a number


def test_the_body_cap_leaves_room_for_three_ids_of_escaped_characters():
    assert schemas.max_body_bytes(3, 10, 64) - schemas.max_body_bytes(3, 10) >= 3 * 64 * 12


# The rule ----------------------------------------------------------------------------------------


def entries(minutes_danger: list[tuple[float, bool]]) -> list[dict]:
    return [
        {"ts": (T0 + timedelta(minutes=m)).isoformat(timespec="microseconds"), "danger": d}
        for m, d in minutes_danger
    ]


def live(minutes_danger: list[tuple[float, bool]], rule: Rule = RULE) -> list[bool]:
    esc = Escalations(rule, max_speakers=10)
    return [esc.observe("s", (T0 + timedelta(minutes=m)).timestamp(), [d])[0] for m, d in minutes_danger]


HISTORY = [
    (0, True),
    (1, False),
    (2, True),
    (5, True),  # the third within 10 minutes: escalation
    (6, True),  # same burst: extends the episode, no new escalation
    (14, True),  # within 10 minutes of the episode's last danger (6): still the same episode
    (30, True),  # 16 minutes after the episode's last danger: it is over
    (31, True),
    (40, True),  # 30, 31, 40: a second episode
]


def test_one_burst_is_one_escalation_and_a_later_burst_another():
    flags = live(HISTORY)
    assert [m for (m, _), f in zip(HISTORY, flags) if f] == [5, 40]
    found = episodes(entries(HISTORY), RULE)
    assert [(e["first_danger"][11:16], e["escalated_at"][11:16], e["last_danger"][11:16]) for e in found] == [
        ("09:00", "09:05", "09:14"),
        ("09:30", "09:40", "09:40"),
    ]
    assert [e["dangers"] for e in found] == [5, 3]


def test_live_and_stored_rule_agree():
    rows = entries(HISTORY)
    episodes(rows, RULE)
    assert [r["escalation"] for r in rows] == live(HISTORY)


def test_danger_every_few_minutes_is_one_long_episode():
    stream = [(m, True) for m in range(0, 120, 9)]  # never 3 within 10 minutes after the first burst
    assert live([(-2, True), (-1, True)] + stream).count(True) == 1


def test_the_window_includes_both_ends_and_not_a_second_more():
    assert live([(0, True), (5, True), (10, True)]) == [False, False, True]
    assert live([(0, True), (5, True), (10.02, True)]) == [False, False, False]


def test_a_count_of_one_escalates_every_isolated_danger():
    rule = Rule(danger_count=1, window_s=60.0)
    assert live([(0, True), (0.5, True), (5, True), (6, False)], rule) == [True, False, True, False]


def test_a_request_of_several_texts_counts_each_danger_once():
    esc = Escalations(RULE, max_speakers=10)
    assert esc.observe("s", T0.timestamp(), [True, False, True, True, True]) == [
        False,
        False,
        False,
        True,
        False,
    ]


def test_the_speakers_are_bounded_least_recently_seen_first_forgotten():
    esc = Escalations(RULE, max_speakers=2)
    t = T0.timestamp()
    esc.observe("a", t, [True, True])
    esc.observe("b", t, [True])
    esc.observe("a", t + 1, [False])  # no danger: touches nothing
    esc.observe("c", t + 2, [True])  # a was seen least recently: forgotten
    assert len(esc) == 2
    assert esc.observe("a", t + 3, [True]) == [False]  # starts again from one
    assert esc.observe("c", t + 4, [True, True]) == [False, True]


def test_a_clock_that_steps_back_is_no_time_passing():
    esc = Escalations(RULE, max_speakers=2)
    t = T0.timestamp()
    assert esc.observe("s", t, [True]) + esc.observe("s", t - 3600, [True]) + esc.observe("s", t, [True]) == [
        False,
        False,
        True,
    ]


# GET /timeline ----------------------------------------------------------------------------------


def test_the_answer_scores_danger_and_says_whether_the_speaker_escalated():
    rows = entries(HISTORY)
    for r in rows:
        r["scores"] = {"normal": 0.1, "emergency": 0.7, "distress": 0.2} if r["danger"] else {"normal": 0.9}
    out = body(rows, RULE, danger_labels=("emergency", "distress"), danger_threshold=0.5, now=T0)
    assert out["escalation"] and len(out["episodes"]) == 2 and out["count"] == len(HISTORY)
    assert [e["danger_score"] for e in out["entries"][:2]] == [0.7, 0.0]
    assert out["rule"] == {"danger_count": 3, "within_minutes": 10.0}
    assert escalated_now(out["episodes"], RULE, T0 + timedelta(minutes=50))  # the last danger: at 40
    assert not escalated_now(out["episodes"], RULE, T0 + timedelta(minutes=50, seconds=1))
    calm = body([], RULE, danger_labels=("emergency",), danger_threshold=0.5, now=T0)
    assert not calm["escalation"] and calm["episodes"] == [] and not calm["escalated_now"]


def query(**kw):
    args = {"speaker_id": None, "session_id": None, "limit": None, "since": None}
    return parse_query(**{**args, **kw}, max_id_chars=64, max_entries=100)


def test_a_timeline_query_is_checked_naming_the_parameter():
    q = query(speaker_id="환자-17", limit="5", since="2026-11-28T09:00:00+09:00")
    assert (q.column, q.value, q.limit, q.since.utcoffset()) == (
        "speaker_id",
        "환자-17",
        5,
        timedelta(hours=9),
    )
    assert query(session_id="s1").limit == 100
    for kw, words in [
        ({}, "exactly one of speaker_id and session_id"),
        ({"speaker_id": "a", "session_id": "b"}, "exactly one"),
        ({"speaker_id": "a\tb"}, "speaker_id: an id may hold printable"),
        ({"session_id": "x" * 65}, "session_id: an id may have at most 64"),
        ({"speaker_id": "a", "limit": "0"}, "limit must be a whole number from 1 to 100"),
        ({"speaker_id": "a", "limit": "101"}, "limit"),
        ({"speaker_id": "a", "since": "yesterday"}, "since must be an ISO-8601 time"),
    ]:
        with pytest.raises(ValueError, match=words):
            query(**kw)
