"""Denoising jobs shared by the GUI and the CLI: load the model, estimate sigma, run the reverse process
with CUDA out-of-memory fallback, and process files and folders (safely: never onto an original)."""

from __future__ import annotations

import copy
import hashlib
import math
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generator, Iterable, Iterator

import numpy as np
import torch

from ..core.checkpoint import LoadedModel, load_model
from ..core.denoise import ENSEMBLE_SIZES, MODES, DenoisePlan, denoise_image, plan_denoise
from ..core.noise_analysis import NoiseAnalysis, analyse_noise
from ..core.noise_estimation import NoiseEstimationError
from ..core.real_noise import RealPlan, denoise_real, plan_real
from ..core.sampler import StepEvent
from ..core.tiling import MIN_TILE_SIZE, TileCallback
from ..paths import network_model_paths
from .devices import default_tile_size, resolve_device, resolve_network, resolve_precision
from .imageio import (DiskFullError, LoadedImage, OutputExistsError, check_destination, list_images,
                      make_output_folder, output_format, read_image, write_image)
from .strength import apply_strength, check_strength

MIN_TILE = 128


NOISE_MODELS = ("auto", "gaussian", "real")


@dataclass(frozen=True)
class NoiseEstimate:
    sigma: float  # 8-bit units (per-pixel std; for correlated camera noise the measured one)
    timestep: int  # t*, -1 when there is nothing to remove
    correlated: bool = False  # spatially correlated (real camera) noise: the real-noise path is used
    analysis: NoiseAnalysis | None = field(default=None, compare=False, repr=False)  # what it was read from

    @property
    def two_level(self) -> bool:
        """A 1-bit image (every pixel black or white): nothing to denoise (NoiseAnalysis.two_level)."""
        return self.analysis is not None and self.analysis.two_level


@dataclass(frozen=True)
class JobPlan:
    """What a run will do: the Gaussian path (``denoise``) or the real-camera-noise path (``analysis``)."""

    sigma: float
    timestep: int
    steps: int
    denoise: DenoisePlan | None = None
    analysis: NoiseAnalysis | None = None
    real_plan: RealPlan | None = None  # the real-noise path's passes (planned from ``analysis``)
    hidden_noise_sigma: float | None = None  # a sigma to suggest where noise may be hidden (never applied)
    # suggest the camera-noise path: the photo's fine variance follows a demosaicing pattern, either noise
    # of a lossless raw export or clean demosaiced detail (NoiseAnalysis.mosaic_pattern; never applied)
    suggest_camera_noise: bool = False
    # Auto took strong noise that follows a demosaicing pattern for camera noise (NoiseAnalysis.mosaic_noise):
    # all-texture scenes can come out smeared, and the white-noise path is the way back
    mosaic_noise: bool = False

    @classmethod
    def real_noise(cls, analysis: NoiseAnalysis, real_plan: RealPlan) -> "JobPlan":
        """The real-noise path: ``real_plan``'s passes (from :func:`plan_real` for ``analysis``)."""
        return cls(real_plan.sigma, real_plan.timestep, real_plan.total, analysis=analysis, real_plan=real_plan)

    @property
    def real(self) -> bool:
        return self.analysis is not None


@dataclass(frozen=True)
class DenoiseOptions:
    sigma: float | None = None  # None = estimate from the image
    mode: str = "fidelity"
    steps: int | None = None
    seed: int = 0
    device: str = "auto"
    tile: int | None = None  # None = chosen from free memory
    ensemble: int = 1
    noise_model: str = "auto"  # auto: real-noise path when the noise is spatially correlated (sigma None);
    # "real": the real-noise path, at ``sigma`` if given; "gaussian": the white-noise path
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (network arithmetic; see devices.resolve_precision)
    network: str = "auto"  # auto | standard | fast | camera (which shipped network; devices.resolve_network)
    preview: bool = False
    preview_max_size: int = 256
    # share of the brightness noise (grain) removed: 1 = the denoised photo, 0.8 keeps a fifth of the
    # original's grain (photographers often prefer a little left); pipeline/strength.py
    strength: float = 1.0
    # share of the colour noise (coloured speckles, blotches) removed: by default all of it, whatever
    # ``strength`` keeps; equal to ``strength``, the result is the plain mix with the original
    color_strength: float = 1.0

    def __post_init__(self):
        """Refuse values no run could use, with a message that names the option (the CLI prints it)."""
        check_strength(self.strength)
        check_strength(self.color_strength, "color_strength")
        if self.sigma is not None and not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"sigma must be a finite number >= 0 (8-bit units), got {self.sigma}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.tile is not None and self.tile < MIN_TILE_SIZE:
            raise ValueError(f"tile must be at least {MIN_TILE_SIZE} pixels, got {self.tile}")
        if self.ensemble not in ENSEMBLE_SIZES:
            raise ValueError(f"ensemble must be one of {ENSEMBLE_SIZES}, got {self.ensemble}")
        if self.noise_model not in NOISE_MODELS:
            raise ValueError(f"noise_model must be one of {NOISE_MODELS}, got {self.noise_model!r}")

    def at_full_strength(self) -> "DenoiseOptions":
        """These options removing all the noise: what the GUI runs, mixing its Strength controls in afterwards
        (apply_strength), so that changing them needs no new run."""
        return replace(self, strength=1.0, color_strength=1.0)


@dataclass
class DenoiseResult:
    pixels: np.ndarray
    sigma: float
    timestep: int
    steps: int
    device: str
    seconds: float
    warnings: list[str] = field(default_factory=list)
    network: str = "standard"  # which network ran (devices.resolve_network)


class Denoiser:
    """Owns the trained networks (each loaded lazily, once per device) and runs denoising generators.

    Three networks ship: ``standard``, ``fast`` and ``camera`` (``DenoiseOptions.network``,
    ``devices.resolve_network``). A ``model_path`` given here replaces all of them (benchmarks and tests
    measure one file)."""

    def __init__(self, model_path: str | Path | None = None):
        self.model_paths = network_model_paths(Path(model_path) if model_path else None)
        self.model_path = self.model_paths["standard"]
        self._models: dict[tuple[str, str], LoadedModel] = {}
        self._lock = threading.Lock()  # GUI workers may ask for the model from several threads
        self._last_analysis: tuple[np.ndarray, NoiseAnalysis, bytes] | None = None

    def model(self, device: torch.device | str = "cpu", network: str = "standard") -> LoadedModel:
        """The ``network`` (a key of :attr:`model_paths`) on ``device``. Every network must share the standard
        one's noise schedule: runs are planned (sigma -> t*) with :attr:`schedule`."""
        if network not in self.model_paths:
            raise ValueError(f"network must be one of {tuple(self.model_paths)}, got {network!r}")
        dev = str(torch.device(device))
        key = (network, dev)
        with self._lock:
            if key not in self._models:
                cpu = self._models.get((network, "cpu"))
                if cpu is not None:
                    self._models[key] = replace(cpu, model=copy.deepcopy(cpu.model).to(dev))
                else:
                    self._models[key] = load_model(self.model_paths[network], device=dev)
                # channels-last weights match the channels-last inputs of core.precision.with_precision
                self._models[key].model.to(memory_format=torch.channels_last)
            lm = self._models[key]
        if network != "standard" and lm.schedule.config != self.schedule.config:
            raise ValueError(f"{self.model_paths[network].name} has another noise schedule than "
                             f"{self.model_path.name}; all networks must share one")
        return lm

    @property
    def schedule(self):
        return self.model("cpu").schedule

    def _analyse(self, pixels: np.ndarray) -> NoiseAnalysis:
        """analyse_noise, remembered for the last array: the GUI estimates when a photo opens and
        plans the same array again when the user presses Denoise (seconds on a 12 MP photo). The same
        array object with other contents (a buffer reused for the next photo) is analysed afresh."""
        key = _fingerprint(pixels)
        with self._lock:
            if self._last_analysis is not None and self._last_analysis[0] is pixels \
                    and self._last_analysis[2] == key:
                return self._last_analysis[1]
        analysis = analyse_noise(pixels)
        with self._lock:
            self._last_analysis = (pixels, analysis, key)
        return analysis

    def estimate(self, pixels: np.ndarray) -> NoiseEstimate:
        """Noise level and t* the default (blind) run would use, with the analysis behind them (pass it
        back to :meth:`plan` / :meth:`run` to plan other options without analysing again)."""
        analysis = self._analyse(pixels)
        plan = self.plan(pixels, DenoiseOptions(), analysis=analysis)
        return NoiseEstimate(plan.sigma, plan.timestep, plan.real, analysis)

    @staticmethod
    def needs_analysis(opts: DenoiseOptions) -> bool:
        """Whether planning ``opts`` needs the photo's noise analysis (else it is the Gaussian path at opts.sigma)."""
        return opts.sigma is None or opts.noise_model == "real"

    def plan(self, pixels: np.ndarray, opts: DenoiseOptions, *, analysis: NoiseAnalysis | None = None) -> JobPlan:
        """Which path, sigma and t* a run with ``opts`` takes.

        sigma None: the noise is analysed (or ``analysis`` is used) and correlated camera noise takes the
        real-noise path (``noise_model="auto"``), or the path is forced (``"real"`` / ``"gaussian"``).
        An explicit sigma takes the Gaussian path, unless ``noise_model="real"``: then the real-noise path
        runs at that sigma."""
        if self.needs_analysis(opts):
            if analysis is None:
                try:
                    analysis = self._analyse(pixels)
                except NoiseEstimationError:
                    if opts.sigma is None:
                        raise
                    # sigma given with noise_model="real": nothing needs measuring (a photo too small to)
                    analysis = NoiseAnalysis(float(opts.sigma), True, float(opts.sigma), 0.0, 0.0)
            if opts.sigma is None:
                real = opts.noise_model == "real" or (opts.noise_model == "auto" and analysis.correlated)
            else:
                real = True
            if real:
                mosaic = opts.sigma is None and opts.noise_model == "auto" and analysis.mosaic_noise
                sigma = analysis.camera_sigma if opts.sigma is None else float(opts.sigma)
                analysis = replace(analysis, correlated=True, mosaic_noise=False, sigma=sigma)  # runs at sigma
                plan = JobPlan.real_noise(analysis, plan_real(self.schedule, analysis, opts.mode, opts.steps))
                return replace(plan, mosaic_noise=mosaic)
            sigma = analysis.white_sigma  # the level implied by the flat blocks where JPEG chroma hid white noise
            hidden = analysis.hidden_noise_sigma  # a level only suggested
            camera = opts.noise_model == "auto" and analysis.mosaic_pattern
        else:
            sigma, hidden, camera = opts.sigma, None, False
        dp = plan_denoise(self.schedule, sigma, opts.mode, opts.steps)
        return JobPlan(dp.sigma, dp.timestep, dp.steps, denoise=dp, hidden_noise_sigma=hidden,
                       suggest_camera_noise=camera)

    def run(self, pixels: np.ndarray, opts: DenoiseOptions, plan: JobPlan | None = None, *,
            on_tile: TileCallback | None = None) -> Generator[StepEvent, None, DenoiseResult]:
        """Denoise ``pixels`` (float HxWxC in [0,1]); yields StepEvents, returns a DenoiseResult.

        ``on_tile(done, total)`` reports the tiles inside each step (a 12 MP photo is one long step in
        fidelity mode); it may raise to abandon the run between tiles.

        On CUDA out-of-memory the run restarts with half the tile size, and below MIN_TILE on the CPU."""
        t0 = time.perf_counter()
        plan = plan or self.plan(pixels, opts)
        device = resolve_device(opts.device)
        tile = opts.tile or default_tile_size(device)
        warnings: list[str] = []
        while True:
            network = resolve_network(opts.network, device, camera_noise=plan.real)
            lm = self.model(device, network)
            try:
                common = dict(device=device, seed=opts.seed, tile=tile, ensemble=opts.ensemble,
                              preview=opts.preview, preview_max_size=opts.preview_max_size,
                              dtype=resolve_precision(opts.precision, device), on_tile=on_tile)
                if plan.real:
                    out = yield from denoise_real(lm.model, lm.schedule, pixels, plan.analysis, mode=opts.mode,
                                                  steps=opts.steps, plan=plan.real_plan, **common)
                else:
                    out = yield from denoise_image(lm.model, lm.schedule, pixels, plan.denoise, **common)
                break
            except torch.cuda.OutOfMemoryError:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                if tile // 2 >= MIN_TILE:
                    tile //= 2
                    warnings.append(f"out of memory on {device}: retrying with {tile}px tiles")
                elif device.type != "cpu":
                    warnings.append(f"out of memory on {device} even with {tile}px tiles: continuing on the CPU")
                    device, tile = torch.device("cpu"), default_tile_size(torch.device("cpu"))
                else:
                    raise MemoryError("not enough memory to denoise this image, even in small tiles") from None
        out = apply_strength(pixels, out, opts.strength, opts.color_strength)
        return DenoiseResult(out, plan.sigma, plan.timestep, plan.steps, str(device), time.perf_counter() - t0, warnings,
                             network)


def _fingerprint(pixels: np.ndarray) -> bytes:
    """A cheap digest of ``pixels`` (its shape, dtype and a sparse grid of its values, ~0.1 ms on 12 MP):
    tells a reused buffer's new photo from the one analysed before."""
    a = np.asarray(pixels)  # HxW[xC]
    sample = np.ascontiguousarray(a[:: max(1, a.shape[0] // 61), :: max(1, a.shape[1] // 59)])
    return hashlib.blake2b(repr((a.shape, a.dtype.str)).encode() + sample.tobytes(), digest_size=16).digest()


# -- files and folders -------------------------------------------------------------------------------

@dataclass(frozen=True)
class FileJob:
    input: Path
    output: Path
    bit_depth: int | None = None  # None: the original's (as far as the output's format holds it)


def collect_inputs(inputs: Iterable[Path], out_dir: Path, *, recursive: bool = False,
                   out_format: str = "same", unreadable: list[Path] | None = None) -> list[FileJob]:
    """Files keep their name inside ``out_dir``; folders keep their sub-folder structure below it. An output
    folder inside an input folder is not read as input (a second run would otherwise take the first
    run's results for photos). ``out_format`` (a key of ``imageio.OUTPUT_FORMATS``) sets the outputs'
    extension and bit depth ("same": each original's). ``unreadable``: as for ``list_images``."""
    fmt = output_format(out_format)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"output {out_dir} is a file; the output must be a folder (it is created if missing)")
    out_resolved = out_dir.resolve()
    jobs: list[FileJob] = []
    for inp in inputs:
        inp = Path(inp)
        if inp.is_dir():
            # the output folder itself as input is refused below (its photos would be overwritten)
            root = inp.resolve()
            inside = out_resolved != root and out_resolved.is_relative_to(root)
            for f in list_images(inp, recursive=recursive, unreadable=unreadable):
                if not (inside and f.resolve().is_relative_to(out_resolved)):
                    jobs.append(FileJob(f, out_dir / f.relative_to(inp)))
        elif inp.exists():
            jobs.append(FileJob(inp, out_dir / inp.name))
        else:
            raise FileNotFoundError(f"no such file or folder: {inp}")
    if fmt.suffix is not None:
        jobs = [FileJob(j.input, j.output.with_suffix(fmt.suffix), fmt.bit_depth) for j in jobs]
    inputs_resolved = {j.input.resolve() for j in jobs}
    writers: dict[Path, Path] = {}
    unique: list[FileJob] = []
    for j in jobs:
        out, src = j.output.resolve(), j.input.resolve()
        if out in inputs_resolved:
            raise ValueError(f"output {j.output} would overwrite an input; choose another output folder")
        if out.parent == src.parent:  # under another extension (out_format): beside the originals, among others
            raise ValueError(f"the output folder {j.output.parent} holds the photos themselves, where results "
                             "could replace other originals; choose another output folder")
        if out in writers:
            if writers[out] == src:
                continue  # the same photo given twice (a file and its folder, say) is denoised once
            keep = "" if fmt.suffix is None else "keep each photo's format, or "
            raise ValueError(f"{writers[out]} and {j.input} would both be saved as {j.output}; "
                             f"{keep}denoise them into separate output folders")
        writers[out] = src
        unique.append(j)
    return unique


def will_skip(job: FileJob, *, overwrite: bool, skip_existing: bool) -> bool:
    """Whether :func:`process_file` leaves ``job`` as it is: its result exists and is to be kept."""
    return skip_existing and not overwrite and job.output.is_file()


def process_file(job: FileJob, opts: DenoiseOptions, denoiser: Denoiser, *, overwrite: bool = False,
                 skip_existing: bool = False, protect: Iterable[Path] = (), on_tile: TileCallback | None = None
                 ) -> Generator[StepEvent | dict, None, dict]:
    """Read, denoise and write one file. Yields a ``{"kind": "start", ...}`` dict then StepEvents;
    returns the summary dict (``path``, ``output``, ``sigma``, ``timestep``, ``steps``, ``seconds``).

    ``skip_existing`` (and not ``overwrite``): a photo whose output file exists is not read and returns a
    ``{"kind": "skipped", ...}`` summary at once (:func:`will_skip`), so a batch run again resumes where it
    stopped. Results are written atomically, so an existing output is a whole one from an earlier run (or
    the user's own file, left as it is). Without either, an existing output fails with
    :class:`OutputExistsError`."""
    t0 = time.perf_counter()
    if will_skip(job, overwrite=overwrite, skip_existing=skip_existing):
        return {"kind": "skipped", "path": str(job.input), "output": str(job.output)}
    protect = [job.input, *protect]
    # a result that could not be saved (it exists, a read-only folder, ...) fails before the photo is read and
    # denoised, not after: a second run over a big folder must not redo every photo only to refuse each one.
    # (An output folder not made yet holds nothing; it is made only when there is a result to write, and
    # checked that it can be: no file in its way, a writable folder above it.)
    check_destination(job.output, overwrite=overwrite, protect=protect, make_folder=True)
    img: LoadedImage = read_image(job.input)
    plan = denoiser.plan(img.pixels, opts)
    yield {"kind": "start", "path": str(job.input), "steps": plan.steps, "sigma": plan.sigma, "timestep": plan.timestep}
    result = yield from denoiser.run(img.pixels, opts, plan, on_tile=on_tile)
    make_output_folder(job.output)
    written: list[str] = []  # metadata the output format could not keep
    out = write_image(job.output, result.pixels, like=img, bit_depth=job.bit_depth, overwrite=overwrite,
                      protect=protect, notes=written)
    hidden = plan.hidden_noise_sigma
    return {"kind": "done", "path": str(job.input), "output": str(out), "sigma": round(plan.sigma, 3),
            "timestep": plan.timestep, "steps": plan.steps, "seconds": round(time.perf_counter() - t0, 3),
            "device": result.device, "network": result.network, "warnings": [*img.notes, *result.warnings, *written],
            "hidden_noise_sigma": None if hidden is None else round(hidden, 3),
            "suggest_camera_noise": plan.suggest_camera_noise, "mosaic_noise": plan.mosaic_noise}


def denoise_files(jobs: list[FileJob], opts: DenoiseOptions, *, overwrite: bool = False,
                  skip_existing: bool = False, denoiser: Denoiser | None = None,
                  on_tile: TileCallback | None = None) -> Iterator[dict]:
    """Process ``jobs`` in order, going on past broken files. Yields dicts of kind
    ``start`` / ``step`` (index, total, t, and ``event``: the StepEvent with its previews) / ``done`` /
    ``skipped`` (path, output: its result existed, ``skip_existing``) / ``failed`` (path, error,
    ``exception``, ``exists``: True when the failure is an existing output) / ``stopped`` (error,
    ``not_started``: the paths left; the last event, after a full disk's ``failed``). Each job ends with
    one ``done``, ``skipped`` or ``failed``. ``on_tile(done, total)`` reports the tiles inside each step
    (see :meth:`Denoiser.run`); an exception it raises fails the photo. To stop, stop iterating.
    The CLI and the GUI's batch worker consume it."""
    denoiser = denoiser or Denoiser()
    inputs = [j.input for j in jobs]
    for i, job in enumerate(jobs):
        gen = process_file(job, opts, denoiser, overwrite=overwrite, skip_existing=skip_existing, protect=inputs,
                           on_tile=on_tile)
        try:
            while True:
                ev = next(gen)
                if isinstance(ev, StepEvent):
                    yield {"kind": "step", "path": str(job.input), "index": ev.index, "total": ev.total, "t": ev.t,
                           "event": ev}
                else:
                    yield ev
        except StopIteration as stop:
            yield stop.value
        except Exception as exc:  # a broken file must not stop the batch
            yield {"kind": "failed", "path": str(job.input), "error": str(exc) or type(exc).__name__,
                   "exception": exc, "exists": isinstance(exc, OutputExistsError)}
            if isinstance(exc, DiskFullError):  # every later photo would be denoised only to fail alike
                yield {"kind": "stopped", "error": str(exc), "not_started": [str(j.input) for j in jobs[i + 1:]]}
                return
        finally:
            gen.close()  # also when the consumer stops iterating in the middle of a photo


def estimate_file(path: Path, denoiser: Denoiser | None = None) -> NoiseEstimate:
    denoiser = denoiser or Denoiser()
    return denoiser.estimate(read_image(path).pixels)
