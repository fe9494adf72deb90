"""Validate the raw table: trim labels, reject what cannot be trained on, report everything.

Nothing is dropped silently: every rejected row goes to the quarantine table with a reason.
Only problems that make the whole run meaningless raise DataError. A class with fewer rows than
validate.min_rows_per_class is rare, and validate.rare_classes says what happens to it: fail (stop,
naming the classes and what to do), quarantine (its rows set aside, the class leaves the label set) or
merge (its rows relabelled validate.merge_into); report["rare_classes"] says what was done.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import pandas as pd

from training.config import ValidateConfig
from training.data.labels import LABEL_JOIN, join_labels, label_counts, split_cell
from training.errors import ConfigError, DataError

QUARANTINE_COLUMNS = ["id", "text", "label", "source_file", "source_row", "stage", "reason"]

MULTI_LABEL_SEPARATORS = (",", ";", "|", "/")
MULTI_LABEL_MIN_SHARE = 0.05  # of the labeled rows: below this a separator is taken as part of a label name
_PART = re.compile(r"^\S{1,30}$")  # a label is a short word; a part with inner spaces is prose, not a label


def comparison_key(text: str) -> str:
    """What makes two texts 'the same' for conflict detection: NFC, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _quarantine(rows: pd.DataFrame, reason: str | list[str], stage: str = "validate") -> pd.DataFrame:
    out = rows.reindex(columns=QUARANTINE_COLUMNS[:5]).copy()
    out["stage"] = stage
    out["reason"] = reason
    return out


def detect_multi_label(labels: pd.Series, allowed: list[str] | tuple[str, ...] | None = None) -> dict | None:
    """Whether the label column holds label *lists* (`0,6,10,22`, `기쁨,슬픔`): {separator, rows, share,
    examples} or None.

    A cell counts when splitting it at the separator gives two or more short words and it is not itself
    an allowed label; the column counts when such cells are a sizeable share of the labeled rows and
    their parts look like labels (they also occur alone, or fewer parts than combinations recur).
    """
    values = labels[labels != ""]
    if not len(values):
        return None
    best = None
    for sep in MULTI_LABEL_SEPARATORS:

        def parts(v: str, sep: str = sep) -> list[str]:
            return [p.strip() for p in v.split(sep)]

        multi = values[
            values.map(
                lambda v: sep in v and v not in (allowed or ()) and all(_PART.match(p) for p in parts(v))
            )
        ]
        if best is None or len(multi) > len(best[1]):
            best = (sep, multi, parts)
    sep, multi, parts = best
    if not len(multi) or len(multi) / len(values) < MULTI_LABEL_MIN_SHARE:
        return None
    combos = set(multi)
    pieces = {p for v in combos for p in parts(v)}
    singles = set(values) - combos
    if not (pieces & singles or len(pieces) < len(combos)):
        return None
    return {
        "separator": sep,
        "rows": int(len(multi)),
        "share": round(len(multi) / len(values), 3),
        "examples": [v for v, _ in Counter(multi).most_common(3)],
    }


def _single_label_set(
    df: pd.DataFrame, labels, report: dict, quarantined: list[pd.DataFrame]
) -> tuple[pd.DataFrame, list[str]]:
    """Rows whose label is outside a configured label set are quarantined; without one the set is
    the labels seen."""
    if labels:
        allowed = list(labels)
        unknown = ~df["label"].isin(allowed)
        counts = Counter(df.loc[unknown, "label"])
        report["unknown_labels"] = {k: int(v) for k, v in counts.most_common()}
        quarantined.append(
            _quarantine(
                df[unknown],
                [f"label '{v}' is not in the label set {allowed}" for v in df.loc[unknown, "label"]],
            )
        )
        report["label_set"] = {"labels": allowed, "inferred": False}
        return df[~unknown], allowed
    allowed = sorted(df["label"].unique().tolist())
    report["unknown_labels"] = {}
    report["label_set"] = {"labels": allowed, "inferred": True}
    return df, allowed


def _multi_label_set(
    df: pd.DataFrame, labels, sep: str, report: dict, quarantined: list[pd.DataFrame]
) -> tuple[pd.DataFrame, list[str]]:
    """Each cell split at `sep` into its labels. A row naming a label outside a configured label set,
    or a label containing LABEL_JOIN, is quarantined whole (its other labels would be wrong without
    it); the kept rows' label column becomes the labels joined in label-set order."""
    parts = df["label"].map(lambda cell: split_cell(cell, sep))
    bad_name = parts.map(lambda ps: [p for p in ps if LABEL_JOIN in p])
    allowed = list(labels) if labels else sorted({p for ps in parts for p in ps if LABEL_JOIN not in p})
    known = set(allowed)
    unknown = parts.map(lambda ps: [p for p in ps if p not in known and LABEL_JOIN not in p])
    none = parts.map(len) == 0
    reject = (bad_name.map(len) > 0) | (unknown.map(len) > 0) | none
    reasons = [
        f"no label left after splitting the cell at '{sep}'"
        if not ps
        else f"label '{b[0]}' contains '{LABEL_JOIN}', which multi-label tasks reserve"
        if b
        else f"label '{u[0]}' is not in the label set {allowed}"
        for ps, b, u in zip(parts[reject], bad_name[reject], unknown[reject])
    ]
    quarantined.append(_quarantine(df[reject], reasons))
    counts = Counter(p for ps in unknown[reject] for p in ps)
    report["unknown_labels"] = {k: int(v) for k, v in counts.most_common()}
    report["label_set"] = {"labels": allowed, "inferred": not labels}
    df = df[~reject].copy()
    kept = parts[~reject]
    df["label"] = kept.map(lambda ps: join_labels(ps, allowed))
    sizes = kept.map(len)
    report["labels_per_row"] = {
        "separator": sep,
        "mean": round(float(sizes.mean()), 3) if len(sizes) else 0.0,
        "max": int(sizes.max()) if len(sizes) else 0,
        "histogram": {str(k): int(v) for k, v in sorted(Counter(sizes).items())},
    }
    return df, allowed


def validate(
    raw: pd.DataFrame,
    labels: tuple[str, ...] | list[str] | None,
    cfg: ValidateConfig,
    *,
    source: str = "input",
    label_sep: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """raw table -> (valid rows, quarantined rows, report).

    `labels`: the allowed label set; empty or None infers it from the data (after trimming).
    `label_sep`: a multi-label task's separator (`task_type: multilabel`); each cell is split at it and
    the row keeps all its labels, joined in label-set order (training/data/labels.py). None: one label
    per row, and a column that looks like label lists stops the run with what to do.
    """
    report: dict = {"rows_read": int(len(raw))}
    quarantined: list[pd.DataFrame] = []
    df = raw.copy()
    df["text"] = df["text"].astype(object)

    # Labels: trim, then count what trimming changed so the report can show it. NFC as well, so that
    # a decomposed Korean label (macOS exports) matches the label set instead of becoming "unknown".
    original = df["label"].fillna("").astype(str)
    trimmed = original.map(lambda s: unicodedata.normalize("NFC", s)).str.strip()
    changed = original != trimmed
    report["labels_trimmed"] = {
        "rows": int(changed.sum()),
        "examples": [
            {"id": i, "from": f, "to": t}
            for i, f, t in zip(df.loc[changed, "id"][:5], original[changed][:5], trimmed[changed][:5])
        ],
    }
    df["label"] = trimmed

    # Empty texts and labels.
    text = df["text"].fillna("").astype(str)
    empty_text = text.str.strip() == ""
    empty_label = df["label"] == ""
    report["empty_texts"] = int(empty_text.sum())
    report["empty_labels"] = int((empty_label & ~empty_text).sum())
    quarantined.append(_quarantine(df[empty_text], "empty or whitespace-only text"))
    quarantined.append(_quarantine(df[empty_label & ~empty_text], "empty label"))
    df = df[~empty_text & ~empty_label]

    multilabel = label_sep is not None
    report["task_type"] = "multilabel" if multilabel else "multiclass"
    if not multilabel:
        # Label lists in one cell: a multi-label file cannot be trained as single-label classes (it
        # would only fail later as thousands of rare "classes"), so say what it is and what to do.
        multi = detect_multi_label(df["label"], labels)
        if multi:
            files = sorted(df["source_file"].dropna().astype(str).unique()) if "source_file" in df else []
            raise DataError(
                f"this looks like multi-label data: {multi['rows']} of {len(df)} labeled rows "
                f"({multi['share']:.0%}) hold several labels separated by '{multi['separator']}' "
                f"(e.g. {', '.join(repr(x) for x in multi['examples'])}); train it as a multi-label task "
                f"(heara run --multilabel --label-sep '{multi['separator']}', or task_type: multilabel "
                f"and data.label_sep in params.yaml), or give each row one label",
                file=", ".join(files) or source,
                field="label",
            )
        df, allowed = _single_label_set(df, labels, report, quarantined)
    else:
        df, allowed = _multi_label_set(df, labels, label_sep, report, quarantined)

    # Too long to be an utterance.
    lengths = df["text"].str.len()
    too_long = lengths > cfg.max_chars
    report["too_long"] = int(too_long.sum())
    quarantined.append(_quarantine(df[too_long], f"text longer than validate.max_chars={cfg.max_chars}"))
    df = df[~too_long]

    # Duplicate ids: the first occurrence wins, later ones are quarantined.
    dup_id = df["id"].duplicated(keep="first")
    report["duplicate_ids"] = int(dup_id.sum())
    quarantined.append(_quarantine(df[dup_id], "duplicate id (an earlier row has the same id)"))
    df = df[~dup_id]

    # Same text, conflicting labels.
    keys = df["text"].map(comparison_key)
    groups = df.groupby(keys)["label"]
    n_labels = groups.transform("nunique")
    n_rows = groups.transform("size")
    repeated = n_rows > 1
    conflict = n_labels > 1
    conflict_keys = keys[conflict].unique()
    report["repeated_texts"] = int(keys[repeated].nunique())
    conf = {"texts": int(len(conflict_keys)), "rows": int(conflict.sum()), "policy": cfg.conflicts}
    if cfg.conflicts == "quarantine":
        quarantined.append(
            _quarantine(
                df[conflict],
                [
                    f"conflicting labels for the same text: {sorted(set(df.loc[keys == k, 'label']))}"
                    for k in keys[conflict]
                ],
            )
        )
        conf["quarantined_rows"] = conf["rows"]
        conf["kept_rows"] = 0
        df = df[~conflict]
    else:
        drop = pd.Series(False, index=df.index)
        for k in conflict_keys:
            sub = df[keys == k]
            votes = Counter(sub["label"]).most_common()
            tie = len(votes) > 1 and votes[0][1] == votes[1][1]
            loser = sub.index if tie else sub.index[sub["label"] != votes[0][0]]
            drop[loser] = True
        reasons = [
            "conflicting labels, no majority"
            if n_labels[i] > 1
            and Counter(df.loc[keys == keys[i], "label"]).most_common(2)[0][1]
            == Counter(df.loc[keys == keys[i], "label"]).most_common(2)[-1][1]
            else "conflicting labels, outvoted by the majority label"
            for i in df.index[drop]
        ]
        quarantined.append(_quarantine(df[drop], reasons))
        conf["quarantined_rows"] = int(drop.sum())
        conf["kept_rows"] = int(conflict.sum() - drop.sum())
        df = df[~drop]
    conf["examples"] = [str(k) for k in conflict_keys[:5]]
    report["conflicts"] = conf

    # Length outliers are reported, not rejected: a long utterance is unusual, not wrong.
    lengths = df["text"].str.len()
    q1, q3 = (lengths.quantile(0.25), lengths.quantile(0.75)) if len(df) else (0, 0)
    hi = q3 + cfg.outlier_iqr_k * (q3 - q1)
    outliers = df[lengths > hi]
    report["length"] = {
        "min": int(lengths.min()) if len(df) else 0,
        "median": float(lengths.median()) if len(df) else 0,
        "mean": round(float(lengths.mean()), 2) if len(df) else 0,
        "max": int(lengths.max()) if len(df) else 0,
        "outlier_threshold": round(float(hi), 1),
        "outliers": int(len(outliers)),
        "outlier_ids": outliers["id"].head(20).tolist(),
    }

    per_class = label_counts(df["label"], multilabel)
    report["per_class"] = {lab: int(per_class.get(lab, 0)) for lab in allowed}

    # Rare classes: validate.rare_classes decides; `fail` raises below, once the report is complete.
    if report.get("task_type") == "multilabel" and cfg.rare_classes != "fail":
        # A multi-label row holds a label set: setting a row aside or relabelling it would touch its
        # other labels too, so the policy is single-label only for now.
        raise ConfigError(
            f"validate.rare_classes={cfg.rare_classes} applies to single-label tasks; a multi-label task "
            "takes fail (or lower validate.min_rows_per_class)"
        )
    df, rare_rows, allowed, report["rare_classes"] = apply_rare_class_policy(
        df, allowed, report["per_class"], cfg, inferred=report["label_set"]["inferred"]
    )
    quarantined.append(rare_rows)
    if report["rare_classes"]["classes"] and cfg.rare_classes != "fail":
        report["label_set"]["labels"] = allowed
        counts = df["label"].value_counts()
        report["per_class"] = {lab: int(counts.get(lab, 0)) for lab in allowed}

    qt = (
        pd.concat([q for q in quarantined if len(q)], ignore_index=True)
        if any(len(q) for q in quarantined)
        else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    )
    report["rows_valid"] = int(len(df))
    report["rows_quarantined"] = int(len(qt))
    report["quarantine_reasons"] = (
        {
            k: int(v)
            for k, v in Counter(
                r.split(":")[0] if r.startswith(("conflicting", RARE_CLASS_REASON)) else r
                for r in qt["reason"]
            ).most_common()
        }
        if len(qt)
        else {}
    )

    if len(df) == 0:
        raise DataError(
            f"no valid rows remain after validation ({len(qt)} quarantined)",
            file=source,
            report={**report, "quarantined": qt},
        )
    problem = rare_class_problem(report["rare_classes"], allowed)
    if problem:
        raise DataError(problem, file=source, field="label", report={**report, "quarantined": qt})
    return df.reset_index(drop=True), qt, report


RARE_CLASS_REASON = "rare class"  # the stem of the quarantine reason (reports count reasons by their stem)


def apply_rare_class_policy(
    df: pd.DataFrame,
    allowed: list[str],
    per_class: dict[str, int],
    cfg: ValidateConfig,
    *,
    inferred: bool,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], dict]:
    """The classes of `per_class` below cfg.min_rows_per_class, handled as cfg.rare_classes says:
    -> (kept rows, quarantined rows, the label set after it, the report's `rare_classes` entry).

    fail: nothing changes (validate raises once its report is complete). quarantine: their rows go to
    quarantine and the classes leave the label set. merge: their rows are relabelled cfg.merge_into,
    which grows if it is a class already and otherwise joins the label set (appended to a configured
    set, in sorted place in an inferred one); rare_class_problem says when it is still rare.
    """
    thin = {lab: n for lab, n in per_class.items() if n < cfg.min_rows_per_class}
    entry: dict = {
        "policy": cfg.rare_classes,
        "min_rows": cfg.min_rows_per_class,
        "classes": dict(sorted(thin.items(), key=lambda kv: (kv[1], kv[0]))),  # rarest first
        "rows_quarantined": 0,
        "rows_merged": 0,
        "merge_into": cfg.merge_into if cfg.rare_classes == "merge" else None,
    }
    none = _quarantine(df.iloc[:0], [])
    if not thin or cfg.rare_classes == "fail":
        return df, none, allowed, entry
    if cfg.rare_classes == "quarantine":
        rare = df["label"].isin(set(thin))
        reasons = [
            f"{RARE_CLASS_REASON}: '{lab}' has {thin[lab]} row{'' if thin[lab] == 1 else 's'}, fewer than "
            f"validate.min_rows_per_class={cfg.min_rows_per_class} (validate.rare_classes=quarantine)"
            for lab in df.loc[rare, "label"]
        ]
        entry["rows_quarantined"] = int(rare.sum())
        return df[~rare], _quarantine(df[rare], reasons), [lab for lab in allowed if lab not in thin], entry
    target = cfg.merge_into
    moved = df["label"].isin(set(thin) - {target})
    df = df.copy()
    df.loc[moved, "label"] = target
    labels = [lab for lab in allowed if lab not in thin or lab == target]
    if target not in labels:
        labels = sorted([*labels, target]) if inferred else [*labels, target]
    entry["rows_merged"] = int(moved.sum())
    entry["merge_into_rows"] = int((df["label"] == target).sum())
    return df, none, labels, entry


def rare_class_problem(rare: dict, labels: list[str]) -> str | None:
    """The one-line DataError message when the rare classes stop the run (report["rare_classes"], the
    label set after the policy): policy fail with rare classes, a quarantine that leaves fewer than two
    classes, or a merge whose target is still below the minimum. None: go on.

    A merge target still below the minimum stops the run rather than being quarantined: merge was
    chosen to keep those rows, and setting them aside silently would do the opposite."""
    m, classes = rare["min_rows"], list(rare["classes"].items())
    if not classes:
        return None
    if rare["policy"] == "quarantine":
        if len(labels) >= 2:
            return None
        return (
            f"validate.rare_classes=quarantine set aside {len(classes)} rare "
            f"class{'' if len(classes) == 1 else 'es'} and left "
            f"{len(labels)} ({', '.join(map(repr, labels)) or 'none'}); a classifier needs two: set "
            "validate.rare_classes=merge, or lower validate.min_rows_per_class"
        )

    def listed(items: list[tuple[str, int]], how: str) -> str:  # "'e3' has 2, 'e17' has 8 and 5 more"
        shown = ", ".join(f"'{lab}'" + how.format(n) for lab, n in items[:10])
        return shown + (f" and {len(items) - 10} more" if len(items) > 10 else "")

    if rare["policy"] == "fail":
        return (
            f"too few rows in {len(classes)} class{'' if len(classes) == 1 else 'es'} "
            f"(validate.min_rows_per_class={m}): {listed(classes, ' has {}')}; set "
            "validate.rare_classes=quarantine (set their rows aside) or merge (relabel them as "
            "validate.merge_into), or lower validate.min_rows_per_class (params.yaml or --set)"
        )
    target, n = rare["merge_into"], rare["merge_into_rows"]
    if n >= m:
        return None
    merged = [(lab, k) for lab, k in classes if lab != target]
    return (
        f"validate.rare_classes=merge: '{target}' (validate.merge_into) has only {n} rows"
        + (f" after merging {listed(merged, ' ({})')} into it" if merged else "")
        + f", fewer than validate.min_rows_per_class={m}; set validate.rare_classes=quarantine, "
        "or lower validate.min_rows_per_class"
    )


def require_known_labels(
    df: pd.DataFrame,
    labels: list[str] | tuple[str, ...],
    *,
    file: str,
    hint: str,
    multilabel: bool = False,
) -> None:
    """DataError (one line: the labels, the file, what to do) when `df` has labels outside `labels`:
    e.g. a model or a label set meant for other data."""
    unknown = sorted(set(label_counts(df["label"].astype(str), multilabel)) - set(labels))
    if unknown:
        shown = ", ".join(map(repr, unknown[:10])) + (
            f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        )
        raise DataError(f"labels {shown} are not among {list(labels)}; {hint}", file=file, field="label")
