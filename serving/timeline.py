"""Speakers and sessions: the ids /classify carries, the escalation rule, and GET /timeline's answer.

Ids. A /classify request may name who spoke (`speaker_id`), in which conversation (`session_id`) and
on which device (`device_id`); they apply to every text of the request and go into the prediction log
beside its predictions. With a secret key (`HEARA_ID_SALT` or `HEARA_ID_SALT_FILE`, training.env) an
id is stored as HMAC-SHA256(key, id), its first 16 hex digits (as `text_hash`): the store never holds
the id, and without the key nobody can test a guessed id (a phone number, say) against it. Without a key
the id is stored as given, PII-masked first (training.pii.mask_pii), so a phone number sent as an id
is never stored; an operator who wants pseudonyms sets the key. GET /timeline looks an id up the same
way, so the caller always speaks in the ids it sent. Changing the key orphans the stored timelines.

The escalation rule (params.yaml `timeline.escalation`): a speaker escalates when a danger prediction
makes `danger_count` danger predictions of that speaker within `within_minutes` (the window ends at that
prediction, both ends included). That prediction opens an episode; a further danger prediction within
`within_minutes` of the episode's last one extends it (it is not a new escalation); one that comes later
finds the episode closed, and opens a new one only when it reaches the count again. So one burst of
danger is one escalation, however long it lasts: /classify answers `escalation: true` on the prediction
that opens the episode only (a caller can alert on every `true` without de-duplicating) and
`heara_escalations_total` counts episodes. The same `_Track` applies the rule as predictions are made
(`Escalations`, in memory) and over the stored history (`episodes`, for GET /timeline), so both agree
on what the store holds.

The live state is an LRU of at most `timeline.max_speakers` speakers (the times of each one's last
`danger_count` danger predictions), per service worker: with `serve.workers` > 1 a speaker whose requests
reach several workers is judged per worker, and GET /timeline (from the shared store) is the reference.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from training.pii import mask_pii

ID_FIELDS = ("speaker_id", "session_id", "device_id")
ID_HASH_HEX = 16  # hex digits kept of the HMAC, as text_hash keeps of its SHA-256


class IdKeys:
    """Turns the ids of a request into what is stored and looked up (see the module's docstring).
    The key is never shown: not in repr, logs or answers."""

    __slots__ = ("_mac",)

    def __init__(self, salt: str | None) -> None:
        # keyed once: each id then copies the keyed state (a third of a fresh hmac.new's time)
        self._mac = hmac.new(salt.encode("utf-8"), digestmod=hashlib.sha256) if salt else None

    @property
    def keyed(self) -> bool:
        return self._mac is not None

    def __repr__(self) -> str:
        return f"IdKeys(keyed={self.keyed})"

    def key(self, value: str | None) -> str | None:
        """One id as stored: its keyed HMAC, or the id PII-masked; None stays None."""
        if value is None:
            return None
        if self._mac is None:
            return mask_pii(value)
        mac = self._mac.copy()
        mac.update(value.encode("utf-8"))
        return mac.hexdigest()[:ID_HASH_HEX]

    def keys(self, ids: Mapping[str, str | None]) -> dict[str, str | None]:
        """The request's ids ({speaker_id, session_id, device_id}) as stored."""
        return {name: self.key(ids.get(name)) for name in ID_FIELDS}


@dataclass(frozen=True, slots=True)
class Rule:
    """`danger_count` danger predictions within `window_s` seconds (params.yaml timeline.escalation)."""

    danger_count: int
    window_s: float

    @classmethod
    def from_params(cls, escalation: Any) -> Rule:
        return cls(int(escalation.danger_count), float(escalation.within_minutes) * 60.0)

    def as_dict(self) -> dict[str, float]:
        return {"danger_count": self.danger_count, "within_minutes": self.window_s / 60.0}


class _Track:
    """One speaker under the rule: the times of its last `danger_count` danger predictions (seconds),
    and whether an episode is open."""

    __slots__ = ("times", "open")

    def __init__(self, rule: Rule) -> None:
        self.times: deque[float] = deque(maxlen=rule.danger_count)
        self.open = False

    def danger(self, t: float, rule: Rule) -> bool:
        """A danger prediction at `t`: True when it opens an episode (False when it extends the open
        one or reaches no count). A clock that stepped back is taken as no time having passed."""
        if self.times and t < self.times[-1]:
            t = self.times[-1]
        if self.open and t - self.times[-1] > rule.window_s:
            self.open = False  # the episode ended with the last danger prediction
        self.times.append(t)
        if self.open:
            return False
        self.open = len(self.times) == rule.danger_count and t - self.times[0] <= rule.window_s
        return self.open


class Escalations:
    """The rule applied as the service answers: per speaker (its stored id), in memory, at most
    `max_speakers` of them (the one seen least recently is forgotten first). Called from the service's
    event loop only: no lock. A request without a danger prediction touches nothing."""

    def __init__(self, rule: Rule, max_speakers: int) -> None:
        self.rule = rule
        self.max_speakers = max(1, int(max_speakers))
        self._tracks: OrderedDict[str, _Track] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tracks)

    def observe(self, speaker: str, t: float, dangers: Sequence[bool]) -> list[bool]:
        """One request's predictions of `speaker` at time `t` (seconds since the epoch), in order:
        per prediction, whether it opened an escalation episode."""
        if not any(dangers):
            return [False] * len(dangers)
        track = self._tracks.pop(speaker, None) or _Track(self.rule)
        self._tracks[speaker] = track  # now the most recently seen
        if len(self._tracks) > self.max_speakers:
            self._tracks.popitem(last=False)
        return [track.danger(t, self.rule) if danger else False for danger in dangers]


def _seconds(ts: str) -> float:
    stamp = datetime.fromisoformat(ts)
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def episodes(entries: Sequence[dict[str, Any]], rule: Rule) -> list[dict[str, Any]]:
    """The rule over a stored timeline (entries oldest first, each with `ts` and `danger`): one dict per
    episode with `first_danger` (the earliest of the danger predictions that made it), `escalated_at`
    (the prediction that opened it), `last_danger` and `dangers` (how many danger predictions it spans).
    Marks the opening entry `escalation: true` and every other entry false."""
    track, recent, out = _Track(rule), deque(maxlen=rule.danger_count), []
    for entry in entries:
        entry["escalation"] = False
        if not entry["danger"]:
            continue
        recent.append(entry["ts"])
        if track.danger(_seconds(entry["ts"]), rule):
            entry["escalation"] = True
            out.append(
                {
                    "first_danger": recent[0],
                    "escalated_at": entry["ts"],
                    "last_danger": entry["ts"],
                    "dangers": rule.danger_count,
                }
            )
        elif track.open:
            out[-1]["last_danger"] = entry["ts"]
            out[-1]["dangers"] += 1
    return out


def escalated_now(found: Sequence[dict[str, Any]], rule: Rule, now: datetime) -> bool:
    """Whether the latest of the episodes `found` is still open at `now`: its last danger prediction is
    within the rule's window before `now` (a danger prediction now would extend it)."""
    return bool(found) and now.timestamp() - _seconds(found[-1]["last_danger"]) <= rule.window_s


def body(
    entries: list[dict[str, Any]],
    rule: Rule,
    *,
    danger_labels: Sequence[str],
    danger_threshold: float,
    now: datetime,
) -> dict[str, Any]:
    """GET /timeline's answer from `PredictionLog.timeline` rows: each entry with its `danger_score` (the
    highest probability among the danger labels) and `escalation`, the episodes, `escalation` (any
    episode in what is shown), `escalated_now` and the rule and danger settings it was judged by."""
    for entry in entries:
        entry["danger_score"] = max((entry["scores"].get(lab, 0.0) for lab in danger_labels), default=0.0)
    found = episodes(entries, rule)
    return {
        "entries": entries,
        "count": len(entries),
        "episodes": found,
        "escalation": bool(found),
        "escalated_now": escalated_now(found, rule, now),
        "rule": rule.as_dict(),
        "danger_labels": list(danger_labels),
        "danger_threshold": danger_threshold,
    }


@dataclass(frozen=True, slots=True)
class Query:
    """A valid GET /timeline query: whose timeline (`column` = `value`, as the caller sent it), how many
    predictions at most and from when."""

    column: str
    value: str
    limit: int
    since: datetime | None


def parse_query(
    *,
    speaker_id: str | None,
    session_id: str | None,
    limit: str | None,
    since: str | None,
    max_id_chars: int,
    max_entries: int,
) -> Query:
    """GET /timeline's query string, checked like /classify's body: raises ValueError with one line
    naming the parameter (the service answers 400 with it). Exactly one of speaker_id and session_id;
    `limit` 1..max_entries (default max_entries); `since` an ISO-8601 time (naive means UTC)."""
    from serving.schemas import id_problem

    given = {name: v for name, v in (("speaker_id", speaker_id), ("session_id", session_id)) if v is not None}
    if len(given) != 1:
        raise ValueError("give exactly one of speaker_id and session_id")
    ((column, value),) = given.items()
    problem = id_problem(value, max_id_chars)
    if problem:
        raise ValueError(f"{column}: {problem}")
    if limit is None:
        count = max_entries
    elif limit.isdigit() and 1 <= int(limit) <= max_entries:
        count = int(limit)
    else:
        raise ValueError(
            f"limit must be a whole number from 1 to {max_entries} (timeline.max_entries), got {limit[:20]!r}"
        )
    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            raise ValueError(
                "since must be an ISO-8601 time such as 2026-11-28T09:00:00+00:00, "
                f"got {mask_pii(since)[:40]!r}"
            ) from None
    return Query(column, value, count, start)
