"""scripts/gpu_check.py (`make gpu-check`): its parsing and judging, its time limits, and a whole dry run.

The dry run (`--dry-run`, about a minute on an idle 2-core machine) goes through every step, folder and
summary as the GPU run does, with CPU-cheap commands: on a machine without CUDA the gpu tests must be
skipped with a reason, and bench train's tiny figures must be parsed. The bench serve steps only check
that the GPU command line is accepted (`--help` appended): they pass once `heara bench serve` has the
flags of its rewrite (--model-size, --topology, --peers) and until then must fail saying which option is
missing, which is what the GPU run would do.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training.paths import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "gpu_check.py"
SERVE_FLAGS = {"--model-size", "--topology", "--peers", "--concurrency", "--duration"}


@pytest.fixture(scope="module")
def gc():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def serve_has_its_new_flags() -> bool:
    """Whether `heara bench serve` has been rewritten with the flags the GPU run uses (read from the CLI
    itself, as Click sees it, not from a function name)."""
    from typer.main import get_command

    from training.cli import app

    serve = get_command(app).commands["bench"].commands["serve"]
    return SERVE_FLAGS <= {opt for param in serve.params for opt in param.opts}


# --- pure helpers ---------------------------------------------------------------------------------------


def test_last_json_takes_the_last_object_line(gc) -> None:
    text = 'loading\n{"a": 1}\nnot json {\n{"b": 2, "c": [1]}\n[1, 2]\n{broken}\ndone\n'
    assert gc.last_json(text) == {"b": 2, "c": [1]}
    assert gc.last_json("no figures here\n") is None


def test_parse_junit_counts_and_keeps_skip_reasons(gc, tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="4">'
        '<testcase classname="tests.gpu.test_a" name="test_ok" time="0.5"/>'
        '<testcase classname="tests.gpu.test_a" name="test_skip" time="0">'
        '<skipped type="pytest.skip" message="no CUDA GPU: torch 2.13.0+cpu is a CPU build"/></testcase>'
        '<testcase classname="tests.gpu.test_b" name="test_bad" time="1.0"><failure message="assert 1 == 2"/>'
        '</testcase><testcase classname="tests.gpu.test_b" name="test_err" time="0"><error message="boom"/>'
        "</testcase></testsuite></testsuites>"
    )
    r = gc.parse_junit(report)
    assert (r["tests"], r["passed"], r["failed"], r["errors"], r["skipped"]) == (4, 1, 1, 1, 1)
    assert r["skip_reasons"] == ["no CUDA GPU: torch 2.13.0+cpu is a CPU build"]
    assert r["cases"][2] == {
        "test": "tests.gpu.test_b::test_bad",
        "outcome": "failed",
        "seconds": 1.0,
        "message": "assert 1 == 2",
    }
    assert gc.parse_junit(tmp_path / "missing.xml") is None


def test_parse_nvidia_smi_reads_driver_cuda_and_cards(gc) -> None:
    text = (
        "+-----------------------------------------------------------------------------------------+\n"
        "| NVIDIA-SMI 580.159.04             Driver Version: 580.159.04     CUDA Version: 13.0     |\n"
        "|-----------------------------------------+------------------------+----------------------+\n"
        "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |\n"
        "|=========================================+========================+======================|\n"
        "|   0  NVIDIA H100 80GB HBM3          On  |   00000000:00:05.0 Off |                    0 |\n"
    )
    assert gc.parse_nvidia_smi(text) == {
        "driver_version": "580.159.04",
        "cuda_version": "13.0",
        "gpus": ["NVIDIA H100 80GB HBM3"],
    }


def test_reason_from_log_finds_the_error_line_in_a_rich_panel(gc) -> None:
    log = "Usage: heara bench serve [OPTIONS]\n╭─ Error ──╮\n│ No such option: --topology │\n╰──────╯\n"
    assert gc.reason_from_log(log) == "No such option: --topology"
    assert gc.reason_from_log("one\ntwo\n") == "two"


def test_budget_cuts_a_step_to_what_is_left(gc) -> None:
    assert gc.budget_limit(90, 400, grace_s=25) == 90
    assert gc.budget_limit(90, 100, grace_s=25) == 75
    assert gc.budget_limit(90, 20, grace_s=25) == 0


def test_commands_resolve_to_this_checkout_and_dry_equivalents(gc, tmp_path: Path) -> None:
    train = next(s for s in gc.COMMANDS if s.name == "bench-train")
    assert gc.resolve_argv(gc.command_for(train, dry=False), "/py", tmp_path)[:6] == [
        "/py",
        "-m",
        "training.cli",
        "bench",
        "train",
        "--model-size",
    ]
    assert "--device" in gc.command_for(train, dry=True) and "cpu" in gc.command_for(train, dry=True)
    tests = next(s for s in gc.COMMANDS if s.name == "gpu-tests")
    assert f"{tmp_path}/gpu-tests.xml" in gc.resolve_argv(tests.argv, "/py", tmp_path)
    for step in gc.COMMANDS:
        if step.name.startswith("bench-serve"):
            assert SERVE_FLAGS <= set(step.argv) and "heara" in step.argv[1:] + ("heara",)
            assert gc.command_for(step, dry=True) == step.argv + ("--help",)


def test_a_skip_is_fine_in_a_dry_run_and_a_failure_on_a_gpu(gc) -> None:
    skipped = {
        "tests": 2,
        "passed": 0,
        "failed": 0,
        "errors": 0,
        "skipped": 2,
        "skip_reasons": ["no CUDA GPU: x"],
        "cases": [{"test": "a", "outcome": "skipped", "message": "no CUDA GPU: x"}] * 2,
    }
    assert gc.judge_tests(0, skipped, "", dry=True)[0] == "ok"
    assert gc.judge_tests(0, skipped, "", dry=False) == (
        "failed",
        "0 passed, 0 failed, 0 errors, 2 skipped: no CUDA GPU: x",
    )
    unexplained = {**skipped, "cases": [{"test": "a", "outcome": "skipped", "message": ""}]}
    assert gc.judge_tests(0, unexplained, "", dry=True) == ("failed", "skipped without a reason: a")
    no_cuda = {
        "torch": "2.13.0+cpu",
        "torch_cuda": None,
        "cuda_available": False,
        "modules": {"bentoml": False},
    }
    assert gc.judge_probe(0, no_cuda, "", dry=True) == ("ok", "missing packages: bentoml")
    status, reason = gc.judge_probe(0, no_cuda, "", dry=False)
    assert status == "failed" and "CPU build" in reason and "bentoml" in reason
    cpu_train = {"benchmark": "train", "device": "cpu", "precision": "fp32"}
    assert gc.judge_train(0, cpu_train, "", dry=True)[0] == "ok"
    assert gc.judge_train(0, cpu_train, "", dry=False)[0] == "failed"
    assert gc.judge_serve(0, {"rps": 1.0, "device": "cpu"}, "", dry=False)[0] == "failed"


def test_a_command_out_of_time_is_interrupted_and_strays_are_killed(gc, tmp_path: Path) -> None:
    env = gc.child_env("unit-run")
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    t0 = time.monotonic()
    rc, timed_out = gc.run_command(sleeper, tmp_path / "sleep.log", env, limit_s=1)
    assert timed_out and rc is not None and time.monotonic() - t0 < 20  # SIGINT ended it, no grace spent
    assert gc.run_command(["no-such-program-here"], tmp_path / "x.log", env, 5) == (None, False)
    # a server that started a session of its own outlives its group: the marker finds it
    stray = subprocess.Popen(sleeper, env=env, start_new_session=True)
    try:
        assert gc.kill_marked("unit-run") == [stray.pid]
        assert stray.wait(timeout=10) == -signal.SIGKILL
    finally:
        if stray.poll() is None:
            stray.kill()


def test_out_of_budget_steps_are_recorded_not_started(gc, tmp_path: Path, capsys) -> None:
    rc = gc.main(["--dry-run", "--budget", "5", "--out", str(tmp_path), "--only", "torch-cuda"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 1 and summary["complete"] and not summary["ok"]
    assert summary["statuses"]["torch-cuda"] == "timeout" and summary["statuses"]["install"] == "skipped"
    assert "not started" in summary["steps"][2]["reason"] and not (tmp_path / "torch-cuda.log").exists()


# --- the whole dry run --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("gpu-check")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    argv = [
        sys.executable,
        str(SCRIPT),
        "--dry-run",
        "--no-install",
        "--python",
        sys.executable,
        "--out",
        str(out),
    ]
    proc = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=400)
    return proc, out


@pytest.mark.heavy  # the dry run (about a minute and a half on 2 cores): CI's heavy step
@pytest.mark.timeout(450)
def test_dry_run_summary_has_every_step_in_order(gc, dry_run) -> None:
    import torch

    proc, out = dry_run
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary == json.loads((out / "summary.json").read_text(encoding="utf-8")), proc.stdout
    names = [s.name for s in gc.COMMANDS]
    assert [s["step"] for s in summary["steps"]] == names == list(summary["statuses"])
    assert summary["dry_run"] and summary["complete"] and summary["out"] == str(out)
    assert summary["torch"] == torch.__version__ and summary["torch_cuda"] == torch.version.cuda
    assert summary["cuda_available"] == torch.cuda.is_available()
    assert proc.returncode == (0 if summary["ok"] else 1)
    for step in summary["steps"]:
        assert set(step) == {"step", "status", "seconds", "reason", "figures"}
        record = json.loads((out / f"{step['step']}.json").read_text(encoding="utf-8"))
        assert record["status"] == step["status"] and record["figures"] == step["figures"]
        if step["status"] != "skipped":
            assert (out / f"{step['step']}.log").read_text(encoding="utf-8").startswith("$ ")
    # each step's seconds (rounded to 0.1) lie within the run's, which lies within the budget
    assert sum(s["seconds"] for s in summary["steps"]) <= summary["seconds"] + 0.5
    assert summary["seconds"] <= summary["budget_s"]


@pytest.mark.heavy
@pytest.mark.timeout(450)
def test_dry_run_statuses_and_figures(dry_run) -> None:
    import torch

    proc, out = dry_run
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    steps = {s["step"]: s for s in summary["steps"]}
    assert steps["install"]["status"] == "skipped" and steps["install"]["reason"] == "--no-install"

    smi = steps["nvidia-smi"]
    if shutil.which("nvidia-smi") is None:
        assert smi["status"] == "skipped" and "not found" in smi["reason"]
        assert not (out / "nvidia-smi.txt").exists()
    else:
        assert smi["status"] == "ok" and (out / "nvidia-smi.txt").exists()

    probe = steps["torch-cuda"]
    assert probe["status"] == "ok" and probe["figures"]["modules"]["torch"] is True
    assert probe["figures"]["cuda_available"] == torch.cuda.is_available()

    tests = steps["gpu-tests"]
    assert tests["status"] == "ok", tests["reason"]
    figures = tests["figures"]
    assert figures["tests"] >= 7 and figures["failed"] == figures["errors"] == 0
    if not torch.cuda.is_available():  # every gpu test skipped, each saying why
        assert figures["skipped"] == figures["tests"] and figures["passed"] == 0
        assert all(c["message"].startswith("no CUDA GPU: ") for c in figures["cases"])
        assert figures["skip_reasons"] and figures["skip_reasons"][0] in tests["reason"]
    assert (out / "gpu-tests.xml").exists()

    train = steps["bench-train"]
    assert train["status"] == "ok", train["reason"]
    assert train["figures"]["benchmark"] == "train" and train["figures"]["model_size"] == "tiny"
    assert train["figures"]["device"] == "cpu" and train["figures"]["steps"] == 2
    assert train["figures"]["samples_per_s"] > 0 and train["figures"]["ratio"] > 0

    serve = [s for name, s in steps.items() if name.startswith("bench-serve")]
    assert len(serve) == 4
    if serve_has_its_new_flags():
        for s in serve:
            assert s["status"] == "ok", s["reason"]
            assert SERVE_FLAGS <= set(s["figures"]["options"])
        assert summary["ok"] and proc.returncode == 0
    else:  # the rewrite of bench serve has not landed here yet: the check says which flag is missing
        for s in serve:
            assert s["status"] == "failed" and "No such option: --" in s["reason"]
        assert not summary["ok"] and proc.returncode == 1
