"""params.yaml is loaded strictly: unknown keys and bad values fail with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training import paths
from training.config import AugmentConfig, Params, load_params, parse_overrides
from training.errors import ConfigError

MINIMAL = {"task": "t", "labels": ["a", "b"], "augment": {"multipliers": {"b": 2.0}}}


def merged(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def write_params(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


def test_tests_never_use_the_repository_state_folder(repo_root):
    assert paths.heara_home() != (repo_root / ".heara").resolve()
    assert not paths.heara_home().is_relative_to(repo_root)


def test_repository_params_yaml_loads(repo_root):
    params = load_params(repo_root / "params.yaml")
    assert isinstance(params, Params)
    assert params.labels and len(set(params.labels)) == len(params.labels)
    assert set(params.augment.multipliers) <= set(params.labels)
    # to_dict spells sections the way params.yaml does (validate, not validate_).
    assert "validate" in params.to_dict() and "validate_" not in params.to_dict()


@pytest.mark.parametrize("data, key", [
    ({"bogus": 1}, "'bogus'"),
    ({"preprocess": {"spacng": "kiwi"}}, "'preprocess.spacng'"),
    ({"validate": {"max_char": 10}}, "'validate.max_char'"),
    ({"augment": {"eda": {"alpha_xx": 0.1}}}, "'augment.eda.alpha_xx'"),
])
def test_unknown_keys_are_rejected_with_the_full_dotted_key(tmp_path, data, key):
    p = write_params(tmp_path, merged(MINIMAL, data))
    with pytest.raises(ConfigError) as err:
        load_params(p)
    assert f"unknown key {key}" in str(err.value)
    assert str(p) in str(err.value)


@pytest.mark.parametrize("override, key", [
    ({"split": {"val_ratio": 0.7}}, "split.val_ratio"),
    ({"preprocess": {"spacing": "hanspell"}}, "preprocess.spacing"),
    ({"validate": {"conflicts": "vote"}}, "validate.conflicts"),
    ({"validate": {"min_rows_per_class": 1}}, "validate.min_rows_per_class"),
    ({"preprocess": {"max_repeat": 0}}, "preprocess.max_repeat"),
    ({"augment": {"methods": ["eda_sr", "back_translation"]}}, "augment.methods"),
])
def test_bad_values_are_named(tmp_path, override, key):
    p = write_params(tmp_path, MINIMAL)
    with pytest.raises(ConfigError) as err:
        load_params(p, overrides=override)
    assert f"'{key}" in str(err.value)


def test_multiplier_below_one_is_rejected(tmp_path):
    p = write_params(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=r"augment\.multipliers\.b is 0\.5"):
        load_params(p, overrides={"augment": {"multipliers": {"b": 0.5}}})


def test_multipliers_naming_unknown_labels_are_rejected(tmp_path):
    p = write_params(tmp_path, {**MINIMAL, "augment": {"multipliers": {"b": 2.0, "zzz": 3.0}}})
    with pytest.raises(ConfigError, match=r"not in `labels`: \['zzz'\]"):
        load_params(p)


def test_duplicate_labels_are_rejected(tmp_path):
    p = write_params(tmp_path, {**MINIMAL, "labels": ["a", "b", "a"]})
    with pytest.raises(ConfigError, match="duplicates"):
        load_params(p)


def test_parse_overrides_builds_nested_yaml_values():
    assert parse_overrides(["split.seed=7", "labels=[a, b]", "augment.target_balance=null",
                            "data.id_col=", "preprocess.spacing=none", "augment.eda.p_rd=0.2"]) == {
        "split": {"seed": 7},
        "labels": ["a", "b"],
        "augment": {"target_balance": None, "eda": {"p_rd": 0.2}},
        "data": {"id_col": None},
        "preprocess": {"spacing": "none"},
    }


def test_parse_overrides_rejects_a_pair_without_equals():
    with pytest.raises(ConfigError, match="split.seed"):
        parse_overrides(["split.seed"])


def test_overrides_change_only_what_differs(tmp_path):
    p = write_params(tmp_path, {**MINIMAL, "split": {"seed": 1, "val_ratio": 0.2}})
    params = load_params(p, overrides=parse_overrides(["split.seed=7", "augment.eda.p_rd=0.3"]))
    assert params.split.seed == 7
    assert params.split.val_ratio == 0.2            # sibling key kept from the file
    assert params.augment.eda.p_rd == 0.3
    assert params.augment.eda.alpha_sr == 0.15      # default kept
    assert params.augment.multipliers == {"b": 2.0}


def test_an_unknown_override_key_is_rejected(tmp_path):
    p = write_params(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=r"unknown key 'split\.sed'"):
        load_params(p, overrides=parse_overrides(["split.sed=7"]))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_params(listed)


def test_an_empty_mapping_override_clears_the_section(tmp_path):
    # `labels=[x,y]` with the file's multipliers naming old labels must be fixable in one command.
    p = write_params(tmp_path, MINIMAL)
    params = load_params(p, overrides=parse_overrides(["labels=[x, y]", "augment.multipliers={}"]))
    assert params.labels == ("x", "y") and params.augment.multipliers == {}
    assert params.augment.seed == AugmentConfig().seed  # the rest of the section is kept
