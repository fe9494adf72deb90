"""Which model the service serves, and where its files are on this machine.

Two sources:
- the registry's champion, `models:/heara-<task>@champion` (the default): its artifacts are downloaded
  once into `<HEARA_HOME>/serving/models/<name>-v<version>-<run>/`, a Heara model folder with a
  `registry.json` beside `heara.json`; a restart (or a second worker) finds the folder and skips the
  download;
- a model folder given by `HEARA_MODEL_DIR` (an offline bento with the model inside). A cache folder
  can be copied there as it is: its `registry.json` keeps the name, version and run.

A version about to become champion is fetched the same way (`from_version`, into the same cache)
and smoke-tested there first (`check_servable`, registry/servable.py).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training import env
from training.errors import (
    ConfigError,
    HearaError,
    NoChampionError,
    NotFoundError,
    NotServableError,
    ServiceUnavailable,
)
from training.model.predictor import META_FILE
from training.paths import state
from training.registry.servable import SmokeResult, brief, smoke_test
from training.registry.tracking import using_store

REGISTRY_FILE = "registry.json"
# What GET /model reports of the training run: the frozen-test metrics and the best validation score.
_RUN_METRIC_PREFIXES = ("test_", "best_val_")


@dataclass(frozen=True)
class ModelSource:
    """A model folder on local disk and what is known of its origin."""

    model_dir: Path
    name: str
    version: str | None  # registry version; None for a folder without registry.json
    run_id: str | None
    uri: str  # models:/<name>/<version>, or the folder
    metrics: dict[str, float] = field(default_factory=dict)
    trained_at: str | None = None  # ISO-8601 UTC: when the training run ended
    registered_at: str | None = None

    @property
    def version_label(self) -> str:
        """The `model_version` every prediction carries ("local" for an unregistered folder)."""
        return self.version or "local"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "model_dir": str(self.model_dir)}


def resolve_model(task: str) -> ModelSource:
    """`HEARA_MODEL_DIR` when set, else the champion of `heara-<task>` (downloaded once).

    Raises FileNotFoundError for a folder that is not a Heara model folder and NoChampionError
    when the registry has no champion.
    """
    folder = env.model_dir()
    return from_dir(folder) if folder is not None else from_registry(task)


def from_dir(folder: Path) -> ModelSource:
    folder = Path(folder).resolve()
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise ConfigError(f"HEARA_MODEL_DIR={folder} is not a Heara model folder ({META_FILE} is missing)")
    registry_path = folder / REGISTRY_FILE
    if registry_path.is_file():
        info = json.loads(registry_path.read_text(encoding="utf-8"))
        return ModelSource(**{**info, "model_dir": folder})
    from training.registry.aliases import model_name

    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    trained = datetime.fromtimestamp(meta_path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    return ModelSource(
        model_dir=folder,
        name=model_name(meta["task"]),
        version=None,
        run_id=None,
        uri=str(folder),
        trained_at=trained,
    )


def champion_version(task: str) -> str | None:
    """The registry version the champion alias points at now (a cheap look-up, nothing downloaded):
    what the hot reload polls. None when there is no store or no champion."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from training.registry.aliases import CHAMPION, model_name
    from training.registry.tracking import tracking_uri

    uri = tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None
    try:
        mv = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(
            model_name(task), CHAMPION
        )
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    return str(mv.version)


def _lookup(
    uri: str, name: str, get, *, no_store: Exception, no_version: Exception, what: str
) -> ModelSource:
    """`get(client)` -> a ModelVersion of `name` in the store at `uri`, fetched into the serving cache.
    Raises `no_store` (a SQLite store that is not there), `no_version` (MLflow says there is no such
    version or alias) or ServiceUnavailable (the registry did not answer: worth a retry)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise no_store
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        mv = get(client)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise no_version from None
        raise ServiceUnavailable(
            f"cannot read {what} of '{name}' from the MLflow registry at {uri}: {exc.message}"
        ) from None
    return _fetch(client, uri, name, mv)


def from_registry(task: str) -> ModelSource:
    """The champion of `heara-<task>` in the tracking store of `training.registry.tracking.tracking_uri()`."""
    from training.registry.aliases import CHAMPION, model_name
    from training.registry.tracking import tracking_uri

    uri, name = tracking_uri(), model_name(task)
    return _lookup(
        uri,
        name,
        lambda client: client.get_model_version_by_alias(name, CHAMPION),
        no_store=NoChampionError(
            f"no model to serve: there is no MLflow store at {uri} (train, register and "
            f"promote a model first, or set HEARA_MODEL_DIR to a model folder)"
        ),
        no_version=NoChampionError(
            f"no model to serve: '{name}' has no version with the alias '{CHAMPION}' in the MLflow "
            f"registry at {uri}. Promote one (`heara promote`), or set HEARA_MODEL_DIR to a "
            "model folder."
        ),
        what="the champion",
    )


def from_version(name: str, version: int | str) -> ModelSource:
    """Version `version` of the registered model `name`, fetched as `from_registry` fetches the champion:
    the same download into the same cache, so a version checked before it becomes champion
    (`check_servable`) is what the service will load (on a machine sharing this $HEARA_HOME, the very
    folder: the service then skips the download).

    Raises NotFoundError when the store or the version is not there.
    """
    from training.registry.tracking import tracking_uri

    uri = tracking_uri()
    return _lookup(
        uri,
        name,
        lambda client: client.get_model_version(name, str(version)),
        no_store=NotFoundError(f"there is no MLflow store at {uri}, so no version {version} of '{name}'"),
        no_version=NotFoundError(f"'{name}' has no version {version} in the MLflow registry at {uri}"),
        what=f"version {version}",
    )


def check_servable(name: str, version: int | str) -> SmokeResult:
    """Fetch version `version` of `name` as the service would (`from_version`: the serving cache), load
    it and ask one smoke prediction (servable.smoke_test): called before the champion alias moves.

    Raises NotServableError (artifacts that cannot be fetched, a missing file, a load error, a malformed
    prediction) and NotFoundError (no such version); a registry that does not answer stays
    ServiceUnavailable, which is worth a retry.
    """
    import time

    start = time.perf_counter()
    try:
        source = from_version(name, version)
    except HearaError:
        raise
    except Exception as exc:  # what a failed download raises depends on the artifact store
        raise NotServableError(name, version, f"its artifacts could not be fetched: {brief(exc)}") from exc
    result = smoke_test(source.model_dir, name, version)
    return replace(result, seconds=round(time.perf_counter() - start, 3))


def _fetch(client, uri: str, name: str, mv) -> ModelSource:
    """The registry version `mv` as a model folder in the serving cache (downloaded on first use)."""
    cached = state().serving_models / f"{name}-v{mv.version}-{(mv.run_id or 'norun')[:8]}"
    if (cached / REGISTRY_FILE).is_file():
        return from_dir(cached)
    run = client.get_run(mv.run_id) if mv.run_id else None
    source = ModelSource(
        model_dir=cached,
        name=name,
        version=str(mv.version),
        run_id=mv.run_id,
        uri=f"models:/{name}/{mv.version}",
        metrics={
            k: float(v)
            for k, v in sorted((run.data.metrics if run else {}).items())
            if k.startswith(_RUN_METRIC_PREFIXES)
        },
        trained_at=_iso_ms(run.info.end_time or run.info.start_time) if run else None,
        registered_at=_iso_ms(mv.creation_timestamp),
    )
    _download(source, uri)
    return source


def _download(source: ModelSource, uri: str) -> None:
    """Fetch the pyfunc model, keep its Heara folder (the `model_dir` artifact) as the cache entry.

    Downloads into a private temporary folder and renames it into place, so a crash or a second
    worker starting at the same time never sees half a model.
    """
    import mlflow
    from mlflow.models import Model

    final = source.model_dir
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    # A models:/ URI is resolved through the registry URI, which does not follow `tracking_uri=`:
    # unset, MLflow would look in (and create) ./mlflow.db in the working directory. Set for the download
    # only and put back after (the variables included): a promotion's smoke check downloads too, and a
    # registry URI left behind would follow the process, and the processes it starts, to other stores.
    with using_store(uri):
        try:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=source.uri, dst_path=str(tmp / "download"), tracking_uri=uri
                )
            )
            artifact = Model.load(str(local)).flavors["python_function"]["artifacts"]["model_dir"]["path"]
            (local / artifact).rename(tmp / "model")
            entry = tmp / "model"
            (entry / REGISTRY_FILE).write_text(
                json.dumps({k: v for k, v in source.to_dict().items() if k != "model_dir"}, indent=2) + "\n",
                encoding="utf-8",
            )
            try:
                os.rename(entry, final)
            except OSError:  # another worker got there first: its folder holds the same version
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _iso_ms(epoch_ms: int | None) -> str | None:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds") if epoch_ms else None
