"""ImageNet init from local files (genimage_fast.models.pretrained): real-format state dicts built from
torchvision / timm models and from the original F3Net Xception with random weights (nothing is
downloaded), loaded into the detectors; every backbone tensor must equal the source's.

Sources quoted: "f3net.py" = GenImage-Dataset/GenImage detector_codes/F3Net-main/f3net.py;
"trainer.py" = CNNDetection-master/networks/trainer.py (GenImage's copy).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from torch import nn

from genimage_fast.errors import GenImageError
from genimage_fast.models import create_model


def randomized(state: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """Every float tensor redrawn (BN running stats too), so equality after loading means something."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in state.items():
        draw = torch.randn(v.shape, generator=g)
        out[k] = (draw.abs() + 0.1 if "running_var" in k else draw) if v.is_floating_point() else v.clone()
    return out


def legacy_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The 2017 torchvision files (resnet50-19c8e357.pth, ...) predate BN's num_batches_tracked."""
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def assert_backbone_equal(body: nn.Module, source: dict[str, torch.Tensor], skip: tuple[str, ...] = ("fc.",)) -> int:
    own = body.state_dict()
    n = 0
    for key, value in source.items():
        if key.startswith(skip) or key.endswith("num_batches_tracked"):
            continue
        assert torch.equal(own[key], value), key
        n += 1
    return n


# ------------------------------------------------------------------------------------------- ResNets


@pytest.mark.parametrize("name, arch, body", [("cnnspot", "resnet50", "net"), ("spec", "resnet34", "net"),
                                              ("gramnet", "resnet18", "body")])
def test_torchvision_and_timm_resnets_load_into_the_detectors(tmp_path: Path, name: str, arch: str, body: str) -> None:
    tv = randomized(getattr(torchvision.models, arch)(weights=None).state_dict(), seed=1)
    tm = randomized(timm.create_model(arch, pretrained=False).state_dict(), seed=2)
    assert list(tv) == list(tm)  # timm's ResNet keeps torchvision's key names (fc included): one mapping
    files = {"torchvision-2017": legacy_torchvision(tv), "timm": tm}
    for label, state in files.items():
        path = tmp_path / f"{label}.pth"
        torch.save(state, path)
        model = create_model(name, pretrained=str(path))
        assert assert_backbone_equal(getattr(model, body), state) > 50
        info = model.pretrained_info
        assert info.loaded == sum(not k.startswith("fc.") for k in state)
        assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert set(info.dropped) == {"fc.weight", "fc.bias"}
        if label == "torchvision-2017":  # missing counters stay 0
            assert all(v.item() == 0 for k, v in model.state_dict().items() if k.endswith("num_batches_tracked"))


def test_cnnspot_head_is_reinitialised_as_cnndetection_does(tmp_path: Path) -> None:
    # trainer.py:16-18: model.fc = nn.Linear(2048, 1); torch.nn.init.normal_(model.fc.weight.data, 0.0, 0.02)
    path = tmp_path / "r50.pth"
    torch.save(randomized(torchvision.models.resnet50(weights=None).state_dict()), path)
    torch.manual_seed(0)
    head = create_model("cnnspot", pretrained=str(path)).net.fc
    assert head.weight.shape == (1, 2048)
    assert 0.018 < head.weight.std().item() < 0.022 and abs(head.weight.mean().item()) < 0.003
    assert create_model("cnnspot", pretrained=str(path)).pretrained_info.fresh == ("net.fc",)


def test_wrapped_checkpoints_ddp_prefix_and_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = randomized(timm.create_model("resnet34", pretrained=False).state_dict(), seed=3)
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 90}, tmp_path / "ddp.pth")
    torch.save({"model": state, "args": {"lr": 0.1}}, tmp_path / "model.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "timm.safetensors"))
    for file in ("ddp.pth", "model.pth", "timm.safetensors"):
        model = create_model("spec", pretrained=str(tmp_path / file))
        assert assert_backbone_equal(model.net, state) > 100


# ------------------------------------------------------------------------------------------- errors


def one_line_error(name: str, path: Path, **kwargs: object) -> str:
    with pytest.raises(GenImageError) as err:
        create_model(name, pretrained=str(path), **kwargs)
    text = str(err.value)
    assert "\n" not in text
    return text


def test_bad_files_are_one_line_naming_the_first_tensor(tmp_path: Path) -> None:
    r34 = randomized(torchvision.models.resnet34(weights=None).state_dict())
    missing = {k: v for k, v in r34.items() if k != "layer2.1.conv2.weight"}
    torch.save(missing, tmp_path / "missing.pth")
    assert "missing tensor for 'net.layer2.1.conv2.weight'" in one_line_error("spec", tmp_path / "missing.pth")

    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "r50.pth")  # not a ResNet-34
    text = one_line_error("spec", tmp_path / "r50.pth")
    assert "tensor 'layer1.0.conv1.weight' has the wrong shape: 64x64x1x1 in the file, 64x64x3x3" in text
    assert "more)" in text

    torch.save({**r34, "layer5.0.weight": torch.zeros(3)}, tmp_path / "extra.pth")
    assert "unexpected tensor 'layer5.0.weight'" in one_line_error("spec", tmp_path / "extra.pth")

    torch.save([1, 2, 3], tmp_path / "list.pth")
    assert "not a state dict" in one_line_error("gramnet", tmp_path / "list.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    assert "cannot be read" in one_line_error("gramnet", tmp_path / "junk.pth")
    assert "not found" in one_line_error("gramnet", tmp_path / "absent.pth")

    xcep = timm.create_model("legacy_xception", pretrained=False).state_dict()
    torch.save({k: v for k, v in xcep.items() if k != "conv1.weight"}, tmp_path / "noconv1.pth")
    assert "missing tensor for 'fad_xcep.conv1.weight'" in one_line_error("f3net", tmp_path / "noconv1.pth",
                                                                          img_size=32)


# ----------------------------------------------------------------------- F3Net: the original's Xception


class SeparableConv2d(nn.Module):  # f3net.py:106-116
    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, padding=0, dilation=1, bias=False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding, dilation, groups=in_channels,
                               bias=bias)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, 1, 0, 1, 1, bias=bias)


class Block(nn.Module):  # f3net.py:118-155 (parameters and their names only)
    def __init__(self, in_filters, out_filters, reps, strides=1, start_with_relu=True, grow_first=True):
        super().__init__()
        if out_filters != in_filters or strides != 1:
            self.skip = nn.Conv2d(in_filters, out_filters, 1, stride=strides, bias=False)
            self.skipbn = nn.BatchNorm2d(out_filters)
        else:
            self.skip = None
        self.relu = nn.ReLU(inplace=True)
        rep = []
        filters = in_filters
        if grow_first:
            rep.append(self.relu)
            rep.append(SeparableConv2d(in_filters, out_filters, 3, stride=1, padding=1, bias=False))
            rep.append(nn.BatchNorm2d(out_filters))
            filters = out_filters
        for _ in range(reps - 1):
            rep.append(self.relu)
            rep.append(SeparableConv2d(filters, filters, 3, stride=1, padding=1, bias=False))
            rep.append(nn.BatchNorm2d(filters))
        if not grow_first:
            rep.append(self.relu)
            rep.append(SeparableConv2d(in_filters, out_filters, 3, stride=1, padding=1, bias=False))
            rep.append(nn.BatchNorm2d(out_filters))
        if not start_with_relu:
            rep = rep[1:]
        else:
            rep[0] = nn.ReLU(inplace=False)
        if strides != 1:
            rep.append(nn.MaxPool2d(3, strides, 1))
        self.rep = nn.Sequential(*rep)


class Xception(nn.Module):  # f3net.py:169-211
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.block1 = Block(64, 128, 2, 2, start_with_relu=False, grow_first=True)
        self.block2 = Block(128, 256, 2, 2, start_with_relu=True, grow_first=True)
        self.block3 = Block(256, 728, 2, 2, start_with_relu=True, grow_first=True)
        for i in range(4, 12):
            setattr(self, f"block{i}", Block(728, 728, 3, 1, start_with_relu=True, grow_first=True))
        self.block12 = Block(728, 1024, 2, 2, start_with_relu=True, grow_first=False)
        self.conv3 = SeparableConv2d(1024, 1536, 3, 1, 1)
        self.bn3 = nn.BatchNorm2d(1536)
        self.conv4 = SeparableConv2d(1536, 2048, 3, 1, 1)
        self.bn4 = nn.BatchNorm2d(2048)


def cadene_file(path: Path) -> None:
    """xception-b5690688.pth's layout: the Xception's tensors with 2-D pointwise weights, a 1000-way fc,
    no num_batches_tracked."""
    state = randomized(legacy_torchvision(Xception().state_dict()), seed=5)
    state = {k: (v.flatten(1) if "pointwise" in k else v) for k, v in state.items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 2048), torch.randn(1000)
    torch.save(state, path)


def original_streams(path: Path, lfs_m: int = 6) -> tuple[nn.Module, nn.Module]:
    """f3net.py:231-241 (return_pytorch04_xception) and 61-77 (_init_xcep_fad / _init_xcep_lfs)."""

    def return_pytorch04_xception():
        model = Xception()
        state_dict = torch.load(path)
        for name, weights in state_dict.items():
            if 'pointwise' in name:
                state_dict[name] = weights.unsqueeze(-1).unsqueeze(-1)
        model.load_state_dict(state_dict, strict=False)
        return model

    fad_excep = return_pytorch04_xception()
    conv1_data = fad_excep.conv1.weight.data
    fad_excep.conv1 = nn.Conv2d(12, 32, 3, 2, 0, bias=False)
    for i in range(4):
        fad_excep.conv1.weight.data[:, i * 3:(i + 1) * 3, :, :] = conv1_data / 4.0
    lfs_excep = return_pytorch04_xception()
    conv1_data = lfs_excep.conv1.weight.data
    lfs_excep.conv1 = nn.Conv2d(lfs_m, 32, 3, 1, 0, bias=False)
    for i in range(int(lfs_m / 3)):
        lfs_excep.conv1.weight.data[:, i * 3:(i + 1) * 3, :, :] = conv1_data / float(lfs_m / 3.0)
    return fad_excep, lfs_excep


def test_f3net_from_the_cadene_xception_equals_the_originals_init(tmp_path: Path) -> None:
    path = tmp_path / "xception-b5690688.pth"
    cadene_file(path)
    fad_ref, lfs_ref = original_streams(path)
    model = create_model("f3net", img_size=32, pretrained=str(path))
    for ours, ref in ((model.fad_xcep, fad_ref), (model.lfs_xcep, lfs_ref)):
        own = ours.state_dict()
        ref_state = legacy_torchvision(ref.state_dict())
        assert set(ref_state) <= set(own)  # the same names (Cadene's ReLUs carry none)
        for key, value in ref_state.items():
            assert torch.equal(own[key], value), key
    info = model.pretrained_info
    assert info.format.startswith("Cadene") and set(info.dropped) == {"fc.weight", "fc.bias"}
    assert info.loaded == 2 * len(legacy_torchvision(fad_ref.state_dict()))
    assert {"fad_head", "lfs_head", "mix_block7", "mix_block12", "fc"} == set(info.fresh)


def test_f3net_from_a_timm_legacy_xception_state_dict(tmp_path: Path) -> None:
    state = randomized(timm.create_model("legacy_xception", pretrained=False).state_dict(), seed=7)
    torch.save(state, tmp_path / "timm-xception.pth")
    model = create_model("f3net", img_size=32, pretrained=str(tmp_path / "timm-xception.pth"))
    skip = ("fc.", "conv1.weight")
    assert assert_backbone_equal(model.fad_xcep, state, skip) == assert_backbone_equal(model.lfs_xcep, state, skip)
    conv1 = state["conv1.weight"]
    assert torch.equal(model.fad_xcep.conv1.weight, torch.cat([conv1 / 4.0] * 4, dim=1))
    assert torch.equal(model.lfs_xcep.conv1.weight, torch.cat([conv1 / 2.0] * 2, dim=1))


# ------------------------------------------------------------------------------------- in a run


def test_a_run_records_the_init_file_and_uses_the_originals_train_transform(make_records, tmp_path: Path) -> None:
    import json

    from genimage_fast.engine.train import train

    recipes = Path(__file__).resolve().parents[1] / "recipes"
    path = tmp_path / "resnet18-5c106cde.pth"
    torch.save(legacy_torchvision(randomized(torchvision.models.resnet18(weights=None).state_dict())), path)
    tiny = ["data.image_size=32", "data.num_workers=0", "train.batch_size=4", "train.max_steps=1",
            "train.device=cpu", "train.precision=fp32", "train.val_every=0", "data.val_generators=[biggan]",
            f"model.pretrained={path}"]
    dry = train(recipes / "gramnet.yaml", None, overrides=tiny, dry_run=True)
    assert dry["pretrained"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    run = tmp_path / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a shared 2-core box: intra-op threads only spin
    try:
        train(recipes / "gramnet.yaml", make_records("dali"), out=run, overrides=tiny)
    finally:
        torch.set_num_threads(threads)
    info = json.loads((run / "run.json").read_text())
    assert info["pretrained"]["path"] == str(path) and info["pretrained"]["sha256"] == dry["pretrained"]["sha256"]
    assert info["pretrained"]["fresh"] == ["branches", "scale", "head"]
    assert "train_transform: gramnet" in (run / "config.yaml").read_text()
