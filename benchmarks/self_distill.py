"""Self-distillation pilot: fine-tune a shipped network towards its own multi-view ensemble.

    python benchmarks/self_distill.py [--model models/ddpm_denoiser.safetensors] [--minutes 35] [--lr 2e-5]

*Best* quality (8 flips/rotations averaged) is +0.1 to +0.2 dB over one pass on CBSD68, for 8x the
time. This asks whether one pass can learn part of that: the student starts from ``--model`` and
regresses the eps that a frozen copy of it averages over ``--views`` views (``core.denoise``'s
ensemble) on the training recipe's own samples (``Trainer.make_batch``: crops of ``--data`` with the
shipped shares of saturated-colour, grey, camera-like and clipped samples, t focused on sigma <= 80).
The target has no noise of its own (unlike Algorithm 1's eps), which is what might make small CPU
batches enough.

Every ``--val-every`` minutes it prints (and appends to ``OUT/log.jsonl``) the EMA weights' fidelity
PSNR on the validation crops (``core.training.validate``, as ``train`` prints; step 0 is ``--model``
itself), and at the end writes them as ``OUT/student_ema.safetensors`` for ``bench_awgn.py --model``.
Measured in stop 27 (models/README.md, "Next"): on this 2-core CPU it loses, at both learning rates tried.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from desktop_denoiser.bench.common import set_threads
from desktop_denoiser.core.checkpoint import load_model, save_model
from desktop_denoiser.core.denoise import ensemble_eps
from desktop_denoiser.core.training import (PatchSampler, TrainConfig, Trainer, list_image_files, validate,
                                            validation_crops)

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "ddpm_denoiser.safetensors"))
    ap.add_argument("--data", nargs="+", default=[str(ROOT.parent / "shared" / "data" / "train" / "CBSD432")])
    ap.add_argument("--val", nargs="+", default=[str(ROOT.parent / "shared" / "data" / "dev" / "McMaster")])
    ap.add_argument("--val-images", type=int, default=8)
    ap.add_argument("--val-crop", type=int, default=256)
    ap.add_argument("--minutes", type=float, default=35.0, help="training time (validation not counted)")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps too (0 = time only)")
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--views", type=int, default=8, choices=(2, 4, 8))
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--val-every", type=float, default=10.0, help="minutes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (a lent GPU: larger --batch-size and --crop)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "self_distill"))
    return ap.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    set_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    # a Trainer initialised from the model: its samples (make_batch), generators and schedule
    cfg = TrainConfig(data=a.data, out_dir=str(out / "trainer"), batch_size=a.batch_size, crop_size=a.crop,
                      init=a.model, grey_prob=0.2, device=a.device, threads=a.threads,
                      model=load_model(a.model).model.config.to_dict())
    trainer = Trainer(cfg, log=lambda _msg: None)
    student, schedule = trainer.model, trainer.schedule
    teacher = copy.deepcopy(student).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    teach = ensemble_eps(teacher, a.views, student.config.size_multiple)
    ema = copy.deepcopy(student).eval()
    patches = PatchSampler(list_image_files(a.data), a.crop, trainer.gen)
    val = validation_crops(a.val, a.val_images, a.val_crop)
    opt = torch.optim.AdamW(student.parameters(), lr=a.lr, weight_decay=cfg.weight_decay)
    log = (out / "log.jsonl").open("a")
    trained = 0.0  # seconds of training

    def report(step: int, loss: float | None) -> None:
        row = {**validate(ema, schedule, val, device=trainer.device), "step": step, "loss": loss, "minutes": round(trained / 60, 2),
               "lr": a.lr, "views": a.views, "batch": a.batch_size, "crop": a.crop}
        print(json.dumps(row), flush=True)
        log.write(json.dumps(row) + "\n")
        log.flush()

    def autocast():  # the trainer's arithmetic: bf16 where the device has it
        return torch.autocast(trainer.device.type, dtype=trainer.amp_dtype or torch.float32,
                              enabled=trainer.amp_dtype is not None)

    report(0, None)
    step, ema_loss, since_val = 0, None, 0.0
    student.train()
    while trained < a.minutes * 60 and (a.steps <= 0 or step < a.steps):
        t0 = time.perf_counter()
        x0, t, noise = trainer.make_batch(patches.crops(a.batch_size))
        x_t = trainer.diffusion.q_sample(x0, t, noise)
        with torch.no_grad(), autocast():
            target = teach(x_t, t).float()
        for g in opt.param_groups:
            g["lr"] = a.lr * min(1.0, (step + 1) / 50)
        with autocast():
            loss = (student(x_t, t).float() - target).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        with torch.no_grad():
            for pe, ps in zip(ema.parameters(), student.parameters()):
                pe.lerp_(ps, 1 - a.ema)
        lv = float(loss.detach())
        ema_loss = lv if ema_loss is None else 0.98 * ema_loss + 0.02 * lv
        dt = time.perf_counter() - t0
        trained += dt
        since_val += dt
        if since_val >= a.val_every * 60:
            report(step, ema_loss)
            since_val = 0.0
    report(step, ema_loss)
    save_model(out / "student_ema.safetensors", ema, trainer.schedule_config,
               {"self_distill": {"from": Path(a.model).name, "views": a.views, "steps": step, "lr": a.lr}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
