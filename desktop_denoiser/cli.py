"""Headless command line: ``desktop-denoiser-cli estimate|denoise|train|bench``.

Never imports PySide6. Heavy modules are imported inside each sub-command so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path


class ProgressBar:
    """A one-line text progress bar on a terminal (silent when stderr is not a TTY)."""

    def __init__(self, total: int, label: str = "", stream=None, enabled: bool | None = None):
        self.total, self.label = max(1, total), label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.t0 = time.time()

    def update(self, done: float, extra: str = "") -> None:
        """``done`` may be fractional (a step part-way through its tiles); whole steps are printed."""
        if not self.enabled:
            return
        frac = min(1.0, done / self.total)
        filled = int(30 * frac)
        elapsed = time.time() - self.t0
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {int(done)}/{self.total} "
                          f"{elapsed:5.1f}s left {eta:5.1f}s {extra}  ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _hidden_noise_note(sigma: float, action: str) -> str:
    """The hint for noise hidden from the estimate, by JPEG chroma subsampling or as grain the same in every
    colour over fine texture (NoiseAnalysis.hidden_noise_sigma)."""
    return (f"  note: part of the noise may be hidden from the estimate (by JPEG compression, or as grain the same "
            f"in every colour); if the output still looks grainy, {action} --sigma {sigma:.0f}")


def _camera_noise_note(action: str) -> str:
    """The hint for variance that follows a demosaicing pattern (JobPlan.suggest_camera_noise)."""
    return (f"  note: the fine grain follows a camera's colour-filter grid (a raw converter's lossless export?) "
            f"and was left as detail; if the output still looks grainy, {action} --noise real")


def _mosaic_noise_note(action: str) -> str:
    """The note for grid-pattern grain that Auto removed as camera noise (JobPlan.mosaic_noise)."""
    return (f"  note: the grain follows a camera's colour-filter grid and is removed as camera noise; if fine "
            f"texture (grass, foliage) comes out smeared, {action} --noise gaussian")


def _left_out_photos(inputs, recursive: bool) -> str:
    """'' or a sentence on the camera raw / HEIC files in the folders among ``inputs`` that are not read."""
    from .pipeline.imageio import name_list, unreadable_photos_in

    left = unreadable_photos_in(inputs, recursive=recursive)
    if not left:
        return ""
    return (f"{len(left)} camera raw or HEIC file(s) left out ({name_list(left, more='...')}): they are not read; "
            "export them as 16-bit TIFFs (raw converter's noise reduction off) or JPEGs first")


def _note_unreadable(folders: list[Path], given) -> None:
    """The note for the folders under the ``given`` ones that a ``--recursive`` listing could not read (their
    photos are left out)."""
    from .pipeline.imageio import name_list

    if folders:
        under = ", ".join(str(g) for g in given if Path(g).is_dir())
        print(f"note: {len(folders)} folder(s) under {under} could not be read and were left out: "
              f"{name_list(sorted(folders))}", file=sys.stderr)


def _cmd_estimate(args) -> int:
    from .pipeline.imageio import ImageReadError, list_images
    from .pipeline.jobs import estimate_file

    paths: list[Path] = []
    failed = 0
    for given in map(Path, args.images):  # a folder stands for the photos in it, as for denoise
        if given.is_dir():
            unreadable: list[Path] = []
            try:
                found = list_images(given, recursive=args.recursive, unreadable=unreadable)
            except ImageReadError as exc:  # a folder that cannot be read: say so, go on with the others
                failed += 1
                print(f"error: {exc}", file=sys.stderr)
                continue
            _note_unreadable(unreadable, [given])
            if not found:
                failed += 1
                left = _left_out_photos([given], args.recursive)
                print(f"error: no images in {given}" + (f"; {left}" if left else ""), file=sys.stderr)
            paths += found
        else:
            paths.append(given)
    for path in paths:
        try:
            est = estimate_file(Path(path))
        except Exception as exc:  # report and go on with the next file
            failed += 1
            if args.json:  # as denoise --json does: one line per photo, failures included
                print(json.dumps({"path": str(path), "error": str(exc) or type(exc).__name__}))
            print(f"error: {path}: {exc}", file=sys.stderr)
            continue
        hidden = est.analysis.hidden_noise_sigma if est.analysis is not None else None
        camera = est.analysis is not None and est.analysis.mosaic_pattern
        mosaic = est.analysis is not None and est.analysis.mosaic_noise
        if args.json:
            print(json.dumps({"path": str(path), "sigma": round(est.sigma, 3), "timestep": est.timestep,
                              "correlated": est.correlated,
                              "hidden_noise_sigma": None if hidden is None else round(hidden, 3),
                              "suggest_camera_noise": camera, "mosaic_noise": mosaic,
                              "two_level": est.two_level}))
        else:
            kind = "correlated camera noise" if est.correlated else "white noise"
            if est.two_level:
                kind = "black and white only (1-bit): nothing to denoise"
            print(f"{path}: sigma={est.sigma:.2f} (8-bit units, {kind})  t*={est.timestep}")
            if hidden is not None:
                print(_hidden_noise_note(hidden, "try"))
            if camera:
                print(_camera_noise_note("try"))
            if mosaic:
                print(_mosaic_noise_note("denoise it with"))
    return 1 if failed else 0


def _strength(text: str) -> float:
    from .pipeline.jobs import check_strength

    try:
        return check_strength(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}") from None


def _sigma(text: str) -> float | None:
    """``--sigma``: 'auto' (None: estimate it) or a noise level in 8-bit units."""
    if text.strip().lower() == "auto":
        return None
    try:
        sigma = float(text)
    except ValueError:
        sigma = float("nan")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number >= 0 (8-bit units), got {text!r}")
    return sigma


def _at_least(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {minimum}{what}, got {text!r}")
        return value

    return parse


def _tile(text: str) -> int:
    """``--tile``: at least core.tiling.MIN_TILE_SIZE pixels (smaller tiles would leave gaps)."""
    from .core.tiling import MIN_TILE_SIZE

    return _at_least(MIN_TILE_SIZE, " pixels")(text)


def _cmd_denoise(args) -> int:
    from .core.noise_estimation import NoiseEstimationError
    from .pipeline.devices import DeviceError, resolve_device
    from .pipeline.imageio import ImageReadError, ImageWriteError, check_output_folder
    from .pipeline.jobs import DenoiseOptions, collect_inputs, denoise_files, will_skip
    from .pipeline.progress import TimeLeft, format_seconds

    try:
        opts = DenoiseOptions(sigma=args.sigma, mode=args.mode, steps=args.steps, seed=args.seed,
                              device=args.device, tile=args.tile, ensemble=args.ensemble, noise_model=args.noise,
                              precision=args.precision, network=args.network, strength=args.strength,
                              color_strength=args.color_strength)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:  # once, before any photo is read and analysed only to fail alike
        resolve_device(args.device)
    except DeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    unreadable: list[Path] = []
    try:
        jobs = collect_inputs([Path(p) for p in args.inputs], Path(args.output), recursive=args.recursive,
                              out_format=args.format, unreadable=unreadable)
    except (FileNotFoundError, ValueError, ImageReadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _note_unreadable(unreadable, args.inputs)
    if not jobs:
        from .pipeline.imageio import SUPPORTED_SUFFIXES

        hint = "" if args.recursive else "; add --recursive to look in sub-folders"
        left = _left_out_photos(args.inputs, args.recursive)
        print(f"error: no images in {', '.join(args.inputs)} (looked for {', '.join(sorted(SUPPORTED_SUFFIXES))}"
              f"{hint})" + (f"; {left}" if left else ""), file=sys.stderr)
        return 2
    left = _left_out_photos(args.inputs, args.recursive)
    if left:
        print(f"note: {left}", file=sys.stderr)
    try:  # once, before any photo is read (each would otherwise fail alike, after its analysis)
        check_output_folder(args.output)
    except ImageWriteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        return _dry_run(jobs, args)
    failed = 0
    bar = None
    steps_done = 0

    def on_tile(done: int, total: int) -> None:  # a big photo is one long step: show its tiles
        if bar is not None and total > 1:
            bar.update(steps_done + done / total, f"tile {done}/{total}")

    finished = skipped = existed = 0  # finished: photos done, skipped or failed (the bar's "i/N")
    time_left = TimeLeft()  # of the whole batch, from the rate so far; photos to be skipped take no time
    to_skip = sum(will_skip(j, overwrite=args.overwrite, skip_existing=args.skip_existing) for j in jobs)
    for item in denoise_files(jobs, opts, overwrite=args.overwrite, skip_existing=args.skip_existing,
                              on_tile=on_tile):
        kind = item["kind"]
        finished += kind in ("done", "skipped", "failed")
        if kind == "start":
            label = Path(item["path"]).name
            if len(jobs) > 1:
                label = f"{finished + 1}/{len(jobs)} {label}"
                seconds = time_left.seconds_left_in_batch(photos=len(jobs), to_skip=to_skip, finished=finished,
                                                          skipped=skipped)
                if seconds is not None:
                    label += f" (batch: about {format_seconds(seconds)} left)"
            bar, steps_done = ProgressBar(item["steps"] or 1, label), 0
        elif kind == "step" and bar is not None:
            steps_done = item["index"]
            bar.update(item["index"], f"t={item['t']}")
        elif kind == "done":
            if bar is not None:
                bar.close()
            if args.json:
                print(json.dumps({k: item[k] for k in ("path", "output", "sigma", "timestep", "steps", "seconds",
                                                       "network", "hidden_noise_sigma", "suggest_camera_noise",
                                                       "mosaic_noise", "warnings")}))
            else:
                print(f"{item['path']} -> {item['output']}  sigma={item['sigma']:.2f} t*={item['timestep']} "
                      f"steps={item['steps']} network={item['network']} {item['seconds']:.1f}s")
                if item["hidden_noise_sigma"] is not None:
                    print(_hidden_noise_note(item["hidden_noise_sigma"], "run it again with"))
                if item["suggest_camera_noise"]:
                    print(_camera_noise_note("run it again with"))
                if item["mosaic_noise"]:
                    print(_mosaic_noise_note("run it again with"))
                for warning in item["warnings"]:  # pages left out, an out-of-memory retry, ...
                    print(f"  note: {warning}")
        elif kind == "skipped":
            skipped += 1
            if args.json:
                print(json.dumps({"path": item["path"], "output": item["output"], "skipped": True}))
            else:
                print(f"{item['path']}: skipped, {item['output']} already exists")
        elif kind == "stopped":
            left = len(item["not_started"])
            print(f"error: stopped: the output disk is full; {left} photo(s) not started (free some space, then "
                  "run the same command with --skip-existing to go on)", file=sys.stderr)
        elif kind == "failed":
            failed += 1
            existed += item.get("exists", False)
            if bar is not None:
                bar.close()
            if args.json:
                print(json.dumps({"path": item["path"], "error": item["error"]}))
            hint = "; give --sigma to denoise it" if isinstance(item["exception"], NoiseEstimationError) else ""
            print(f"error: {item['path']}: {item['error']}{hint}", file=sys.stderr)
    if len(jobs) > 1 or failed:  # one line to read at the end of a long batch
        print(f"{finished - failed - skipped} of {len(jobs)} photo(s) denoised"
              + (f", {skipped} skipped (their result already existed)" if skipped else "")
              + (f", {failed} failed" if failed else ""), file=sys.stderr)
    if existed:
        print(f"{existed} result(s) already existed: add --skip-existing to leave them and denoise the rest "
              "(resuming a batch), or --overwrite to replace them", file=sys.stderr)
    return 1 if failed else 0


def _dry_run(jobs, args) -> int:
    """denoise --dry-run: each photo and where its result would go, and what happens to a result already
    there (nothing is read, denoised or written)."""
    existing = 0
    for job in jobs:
        state = "new"
        if job.output.exists():
            existing += 1
            state = "replaced" if args.overwrite else ("skipped" if args.skip_existing else "exists: fails")
        if args.json:
            print(json.dumps({"path": str(job.input), "output": str(job.output), "result": state}))
        else:
            print(f"{job.input} -> {job.output}" + ("" if state == "new" else f"  ({state})"))
    print(f"dry run: {len(jobs)} photo(s), {existing} result(s) already there; nothing was denoised",
          file=sys.stderr)
    if existing and not (args.overwrite or args.skip_existing):
        print("add --skip-existing to leave those photos, or --overwrite to replace their results",
              file=sys.stderr)
    return 0


def _train_output_problem(out: Path, export: Path | None) -> str | None:
    """Why ``train --out`` / ``--export`` could not be written (checked before training starts), or None."""
    from .pipeline.imageio import output_folder_problem

    if out.exists() and not out.is_dir():
        return f"--out {out} is a file; it must be a folder (made if missing)"
    if export is not None and export.is_dir():
        return f"--export {export} is a folder; give the file to write, e.g. {export / 'model.safetensors'}"
    for folder in (out, *([export.parent] if export is not None else [])):
        problem = output_folder_problem(folder)
        if problem:
            return f"Cannot save the training's results: {problem}."
    return None


def _cmd_train(args) -> int:
    from .core.training import TrainConfig, Trainer, TrainingSetupError
    from .core.checkpoint import CheckpointError, load_model
    from .core.growth import check_growable
    from .core.schedule import ScheduleConfig
    from .core.unet import UNetConfig

    model = UNetConfig(base_channels=args.base_channels, channel_mults=tuple(args.channel_mults),
                       num_res_blocks=args.res_blocks).to_dict()
    schedule = ScheduleConfig().to_dict()
    if args.grow and not args.init:
        print("error: --grow needs --init (the checkpoint to grow)", file=sys.stderr)
        return 2
    problem = _train_output_problem(Path(args.out), Path(args.export) if args.export else None)
    if problem:  # before any step: the trained weights must have somewhere to go
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.init:  # fine-tuning: the schedule (and unless --grow, the architecture) come from the checkpoint
        try:
            loaded = load_model(args.init)
        except CheckpointError as exc:
            print(f"error: --init: {exc}", file=sys.stderr)
            return 2
        schedule = loaded.schedule.config.to_dict()
        if args.grow:
            try:
                check_growable(loaded.model.config, UNetConfig.from_dict(model))
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        else:
            model = loaded.model.config.to_dict()
    cfg = TrainConfig(data=args.data, val_data=args.val or [], out_dir=args.out, steps=args.steps,
                      batch_size=args.batch_size, crop_size=args.crop, lr=args.lr, val_every=args.val_every,
                      save_every=args.save_every, seed=args.seed, device=args.device, threads=args.threads,
                      focus_sigma=args.focus_sigma, focus_prob=args.focus_prob, clip_prob=args.clip_prob,
                      corr_prob=args.corr_prob, camera_prob=args.camera_prob,
                      camera_sub_image_prob=args.camera_sub_image_prob, color_prob=args.color_prob,
                      grey_prob=args.grey_prob,
                      objective=args.objective, min_snr_gamma=args.min_snr_gamma,
                      precision=args.precision,
                      time_limit=args.time_limit, compile=args.compile,
                      init=args.init, grow=args.grow, model=model, schedule=schedule)
    try:
        trainer = Trainer(cfg, log=lambda s: print(s, flush=True))
    except TrainingSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar = ProgressBar(cfg.steps, "train")
    last = [0.0]

    def progress(d):
        bar.update(d["step"], f"loss={d['loss']:.4f} {d['it_s']:.2f} it/s")
        if not bar.enabled and time.time() - last[0] > 60:
            last[0] = time.time()
            print(f"step {d['step']}/{d['steps']} loss={d['loss']:.4f} lr={d['lr']:.2e} {d['it_s']:.2f} it/s", flush=True)

    try:
        result = trainer.train(progress)
    except TrainingSetupError as exc:  # the same data on every rank: they all stop here
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        trainer.close()
        return 2
    bar.close()
    if args.export and trainer.rank == 0:
        trainer.export(Path(args.export))
        print(f"exported EMA weights to {args.export}")
    print(json.dumps({"step": result["step"], "loss": result["loss"]}))
    trainer.close()  # torchrun: the ranks end together, after rank 0 has saved and exported
    return 0


def _cmd_bench(args) -> int:
    from .bench import main as bench_main

    return bench_main(args.rest)


def _cmd_desktop_entry(args) -> int:
    from . import desktop_entry

    if sys.platform in ("win32", "darwin"):
        print("error: the desktop entry is for Linux desktops (freedesktop.org); on Windows and macOS start the "
              "app with desktop-denoiser", file=sys.stderr)
        return 2
    home = Path(args.data_home) if args.data_home else None
    try:
        if args.remove:
            gone = desktop_entry.remove(home)
            print("removed " + ", ".join(map(str, gone)) if gone else "no desktop entry to remove")
            return 0
        written = desktop_entry.install(home)
    except OSError as exc:
        print(f"error: could not write the desktop entry: {exc}", file=sys.stderr)
        return 1
    print("wrote " + ", ".join(map(str, written)))
    print("Desktop Denoiser is now in the applications menu and in Open with for photos (a new login may be "
          "needed for the menu to show it).")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="desktop-denoiser-cli", description="Denoise photos with a DDPM (headless).")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("estimate", help="estimate the noise level sigma and matching timestep t*")
    e.add_argument("images", nargs="+", help="image files or folders")
    e.add_argument("--recursive", action="store_true", help="include sub-folders of folders")
    e.add_argument("--json", action="store_true",
                   help="one JSON object per line: path, sigma, timestep, correlated, hidden_noise_sigma, "
                        "suggest_camera_noise, mosaic_noise, two_level (error for a photo that failed)")
    e.set_defaults(func=_cmd_estimate)

    d = sub.add_parser("denoise", help="denoise files or folders into OUTDIR")
    d.add_argument("inputs", nargs="+", help="image files or folders")
    d.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    d.add_argument("--sigma", type=_sigma, default=None,
                   help="noise std in 8-bit units, or 'auto' to estimate (default)")
    d.add_argument("--mode", choices=("fidelity", "detail"), default="fidelity")
    d.add_argument("--steps", type=_at_least(1, ""), default=None,
                   help="reverse steps (fidelity: 1, or 3 at heavy noise, t* >= 80; detail: every step from t*)")
    d.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--tile", type=_tile, default=None,
                   help="tile size in pixels (default: from free memory)")
    d.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="network arithmetic: auto = fp16 on CUDA, bf16 on CPUs with native bf16, else fp32")
    d.add_argument("--network", choices=("auto", "standard", "fast", "camera"), default="auto",
                   help="which shipped network: auto = the camera one (the fast one fine-tuned on simulated camera "
                        "noise) for camera noise, the fast one (2.8 M parameters, 2.2x the speed, ~0.27 dB lower on "
                        "white noise) on CPUs without native bf16, the standard one (6.0 M) elsewhere")
    d.add_argument("--ensemble", type=int, default=1, choices=(1, 2, 4, 8, 16, 32),
                   help="average the network over N views: 2-8 flips/rotations (8: about +0.2 dB on photos with "
                        "white noise), 16 / 32 = those 8 at 2 / 4 offsets of the pixel grid (32: +0.01 to +0.03 "
                        "dB more on CBSD68); N times slower (default 1)")
    d.add_argument("--noise", choices=("auto", "gaussian", "real"), default="auto",
                   help="auto: detect correlated camera noise when sigma is estimated (default; an explicit --sigma "
                        "is taken as white noise); real: the camera-noise path (at --sigma if given); "
                        "gaussian: the white-noise path")
    d.add_argument("--strength", type=_strength, default=1.0,
                   help="share of the brightness noise (grain) removed, 0-1: 1 = all (default); 0.8 keeps a fifth "
                        "of the original's grain")
    d.add_argument("--color-strength", type=_strength, default=1.0,
                   help="share of the colour noise (coloured speckles, blotches) removed, 0-1: 1 = all (default, "
                        "whatever --strength keeps); equal to --strength, the original is mixed back in whole")
    d.add_argument("--recursive", action="store_true", help="descend into sub-folders, keeping their structure")
    d.add_argument("--format", choices=("same", "tif", "png", "jpg"), default="same",
                   help="how results are saved: same = each original's format and bit depth (default); tif / png "
                        "= 16-bit lossless (the denoised photo's smooth gradients kept for editing, also from a "
                        "JPEG); jpg = JPEG, quality 95")
    existing = d.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    existing.add_argument("--skip-existing", action="store_true",
                          help="leave photos whose output already exists (resumes a batch that was stopped); "
                               "without this or --overwrite they are reported as failed")
    d.add_argument("--json", action="store_true",
                   help="one JSON object per photo: path, output, sigma, timestep, steps, seconds, network, the "
                        "hints (hidden_noise_sigma, suggest_camera_noise, mosaic_noise) and warnings")
    d.add_argument("--dry-run", action="store_true",
                   help="list each photo and where its result would go (and which results exist already); "
                        "denoise nothing")
    d.set_defaults(func=_cmd_denoise)

    t = sub.add_parser("train", help="train the epsilon-network (Algorithm 1); resumes from OUT if present")
    t.add_argument("data", nargs="+", help="folders of clean training photos (recursive)")
    t.add_argument("--val", nargs="*", help="folders of clean validation photos")
    t.add_argument("--out", default="runs/train")
    t.add_argument("--steps", type=_at_least(1, ""), default=10000)
    t.add_argument("--batch-size", type=_at_least(1, ""), default=16)
    t.add_argument("--crop", type=_at_least(16, " pixels"), default=96)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--time-limit", type=float, default=0.0,
                   help="stop after this many seconds of training (0 = none); the cosine learning-rate decay then "
                        "runs over whichever of --steps or the time ends first (a fixed slot on a lent GPU)")
    t.add_argument("--val-every", type=_at_least(1, ""), default=1000)
    t.add_argument("--save-every", type=_at_least(1, ""), default=250)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    t.add_argument("--focus-sigma", type=float, default=80.0,
                   help="the noise level (8-bit sigma) up to which timesteps get most of the training (default 80)")
    t.add_argument("--focus-prob", type=float, default=0.9,
                   help="share of samples with t drawn from [0, t(focus-sigma)]; the rest from the whole schedule "
                        "(default 0.9)")
    t.add_argument("--objective", choices=("epsilon", "v", "min-snr"), default="epsilon",
                   help="epsilon = Ho et al.'s simple epsilon-MSE (default); v = a v-predicting network with the "
                        "v-MSE (Salimans & Ho); min-snr = epsilon-MSE with Min-SNR-gamma weights (Hang et al.); "
                        "compared in benchmarks/train_ablation.py")
    t.add_argument("--min-snr-gamma", type=float, default=5.0, help="gamma of --objective min-snr")
    t.add_argument("--clip-prob", type=float, default=0.5,
                   help="fraction of denoising-range samples whose noisy image is clipped like an 8-bit file")
    t.add_argument("--corr-prob", type=float, default=0.3,
                   help="fraction of denoising-range samples with camera-like (spatially/channel-correlated) noise")
    t.add_argument("--camera-prob", type=float, default=0.0,
                   help="fraction of samples rendered through a random simulated camera (raw Poisson-Gaussian "
                        "noise, demosaicing, colour processing, JPEG) at the timestep of their noise level")
    t.add_argument("--camera-sub-image-prob", type=float, default=0.0,
                   help="share of those camera samples given as their 2x2 pixel-shuffled sub-images, as the "
                        "camera-noise path's first pass denoises them")
    t.add_argument("--color-prob", type=float, default=0.5,
                   help="fraction of samples given saturated colours (channel permutation, saturation boost)")
    t.add_argument("--grey-prob", type=float, default=0.0,
                   help="fraction of samples made grey: the crop's luma and the same noise in all three channels, "
                        "as the app feeds black-and-white photos (0.2 in the shipped networks' last stage)")
    t.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="autocast dtype of the training steps: auto = bf16 on CUDA and on CPUs with native bf16 "
                        "(about 2x faster there), else fp32; weights and optimiser stay float32")
    t.add_argument("--compile", action="store_true",
                   help="torch.compile the training step's network (measured: up to ~10%% faster on an H100 after "
                        "~40 s of compiling, slower on a CPU; see bench train)")
    t.add_argument("--init", default=None,
                   help="start from these weights (.safetensors); keeps their architecture unless --grow")
    t.add_argument("--grow", action="store_true",
                   help="with --init: widen/deepen its network to --base-channels/--channel-mults/--res-blocks, "
                        "computing the same function at the start (new channels and blocks then learn)")
    t.add_argument("--base-channels", type=int, default=32)
    t.add_argument("--channel-mults", type=int, nargs="+", default=[1, 2, 4])
    t.add_argument("--res-blocks", type=int, default=2)
    t.add_argument("--export", default=None, help="write the EMA weights to this .safetensors at the end")
    t.set_defaults(func=_cmd_train)

    de = sub.add_parser("desktop-entry", help="add Desktop Denoiser to the applications menu and to Open with "
                                              "for photos (Linux; this user only)")
    de.add_argument("--remove", action="store_true", help="take the entry and its icon away again")
    de.add_argument("--data-home", default=None, help="where to write (default: $XDG_DATA_HOME or ~/.local/share)")
    de.set_defaults(func=_cmd_desktop_entry)
    b = sub.add_parser("bench", help="benchmark against peers (see benchmarks/)",
                       description="Benchmarks: awgn (synthetic noise against CBM3D and OpenCV NLM), real (camera "
                                   "noise pairs), speed, cuda, train. 'bench NAME --help' lists each one's options.")
    b.add_argument("rest", nargs=argparse.REMAINDER, metavar="{awgn,real,speed,cuda,train} ...")
    b.set_defaults(func=_cmd_bench)
    return p


def _tolerate_undecodable_names() -> None:
    """File names that are not valid in the locale's encoding (Latin-1 bytes on a UTF-8 system) reach
    Python as lone surrogates, which a UTF-8 stdout refuses: a batch would stop at the first such photo.
    Print them escaped (``caf\\udce9.png``) instead; ``--json`` escapes them anyway."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a detached or closed stream
                pass


def main(argv: list[str] | None = None) -> int:
    _tolerate_undecodable_names()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # the reader went away (e.g. "| head"): stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that flushing stdout at exit does not fail again
        return 1


if __name__ == "__main__":
    sys.exit(main())
