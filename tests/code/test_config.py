"""params.yaml is loaded strictly: unknown keys and bad values fail with the key named; config.py's defaults
are params.yaml's values; overlays (params.full.yaml) hold only the keys that differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter

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


@pytest.mark.parametrize(
    "data, key",
    [
        ({"bogus": 1}, "'bogus'"),
        ({"preprocess": {"spacng": "kiwi"}}, "'preprocess.spacng'"),
        ({"validate": {"max_char": 10}}, "'validate.max_char'"),
        ({"augment": {"eda": {"alpha_xx": 0.1}}}, "'augment.eda.alpha_xx'"),
    ],
)
def test_unknown_keys_are_rejected_with_the_full_dotted_key(tmp_path, data, key):
    p = write_params(tmp_path, merged(MINIMAL, data))
    with pytest.raises(ConfigError) as err:
        load_params(p)
    assert f"unknown key {key}" in str(err.value)
    assert str(p) in str(err.value)


@pytest.mark.parametrize(
    "override, key",
    [
        ({"split": {"val_ratio": 0.7}}, "split.val_ratio"),
        ({"preprocess": {"spacing": "hanspell"}}, "preprocess.spacing"),
        ({"validate": {"conflicts": "vote"}}, "validate.conflicts"),
        ({"validate": {"min_rows_per_class": 0}}, "validate.min_rows_per_class"),
        ({"validate": {"rare_classes": "drop"}}, "validate.rare_classes"),
        ({"validate": {"merge_into": ""}}, "validate.merge_into"),
        ({"preprocess": {"max_repeat": 0}}, "preprocess.max_repeat"),
        ({"augment": {"methods": ["eda_sr", "back_translation"]}}, "augment.methods"),
    ],
)
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
    assert parse_overrides(
        [
            "split.seed=7",
            "labels=[a, b]",
            "augment.target_balance=null",
            "data.id_col=",
            "preprocess.spacing=none",
            "augment.eda.p_rd=0.2",
        ]
    ) == {
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
    assert params.split.val_ratio == 0.2  # sibling key kept from the file
    assert params.augment.eda.p_rd == 0.3
    assert params.augment.eda.alpha_sr == 0.15  # default kept
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


# --- One home for values: params.yaml; config.py's defaults only repeat it -------------------------------


def _sections(model: type[BaseModel], node: dict, prefix: str = ""):
    """(dotted key, field, YAML value or MISSING) for every leaf field of `model`, recursively; plus
    (dotted key, None, value) for YAML keys the model has no field for."""
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    for key, field in fields.items():
        dotted = f"{prefix}{key}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            sub = node.get(key, {})
            assert isinstance(sub, dict), f"params.yaml: '{dotted}' must be a section"
            yield from _sections(ann, sub, dotted + ".")
        else:
            yield dotted, field, node.get(key, MISSING)
    for key in node.keys() - fields.keys():
        yield f"{prefix}{key}", None, node[key]


MISSING = object()


def test_code_defaults_agree_with_params_yaml(repo_root):
    """config.py repeats params.yaml's values as defaults (so that a partial file means "params.yaml with
    these keys changed"); any disagreement, or a key only one side has, fails here by name."""
    tree = yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))
    problems = []
    for key, field, value in _sections(Params, tree):
        if field is None:
            problems.append(f"{key}: in params.yaml but not in training/config.py")
            continue
        if field.is_required():
            problems.append(f"{key}: no default in training/config.py")
            continue
        if value is MISSING:
            problems.append(
                f"{key}: default {field.get_default(call_default_factory=True)!r} in config.py, "
                "missing from params.yaml"
            )
            continue
        adapter = TypeAdapter(field.annotation)
        default = adapter.dump_python(field.get_default(call_default_factory=True), mode="json")
        from_yaml = adapter.dump_python(adapter.validate_python(value), mode="json")
        if default != from_yaml:
            problems.append(f"{key}: config.py default {default!r} != params.yaml {from_yaml!r}")
    assert not problems, "\n".join(problems)


def test_the_agreement_check_catches_a_disagreement():
    # The walk above must see nested fields: a changed nested default is reported under its dotted key.
    tree = Params().to_dict()
    tree["augment"]["eda"]["p_rd"] = 0.9
    del tree["train"]["lr"]
    tree["split"]["sed"] = 1
    seen = {key: (field, value) for key, field, value in _sections(Params, tree)}
    assert seen["augment.eda.p_rd"][1] == 0.9
    assert seen["train.lr"][1] is MISSING
    assert seen["split.sed"][0] is None


def test_every_field_has_a_one_line_help():
    def walk(model: type[BaseModel], prefix: str = ""):
        for name, field in model.model_fields.items():
            dotted = f"{prefix}{field.alias or name}"
            assert field.description and "\n" not in field.description, f"{dotted}: no one-line description"
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                walk(field.annotation, dotted + ".")

    walk(Params)


# --- Overlays: only the keys that differ ------------------------------------------------------------------


def test_full_overlay_holds_only_keys_that_differ(repo_root):
    base = yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))
    overlay = yaml.safe_load((repo_root / "params.full.yaml").read_text(encoding="utf-8"))
    for section, values in overlay.items():
        for key, value in values.items():
            assert base[section][key] != value, f"params.full.yaml repeats {section}.{key} from params.yaml"


def test_config_show_resolves_the_full_overlay(repo_root, monkeypatch):
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.chdir(repo_root)
    result = CliRunner().invoke(app, ["config", "show", "--overlay", "params.full.yaml"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["model"]["profile"] == "full"
    assert shown["train"]["lr"] == 5.0e-5 and shown["train"]["epochs"] == 4
    assert shown["train"]["early_stopping_patience"] == 2
    assert shown["train"]["batch_size"] == load_params().train.batch_size  # the rest comes from params.yaml


def test_an_overlay_with_an_unknown_key_fails_naming_the_key_and_the_file(tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    overlay = tmp_path / "my-overlay.yaml"
    overlay.write_text("train:\n  lrr: 1.0e-4\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "show", "--overlay", str(overlay)])
    assert result.exit_code == 2
    assert f"{overlay}: unknown key 'train.lrr'" in " ".join(result.output.split())
    with pytest.raises(ConfigError, match=r"my-overlay\.yaml: unknown key 'train\.lrr'"):
        load_params(overlays=[overlay])


def test_overlays_apply_in_order_then_overrides(tmp_path, repo_root):
    later = tmp_path / "later.yaml"
    later.write_text("train:\n  epochs: 9\n", encoding="utf-8")
    params = load_params(overlays=[repo_root / "params.full.yaml", later], overrides={"train": {"lr": 1e-4}})
    assert (params.model.profile, params.train.epochs, params.train.lr) == ("full", 9, 1e-4)


def test_every_sweep_dimension_sets_an_existing_key():
    """Each key of a sweep space names the params.yaml key it samples (`sets`); that key must exist, and be
    a number or a choice of the sampled kind (augment_scale scales the multipliers mapping)."""
    from training.config import KobertTinySpace, LinearSpace

    tree = Params().to_dict()
    for space in (KobertTinySpace, LinearSpace):
        for name, field in space.model_fields.items():
            extra = field.json_schema_extra
            assert extra["kind"] in ("range", "choice"), (space.__name__, name)
            node = tree
            for part in extra["sets"].split("."):
                assert part in node, f"{space.__name__}.{name} sets {extra['sets']}, which params.yaml lacks"
                node = node[part]
            assert isinstance(node, dict if name == "augment_scale" else (int, float, str)), (name, node)
