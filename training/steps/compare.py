"""Step `compare`: train several model families on the same frozen split, several seeds each, score every
model on the frozen test split and write a leaderboard (training/evaluation/leaderboard.py).

Families are named by short specs (`parse_families`): `linear`, `kobert-tiny`, `kobert`, `kobert:<name>`,
`hf:<name>`. Each becomes a few params keys over the same resolved configuration; the full-profile ones
(pretrained encoders) also take the `params.full.yaml` overlay, the values `heara train --overlay
params.full.yaml` uses for a real fine-tune, so that a family is compared with the settings it would be
trained with. Precedence, lowest first: params.yaml, params.full.yaml (full-profile families only), the
--overlay files, --set (which may not name the model: `check_overrides`), the family's keys, then
`train.seed` per run (the resolved seed, plus 0, 1, ...).

Every run trains through `fit_model` (no MLflow, no test split: the test rows are scored only, after
training) and is scored like `heara evaluate` (`Predictor.load` + `evaluate`). MLflow: one parent run
(`compare-<time>`, tags heara.kind=compare and heara.study) and one child per (family, seed) with an
explicit `mlflow.parentRunId` tag and flat tags heara.study, heara.family, heara.seed, heara.trial (the
MLflow UI shows nesting only in some sort orders, mlflow#15802; the leaderboard artifact does not depend
on it). A child logs its resolved configuration as params and as `params.yaml`; `heara train --params
<that file> --data-dir DIR` then `heara evaluate` with the same options reproduces it. A family that fails
(an `hf:` name that cannot be loaded offline, say) becomes a row with its error, and its other seeds are
not tried: they would fail alike.
"""

from __future__ import annotations

import gc
import logging
import re
import secrets
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from training.config import Params, set_dotted
from training.errors import ConfigError
from training.paths import FULL_OVERLAY, display_path, state
from training.steps.train import base_model_tag, check_inputs, fit_model
from training.steps.workspace import DataFiles, task_dir

if TYPE_CHECKING:
    from training.evaluation.leaderboard import RunScore

log = logging.getLogger("heara.pipeline")

KOBERT_NAME = "skt/kobert-base-v1"
FAMILY_KEYS = ("model.family", "model.profile", "model.name")  # what a family spec decides
SPEC_HELP = "linear, kobert-tiny, kobert, kobert:<name or folder>, hf:<name or folder>"


@dataclass(frozen=True)
class FamilySpec:
    """One entry of --families: its name (the leaderboard row) and the params keys it sets."""

    name: str
    overrides: dict[str, str] = field(default_factory=dict)  # dotted key -> value

    @property
    def full(self) -> bool:
        """A pretrained encoder: trained with the params.full.yaml overlay."""
        return self.overrides.get("model.profile") == "full"

    @property
    def overlays(self) -> tuple[Path, ...]:
        return (FULL_OVERLAY,) if self.full else ()


def parse_family(spec: str) -> FamilySpec:
    """`linear` -> model.family=linear; `kobert-tiny` -> kobert, profile tiny; `kobert` -> kobert, profile
    full, skt/kobert-base-v1 (`kobert:<name>` another copy of it, e.g. a local folder); `hf:<name>` -> any
    encoder through the Auto classes, profile full."""
    spec = spec.strip()
    kind, _, name = spec.partition(":")
    if spec == "linear":
        return FamilySpec(spec, {"model.family": "linear"})
    if spec == "kobert-tiny":
        return FamilySpec(spec, {"model.family": "kobert", "model.profile": "tiny"})
    if spec == "kobert" or (kind == "kobert" and name.strip()):
        full = {"model.family": "kobert", "model.profile": "full"}
        return FamilySpec(spec, {**full, "model.name": name.strip() or KOBERT_NAME})
    if kind == "hf" and name.strip():
        return FamilySpec(spec, {"model.family": "hf", "model.profile": "full", "model.name": name.strip()})
    raise ConfigError(f"unknown model family '{spec}' in --families: use {SPEC_HELP}")


def parse_families(text: str) -> list[FamilySpec]:
    """A comma-separated --families value, in order; each family once."""
    specs = [parse_family(part) for part in text.split(",") if part.strip()]
    if not specs:
        raise ConfigError(f"--families is empty: name at least one of {SPEC_HELP}")
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"--families names {', '.join(twice)} twice: use --seeds for repeated runs")
    return specs


def check_overrides(keys: set[str]) -> None:
    """--set may not decide what --families decides (it would make every family the same model)."""
    clash = sorted(k for k in keys if k in FAMILY_KEYS)
    if clash:
        raise ConfigError(
            f"--set {', '.join(clash)} is decided per family by --families; name the model there "
            "(e.g. hf:klue/bert-base or kobert:/models/kobert)"
        )


def seeds_for(params: Params, n: int) -> list[int]:
    """The seeds of a family's runs: the resolved train.seed, then the next n-1 integers."""
    return [params.train.seed + i for i in range(n)]


def with_seed(params: Params, seed: int) -> Params:
    return Params.model_validate(set_dotted(params.to_dict(), "train.seed", seed))


def slug(name: str) -> str:
    """A family name as a file or metric name part: hf:klue/bert-base -> hf-klue-bert-base."""
    return re.sub(r"[^\w.-]+", "-", name).strip("-")


def compare_step(
    family_params: Mapping[str, Params],
    files: DataFiles | None = None,
    *,
    seeds: int = 3,
    keep_models: bool = False,
) -> dict[str, Any]:
    """Train each family (name -> its resolved params) `seeds` times, score each model on the frozen test
    split, log parent and child MLflow runs and write the leaderboard under
    `<task folder>/compare/<study>/`. Returns the study, the parent run, the rows and the files."""
    import mlflow

    from training.evaluation import leaderboard
    from training.registry import tracking

    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if not family_params:
        raise ConfigError(f"no family to compare: name at least one of {SPEC_HELP}")
    files = files or DataFiles.default()
    first = next(iter(family_params.values()))
    if first.task_type == "multilabel":
        raise ConfigError(
            "heara compare ranks single-label tasks; for a multi-label task train and evaluate each family "
            "on the same --data-dir (heara train --set model.family=..., then heara evaluate): both log "
            "micro-, macro- and samples-F1 (docs/labels.md)"
        )
    for name, p in family_params.items():  # one test split, one label set, one way of scoring
        if (p.task, p.labels, p.evaluate) != (first.task, first.labels, first.evaluate):
            raise ValueError(f"family {name} differs from the others in task, labels or evaluate settings")
    splits = files.load()
    labels = list(first.labels) or sorted(splits["train"]["label"].unique())
    check_inputs(first, splits, labels, files)
    train_data = {"train": splits["train"], "val": splits["val"]}  # training never sees the test rows
    test = splits["test"]

    started = datetime.now()
    study = f"{started:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    out = task_dir(first.task) / "compare" / study
    work_root = state().training_runs(first.task) / f"compare-{study}"
    exp_id = tracking.setup(first.task)
    data_dir = _data_dir(files)
    meta: dict[str, Any] = {
        "study": study,
        "task": first.task,
        "data": display_path(data_dir) if data_dir else "the DVC pipeline's outputs",
        "seeds": seeds,
        "test_rows": len(test),
        "short_max_chars": first.evaluate.short_max_chars,
        "short_rows": int(sum(len(str(t)) <= first.evaluate.short_max_chars for t in test["text"])),
        "labels": labels,
        "support": {lab: int(n) for lab, n in test["label"].astype(str).value_counts().items()},
        "ci_level": first.promote.ci_level,
        "bootstrap_samples": first.promote.bootstrap_samples,
        "created": started.astimezone(timezone.utc).isoformat(timespec="seconds"),
        "reproduce": _reproduce_hint(out, data_dir),
    }
    tags = {"heara.kind": "compare", "heara.study": study, "heara.task": first.task}
    with mlflow.start_run(
        experiment_id=exp_id, run_name=f"compare-{started:%Y%m%d-%H%M%S}", tags=tags
    ) as parent:
        meta["parent_run_id"] = parent.info.run_id
        mlflow.log_params({"families": ",".join(family_params), "seeds": seeds, "test_rows": len(test)})
        mlflow.set_tags(
            {
                "heara.git_commit": tracking.git_commit() or "unknown",
                **{f"heara.data.{n}.sha256": _hash(df) for n, df in splits.items()},
            }
        )
        runs: list[RunScore] = []
        total = len(family_params) * seeds
        for name, params in family_params.items():
            failed: RunScore | None = None
            for seed in seeds_for(params, seeds):
                if failed is not None:  # the same configuration but the seed: it would fail alike
                    runs.append(_skipped(failed, seed, len(runs) + 1))
                    continue
                score = _run_one(
                    name,
                    with_seed(params, seed),
                    trial=len(runs) + 1,
                    train_data=train_data,
                    test=test,
                    labels=labels,
                    parent_id=parent.info.run_id,
                    study=study,
                    exp_id=exp_id,
                    params_file=out / "runs" / f"{slug(name)}-seed{seed}" / "params.yaml",
                    work=work_root / f"{slug(name)}-seed{seed}",
                    keep_model=keep_models,
                )
                runs.append(score)
                _log_progress(score, total)
                failed = None if score.ok else score
        rows = leaderboard.summarise(
            runs, test["label"].astype(str).to_numpy(), n=meta["bootstrap_samples"], level=meta["ci_level"]
        )
        paths = leaderboard.write(rows, runs, labels, meta, out)
        for path in paths:
            mlflow.log_artifact(str(path))
        mlflow.log_metrics(_parent_metrics(rows))
    if not keep_models:
        shutil.rmtree(work_root, ignore_errors=True)
    best = next((r for r in rows if r.ok), None)
    log.info("compare: leaderboard in %s (MLflow run %s)", out, parent.info.run_id)
    return {
        "study": study,
        "task": first.task,
        "parent_run_id": parent.info.run_id,
        "out_dir": str(out),
        "files": [str(p) for p in paths],
        "best": best.family if best else None,
        "rows": rows,
        "runs": runs,
        "meta": meta,
    }


def _run_one(
    name: str,
    params: Params,
    *,
    trial: int,
    train_data: dict[str, pd.DataFrame],
    test: pd.DataFrame,
    labels: list[str],
    parent_id: str,
    study: str,
    exp_id: str,
    params_file: Path,
    work: Path,
    keep_model: bool,
) -> RunScore:
    """One child run: train, score, log; an exception becomes a RunScore with the error (run FAILED)."""
    import mlflow

    from training.evaluation.leaderboard import RunScore
    from training.registry import tracking

    seed = params.train.seed
    tags = {
        "mlflow.parentRunId": parent_id,  # explicit: nested=True alone is not what every reader checks
        "heara.kind": "compare-run",
        "heara.study": study,
        "heara.family": name,
        "heara.seed": str(seed),
        "heara.trial": str(trial),
        "heara.task": params.task,
        "heara.model_family": params.model.family,
        "heara.base_model": base_model_tag(params),
    }
    base = RunScore(name, seed, trial, params.model.family)
    params.save(
        params_file, header=f"heara compare {study}: {name}, seed {seed} (reproduce: heara train --params)"
    )
    run_id = None
    try:
        with mlflow.start_run(
            experiment_id=exp_id, run_name=f"{slug(name)}-seed{seed}", nested=True, tags=tags
        ) as child:
            run_id = child.info.run_id
            tracking.log_params(params.to_dict())
            mlflow.log_artifact(str(params_file))
            score, metrics = _train_and_score(name, params, trial, train_data, test, labels, work)
            score.run_id = run_id
            mlflow.log_metrics(metrics)
            return score
    except Exception as e:  # one family's failure is a row of the leaderboard, not the end of the study
        log.debug("compare: %s seed %d failed", name, seed, exc_info=True)
        message = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:300]
        if run_id:
            mlflow.MlflowClient().set_tag(run_id, "heara.error", message)
        base.run_id, base.error = run_id, message
        return base
    finally:
        _release_memory()
        if not keep_model:
            shutil.rmtree(work, ignore_errors=True)


def _log_progress(score: RunScore, total: int) -> None:
    """The one line per finished run that long studies show as they go."""
    where = f"compare [{score.trial}/{total}] {score.family} seed {score.seed}"
    if score.ok:
        log.info("%s: test macro-F1 %.4f, trained in %.1f s", where, score.macro_f1, score.train_seconds)
    else:
        log.warning(
            "%s failed: %s (heara -v shows the traceback); its other seeds are skipped", where, score.error
        )


def _skipped(failed: RunScore, seed: int, trial: int) -> RunScore:
    from dataclasses import replace

    return replace(failed, seed=seed, trial=trial, run_id=None, error=f"not run: seed {failed.seed} failed")


def _train_and_score(
    name: str,
    params: Params,
    trial: int,
    train_data: dict[str, pd.DataFrame],
    test: pd.DataFrame,
    labels: list[str],
    work: Path,
) -> tuple[RunScore, dict[str, float]]:
    """Fit on train (select on val), then score on the frozen test split as `heara evaluate` does."""
    import mlflow

    from training.evaluation.leaderboard import RunScore
    from training.evaluation.metrics import evaluate, flat_metrics
    from training.model.predictor import Predictor

    base_dir = work.parent / "base"  # the tiny base depends on the train texts only: shared by the runs
    _before_timing(params, train_data["train"]["text"].tolist(), base_dir)
    t0 = time.perf_counter()
    model_dir, result = fit_model(
        params,
        train_data,
        labels,
        work,
        on_epoch=lambda epoch, record: mlflow.log_metrics(record, step=epoch),
        resume=False,
        base_dir=base_dir,
    )
    train_seconds = time.perf_counter() - t0
    predictor = Predictor.load(model_dir, device=params.train.device)
    ev = evaluate(predictor.predict_proba, test, predictor.labels, params.evaluate)
    latency = _cpu_latency_p95(predictor, model_dir, ev.metrics, ev.texts, params)
    size = predictor.size_bytes()
    m = ev.metrics
    score = RunScore(
        name,
        params.train.seed,
        trial,
        params.model.family,
        y_pred=ev.y_pred,
        macro_f1=m["macro_f1"],
        weighted_f1=m["weighted_f1"],
        top_k_accuracy=dict(m["top_k_accuracy"]),
        per_class_f1={lab: pc["f1"] for lab, pc in m["per_class"].items()},
        slices={k: s["macro_f1"] for k, s in m["slices"].items()},
        latency_p95_ms=latency,
        size_bytes=size,
        train_seconds=train_seconds,
    )
    metrics = {
        **flat_metrics(ev),
        "cpu_latency_p95_ms": latency,
        "model_size_bytes": float(size),
        "train_seconds": train_seconds,
        "best_val_macro_f1": result.best_val_macro_f1,
        "epochs_run": float(result.epochs_run),
    }
    return score, metrics


def _before_timing(params: Params, train_texts: list[str], base_dir: Path) -> None:
    """What no run's training time should include: imports (torch, a transformers model module) that only
    the first run of a study would pay, and the tiny profile's base model (its SentencePiece vocabulary),
    which depends on the train texts alone and is built once per study. (A full-profile model's module is
    imported by its first run: finding it would mean asking the hub, and minutes of training dwarf it.)"""
    if params.model.family == "linear":
        import training.trainer.linear  # noqa: F401  (scikit-learn)

        return
    import training.trainer.loop  # noqa: F401  (torch, transformers)
    from training.model.build import tiny_kobert_dir

    if params.model.family == "kobert" and params.model.profile == "tiny":
        import transformers.models.bert.modeling_bert  # noqa: F401  (the tiny model is a BERT)

        tiny_kobert_dir(train_texts, base_dir, params.model.tiny_vocab_size)


def _cpu_latency_p95(predictor, model_dir: Path, metrics: dict, texts: list[str], params: Params) -> float:
    """p95 ms per text on the CPU: evaluate's own figure when it ran there, else measured again on a CPU
    copy of the model (the leaderboard compares what a CPU host would serve)."""
    if predictor.device == "cpu":
        return float(metrics["latency_ms_p95"])
    from training.model.predictor import Predictor

    cpu = Predictor.load(model_dir, device="cpu")
    return cpu.latency_ms(texts, n=params.evaluate.latency_samples)["p95"]


def _release_memory() -> None:
    """Between runs: the last model's memory back, on the GPU too (a study holds several large models)."""
    gc.collect()
    torch = sys.modules.get("torch")  # never imported for a linear-only study
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _data_dir(files: DataFiles) -> Path | None:
    """The prepared folder, when the three splits come from one (`--data-dir`)."""
    parents = {files.train.parent, files.val.parent, files.test.parent}
    return parents.pop() if len(parents) == 1 else None


def _reproduce_hint(out: Path, data_dir: Path | None) -> str:
    options = f"--params {display_path(out)}/runs/<family>-seed<seed>/params.yaml"
    if data_dir is not None:
        options += f" --data-dir {display_path(data_dir)}"
    return f"heara train {options} && heara evaluate {options}"


def _hash(df: pd.DataFrame) -> str:
    from training.data.split import content_hash

    return content_hash(df)


def _parent_metrics(rows) -> dict[str, float]:
    """Each family's headline figures on the parent run, for MLflow's run comparison views."""
    out: dict[str, float] = {}
    for r in (r for r in rows if r.ok):
        key = slug(r.family)
        out |= {
            f"{key}.test_macro_f1_mean": r.macro_f1,
            f"{key}.test_macro_f1_ci_low": r.ci_low,
            f"{key}.test_macro_f1_ci_high": r.ci_high,
        }
        if r.weighted_f1 is not None:
            out[f"{key}.test_weighted_f1_mean"] = r.weighted_f1
        for k, acc in r.top_k_accuracy.items():
            if acc is not None:
                out[f"{key}.test_top{k}_accuracy_mean"] = acc
        if r.latency_p95_ms is not None:
            out[f"{key}.cpu_latency_p95_ms"] = r.latency_p95_ms
    return out
