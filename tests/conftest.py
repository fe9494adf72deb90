"""Shared test set-up.

`pytest_configure` points HEARA_HOME at a throw-away folder before any test module imports
`training`, so no test can write into the repository's `.heara/`. Telemetry of the tools in the
stack is switched off for the same reason (they write under the home directory otherwise).

Markers set by folder: tests/system/ is `slow`, tests/gpu/ is `gpu`. A test marked `gpu` is skipped,
with the reason in pytest's summary, where torch sees no CUDA device: `make test` passes on a CPU
machine, and `pytest -m gpu` (scripts/gpu_check.py) runs them on a GPU one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CHATBOT_CSV = REPO_ROOT.parent / "shared" / "data" / "chatbot" / "ChatbotData.csv"

_session_home: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _session_home
    _session_home = tempfile.mkdtemp(prefix="heara-test-home-")
    os.environ["HEARA_HOME"] = _session_home
    os.environ.pop("HEARA_INCOMING", None)  # incoming would otherwise default to a real folder
    os.environ["DVC_NO_ANALYTICS"] = "1"
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["BENTOML_DO_NOT_TRACK"] = "True"
    # Airflow reads its home and DAG folder when first imported (and creates ~/airflow without them).
    from training.orchestration.airflow_local import env as airflow_env

    keep = ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__LOAD_EXAMPLES")  # not the ports
    os.environ.update({k: v for k, v in airflow_env({}).items() if k in keep})
    config.pluginmanager.register(_LongestFirst(), "heara-longest-first")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/system/ (live servers, the browser, Airflow, DVC, compose, the stack) is slow:
    `make test-fast` runs the unit tier (tests/code) without them. Every test under tests/gpu/ is `gpu`,
    and every `gpu` test is skipped, saying why, where there is no CUDA device."""
    system, gpu = REPO_ROOT / "tests" / "system", REPO_ROOT / "tests" / "gpu"
    for item in items:
        parents = Path(item.fspath).parents
        if system in parents:
            item.add_marker(pytest.mark.slow)
        if gpu in parents:
            item.add_marker(pytest.mark.gpu)
        module = item.nodeid.split("::")[0]
        if "servers" in getattr(item, "fixturenames", ()) and module not in LIVE_SERVER_MODULES:
            raise pytest.UsageError(
                f"{module} uses the shared live servers (tests/system/conftest.py `servers`): add it to "
                "LIVE_SERVER_MODULES in tests/conftest.py, so that make test runs it on the servers' worker"
            )
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    reason = no_cuda_reason() if gpu_items else None  # torch is imported only when a gpu test is collected
    for item in gpu_items if reason else []:
        item.add_marker(pytest.mark.skip(reason=reason))


# The modules whose tests use the shared live servers (tests/system/conftest.py `servers`, a pair of
# `bentoml serve` per serve.topology): `make test` runs them as one unit on one worker. Collection
# refuses a module that uses the servers and is missing here.
LIVE_SERVER_MODULES = frozenset(
    f"tests/system/{name}.py"
    for name in (
        "test_drift_metrics_http",
        "test_explain_http",
        "test_monitor_features_http",
        "test_review_http",
        "test_review_page",
        "test_service_http",
        "test_service_probe",
        "test_try_page",
    )
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """The units of work `make test` hands its xdist workers (`--dist loadgroup`): the modules of
    LIVE_SERVER_MODULES are one unit, so that one worker starts each topology's pair of servers once
    (started per module and per worker, as `--dist loadfile` had it, they took 15 of the run's 36
    minutes); every other module is a unit of its own (its module fixtures built once), as with loadfile.

    Written here because xdist's own loadgroup does not group under pytest 9: it marks a group by
    appending to `item._nodeid`, which pytest 9's nodes no longer read (they keep `_id`)."""
    if config.getoption("dist", None) != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndLiveServers(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            return "live-servers" if module in LIVE_SERVER_MODULES else module

    return ModulesAndLiveServers(config, log)


def _unit_rank(item: pytest.Item) -> int:
    """Longest first: the live-server unit, the rest of tests/system (Airflow, DVC, whole runs: minutes
    each), tests/model, then the unit tier (seconds), so that no minutes-long module is the run's tail."""
    module = item.nodeid.split("::")[0]
    if module in LIVE_SERVER_MODULES:
        return 0
    parts = Path(module).parts
    return {"system": 1, "model": 2}.get(parts[1] if len(parts) > 1 else "", 3)


class _LongestFirst:
    """Puts the items in `_unit_rank` order (stable: pytest's own grouping of parametrized session
    fixtures, single topology then split, stays). trylast, so it runs after that grouping; xdist then
    queues the units in this order (`--no-loadscope-reorder`: by default it queues the units with the
    most tests first, which left the single 8-minute DVC test for last)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        items.sort(key=_unit_rank)


def no_cuda_reason() -> str | None:
    """Why the `gpu` tests cannot run here (None: they can). Names the torch build, since a CPU build of
    torch on a GPU host (the local wheel of /opt/wheels, say) looks the same as a host without a GPU."""
    import torch

    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f"no CUDA GPU: torch {torch.__version__} is a CPU build"
    return f"no CUDA GPU: torch {torch.__version__} (CUDA {torch.version.cuda}) sees no device"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _session_home:
        shutil.rmtree(_session_home, ignore_errors=True)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def chatbot_csv() -> Path:
    """The public ChatbotData.csv shared beside the checkout (read-only); skipped when absent."""
    if not CHATBOT_CSV.exists():
        pytest.skip(f"real data not available: {CHATBOT_CSV} is missing")
    return CHATBOT_CSV


@pytest.fixture(scope="session")
def kiwi_preprocessor():
    """The default preprocessor (all steps on, Kiwi spacing), built once: Kiwi takes ~1 s to load."""
    from training.config import PreprocessConfig
    from training.data.preprocess import Preprocessor

    return Preprocessor(PreprocessConfig())


SAMPLE_CSV = REPO_ROOT / "data" / "sample" / "utterances.csv"
DANGER_LABELS = ["normal", "emergency", "confusion", "distress"]


def _build_tiny_model_dir(
    out: Path, n_texts: int = 120, spacing: str = "kiwi", *, reference: bool = False
) -> Path:
    """A tiny, untrained KoBERT-format classifier saved as a Heara model folder (a few seconds).
    spacing: the preprocessing's spacing backend saved with it ("none": serving needs no Kiwi).
    reference: also store a monitoring reference, as `heara register` does (about a second): a service
    serving the folder then logs monitoring features with its predictions."""
    import pandas as pd

    from training.config import ModelConfig, PreprocessConfig
    from training.model.build import build_model
    from training.model.predictor import save_model_dir

    sample = pd.read_csv(SAMPLE_CSV)
    texts = sample["text"].head(n_texts).tolist()
    model, tokenizer, base = build_model(
        ModelConfig(profile="tiny", tiny_vocab_size=300), DANGER_LABELS, texts, out.parent / "tiny-base"
    )
    folder = save_model_dir(
        model,
        tokenizer,
        out,
        task="danger",
        family="kobert",
        labels=DANGER_LABELS,
        max_length=64,
        preprocess=PreprocessConfig(spacing=spacing),
        base_model=base,
    )
    if reference:
        from training.config import Params
        from training.evaluation.monitoring import build_reference
        from training.model.predictor import Predictor

        predictor = Predictor.load(folder, device="cpu")
        val = sample.iloc[n_texts : n_texts + 60]  # taken as already preprocessed: no Kiwi load for this
        build_reference(
            predictor,
            train_texts=texts,
            val_texts=val["text"].tolist(),
            val_labels=val["label"].tolist(),
            cfg=Params().monitor,
        ).save(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_factory():
    """Builds a tiny model folder at a given path: for tests that serve or score a model."""
    return _build_tiny_model_dir


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny model folder (no spacing model) built once per session, for tests that only read it:
    copy it before changing it."""
    return _build_tiny_model_dir(tmp_path_factory.mktemp("tiny-shared") / "model", spacing="none")


@pytest.fixture
def registry_home(tmp_path: Path) -> Iterator[Path]:
    """A fresh HEARA_HOME whose MLflow store is the process's for the test, all put back after. Both
    MLflow URIs: fetching a version for serving sets the process's registry URI (registry/champion.py),
    which would otherwise point the next test's `MlflowClient()` at this test's store."""
    from training.registry.tracking import tracking_uri, using_store

    home = tmp_path / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEARA_HOME", str(home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        with using_store(tracking_uri()):
            yield home


@pytest.fixture
def register_tiny(tiny_model_folder: Path, registry_home: Path, tmp_path: Path):
    """`register_tiny(champion=False, without=(), change=None) -> version`: the shared tiny model
    registered as the next version of heara-danger in the store of `registry_home` (the one
    `heara promote` and `heara rollback` use there). `without`: files left out of the registered folder,
    as in a version whose weights were lost; `change(folder)` edits the copy before it is logged."""
    from training.paths import state
    from training.registry.aliases import register_folder
    from training.registry.tracking import tracking_uri

    def register(*, champion: bool = False, without: tuple[str, ...] = (), change=None) -> int:
        folder = Path(tempfile.mkdtemp(dir=tmp_path)) / "model"
        shutil.copytree(
            tiny_model_folder, folder, ignore=lambda _d, names: [n for n in names if n in without]
        )
        if change is not None:
            change(folder)
        state().mlflow_db.parent.mkdir(parents=True, exist_ok=True)
        version, _ = register_folder(folder, tracking_uri(), state().mlflow_artifacts, champion=champion)
        return version

    return register


@pytest.fixture
def pg_storage() -> Iterator[str]:
    """A fresh database on the local PostgreSQL (`HEARA_TEST_PG_SERVER`, default
    postgresql://postgres@127.0.0.1:5432), dropped after: an Optuna study's storage for the sweep tests.
    Skipped when the server is unreachable."""
    import uuid

    import psycopg

    server = os.environ.get("HEARA_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
    name = f"heara_test_sweep_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(f"{server}/postgres", connect_timeout=3, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {server}: {' '.join(str(exc).split())}")
    yield f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread while a module runs (put back after): many small forward passes are
    faster so, and do not stall when other processes share the machine's few cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
