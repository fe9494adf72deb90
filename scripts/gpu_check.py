"""`make gpu-check`: the prepared GPU check (issue #11) in one run of at most 8 minutes, every figure kept.

    python3 scripts/gpu_check.py [--dry-run] [--out DIR] [--budget 480] [--only STEP,...]
                                 [--no-install] [--python PYTHON]

The steps, in order (their command lines are in one table, COMMANDS, below):
  install        `make install`: the project's environment, torch pinned by requirements.lock (the CUDA
                 build from PyPI where /opt/wheels holds no local CPU wheel)
  nvidia-smi     its output saved as nvidia-smi.txt, the driver and CUDA versions read from it
                 (where it is missing, that is recorded)
  torch-cuda     torch as the steps' interpreter sees it: version, CUDA build, is_available, device name,
                 capability, bf16, memory; one timed bf16 matrix product (a sign that the card computes);
                 which of the project's packages import
  gpu-tests      `pytest -m gpu tests/gpu` with a JUnit report: passed, failed, skipped, each skip's reason
  bench-train    `heara bench train --model-size base --seq-len 64 --steps 50`
  bench-serve-*  `heara bench serve --model-size base`, Heara only, 15 s, at concurrency 128 and 256,
                 each in the topologies single and split

Each step runs as a subprocess in a process group of its own, its output streamed to <step>.log, under its
own time limit cut to what is left of the total budget. A step out of time gets SIGINT (pytest and bench
serve then stop the servers they started), SIGKILL after a grace period, and is recorded as `timeout`; the
next step runs. After every step, processes it left behind (found by HEARA_GPU_CHECK_RUN in their
environment: servers start sessions of their own) are killed, so that none holds the GPU during the next.
A step's figures are the last JSON line its command printed (its JUnit report for the tests).

Output, one folder per run (default `$HEARA_HOME/gpu-check/<UTC start time>/`, or --out): <step>.json and
<step>.log for each step, nvidia-smi.txt, gpu-tests.xml, and summary.json: the card, torch and CUDA
versions, each step's status (ok, failed, timeout, skipped), seconds, reason and figures. summary.json is
rewritten after every step, so a run killed from outside still leaves what it measured. The last line
printed is summary.json as one line; the exit status is 0 only when no step failed or ran out of time.

--dry-run: the same steps, folder and summary on a CPU machine in about a minute, each heavy command
replaced by a cheap one that goes through the same parsing and judging: bench train on the tiny model for
2 steps on the CPU, the GPU tests as they are (which then skip, saying why), and each bench serve command
line with `--help` appended (exit 0 only if every flag exists). What that proves and what it does not:
docs/benchmarks.md, "GPU check".

This driver uses only the standard library (and training.paths, which does too), so that any python3 runs
it before the project's environment exists; the steps run with the project's interpreter (--python, else
the .venv that `make install` made, else this one).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python scripts/gpu_check.py` puts scripts/ first, not the project
    sys.path.insert(0, str(ROOT))

from training.paths import state  # noqa: E402

BUDGET_S = 480  # 8 minutes in all: a lent GPU machine gives a session 15, and a rerun must fit
STOP_GRACE_S = 25  # after SIGINT: bench serve's stop() waits 20 s before it SIGKILLs a server
MIN_STEP_S = 10  # a step that would get less than this is not started (recorded as a timeout)
MARKER = "HEARA_GPU_CHECK_RUN"  # in every process a step starts, servers included: strays are found by it
HELP = (
    "--help",
)  # as a dry-run equivalent: the same command line plus --help (exit 0 iff every flag exists)
# Imported by the project's code; the probe reports each, so a missing one is named before a step fails on it.
PROJECT_MODULES = (
    "torch",
    "transformers",
    "tokenizers",
    "sentencepiece",
    "pydantic",
    "typer",
    "pandas",
    "pyarrow",
    "sklearn",
    "kiwipiepy",
    "bentoml",
    "mlflow",
    "flask",
    "httpx",
    "psutil",
    "pytest",
)


@dataclass(frozen=True)
class Step:
    """One command of the check. In argv, "heara" is `<python> -m training.cli` and "python" the steps'
    interpreter (both run this checkout's code); "{out}" is the run's folder."""

    name: str
    argv: tuple[str, ...]  # on a GPU machine
    dry: tuple[str, ...] | None  # the --dry-run equivalent: None = the same, HELP = argv plus --help
    limit_s: float  # its own time limit (the budget may cut it)


def cmd(line: str) -> tuple[str, ...]:
    return tuple(line.split())


SERVE = "heara bench serve --model-size base --peers heara --duration 15"
# The whole check, in order: (step, command on a GPU, its --dry-run equivalent, time limit in seconds).
# The limits are estimates with room to spare (nothing has been measured on a GPU yet); together they exceed
# the budget on purpose: a limit stops one hung step, the budget the whole run, and each step's limit is cut
# to what is left. bench serve's flags are those of its rewrite (--model-size, --topology, --peers).
COMMANDS: tuple[Step, ...] = (
    Step("install", cmd("make install"), None, 150),
    Step("nvidia-smi", cmd("nvidia-smi"), None, 30),
    Step("torch-cuda", cmd("python scripts/gpu_check.py --probe"), None, 60),
    Step(
        "gpu-tests",
        cmd("python -m pytest -m gpu tests/gpu -q -rA -p no:cacheprovider --timeout 240")
        + cmd("--junitxml {out}/gpu-tests.xml"),
        None,
        180,
    ),
    Step(
        "bench-train",
        cmd("heara bench train --model-size base --seq-len 64 --steps 50"),
        cmd("heara bench train --model-size tiny --steps 2 --batch-size 8 --device cpu"),
        90,
    ),
    Step("bench-serve-c128-single", cmd(f"{SERVE} --concurrency 128 --topology single"), HELP, 90),
    Step("bench-serve-c128-split", cmd(f"{SERVE} --concurrency 128 --topology split"), HELP, 90),
    Step("bench-serve-c256-single", cmd(f"{SERVE} --concurrency 256 --topology single"), HELP, 90),
    Step("bench-serve-c256-split", cmd(f"{SERVE} --concurrency 256 --topology split"), HELP, 90),
)


# --- parsing (pure; tests/system/test_gpu_check.py) -----------------------------------------------------


def last_json(text: str) -> dict[str, Any] | None:
    """The last line of `text` that is a JSON object (the benchmarks print their result last)."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            with suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    return value
    return None


def parse_junit(path: Path) -> dict[str, Any] | None:
    """Counts and per-test outcomes of a pytest JUnit XML report (None when there is none)."""
    if not path.exists():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return None
    outcomes = {"skipped": "skipped", "failure": "failed", "error": "error"}
    cases = []
    for case in root.iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in outcomes:
                outcome, message = outcomes[child.tag], child.get("message", "")
                break
        cases.append(
            {
                "test": f"{case.get('classname', '')}::{case.get('name', '')}",
                "outcome": outcome,
                "seconds": round(float(case.get("time", 0) or 0), 2),
                "message": message[:500],
            }
        )
    counts = Counter(c["outcome"] for c in cases)
    return {
        "tests": len(cases),
        "passed": counts["passed"],
        "failed": counts["failed"],
        "errors": counts["error"],
        "skipped": counts["skipped"],
        "skip_reasons": sorted({c["message"] for c in cases if c["outcome"] == "skipped"}),
        "cases": cases,
    }


def parse_nvidia_smi(text: str) -> dict[str, Any]:
    """Driver and CUDA versions and the GPUs' names from `nvidia-smi`'s table (names may be cut short)."""
    driver = re.search(r"Driver Version:\s*(\S+)", text)
    cuda = re.search(r"CUDA Version:\s*(\S+)", text)
    gpus = re.findall(r"^\|\s+\d+\s+(.+?)\s{2,}(?:On|Off)\s+\|", text, re.MULTILINE)
    return {
        "driver_version": driver.group(1) if driver else None,
        "cuda_version": cuda.group(1) if cuda else None,
        "gpus": gpus,
    }


def help_options(text: str) -> list[str]:
    """The long options a command's --help lists."""
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text)))


def reason_from_log(text: str, limit: int = 300) -> str:
    """The line of a failed command's output that most likely says why: its last error line, else its last
    line (framing characters of rich's panels stripped)."""
    lines = [ln.strip(" │╭╮╰╯─|") for ln in text.splitlines()]
    lines = [ln.strip() for ln in lines if ln.strip()]
    errors = [ln for ln in lines if re.search(r"error|no such option|exception|traceback", ln, re.I)]
    return (errors or lines or [""])[-1][:limit]


def budget_limit(own_s: float, left_s: float, grace_s: float = STOP_GRACE_S) -> float:
    """A step's time limit: its own, cut so that it and its stop (grace_s) fit in what is left."""
    return max(0.0, min(own_s, left_s - grace_s))


# --- judging: (status, reason) of a finished step ---------------------------------------------------------


def judge_install(rc: int | None, figures: Any, log: str, dry: bool) -> tuple[str, str]:
    return ("ok", "") if rc == 0 else ("failed", reason_from_log(log))


def judge_nvidia_smi(rc: int | None, figures: Any, log: str, dry: bool) -> tuple[str, str]:
    if rc is None:  # not found
        return ("skipped" if dry else "failed"), "nvidia-smi not found: no NVIDIA driver on this machine"
    return ("ok", "") if rc == 0 else ("failed", reason_from_log(log))


def judge_probe(rc: int | None, figures: Any, log: str, dry: bool) -> tuple[str, str]:
    if rc != 0 or not figures:
        return "failed", reason_from_log(log)
    if "torch_error" in figures:
        return "failed", f"torch does not import: {figures['torch_error']}"
    missing = [m for m, ok in figures.get("modules", {}).items() if not ok]
    note = f"missing packages: {', '.join(missing)}" if missing else ""
    if not figures.get("cuda_available") and not dry:
        build = "a CPU build" if figures.get("torch_cuda") is None else f"CUDA {figures['torch_cuda']}"
        return "failed", f"torch {figures.get('torch')} ({build}) sees no CUDA device" + (
            f"; {note}" if note else ""
        )
    return "ok", note


def judge_tests(rc: int | None, figures: Any, log: str, dry: bool) -> tuple[str, str]:
    if not figures:
        return "failed", "no JUnit report: " + reason_from_log(log)
    counts = f"{figures['passed']} passed, {figures['failed']} failed, {figures['errors']} errors, "
    counts += f"{figures['skipped']} skipped"
    if figures["failed"] or figures["errors"] or rc not in (0, None):
        return "failed", counts
    if figures["tests"] == 0:
        return "failed", "no gpu test collected"
    if figures["skipped"]:
        unexplained = [c["test"] for c in figures["cases"] if c["outcome"] == "skipped" and not c["message"]]
        if unexplained:
            return "failed", f"skipped without a reason: {', '.join(unexplained)}"
        if not dry:  # on a GPU machine a skip means the GPU was not used
            return "failed", f"{counts}: {'; '.join(figures['skip_reasons'])}"
        return "ok", f"{counts}: {'; '.join(figures['skip_reasons'])}"
    return "ok", counts


def judge_train(rc: int | None, figures: Any, log: str, dry: bool) -> tuple[str, str]:
    if rc != 0 or not figures:
        return "failed", reason_from_log(log) or "no JSON line"
    if not dry and (
        not str(figures.get("device", "")).startswith("cuda") or figures.get("precision") != "bf16"
    ):
        return "failed", f"ran on {figures.get('device')} in {figures.get('precision')}, not cuda in bf16"
    return "ok", ""


def judge_serve(rc: int | None, figures: Any, log: str, dry: bool) -> tuple[str, str]:
    if rc != 0 or not figures:
        return "failed", reason_from_log(log) or "no JSON line"
    device = figures.get("device")
    if not dry and device is not None and not str(device).startswith("cuda"):
        return "failed", f"served on {device}, not cuda"
    return "ok", ""


Judge = Callable[[int | None, Any, str, bool], tuple[str, str]]


def judge_for(name: str) -> Judge:
    if name.startswith("bench-serve"):
        return judge_serve
    return {
        "install": judge_install,
        "nvidia-smi": judge_nvidia_smi,
        "torch-cuda": judge_probe,
        "gpu-tests": judge_tests,
        "bench-train": judge_train,
    }[name]


def figures_for(step: Step, rc: int | None, log: str, out: Path, dry: bool) -> Any:
    """What a finished step measured, from its output (and report files)."""
    if step.name == "install":
        return {}
    if step.name == "nvidia-smi":
        return parse_nvidia_smi(log)
    if step.name == "gpu-tests":
        return parse_junit(out / "gpu-tests.xml")
    if dry and step.dry == HELP:  # the options --help lists (none when a flag was refused)
        return {"help": True, "options": help_options(log)} if rc == 0 else None
    return last_json(log)


# --- running ------------------------------------------------------------------------------------------


def resolve_argv(argv: tuple[str, ...], python: str, out: Path) -> list[str]:
    head = {"heara": [python, "-m", "training.cli"], "python": [python]}.get(argv[0], [argv[0]])
    return head + [a.replace("{out}", str(out)) for a in argv[1:]]


def command_for(step: Step, dry: bool) -> tuple[str, ...]:
    if not dry or step.dry is None:
        return step.argv
    return step.argv + HELP if step.dry == HELP else step.dry


def child_env(run: str) -> dict[str, str]:
    """This environment, plus: this checkout first on the import path, unbuffered output, telemetry off,
    the run's marker, and short network retries (a machine without a package registry fails fast)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "BENTOML_DO_NOT_TRACK": "True",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DVC_NO_ANALYTICS": "1",
            MARKER: run,
        }
    )
    env.setdefault("PIP_RETRIES", "1")
    env.setdefault("PIP_DEFAULT_TIMEOUT", "15")
    env.setdefault("UV_HTTP_TIMEOUT", "15")
    return env


def kill_marked(run: str) -> list[int]:
    """SIGKILL every process (but this one) whose environment carries this run's marker: what a step left
    behind, servers that started sessions of their own included (Linux /proc; elsewhere nothing)."""
    needle = f"{MARKER}={run}".encode()
    killed = []
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        with suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


def run_command(
    argv: list[str], log_path: Path, env: dict[str, str], limit_s: float
) -> tuple[int | None, bool]:
    """(exit status, timed out): argv in its own process group, output into log_path. Out of time: SIGINT
    to the group, SIGKILL after STOP_GRACE_S. A program that does not exist gives (None, False)."""
    with open(log_path, "wb") as log:
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # A shell starts background jobs with SIGINT ignored, and children inherit that (Python
                # then never installs KeyboardInterrupt): give the step SIGINT's default back.
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        except FileNotFoundError as exc:
            log.write(f"not found: {exc}\n".encode())
            return None, False
        try:
            return proc.wait(timeout=limit_s), False
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            return proc.returncode, True
        finally:
            if proc.poll() is None:  # interrupted from outside (Ctrl-C): take the group down with us
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


class Check:
    """One run of the check: its folder, clock, interpreter and the records of the steps so far."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.monotonic()
        self.started_utc = datetime.now(timezone.utc)
        self.run = self.started_utc.strftime("%Y%m%dT%H%M%SZ")
        self.out = Path(args.out) if args.out else state().gpu_checks / self.run
        self.out.mkdir(parents=True, exist_ok=True)
        self.python = args.python or sys.executable
        self.records: list[dict[str, Any]] = []
        self.env = child_env(f"{self.run}-{os.getpid()}")  # two runs started in one second stay apart

    def left_s(self) -> float:
        return self.args.budget - (time.monotonic() - self.started)

    def say(self, message: str) -> None:
        print(f"gpu-check {time.monotonic() - self.started:6.1f}s  {message}", flush=True)

    def pick_python(self, install_status: str) -> None:
        """After `make install`: its .venv when it is complete, unless --python named an interpreter."""
        venv = ROOT / ".venv" / "bin" / "python"
        if not self.args.python and install_status in ("ok", "skipped") and venv.exists():
            self.python = str(venv)

    def step(self, index: int, step: Step) -> dict[str, Any]:
        dry = self.args.dry_run
        argv = resolve_argv(command_for(step, dry), self.python, self.out)
        record: dict[str, Any] = {"step": step.name, "command": argv, "log": f"{step.name}.log"}
        limit = budget_limit(step.limit_s, self.left_s())
        prefix = f"[{index}/{len(COMMANDS)}] {step.name}"
        if self.args.only and step.name not in self.args.only:
            record.update(status="skipped", reason="not selected (--only)", seconds=0.0, figures=None)
        elif step.name == "install" and self.args.no_install:
            record.update(status="skipped", reason="--no-install", seconds=0.0, figures=None)
        elif limit < MIN_STEP_S:
            reason = f"not started: {self.left_s():.0f} s of the budget left"
            record.update(status="timeout", reason=reason, seconds=0.0, figures=None)
        else:
            self.say(f"{prefix} (limit {limit:.0f} s): {' '.join(argv)}")
            if step.name == "gpu-tests":  # a report an earlier run left in this folder is not this run's
                (self.out / "gpu-tests.xml").unlink(missing_ok=True)
            t0 = time.monotonic()
            rc, timed_out = run_command(argv, self.out / f"{step.name}.log", self.env, limit)
            seconds = round(time.monotonic() - t0, 1)
            strays = kill_marked(self.env[MARKER])
            log = (self.out / f"{step.name}.log").read_text(encoding="utf-8", errors="replace")
            figures = figures_for(step, rc, log, self.out, dry)
            if timed_out:
                status, reason = "timeout", f"over its limit of {limit:.0f} s"
            else:
                status, reason = judge_for(step.name)(rc, figures, log, dry)
            record.update(status=status, reason=reason, seconds=seconds, returncode=rc, figures=figures)
            if strays:
                record["strays_killed"] = strays
            if step.name == "nvidia-smi" and rc is not None:
                (self.out / "nvidia-smi.txt").write_text(log.split("\n", 1)[-1], encoding="utf-8")
        self.say(f"{prefix}: {record['status']}" + (f" ({record['reason']})" if record["reason"] else ""))
        (self.out / f"{step.name}.json").write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n")
        return record

    def summary(self, complete: bool) -> dict[str, Any]:
        by_name = {r["step"]: r for r in self.records}
        probe = (by_name.get("torch-cuda") or {}).get("figures") or {}
        smi = (by_name.get("nvidia-smi") or {}).get("figures") or {}
        return {
            "check": "gpu",
            "dry_run": self.args.dry_run,
            "complete": complete,
            "ok": complete and all(r["status"] in ("ok", "skipped") for r in self.records),
            "started_utc": self.started_utc.isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - self.started, 1),
            "budget_s": self.args.budget,
            "out": str(self.out),
            "python": self.python,
            "card": probe.get("device_name") or (smi.get("gpus") or [None])[0],
            "capability": probe.get("capability"),
            "bf16": probe.get("bf16"),
            "torch": probe.get("torch"),
            "torch_cuda": probe.get("torch_cuda"),
            "cuda_available": probe.get("cuda_available"),
            "driver": smi.get("driver_version"),
            "driver_cuda": smi.get("cuda_version"),
            "statuses": {r["step"]: r["status"] for r in self.records},
            "steps": [
                {k: r.get(k) for k in ("step", "status", "seconds", "reason", "figures")}
                for r in self.records
            ],
        }

    def write_summary(self, complete: bool) -> dict[str, Any]:
        summary = self.summary(complete)
        (self.out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
        return summary

    def run_all(self) -> dict[str, Any]:
        mode = "dry run (CPU equivalents)" if self.args.dry_run else "GPU run"
        self.say(f"{mode}: folder {self.out}, budget {self.args.budget:.0f} s")
        try:
            for index, step in enumerate(COMMANDS, 1):
                record = self.step(index, step)
                self.records.append(record)
                if step.name == "install":
                    self.pick_python(record["status"])
                    self.say(f"steps run with {self.python}")
                self.write_summary(complete=False)
        finally:
            kill_marked(self.env[MARKER])
        return self.write_summary(complete=True)


# --- the probe (run by the steps' interpreter: `python scripts/gpu_check.py --probe`) -------------------


def _matmul_tflops(torch: Any, n: int = 8192, repeat: int = 10) -> float:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeat):
        a @ b
    torch.cuda.synchronize()
    return round(2 * n**3 * repeat / (time.perf_counter() - t0) / 1e12, 1)


def probe() -> dict[str, Any]:
    """torch's view of the machine, and which of the project's packages this interpreter has."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "modules": {m: importlib.util.find_spec(m) is not None for m in PROJECT_MODULES},
    }
    try:
        import torch
    except Exception as exc:  # whatever breaks the import (a missing CUDA library, say) is the finding
        info["torch_error"] = f"{type(exc).__name__}: {exc}"
        return info
    info.update(
        torch=torch.__version__,
        torch_cuda=torch.version.cuda,
        cuda_available=torch.cuda.is_available(),
        device_count=torch.cuda.device_count(),
        device_name=None,
    )
    if info["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        free, total = torch.cuda.mem_get_info(0)
        info.update(
            device_name=props.name,
            capability=f"{props.major}.{props.minor}",
            multiprocessors=props.multi_processor_count,
            bf16=torch.cuda.is_bf16_supported(),
            memory_total_mib=round(total / 2**20),
            memory_free_mib=round(free / 2**20),
            cudnn=torch.backends.cudnn.version(),
            matmul_bf16_tflops=_matmul_tflops(torch),
        )
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU-cheap equivalents of the heavy commands")
    parser.add_argument(
        "--out", type=Path, help="the run's folder (default: $HEARA_HOME/gpu-check/<UTC time>)"
    )
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for the whole check")
    parser.add_argument(
        "--only",
        type=lambda s: {x.strip() for x in s.split(",") if x.strip()},
        help="steps to run, comma-separated (the others are recorded as skipped): "
        + ", ".join(s.name for s in COMMANDS),
    )
    parser.add_argument(
        "--no-install", action="store_true", help="skip `make install` (an environment exists)"
    )
    parser.add_argument(
        "--python", help="the interpreter the steps run with (default: .venv's after install)"
    )
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # the torch-cuda step's child
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(), ensure_ascii=False), flush=True)
        return 0
    unknown = (args.only or set()) - {s.name for s in COMMANDS}
    if unknown:
        parser.error(f"--only: no step named {', '.join(sorted(unknown))}")
    summary = Check(args).run_all()
    print(json.dumps(summary, ensure_ascii=False), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
