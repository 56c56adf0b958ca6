"""White noise saved as JPEG with 4:2:0 chroma subsampling (the default of OpenCV, PIL, cameras and phones).

    python benchmarks/jpeg_420.py [--data DIR] [--every N] [--quality 90] [--sigmas 8 10 12 15 25 50] [--webp]
                                  [--subsampling 4:2:0|4:2:2]

The subsampled chroma hides the noise from the white-noise PCA estimate; the noise analysis recognises
the signature and uses the flat-block level when the flat blocks' channel correlation says colour noise,
not near-grey texture (``core/noise_analysis.py``: HIDDEN_NOISE_MAX_CHANNEL_CORR), or when the luminance
plane's own estimate confirms white noise (HIDDEN_NOISE_LUMA_MIN_RATIO, since stop 25). Per σ: the noisy
JPEG, *Auto* with both rules switched off, *Auto* before the luma rule (stop 24), *Auto* now, on how many
photos the level was applied (before → now), and σ known. Every Nth photo, seeded noise, one thread;
prints a markdown table. ``--webp`` saves lossy WebP (PIL; also 4:2:0) at ``--quality`` instead of JPEG.
``--subsampling 4:2:2`` saves JPEGs by PIL with 4:2:2 subsampling (as Canon's and some other cameras'
JPEGs are); "Auto before" is then the app before stop 30, which applied 4:2:0's multiple of the flat level
(HIDDEN_NOISE_LEVEL_SCALE) to these too.
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from PIL import Image

from desktop_denoiser.bench.camera import jpeg, pil_jpeg
from desktop_denoiser.bench.common import STANDARD_HELP, app_denoiser
from desktop_denoiser.core.metrics import add_gaussian_noise_8bit, psnr
from desktop_denoiser.core.sampler import run_to_end
from desktop_denoiser.pipeline.imageio import list_images, read_image
from desktop_denoiser.pipeline.jobs import DenoiseOptions


def webp(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` (float RGB in [0, 1]) saved as lossy WebP of ``quality`` by PIL and decoded."""
    buf = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buf, "WEBP", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/dev/CBSD68")
    ap.add_argument("--every", type=int, default=6)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[8, 10, 12, 15, 25, 50])
    ap.add_argument("--standard", metavar="FILE", help=STANDARD_HELP)
    ap.add_argument("--webp", action="store_true", help="save as lossy WebP (PIL) instead of JPEG")
    ap.add_argument("--subsampling", choices=("4:2:0", "4:2:2"), default="4:2:0",
                    help="JPEG chroma subsampling (4:2:2: saved by PIL)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    d = app_denoiser(args.standard)
    paths = list_images(Path(args.data))[:: args.every]
    kind = "lossy WebP" if args.webp else "JPEG"
    sub422 = args.subsampling == "4:2:2" and not args.webp
    print(f"{len(paths)} photos of `{args.data}` (every {args.every}th), noisy 8-bit, saved as {kind} q{args.quality} "
          f"{'4:2:2' if sub422 else '4:2:0'}\n")
    if sub422:
        print("(Auto before: the level 4:2:0's multiple of the flat level, as before stop 30)\n")
    print(f"| σ | noisy {'WebP' if args.webp else 'JPEG'} (dB) | Auto, rules off (dB) | Auto before (dB) | Auto (dB) "
          "| level applied (before → now) | σ known (dB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for sigma in args.sigmas:
        rows = []
        for i, path in enumerate(paths):
            clean = read_image(path).pixels.astype(np.float32)
            noisy = add_gaussian_noise_8bit(clean, sigma, seed=1000 * i + int(sigma))
            if sub422:
                y = pil_jpeg(noisy, args.quality, 1)
            else:
                y = webp(noisy, args.quality) if args.webp else jpeg(noisy, args.quality)  # both 4:2:0
            a = d.estimate(y).analysis
            # before: the luma rule cannot confirm (stop 24); for 4:2:2, 4:2:0's level (before stop 30)
            before = replace(a, subsampling="") if sub422 else replace(a, sigma_luma=float("nan"))
            psnrs = [psnr(y, clean)]
            # rules off (channels as grey texture's, no luma estimate: no hidden-noise or grey-grain rule
            # applies), before, now
            for analysis in (replace(a, channel_corr=1.0, sigma_luma=float("nan")), before, a):
                plan = d.plan(y, DenoiseOptions(), analysis=analysis)
                psnrs.append(psnr(run_to_end(d.run(y, DenoiseOptions(), plan)).pixels, clean))
            known = run_to_end(d.run(y, DenoiseOptions(sigma=float(sigma)))).pixels
            rows.append((*psnrs, before.hidden_noise_applied, a.hidden_noise_applied, psnr(known, clean)))
        r = np.array(rows, dtype=np.float64)
        n_before, n_now = int(r[:, 4].sum()), int(r[:, 5].sum())
        applied = f"{n_now} of {len(r)}" if n_before == n_now else f"{n_before} → {n_now} of {len(r)}"
        print(f"| {sigma:g} | {r[:, 0].mean():.2f} | {r[:, 1].mean():.2f} | {r[:, 2].mean():.2f} | "
              f"{r[:, 3].mean():.2f} | {applied} | {r[:, 6].mean():.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
