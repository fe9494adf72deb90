"""A version about to become champion is fetched as the service fetches the champion (the same cache
folder) and smoke-tested there: what is checked is what will be served."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.errors import NotFoundError, NotServableError


def test_check_servable_tests_the_folder_the_service_will_load(registry_home: Path, register_tiny) -> None:
    from mlflow import MlflowClient

    from training.paths import state
    from training.registry.aliases import CHAMPION, model_name
    from training.registry.champion import check_servable, from_registry, from_version
    from training.registry.tracking import tracking_uri

    good, weightless = register_tiny(), register_tiny(without=("model.safetensors",))
    result = check_servable("heara-danger", good)
    assert result.version == str(good) and result.label and result.seconds > 0
    checked = from_version("heara-danger", good).model_dir
    assert checked.parent == state().serving_models  # the service's cache, not a private download
    MlflowClient(tracking_uri()).set_registered_model_alias(model_name("danger"), CHAMPION, str(good))
    assert from_registry("danger").model_dir == checked  # the service finds the checked folder

    with pytest.raises(NotServableError, match=rf"heara-danger version {weightless} .*model\.safetensors"):
        check_servable("heara-danger", weightless)
    with pytest.raises(NotFoundError, match="'heara-danger' has no version 99"):
        check_servable("heara-danger", 99)


def test_no_store_is_not_found(registry_home: Path) -> None:
    from training.registry.champion import check_servable

    with pytest.raises(NotFoundError, match="no MLflow store"):
        check_servable("heara-danger", 1)


def test_register_folder_gives_the_alias_only_to_a_folder_that_answers(
    registry_home: Path, register_tiny
) -> None:
    from mlflow import MlflowClient

    from training.registry.aliases import CHAMPION, alias_version
    from training.registry.tracking import tracking_uri

    good = register_tiny(champion=True)
    with pytest.raises(NotServableError, match="model.safetensors"):
        register_tiny(champion=True, without=("model.safetensors",))
    assert alias_version(MlflowClient(tracking_uri()), "heara-danger", CHAMPION) == good
