"""The benchmark tooling end to end on tiny synthetic images (fast; bm3d parts skip without bm3d)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from conftest import blurred_noise, smooth_test_image
from desktop_denoiser.bench import main as bench_main
from desktop_denoiser.bench.report import markers, update_section
from desktop_denoiser.paths import default_model_path

needs_model = pytest.mark.skipif(not default_model_path().is_file(), reason="no bundled model file")


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.3 + 0.4 * xx / w, 0.25 + 0.5 * yy / h, 0.6 - 0.3 * xx / w], axis=-1)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(h / 8, h / 3)
        img += rng.uniform(-0.2, 0.2, 3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
    img[h // 4: h // 2, w // 3: 2 * w // 3] += 0.15
    return np.clip(img, 0.05, 0.95).astype(np.float32)


@pytest.fixture
def clean_dir(tmp_path):
    d = tmp_path / "clean"
    d.mkdir()
    for i in range(2):
        u8 = np.round(_photo(64, 64, i) * 255).astype(np.uint8)
        assert cv2.imwrite(str(d / f"img{i}.png"), u8[..., ::-1])
    return d


@pytest.fixture(autouse=True)
def _restore_threads(monkeypatch):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    n, ncv = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(n)
    cv2.setNumThreads(ncv)


def test_update_section_replaces_only_between_markers(tmp_path):
    path = tmp_path / "RESULTS.md"
    begin, end = markers("awgn")
    before = "# Results\n\nIntro text.\n\n"
    after = "\n\n## Other\n\n<!-- real:begin -->\nkeep me\n<!-- real:end -->\ntrailing\n"
    path.write_text(f"{before}{begin}\nold table\n{end}{after}", encoding="utf-8")
    update_section(path, "awgn", "new table\nline 2")
    text = path.read_text(encoding="utf-8")
    assert text == f"{before}{begin}\nnew table\nline 2\n{end}{after}"
    # a missing section is appended; an existing file's text stays
    update_section(path, "speed", "fast")
    text2 = path.read_text(encoding="utf-8")
    assert text2.startswith(text.rstrip("\n"))
    assert "<!-- speed:begin -->\nfast\n<!-- speed:end -->" in text2
    # a missing file is created
    update_section(tmp_path / "new.md", "real", "x")
    assert "<!-- real:begin -->\nx\n<!-- real:end -->" in (tmp_path / "new.md").read_text(encoding="utf-8")


@needs_model
def test_awgn_end_to_end(tmp_path, clean_dir, capsys):
    results = tmp_path / "RESULTS.md"
    begin, end = markers("awgn")
    head, tail = "# R\n\nkeep this\n\n", "\n\n<!-- speed:begin -->\nspeed stays\n<!-- speed:end -->\n"
    results.write_text(f"{head}{begin}\nstale\n{end}{tail}", encoding="utf-8")
    out_json = tmp_path / "awgn.json"
    rc = bench_main(["awgn", "--data", str(clean_dir), "--sigmas", "25", "--peers", "nlm", "--limit", "2",
                     "--detail-steps", "2", "--detail-limit", "1", "--threads", "1", "--device", "cpu", "--max-views", "16",
                     "--json", str(out_json), "--results", str(results), "--write", "--quiet"])
    assert rc == 0
    data = json.loads(out_json.read_text())
    s = data["datasets"]["clean"]["sigmas"]["25"]
    assert s["ours"]["n"] == 2 and s["nlm"]["n"] == 2 and s["ours_detail"]["n"] == 1
    assert s["ours"]["psnr"] > s["noisy"]["psnr"] + 1.0
    assert s["ours_best"]["n"] == 2 and s["ours_best"]["psnr"] > s["ours"]["psnr"]  # the 8-view ensemble
    assert s["ours_max"]["n"] == 2 and s["ours_max"]["psnr"] > s["ours"]["psnr"]  # 8 views at 2 grid offsets
    assert s["ours_blind"]["psnr"] > s["noisy"]["psnr"]
    assert s["ours"]["s_per_img"] > 0 and s["ours"]["mp_per_s"] > 0
    assert s["estimator"]["n"] == 2 and s["estimator"]["mae"] < 10
    printed = capsys.readouterr().out
    assert "ours fidelity, σ known" in printed and "published" in printed.lower()
    assert "Best quality (8-view ensemble)" in printed and "ours Best − CBM3D" in printed
    assert "Maximum quality (16-view ensemble)" in printed and "ours Maximum − CBM3D" in printed
    text = results.read_text(encoding="utf-8")
    assert text.startswith(head + begin + "\n") and text.endswith(end + tail)
    assert "stale" not in text
    section = text[text.index(begin): text.index(end)]
    assert "- Command: `" in section and "awgn --data" in section and "- Machine:" in section
    assert "trained" in section and "| 25 |" in section


@needs_model
def test_awgn_cache_keeps_ensemble_sizes_apart(tmp_path, clean_dir):
    """A cached 8-view result is not reused for --best-views 2 (it was, before the key held the size)."""
    cache, args = tmp_path / "cache.jsonl", ["awgn", "--data", str(clean_dir), "--sigmas", "25", "--peers",
                                             "--limit", "1", "--detail-limit", "0", "--no-blind", "--threads", "1",
                                             "--device", "cpu", "--quiet"]
    res = {}
    for views in ("8", "2", "8"):
        out = tmp_path / f"v{views}.json"
        assert bench_main(args + ["--best-views", views, "--cache", str(cache), "--json", str(out)]) == 0
        res[views] = json.loads(out.read_text())["datasets"]["clean"]["sigmas"]["25"]["ours_best"]["psnr"]
    keys = [json.loads(line)["key"] for line in cache.read_text().splitlines()]
    assert sum("ensemble=8" in k for k in keys) == 1 and sum("ensemble=2" in k for k in keys) == 1
    assert res["2"] != res["8"]


@needs_model
def test_awgn_shards_fill_one_cache_with_the_noise_of_a_whole_run(tmp_path, clean_dir):
    """Two --shard runs fill the cache with each image once; the run without --shard reuses all of them and
    equals a whole run measured afresh (each image's noise follows its index in the folder)."""
    args = ["awgn", "--data", str(clean_dir), "--sigmas", "25", "--peers", "--detail-limit", "0", "--no-blind",
            "--best-views", "0", "--threads", "1", "--device", "cpu", "--quiet"]
    cache = tmp_path / "shared.jsonl"
    for k in ("0/2", "1/2"):
        out = tmp_path / f"shard{k[0]}.json"
        assert bench_main(args + ["--shard", k, "--cache", str(cache), "--json", str(out)]) == 0
        assert json.loads(out.read_text())["datasets"]["clean"]["sigmas"]["25"]["ours"]["n"] == 1
    keys = [json.loads(line)["key"] for line in cache.read_text().splitlines()]
    assert len(keys) == 2 and {k.split("|")[1] for k in keys} == {"clean/img0.png", "clean/img1.png"}

    merged, fresh = tmp_path / "merged.json", tmp_path / "fresh.json"
    assert bench_main(args + ["--cache", str(cache), "--json", str(merged)]) == 0
    assert len(cache.read_text().splitlines()) == 2  # nothing measured again
    assert bench_main(args + ["--cache", str(tmp_path / "fresh.jsonl"), "--json", str(fresh)]) == 0
    m, f = (json.loads(p.read_text())["datasets"]["clean"]["sigmas"]["25"] for p in (merged, fresh))
    assert m["ours"]["n"] == 2 and m["ours"]["psnr"] == pytest.approx(f["ours"]["psnr"], abs=1e-9)
    assert m["noisy"]["psnr"] == pytest.approx(f["noisy"]["psnr"], abs=1e-9)


def test_awgn_shard_refuses_to_write_a_partial_table(tmp_path, clean_dir, capsys):
    from desktop_denoiser.bench.awgn import parse_shard

    assert parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "-1/2", "1", "a/b"):
        with pytest.raises(Exception, match="K/N"):
            parse_shard(bad)
    rc = bench_main(["awgn", "--data", str(clean_dir), "--shard", "0/2", "--write", "--results",
                     str(tmp_path / "R.md"), "--peers", "--device", "cpu", "--quiet"])
    assert rc == 2 and "--shard" in capsys.readouterr().err and not (tmp_path / "R.md").exists()


def test_code_hash_follows_code_not_docstrings_or_comments(tmp_path):
    from desktop_denoiser.bench.common import INFERENCE_MODULES, code_hash

    pkg = tmp_path / "pkg"
    (pkg / "core").mkdir(parents=True)
    src = '"""Module doc."""\nSCALE = 0.5  # a comment\n\n\ndef f(x):\n    """Doc."""\n    return x * SCALE\n'
    (pkg / "core" / "m.py").write_text(src)
    base = code_hash(["core/m.py"], root=pkg)
    (pkg / "core" / "m.py").write_text(src.replace("Module doc.", "Other words.").replace("a comment", "edited")
                                       .replace('"""Doc."""', '"""Doc,\n    on two lines."""'))
    assert code_hash(["core/m.py"], root=pkg) == base
    (pkg / "core" / "m.py").write_text(src.replace("SCALE = 0.5", "SCALE = 0.6"))
    assert code_hash(["core/m.py"], root=pkg) != base
    # a folder entry stands for its modules: a change in any of them changes the hash
    (pkg / "core" / "m.py").write_text(src)
    (pkg / "io").mkdir()
    (pkg / "io" / "a.py").write_text(src)
    (pkg / "io" / "b.py").write_text("X = 1\n")
    with_folder = code_hash(["core/m.py", "io"], root=pkg)
    assert with_folder not in (base, code_hash(["core/m.py", "io/a.py"], root=pkg))
    (pkg / "io" / "b.py").write_text("X = 2\n")
    assert code_hash(["core/m.py", "io"], root=pkg) != with_folder
    # the shipped package: every listed module exists, and the hash is stable
    assert code_hash() == code_hash() and len(code_hash()) == 12
    assert len(INFERENCE_MODULES) == len(set(INFERENCE_MODULES))


@needs_model
def test_awgn_cache_is_not_reused_after_the_inference_code_changed(tmp_path, clean_dir, monkeypatch):
    """Cached results of ours are keyed by the inference code: other code measures afresh."""
    import desktop_denoiser.bench as bench

    cache, args = tmp_path / "cache.jsonl", ["awgn", "--data", str(clean_dir), "--sigmas", "25", "--peers",
                                             "--limit", "1", "--detail-limit", "0", "--no-blind", "--threads", "1",
                                             "--device", "cpu", "--quiet", "--best-views", "0", "--cache",
                                             str(tmp_path / "cache.jsonl")]
    assert bench_main(args) == 0
    assert bench_main(args) == 0  # same code: reused, nothing new written
    assert len(cache.read_text().splitlines()) == 1
    monkeypatch.setattr(bench.common, "code_hash", lambda *a, **k: "changedcode0")
    assert bench_main(args) == 0
    keys = [json.loads(line)["key"] for line in cache.read_text().splitlines()]
    assert len(keys) == 2 and "code=changedcode0" in keys[1] and "code=changedcode0" not in keys[0]


@needs_model
def test_awgn_cbm3d_peer(tmp_path, clean_dir):
    pytest.importorskip("bm3d")
    out_json = tmp_path / "awgn.json"
    rc = bench_main(["awgn", "--data", str(clean_dir), "--sigmas", "25", "--peers", "cbm3d", "--limit", "1",
                     "--detail-limit", "0", "--no-blind", "--threads", "1", "--device", "cpu",
                     "--json", str(out_json), "--quiet"])
    assert rc == 0
    s = json.loads(out_json.read_text())["datasets"]["clean"]["sigmas"]["25"]
    assert "ours_detail" not in s and "ours_blind" not in s
    assert s["cbm3d"]["psnr"] > s["noisy"]["psnr"] + 3.0


def test_peers_improve_noisy():
    from desktop_denoiser.bench.peers import nlm
    from desktop_denoiser.core.metrics import add_gaussian_noise_8bit, psnr

    clean = _photo(48, 48, 3)
    noisy = add_gaussian_noise_8bit(clean, 25, seed=0)
    assert psnr(nlm(noisy, 25), clean) > psnr(noisy, clean) + 3.0
    gray = clean.mean(axis=2, keepdims=True)
    gnoisy = add_gaussian_noise_8bit(gray, 25, seed=1)
    out = nlm(gnoisy, 25)
    assert out.shape == gray.shape and psnr(out, gray) > psnr(gnoisy, gray)


def test_opt_parsing():
    from desktop_denoiser.bench.common import parse_opts

    assert parse_opts(["ensemble=2", "mode=detail", "sigma=none", "preview=true"]) == {
        "ensemble": 2, "mode": "detail", "sigma": None, "preview": True}
    with pytest.raises(ValueError):
        parse_opts(["no_such_field=1"])


@pytest.fixture
def real_pairs(tmp_path):
    """Synthetic *_real / *_mean pairs: blurred (camera-like) noise on smooth photos."""
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    for i in range(2):
        clean = _photo(96, 96, 10 + i) * 255
        noisy = clean + blurred_noise(clean.shape, 6.0, seed=i)
        for name, img in (("mean", clean), ("real", noisy)):
            u8 = np.clip(np.round(img), 0, 255).astype(np.uint8)
            assert cv2.imwrite(str(pairs / f"p{i}_{name}.png"), u8[..., ::-1])
    return pairs


@needs_model
def test_real_end_to_end_with_clean_photo_check(tmp_path, clean_dir, real_pairs):
    """Synthetic *_real / *_mean pairs and a folder of clean photos."""
    pairs = real_pairs
    out_json = tmp_path / "real.json"
    rc = bench_main(["real", "--data", str(pairs), "--peers", "nlm", "--clean", str(clean_dir),
                     "--threads", "1", "--device", "cpu", "--json", str(out_json), "--quiet"])
    assert rc == 0
    data = json.loads(out_json.read_text())
    assert data["pairs"] == 2
    assert data["methods"]["ours"]["psnr"] > data["methods"]["noisy"]["psnr"] + 1.0
    sets = {s["set"]: s for s in data["clean"]}
    assert sets["pairs *_mean"]["n"] == 2 and sets["clean"]["n"] == 2
    for s in sets.values():  # smooth clean photos come back unchanged and are not taken for camera noise
        assert s["pass"] == s["n"] and s["real_path"] == 0 and s["worst_psnr"] >= 45.0
    # a folder that is not there: a clear error and exit status 2, not a traceback
    assert bench_main(["real", "--data", str(pairs), "--peers", "nlm", "--clean", str(tmp_path / "missing"),
                       "--threads", "1", "--device", "cpu", "--quiet"]) == 2


@needs_model
def test_real_cache_keeps_pairs_of_two_folders_with_the_same_names_apart(tmp_path, real_pairs):
    """Two folders of pairs named alike (p0_real.png ...) share one --cache: each gets its own results."""
    other = tmp_path / "other"
    other.mkdir()
    for f in real_pairs.iterdir():  # the same names, the noisy photos flipped: other numbers
        img = cv2.imread(str(f))
        assert cv2.imwrite(str(other / f.name), img[::-1] if "_real" in f.name else img)
    cache = tmp_path / "cache.jsonl"
    results = []
    for folder in (real_pairs, other, real_pairs):
        out_json = tmp_path / "real.json"
        assert bench_main(["real", "--data", str(folder), "--peers", "nlm", "--threads", "1", "--device", "cpu",
                           "--cache", str(cache), "--json", str(out_json), "--quiet"]) == 0
        results.append(json.loads(out_json.read_text())["methods"])
    assert results[2]["ours"]["psnr"] == results[0]["ours"]["psnr"]  # cached, the same
    for m in ("ours", "nlm"):
        assert abs(results[1][m]["psnr"] - results[0][m]["psnr"]) > 1.0  # the other folder measured afresh


@needs_model
def test_real_with_the_shipped_networks_names_them_and_runs_the_camera_one(tmp_path, real_pairs, capsys):
    """--model shipped: the app's own choice of network per photo (camera noise -> the camera network)."""
    from desktop_denoiser.paths import network_model_paths

    out_json = tmp_path / "real.json"
    args = ["real", "--data", str(real_pairs), "--peers", "nlm", "--threads", "1", "--device", "cpu", "--quiet"]
    assert bench_main(args + ["--model", "shipped", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    model_line = next(line for line in text.splitlines() if line.startswith("- Model: "))
    for name, path in network_model_paths().items():
        assert f"{name}: `{path.name}`" in model_line
    shipped = json.loads(out_json.read_text())["methods"]["ours"]["psnr"]
    assert bench_main(args + ["--model", str(network_model_paths()["camera"]), "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["methods"]["ours"]["psnr"] == pytest.approx(shipped, abs=1e-9)


@needs_model
def test_awgn_jpeg_variant_writes_its_own_section(tmp_path, clean_dir):
    results = tmp_path / "RESULTS.md"
    update_section(results, "awgn", "png table stays")
    out_json = tmp_path / "jpeg.json"
    args = ["awgn", "--data", str(clean_dir), "--sigmas", "25", "--peers", "nlm", "--limit", "1", "--jpeg", "90",
            "--detail-limit", "0", "--threads", "1", "--device", "cpu", "--results", str(results), "--write",
            "--json", str(out_json), "--quiet"]
    assert bench_main(args) == 0
    s = json.loads(out_json.read_text())["datasets"]["clean"]["sigmas"]["25"]
    assert s["ours"]["psnr"] > s["noisy"]["psnr"] + 1.0
    text = results.read_text(encoding="utf-8")
    assert "png table stays" in text and "<!-- awgn_jpeg:begin -->" in text and "JPEG q90" in text
    assert bench_main(args[:-6] + ["--jpeg", "0", "--quiet"]) == 2  # a quality out of range: a clear error


@needs_model
def test_cuda_bench_dry_run_on_the_cpu(tmp_path, clean_dir):
    """Without a GPU the cuda bench runs its precision and throughput parts on the CPU (a dry run of the
    script a lent GPU runs); fp16 matches float32, and the out-of-memory part is left out."""
    out_json = tmp_path / "cuda.json"
    results = tmp_path / "RESULTS.md"
    rc = bench_main(["cuda", "--data", str(clean_dir), "--limit", "1", "--sigmas", "25", "--mp", "0.02",
                     "--device", "cpu", "--threads", "1", "--json", str(out_json), "--results", str(results),
                     "--write", "--quiet"])
    assert rc == 0
    data = json.loads(out_json.read_text())
    row = data["precision"]["σ=25"]
    assert set(row) == {"fp32", "fp16", "bf16"}
    assert abs(row["fp16"]["psnr"] - row["fp32"]["psnr"]) < 0.05 and row["fp32"]["psnr"] > 28
    assert data["oom"] == {} and [r["precision"] for r in data["speed"]] == ["auto", "fp32"]
    assert "<!-- cuda:begin -->" in results.read_text(encoding="utf-8")
    assert bench_main(["cuda", "--data", str(tmp_path / "missing"), "--device", "cpu", "--quiet"]) == 2


@needs_model
def test_train_bench_times_training_steps_of_the_shipped_architecture(tmp_path, clean_dir):
    """The training-throughput bench runs real Algorithm 1 steps of the shipped architecture and reports
    steps per second (the compiled variant is checked for equal weights in test_training)."""
    out_json, results = tmp_path / "train.json", tmp_path / "RESULTS.md"
    rc = bench_main(["train", "--data", str(clean_dir), "--batch-size", "2", "--crop", "32", "--steps", "3",
                     "--warmup", "1", "--variants", "eager", "--device", "cpu", "--threads", "1",
                     "--json", str(out_json), "--results", str(results), "--write", "--quiet"])
    assert rc == 0
    (r,) = json.loads(out_json.read_text())["results"]
    assert r["variant"] == "eager" and r["steps"] == 3 and r["it_s"] > 0 and r["vs_eager"] == 1.0
    assert r["mpix_s"] == pytest.approx(r["it_s"] * 2 * 32 * 32 / 1e6)
    assert "<!-- train:begin -->" in results.read_text(encoding="utf-8")
    assert bench_main(["train", "--data", str(tmp_path / "missing"), "--device", "cpu", "--quiet"]) == 2


def _script(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@needs_model
def test_real_sigma_sweep_table(real_pairs, capsys):
    """benchmarks/real_sigma_sweep.py: at k 1, r 0.5 the forced camera path is what Auto does on camera-like
    noise, a weaker level removes less, and the oracle row is the per-photo best."""
    assert _script("real_sigma_sweep").main(["--data", str(real_pairs), "--scales", "0.5", "1",
                                             "--refine", "0.5", "--threads", "1"]) == 0
    rows = {line.split("|")[1].strip(): [float(v) for v in line.split("|")[2:5]]
            for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line
            and not line.startswith("| setting")}
    auto, default, weak = rows["**Auto** (the app)"], rows["k 1, r 0.5 (the path's default)"], rows["k 0.5, r 0.5"]
    assert auto == default and auto[0] > rows["noisy input"][0] + 1.0
    assert weak[0] < default[0]
    oracle = rows["per-photo best of all the above (oracle)"]
    assert oracle[0] >= max(auto[0], weak[0])
    # --model: one weights file for every photo (here the fast network instead of the camera one)
    from desktop_denoiser.paths import fast_model_path

    assert _script("real_sigma_sweep").main(["--data", str(real_pairs), "--scales", "1", "--refine", "0.5",
                                             "--threads", "1", "--model", str(fast_model_path())]) == 0
    fast = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| **Auto**")]
    assert len(fast) == 1 and float(fast[0].split("|")[2]) != auto[0]


@needs_model
def test_weak_noise_table_shows_what_the_white_over_texture_rule_changed(tmp_path, capsys):
    """benchmarks/weak_noise.py on a finely textured photo with white noise of sigma 5: the rule switched
    off (the app before stop 24) takes it for camera noise and loses to sigma known; the app now does not."""
    from conftest import textured_photo

    d = tmp_path / "textured"
    d.mkdir()
    assert cv2.imwrite(str(d / "a.png"), np.round(textured_photo() * 255).astype(np.uint8)[..., ::-1])
    assert _script("weak_noise").main(["--data", str(d), "--sigmas", "5"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 5 |")]
    assert len(row) == 1
    cells = [c.strip() for c in row[0].split("|")[1:-1]]
    assert cells[1] == "1 → 0"
    noisy, before, now, known = (float(c) for c in cells[2:6])
    assert now > noisy + 3.0 and now > before + 3.0
    assert abs(now - known) < 0.05


@needs_model
def test_grey_grain_table_shows_what_the_rule_changed(tmp_path, capsys):
    """benchmarks/grey_grain.py on a smooth photo with grey noise of sigma 15: the app before stop 32 leaves
    it as it is, the app now finds the grain and comes near sigma known."""
    d = tmp_path / "smooth"
    d.mkdir()
    assert cv2.imwrite(str(d / "a.png"), np.round(smooth_test_image(128, 160, seed=2) * 255).astype(np.uint8)[..., ::-1])
    assert _script("grey_grain").main(["--data", str(d), "--every", "1", "--sigmas", "15"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 15 |")]
    assert len(row) == 1
    cells = [c.strip().strip("*") for c in row[0].split("|")[1:-1]]
    noisy, before, now = (float(c) for c in cells[1:4])
    assert cells[4] == "1 of 1" and abs(before - noisy) < 0.5 and now > noisy + 5.0
    assert now > float(cells[6]) - 1.0


@needs_model
def test_jpeg_420_table_shows_what_the_luma_rule_changed(tmp_path, capsys):
    """benchmarks/jpeg_420.py on a photo with white noise of sigma 10 saved as 4:2:0 JPEG: the flat blocks
    read ~7, so before the luma rule (stop 24) the level was only suggested and the noise left in; the
    luminance plane now confirms it and the level is applied."""
    d = tmp_path / "smooth"
    d.mkdir()
    photo = np.round(smooth_test_image(192, 256, seed=6) * 255).astype(np.uint8)
    assert cv2.imwrite(str(d / "a.png"), photo[..., ::-1])
    assert _script("jpeg_420").main(["--data", str(d), "--sigmas", "10"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 10 |")]
    assert len(row) == 1
    cells = [c.strip() for c in row[0].split("|")[1:-1]]
    assert cells[5] == "0 → 1 of 1"
    noisy, off, before, now, known = (float(c) for c in cells[1:5] + cells[6:7])
    assert now > noisy + 3.0 and now > before + 3.0 and abs(before - off) < 0.01
    assert now > known - 1.0


def test_jpeg_420_webp_is_a_lossy_8bit_round_trip():
    from desktop_denoiser.core.metrics import psnr

    img = smooth_test_image(64, 96, seed=1)
    out = _script("jpeg_420").webp(img, 80)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.allclose(out * 255, np.round(out * 255), atol=1e-3)  # 8-bit levels
    assert 30.0 < psnr(out, img) < 60.0  # lossy, but close


def test_grey_photo_is_the_8bit_luma_of_the_grey_training_samples(clean_dir):
    from desktop_denoiser.bench.common import grey_photo
    from desktop_denoiser.core.training import LUMA_WEIGHTS

    path = sorted(clean_dir.iterdir())[0]
    rgb = cv2.imread(str(path))[..., ::-1].astype(np.float64)
    g = grey_photo(path)
    assert g.shape == rgb.shape[:2] and g.dtype == np.float32
    diff = np.abs(g * 255 - np.round(rgb @ np.array(LUMA_WEIGHTS)))
    assert diff.max() < 1.001 and np.mean(diff > 1e-3) < 0.01  # float32 rounding may tip a .5 the other way
    assert np.allclose(g * 255, np.round(g * 255), atol=1e-3)  # 8-bit levels


def test_arch_compute_counts_the_peers_published_architectures():
    """benchmarks/arch_compute.py: MACs per pixel by hooks equal the closed forms, and the peers'
    parameter counts are the published ones (FFDNet colour 0.85 M, CDnCNN-B 0.67 M)."""
    mod = _script("arch_compute")
    ffdnet, dncnn = mod.FFDNetArch(), mod.DnCNNArch()
    assert mod.conv_macs_per_pixel(ffdnet, 64, 64) == (15 * 96 * 9 + 10 * 96 * 96 * 9 + 96 * 12 * 9) / 4
    assert mod.conv_macs_per_pixel(dncnn, 64, 64) == 3 * 64 * 9 + 18 * 64 * 64 * 9 + 64 * 3 * 9
    assert round(sum(p.numel() for p in ffdnet.parameters()) / 1e6, 2) == 0.85
    assert round(sum(p.numel() for p in dncnn.parameters()) / 1e6, 2) == 0.67
    x = torch.zeros(1, 3, 32, 48)
    assert ffdnet(x, torch.tensor([0])).shape == x.shape and dncnn(x, torch.tensor([0])).shape == x.shape
    assert mod.parse_candidate("base_channels=48,channel_mults=1:2:4") == {"base_channels": 48,
                                                                          "channel_mults": (1, 2, 4)}


def test_speed_rows_report_the_median_of_repeated_runs():
    from desktop_denoiser.bench.speed import median_run

    runs = [{"wall_s": 25.6, "job_s": 23.4, "peak_rss_gb": 1.41}, {"wall_s": 20.5, "job_s": 18.5, "peak_rss_gb": 1.45},
            {"wall_s": 21.0, "job_s": 19.1, "peak_rss_gb": None}]
    r = median_run(runs)
    assert (r["wall_s"], r["job_s"]) == (21.0, 19.1)  # the middle run, not a mix of runs
    assert r["peak_rss_gb"] == 1.45 and r["wall_range"] == "20.5–25.6" and r["wall_runs"] == [20.5, 21.0, 25.6]
    assert median_run(runs[:2])["wall_s"] == 20.5 and runs[2]["peak_rss_gb"] is None  # callers' dicts untouched


def test_gpu_slot_takes_the_bigger_batch_only_when_it_buys_clearly_more_pixels(tmp_path):
    import json
    import subprocess
    import sys

    from desktop_denoiser.bench.train import choose_batch_size

    # stage 8's H100 timings of the grown network: 64.4 and 97.3 training Mpixel/s at batch 128 / 256
    assert choose_batch_size({128: 64.37, 256: 97.35}, [128, 256]) == 256
    assert choose_batch_size({128: 77.8, 256: 90.0}, [128, 256]) == 128  # +16 %: not worth half the steps
    assert choose_batch_size({128: 77.8}, [128, 256]) == 128
    assert choose_batch_size({}, [256, 128]) == 128  # the benchmark failed: the smallest
    for bs, mpix in ((128, 64.37), (256, 97.35)):
        (tmp_path / f"bench_train_grown_b{bs}.json").write_text(json.dumps({"results": [{"mpix_s": mpix}]}))
    r = subprocess.run([sys.executable, "-m", "desktop_denoiser.bench.train", str(tmp_path), "128", "256"],
                       capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "256"


@needs_model
def test_speed_bench_times_each_network_in_a_fresh_cli_process(tmp_path):
    out_json = tmp_path / "speed.json"
    rc = bench_main(["speed", "--mp", "0.05", "--crop-mp", "0", "--peers", "--networks", "standard", "fast",
                     "--precisions", "fp32", "--threads", "1", "--json", str(out_json), "--quiet"])  # no bm3d needed
    assert rc == 0
    rows = json.loads(out_json.read_text())["runs"]
    assert [(r["network"], r["precision"]) for r in rows] == [("standard", "fp32"), ("fast", "fp32")]
    assert all(r["wall_s"] > 0 and r["steps"] == 1 and "--network" in r["command"] for r in rows)


def test_train_ablation_trains_each_option_and_writes_its_table(tmp_path, capsys):
    """benchmarks/train_ablation.py: every configuration trains its own network on the same data, the
    table has a row per option with the denoising and high-t PSNRs, and a finished run is reused."""
    from PIL import Image

    from conftest import smooth_test_image
    from desktop_denoiser.core.checkpoint import load_model

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray((smooth_test_image(48, 64, seed=i) * 255).astype(np.uint8)).save(photos / f"p{i}.png")
    results = tmp_path / "RESULTS.md"
    argv = ["--data", str(photos), "--val", str(photos), "--val-images", "2", "--val-crop", "32", "--steps", "2",
            "--crop", "32", "--batch-size", "2", "--base-channels", "8", "--threads", "1",
            "--configs", "shipped", "uniform", "v", "--out", str(tmp_path / "runs"), "--write", "--results", str(results)]
    assert _script("train_ablation").main(argv) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and "---" not in line and not line.startswith("| training option")]
    assert [r[0].strip().split(",")[0] for r in rows] == ["ε-MSE", "ε-MSE", "v-prediction (the network predicts v; v-MSE)"]
    for r in rows:
        psnrs = [float(v) for v in r[1:4] + r[5:9]]
        assert all(3 < v < 60 for v in psnrs)
    assert rows[0][4].strip() == "–" and rows[1][4].strip().startswith(("+", "-"))
    done = sorted(p.parent.name for p in (tmp_path / "runs").glob("*/result.json"))
    assert done == ["shipped-seed0", "uniform-seed0", "v-seed0"]
    assert load_model(tmp_path / "runs" / "v-seed0" / "model_ema.safetensors").model.config.prediction == "v"
    text = results.read_text()
    assert "<!-- train_ablation:begin -->" in text and "v-prediction" in text
    saved_file = tmp_path / "runs" / "v-seed0" / "result.json"
    saved = json.loads(saved_file.read_text())
    saved_file.write_text(json.dumps(dict(saved, psnr_15=12.345)))  # a finished run is reused, not measured again
    assert _script("train_ablation").main(argv) == 0
    again = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| v-prediction")]
    assert len(again) == 1 and again[0].split("|")[2].strip() == "12.35"
    assert _script("train_ablation").main(argv + ["--seeds", "0", "1", "--report-only"]) == 0  # seed 1 never ran
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ε-MSE, t uniform")]
    assert len(rows) == 1 and rows[0].rstrip(" |").endswith("| 0") and not (tmp_path / "runs" / "uniform-seed1").exists()


def test_app_denoiser_swaps_only_the_standard_network(tmp_path):
    """--standard FILE of the grey, 4:2:0 and float-noise scripts: that file as the standard network, the fast
    and camera networks the shipped ones (so Auto's camera-noise path is the app's), a missing file refused."""
    import shutil

    from desktop_denoiser.bench.common import app_denoiser
    from desktop_denoiser.pipeline.jobs import Denoiser

    shipped = Denoiser().model_paths
    assert app_denoiser().model_paths == shipped
    candidate = tmp_path / "checkpoint.safetensors"
    shutil.copy(default_model_path(), candidate)
    d = app_denoiser(candidate)
    assert d.model_path == d.model_paths["standard"] == candidate
    assert {k: v for k, v in d.model_paths.items() if k != "standard"} == {
        k: v for k, v in shipped.items() if k != "standard"}
    assert d.model("cpu", "standard").model.config == Denoiser().model("cpu", "standard").model.config
    with pytest.raises(FileNotFoundError, match="--standard"):
        app_denoiser(tmp_path / "missing.safetensors")


@needs_model
def test_real_resized_table(real_pairs, capsys):
    """benchmarks/real_resized.py: as they are, the camera-like pairs take the camera path under Auto (so
    Auto equals the path forced) and gain, also saved again as JPEG; downscaled 2x the noise is weaker and
    the forced camera path still removes it. The clean references come back unchanged."""
    mod = _script("real_resized")
    assert mod.main(["--data", str(real_pairs), "--factors", "1", "0.5", "--formats", "png", "jpeg90"]) == 0
    rows = {(c[0], c[1]): c[2:] for c in ([v.strip() for v in line.split("|")[1:-1]]
                                          for line in capsys.readouterr().out.splitlines()
                                          if line.startswith("| ") and "---" not in line and "factor" not in line)}
    assert set(rows) == {("1", "png"), ("1", "jpeg90"), ("0.5", "png"), ("0.5", "jpeg90")}
    noisy, auto, forced = (float(v) for v in rows[("1", "png")][:3])
    assert rows[("1", "png")][3] == "2 of 2" and auto == forced and auto > noisy + 1.0
    noisy, auto, _ = (float(v) for v in rows[("1", "jpeg90")][:3])
    assert auto > noisy + 1.0
    noisy, _, forced = (float(v) for v in rows[("0.5", "png")][:3])
    assert forced > noisy + 1.0
    assert all(r[4] == "2 of 2" for r in rows.values())
    with pytest.raises(ValueError, match="png or jpegQ"):
        mod.save_again(np.zeros((4, 4, 3), np.float32), "tiff")
    img = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    assert mod.resize(img, 0.5).shape == (10, 15, 3) and mod.resize(img, 1) is img


def test_bench_refuses_an_empty_folder_and_a_size_of_zero(tmp_path, capsys):
    """An empty folder gave an empty AWGN table (which --write would have put over the real one) and
    'speed --mp 0' an OpenCV traceback: both are now clear errors, and the results file is untouched."""
    results = tmp_path / "RESULTS.md"
    results.write_text("keep\n")
    (tmp_path / "empty").mkdir()
    assert bench_main(["awgn", "--data", str(tmp_path / "empty"), "--peers", "nlm", "--write", "--results",
                       str(results), "--quiet"]) == 2
    assert "no images in" in capsys.readouterr().err and results.read_text() == "keep\n"
    with pytest.raises(SystemExit) as exc:
        bench_main(["speed", "--mp", "0"])
    assert exc.value.code == 2 and "argument --mp: must be a number > 0" in capsys.readouterr().err


def test_self_distill_pilot_trains_the_student_towards_its_ensemble(tmp_path, capsys):
    """benchmarks/self_distill.py: step 0 is the starting network itself, the student's EMA is written and
    has moved away from it (a short run; the pilot's result is in models/README.md)."""
    from PIL import Image

    from conftest import smooth_test_image
    from desktop_denoiser.core.checkpoint import load_model
    from desktop_denoiser.paths import default_model_path

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray((smooth_test_image(48, 64, seed=i) * 255).astype(np.uint8)).save(photos / f"p{i}.png")
    out = tmp_path / "sd"
    argv = ["--model", str(default_model_path()), "--data", str(photos), "--val", str(photos), "--val-images", "1",
            "--val-crop", "32", "--steps", "2", "--batch-size", "2", "--crop", "32", "--lr", "1e-3", "--ema", "0.5",
            "--threads", "1", "--out", str(out)]
    assert _script("self_distill").main(argv) == 0
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 2] and rows[0]["loss"] is None and rows[1]["loss"] > 0
    assert all(10 < r[f"psnr_{s}"] < 60 for r in rows for s in (15, 25, 50))
    start, student = load_model(default_model_path()).model, load_model(out / "student_ema.safetensors")
    assert student.model.config == start.config and student.info["self_distill"]["steps"] == 2
    moved = [(a - b).abs().max().item() for a, b in zip(student.model.parameters(), start.parameters())]
    assert max(moved) > 1e-5


def test_preview_area_table_times_the_part_against_the_whole_photo(capsys):
    """benchmarks/preview_area.py on a small photo: the part in view runs faster than the whole photo and
    matches the same part of the whole run (the app's region cut)."""
    assert _script("preview_area").main(["--mp", "0.3", "--views", "160x120", "--threads", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 6")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] == "160×120" and float(cells[4]) < float(cells[5])  # preview s < whole photo s
    assert cells[7] == "inf" or float(cells[7]) > 55


def test_strength_split_keeps_the_grain_and_not_the_colour_noise(capsys, tmp_path):
    """benchmarks/strength_split.py on two small photos with white noise: at each Strength below 100 % the
    colour noise removed whole keeps the same grain as the plain mix, less colour noise, and a higher PSNR."""
    for i in range(2):
        img = np.round(smooth_test_image(64, 80, seed=i) * 255).astype(np.uint8)
        assert cv2.imwrite(str(tmp_path / f"c{i}.png"), img[:, :, ::-1])
    argv = ["--awgn", "25", "--clean", str(tmp_path), "--strengths", "1", "0.5", "--threads", "1"]
    assert _script("strength_split").main(argv) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[2][:1].isdigit():
            rows[cells[0].split(" (")[0], cells[1]] = [float(c) for c in cells[2:]]
    assert set(rows) == {("noisy input", "–"), ("colour noise removed", "100 %"), ("colour noise removed", "50 %"),
                         ("plain mix", "50 %")}
    plain, removed = rows["plain mix", "50 %"], rows["colour noise removed", "50 %"]
    full = rows["colour noise removed", "100 %"]
    assert removed[1] == pytest.approx(plain[1], abs=0.02)  # the same grain
    assert removed[2] == pytest.approx(full[2], abs=0.05) and removed[2] * 2 < plain[2]
    assert plain[0] < removed[0] < full[0]


def test_camera_path_compares_the_two_first_passes_on_simulated_cameras(capsys, tmp_path):
    """benchmarks/camera_path.py on small simulated-camera photos (the training family and the held-out one)
    and a clean folder: both paths are measured on the photos Auto takes for camera noise (the same ones),
    the clean check counts them, and a per-level switch picks between the two paths' results."""
    for i in range(3):
        img = np.round(smooth_test_image(96, 128, seed=i) * 255).astype(np.uint8)
        assert cv2.imwrite(str(tmp_path / f"c{i}.png"), img[:, :, ::-1])
    log = tmp_path / "photos.jsonl"
    argv = ["--pairs", "", "--clean", str(tmp_path), "--sim", "3", "--held-out", "3", "--crop", "96",
            "--clean-check", str(tmp_path), "--switch", "0", "1000", "--jsonl", str(log), "--threads", "1"]
    assert _script("camera_path").main(argv) == 0
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in capsys.readouterr().out.splitlines()
            if line.startswith("| simulated") or line.startswith("| held-out") or ", clean" in line]
    paths = ("sub-images + refinement (shipped)", "whole photo + refinement")
    switched = {f"whole photo from level {v} (sub-images below)": v for v in ("0", "1000")}
    assert len(rows) == 3 * 4 and {r[3] for r in rows} == {*paths, *switched}
    for name in ("simulated", "held-out"):
        part = {r[3]: r for r in rows if r[0].startswith(name)}
        assert len({r[1] for r in part.values()}) == 1 and part[paths[0]][1].endswith("of 3")
        # from level 0 every photo runs the whole photo, from 1000 none does
        assert part["whole photo from level 0 (sub-images below)"][4:6] == part[paths[1]][4:6]
        assert part["whole photo from level 1000 (sub-images below)"][4:6] == part[paths[0]][4:6]
    clean = [r for r in rows if ", clean" in r[0]]
    taken = clean[0][1].split(" of ")[0]  # how many of the clean photos Auto took for camera noise
    assert all(r[1] == clean[0][1] and r[6].split("/")[1] == taken for r in clean)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records and all(set(paths) <= set(r) and r["level"] > 0 for r in records)


def test_held_out_cameras_writes_pairs_that_bench_real_reads(tmp_path):
    """benchmarks/held_out_cameras.py: each clean photo through one held-out camera, as *_real / *_mean
    8-bit PNG pairs (odd sizes cut to whole 2x2 mosaic cells), with the camera and its noise recorded."""
    from desktop_denoiser.bench.real import find_pairs
    from desktop_denoiser.pipeline.imageio import read_image

    clean = tmp_path / "clean"
    clean.mkdir()
    for i in range(2):
        img = np.round(smooth_test_image(65, 90, seed=i) * 255).astype(np.uint8)
        assert cv2.imwrite(str(clean / f"c{i}.png"), img[:, :, ::-1])
    out = tmp_path / "pairs"
    assert _script("held_out_cameras").main([str(out), "--clean", str(clean), "--seed", "7"]) == 0
    pairs = find_pairs(out)
    assert [p[0].name for p in pairs] == ["000_real.png", "001_real.png"]
    for noisy, ref in pairs:
        a, b = read_image(noisy), read_image(ref)
        assert a.pixels.shape == b.pixels.shape == (64, 90, 3) and a.bit_depth == b.bit_depth == 8
        assert 1.0 < float(np.abs(a.pixels - b.pixels).mean()) * 255 < 60  # noise, not another photo
    cams = [json.loads(line) for line in (out / "cameras.jsonl").read_text().splitlines()]
    assert [c["photo"] for c in cams] == ["c0.png", "c1.png"] and all(c["noise_std"] > 0.5 for c in cams)
    again = tmp_path / "again"  # seeded: the same pairs again
    assert _script("held_out_cameras").main([str(again), "--clean", str(clean), "--seed", "7"]) == 0
    assert np.array_equal(read_image(again / "001_real.png").pixels, read_image(out / "001_real.png").pixels)


def test_a_device_this_machine_lacks_is_refused_in_one_line(capsys, monkeypatch):
    """bench awgn --device cuda without a GPU ended in a DeviceError traceback (denoise and train refuse it)."""
    import torch

    from desktop_denoiser.cli import main as cli_main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli_main(["bench", "awgn", "--device", "cuda", "--limit", "1", "--peers", "nlm"]) == 2  # (CI: no bm3d)
    assert "CUDA was requested but no CUDA GPU" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["bench", "--help"])
    assert "{awgn,real,speed,cuda,train}" in capsys.readouterr().out
