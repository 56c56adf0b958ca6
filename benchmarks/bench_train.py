"""Run the 'train' benchmark: python benchmarks/bench_train.py [options]  (see benchmarks/README.md, --help)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from desktop_denoiser.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
