"""The HTTP API's request and response shapes, and the pure helpers that fill them.

Input safety lives in the request model: BentoML validates the body against it before any service
code runs and answers 400 with pydantic's error list (`detail[].loc` names the field and the text's
index, `detail[].msg` the problem) for invalid JSON, a missing or unknown key, wrong types, too
many or too few texts, empty or blank texts, texts over the character limit and a `top_k` outside
1..`serve.max_top_k`. The limits also appear in the OpenAPI schema (maxItems, maxLength, maximum).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictInt,
    StrictStr,
    StringConstraints,
    create_model,
    model_serializer,
)

from training.pii import mask_pii

# What runs the model: torch in bf16 (a GPU), torch in fp32 or ONNX Runtime with int8 weights (a CPU).
Runtime = Literal["torch-bf16", "torch-fp32", "onnx-int8", "sklearn"]
EXAMPLE_TEXTS = ["할머니가 쓰러지셨어요 빨리 와주세요", "오늘 점심은 맛있었어요"]
# Where the model host puts a prediction's monitoring features (serving.inference): for the prediction log
# only. `pop_features` takes them out before anything is answered or copied.
FEATURES_KEY = "_monitor"
# A caller's X-Request-ID is kept only in a format that cannot carry text: a UUID, or 16 to 64 hex digits
# (W3C trace ids, our own ids). Anything else (a phone number sent as an id, say) is replaced.
_REQUEST_ID = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{16,64}"
)
# New request ids: 16 random hex digits drawn once per process, then a counter. As unique as uuid4 across
# processes and restarts for any realistic traffic, and without a system call per request (uuid4 was
# 3.6 % of the service's CPU in a profile under load, docs/benchmarks.md).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


# What preprocessing deletes before the model sees a text: whitespace, control (Cc), format (Cf: zero-width
# space, soft hyphen, BOM, tags), surrogate, private-use and unassigned characters. A text of only these
# would reach the model as an empty string, which it scores like any other input (a false alarm).
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def _not_blank(text: str) -> str:
    if all(ch.isspace() or unicodedata.category(ch) in _INVISIBLE for ch in text):
        raise ValueError(
            "text is blank: no visible characters (only whitespace, control or format characters)"
        )
    return text


def id_problem(value: str, max_chars: int) -> str | None:
    """What is wrong with a speaker, session or device id (None: nothing): 1 to `max_chars` printable
    characters (no control, format or line-break characters), not only spaces."""
    if not value or value.isspace():
        return "an id must have at least one visible character"
    if len(value) > max_chars:
        return f"an id may have at most {max_chars} characters (timeline.max_id_chars), got {len(value)}"
    if not value.isprintable():
        return "an id may hold printable characters only (no control, format or line-break characters)"
    return None


def _id_type(max_chars: int) -> Any:
    def valid(value: str) -> str:
        problem = id_problem(value, max_chars)
        if problem:
            raise ValueError(problem)
        return value

    return Annotated[
        StrictStr,
        AfterValidator(valid),
        Field(max_length=max_chars, description=f"1 to {max_chars} printable characters"),
    ]


def request_model(max_texts: int, max_chars: int, max_top_k: int, max_id_chars: int = 64) -> type[BaseModel]:
    """The /classify body `{"texts": [...], "top_k": optional, "speaker_id"/"session_id"/"device_id":
    optional}`: 1..max_texts non-blank strings of 1..max_chars characters, optionally a whole number
    1..max_top_k (a JSON integer: not "3", 3.0 or true) and ids of 1..max_id_chars printable characters
    (serving.timeline: they apply to every text of the request); unknown keys are rejected."""
    text = Annotated[str, StringConstraints(min_length=1, max_length=max_chars), AfterValidator(_not_blank)]
    texts = Annotated[
        list[text],
        Field(
            min_length=1,
            max_length=max_texts,
            examples=[EXAMPLE_TEXTS],
            description=f"1 to {max_texts} utterances, each 1 to {max_chars} characters",
        ),
    ]
    top_k = Annotated[
        StrictInt,
        Field(
            ge=1,
            le=max_top_k,
            description=f"also answer each text's `top_k` most probable labels (`top`), 1 to {max_top_k} "
            "(serve.max_top_k); fewer when the model has fewer labels",
        ),
    ]
    ids = {
        name: (_id_type(max_id_chars) | None, Field(None, description=f"optional: {meaning}"))
        for name, meaning in (
            ("speaker_id", "who spoke (GET /timeline?speaker_id=; the escalation rule counts per speaker)"),
            ("session_id", "the conversation the texts belong to (GET /timeline?session_id=)"),
            ("device_id", "the device that heard them"),
        )
    }
    return create_model(
        "ClassifyRequest",
        __config__=ConfigDict(extra="forbid"),
        texts=(texts, ...),
        top_k=(top_k | None, None),
        **ids,
    )


def explain_request_model(max_chars: int) -> type[BaseModel]:
    """The /explain body `{"text": "...", "label": optional, "granularity": optional}`: one text under the
    same rules as a /classify text; unknown keys are rejected. Whether `label` is one of the served model's
    labels is checked when the model answers (the model can change under a running service)."""
    text = Annotated[
        str,
        StringConstraints(min_length=1, max_length=max_chars),
        AfterValidator(_not_blank),
        Field(description=f"one utterance of 1 to {max_chars} characters", examples=[EXAMPLE_TEXTS[0]]),
    ]
    label = Annotated[
        str | None,
        Field(None, max_length=200, description="the label to explain (default: the predicted one)"),
    ]
    granularity = Annotated[
        Literal["word", "morpheme"] | None,
        Field(None, description="word (eojeol) or morpheme (Kiwi); default: explain.granularity"),
    ]
    return create_model(
        "ExplainRequest",
        __config__=ConfigDict(extra="forbid"),
        text=(text, ...),
        label=(label, None),
        granularity=(granularity, None),
    )


def max_body_bytes(max_texts: int, max_chars: int, max_id_chars: int = 0) -> int:
    """The largest body a valid request can need: every character JSON-escaped as a surrogate pair
    (12 bytes), plus quotes, commas and the envelope (with three ids of `max_id_chars`). Bigger bodies
    are refused (413) unread."""
    return max_texts * (max_chars * 12 + 4) + 3 * (max_id_chars * 12 + 4) + 1024


class LabelScore(BaseModel):
    label: str
    score: float = Field(description="its probability")


class TextPrediction(BaseModel):
    label: str = Field(description="the most probable label")
    score: float = Field(description="its probability")
    scores: dict[str, float] = Field(description="probability of every label")
    danger: bool = Field(
        description="label is a danger label and score reaches the danger threshold (multi-label models: "
        "any danger label among `labels`)"
    )
    model_version: str = Field(description="registry version of the model that predicted this")
    reply: str | None = Field(
        None,
        description="a reply for the label from `serve.responses` (the same text "
        "always gets the same one); null when the label has none, "
        "absent when no replies are configured",
    )
    labels: list[LabelScore] | None = Field(
        None,
        description="multi-label models: every label whose probability reaches its own threshold (tuned on "
        "the validation split), most probable first; possibly empty. Absent for single-label models",
    )
    top: list[LabelScore] | None = Field(
        None,
        description="the `top_k` most probable labels, most probable first (ties in the model's label "
        "order); absent when the request has no `top_k`",
    )
    escalation: bool | None = Field(
        None,
        description="with a `speaker_id`: true on the danger prediction that opens an escalation episode "
        "(timeline.escalation: danger_count danger predictions of the speaker within within_minutes), "
        "false otherwise; absent without a `speaker_id`",
    )

    @model_serializer(mode="wrap")
    def _reply_only_when_configured(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out = handler(self)
        # not configured / not asked for / single-label / no speaker_id: left out
        for optional in ("reply", "top", "labels", "escalation"):
            if optional not in self.model_fields_set:
                out.pop(optional, None)
        return out


class ClassifyResponse(BaseModel):
    request_id: str
    predictions: list[TextPrediction] = Field(description="one per input text, in input order")


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str
    version: str | None
    run_id: str | None
    uri: str
    metrics: dict[str, float]
    trained_at: str | None
    registered_at: str | None
    labels: list[str]
    danger_labels: list[str]
    danger_threshold: float
    device: str
    dtype: str
    runtime: Runtime = Field(
        description="what runs the model: torch-fp32, torch-bf16, onnx-int8 or sklearn (the linear family)"
    )
    topology: str = Field(description="serve.topology: single (one process) or split (front + inference)")


def is_danger(label: str, score: float, danger_labels: Iterable[str], threshold: float) -> bool:
    return label in set(danger_labels) and score >= threshold


def _with_danger(s: dict[str, Any], danger_labels: Sequence[str], threshold: float) -> dict[str, Any]:
    """One classifier answer with its danger flag. A multi-label answer's `labels` (names, each past its
    own threshold) become {label, score} and it is a danger when any of them is a danger label: the
    model's per-label threshold already says "this label applies", so serve.danger_threshold is not
    applied on top."""
    if "labels" not in s:
        return {**s, "danger": is_danger(s["label"], s["score"], danger_labels, threshold)}
    passing = [{"label": lab, "score": s["scores"][lab]} for lab in s["labels"]]
    return {**s, "labels": passing, "danger": any(p["label"] in set(danger_labels) for p in passing)}


def choose_reply(text: str, candidates: Sequence[str]) -> str | None:
    """One of `candidates`, picked by the text's SHA-256: the same text always gets the same reply
    (across processes and restarts, unlike `hash()`); None when there are no candidates."""
    if not candidates:
        return None
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return candidates[int.from_bytes(digest[:8], "big") % len(candidates)]


def to_predictions(
    scored: Sequence[dict[str, Any]],
    *,
    danger_labels: Sequence[str],
    threshold: float,
    model_version: str,
    texts: Sequence[str] | None = None,
    responses: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Classifier output ({label, score, scores}) -> TextPrediction fields, danger flag added; with a
    non-empty `responses` table ({label: reply candidates}) and the `texts`, a `reply` per text too."""
    out = [{**_with_danger(s, danger_labels, threshold), "model_version": model_version} for s in scored]
    if responses:
        if texts is None or len(texts) != len(out):
            raise ValueError("to_predictions: replies need the texts, one per prediction")
        for p, text in zip(out, texts):
            p["reply"] = choose_reply(text, responses.get(p["label"], ()))
    return out


def pop_features(predictions: Sequence[dict[str, Any]]) -> list[dict[str, Any] | None] | None:
    """Remove each prediction's monitoring features (FEATURES_KEY; the dicts are changed in place, each
    belongs to one request) and return them in order; None when the model host captured none."""
    features = [p.pop(FEATURES_KEY, None) for p in predictions]
    return features if any(f is not None for f in features) else None


def top_labels(scores: Mapping[str, float], k: int) -> list[dict[str, Any]]:
    """The `k` most probable labels of one text's `scores` ({label: probability}, in the model's label
    order), most probable first; equal scores keep that order. All of them when there are fewer."""
    ranked = sorted(scores.items(), key=lambda item: -item[1])  # stable: ties in label order
    return [{"label": label, "score": score} for label, score in ranked[:k]]


def with_top(predictions: Sequence[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """/classify's answer with `top_k`: each prediction with its `top` list added (new dicts; the others'
    fields as they were). Computed from `scores`, after the model answered: the same in both topologies,
    and the inference service and its batches never see `top_k`."""
    return [{**p, "top": top_labels(p["scores"], k)} for p in predictions]


def request_id(header: str | None) -> str:
    """The caller's X-Request-ID when it is a UUID or 16-64 hex digits that no personal-data pattern
    matches (a 16-digit card number is hex too), so logs join across systems; else a new one."""
    if header and _REQUEST_ID.fullmatch(header) and mask_pii(header) == header:
        return header
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


class Attribution(BaseModel):
    text: str = Field(description="the word (eojeol) or morpheme")
    start: int = Field(description="its first character in `text` of the answer")
    end: int = Field(description="one past its last character")
    score: float = Field(description="signed contribution: > 0 toward the explained label, < 0 against it")
    tag: str | None = Field(None, description="the morpheme's part of speech (Kiwi's tag; morphemes only)")


class ExplainResponse(BaseModel):
    request_id: str
    text: str = Field(
        description="the utterance as the model read it (spacing corrected, personal data masked); the "
        "spans index it"
    )
    label: str = Field(description="the predicted label")
    score: float = Field(description="its probability")
    scores: dict[str, float] = Field(description="probability of every label")
    danger: bool
    explained_label: str = Field(description="the label the scores explain (the request's, else `label`)")
    method: Literal["integrated_gradients", "linear", "occlusion"] = Field(
        description="integrated_gradients (transformers), linear (exact coefficient x TF-IDF), occlusion"
    )
    granularity: Literal["word", "morpheme"]
    attributions: list[Attribution] = Field(description="one per word or morpheme, in text order")
    truncated: bool = Field(description="the text was cut at the model's max_length: the tail scores 0")
    convergence_delta: float | None = Field(
        None, description="Integrated Gradients: sum of scores - (p(text) - p(reference)); near 0 is exact"
    )
    model_version: str
    elapsed_ms: float


def explanation_body(explanation: dict[str, Any], *, danger_labels: Sequence[str], threshold: float) -> dict:
    """training.model.explain.Explanation.to_dict() -> the /explain answer's fields (request id aside)."""
    e = explanation
    return {
        "text": e["text"],
        "label": e["label"],
        "score": e["score"],
        "scores": e["scores"],
        "danger": is_danger(e["label"], e["score"], danger_labels, threshold),
        "explained_label": e["target"],
        "method": e["method"],
        "granularity": e["granularity"],
        "attributions": e["units"],
        "truncated": e["truncated"],
        "convergence_delta": e["convergence_delta"],
    }


# --- error and other answers, for the OpenAPI schema (serving/openapi.py) ------------------------------


class ErrorDetail(BaseModel):
    """One problem of a rejected body, as pydantic reports it (never the rejected value)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="pydantic's error type, e.g. string_too_long, missing, value_error")
    loc: list[str | int] = Field(description="where: the field, then the text's index")
    msg: str = Field(description="what is wrong")


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer: what is wrong, in words; for a body that failed validation, `detail`
    lists each problem; a 503 from /classify carries the request id."""

    error: str = Field(description="what is wrong")
    detail: list[ErrorDetail] | None = Field(None, description="each validation problem (400 only)")
    request_id: str | None = Field(None, description="the request's id (503 from /classify)")


class ReloadResult(BaseModel):
    reloaded: bool = Field(description="a new version was loaded and swapped in")
    version: str | None = Field(description="the version served after the check")
    previous_version: str | None = Field(None, description="the version served before (when reloaded)")
    error: str | None = Field(None, description="why the reload failed (the old version keeps serving)")


class TimelineEntry(BaseModel):
    ts: str = Field(description="when it was predicted (ISO-8601, UTC)")
    model_version: str
    label: str
    score: float
    scores: dict[str, float] = Field(description="probability of every label")
    danger: bool
    danger_score: float = Field(description="the highest probability among serve.danger_labels")
    escalation: bool = Field(description="this prediction opened an escalation episode")
    masked_text: str = Field(description="the utterance with personal data masked (never the raw text)")
    speaker_id: str | None = Field(description="the speaker's id as stored (keyed HMAC, or PII-masked)")
    session_id: str | None = Field(description="the session's id as stored")
    device_id: str | None = Field(description="the device's id as stored")


class EscalationEpisode(BaseModel):
    first_danger: str = Field(description="the earliest of the danger predictions that made the escalation")
    escalated_at: str = Field(description="the danger prediction that reached the count (escalation: true)")
    last_danger: str = Field(description="the last danger prediction of the episode")
    dangers: int = Field(description="danger predictions the episode spans")


class Timeline(BaseModel):
    entries: list[TimelineEntry] = Field(description="oldest first: the newest `limit` predictions")
    count: int
    episodes: list[EscalationEpisode] = Field(description="the escalation rule over the entries")
    escalation: bool = Field(description="at least one episode among the entries")
    escalated_now: bool = Field(description="the danger predictions of the window ending now reach the count")
    rule: dict[str, float] = Field(description="timeline.escalation: danger_count, within_minutes")
    danger_labels: list[str]
    danger_threshold: float


class RecentPrediction(BaseModel):
    ts: str
    request_id: str
    masked_text: str = Field(description="the utterance with personal data masked ([PHONE], [RRN], ...)")
    label: str
    score: float
    danger: bool
    model_version: str


class RecentPredictions(BaseModel):
    predictions: list[RecentPrediction] = Field(description="newest first")
    label_counts: dict[str, int] = Field(description="predictions per label since the process started")
    total: int
    capacity: int = Field(description="how many predictions the process keeps (HEARA_RECENT_SIZE)")
    since: str = Field(description="when the process started")


# --- the review page's API (GET /review/next, POST /review/label) ------------------------------------

MAX_REVIEWER_CHARS = 64
_REVIEW_KEYS = ("id", "status", "label", "reviewer")


class ReviewProblem(ValueError):
    """A reviewer's answer breaking a rule: `field` names the key (the 400's `detail[].loc`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def body(self) -> dict[str, Any]:
        detail = [{"type": "value_error", "loc": [self.field], "msg": self.message}]
        return {"error": str(self), "detail": detail}


def review_answer(body: Any, labels: Sequence[str], statuses: Sequence[str]) -> dict[str, Any]:
    """The JSON body of POST /review/label, checked: {"id", "status", "label", "reviewer"} with the
    reviewer's name stripped. `labels`: the served model's; `statuses`: what the queue records
    (serving.review_queue.REVIEWED). A label is required with `labeled`, may be given with `unsure`
    (a guess) and not with `skipped`. Raises ReviewProblem naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise ReviewProblem("body", 'send a JSON object {"id", "status", "label", "reviewer"}')
    unknown = [k for k in body if k not in _REVIEW_KEYS]
    if unknown:
        raise ReviewProblem(str(unknown[0])[:40], f"unknown key (the keys are {', '.join(_REVIEW_KEYS)})")
    item_id = body.get("id")
    if isinstance(item_id, bool) or not isinstance(item_id, int) or item_id < 1:
        raise ReviewProblem("id", "the review item's id, a whole number of at least 1, is required")
    status = body.get("status")
    if status not in statuses:
        raise ReviewProblem("status", f"must be one of {', '.join(statuses)}")
    reviewer = body.get("reviewer")
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise ReviewProblem("reviewer", "the reviewer's name is required")
    reviewer = " ".join(reviewer.split())
    hidden = any(unicodedata.category(ch) in _INVISIBLE - {"Zs"} for ch in reviewer)  # control, format, ...
    if len(reviewer) > MAX_REVIEWER_CHARS or hidden:
        raise ReviewProblem("reviewer", f"at most {MAX_REVIEWER_CHARS} visible characters")
    label = body.get("label")
    if label is not None and not isinstance(label, str):
        raise ReviewProblem("label", "must be a string (one of the model's labels) or null")
    if status == "labeled" and not label:
        raise ReviewProblem("label", "is required with status labeled")
    if label and status == "skipped":
        raise ReviewProblem("label", "is not taken with status skipped (a skipped item has no label)")
    if label and label not in labels:
        shown = ", ".join(labels[:20]) + (", ..." if len(labels) > 20 else "")
        raise ReviewProblem("label", f"{mask_pii(label)[:40]!r} is not a label of the served model ({shown})")
    return {"id": item_id, "status": status, "label": label or None, "reviewer": reviewer}


def review_since(value: str | None, now: datetime) -> datetime:
    """GET /review/next's `since` (ISO 8601; the page sends the reviewer's local midnight, so that
    "labeled today" is the reviewer's day) as aware UTC; without it, UTC midnight of `now`. A time
    without an offset is taken as UTC. Raises ReviewProblem for anything else."""
    if value is None:
        return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        since = datetime.fromisoformat(value)
        return since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: a year-1 time east of UTC
        raise ReviewProblem("since", "an ISO 8601 time, e.g. 2026-11-28T00:00:00+09:00") from None


def review_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """A queue row (serving.review_queue) -> what the review page shows: the masked text only."""
    return {
        "id": row["id"],
        "masked_text": row["masked_text"] or "",
        "suggestion": row["suggested_label"],
        "scores": row.get("scores") or {},
        "stratum": row["stratum"],
        "model_version": row["model_version"],
        "ts_predicted": row["ts_predicted"],
        "ts_queued": row["ts_queued"],
    }


class ReviewItem(BaseModel):
    id: int = Field(description="the review item's id (POST /review/label takes it)")
    masked_text: str = Field(description="the utterance with personal data masked ([PHONE], [RRN], ...)")
    suggestion: str | None = Field(description="the label the serving model predicted")
    scores: dict[str, float] = Field(description="that model's probability of every label")
    stratum: str = Field(description="why it was queued: danger, uncertain, novel or random")
    model_version: str | None
    ts_predicted: str | None = Field(description="when it was predicted (UTC, ISO 8601)")
    ts_queued: str


class ReviewCounts(BaseModel):
    queued: int = Field(description="items left to review")
    labeled: int
    skipped: int
    unsure: int
    labeled_since: int = Field(description="items labeled since `since`")
    since: str = Field(description="the start of the reviewer's day (`since`, else UTC midnight)")


class ReviewNext(BaseModel):
    item: ReviewItem | None = Field(description="the next item to review; null when the queue is empty")
    counts: ReviewCounts


class ReviewRecorded(BaseModel):
    id: int
    status: Literal["labeled", "skipped", "unsure"]
    label: str | None
    reviewer: str
    ts_reviewed: str = Field(description="when the answer was recorded (UTC, ISO 8601)")
