"""Every user mistake ends as one clear line on stderr (`error: ...`), exit code 2 and no traceback;
and what used to be a mistake with a prepared folder (another task's labels) now simply works."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli import app

runner = CliRunner()
FAST = ["--set", "preprocess.spacing=none", "--set", "augment.enabled=false"]  # seconds, not a minute
ENDINGS = {
    "기쁨": ["와서 정말 기뻐요", "선물을 줘서 행복해요", "칭찬해 줘서 신나요"],
    "슬픔": ["떠나서 너무 슬퍼요", "아파서 눈물이 나요", "안 와서 외로워요"],
    "불안": ["연락이 없어서 걱정돼요", "늦게 와서 불안해요", "다쳤을까 봐 무서워요"],
}


def three_class_csv(path: Path, n_per_class: int = 20, labels: dict[str, str] | None = None) -> Path:
    """A small 3-class Korean file (columns 문장, 감정); `labels` renames the classes."""
    rng = random.Random(0)
    rows = [
        {
            "문장": f"{rng.choice(['오늘', '어제', '요즘', '아까'])} {who} {rng.choice(ends)} {i}",
            "감정": (labels or {}).get(label, label),
        }
        for label, ends in ENDINGS.items()
        for i, who in enumerate(["친구가", "딸이", "손주가", "이웃이"] * (n_per_class // 4))
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def assert_one_line_error(result, *expected: str) -> str:
    """Exit code 2, exactly one `error:` line on stderr holding every expected fragment, no traceback."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in expected:
        assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return errors[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("mistakes-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEARA_HOME", str(folder))
        yield folder


@pytest.fixture(scope="module")
def prepared(home: Path) -> Path:
    """A prepared 3-class folder (task 'threeclass'): labels params.yaml knows nothing of."""
    src = three_class_csv(home / "ThreeClass.csv")
    out = home / "prepared"
    result = runner.invoke(
        app,
        [
            "data",
            "prepare",
            "--source",
            str(src),
            "--text-col",
            "문장",
            "--label-col",
            "감정",
            "--out",
            str(out),
            *FAST,
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def test_prepare_records_task_and_labels(prepared: Path) -> None:
    info = json.loads((prepared / "dataset.json").read_text(encoding="utf-8"))
    assert info["task"] == "threeclass" and info["labels"] == ["기쁨", "불안", "슬픔"]


@pytest.fixture(scope="module")
def trained(prepared: Path):
    # No --set task=..., labels=... or augment.multipliers={}: dataset.json gives task and labels.
    return runner.invoke(
        app, ["train", "--data-dir", str(prepared), "--set", "train.epochs=1", "--set", "train.max_steps=2"]
    )


def test_train_on_a_prepared_folder_with_other_labels_just_works(trained, home: Path) -> None:
    result = trained
    assert result.exit_code == 0, result.output
    candidate = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    assert candidate["task"] == "threeclass" and candidate["labels"] == ["기쁨", "불안", "슬픔"]
    assert (home / "models" / "threeclass" / "candidate.json").exists()
    assert "LOAD REPORT" not in result.output and "classification head initialised" in result.output
    assert (
        "runs/danger" not in result.output and "heara-danger" not in result.output
    )  # not params.yaml's task


def test_evaluate_with_data_the_candidate_was_not_trained_on(trained, home: Path) -> None:
    assert trained.exit_code == 0  # a candidate of task 'threeclass', labels 기쁨/불안/슬픔
    other = home / "other"
    src = three_class_csv(home / "other.csv", labels={"기쁨": "happy", "슬픔": "sad", "불안": "anxious"})
    prep = runner.invoke(
        app,
        [
            "data",
            "prepare",
            "--source",
            str(src),
            "--text-col",
            "문장",
            "--label-col",
            "감정",
            "--task",
            "threeclass",
            "--out",
            str(other),
            *FAST,
        ],
    )
    assert prep.exit_code == 0, prep.output
    result = runner.invoke(app, ["evaluate", "--data-dir", str(other)])
    assert_one_line_error(result, "are not among", "trained on other labels", "test.parquet")


def test_train_with_labels_that_do_not_fit_the_data(prepared: Path) -> None:
    result = runner.invoke(
        app,
        ["train", "--data-dir", str(prepared), "--set", "labels=[a,b]", "--set", "augment.multipliers={}"],
    )
    assert_one_line_error(result, "are not among ['a', 'b']", "--data-dir")


def test_predict_on_a_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["predict", "--input", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "o.csv")]
    )
    assert_one_line_error(result, "input file not found", "nope.csv")


def test_a_multi_label_column_in_a_single_label_task_says_how_to_train_it(tmp_path: Path) -> None:
    rng = random.Random(1)
    codes = [str(c) for c in (0, 6, 10, 22, 3)]
    labels = [",".join(sorted(rng.sample(codes, rng.randint(1, 3)), key=int)) for _ in range(300)]
    src = tmp_path / "goemotions.csv"
    pd.DataFrame({"text": [f"문장 {i}번 입니다" for i in range(300)], "label": labels}).to_csv(
        src, index=False
    )
    # Said to be single-label (--single-label): the label lists stop it, with what to do instead.
    result = runner.invoke(
        app,
        ["data", "prepare", "--source", str(src), "--out", str(tmp_path / "o"), "--single-label", *FAST],
    )
    line = assert_one_line_error(
        result, "this looks like multi-label data", "--multilabel --label-sep ','", "goemotions.csv"
    )
    assert "too few rows" not in line and len(line) < 500
    # Not said: the label lists are detected and the file is prepared as a multi-label task.
    result = runner.invoke(
        app, ["data", "prepare", "--source", str(src), "--out", str(tmp_path / "p"), *FAST]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "p" / "report.json").read_text(encoding="utf-8"))
    assert report["task_type_detected"]["separator"] == "," and report["task_type"] == "multilabel"
    info = json.loads((tmp_path / "p" / "dataset.json").read_text(encoding="utf-8"))
    assert info["task_type"] == "multilabel" and info["labels"] == ["0", "10", "22", "3", "6"]


def test_headerless_file_without_no_header(tmp_path: Path) -> None:
    src = tmp_path / "nohead.csv"
    src.write_text("12시 땡!,하루가 또 가네요.,0\n1지망 학교 떨어졌어,위로해 드립니다.,0\n", encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "data",
            "prepare",
            "--source",
            str(src),
            "--text-col",
            "Q",
            "--label-col",
            "label",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert_one_line_error(result, "missing text column 'Q'", "--no-header")


def test_headerless_file_with_no_header_is_read_by_position(tmp_path: Path) -> None:
    src = tmp_path / "nohead.csv"
    pd.read_csv(three_class_csv(tmp_path / "with-header.csv")).to_csv(src, index=False, header=False)
    result = runner.invoke(
        app,
        [
            "data",
            "prepare",
            "--source",
            str(src),
            "--no-header",
            "--text-col",
            "0",
            "--label-col",
            "1",
            "--out",
            str(tmp_path / "o"),
            *FAST,
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rows_read"] == 60 and summary["task"] == "nohead"


def test_bench_baseline_on_a_missing_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "baseline", "--data-dir", str(tmp_path / "missing")])
    assert_one_line_error(result, "data folder", "missing", "not found")


def test_bench_baseline_takes_task_and_labels_from_the_folder(prepared: Path) -> None:
    result = runner.invoke(app, ["bench", "baseline", "--data-dir", str(prepared), "--set", "split.seed=1"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["task"] == "threeclass" and 0 <= figures["test_macro_f1"] <= 1


@pytest.mark.parametrize("command", [["train"], ["bench", "baseline"], ["config", "show"]])
def test_unknown_set_key(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--set", "trian.epochs=1"])
    assert_one_line_error(result, "unknown key 'trian'")


def test_unreadable_overlay_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "baseline", "--overlay", str(tmp_path / "params.gpu.yaml")])
    assert_one_line_error(result, "params.gpu.yaml", "file not found")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [epochs: 1\n", encoding="utf-8")
    result = runner.invoke(app, ["train", "--overlay", str(bad)])
    assert_one_line_error(result, "bad.yaml", "not valid YAML")


def test_a_task_name_that_cannot_name_a_model(tmp_path: Path) -> None:
    src = three_class_csv(tmp_path / "a.csv")
    result = runner.invoke(
        app, ["data", "prepare", "--source", str(src), "--task", "My Task", "--out", str(tmp_path)]
    )
    assert_one_line_error(result, "task 'My Task'", "lowercase")


def test_training_on_cuda_without_a_gpu(prepared: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = runner.invoke(app, ["train", "--data-dir", str(prepared), "--set", "train.device=cuda"])
    assert_one_line_error(result, "train.device is 'cuda'")


def test_predict_with_a_label_column_that_is_not_there(
    tmp_path: Path, tiny_model_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARA_MODEL_DIR", str(tiny_model_factory(tmp_path / "model")))
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": ["안녕"]}).to_csv(src, index=False)
    result = runner.invoke(
        app, ["predict", "--input", str(src), "--output", str(tmp_path / "o.csv"), "--label-col", "gold"]
    )
    assert_one_line_error(result, "missing label column 'gold'")


def test_rollback_and_forced_promotion_to_a_version_without_weights(register_tiny, tmp_path: Path) -> None:
    """Issue #15, finding 8: the version is refused, by name and missing file; the champion stays."""
    from mlflow import MlflowClient

    from training.registry.aliases import CHAMPION, alias_version
    from training.registry.tracking import tracking_uri

    good, weightless = register_tiny(champion=True), register_tiny(without=("model.safetensors",))
    pd.DataFrame({"id": ["a"], "text": ["도와주세요"], "label": ["emergency"]}).to_parquet(
        tmp_path / "test.parquet"
    )
    # the baseline floor off: this folder has no train split to fit it on, and servability is under test
    promote = ["promote", "--version", str(weightless), "--force", "--data-dir", str(tmp_path)]
    promote += ["--set", "promote.require_beat_baseline=false"]
    for args in (["rollback", "--to", str(weightless)], promote):
        result = runner.invoke(app, args)
        assert_one_line_error(
            result, f"heara-danger version {weightless} cannot be served", "model.safetensors"
        )
        assert alias_version(MlflowClient(tracking_uri()), "heara-danger", CHAMPION) == good
