"""gpu-check stages of the whole project: the environment, and the CUDA tests."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

from genimage_fast.bench.gpucheck.runner import Context, stage

OPTIONAL = ("triton", "torchvision", "timm", "numba", "scipy", "PIL", "nvidia.dali", "ffcv", "turbojpeg")
DRY_TEST_FILES = ["tests/test_degrade.py"]  # dry mode only collects, from one file


@stage("environment", order=0, budget_s=60, min_s=5, owner="gpu-kernels")
def environment_stage(ctx: Context) -> dict:
    """Versions, the GPU, nvJPEG in torchvision, and which optional backends import (DALI/ffcv
    should not on the GPU machine; their tests must skip)."""
    import torch

    import genimage_fast.kernels as kernels

    mods: dict[str, Any] = {}
    for name in OPTIONAL:
        if ctx.dry:  # importing DALI / ffcv takes seconds: the dry run only looks them up
            mods[name] = "present" if importlib.util.find_spec(name.split(".")[0]) else "absent"
            continue
        try:
            mods[name] = getattr(importlib.import_module(name), "__version__", "present")
        except Exception as exc:  # absent, or present but broken: both are facts to report
            mods[name] = f"absent ({type(exc).__name__})"
    info: dict[str, Any] = {"modules": mods, "kernels_from": str(kernels.__path__[0]),
                            "cuda_available": torch.cuda.is_available(), "device": str(ctx.device)}
    if ctx.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(ctx.device)
        info["device_count"] = torch.cuda.device_count()
        info["matmul_precision"] = torch.get_float32_matmul_precision()
        try:  # torchvision's batched nvJPEG, the loader's GPU decode path
            from torchvision.io import decode_jpeg, encode_jpeg

            img = torch.zeros(3, 16, 16, dtype=torch.uint8)
            info["nvjpeg_decode"] = list(decode_jpeg([encode_jpeg(img)], device=ctx.device)[0].shape)
        except Exception as exc:
            info["nvjpeg_decode"] = f"failed: {exc!r}"[:300]
    return info


def _junit(path: str) -> dict[str, Any]:
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    res: dict[str, Any] = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    res["seconds"] = float(suite.get("time", 0))
    res["failed"] = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
                     if c.find("failure") is not None or c.find("error") is not None]
    res["skipped_reasons"] = sorted({(c.find("skipped").get("message") or "")[:120] for c in suite.iter("testcase")
                                     if c.find("skipped") is not None})
    return res


# After the measurement stages: a slow suite must not starve the kernel and training figures.
@stage("cuda_tests", order=80, budget_s=150, min_s=40, owner="gpu-kernels")
def cuda_tests(ctx: Context) -> dict:
    """`pytest` on every CUDA test of tests/ (heavy ones included, -o addopts= lifts `not heavy`).
    Dry mode: collection only, of one file (the plugin and report plumbing)."""
    if importlib.util.find_spec("pytest") is None:
        raise RuntimeError("pytest is not installed for this python: the CUDA tests cannot run "
                           "(the kernel and train stages still check exactness and speed)")
    xml = ctx.out / "pytest.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-rfEs", "-o", "addopts=", "-p", "no:cacheprovider",
           "-p", "genimage_fast.bench.gpucheck.select_cuda", "--junitxml", str(xml)]
    cmd += ["--collect-only", *DRY_TEST_FILES] if ctx.dry else ["tests"]
    timeout = max(5.0, ctx.time_left() - 5)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"pytest killed after {timeout:.0f}s", "rc": None}
    res: dict[str, Any] = {"rc": proc.returncode, "tail": proc.stdout.strip().splitlines()[-15:]}
    if ctx.dry:
        res["collected"] = sum(1 for line in proc.stdout.splitlines() if "::" in line)
    elif xml.exists():
        res.update(_junit(str(xml)))
    if proc.returncode not in (0, 5):  # 5: nothing collected
        raise RuntimeError(f"pytest exited {proc.returncode}: {' / '.join(res['tail'][-3:])}")
    return res
