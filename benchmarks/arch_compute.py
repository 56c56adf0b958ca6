"""Arithmetic per pixel and CPU time of our network against the architectures of the CNN peers.

    python benchmarks/arch_compute.py [--size 1024 768] [--threads 2] [--repeats 3]
                                      [--grow base_channels=48 num_res_blocks=3,base_channels=40 ...]

The PSNR target of issue #3 is FFDNet's published numbers; the speed target is 0.5 MP/s end to end on
this 2-core CPU. This script puts the two side by side: convolution multiply-accumulates per output
pixel (counted with forward hooks), parameters, and the time of one forward pass of a ``--size``
image under the app's CPU arithmetic (bf16 autocast where the CPU has it, channels-last), for

* the shipped ε-network (its config from the model file),
* the colour FFDNet architecture (Zhang et al. 2018: 12 conv layers of 96 channels at half resolution,
  15 input channels = 4 × 3 sub-pixels + a 3-channel noise map),
* the colour DnCNN architecture (CDnCNN-B, Zhang et al. 2017: 20 conv layers of 64 channels at full
  resolution; batch norm folded into the convolutions for inference).

* with ``--grow``: the shipped network grown (``core/growth.py``) to each given config (comma-separated
  ``UNetConfig`` fields per candidate), the candidates for a bigger network trained on a GPU from the
  shipped one (``train --init ... --grow``).

The peers have random weights: only their cost is measured, not their quality. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F
from torch import nn

from desktop_denoiser.core.checkpoint import load_model
from desktop_denoiser.core.growth import grow_unet
from desktop_denoiser.core.precision import cpu_has_fast_bf16, with_precision
from desktop_denoiser.paths import default_model_path


def _plain_cnn(c_in: int, width: int, depth: int, c_out: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.Conv2d(width, c_out, 3, padding=1))


class FFDNetArch(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = _plain_cnn(15, 96, 12, 12)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        y = F.pixel_unshuffle(x, 2)
        noise_map = torch.full_like(y[:, :3], 0.1)
        return F.pixel_shuffle(self.body(torch.cat([y, noise_map], 1)), 2)


class DnCNNArch(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = _plain_cnn(3, 64, 20, 3)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x - self.body(x)


def conv_macs_per_pixel(net: nn.Module, h: int = 256, w: int = 256) -> float:
    """Multiply-accumulates of all convolutions of one forward pass, per input pixel."""
    total = 0

    def hook(mod: nn.Conv2d, inp, out) -> None:
        nonlocal total
        total += out[0].numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, h, w), torch.tensor([50]))
    finally:
        for hd in handles:
            hd.remove()
    return total / (h * w)


def parse_candidate(text: str) -> dict:
    """``"base_channels=48,num_res_blocks=3"`` -> {"base_channels": 48, "num_res_blocks": 3}
    (``channel_mults=1:2:4`` for tuples)."""
    out = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        out[key.strip()] = tuple(int(v) for v in value.split(":")) if ":" in value else int(value)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, nargs=2, default=[1024, 768], metavar=("W", "H"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="timed forward passes (the fastest counts)")
    ap.add_argument("--grow", nargs="*", default=[], metavar="FIELD=VALUE[,...]",
                    help="also time the shipped network grown to these configs (e.g. base_channels=48)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if cpu_has_fast_bf16() else None
    ours = load_model(default_model_path()).model
    nets = {"ours (shipped ε-network)": ours, "FFDNet architecture (colour)": FFDNetArch().eval(),
            "DnCNN architecture (CDnCNN-B)": DnCNNArch().eval()}
    for text in args.grow:
        fields = parse_candidate(text)
        nets[f"ours grown: {', '.join(f'{k}={v}' for k, v in fields.items())}"] = \
            grow_unet(ours, replace(ours.config, **fields)).eval()
    w, h = args.size
    x = torch.rand(1, 3, h, w) * 2 - 1
    t = torch.tensor([50])
    rows = []
    for name, net in nets.items():
        macs = conv_macs_per_pixel(net)
        net = net.to(memory_format=torch.channels_last)
        fn = with_precision(net, "cpu", dtype)
        with torch.no_grad():
            fn(x, t)  # warm-up
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                fn(x, t)
                times.append(time.perf_counter() - t0)
        rows.append((name, macs, sum(p.numel() for p in net.parameters()), min(times)))
    base_macs, base_s = rows[0][1], rows[0][3]
    print(f"{w}×{h} image, {args.threads} thread(s), {'bf16 autocast' if dtype else 'float32'}, fastest of "
          f"{args.repeats}\n")
    print("| network | conv MACs / pixel | × ours | parameters | forward s | MP/s | × ours' time |")
    print("| :--- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, macs, params, s in rows:
        print(f"| {name} | {macs / 1e3:.0f} k | {macs / base_macs:.1f}× | {params / 1e6:.2f} M | {s:.2f} | "
              f"{w * h / 1e6 / s:.2f} | {s / base_s:.1f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
