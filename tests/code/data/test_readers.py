"""Reading labeled files: formats, column mapping, encodings, bad files and the incoming ledger."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pandas as pd
import pytest

from training.config import ValidateConfig
from training.data.readers import (
    AIHUB_LABELS,
    RAW_COLUMNS,
    Ledger,
    aihub_label,
    detect_format,
    ingest_incoming,
    load_batches,
    read_source,
)
from training.data.validate import validate
from training.errors import DataError

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures"
AIHUB_SAMPLE = FIXTURES / "aihub_emotion_sample.json"

ROWS = [
    ("u1", "할머니가 넘어지셨어요", "emergency"),
    ("u2", "오늘 날씨가 참 좋네요", "normal"),
    ("u3", "여기가 어디예요, 집에 가고 싶어요", "confusion"),
]
CSV_TEXT = "id,text,label\n" + "".join(f'{i},"{t}",{lab}\n' for i, t, lab in ROWS)  # u3 has a comma


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def records(df: pd.DataFrame) -> list[tuple]:
    return list(zip(df["id"], df["text"], df["label"]))


# --- formats and column mapping ---------------------------------------------------------------


def test_csv_is_read_into_the_canonical_raw_table(tmp_path):
    p = write(tmp_path / "batch.csv", CSV_TEXT)
    result = read_source(p, id_col="id")
    assert list(result.rows.columns) == RAW_COLUMNS
    assert records(result.rows) == ROWS
    assert result.rows["source_row"].tolist() == [1, 2, 3]
    assert set(result.rows["source_file"]) == {str(p.resolve())}
    assert result.rejects.empty
    assert result.encoding == "utf-8"


def test_tsv_is_read(tmp_path):
    p = write(
        tmp_path / "batch.tsv", "id\ttext\tlabel\n" + "".join(f"{i}\t{t}\t{lab}\n" for i, t, lab in ROWS)
    )
    assert records(read_source(p, id_col="id").rows) == ROWS


def test_jsonl_is_read(tmp_path):
    lines = [json.dumps({"id": i, "text": t, "label": lab}, ensure_ascii=False) for i, t, lab in ROWS]
    p = write(tmp_path / "batch.jsonl", "\n".join(lines) + "\n")
    result = read_source(p, id_col="id")
    assert records(result.rows) == ROWS
    assert result.rejects.empty


def test_excel_is_read_with_mapped_columns(tmp_path):
    p = tmp_path / "batch.xlsx"
    pd.DataFrame(
        {"번호": [101, 102, 103], "발화": [t for _, t, _ in ROWS], "정답": [lab for *_, lab in ROWS]}
    ).to_excel(p, index=False)
    result = read_source(p, text_col="발화", label_col="정답", id_col="번호")
    assert records(result.rows) == [(str(100 + k), t, lab) for k, (_, t, lab) in enumerate(ROWS, start=1)]


def test_column_mapping_and_numbered_ids_without_an_id_column(tmp_path):
    p = write(
        tmp_path / "labeler_07.csv",
        "utterance,class,extra\n" + "".join(f'"{t}",{lab},x\n' for _, t, lab in ROWS),
    )
    result = read_source(p, text_col="utterance", label_col="class", id_col=None)
    assert result.rows["id"].tolist() == ["labeler_07-1", "labeler_07-2", "labeler_07-3"]
    assert result.rows["text"].tolist() == [t for _, t, _ in ROWS]
    assert "extra" not in result.rows.columns


def test_blank_ids_are_numbered(tmp_path):
    p = write(
        tmp_path / "b.csv",
        'id,text,label\n,"안녕하세요",normal\n  ,"살려 주세요",emergency\nk3,"뭐라고요",confusion\n',
    )
    assert read_source(p, id_col="id").rows["id"].tolist() == ["b-1", "b-2", "k3"]


def test_text_and_label_are_kept_exactly_as_read(tmp_path):
    # Trimming is the validator's job (so that its report can say what changed).
    p = write(tmp_path / "b.csv", 'id,text,label\n1,"  물 좀 주세요, 목말라요  ",normal   \n')
    row = read_source(p, id_col="id").rows.iloc[0]
    assert row["text"] == "  물 좀 주세요, 목말라요  "
    assert row["label"] == "normal   "


def test_unsupported_extension_is_a_data_error(tmp_path):
    p = write(tmp_path / "notes.docx", "hello")
    with pytest.raises(DataError, match="unsupported file type '.docx'"):
        read_source(p)
    assert detect_format(p, "csv") == "csv"  # a declared format wins over the extension


# --- encodings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding, detected",
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("cp949", "cp949"),
    ],
)
def test_encodings_are_detected_and_decoded(tmp_path, encoding, detected):
    p = write(tmp_path / f"{encoding}.csv", CSV_TEXT, encoding=encoding)
    result = read_source(p, id_col="id")
    assert result.encoding == detected
    assert records(result.rows) == ROWS
    # The BOM must not leak into the first column name (or 'id' would be missing).
    assert not any(str(c).startswith("\ufeff") for c in result.rows["id"])


def test_cp949_only_characters_are_decoded(tmp_path):
    # 똠, 햏 and 뷁 are outside EUC-KR's 2,350 syllables but inside CP949.
    p = write(tmp_path / "cp.csv", "id,text,label\n1,똠방각하 햏 뷁,normal\n", encoding="cp949")
    result = read_source(p, id_col="id")
    assert result.encoding == "cp949"
    assert result.rows["text"].tolist() == ["똠방각하 햏 뷁"]


def test_declared_encoding_is_used_and_a_wrong_one_is_a_data_error(tmp_path):
    p = write(tmp_path / "cp.csv", CSV_TEXT, encoding="cp949")
    assert read_source(p, id_col="id", encoding="cp949").encoding == "cp949"
    with pytest.raises(DataError, match="cannot decode as utf-8"):
        read_source(p, id_col="id", encoding="utf-8")


def test_nfd_text_is_read_and_composed_by_the_preprocessor(tmp_path, kiwi_preprocessor):
    nfd = unicodedata.normalize("NFD", CSV_TEXT)
    assert nfd != CSV_TEXT
    p = write(tmp_path / "mac.csv", nfd)
    texts = read_source(p, id_col="id").rows["text"].tolist()
    assert texts == [unicodedata.normalize("NFD", t) for _, t, _ in ROWS]  # read as written
    cleaned = kiwi_preprocessor(texts)
    assert all(unicodedata.is_normalized("NFC", t) for t in cleaned)
    assert cleaned[0].replace(" ", "") == "할머니가넘어지셨어요"


# --- AI Hub 감성대화 -------------------------------------------------------------------------------


def test_aihub_label_maps_codes_to_the_six_major_classes():
    assert [aihub_label(c) for c in ("E10", "E23", "E35", "E41", "E57", "E69")] == [
        "분노",
        "슬픔",
        "불안",
        "상처",
        "당황",
        "기쁨",
    ]
    assert aihub_label(" e18 ") == "분노"
    assert aihub_label("E70") is None and aihub_label("X18") is None and aihub_label("") is None


def test_aihub_user_turns_become_rows_with_major_class_labels():
    data = json.loads(AIHUB_SAMPLE.read_text(encoding="utf-8"))
    result = read_source(AIHUB_SAMPLE)
    rows = result.rows
    assert result.rejects.empty
    # Every non-empty HS turn is a row; nothing else is.
    expected = {
        f"{d['talk']['id']['talk-id']}-{turn}": d["talk"]["content"][turn]
        for d in data
        for turn in ("HS01", "HS02", "HS03")
        if d["talk"]["content"][turn].strip()
    }
    assert dict(zip(rows["id"], rows["text"])) == expected
    assert len(rows) == len(expected) < 3 * len(data)  # empty HS03 turns are skipped
    system_turns = {d["talk"]["content"][t] for d in data for t in ("SS01", "SS02", "SS03")} - {""}
    assert not system_turns & set(rows["text"])
    assert set(rows["label"]) == set(AIHUB_LABELS) == {"분노", "슬픔", "불안", "상처", "당황", "기쁨"}
    by_talk = rows.assign(talk=rows["id"].str.rsplit("-", n=1).str[0]).groupby("talk")["label"].first()
    assert by_talk["Pro_90001_00001"] == "분노" and by_talk["Pro_90006_00006"] == "기쁨"
    assert any("분노" in note for note in result.notes)


def test_aihub_unknown_code_is_kept_as_the_raw_label_and_a_broken_record_is_rejected(tmp_path):
    data = json.loads(AIHUB_SAMPLE.read_text(encoding="utf-8"))[:2]
    data[0]["profile"]["emotion"]["type"] = "E99"
    data.append({"talk": {"content": {"HS01": "프로필이 없는 대화"}}})
    p = write(tmp_path / "aihub.json", json.dumps(data, ensure_ascii=False))
    result = read_source(p)
    assert set(result.rows.loc[result.rows["id"].str.startswith("Pro_90001"), "label"]) == {"E99"}
    assert len(result.rejects) == 1
    assert result.rejects["source_row"].tolist() == [3]
    assert "lacks field" in result.rejects["reason"].iloc[0]
    assert "프로필이 없는 대화" in result.rejects["text"].iloc[0]  # the raw record is kept


# --- bad files: each has one documented outcome, nothing is lost -----------------------------


def test_missing_column_names_file_and_field(tmp_path):
    p = write(tmp_path / "nolabel.csv", "id,text,lable\n1,안녕하세요,normal\n")
    with pytest.raises(DataError) as err:
        read_source(p, id_col="id")
    assert err.value.file == str(p) and err.value.field == "label"
    assert str(p) in str(err.value) and "'label'" in str(err.value) and "lable" in str(err.value)


def test_missing_id_column_suggests_numbering(tmp_path):
    p = write(tmp_path / "noid.csv", "text,label\n안녕하세요,normal\n")
    with pytest.raises(DataError, match="missing id column 'id'") as err:
        read_source(p, id_col="id")
    assert err.value.field == "id"


def test_missing_column_in_jsonl_and_excel(tmp_path):
    p = write(tmp_path / "b.jsonl", '{"text": "안녕", "lbl": "normal"}\n')
    with pytest.raises(DataError) as err:
        read_source(p)
    assert err.value.field == "label" and err.value.file == str(p)
    x = tmp_path / "b.xlsx"
    pd.DataFrame({"text": ["안녕"], "lbl": ["normal"]}).to_excel(x, index=False)
    with pytest.raises(DataError) as err:
        read_source(x)
    assert err.value.field == "label" and err.value.file == str(x)


def test_unknown_label_is_quarantined_by_validate_with_the_label_named(tmp_path):
    body = "".join(f"{lab[0]}{k},{lab} 문장 {k},{lab}\n" for lab in ("normal", "emergency") for k in range(3))
    p = write(tmp_path / "b.csv", "id,text,label\n" + body + "x1,무슨 말인지 모르겠어요,unsure\n")
    raw = read_source(p, id_col="id").rows
    assert len(raw) == 7  # ingest keeps the row: labels are the validator's business
    valid, quarantined, _ = validate(raw, ("normal", "emergency"), ValidateConfig(min_rows_per_class=3))
    assert len(valid) + len(quarantined) == len(raw)
    assert quarantined["id"].tolist() == ["x1"]
    assert "'unsure'" in quarantined["reason"].iloc[0]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("zero.csv", b"", "empty"),
        ("header_only.csv", b"id,text,label\n", "header but no data rows"),
        ("blank.csv", b"\n \n", "empty"),
        ("zero.jsonl", b"", "empty"),
        ("blank.jsonl", b"\n\n", "empty"),
        ("zero.json", b"", "empty"),
    ],
)
def test_empty_files_are_data_errors(tmp_path, name, content, message):
    p = write(tmp_path / name, content)
    with pytest.raises(DataError, match=message) as err:
        read_source(p, id_col="id")
    assert err.value.file == str(p)


@pytest.mark.parametrize("name", ["photo.csv", "photo.jsonl", "photo.json", "photo.tsv"])
def test_binary_file_is_a_data_error(tmp_path, name):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 4
    p = write(tmp_path / name, png)
    with pytest.raises(DataError, match="binary") as err:
        read_source(p)
    assert err.value.file == str(p)


def test_corrupt_excel_is_a_data_error(tmp_path):
    p = write(tmp_path / "broken.xlsx", b"PK\x03\x04 this is not really a workbook")
    with pytest.raises(DataError, match="Excel") as err:
        read_source(p)
    assert err.value.file == str(p)


def test_truncated_aihub_json_names_line_and_column(tmp_path):
    full = AIHUB_SAMPLE.read_text(encoding="utf-8")
    p = write(tmp_path / "cut.json", full[: len(full) // 2])
    with pytest.raises(DataError, match=r"truncated JSON at line \d+, column \d+") as err:
        read_source(p)
    assert err.value.file == str(p) and err.value.row is not None and err.value.row > 1


def test_aihub_json_that_is_not_a_list_is_a_data_error(tmp_path):
    p = write(tmp_path / "obj.json", '{"profile": {}}')
    with pytest.raises(DataError, match="JSON list"):
        read_source(p)


def test_jsonl_broken_line_is_a_reject_and_other_rows_are_kept(tmp_path):
    broken = '{"id": "j2", "text": "끊긴 줄, "label": "normal"'
    lines = [
        '{"id": "j1", "text": "배가 아파요", "label": "distress"}',
        broken,
        '["not", "an", "object"]',
        "",
        '{"id": "j4", "text": "문이 안 열려요", "label": "confusion"}',
    ]
    p = write(tmp_path / "b.jsonl", "\n".join(lines) + "\n")
    result = read_source(p, id_col="id")
    assert result.rows["id"].tolist() == ["j1", "j4"]
    assert result.rows["source_row"].tolist() == [1, 5]
    assert result.rejects["source_row"].tolist() == [2, 3]
    assert result.rejects["text"].iloc[0] == broken  # raw content kept for a fix
    assert result.rejects["reason"].iloc[0].startswith("invalid JSON on line 2")
    assert "JSON object" in result.rejects["reason"].iloc[1]
    # Nothing lost: every non-blank line is a row or a reject.
    assert len(result.rows) + len(result.rejects) == sum(1 for line in lines if line.strip())


def test_jsonl_with_only_broken_lines_is_a_data_error(tmp_path):
    p = write(tmp_path / "b.jsonl", "{oops\n{also broken\n")
    with pytest.raises(DataError, match=r"no readable JSON line \(2 invalid\)"):
        read_source(p)


# --- the incoming folder and its ledger -----------------------------------------------------


@pytest.fixture
def incoming(tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    return folder, tmp_path / "batches", Ledger(tmp_path / "state" / "ledger.sqlite")


def batch_csv(rows: list[tuple[str, str, str]]) -> str:
    return "id,text,label\n" + "".join(f'{i},"{t}",{lab}\n' for i, t, lab in rows)


def test_a_new_file_is_ingested_once(incoming):
    folder, batches, ledger = incoming
    write(folder / "day1.csv", batch_csv(ROWS))
    first = ingest_incoming(folder, batches, ledger, id_col="id")
    assert [(e["name"], e["rows"], e["rejected"]) for e in first] == [("day1.csv", 3, 0)]
    assert Path(first[0]["batch_path"]).exists()
    assert ingest_incoming(folder, batches, ledger, id_col="id") == []
    rows, rejects = load_batches(ledger)
    assert records(rows) == ROWS and rejects.empty


def test_same_content_under_a_new_name_is_skipped(incoming):
    folder, batches, ledger = incoming
    write(folder / "day1.csv", batch_csv(ROWS))
    ingest_incoming(folder, batches, ledger, id_col="id")
    write(folder / "day1_copy.csv", batch_csv(ROWS))
    assert ingest_incoming(folder, batches, ledger, id_col="id") == []
    assert [e["name"] for e in ledger.entries()] == ["day1.csv"]
    assert len(load_batches(ledger)[0]) == 3


def test_a_new_file_adds_rows(incoming):
    folder, batches, ledger = incoming
    write(folder / "day1.csv", batch_csv(ROWS))
    ingest_incoming(folder, batches, ledger, id_col="id")
    write(folder / "day2.csv", batch_csv([("u9", "가스 냄새가 나요", "emergency")]))
    new = ingest_incoming(folder, batches, ledger, id_col="id")
    assert [e["name"] for e in new] == ["day2.csv"]
    rows, _ = load_batches(ledger)
    assert rows["id"].tolist() == ["u1", "u2", "u3", "u9"]
    assert len(ledger.entries()) == 2


def test_rejects_of_a_batch_are_kept(incoming):
    folder, batches, ledger = incoming
    write(folder / "d.jsonl", '{"id": "a", "text": "안녕", "label": "normal"}\n{broken\n')
    assert [(e["rows"], e["rejected"]) for e in ingest_incoming(folder, batches, ledger, id_col="id")] == [
        (1, 1)
    ]
    rows, rejects = load_batches(ledger)
    assert len(rows) == 1 and rejects["text"].tolist() == ["{broken"]


def test_a_bad_file_raises_is_not_recorded_and_is_retried_once_fixed(incoming):
    folder, batches, ledger = incoming
    bad = write(folder / "day3.csv", "id,txt,label\n1,안녕,normal\n")
    with pytest.raises(DataError) as err:
        ingest_incoming(folder, batches, ledger, id_col="id")
    assert err.value.file == str(bad) and err.value.field == "text"
    assert ledger.entries() == []
    write(bad, batch_csv(ROWS))  # the labeler fixes the header
    assert [e["name"] for e in ingest_incoming(folder, batches, ledger, id_col="id")] == ["day3.csv"]


def test_hidden_files_and_a_missing_folder_are_ignored(tmp_path, incoming):
    folder, batches, ledger = incoming
    write(folder / ".~lock.day1.csv#", "lock")
    assert ingest_incoming(folder, batches, ledger) == []
    assert ingest_incoming(tmp_path / "absent", batches, ledger) == []
    rows, rejects = load_batches(ledger)
    assert list(rows.columns) == RAW_COLUMNS and rows.empty and rejects.empty


def test_the_ledger_survives_a_new_process(tmp_path, incoming):
    folder, batches, ledger = incoming
    write(folder / "day1.csv", batch_csv(ROWS))
    ingest_incoming(folder, batches, ledger, id_col="id")
    reopened = Ledger(ledger.path)
    assert ingest_incoming(folder, batches, reopened, id_col="id") == []
    assert [e["name"] for e in reopened.entries()] == ["day1.csv"]


# --- files without a header row ---------------------------------------------------------------

HEADERLESS = (
    "12시 땡!,하루가 또 가네요.,0\n1지망 학교 떨어졌어,위로해 드립니다.,1\n"
    "3박4일 놀러가고 싶다,여행은 언제나 좋죠.,0\n"
)


@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t")])
def test_headerless_file_columns_are_named_by_position(tmp_path: Path, suffix: str, sep: str) -> None:
    src = write(tmp_path / f"nohead{suffix}", HEADERLESS.replace(",", sep))
    result = read_source(src, text_col="0", label_col="2", header=False)
    assert result.rows["text"].tolist() == ["12시 땡!", "1지망 학교 떨어졌어", "3박4일 놀러가고 싶다"]
    assert result.rows["label"].tolist() == ["0", "1", "0"]
    assert result.rows["source_row"].tolist() == [1, 2, 3]  # the first line is data, not a header


def test_headerless_file_read_with_a_header_says_to_pass_no_header(tmp_path: Path) -> None:
    src = write(tmp_path / "nohead.csv", HEADERLESS)
    with pytest.raises(DataError, match="missing text column 'Q'.*pass --no-header"):
        read_source(src, text_col="Q", label_col="label")
    with pytest.raises(DataError, match="by position only with --no-header"):
        read_source(write(tmp_path / "head.csv", CSV_TEXT), text_col="1", label_col="2")


def test_no_header_is_refused_for_formats_without_rows_of_cells(tmp_path: Path) -> None:
    src = write(tmp_path / "a.jsonl", '{"text": "안녕", "label": "normal"}\n')
    with pytest.raises(DataError, match="--no-header applies to CSV and TSV"):
        read_source(src, header=False)
