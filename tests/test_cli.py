import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_test_image
from desktop_denoiser.cli import main
from desktop_denoiser.core.metrics import LUMA_WEIGHTS, add_gaussian_noise_8bit, psnr


@pytest.fixture
def noisy_png(tmp_path):
    clean = smooth_test_image(96, 128, seed=3)
    noisy = add_gaussian_noise_8bit(clean, 25, seed=7)
    path = tmp_path / "in" / "photo.png"
    path.parent.mkdir()
    Image.fromarray((noisy * 255).round().astype(np.uint8)).save(path)
    return path, clean, noisy


def test_estimate_json(noisy_png, capsys):
    path, _, _ = noisy_png
    assert main(["estimate", str(path), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip())
    assert rec["path"] == str(path)
    assert abs(rec["sigma"] - 25) < 2.5
    assert abs(rec["timestep"] - 56) <= 4
    assert rec["hidden_noise_sigma"] is None and rec["two_level"] is False


def test_estimate_says_a_one_bit_image_has_nothing_to_denoise(tmp_path, capsys):
    gradient = np.tile(np.linspace(0, 255, 96, dtype=np.float32), (64, 1)).astype(np.uint8)
    Image.fromarray(gradient).convert("1").save(tmp_path / "scan.png")
    assert main(["estimate", str(tmp_path / "scan.png")]) == 0
    assert "black and white only (1-bit): nothing to denoise" in capsys.readouterr().out
    assert main(["estimate", str(tmp_path / "scan.png"), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["two_level"] is True and rec["sigma"] == 0 and rec["timestep"] < 0


def test_noise_hidden_by_jpeg_is_measured_and_grey_grain_only_suggested(noisy_png, tmp_path, capsys):
    """The same noise saved as a 4:2:0 JPEG (PIL's default): the PCA estimate collapses, the flat-block
    level is used and the photo denoised. Clean near-grey fine grain with the same signature only gets
    a suggestion (``hidden_noise_sigma``, a note naming --sigma)."""
    from test_real_noise import grey_grain

    path, clean, noisy = noisy_png
    jpeg = path.with_suffix(".jpg")
    Image.fromarray((noisy * 255).round().astype(np.uint8)).save(jpeg, quality=90)
    assert main(["estimate", str(jpeg), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip())
    assert 12 <= rec["sigma"] <= 30 and rec["hidden_noise_sigma"] is None
    out_dir = tmp_path / "out"
    assert main(["denoise", str(jpeg), "-o", str(out_dir), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 12 <= rec["sigma"] <= 30 and rec["hidden_noise_sigma"] is None
    decoded = np.asarray(Image.open(jpeg), np.float32) / 255
    out = np.asarray(Image.open(out_dir / jpeg.name), np.float32) / 255
    assert psnr(out, clean) > psnr(decoded, clean) + 3
    grain = tmp_path / "grain.jpg"
    Image.fromarray((grey_grain(smooth_test_image(192, 256, seed=6)) * 255).round().astype(np.uint8)).save(
        grain, quality=90)
    assert main(["estimate", str(grain), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip())
    assert rec["sigma"] < 3 and 8 <= rec["hidden_noise_sigma"] <= 20
    assert main(["estimate", str(grain)]) == 0
    assert "try --sigma" in capsys.readouterr().out
    assert main(["denoise", str(grain), "-o", str(out_dir)]) == 0
    assert "run it again with --sigma" in capsys.readouterr().out


def test_denoise_end_to_end(noisy_png, tmp_path, capsys):
    path, clean, noisy = noisy_png
    before = path.read_bytes()
    out_dir = tmp_path / "out"
    assert main(["denoise", str(path.parent), "-o", str(out_dir), "--json", "--device", "cpu"]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(rec) >= {"path", "output", "sigma", "timestep", "steps", "seconds"}
    out = out_dir / "photo.png"
    assert rec["output"] == str(out) and rec["steps"] == 1
    with Image.open(out) as im:
        assert im.size == (128, 96) and im.mode == "RGB"
        result = np.asarray(im, dtype=np.float32) / 255
    assert psnr(result, clean) > psnr(noisy, clean) + 2.0
    assert path.read_bytes() == before  # original untouched


def test_denoise_strength(noisy_png, tmp_path, capsys):
    """--strength 0 --color-strength 0 writes the input's pixels back; 0.6 lies between input and full
    strength; --strength 0 alone keeps the grain (the input's luma) with the colour noise removed; bad
    values are refused with a clear message before anything runs."""
    path, clean, noisy = noisy_png
    outs = {}
    for strength, colour in (("0", "0"), ("0.6", "0.6"), ("1", "1"), ("0", None)):
        out_dir = tmp_path / f"s{strength}{colour}"
        extra = [] if colour is None else ["--color-strength", colour]
        assert main(["denoise", str(path), "-o", str(out_dir), "--sigma", "25", "--strength", strength] + extra) == 0
        with Image.open(out_dir / "photo.png") as im:
            outs[strength, colour] = np.asarray(im, dtype=np.float32) / 255
    assert np.array_equal(outs["0", "0"], noisy)
    assert psnr(noisy, clean) + 2 < psnr(outs["0.6", "0.6"], clean) < psnr(outs["1", "1"], clean)
    weights = np.asarray(LUMA_WEIGHTS, np.float32)
    grain = outs["0", None]
    assert np.abs(grain @ weights - noisy @ weights).max() < 1.5 / 255  # the brightness is the input's
    assert psnr(noisy, clean) + 2 < psnr(grain, clean) < psnr(outs["1", "1"], clean)
    capsys.readouterr()
    for option in ("--strength", "--color-strength"):
        with pytest.raises(SystemExit) as exc:
            main(["denoise", str(path), "-o", str(tmp_path / "bad"), option, "1.5"])
        assert exc.value.code == 2 and "between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_denoise_detail_mode_with_known_sigma(noisy_png, tmp_path, capsys):
    path, clean, noisy = noisy_png
    assert main(["denoise", str(path), "-o", str(tmp_path / "d"), "--mode", "detail", "--steps", "8",
                 "--sigma", "25", "--seed", "1", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip())
    assert rec["steps"] == 8 and rec["timestep"] == 56
    with Image.open(tmp_path / "d" / "photo.png") as im:
        result = np.asarray(im, dtype=np.float32) / 255
    assert psnr(result, clean) > psnr(noisy, clean)


def test_denoise_batch_goes_on_past_broken_file(noisy_png, tmp_path, capsys):
    path, _, _ = noisy_png
    (path.parent / "broken.jpg").write_text("not an image")
    code = main(["denoise", str(path.parent), "-o", str(tmp_path / "o"), "--json"])
    lines = [json.loads(s) for s in capsys.readouterr().out.strip().splitlines()]
    assert code == 1
    assert any(r.get("error") and r["path"].endswith("broken.jpg") for r in lines)
    assert (tmp_path / "o" / "photo.png").exists()


def test_denoise_refuses_to_write_onto_inputs(noisy_png, capsys):
    path, _, _ = noisy_png
    before = path.read_bytes()
    assert main(["denoise", str(path), "-o", str(path.parent)]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert path.read_bytes() == before


@pytest.mark.parametrize("args,message", [
    (["--sigma", "abc"], "argument --sigma: must be 'auto' or a number >= 0"),
    (["--sigma", "-4"], "argument --sigma"), (["--sigma", "nan"], "argument --sigma"),
    (["--steps", "0"], "argument --steps: must be a whole number of at least 1"),
    (["--tile", "5"], "argument --tile: must be a whole number of at least 16 pixels")])
def test_bad_option_values_are_refused_before_anything_runs(noisy_png, tmp_path, capsys, args, message):
    """A value no run could use is a usage error naming the option (before: '--sigma abc' ended in a
    traceback and '--tile 5' wrote a mostly black image), and nothing is written."""
    path, _, _ = noisy_png
    with pytest.raises(SystemExit) as exc:
        main(["denoise", str(path), "-o", str(tmp_path / "o"), *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_sigma_auto_is_case_blind_and_a_number_is_used(noisy_png, tmp_path, capsys):
    path, _, _ = noisy_png
    assert main(["denoise", str(path), "-o", str(tmp_path / "a"), "--sigma", "AUTO", "--json"]) == 0
    assert main(["denoise", str(path), "-o", str(tmp_path / "b"), "--sigma", "12.5", "--json"]) == 0
    auto, given = (json.loads(s) for s in capsys.readouterr().out.strip().splitlines())
    assert auto["sigma"] == pytest.approx(25, abs=3) and given["sigma"] == 12.5


def test_output_that_is_a_file_is_refused_and_left_alone(noisy_png, tmp_path, capsys):
    path, _, _ = noisy_png
    target = tmp_path / "result.png"
    target.write_bytes(b"keep me")
    assert main(["denoise", str(path), "-o", str(target)]) == 2
    assert "is a file; the output must be a folder" in capsys.readouterr().err
    assert target.read_bytes() == b"keep me"


def test_an_output_folder_that_cannot_be_made_is_refused_once_before_any_photo(noisy_png, tmp_path, capsys,
                                                                                 monkeypatch):
    """A file where a folder of the output path should be, or a read-only folder above it: one error
    before anything is read (it used to fail each photo with a raw errno, after denoising it)."""
    import desktop_denoiser.pipeline.jobs as jobs

    path, _, _ = noisy_png
    monkeypatch.setattr(jobs, "read_image", lambda p: pytest.fail("a photo was read"))
    assert main(["denoise", str(path), "-o", str(path / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and f"'{path}' is a file, not a folder" in err
    import desktop_denoiser.pipeline.imageio.write as iio_write

    monkeypatch.setattr(iio_write.os, "access", lambda *a, **k: False)  # read-only, even when run as root
    assert main(["denoise", str(path), "-o", str(tmp_path / "ro" / "new")]) == 2
    err = capsys.readouterr().err
    assert "cannot be made: no permission to write into" in err and "read-only" in err
    assert not (tmp_path / "ro").exists()


def test_a_file_name_undecodable_in_the_locale_does_not_stop_the_batch(tmp_path, capsys):
    """Latin-1 bytes in a file name on a UTF-8 system reach Python as lone surrogates; a strict UTF-8
    stdout (pytest's capture is one) refused to print them and the batch stopped at that photo."""
    import os

    folder = tmp_path / "in"
    folder.mkdir()
    image = Image.fromarray((smooth_test_image(32, 32, seed=1) * 255).astype(np.uint8))
    try:
        image.save(os.fsencode(folder) + b"/caf\xe9.png")
    except (OSError, UnicodeError):
        pytest.skip("this file system does not take non-UTF-8 names")
    image.save(folder / "z.png")
    assert main(["estimate", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "caf\\udce9.png: sigma=" in out and "z.png: sigma=" in out
    assert main(["denoise", str(folder), "-o", str(tmp_path / "out"), "--sigma", "5"]) == 0
    captured = capsys.readouterr()
    assert "caf\\udce9.png -> " in captured.out and "2 of 2 photo(s) denoised" in captured.out + captured.err
    assert sorted(os.listdir(os.fsencode(tmp_path / "out"))) == [b"caf\xe9.png", b"z.png"]


def test_train_refuses_what_it_could_not_do_before_any_step(tmp_path, capsys):
    """An --out that is a file, an --export that is a folder or under a file, a device that is not here and
    a zero period were found only after training had run (a traceback, the steps lost)."""
    import torch

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray((smooth_test_image(48, 48, seed=1) * 255).astype(np.uint8)).save(photos / "a.png")
    small = [str(photos), "--batch-size", "2", "--crop", "32", "--base-channels", "8", "--channel-mults", "1",
             "--res-blocks", "1", "--threads", "1", "--steps", "1"]
    a_file = tmp_path / "file"
    a_file.write_text("keep me")
    assert main(["train", *small, "--out", str(a_file)]) == 2
    assert "is a file; it must be a folder" in capsys.readouterr().err
    (tmp_path / "exp").mkdir()
    assert main(["train", *small, "--out", str(tmp_path / "o1"), "--export", str(tmp_path / "exp")]) == 2
    assert "--export" in capsys.readouterr().err and not (tmp_path / "o1").exists()
    assert main(["train", *small, "--out", str(tmp_path / "o2"), "--export", str(a_file / "m.safetensors")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert a_file.read_text() == "keep me"
    if not torch.cuda.is_available():
        assert main(["train", *small, "--out", str(tmp_path / "o3"), "--device", "cuda"]) == 2
        assert "no CUDA GPU is available here" in capsys.readouterr().err
        assert main(["denoise", str(photos), "-o", str(tmp_path / "o3"), "--device", "cuda"]) == 2  # once
        assert capsys.readouterr().err.count("no CUDA GPU is available here") == 1
    for option in ("--save-every", "--val-every"):
        with pytest.raises(SystemExit) as info:
            main(["train", *small, "--out", str(tmp_path / "o4"), option, "0"])
        assert info.value.code == 2 and "at least 1" in capsys.readouterr().err


def test_folders_that_cannot_be_read_are_named(tmp_path, capsys, monkeypatch):
    """A folder without read permission ended estimate and denoise with a traceback, and --recursive left
    the photos of such a sub-folder out without a word. (Permissions are simulated: tests may run as root.)"""
    import os

    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    locked = tmp_path / "locked"
    locked.mkdir()
    for folder in (top, top / "sub", locked):
        Image.fromarray((smooth_test_image(32, 32, seed=2) * 255).astype(np.uint8)).save(folder / "p.png")
    unreadable = {str(top / "sub"), str(locked)}
    real_scandir, real_listdir = os.scandir, os.listdir

    def guard(real):
        def call(path=".", *a, **k):
            if os.fspath(path) in unreadable:
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real(path, *a, **k)
        return call

    monkeypatch.setattr(os, "scandir", guard(real_scandir))
    monkeypatch.setattr(os, "listdir", guard(real_listdir))
    assert main(["estimate", str(locked)]) == 1
    assert "error: Cannot list images in" in capsys.readouterr().err
    assert main(["denoise", str(locked), "-o", str(tmp_path / "out")]) == 2
    assert "Permission denied" in capsys.readouterr().err
    assert main(["estimate", str(top), "--recursive"]) == 0
    captured = capsys.readouterr()
    assert "1 folder(s) under" in captured.err and "could not be read and were left out: sub" in captured.err
    assert "p.png: sigma=" in captured.out
    assert main(["denoise", str(top), "--recursive", "-o", str(tmp_path / "out2"), "--sigma", "5"]) == 0
    assert "could not be read and were left out: sub" in capsys.readouterr().err


def test_denoise_of_a_folder_without_images_says_so(tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("not a photo")
    assert main(["denoise", str(tmp_path / "empty"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no images in" in err and ".png" in err and "--recursive" in err
    assert not (tmp_path / "o").exists()


def test_train_reports_bad_data_and_skips_a_broken_photo(tmp_path, capsys):
    """No photos, photos smaller than the crop or a missing --init are one-line errors (exit 2), not
    tracebacks; a damaged file among good photos is skipped and named, and training goes on."""
    small = ["--batch-size", "2", "--crop", "32", "--base-channels", "8", "--channel-mults", "1", "2",
             "--res-blocks", "1", "--threads", "1", "--steps", "1"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", str(empty), "--out", str(tmp_path / "a"), *small]) == 2
    assert "no training images found in" in capsys.readouterr().err
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray((smooth_test_image(48, 48, seed=i) * 255).astype(np.uint8)).save(photos / f"{i}.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    assert main(["train", str(photos), "--out", str(tmp_path / "b"), *small, "--val", str(empty)]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 unreadable image(s): broken.jpg" in out
    assert f"warning: no readable validation photos in {empty}; this run is not validated" in out
    assert main(["train", str(photos), "--out", str(tmp_path / "c"), *small, "--crop", "64"]) == 2
    assert "no readable training images of at least 64x64 pixels" in capsys.readouterr().err
    assert main(["train", str(photos), "--out", str(tmp_path / "d"), *small,
                 "--init", str(tmp_path / "missing.safetensors")]) == 2
    assert "error: --init: model file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", str(photos), "--out", str(tmp_path / "e"), *small, "--batch-size", "0"])
    assert exc.value.code == 2 and "argument --batch-size" in capsys.readouterr().err
    # a saved state in --out of another network, or a damaged one, is a message; the file is left alone
    assert main(["train", str(photos), "--out", str(tmp_path / "b"), *small, "--base-channels", "16"]) == 2
    assert "was trained with another model/schedule config; use another --out" in capsys.readouterr().err
    state = tmp_path / "b" / "train_state.pt"
    state.write_bytes(b"not a checkpoint")
    assert main(["train", str(photos), "--out", str(tmp_path / "b"), *small]) == 2
    assert "train_state.pt cannot be read to resume from" in capsys.readouterr().err
    assert state.read_bytes() == b"not a checkpoint"


def test_an_output_folder_inside_the_input_folder_is_not_read_as_input(noisy_png, capsys):
    """Run twice on a folder with its output inside it (-o photos/clean --recursive): the second run must not
    take the first run's results for photos (before, it mapped photo.png onto clean/photo.png, an 'input',
    and refused the whole run); it skips clean/ and refuses only to overwrite the existing result."""
    path, _, _ = noisy_png
    out = path.parent / "clean"
    assert main(["denoise", str(path.parent), "-o", str(out), "--recursive", "--json"]) == 0
    first = [json.loads(s) for s in capsys.readouterr().out.strip().splitlines()]
    assert [Path(r["path"]).name for r in first] == ["photo.png"] and (out / "photo.png").exists()
    result = (out / "photo.png").read_bytes()
    assert main(["denoise", str(path.parent), "-o", str(out), "--recursive", "--json"]) == 1
    second = [json.loads(s) for s in capsys.readouterr().out.strip().splitlines()]
    assert len(second) == 1 and second[0]["path"] == str(path) and "already exists" in second[0]["error"]
    assert (out / "photo.png").read_bytes() == result and not (out / "clean").exists()


def test_skip_existing_resumes_a_batch_and_the_refusal_says_how(noisy_png, tmp_path, capsys):
    """A batch stopped half way and run again: without an option each existing result fails (rc 1) and the
    last line names --skip-existing / --overwrite; with --skip-existing those photos are left (rc 0), the
    rest are denoised, and the summary counts both."""
    import shutil

    path, _, _ = noisy_png
    src, out = tmp_path / "batch", tmp_path / "batch_out"
    src.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(path, src / name)
    out.mkdir()
    (out / "a.png").write_bytes(b"result of the stopped run")
    assert main(["denoise", str(src), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "a.png" in err and "1 of 2 photo(s) denoised, 1 failed" in err
    assert "1 result(s) already existed: add --skip-existing" in err and "--overwrite" in err
    (out / "b.png").unlink()
    assert main(["denoise", str(src), "-o", str(out), "--skip-existing", "--json"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(s) for s in captured.out.strip().splitlines()]
    assert lines[0] == {"path": str(src / "a.png"), "output": str(out / "a.png"), "skipped": True}
    assert Path(lines[1]["output"]) == out / "b.png" and (out / "b.png").is_file()
    assert "1 of 2 photo(s) denoised, 1 skipped (their result already existed)" in captured.err
    assert "failed" not in captured.err and (out / "a.png").read_bytes() == b"result of the stopped run"
    with pytest.raises(SystemExit) as exc:  # the two ask for opposite things
        main(["denoise", str(src), "-o", str(out), "--skip-existing", "--overwrite"])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_estimate_takes_folders_like_denoise(noisy_png, tmp_path, capsys):
    path, _, _ = noisy_png
    (path.parent / "sub").mkdir()
    (path.parent / "sub" / "second.png").write_bytes(path.read_bytes())
    assert main(["estimate", str(path.parent), "--json"]) == 0
    rows = [json.loads(s) for s in capsys.readouterr().out.strip().splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["photo.png"] and rows[0]["sigma"] == pytest.approx(25, abs=3)
    assert main(["estimate", str(path.parent), "--recursive", "--json"]) == 0
    rows = [json.loads(s) for s in capsys.readouterr().out.strip().splitlines()]
    assert sorted(Path(r["path"]).name for r in rows) == ["photo.png", "second.png"]
    (path.parent / "broken.png").write_text("not a photo")
    assert main(["estimate", str(path.parent), "--json"]) == 1
    rows = [json.loads(s) for s in capsys.readouterr().out.strip().splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["broken.png", "photo.png"] and "error" in rows[0]
    (path.parent / "broken.png").unlink()
    (tmp_path / "empty").mkdir()
    assert main(["estimate", str(tmp_path / "empty"), str(path)]) == 1
    out = capsys.readouterr()
    assert f"no images in {tmp_path / 'empty'}" in out.err and "photo.png: sigma=" in out.out


def test_a_closed_output_pipe_ends_the_command_quietly(noisy_png, tmp_path, monkeypatch):
    """'desktop-denoiser-cli estimate ... | head -1': once the reader has gone, writing raises BrokenPipeError;
    the command stops with exit code 1 instead of a traceback."""
    path, _, _ = noisy_png
    sink = open(tmp_path / "sink", "w")

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

        def fileno(self):
            return sink.fileno()

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["estimate", str(path)]) == 1
    sink.close()


def test_two_photos_with_one_output_name_are_refused_and_a_photo_given_twice_runs_once(noisy_png, tmp_path,
                                                                                       capsys):
    """a/x.png and b/x.png into one folder: before, the second result silently replaced the first
    (--overwrite) or was denoised and then refused; now nothing runs and the message says why. The same
    photo named twice (as a file and through its folder) is one job."""
    path, _, _ = noisy_png
    other = tmp_path / "other"
    other.mkdir()
    (other / path.name).write_bytes(path.read_bytes())
    assert main(["denoise", str(path), str(other / path.name), "-o", str(tmp_path / "o"), "--overwrite"]) == 2
    assert "would both be saved as" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert main(["denoise", str(path), str(path.parent), "-o", str(tmp_path / "p"), "--json"]) == 0
    rows = [json.loads(s) for s in capsys.readouterr().out.strip().splitlines()]
    assert len(rows) == 1 and "error" not in rows[0]


def test_format_saves_16_bit_tiffs_of_jpegs_with_their_metadata(tmp_path, capsys):
    """--format tif: a JPEG's result is a 16-bit TIFF holding the denoised photo to 1/65535 (an 8-bit copy
    rounds it to 1/255), with the JPEG's EXIF; names follow the new extension, and two photos that would
    share one name are refused with a way out."""
    from desktop_denoiser.pipeline.imageio import read_image

    clean = smooth_test_image(96, 128, seed=3)
    noisy = add_gaussian_noise_8bit(clean, 25, seed=7)
    src = tmp_path / "in"
    src.mkdir()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    Image.fromarray((noisy * 255).round().astype(np.uint8)).save(src / "photo.jpg", quality=97, exif=exif)
    out = tmp_path / "out"
    assert main(["denoise", str(src), "-o", str(out), "--format", "tif", "--json", "--sigma", "25"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["output"] == str(out / "photo.tif") and sorted(p.name for p in out.iterdir()) == ["photo.tif"]
    saved = read_image(out / "photo.tif")
    assert saved.bit_depth == 16 and saved.format == "TIFF"
    assert Image.open(out / "photo.tif").getexif().get(0x010F) == "TestCam"
    levels = np.unique(np.round(saved.pixels[..., 1] * 65535) % 257)
    assert len(levels) > 100  # values between the 8-bit levels: not an 8-bit result widened
    assert psnr(saved.pixels, clean) > psnr(noisy, clean) + 3
    assert main(["denoise", str(src), "-o", str(tmp_path / "j"), "--format", "jpg", "--sigma", "25"]) == 0
    assert read_image(tmp_path / "j" / "photo.jpg").bit_depth == 8
    (src / "photo.png").write_bytes((src / "photo.jpg").read_bytes())  # photo.jpg and photo.png -> photo.tif
    assert main(["denoise", str(src), "-o", str(tmp_path / "t"), "--format", "tif"]) == 2
    err = capsys.readouterr().err
    assert "would both be saved as" in err and "keep each photo's format" in err and not (tmp_path / "t").exists()


def test_camera_raw_files_are_named_and_not_read(noisy_png, tmp_path, capsys):
    """A folder of raw files has "no images" and says they are raw; raw files beside photos are noted as
    left out; a raw file named on its own fails with the way round (before: its TIFF preview was read)."""
    path, _, _ = noisy_png
    raws = tmp_path / "raws"
    raws.mkdir()
    Image.new("RGB", (160, 120)).save(raws / "DSC_0001.NEF", format="TIFF")
    assert main(["denoise", str(raws), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no images in" in err and "1 camera raw or HEIC file(s) left out (DSC_0001.NEF)" in err
    assert main(["estimate", str(raws)]) == 1 and "camera raw" in capsys.readouterr().err
    (path.parent / "DSC_0002.NEF").write_bytes((raws / "DSC_0001.NEF").read_bytes())
    assert main(["denoise", str(path.parent), "-o", str(tmp_path / "p"), "--sigma", "25"]) == 0
    out = capsys.readouterr()
    assert "note: 1 camera raw or HEIC file(s) left out (DSC_0002.NEF)" in out.err and "photo.png" in out.out
    assert main(["denoise", str(raws / "DSC_0001.NEF"), "-o", str(tmp_path / "q")]) == 1
    assert "is a camera raw file" in capsys.readouterr().err and not (tmp_path / "q" / "DSC_0001.NEF").exists()


def test_dry_run_lists_where_results_go_and_denoises_nothing(noisy_png, tmp_path, capsys):
    path, _, _ = noisy_png
    (path.parent / "second.png").write_bytes(path.read_bytes())
    out = tmp_path / "out"
    assert main(["denoise", str(path.parent), "-o", str(out), "--format", "tif", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"{path} -> {out / 'photo.tif'}",
                                         f"{path.parent / 'second.png'} -> {out / 'second.tif'}"]
    assert "dry run: 2 photo(s), 0 result(s) already there" in captured.err and not out.exists()
    out.mkdir()
    (out / "photo.tif").write_bytes(b"earlier result")
    assert main(["denoise", str(path.parent), "-o", str(out), "--format", "tif", "--dry-run", "--json",
                 "--skip-existing"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["result"] for r in rows] == ["skipped", "new"]
    assert main(["denoise", str(path.parent), "-o", str(out), "--format", "tif", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "(exists: fails)" in captured.out and "--skip-existing" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["photo.tif"] and (out / "photo.tif").read_bytes() == b"earlier result"


def test_a_batch_progress_bar_says_which_photo_of_how_many(noisy_png, tmp_path, monkeypatch, capsys):
    import desktop_denoiser.cli as cli

    path, _, _ = noisy_png
    (path.parent / "second.png").write_bytes(path.read_bytes())
    labels = []

    class Recording(cli.ProgressBar):
        def __init__(self, total, label="", **kw):
            labels.append(label)
            super().__init__(total, label, **kw)

    monkeypatch.setattr(cli, "ProgressBar", Recording)
    capsys.readouterr()
    assert main(["denoise", str(path.parent), "-o", str(tmp_path / "o")]) == 0
    assert labels == ["1/2 photo.png", "2/2 second.png"]
    assert capsys.readouterr().err.strip().splitlines()[-1] == "2 of 2 photo(s) denoised"
    (path.parent / "third.png").write_text("not a photo")
    assert main(["denoise", str(path.parent), "-o", str(tmp_path / "q")]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "2 of 3 photo(s) denoised, 1 failed"
    (path.parent / "third.png").unlink()
    labels.clear()
    assert main(["denoise", str(path), "-o", str(tmp_path / "p")]) == 0
    assert labels == ["photo.png"]


def _raw_export_png(tmp_path, gain: float):
    """A synthetic raw file's lossless export with sensor noise of ``gain``: (path, reference, noisy)."""
    from desktop_denoiser.bench.camera import raw_pipeline

    clean = smooth_test_image(192, 256, seed=8)
    reference, noisy = raw_pipeline(clean, gain, 2, noise=False), raw_pipeline(clean, gain, 2)
    path = tmp_path / "raw.png"
    Image.fromarray(np.round(noisy * 255).astype(np.uint8)).save(path)
    return path, reference, noisy


def test_lossless_raw_export_gets_the_camera_noise_note(tmp_path, capsys):
    """Noise demosaiced from a raw mosaic and saved as PNG reads as detail (a known limit): estimate and
    denoise say so and name --noise real, which then removes most of it."""
    path, reference, noisy = _raw_export_png(tmp_path, 0.006)
    assert main(["estimate", str(path), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip())
    assert rec["suggest_camera_noise"] is True and not rec["correlated"]
    assert main(["estimate", str(path)]) == 0
    assert "try --noise real" in capsys.readouterr().out
    assert main(["denoise", str(path), "-o", str(tmp_path / "auto")]) == 0
    assert "run it again with --noise real" in capsys.readouterr().out
    assert main(["denoise", str(path), "-o", str(tmp_path / "cam"), "--noise", "real", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rec["suggest_camera_noise"] is False
    out = np.asarray(Image.open(tmp_path / "cam" / "raw.png"), np.float32) / 255
    assert psnr(out, reference) > psnr(noisy, reference) + 5


def test_module_entry_point_help():
    r = subprocess.run([sys.executable, "-m", "desktop_denoiser.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "denoise" in r.stdout and "estimate" in r.stdout


def test_train_then_fine_tune_with_init(tmp_path, capsys):
    from desktop_denoiser.core.checkpoint import load_model

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray((smooth_test_image(48, 48, seed=i) * 255).astype(np.uint8)).save(photos / f"{i}.png")
    small = ["--batch-size", "2", "--crop", "32", "--base-channels", "8", "--channel-mults", "1", "2",
             "--res-blocks", "1", "--threads", "1"]
    first = tmp_path / "first.safetensors"
    assert main(["train", str(photos), "--out", str(tmp_path / "a"), "--steps", "2", *small,
                 "--export", str(first)]) == 0
    # --init takes the architecture from the file: the (different) --base-channels default is ignored
    second = tmp_path / "second.safetensors"
    assert main(["train", str(photos), "--out", str(tmp_path / "b"), "--steps", "2", "--init", str(first),
                 "--clip-prob", "0.5", "--batch-size", "2", "--crop", "32", "--export", str(second)]) == 0
    lm = load_model(second)
    assert lm.model.config.base_channels == 8 and lm.info["init"] == "first.safetensors"
    assert lm.info["steps"] == 2 and lm.info["clip_prob"] == 0.5


def test_denoise_with_explicit_precision(noisy_png, tmp_path, capsys):
    path, clean, noisy = noisy_png
    for precision in ("fp32", "bf16"):
        out_dir = tmp_path / precision
        assert main(["denoise", str(path), "-o", str(out_dir), "--precision", precision, "--sigma", "25"]) == 0
        out = np.asarray(Image.open(out_dir / path.name), np.float32) / 255
        assert psnr(out, clean) > psnr(noisy, clean) + 3


def test_denoise_with_the_fast_network(noisy_png, tmp_path, capsys):
    path, clean, noisy = noisy_png
    assert main(["denoise", str(path), "-o", str(tmp_path / "fast"), "--network", "fast", "--sigma", "25",
                 "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rec["network"] == "fast"
    out = np.asarray(Image.open(tmp_path / "fast" / path.name), np.float32) / 255
    assert psnr(out, clean) > psnr(noisy, clean) + 3


def test_cli_choices_and_defaults_match_the_library():
    """The CLI spells out choices and defaults so that --help needs no torch import; keep them in step."""
    from desktop_denoiser.cli import build_parser
    from desktop_denoiser.core.denoise import ENSEMBLE_SIZES
    from desktop_denoiser.core.diffusion import OBJECTIVES
    from desktop_denoiser.core.training import TRAIN_PRECISIONS, TrainConfig
    from desktop_denoiser.pipeline.devices import NETWORKS, PRECISIONS
    from desktop_denoiser.pipeline.imageio import OUTPUT_FORMATS
    from desktop_denoiser.pipeline.jobs import NOISE_MODELS, DenoiseOptions

    sub = build_parser()._subparsers._group_actions[0].choices
    denoise = {a.dest: a for a in sub["denoise"]._actions}
    assert tuple(denoise["precision"].choices) == PRECISIONS
    assert tuple(denoise["network"].choices) == NETWORKS and denoise["network"].default == DenoiseOptions().network
    assert tuple(denoise["noise"].choices) == NOISE_MODELS
    assert tuple(denoise["ensemble"].choices) == ENSEMBLE_SIZES
    assert tuple(denoise["format"].choices) == tuple(OUTPUT_FORMATS) and denoise["format"].default == "same"
    train = {a.dest: a.default for a in sub["train"]._actions}
    cfg = TrainConfig()
    assert tuple(sub["train"]._option_string_actions["--precision"].choices) == TRAIN_PRECISIONS
    assert tuple(sub["train"]._option_string_actions["--objective"].choices) == OBJECTIVES
    for flag, field in [("clip_prob", "clip_prob"), ("corr_prob", "corr_prob"), ("color_prob", "color_prob"),
                        ("time_limit", "time_limit"), ("precision", "precision"), ("focus_sigma", "focus_sigma"),
                        ("focus_prob", "focus_prob"), ("crop", "crop_size"), ("lr", "lr"), ("steps", "steps"),
                        ("batch_size", "batch_size"), ("objective", "objective"), ("min_snr_gamma", "min_snr_gamma")]:
        assert train[flag] == getattr(cfg, field), flag


def test_progress_bar_fills_with_a_step_part_way_through_its_tiles():
    import io

    from desktop_denoiser.cli import ProgressBar

    out = io.StringIO()
    bar = ProgressBar(1, "big.jpg", stream=out, enabled=True)
    bar.update(0 + 6 / 12, "tile 6/12")
    assert "[" + "#" * 15 + "." * 15 + "] 0/1" in out.getvalue() and "tile 6/12" in out.getvalue()
    bar.update(1, "t=44")
    assert "[" + "#" * 30 + "] 1/1" in out.getvalue()


def test_strong_raw_export_noise_is_removed_and_the_note_names_the_way_back(tmp_path, capsys):
    """Strong demosaiced noise in a PNG is camera noise for Auto (core.noise_analysis.MOSAIC_AUTO_SIGMA):
    estimate and denoise say it was taken as camera noise and name --noise gaussian for smeared texture."""
    path, reference, noisy = _raw_export_png(tmp_path, 0.02)
    assert main(["estimate", str(path), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip())
    assert rec["correlated"] and rec["mosaic_noise"] is True and rec["suggest_camera_noise"] is False
    assert main(["estimate", str(path)]) == 0
    assert "denoise it with --noise gaussian" in capsys.readouterr().out
    assert main(["denoise", str(path), "-o", str(tmp_path / "auto"), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rec["mosaic_noise"] is True and rec["network"] == "camera"
    out = np.asarray(Image.open(tmp_path / "auto" / "raw.png"), np.float32) / 255
    assert psnr(out, reference) > psnr(noisy, reference) + 8
    assert main(["denoise", str(path), "-o", str(tmp_path / "white"), "--noise", "gaussian"]) == 0
    text = capsys.readouterr().out
    assert "--noise gaussian" not in text and "camera" not in text.split("network=")[1]


def test_a_batch_label_says_the_time_left_of_the_whole_batch(noisy_png, tmp_path, monkeypatch):
    """From the second photo on, the bar's label gives the batch's time left from the rate so far; photos
    skipped (their result exists) count neither as work done nor as work left."""
    import shutil

    from desktop_denoiser import cli
    from desktop_denoiser.pipeline import progress

    path, _, _ = noisy_png
    src, out = tmp_path / "many", tmp_path / "many_out"
    src.mkdir()
    for name in ("a.png", "b.png", "c.png", "d.png"):
        shutil.copy(path, src / name)
    out.mkdir()
    (out / "a.png").write_bytes(b"earlier")
    labels = []

    class Recording(cli.ProgressBar):
        def __init__(self, total, label="", **kw):
            labels.append(label)
            super().__init__(total, label, enabled=False)

    ticks = iter(range(0, 1000, 10))  # 10 s pass between two readings of the clock

    class FakeClock(progress.TimeLeft):
        def __init__(self):
            super().__init__(lambda: float(next(ticks)))

    monkeypatch.setattr(cli, "ProgressBar", Recording)
    monkeypatch.setattr(progress, "TimeLeft", FakeClock)
    assert main(["denoise", str(src), "-o", str(out), "--skip-existing"]) == 0
    # b: nothing done yet; c: b done in 20 s (two readings), c and d left; d: 2 done in 30 s, 1 left
    assert labels == ["2/4 b.png", "3/4 c.png (batch: about 40 s left)", "4/4 d.png (batch: about 15 s left)"]


def test_a_full_disk_stops_the_batch_and_says_how_to_go_on(noisy_png, tmp_path, monkeypatch, capsys):
    import errno
    import shutil

    from desktop_denoiser.pipeline.imageio import write as iio_write

    path, _, _ = noisy_png
    src = tmp_path / "full"
    src.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        shutil.copy(path, src / name)

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(iio_write.os, "fsync", full)
    assert main(["denoise", str(src), "-o", str(tmp_path / "full_out")]) == 1
    err = capsys.readouterr().err
    assert "a.png" in err and "is full" in err and "2 photo(s) not started" in err and "--skip-existing" in err
    assert "0 of 3 photo(s) denoised, 1 failed" in err


def test_a_photo_too_small_to_measure_is_told_to_give_sigma(tmp_path, capsys):
    """The core's message no longer names a front end's option: the CLI adds its own (--sigma)."""
    Image.fromarray(np.full((10, 10, 3), 128, np.uint8)).save(tmp_path / "tiny.png")
    assert main(["denoise", str(tmp_path / "tiny.png"), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "too small to measure its noise level" in err and err.count("give --sigma to denoise it") == 1
    assert main(["denoise", str(tmp_path / "tiny.png"), "-o", str(tmp_path / "out"), "--sigma", "10"]) == 0
