"""Read labeled utterances from CSV, TSV, JSONL, Excel or AI Hub 감성대화 JSON into one table.

Output columns (the canonical raw table): id, text, label, source_file, source_row.
Text and label are kept exactly as read (after decoding); trimming and normalisation are the
validator's and the preprocessor's jobs, so that the report can say what they changed.
Rows that cannot be parsed at all (a broken JSONL line) are returned separately as rejects.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from charset_normalizer import from_bytes

from training.errors import DataError
from training.paths import display_path

RAW_COLUMNS = ["id", "text", "label", "source_file", "source_row"]
SUPPORTED = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".json": "aihub",
}

# AI Hub 감성대화 말뭉치: emotion codes E10..E69, the tens digit is the major class.
AIHUB_MAJOR = {"1": "분노", "2": "슬픔", "3": "불안", "4": "상처", "5": "당황", "6": "기쁨"}
AIHUB_LABELS = tuple(AIHUB_MAJOR.values())
AIHUB_TURNS = ("HS01", "HS02", "HS03")


@dataclass
class ReadResult:
    rows: pd.DataFrame  # RAW_COLUMNS
    rejects: pd.DataFrame  # RAW_COLUMNS + reason (unparseable records)
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def detect_format(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    fmt = SUPPORTED.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"unsupported file type '{path.suffix}' (supported: {', '.join(sorted(SUPPORTED))})",
            file=str(path),
        )
    return fmt


def decode_bytes(data: bytes, path: Path, declared: str = "auto") -> tuple[str, str]:
    """Bytes -> (text, encoding). Tries UTF-8 (with or without BOM), then CP949 (a superset of EUC-KR)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" export is UTF-16 with a BOM
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as e:
            raise DataError(f"cannot decode as UTF-16: {e}", file=str(path)) from None
    if b"\x00" in data[:8192]:
        raise DataError("looks like a binary file (NUL bytes), not UTF-8 or CP949 text", file=str(path))
    if declared != "auto":
        try:
            return data.decode(declared), declared
        except (UnicodeDecodeError, LookupError) as e:
            raise DataError(f"cannot decode as {declared}: {e}", file=str(path)) from None
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    for enc in ("utf-8", "cp949"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise DataError(
            "cannot detect the text encoding (tried UTF-8, UTF-8 with BOM, CP949)", file=str(path)
        )
    return str(best), best.encoding


def _frame(records: list[dict], path: Path) -> pd.DataFrame:
    df = pd.DataFrame.from_records(records, columns=RAW_COLUMNS)
    df["source_file"] = display_path(path)
    return df


def _require_columns(
    columns: list[str], path: Path, text_col: str, label_col: str, id_col: str | None
) -> None:
    for role, col in (("text", text_col), ("label", label_col)):
        if col not in columns:
            hint = ""
            if col.isdigit() and not all(str(c).isdigit() for c in columns):
                hint = "; columns are named by position only with --no-header (a file without a header row)"
            elif _looks_headerless(columns):
                hint = (
                    "; the first row looks like data, not a header: pass --no-header and name columns by "
                    "position (--text-col 0 --label-col 1)"
                )
            raise DataError(
                f"missing {role} column '{col}' (columns found: {_shown(columns)}){hint}",
                file=str(path),
                field=col,
            )
    if id_col and id_col not in columns:
        raise DataError(
            f"missing id column '{id_col}' (columns found: {', '.join(map(str, columns))}); "
            "pass --id-col '' to number rows instead",
            file=str(path),
            field=id_col,
        )


def _shown(columns: list[str], limit: int = 8, width: int = 30) -> str:
    """Column names for a message: a headerless file's "names" are its first row, maybe long sentences."""
    names = [c if len(c) <= width else c[:width] + "..." for c in map(str, columns[:limit])]
    return ", ".join(names) + (f", ... ({len(columns)} columns)" if len(columns) > limit else "")


def _looks_headerless(columns: list[str]) -> bool:
    """A "header" holding a sentence (long, or ending in sentence punctuation) or a number is probably
    data."""
    names = [str(c).strip() for c in columns]
    return any((len(c) > 20 and " " in c) or c.endswith(("?", ".", "!")) or c.isdigit() for c in names)


def _cell(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(value)


def _records_from_table(
    table: pd.DataFrame, path: Path, text_col: str, label_col: str, id_col: str | None
) -> list[dict]:
    _require_columns(list(table.columns), path, text_col, label_col, id_col)
    stem = path.stem
    out = []
    for i, (text, label, rid) in enumerate(
        zip(table[text_col], table[label_col], table[id_col] if id_col else [None] * len(table)), start=1
    ):
        rid = _cell(rid)
        out.append(
            {
                "id": rid.strip() if rid and rid.strip() else f"{stem}-{i}",
                "text": _cell(text),
                "label": _cell(label),
                "source_row": i,
            }
        )
    return out


def _read_delimited(
    path: Path,
    sep: str,
    text_col: str,
    label_col: str,
    id_col: str | None,
    encoding: str,
    header: bool = True,
) -> ReadResult:
    text, enc = decode_bytes(path.read_bytes(), path, encoding)
    if not text.strip():
        raise DataError("the file is empty (no header, no rows)", file=str(path))
    try:
        table = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=[],
            quoting=csv.QUOTE_MINIMAL,
            header=0 if header else None,
        )
    except pd.errors.ParserError as e:
        raise DataError(f"cannot parse as {'TSV' if sep == chr(9) else 'CSV'}: {e}", file=str(path)) from None
    # Without a header the columns are named by position: "0", "1", ... (--text-col 0 --label-col 1).
    table.columns = [str(c).strip() for c in table.columns]
    if table.empty:
        _require_columns(list(table.columns), path, text_col, label_col, id_col)
        raise DataError("the file has a header but no data rows", file=str(path))
    rows = _frame(_records_from_table(table, path, text_col, label_col, id_col), path)
    return ReadResult(rows, _frame([], path).assign(reason=[]), enc)


def _read_excel(
    path: Path, text_col: str, label_col: str, id_col: str | None, sheet: str | int | None
) -> ReadResult:
    try:
        table = pd.read_excel(
            path, sheet_name=sheet if sheet is not None else 0, dtype=str, keep_default_na=False
        )
    except Exception as e:  # openpyxl raises many types for corrupt files
        raise DataError(f"cannot read as an Excel workbook: {e}", file=str(path)) from None
    table.columns = [str(c).strip() for c in table.columns]
    if table.empty:
        raise DataError("the sheet has no data rows", file=str(path))
    rows = _frame(_records_from_table(table, path, text_col, label_col, id_col), path)
    return ReadResult(rows, _frame([], path).assign(reason=[]), None)


def _read_jsonl(path: Path, text_col: str, label_col: str, id_col: str | None, encoding: str) -> ReadResult:
    text, enc = decode_bytes(path.read_bytes(), path, encoding)
    records, rejects = [], []
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise DataError("the file is empty (no JSON lines)", file=str(path))
    seen_columns = False
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("a line must be a JSON object")
        except ValueError as e:
            rejects.append(
                {
                    "id": f"{path.stem}-{i}",
                    "text": line,
                    "label": None,
                    "source_row": i,
                    "reason": f"invalid JSON on line {i}: {e}",
                }
            )
            continue
        if not seen_columns:
            _require_columns(list(obj), path, text_col, label_col, id_col)
            seen_columns = True
        rid = _cell(obj.get(id_col)) if id_col else None
        records.append(
            {
                "id": rid or f"{path.stem}-{i}",
                "text": _cell(obj.get(text_col)),
                "label": _cell(obj.get(label_col)),
                "source_row": i,
            }
        )
    if not records:
        raise DataError(f"no readable JSON line ({len(rejects)} invalid)", file=str(path))
    return ReadResult(
        _frame(records, path), _frame(rejects, path).assign(reason=[r["reason"] for r in rejects]), enc
    )


def aihub_label(code: str) -> str | None:
    """'E18' -> '분노'; None when the code is not E10..E69."""
    code = (code or "").strip().upper()
    if len(code) == 3 and code[0] == "E" and code[1:].isdigit():
        return AIHUB_MAJOR.get(code[1])
    return None


def _read_aihub(path: Path, encoding: str) -> ReadResult:
    """AI Hub 감성대화 말뭉치: a JSON list of dialogues; user turns HS01..HS03 become rows."""
    text, enc = decode_bytes(path.read_bytes(), path, encoding)
    if not text.strip():
        raise DataError("the file is empty", file=str(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"invalid or truncated JSON at line {e.lineno}, column {e.colno}: {e.msg}",
            file=str(path),
            row=e.lineno,
        ) from None
    if not isinstance(data, list):
        raise DataError("expected a JSON list of dialogue records (AI Hub 감성대화 layout)", file=str(path))
    records, rejects = [], []
    for i, rec in enumerate(data, start=1):
        try:
            code = rec["profile"]["emotion"]["type"]
            content = rec["talk"]["content"]
            talk_id = str(rec["talk"].get("id", {}).get("talk-id") or f"{path.stem}-{i}")
        except (KeyError, TypeError, AttributeError) as e:
            rejects.append(
                {
                    "id": f"{path.stem}-{i}",
                    "text": json.dumps(rec, ensure_ascii=False)[:2000],
                    "label": None,
                    "source_row": i,
                    "reason": f"record {i} lacks field {e}",
                }
            )
            continue
        label = aihub_label(code)
        for turn in AIHUB_TURNS:
            utt = content.get(turn)
            if utt is None or not str(utt).strip():
                continue
            records.append(
                {
                    "id": f"{talk_id}-{turn}",
                    "text": str(utt),
                    "label": label if label else str(code),
                    "source_row": i,
                }
            )
    if not records and not rejects:
        raise DataError("no dialogue records with user utterances", file=str(path))
    return ReadResult(
        _frame(records, path),
        _frame(rejects, path).assign(reason=[r["reason"] for r in rejects]),
        enc,
        [f"AI Hub emotion codes mapped to {', '.join(AIHUB_LABELS)}"],
    )


def read_source(
    path: Path | str,
    *,
    fmt: str = "auto",
    text_col: str = "text",
    label_col: str = "label",
    id_col: str | None = None,
    encoding: str = "auto",
    sheet: str | int | None = None,
    header: bool = True,
) -> ReadResult:
    """Read one labeled file into the canonical raw table. Raises DataError when it cannot be read.

    header=False: a CSV/TSV file without a header row; its columns are named "0", "1", ... by position.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=str(path))
    if path.stat().st_size == 0:
        raise DataError("the file is empty (0 bytes)", file=str(path))
    kind = detect_format(path, fmt)
    id_col = id_col or None
    if not header and kind not in ("csv", "tsv"):
        raise DataError(f"--no-header applies to CSV and TSV files, not {kind}", file=str(path))
    if kind == "csv":
        return _read_delimited(path, ",", text_col, label_col, id_col, encoding, header)
    if kind == "tsv":
        return _read_delimited(path, "\t", text_col, label_col, id_col, encoding, header)
    if kind == "jsonl":
        return _read_jsonl(path, text_col, label_col, id_col, encoding)
    if kind == "excel":
        return _read_excel(path, text_col, label_col, id_col, sheet)
    return _read_aihub(path, encoding)


# --- incoming batches --------------------------------------------------------------------------

_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS ingested_files (
    sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    rows INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    ingested_at TEXT NOT NULL,
    batch_path TEXT NOT NULL
)"""


class Ledger:
    """Which incoming files were ingested (name, hash, rows, time), so a later run knows what is new."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as con:
            con.execute(_LEDGER_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def known(self, sha256: str) -> bool:
        with self._connect() as con:
            return (
                con.execute("SELECT 1 FROM ingested_files WHERE sha256 = ?", (sha256,)).fetchone() is not None
            )

    def record(self, sha256: str, name: str, rows: int, rejected: int, batch_path: Path) -> dict:
        entry = {
            "sha256": sha256,
            "name": name,
            "rows": rows,
            "rejected": rejected,
            "ingested_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "batch_path": str(batch_path),
        }
        with self._connect() as con:
            con.execute(
                "INSERT OR IGNORE INTO ingested_files VALUES (:sha256, :name, :rows, :rejected, "
                ":ingested_at, :batch_path)",
                entry,
            )
        return entry

    def entries(self) -> list[dict]:
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute("SELECT * FROM ingested_files ORDER BY ingested_at, name")]


def ingest_incoming(incoming: Path, batches: Path, ledger: Ledger, **read_kwargs) -> list[dict]:
    """Ingest each new file in `incoming` once: parse it, store it as a parquet batch, record it.

    A file whose content hash is already in the ledger is skipped, whatever its name. A file that
    cannot be read raises DataError and is not recorded, so it is retried once fixed.
    """
    new = []
    if not incoming.exists():
        return new
    batches.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in incoming.iterdir() if p.is_file() and not p.name.startswith(".")):
        digest = sha256_file(path)
        if ledger.known(digest):
            continue
        result = read_source(path, **read_kwargs)
        batch = batches / f"{digest[:16]}.parquet"
        rejects = batches / f"{digest[:16]}.rejects.parquet"
        result.rows.to_parquet(batch, index=False)
        result.rejects.to_parquet(rejects, index=False)
        new.append(ledger.record(digest, path.name, len(result.rows), len(result.rejects), batch))
    return new


def load_batches(ledger: Ledger) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All rows (and unparseable rejects) of every ingested batch, in ingestion order."""
    rows, rejects = [], []
    for entry in ledger.entries():
        batch = Path(entry["batch_path"])
        rows.append(pd.read_parquet(batch))
        rej = batch.with_name(batch.name.replace(".parquet", ".rejects.parquet"))
        if rej.exists():
            rejects.append(pd.read_parquet(rej))
    empty = pd.DataFrame(columns=RAW_COLUMNS)
    return (
        pd.concat(rows, ignore_index=True) if rows else empty,
        pd.concat(rejects, ignore_index=True) if rejects else empty.assign(reason=[]),
    )
