"""Forward + backward images/s per detector (bf16 autocast, channels_last): the models' share of
training speed, without the loader or the optimizer step.

    python -m genimage_fast.models.throughput --batch 256 --device cuda [--models resnet50,f3net] [--json F]

On CUDA it measures what training runs: cuDNN autotuning on (as the trainer sets it), a default
batch of 256 (64 on the CPU), >= 5 warm-up passes so autotuning stays out of the timed ones; the
output's settings say which were used.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from genimage_fast.bench.common import Measurement, report, time_call
from genimage_fast.models.factory import create_model, get_model_spec, list_models

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


# A plain loss per output kind (the models layer does not import the engine's losses; jsd_ce costs the
# network the same as CE per image).
_LOSS_BY_OUTPUT: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "logits": lambda out, y: F.cross_entropy(out.float(), y),
    "logit": lambda out, y: F.binary_cross_entropy_with_logits(out.float()[:, 0], y.float()),
    "log_probs": lambda out, y: F.nll_loss(out.float(), y),
}


DEFAULT_BATCH = {"cuda": 256, "cpu": 64}
MIN_CUDA_WARMUP = 5


def configure_cuda_backends(device: torch.device) -> bool:
    """cuDNN autotuning for fixed shapes, as engine.train._configure_backends sets it; True on CUDA."""
    if device.type != "cuda":
        return False
    torch.backends.cudnn.benchmark = True
    return True


def measure_fwd_bwd(name: str, batch: int | None = None, device: str = "cuda", precision: str = "bf16",
                    channels_last: bool = True, iters: int = 10, warmup: int = 3,
                    image_size: int | None = None) -> Measurement:
    """Time `iters` forward + backward passes of a fresh `name` on random [batch, 3, S, S] input
    (batch None: 256 on CUDA, 64 on the CPU; on CUDA at least 5 warm-up passes, cuDNN autotuning on)."""
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of {', '.join(_DTYPES)}, got {precision!r}")
    dev = torch.device(device)
    batch = batch or DEFAULT_BATCH.get(dev.type, 64)
    benchmark = configure_cuda_backends(dev)
    if dev.type == "cuda":
        warmup = max(warmup, MIN_CUDA_WARMUP)
    size = image_size or get_model_spec(name).input_size
    model = create_model(name).to(dev).train()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    x = torch.rand(batch, 3, size, size, device=dev).contiguous(memory_format=memory_format)
    y = torch.randint(0, 2, (batch,), device=dev)
    loss_fn = _LOSS_BY_OUTPUT[get_model_spec(name).output]
    dtype = _DTYPES[precision]

    def step() -> None:
        autocast = torch.autocast(dev.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with autocast:
            loss = loss_fn(model(x), y)
        loss.backward()
        model.zero_grad(set_to_none=True)

    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    images, seconds = time_call(step, batch, iters, warmup=warmup, sync=sync)
    return Measurement(f"{name}/{precision}", images, seconds,
                       extra={"batch": batch, "image_size": size, "channels_last": channels_last,
                              "device": str(dev), "cudnn_benchmark": benchmark, "warmup": warmup})


def measure_all(names: Sequence[str], batch: int | None, device: str, precision: str, iters: int = 10,
                warmup: int = 3) -> list[Measurement]:
    return [measure_fwd_bwd(n, batch, device, precision, iters=iters, warmup=warmup) for n in names]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    paper = [n for n in list_models() if n != "demo_cnn"]
    parser.add_argument("--models", default=",".join(paper), help="comma-separated registry names")
    parser.add_argument("--batch", type=int, default=None, help="default: 256 on CUDA, 64 on the CPU")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="bf16", choices=sorted(_DTYPES))
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    rows = measure_all(names, args.batch, args.device, args.precision, args.iters, args.warmup)
    report("models: forward + backward", rows, args.json_path,
           {"batch": rows[0].extra["batch"] if rows else args.batch, "device": args.device,
            "precision": args.precision, "channels_last": True, "iters": args.iters,
            "cudnn_benchmark": torch.device(args.device).type == "cuda"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
