"""Write real-noise-style pairs from a camera family the networks never trained on.

    python benchmarks/held_out_cameras.py OUT [--clean ../shared/data/dev/CBSD68] [--limit N] [--seed 200]

Each clean photo (cropped to whole 2x2 mosaic cells) goes through one random camera of
``desktop_denoiser.bench.camera.held_out_camera_pair`` (seed ``--seed`` + its index): ``OUT/NNN_real.png``
is the noisy photo (the camera's JPEG decoded, or its lossless rendering), ``OUT/NNN_mean.png`` the
camera's own noise-free rendering, as PolyU's ``*_real`` / ``*_mean`` pairs; ``OUT/cameras.jsonl`` records
each camera and the noise std actually added. Then measure the app on them as on PolyU:

    python benchmarks/bench_real.py --data OUT --variant Auto
    python benchmarks/bench_real.py --data OUT --opt noise_model=real --variant "Camera noise" --peers

The photos are research-use images: keep OUT outside the repository (``runs/`` is ignored by git).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from desktop_denoiser.bench.camera import held_out_camera_pair, random_held_out_camera
from desktop_denoiser.pipeline.imageio import list_images, read_image, write_image


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--clean", default="../shared/data/dev/CBSD68")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=200)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    files = list_images(args.clean)[: args.limit]
    with open(args.out / "cameras.jsonl", "w") as log:
        for i, f in enumerate(files):
            clean = read_image(f).pixels
            clean = clean[: clean.shape[0] // 2 * 2, : clean.shape[1] // 2 * 2]
            camera = random_held_out_camera(np.random.default_rng(args.seed + i))
            reference, noisy = held_out_camera_pair(clean, np.random.default_rng(args.seed + i), camera)
            write_image(args.out / f"{i:03d}_real.png", noisy, bit_depth=8, overwrite=True)
            write_image(args.out / f"{i:03d}_mean.png", reference, bit_depth=8, overwrite=True)
            rec = {k: (v.round(4).tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(camera).items()}
            log.write(json.dumps({"pair": f"{i:03d}", "photo": Path(f).name,
                                  "noise_std": float((noisy - reference).std() * 255), **rec}) + "\n")
    print(f"{len(files)} pairs in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
