"""Config values are validated (issue #15 item 7): every bad value is one `error:` line naming the
key, exit 2 from the CLI (never a ZeroDivisionError deep in the loop); `--set` takes pairs repeated
or listed; list keys take a comma string; generator ids are normalised to names."""

from __future__ import annotations

from pathlib import Path

import pytest

from genimage_fast.cli import main
from genimage_fast.config import RULES, RecipeConfig, config_from_dict, config_to_dict, load_config
from genimage_fast.errors import GenImageError

DEMO = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"
# Values a rule should reject (each key is tried with these until the type check accepts one).
CANDIDATES = ["-1", "-0.5", "0", "1.5", "101", "[5, 1]", "[0.9, 1.5]", "[0.9]", "nope", "1,2,3"]


def _field_keys() -> set[str]:
    """'section.key' for every leaf key of RecipeConfig."""
    return {f"{section}.{key}" for section, values in config_to_dict(RecipeConfig()).items()
            if isinstance(values, dict) for key in values}


def test_every_rule_names_an_existing_key_and_the_defaults_pass() -> None:
    assert set(RULES) <= _field_keys(), set(RULES) - _field_keys()
    defaults = config_to_dict(RecipeConfig())
    for key, rule in RULES.items():
        section, name = key.split(".")
        assert rule(defaults[section][name]) is None, key


@pytest.mark.parametrize("key", sorted(RULES))
def test_each_rule_rejects_a_bad_value_in_one_line_naming_the_key(key: str, capsys) -> None:
    rejected = []
    for bad in CANDIDATES:
        try:
            config_from_dict({}, [f"{key}={bad}"])
        except GenImageError as exc:
            if "expected" not in str(exc):  # a rule's verdict, not the type check's
                rejected.append(bad)
    assert rejected, f"no candidate value is rejected by the rule of {key}"
    code = main(["train", str(DEMO), "--dry-run", "--set", f"{key}={rejected[0]}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("genimage-fast train: error: ") and repr(key) in err


@pytest.mark.parametrize(("setting", "message"), [
    ("train.log_every=0", "'train.log_every': must be >= 1, got 0"),
    ("train.val_every=-1", "'train.val_every': must be >= 0, got -1"),
    ("aug.hflip=1.5", "'aug.hflip': must be in [0.0, 1.0], got 1.5"),
    ("train.batch_size=0", "'train.batch_size': must be >= 1, got 0"),
    ("data.image_size=4", "'data.image_size': must be >= 8, got 4"),
    ("aug.jpeg_quality=90,30", "'aug.jpeg_quality': must be [low, high]"),
    ("data.generators=sdv14,nope", "'data.generators': unknown generator 'nope'"),
])
def test_issue_examples(setting: str, message: str) -> None:
    with pytest.raises(GenImageError) as err:
        config_from_dict({}, [setting])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_set_repeated_or_listed(capsys) -> None:
    assert main(["train", str(DEMO), "--dry-run", "--set", "train.seed=3", "train.log_every=7",
                 "--set", "data.image_size=48"]) == 0
    out = capsys.readouterr().out
    assert "seed: 3" in out and "log_every: 7" in out and "image_size: 48" in out


def test_list_keys_take_a_comma_string_and_generator_ids_become_names() -> None:
    cfg = load_config(DEMO, ["data.generators=adm,sdv14", "aug.jpeg_quality=60,90", "optim.betas=0.8,0.9",
                             "data.val_generators=1,7"])
    assert cfg.data.generators == ["sdv14", "adm"]  # paper order, whatever order was given
    assert cfg.aug.jpeg_quality == [60, 90] and cfg.optim.betas == [0.8, 0.9]
    assert cfg.data.val_generators == ["sdv14", "biggan"]
    assert load_config(DEMO, ["data.generators=1"]).data.generators == ["sdv14"]
    assert load_config(DEMO, ["data.generators=[3, wukong]"]).data.generators == ["adm", "wukong"]
