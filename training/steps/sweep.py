"""Step `sweep`: a hyperparameter search with Optuna over one model family, scored on validation only.

Four phases; `heara sweep` runs them in one command, the heara_sweep DAG runs each as a task:

1. `start_sweep`: the study (maximise validation macro-F1) on its storage and the MLflow parent run. The
   base configuration, family, trial budget, deadline and parent run are stored as the study's user
   attributes, so every worker (another process, another machine) runs the same search.
2. `run_worker`: `study.optimize` on the shared study. A trial is the base params with the sampled values
   applied, trained by `fit_model` on the train and val splits (never test), its per-epoch validation
   macro-F1 reported to Optuna so that the pruner can stop it; an MLflow child run per trial.
3. `clean_up`: trials left RUNNING by a worker that died are marked FAIL (PostgreSQL: by heartbeat), and
   so are their MLflow runs.
4. `finish_sweep`: the leaderboard, the best configuration as a params overlay (only the keys that differ
   from params.yaml), and the only use of the test split: the best model scored once (and, if asked,
   the family's configuration as set, for comparison).

Storage: a SQLite file for one worker process; PostgreSQL (RDBStorage with heartbeats) for parallel
workers: Optuna's SQLite storage fails with "database is locked" under concurrent writers (optuna#820).
Sampler: TPE with `constant_liar` (running trials count as bad ones, so parallel workers spread out,
optuna#1547), seeded per worker. Not Optuna's MLflowCallback: it creates no parent run (optuna#5148)
and fails with n_jobs > 1 (optuna#4088); the runs here name their parent with `mlflow.parentRunId`.

Augmentation happens at `prepare` time, so `augment_scale` does not augment again: a trial trains on the
share of the prepared augmented rows that its smaller multipliers would have produced
(`training.data.augment.fewer_augmented`), and the overlay records those multipliers, which take effect
when the data is prepared again (`heara data prepare`, the retrain DAG's augment task).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import multiprocessing
import re
import shutil
import sys
import time
import typing
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml
from pydantic import ValidationError

from training.config import Params, load_params, set_dotted
from training.data.reports import write_json
from training.env import sweep_storage
from training.errors import ConfigError, HearaError, NotFoundError
from training.paths import params_path, state
from training.steps.workspace import DataFiles, sweep_dir

if TYPE_CHECKING:
    import optuna

    from training.config import _Space

log = logging.getLogger("heara.sweep")

# `--family` -> the params.yaml keys that select it, and the `sweep:` section holding its space.
FAMILIES: dict[str, dict[str, Any]] = {
    "kobert-tiny": {"model.family": "kobert", "model.profile": "tiny"},
    "linear": {"model.family": "linear"},
}
SPACE_SECTION = {"kobert-tiny": "kobert_tiny", "linear": "linear"}
AUGMENT_KEY = "augment.multipliers"  # set through a scale (`augment_scale`), not to a sampled value
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}  # trial state -> MLflow status
_ATTR = "heara."  # prefix of the study's and trials' user attributes written here


# --------------------------------------------------------------------------- the search space


def family_params(params: Params, family: str) -> Params:
    """`params` with the keys that select `family` (`FAMILIES`) set."""
    if family not in FAMILIES:
        raise ConfigError(f"sweep family '{family}': choose one of {', '.join(FAMILIES)}")
    return _with(params, dict(FAMILIES[family]))


def _with(params: Params, values: dict[str, Any]) -> Params:
    tree = params.to_dict()
    for key, value in values.items():
        set_dotted(tree, key, value)
    try:
        return Params.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(
            "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        ) from None


def space_of(params: Params, family: str) -> _Space:
    return getattr(params.sweep, SPACE_SECTION[family])


@dataclass(frozen=True)
class Dimension:
    """One searched value: its name in the space, the params.yaml key it sets, how it is sampled."""

    name: str
    key: str
    kind: str  # "range" | "choice"
    values: tuple
    log: bool = False
    integer: bool = False

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.values))
        low, high = self.values
        if self.integer:
            return trial.suggest_int(self.name, int(low), int(high), log=self.log)
        return _round(trial.suggest_float(self.name, float(low), float(high), log=self.log))

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return value in self.values
        return self.values[0] <= value <= self.values[1]


def _round(x: float) -> float:
    """Three significant digits: what the overlay records is what the trial trained with."""
    return float(f"{x:.3g}")


def dimensions(params: Params, family: str) -> list[Dimension]:
    """The family's space as Dimensions, without those that cannot apply to `params`: `augment_scale`
    needs augmentation by per-class multipliers (not disabled, no target balance)."""
    space = space_of(params, family)
    aug = params.augment
    out = []
    for name, info in type(space).model_fields.items():
        extra = info.json_schema_extra or {}
        if extra["sets"] == AUGMENT_KEY and (
            not aug.enabled or aug.target_balance is not None or not aug.multipliers
        ):
            continue  # nothing to scale: augmentation is off, or set by augment.target_balance
        args = typing.get_args(info.annotation)
        out.append(
            Dimension(
                name=name,
                key=extra["sets"],
                kind=extra["kind"],
                values=tuple(getattr(space, name)),
                log=bool(extra.get("log")),
                integer=extra["kind"] == "range" and args[0] is int,
            )
        )
    return out


def apply_values(base: Params, values: dict[str, Any], dims: list[Dimension]) -> Params:
    """The base params with one trial's values set (`augment_scale` scales every multiplier, at least 1).
    A combination the config rejects raises ConfigError (the trial fails, the sweep goes on)."""
    by_name = {d.name: d for d in dims}
    changes: dict[str, Any] = {}
    for name, value in values.items():
        key = by_name[name].key
        if key == AUGMENT_KEY:
            changes[key] = {lab: max(1.0, round(m * value, 2)) for lab, m in base.augment.multipliers.items()}
        else:
            changes[key] = value
    return _with(base, changes)


def default_values(base: Params, dims: list[Dimension]) -> dict[str, Any]:
    """The base configuration's own values of the searched keys (the enqueued first trial); a value
    outside its range is left for the sampler."""
    tree = base.to_dict()
    out = {}
    for d in dims:
        value: Any = 1.0 if d.key == AUGMENT_KEY else _get(tree, d.key)
        if d.contains(value):
            out[d.name] = value
        else:
            log.info(
                "sweep: the configured %s %r is outside %s: not in the default trial", d.key, value, d.values
            )
    return out


def _get(tree: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree[part]
    return tree


# --------------------------------------------------------------------------- storage


def storage_url(params: Params, override: str | None = None) -> str:
    """The study's storage: `override` (--storage, the DAG form), HEARA_SWEEP_STORAGE, sweep.storage,
    else a SQLite file in the state folder. PostgreSQL URLs get the installed driver (psycopg 3)."""
    url = override or sweep_storage(params.sweep.storage) or f"sqlite:///{state().sweep_db}"
    return re.sub(r"^postgres(?:ql)?://", "postgresql+psycopg://", url)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def display_url(url: str) -> str:
    """The URL without its password, for logs and MLflow."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def check_workers(url: str, workers: int) -> None:
    if workers > 1 and is_sqlite(url):
        raise ConfigError(
            f"{workers} parallel workers need a PostgreSQL storage (--storage postgresql://... or "
            f"HEARA_SWEEP_STORAGE): Optuna's SQLite storage ({display_url(url)}) is for one process"
        )


def open_storage(url: str, heartbeat_s: int):
    """RDBStorage; on PostgreSQL with heartbeats, so that trials of a killed worker can be failed."""
    import optuna

    if is_sqlite(url):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(url)
    with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_s)


def _sampler(params: Params, worker: int):
    import optuna

    # Each worker its own seed: with one seed, parallel workers would draw the same random start-up trials.
    return optuna.samplers.TPESampler(
        seed=params.sweep.seed + worker, n_startup_trials=params.sweep.startup_trials, constant_liar=True
    )


def _pruner(params: Params, family: str):
    import optuna

    cfg = params.sweep
    if cfg.pruner == "hyperband":
        most = space_of(params, family).epochs[1] if family == "kobert-tiny" else 1
        return optuna.pruners.HyperbandPruner(
            min_resource=min(max(1, cfg.warmup_epochs), most), max_resource=most, reduction_factor=3
        )
    return optuna.pruners.MedianPruner(n_startup_trials=cfg.startup_trials, n_warmup_steps=cfg.warmup_epochs)


# --------------------------------------------------------------------------- the sweep's record


@dataclass(frozen=True)
class Sweep:
    """What every phase needs, read back from the study's user attributes."""

    study: str
    family: str
    base: Params  # params.yaml (+ overlays, --set, the data's task and labels) with the family selected
    trials: int  # the budget: trials in all, over every worker
    deadline: float | None  # no trial starts after this (epoch seconds)
    workers: int
    parent_run_id: str
    experiment_id: str
    params_file: str  # the params.yaml the overlay is written against

    @property
    def task(self) -> str:
        return self.base.task

    @property
    def folder(self) -> Path:
        return sweep_dir(self.task, self.study)

    def attrs(self) -> dict[str, Any]:
        return {
            f"{_ATTR}family": self.family,
            f"{_ATTR}base": self.base.to_dict(),
            f"{_ATTR}trials": self.trials,
            f"{_ATTR}deadline": self.deadline,
            f"{_ATTR}workers": self.workers,
            f"{_ATTR}parent_run_id": self.parent_run_id,
            f"{_ATTR}experiment_id": self.experiment_id,
            f"{_ATTR}params_file": self.params_file,
        }

    @classmethod
    def of(cls, study: optuna.Study) -> "Sweep":
        a = study.user_attrs
        if f"{_ATTR}family" not in a:
            raise ConfigError(f"study '{study.study_name}' was not created by `heara sweep`")
        return cls(
            study=study.study_name,
            family=a[f"{_ATTR}family"],
            base=Params.model_validate(a[f"{_ATTR}base"]),
            trials=int(a[f"{_ATTR}trials"]),
            deadline=a[f"{_ATTR}deadline"],
            workers=int(a[f"{_ATTR}workers"]),
            parent_run_id=a[f"{_ATTR}parent_run_id"],
            experiment_id=a[f"{_ATTR}experiment_id"],
            params_file=a[f"{_ATTR}params_file"],
        )


def load_sweep(
    study_name: str, url: str, *, heartbeat_s: int = 30, worker: int = 0
) -> tuple[optuna.Study, Sweep]:
    """The study (with this worker's sampler and the sweep's pruner: Optuna stores neither) and its Sweep."""
    import optuna

    storage = open_storage(url, heartbeat_s)
    try:
        bare = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise NotFoundError(
            f"no study '{study_name}' in {display_url(url)}: start it with `heara sweep`"
        ) from None
    sweep = Sweep.of(bare)
    storage = open_storage(url, sweep.base.sweep.heartbeat_s)
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=_sampler(sweep.base, worker),
        pruner=_pruner(sweep.base, sweep.family),
    )
    return study, sweep


# --------------------------------------------------------------------------- 1. start


def start_sweep(
    params: Params,
    family: str,
    *,
    trials: int | None = None,
    timeout_min: float | None = None,
    workers: int | None = None,
    study_name: str | None = None,
    storage: str | None = None,
    params_file: Path | str | None = None,
) -> tuple[Sweep, str]:
    """Create the study and its MLflow parent run, or continue the study `study_name` when it exists
    (its family must match; a new budget or time limit replaces the old). Returns (Sweep, storage URL).
    Arguments left None take params.yaml's `sweep:` values."""
    import optuna
    from mlflow import MlflowClient

    from training.registry import tracking

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the trials are reported here, one line each
    cfg = params.sweep
    workers = workers or cfg.workers
    url = storage_url(params, storage)
    check_workers(url, workers)
    timeout_min = timeout_min if timeout_min is not None else cfg.timeout_min
    deadline = time.time() + timeout_min * 60 if timeout_min else None
    base = family_params(params, family)
    base = _with(
        base,
        {"sweep.trials": trials or cfg.trials, "sweep.timeout_min": timeout_min, "sweep.workers": workers},
    )
    name = study_name or f"{params.task}-{family}-{datetime.now():%Y%m%d-%H%M%S}"
    store = open_storage(url, cfg.heartbeat_s)
    exp_id = tracking.setup(params.task)
    client = MlflowClient()
    if name in {s.study_name for s in optuna.get_all_study_summaries(store)}:
        study = optuna.load_study(study_name=name, storage=store)
        sweep = Sweep.of(study)
        if sweep.family != family:
            raise ConfigError(f"study '{name}' searches the {sweep.family} family, not {family}")
        sweep = dataclasses.replace(sweep, trials=trials or sweep.trials, deadline=deadline, workers=workers)
        for key, value in sweep.attrs().items():
            study.set_user_attr(key, value)
        client.update_run(sweep.parent_run_id, status="RUNNING")
        log.info(
            "sweep: continuing study %s (%d trials so far, its stored configuration) in %s",
            name,
            len(study.trials),
            display_url(url),
        )
        return sweep, url

    study = optuna.create_study(
        study_name=name,
        storage=store,
        sampler=_sampler(base, 0),
        pruner=_pruner(base, family),
        direction="maximize",
    )
    parent = client.create_run(
        exp_id,
        run_name=f"sweep-{name}",
        tags={
            "heara.task": params.task,
            "heara.study": name,
            "heara.family": family,
            "heara.sweep": "parent",
            "heara.model_family": base.model.family,
            "heara.storage": display_url(url),
        },
    )
    _log_params(client, parent.info.run_id, base)
    sweep = Sweep(
        study=name,
        family=family,
        base=base,
        trials=base.sweep.trials,
        deadline=deadline,
        workers=workers,
        parent_run_id=parent.info.run_id,
        experiment_id=exp_id,
        params_file=str(Path(params_file or params_path()).resolve()),
    )
    for key, value in sweep.attrs().items():
        study.set_user_attr(key, value)
    dims = dimensions(base, family)
    skipped = sorted(set(type(space_of(base, family)).model_fields) - {d.name for d in dims})
    if skipped:
        log.info("sweep: %s not searched (augmentation is off or set by augment.target_balance)", skipped)
    if base.sweep.enqueue_default:
        study.enqueue_trial(default_values(base, dims), user_attrs={f"{_ATTR}default": True})
    write_json(
        sweep.folder / "sweep.json",
        {
            "study": name,
            "storage": display_url(url),
            **{k: v for k, v in sweep.attrs().items() if "base" not in k},
        },
    )
    log.info(
        "sweep: study %s, family %s, %d trials%s, %d worker(s), storage %s, MLflow parent run %s",
        name,
        family,
        sweep.trials,
        f", {timeout_min:g} min" if timeout_min else "",
        workers,
        display_url(url),
        sweep.parent_run_id,
    )
    return sweep, url


def _log_params(client, run_id: str, params: Params) -> None:
    from mlflow.entities import Param

    from training.registry import tracking

    flat = tracking.flatten(params.to_dict())
    if flat.get("sweep.storage"):
        flat["sweep.storage"] = display_url(str(flat["sweep.storage"]))
    items = [Param(k, str(v)[:6000]) for k, v in flat.items()]
    for start in range(0, len(items), 90):  # MLflow caps one batch at 100 params
        client.log_batch(run_id, params=items[start : start + 90])


# --------------------------------------------------------------------------- 2. workers


def search_splits(files: DataFiles) -> dict[str, pd.DataFrame]:
    """The train and val splits: all a trial reads. The test split is not opened during the search."""
    out = {}
    for name, path in (("train", files.train), ("val", files.val)):
        if not path.exists():
            raise NotFoundError(
                f"{name} split not found at {path}: run `heara data prepare` (or `dvc repro`)"
            )
        out[name] = pd.read_parquet(path)
        if out[name].empty:
            raise HearaError(f"the {name} split at {path} is empty: prepare the data again")
    return out


class _Objective:
    """One trial: sample, train through `fit_model` on train/val, report each epoch, log an MLflow child."""

    def __init__(
        self, study: optuna.Study, sweep: Sweep, splits: dict[str, pd.DataFrame], worker: int
    ) -> None:
        from mlflow import MlflowClient

        from training.data.validate import require_known_labels

        self.study, self.sweep, self.worker = study, sweep, worker
        self.labels = list(sweep.base.labels) or sorted(splits["train"]["label"].unique())
        for name, df in splits.items():
            require_known_labels(
                df,
                self.labels,
                file=name,
                hint="sweep with the params the data was prepared with",
                multilabel=sweep.base.task_type == "multilabel",
            )
        self.splits = splits
        self.dims = dimensions(sweep.base, sweep.family)
        self.client = MlflowClient()

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        from training.data.augment import fewer_augmented
        from training.steps.train import fit_model

        if trial.number >= self.sweep.trials:
            # Another worker started the last trial of the budget between this worker's check (the
            # MaxTrialsCallback) and its next trial: stop without training. Recorded as pruned (no
            # traceback in the log) and marked, so that no count or leaderboard includes it.
            trial.set_user_attr(f"{_ATTR}over_budget", True)
            self.study.stop()
            raise optuna.TrialPruned(f"over budget: {self.sweep.trials} trials were started")
        values = {d.name: d.suggest(trial) for d in self.dims}
        trial.set_user_attr(f"{_ATTR}values", values)
        trial.set_user_attr(f"{_ATTR}worker", self.worker)
        run_id = self._start_run(trial, values)
        work = self.sweep.folder / "trials" / f"{trial.number:04d}"
        t0 = time.perf_counter()
        try:
            params = apply_values(self.sweep.base, values, self.dims)
            splits = dict(self.splits)
            if "augment_scale" in values:
                splits["train"] = fewer_augmented(
                    splits["train"], params.augment, params.task_type == "multilabel"
                )
            epochs = params.train.epochs if params.model.family != "linear" else 1

            def on_epoch(epoch: int, record: dict) -> None:
                self._log_epoch(run_id, epoch, record)
                trial.report(float(record["val_macro_f1"]), epoch)
                # The last epoch is never pruned: the work is done, only its result would be lost.
                if epoch < epochs and trial.should_prune():
                    raise optuna.TrialPruned(f"epoch {epoch}: val macro-F1 {record['val_macro_f1']:.4f}")

            model_dir, result = fit_model(params, splits, self.labels, work, on_epoch=on_epoch, resume=False)
        except optuna.TrialPruned as e:
            self._end(trial, run_id, "PRUNED", time.perf_counter() - t0, note=str(e))
            shutil.rmtree(work, ignore_errors=True)
            raise
        except BaseException as e:
            self._end(trial, run_id, "FAIL", time.perf_counter() - t0, note=f"{type(e).__name__}: {e}")
            shutil.rmtree(work, ignore_errors=True)
            raise
        shutil.rmtree(work / "checkpoints", ignore_errors=True)  # the model folder is what is kept
        trial.set_user_attr(f"{_ATTR}model_dir", str(model_dir))
        trial.set_user_attr(f"{_ATTR}best_epoch", result.best_epoch)
        trial.set_user_attr(f"{_ATTR}epochs_run", result.epochs_run)
        self._end(trial, run_id, "COMPLETE", time.perf_counter() - t0, value=result.best_val_macro_f1)
        return result.best_val_macro_f1

    def _start_run(self, trial: optuna.Trial, values: dict[str, Any]) -> str:
        from mlflow.entities import Param

        s = self.sweep
        run = self.client.create_run(
            s.experiment_id,
            run_name=f"trial-{trial.number}",
            tags={
                "mlflow.parentRunId": s.parent_run_id,
                "heara.task": s.task,
                "heara.study": s.study,
                "heara.family": s.family,
                "heara.trial": str(trial.number),
                "heara.trial_state": "RUNNING",
                "heara.worker": str(self.worker),
                "heara.default": str(bool(trial.user_attrs.get(f"{_ATTR}default", False))).lower(),
            },
        )
        by_name = {d.name: d for d in self.dims}
        self.client.log_batch(
            run.info.run_id,
            params=[Param(by_name[n].key if n != "augment_scale" else n, str(v)) for n, v in values.items()],
        )
        trial.set_user_attr(f"{_ATTR}mlflow_run_id", run.info.run_id)
        return run.info.run_id

    def _log_epoch(self, run_id: str, epoch: int, record: dict) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(k, float(v), now, epoch)
            for k, v in record.items()
            if k != "epoch" and isinstance(v, (int, float)) and math.isfinite(float(v))
        ]
        self.client.log_batch(run_id, metrics=metrics)

    def _end(
        self,
        trial: optuna.Trial,
        run_id: str,
        state: str,
        seconds: float,
        *,
        value: float | None = None,
        note: str = "",
    ) -> None:
        end_run(self.client, run_id, trial.number, state, value=value, note=note)
        best = _best(self.study)  # this trial is not COMPLETE in the storage until it returns
        if value is not None and (best is None or value > best[1]):
            best = (trial.number, value)
        values = trial.user_attrs.get(f"{_ATTR}values", {})
        log.info(
            "trial %d %s%s in %.1f s (worker %d; best %s)  %s%s",
            trial.number,
            state,
            f": val macro-F1 {value:.4f}" if value is not None else "",
            seconds,
            self.worker,
            f"{best[1]:.4f}, trial {best[0]}" if best else "-",
            ", ".join(f"{k}={v}" for k, v in values.items()),
            f"  ({note})" if note else "",
        )


def end_run(
    client, run_id: str, number: int, state: str, *, value: float | None = None, note: str = ""
) -> None:
    """A trial's MLflow run ends with its state: tag, status (PRUNED -> KILLED) and the state in its name."""
    if value is not None:
        client.log_metric(run_id, "best_val_macro_f1", value)
    client.set_tag(run_id, "heara.trial_state", state)
    if note:
        client.set_tag(run_id, "heara.trial_note", note[:5000])
    client.update_run(run_id, name=f"trial-{number}-{state.lower()}")
    client.set_terminated(run_id, status=RUN_STATUS[state])


def _best(study: optuna.Study) -> tuple[int, float] | None:
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return None
    t = max(done, key=lambda t: t.value)
    return t.number, t.value


def run_worker(study_name: str, url: str, files: DataFiles, *, worker: int = 0) -> dict:
    """One worker: trials on the shared study until the budget (trials in all, over every worker) or the
    deadline is reached. Reads only the train and val splits. Returns this worker's counts."""
    import optuna
    from optuna.study import MaxTrialsCallback

    from training.registry import tracking

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study, sweep = load_sweep(study_name, url, worker=worker)
    _share_cores(sweep.workers)
    tracking.setup(sweep.task)
    objective = _Objective(study, sweep, search_splits(files), worker)
    timeout = None if sweep.deadline is None else sweep.deadline - time.time()
    waiting = optuna.trial.TrialState.WAITING  # enqueued (the default trial): not run yet
    before = {t.number for t in study.get_trials(deepcopy=False) if t.state != waiting}
    if len(before) >= sweep.trials or (timeout is not None and timeout <= 0):
        log.info("worker %d: nothing to do (budget or time spent)", worker)
    else:
        log.info("worker %d: study %s, up to %d trials in all", worker, study_name, sweep.trials)
        study.optimize(
            objective,
            n_trials=sweep.trials,
            timeout=timeout,
            # The budget is the study's total: each worker stops once that many trials exist (any state).
            callbacks=[MaxTrialsCallback(sweep.trials, states=None)],
            catch=(Exception,),  # a failed trial (a bad combination, a crash) is recorded; the search goes on
            # Frees a torch model's memory between trials (a collection costs ~0.7 s: much for a linear fit).
            gc_after_trial=sweep.family != "linear",
        )
    mine = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.number not in before and t.user_attrs.get(f"{_ATTR}worker") == worker
    ]
    return {"worker": worker, **_counts(mine)}


def _share_cores(workers: int) -> None:
    """Parallel workers on one machine share its cores: each gets cores // workers BLAS, OpenMP and torch
    threads. Left at every core each, they oversubscribe: a linear fit took 8 s instead of 0.3 s on a
    busy 2-core machine, its BLAS threads spinning while waiting for a core."""
    import os

    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    if workers <= 1:
        return
    n = max(1, (os.cpu_count() or 1) // workers)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(n)  # read by torch when it is first imported (by the first trial)
    threadpool_limits(n)  # the libraries already loaded (numpy's BLAS, scikit-learn's OpenMP)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    log.info("worker: %d thread(s) each for %d workers on %d cores", n, workers, os.cpu_count() or 1)


def _worker_process(study_name: str, url: str, files: DataFiles, worker: int) -> None:
    from training.logs import setup_logging

    setup_logging("INFO")
    run_worker(study_name, url, files, worker=worker)


def run_workers(study_name: str, url: str, files: DataFiles, workers: int) -> None:
    """`workers` worker processes on the study (one: in this process), until all have ended."""
    if workers <= 1:
        run_worker(study_name, url, files)
        return
    check_workers(url, workers)
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no fork of torch or MLflow state
    procs = [
        ctx.Process(target=_worker_process, args=(study_name, url, files, i), name=f"heara-sweep-worker-{i}")
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode:
            log.warning(
                "sweep: %s exited with code %s (its running trial is failed in clean-up)", p.name, p.exitcode
            )


# --------------------------------------------------------------------------- 3. clean-up


def clean_up(study_name: str, url: str, *, workers_done: bool = True, wait: bool = True) -> dict:
    """Fail the trials that dead workers left RUNNING, and their MLflow runs.

    PostgreSQL: a RUNNING trial whose heartbeat stopped more than twice `sweep.heartbeat_s` ago
    (`optuna.storages.fail_stale_trials`); with `workers_done` and `wait`, waits up to that grace period
    for trials still RUNNING to go stale (a live worker elsewhere keeps beating and is left alone).
    SQLite (one process, no heartbeat): with `workers_done`, every RUNNING trial is stale."""
    import optuna
    from mlflow import MlflowClient

    from training.registry import tracking

    study, sweep = load_sweep(study_name, url)
    running = optuna.trial.TrialState.RUNNING
    if is_sqlite(url):
        if workers_done:  # Optuna has no public call for this; fail_stale_trials uses the same storage method
            for t in study.get_trials(deepcopy=False, states=(running,)):
                study._storage.set_trial_state_values(t._trial_id, state=optuna.trial.TrialState.FAIL)
    else:
        deadline = time.monotonic() + 2 * sweep.base.sweep.heartbeat_s + 5
        while True:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            still = study.get_trials(deepcopy=False, states=(running,))
            if not (still and workers_done and wait) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    tracking.setup(sweep.task)
    client = MlflowClient()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)):
        run_id = t.user_attrs.get(f"{_ATTR}mlflow_run_id")
        if run_id and client.get_run(run_id).info.status == "RUNNING":
            end_run(client, run_id, t.number, "FAIL", note="its worker stopped (stale trial)")
            failed.append(t.number)
    left = [t.number for t in study.get_trials(deepcopy=False, states=(running,))]
    if failed:
        log.info("clean-up: trials %s of stopped workers marked FAIL", failed)
    return {"stale_failed": failed, "still_running": left}


# --------------------------------------------------------------------------- 4. finish


def _counts(trials) -> dict[str, int]:
    out = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "over_budget": 0}
    for t in trials:
        if t.user_attrs.get(f"{_ATTR}over_budget"):
            out["over_budget"] += 1
        elif t.state.name in ("COMPLETE", "PRUNED", "RUNNING"):
            out[t.state.name.lower()] += 1
        elif t.state.name == "FAIL":
            out["failed"] += 1
    return out


def leaderboard(study: optuna.Study, sweep: Sweep) -> pd.DataFrame:
    """One row per trial that ran, best first: state, value, its values, time, worker, MLflow run."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(f"{_ATTR}over_budget") or t.state.name == "WAITING":
            continue
        a = t.user_attrs
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "val_macro_f1": t.value,
                "default": bool(a.get(f"{_ATTR}default", False)),
                **a.get(f"{_ATTR}values", {}),
                "best_epoch": a.get(f"{_ATTR}best_epoch"),
                "seconds": round(t.duration.total_seconds(), 1) if t.duration else None,
                "worker": a.get(f"{_ATTR}worker"),
                "mlflow_run_id": a.get(f"{_ATTR}mlflow_run_id"),
            }
        )
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    return board.sort_values(["val_macro_f1", "trial"], ascending=[False, True], na_position="last")


def overlay_of(best: Params, reference: Params) -> dict[str, Any]:
    """The keys of `best` that differ from `reference` (params.yaml), nested as params.yaml is; the
    `sweep:` section (the search's own settings) is left out."""

    def diff(a: dict, b: dict) -> dict:
        out = {}
        for k, v in a.items():
            if isinstance(v, dict) and isinstance(b.get(k), dict):
                sub = diff(v, b[k])
                if sub:
                    out[k] = sub
            elif v != b.get(k):
                out[k] = v
        return out

    a, b = best.to_dict(), reference.to_dict()
    a.pop("sweep", None)
    b.pop("sweep", None)
    return diff(a, b)


def write_overlay(path: Path, overlay: dict, header: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(overlay, allow_unicode=True, sort_keys=False) if overlay else "{}\n"
    path.write_text("".join(f"# {line}\n" for line in header) + body, encoding="utf-8")
    return path


def _check_overlay(path: Path, params_file: str, best: Params) -> str | None:
    """Whether params.yaml + the overlay gives the best trial's configuration (None) or what differs."""
    try:
        again = load_params(params_file, overlays=[path])
    except HearaError as e:
        return str(e)
    differs = overlay_of(again, best)
    return None if not differs else f"keys differ after loading it: {differs}"


def _test_scores(model_dir: Path, test: pd.DataFrame) -> dict[str, float]:
    """Macro-F1 and accuracy on the test rows, predicted as `heara evaluate` does (texts preprocessed by
    the model's own preprocessing)."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    from training.model.predictor import Predictor

    predictor = Predictor.load(model_dir)
    probs = predictor.predict_proba(test["text"].astype(str).tolist())
    pred = np.asarray(predictor.labels)[probs.argmax(axis=1)]
    y = test["label"].astype(str).to_numpy()
    return {
        "macro_f1": float(f1_score(y, pred, labels=predictor.labels, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y, pred)),
    }


def finish_sweep(
    study_name: str, url: str, files: DataFiles, *, compare_default: bool = True
) -> dict[str, Any]:
    """Leaderboard, overlay and the one use of the test split; closes the MLflow parent run.

    The best trial's saved model is scored on test.parquet (retrained with the overlay when its folder
    is gone, e.g. written on another machine); with `compare_default` so is the family's configuration as
    set (the enqueued default trial's model, or trained now). Returns the summary the CLI prints."""
    import optuna
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from training.registry import tracking
    from training.steps.train import fit_model

    study, sweep = load_sweep(study_name, url)
    tracking.setup(sweep.task)
    client = MlflowClient()
    folder = sweep.folder
    trials = study.get_trials(deepcopy=False)
    counts = _counts(trials)
    board = leaderboard(study, sweep)
    board.to_csv(folder / "leaderboard.csv", index=False)
    write_json(folder / "leaderboard.json", {"rows": json.loads(board.to_json(orient="records"))})
    for name in ("leaderboard.csv", "leaderboard.json"):
        client.log_artifact(sweep.parent_run_id, str(folder / name))
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        client.set_tag(sweep.parent_run_id, "heara.sweep_result", "no trial completed")
        client.set_terminated(sweep.parent_run_id, status="FAILED")
        raise HearaError(
            f"sweep {study_name}: no trial completed ({counts['pruned']} pruned, {counts['failed']} failed); "
            f"see the log and {folder / 'leaderboard.csv'}"
        )
    best = max(complete, key=lambda t: (t.value, -t.number))
    dims = dimensions(sweep.base, sweep.family)
    best_params = apply_values(sweep.base, best.user_attrs[f"{_ATTR}values"], dims)
    reference = load_params(sweep.params_file)
    overlay_path = write_overlay(
        folder / "best.yaml",
        overlay_of(best_params, reference),
        [
            f"heara sweep {study_name} ({sweep.family}): trial {best.number}, the best of "
            f"{counts['complete']} complete trials, validation macro-F1 {best.value:.4f}.",
            f"Only the keys that differ from {sweep.params_file}.",
            f"Use: heara train --overlay {folder / 'best.yaml'}",
            "augment.multipliers (if here) takes effect when the data is prepared again (heara data prepare,",
            "or the retrain DAG's augment task).",
        ],
    )
    problem = _check_overlay(overlay_path, sweep.params_file, best_params)
    if problem:
        log.warning("sweep: the overlay does not reproduce the best trial on its own (%s)", problem)

    # -- the test split, once: after the search, for the finalists only
    if not files.test.exists():
        raise NotFoundError(
            f"test split not found at {files.test}: run `heara data prepare` (or `dvc repro`)"
        )
    test = pd.read_parquet(files.test)
    splits: dict[str, pd.DataFrame] | None = None

    def model_of(trial, params: Params, name: str) -> Path:
        nonlocal splits
        saved = trial.user_attrs.get(f"{_ATTR}model_dir") if trial is not None else None
        if saved and Path(saved).is_dir():
            return Path(saved)
        log.info("sweep: training %s again (its model folder is not here)", name)
        splits = splits or search_splits(files)
        train = splits["train"]
        if trial is not None and "augment_scale" in trial.user_attrs.get(f"{_ATTR}values", {}):
            from training.data.augment import fewer_augmented

            train = fewer_augmented(train, params.augment, params.task_type == "multilabel")
        labels = list(params.labels) or sorted(train["label"].unique())
        model_dir, _ = fit_model(params, {**splits, "train": train}, labels, folder / name, resume=False)
        return model_dir

    scores = _test_scores(model_of(best, best_params, "final"), test)
    metrics = {
        "best_val_macro_f1": best.value,
        "final_test_macro_f1": scores["macro_f1"],
        "final_test_accuracy": scores["accuracy"],
        **{f"trials_{k}": float(v) for k, v in counts.items()},
    }
    default_trial = next((t for t in complete if t.user_attrs.get(f"{_ATTR}default")), None)
    if compare_default:
        d = _test_scores(model_of(default_trial, sweep.base, "default"), test)
        metrics |= {"default_test_macro_f1": d["macro_f1"], "default_test_accuracy": d["accuracy"]}
    if default_trial is not None:
        metrics["default_val_macro_f1"] = default_trial.value
    now = int(time.time() * 1000)
    client.log_batch(sweep.parent_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
    client.log_artifact(sweep.parent_run_id, str(overlay_path))
    client.set_tag(sweep.parent_run_id, "heara.best_trial", str(best.number))
    client.set_tag(sweep.parent_run_id, "heara.overlay", str(overlay_path))
    client.set_terminated(sweep.parent_run_id, status="FINISHED")
    summary = {
        "study": study_name,
        "family": sweep.family,
        "best_value": best.value,
        "best_trial": best.number,
        "best_params": best.user_attrs[f"{_ATTR}values"],
        "overlay": str(overlay_path),
        "final_test_macro_f1": scores["macro_f1"],
        **({"default_test_macro_f1": metrics["default_test_macro_f1"]} if compare_default else {}),
        **(
            {"default_val_macro_f1": metrics["default_val_macro_f1"]}
            if "default_val_macro_f1" in metrics
            else {}
        ),
        "trials": counts,
        "parent_run_id": sweep.parent_run_id,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(folder / "summary.json", summary)
    return summary


# --------------------------------------------------------------------------- the four phases in one


def sweep_step(
    params: Params,
    family: str,
    files: DataFiles | None = None,
    *,
    trials: int | None = None,
    timeout_min: float | None = None,
    workers: int | None = None,
    study_name: str | None = None,
    storage: str | None = None,
    params_file: Path | str | None = None,
    compare_default: bool = True,
) -> dict[str, Any]:
    """`heara sweep`: start (or continue) the study, run its workers here, clean up, finish."""
    files = files or DataFiles.default()
    sweep, url = start_sweep(
        params,
        family,
        trials=trials,
        timeout_min=timeout_min,
        workers=workers,
        study_name=study_name,
        storage=storage,
        params_file=params_file,
    )
    run_workers(sweep.study, url, files, sweep.workers)
    clean_up(sweep.study, url)
    return finish_sweep(sweep.study, url, files, compare_default=compare_default)
