"""The skeleton's contracts: CLI errors are one line with a non-zero exit; configs reject unknown keys."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from genimage_fast.cli import ENTRY_POINTS, build_parser, main
from genimage_fast.config import RecipeConfig, config_from_dict, dump_config
from genimage_fast.devices import resolve_device
from genimage_fast.errors import GenImageError
from genimage_fast.generators import GENERATOR_NAMES, parse_generators
from genimage_fast.registry import Registry


def test_every_design_command_is_registered() -> None:
    names = {"demo-data", "scan", "convert", "inspect", "verify", "spectra", "train", "eval", "report"}
    names |= {f"bench {b}" for b in ("loader", "degrade", "spectral", "train", "convert")}
    assert names <= set(ENTRY_POINTS)


@pytest.mark.parametrize("command", ["demo-data", "scan", "convert", "inspect", "verify", "train", "eval", "report"])
def test_help_works(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([command, "--help"])
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_usage_error_is_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "genimage_fast", "convert", "a", "b", "--format", "tiff"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "invalid choice" in proc.stderr


def test_missing_path_is_one_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]


def test_config_rejects_unknown_key_with_suggestion() -> None:
    with pytest.raises(GenImageError, match=r"unknown config key 'train\.batchsize'.*batch_size"):
        config_from_dict({"train": {"batchsize": 3}})


def test_config_overrides_and_types() -> None:
    cfg = config_from_dict({"model": {"name": "resnet50"}}, ["train.batch_size=7", "optim.lr=0.1"])
    assert cfg.train.batch_size == 7 and cfg.optim.lr == 0.1
    assert config_from_dict({}, ["optim.lr=1e-3"]).optim.lr == 1e-3  # YAML 1.1 reads 1e-3 as a string
    with pytest.raises(GenImageError, match="optim.lr"):
        config_from_dict({}, ["optim.lr=fast"])
    with pytest.raises(GenImageError, match="train.batch_size"):
        config_from_dict({}, ["train.batch_size=many"])
    with pytest.raises(GenImageError, match="train.precision"):
        config_from_dict({}, ["train.precision=fp8"])
    assert isinstance(config_from_dict({}), RecipeConfig)
    assert "batch_size: 64" in dump_config(config_from_dict({}))


def test_registry_and_generators() -> None:
    reg: Registry[int] = Registry("thing")
    reg.add("alpha", 1)
    assert reg.get("alpha") == 1
    with pytest.raises(GenImageError, match="did you mean: alpha"):
        reg.get("alpah")
    assert parse_generators("sdv14,biggan") == [1, 7]
    assert parse_generators(["biggan", 1, "-1", "sdv14"]) == [-1, 1, 7]  # names, ids, sorted, unique
    assert parse_generators(None) is None and parse_generators([]) is None and parse_generators("") is None
    with pytest.raises(GenImageError, match="unknown generator id 8"):
        parse_generators([8])
    assert len(GENERATOR_NAMES) == 8
    with pytest.raises(GenImageError):
        parse_generators("dalle")


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(GenImageError, match="unknown device"):
        resolve_device("tpu")
    with pytest.raises(GenImageError, match="unknown device"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(GenImageError, match="no CUDA"):
            resolve_device("cuda:1")
