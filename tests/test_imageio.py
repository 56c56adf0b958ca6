"""Tests for desktop_denoiser.pipeline.imageio (generated images only, all in tmp_path)."""

from __future__ import annotations

import errno
import os
import stat

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from desktop_denoiser.pipeline import imageio as iio
from desktop_denoiser.pipeline.imageio import read as iio_read, tiff as iio_tiff, write as iio_write
from desktop_denoiser.pipeline.imageio import (
    ImageReadError,
    DiskFullError,
    ImageWriteError,
    LoadedImage,
    OutputExistsError,
    check_destination,
    list_images,
    output_path_for,
    read_image,
    write_image,
)

H, W = 24, 32


def gradient(h: int = H, w: int = W) -> np.ndarray:
    """Smooth RGB test image in [0, 1] (friendly to lossy codecs)."""
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    return np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w)), (x + y) / 2], axis=2)


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def camera_exif(orientation: int | None = None) -> bytes:
    ex = Image.Exif()
    ex[0x010F] = "TestMake"
    ex[0x0110] = "TestModel X1"
    if orientation is not None:
        ex[0x0112] = orientation
    return ex.tobytes()


def exif_dict(blob: bytes | None) -> dict:
    assert blob
    ex = Image.Exif()
    ex.load(blob)
    return dict(ex)


def files_in(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix,fmt,tol",
    [
        (".png", "PNG", 0.5 / 255 + 1e-6),
        (".tif", "TIFF", 0.5 / 255 + 1e-6),
        (".bmp", "BMP", 0.5 / 255 + 1e-6),
        (".jpg", "JPEG", 0.05),
        (".webp", "WEBP", 0.08),
    ],
)
def test_round_trip_8bit(tmp_path, suffix, fmt, tol):
    px = gradient()
    out = write_image(tmp_path / f"img{suffix}", px)
    img = read_image(out)
    assert img.format == fmt
    assert img.bit_depth == 8
    assert img.size == (W, H)
    assert img.pixels.shape == (H, W, 3) and img.pixels.dtype == np.float32
    assert not img.is_gray
    assert img.path == out
    assert np.abs(img.pixels - px).max() <= tol
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).dtype == np.uint8


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_round_trip_16bit_is_really_16bit(tmp_path, suffix):
    # Fine ramp: neighbouring pixels differ by exactly one 16-bit step.
    k = (np.arange(H * W * 3, dtype=np.int64).reshape(H, W, 3) * 7 + 1000) % 65536
    px = (k / 65535.0).astype(np.float32)
    out = write_image(tmp_path / f"ramp{suffix}", px, bit_depth=16)

    raw = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    assert np.array_equal(raw[:, :, ::-1], k.astype(np.uint16))  # BGR on disk via OpenCV

    img = read_image(out)
    assert img.bit_depth == 16
    assert np.array_equal(np.rint(img.pixels * 65535).astype(np.int64), k)

    # 16-bit is kept by default when writing "like" the loaded image.
    again = write_image(tmp_path / f"again{suffix}", img.pixels, like=img)
    assert cv2.imread(str(again), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert np.array_equal(read_image(again).pixels, img.pixels)


@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_reads_16bit_written_by_opencv(tmp_path, ext):
    k = np.random.default_rng(5).integers(0, 65536, size=(H, W, 3)).astype(np.uint16)
    ok, buf = cv2.imencode(ext, k[:, :, ::-1])  # OpenCV's own 16-bit files (TIFF: LZW)
    p = tmp_path / f"cv{ext}"
    p.write_bytes(buf.tobytes())
    img = read_image(p)
    assert img.bit_depth == 16 and img.mode.endswith(";16")
    assert np.array_equal(np.rint(img.pixels * 65535).astype(np.uint16), k)


def test_unsupported_16bit_gray_alpha_tiff_is_an_error_not_silent_loss(tmp_path):
    ga = np.zeros((H, W, 2), np.uint16)
    p = tmp_path / "ga16.tif"
    p.write_bytes(iio_tiff._encode_tiff(ga, True, True, None, None))
    with pytest.raises(ImageReadError, match="ga16.tif.*not support"):
        read_image(p)
    # ...which is why the writer stores 16-bit gray+alpha as RGBA.
    alpha = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
    img = read_image(write_image(tmp_path / "ok.tif", gradient()[:, :, :1], alpha=alpha, bit_depth=16))
    assert img.bit_depth == 16 and np.abs(img.alpha - alpha).max() < 1e-5


def test_round_trip_float_tiff(tmp_path):
    px = gradient()
    out = write_image(tmp_path / "f.tif", px, bit_depth=32)
    img = read_image(out)
    assert img.bit_depth == 32
    assert np.array_equal(img.pixels, px)


def test_rounds_instead_of_truncating(tmp_path):
    px = np.full((4, 4, 3), 0.8 / 255, dtype=np.float32)  # truncation would give 0
    px[0, 0] = 1.7  # clipped to 1
    px[0, 1] = -0.3  # clipped to 0
    out = write_image(tmp_path / "r.png", px)
    raw = np.asarray(Image.open(out))
    assert raw[1, 1, 0] == 1
    assert raw[0, 0, 0] == 255 and raw[0, 1, 0] == 0


@pytest.mark.parametrize("suffix,depth", [(".png", 8), (".png", 16), (".tif", 32)])
def test_non_finite_values_are_written_as_black_or_white_and_the_array_is_left_alone(tmp_path, suffix, depth):
    px = gradient()
    px[0, 0], px[0, 1], px[0, 2] = np.nan, np.inf, -np.inf
    kept = px.copy()
    img = read_image(write_image(tmp_path / f"n{suffix}", px, bit_depth=depth))
    assert np.isfinite(img.pixels).all()
    assert img.pixels[0, 0].tolist() == [0, 0, 0] and img.pixels[0, 1].tolist() == [1, 1, 1]
    assert img.pixels[0, 2].tolist() == [0, 0, 0]
    np.testing.assert_allclose(img.pixels[1:], px[1:], atol=0.5 / 255)
    assert np.array_equal(px, kept, equal_nan=True)


@pytest.mark.parametrize(
    "suffix,depth,pil_modes",
    [
        (".png", 8, ("L",)),
        (".png", 16, ("I;16", "I;16B", "I")),
        (".tif", 8, ("L",)),
        (".tif", 16, ("I;16", "I;16B", "I;16L")),
        (".jpg", 8, ("L",)),
    ],
)
def test_grayscale_stays_grayscale(tmp_path, suffix, depth, pil_modes):
    px = gradient()[:, :, :1]
    out = write_image(tmp_path / f"g{suffix}", px, bit_depth=depth)
    with Image.open(out) as im:
        assert im.mode in pil_modes
    img = read_image(out)
    assert img.is_gray and img.pixels.shape == (H, W, 1)
    assert img.bit_depth == depth
    tol = 0.03 if suffix == ".jpg" else 0.5 / (2**depth - 1) + 1e-6
    assert np.abs(img.pixels - px).max() <= tol
    # A plain HxW array is accepted too.
    out2 = write_image(tmp_path / f"g2{suffix}", px[:, :, 0], bit_depth=depth)
    assert read_image(out2).is_gray


@pytest.mark.parametrize(
    "suffix,depth", [(".png", 8), (".png", 16), (".tif", 8), (".tif", 16)]
)
def test_rgba_alpha_preserved_exactly(tmp_path, suffix, depth):
    maxval = 2**depth - 1
    rng = np.random.default_rng(1)
    a_int = rng.integers(0, maxval + 1, size=(H, W))
    alpha = (a_int / maxval).astype(np.float32)
    px = gradient()
    out = write_image(tmp_path / f"a{suffix}", px, alpha=alpha, bit_depth=depth)
    img = read_image(out)
    assert img.alpha is not None and img.alpha.shape == (H, W)
    assert np.array_equal(np.rint(img.alpha * maxval).astype(np.int64), a_int)
    assert img.pixels.shape == (H, W, 3)
    # Re-attached on save when writing "like" the loaded image.
    again = read_image(write_image(tmp_path / f"b{suffix}", img.pixels, like=img))
    assert np.array_equal(again.alpha, img.alpha)


def test_gray_alpha_and_webp_alpha(tmp_path):
    rng = np.random.default_rng(2)
    alpha = (rng.integers(0, 256, size=(H, W)) / 255).astype(np.float32)
    la = read_image(write_image(tmp_path / "la.png", gradient()[:, :, :1], alpha=alpha))
    assert la.is_gray and np.array_equal(la.alpha, alpha)
    webp = read_image(write_image(tmp_path / "a.webp", gradient(), alpha=alpha, jpeg_quality=100))
    assert np.array_equal(webp.alpha, alpha)  # quality 100 -> lossless WebP
    assert np.abs(webp.pixels - gradient()).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize(
    "suffix,depth",
    [(".jpg", 8), (".png", 8), (".png", 16), (".tif", 8), (".tif", 16), (".webp", 8)],
)
def test_exif_and_icc_survive(tmp_path, suffix, depth):
    icc = srgb_icc()
    src = write_image(
        tmp_path / f"src{suffix}", gradient(), exif=camera_exif(), icc_profile=icc, bit_depth=depth
    )
    loaded = read_image(src)
    assert loaded.icc_profile == icc
    tags = exif_dict(loaded.exif)
    assert tags[0x010F] == "TestMake" and tags[0x0110] == "TestModel X1"

    out = write_image(output_path_for(src), loaded.pixels, like=loaded)
    with Image.open(out) as im:  # check with plain Pillow too
        assert im.info.get("icc_profile") == icc
        assert im.getexif()[0x0110] == "TestModel X1"
    back = read_image(out)
    assert back.icc_profile == icc
    assert exif_dict(back.exif)[0x010F] == "TestMake"
    assert back.bit_depth == depth

    # exif=None / icc_profile=None drop them explicitly.
    bare = read_image(write_image(tmp_path / f"bare{suffix}", loaded.pixels, like=loaded,
                                  exif=None, icc_profile=None))
    assert bare.icc_profile is None
    assert bare.exif is None or 0x010F not in exif_dict(bare.exif)


def test_exif_orientation_6_applied_on_read(tmp_path):
    arr = np.zeros((H, W, 3), dtype=np.uint8)
    arr[:8, :8] = 255  # white block in the stored top-left corner
    p = tmp_path / "rot.jpg"
    Image.fromarray(arr).save(p, quality=95, exif=camera_exif(orientation=6))
    img = read_image(p)
    assert img.size == (H, W)  # width and height swapped
    # Orientation 6 = rotate 90 degrees clockwise: top-left goes to top-right.
    assert img.pixels[:4, -4:].mean() > 0.9
    assert img.pixels[:4, :4].mean() < 0.1
    tags = exif_dict(img.exif)
    assert tags[0x0112] == 1
    assert tags[0x010F] == "TestMake"
    # Written back, the image is upright and stays upright.
    again = read_image(write_image(tmp_path / "rot_out.jpg", img.pixels, like=img))
    assert again.size == (H, W) and again.pixels[:4, -4:].mean() > 0.9


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("suffix,depth", [(".png", 8), (".png", 16), (".tif", 16)])
def test_all_orientations_match_pillow(tmp_path, orientation, suffix, depth):
    rng = np.random.default_rng(orientation)
    q = rng.integers(0, 256, size=(5, 7, 3)).astype(np.uint8)
    p = write_image(tmp_path / f"o{suffix}", q / 255.0, bit_depth=depth,
                    exif=camera_exif(orientation=orientation))
    pil = Image.fromarray(q)
    pil.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(pil)).astype(np.float32) / 255
    img = read_image(p)
    assert img.pixels.shape == expected.shape
    assert np.abs(img.pixels - expected).max() < 1e-4
    assert exif_dict(img.exif)[0x0112] == 1


# --------------------------------------------------------------------------
# special inputs
# --------------------------------------------------------------------------


def test_palette_inputs_load_as_rgb(tmp_path):
    rgb = (gradient() * 255).astype(np.uint8)
    pal = Image.fromarray(rgb).quantize(16)
    pal.save(tmp_path / "p.png")
    img = read_image(tmp_path / "p.png")
    assert img.mode == "P" and img.pixels.shape == (H, W, 3) and img.alpha is None
    assert np.abs(img.pixels - np.asarray(pal.convert("RGB")) / 255).max() < 1e-6

    pal.save(tmp_path / "pt.png", transparency=0)
    img = read_image(tmp_path / "pt.png")
    assert img.pixels.shape == (H, W, 3) and img.alpha is not None
    idx = np.asarray(pal)
    assert np.array_equal(img.alpha == 0, idx == 0)

    pal.save(tmp_path / "p.bmp")
    assert read_image(tmp_path / "p.bmp").pixels.shape == (H, W, 3)


@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
def test_cmyk_loads_as_rgb(tmp_path, suffix):
    cmyk = Image.new("CMYK", (W, H), (0, 255, 255, 0))  # pure red
    cmyk.save(tmp_path / f"c{suffix}")
    img = read_image(tmp_path / f"c{suffix}")
    assert img.mode == "CMYK"
    assert img.pixels.shape == (H, W, 3)
    assert img.pixels[..., 0].mean() > 0.9 and img.pixels[..., 1:].mean() < 0.1
    assert img.icc_profile is None or img.icc_profile[16:20] == b"RGB "
    write_image(tmp_path / "c_out.jpg", img.pixels, like=img)


def test_unicode_file_name_round_trip(tmp_path):
    folder = tmp_path / "Fotos été"
    folder.mkdir()
    for name, depth in [("café_ß_写真.png", 8), ("café_ß_写真16.png", 16), ("写真.tif", 16)]:
        out = write_image(folder / name, gradient(), bit_depth=depth)
        assert out.name == name and out.exists()
        img = read_image(out)
        assert img.bit_depth == depth and img.size == (W, H)
    assert [p.name for p in list_images(folder)] == sorted(["café_ß_写真.png", "café_ß_写真16.png", "写真.tif"])


# --------------------------------------------------------------------------
# read errors
# --------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="nothere.jpg.*does not exist"):
        read_image(tmp_path / "nothere.jpg")


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.png.*0 bytes"):
        read_image(tmp_path / "empty.png")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.jpg").write_text("this is just text, not a photo\n" * 20)
    with pytest.raises(ImageReadError, match="notes.jpg.*not an image"):
        read_image(tmp_path / "notes.jpg")


def test_folder_is_not_an_image(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path / "dir.png")


@pytest.mark.parametrize(
    "suffix,depth", [(".jpg", 8), (".png", 8), (".png", 16), (".tif", 8), (".tif", 16), (".webp", 8)]
)
def test_truncated_file(tmp_path, suffix, depth):
    rng = np.random.default_rng(3)
    noisy = rng.random((64, 64, 3)).astype(np.float32)  # incompressible -> big payload
    full = write_image(tmp_path / f"full{suffix}", noisy, bit_depth=depth)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=f"cut{suffix}.*(damaged|incomplete)"):
        read_image(cut)


def test_decompression_bomb(tmp_path, monkeypatch):
    out = write_image(tmp_path / "big.png", gradient())
    monkeypatch.setattr(iio_read, "MAX_PIXELS", 100)
    with pytest.raises(ImageReadError, match="big.png.*decompression bomb"):
        read_image(out)
    out16 = write_image(tmp_path / "big16.tif", gradient(), bit_depth=32)
    with pytest.raises(ImageReadError, match="decompression bomb"):
        read_image(out16)


def test_permission_denied(tmp_path):
    p = write_image(tmp_path / "secret.png", gradient())
    os.chmod(p, 0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running with privileges that ignore file permissions")
        with pytest.raises(ImageReadError, match="secret.png.*permission"):
            read_image(p)
    finally:
        os.chmod(p, 0o644)


def test_permission_denied_simulated(tmp_path, monkeypatch):
    # Works even as root, where chmod does not stop reading.
    p = write_image(tmp_path / "locked.png", gradient())

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(iio_read, "open", denied, raising=False)
    with pytest.raises(ImageReadError, match="locked.png.*permission denied"):
        read_image(p)


# --------------------------------------------------------------------------
# write safety
# --------------------------------------------------------------------------


def test_refuses_to_overwrite_input(tmp_path):
    src = write_image(tmp_path / "in.png", gradient())
    img = read_image(src)
    for target in (src, tmp_path / "sub" / ".." / "in.png", str(src)):
        with pytest.raises(ImageWriteError, match="input"):
            write_image(target, img.pixels, like=img, overwrite=True)
    with pytest.raises(ImageWriteError, match="input"):
        write_image(src, img.pixels, protect=[src], overwrite=True)
    link = tmp_path / "link.png"
    try:
        os.symlink(src, link)
    except (OSError, NotImplementedError):
        pass
    else:
        with pytest.raises(ImageWriteError, match="input"):
            write_image(link, img.pixels, protect=[src], overwrite=True)
    assert np.array_equal(read_image(src).pixels, img.pixels)  # untouched


def test_refuses_existing_file_unless_overwrite(tmp_path):
    target = tmp_path / "out.png"
    write_image(target, gradient())
    with pytest.raises(OutputExistsError, match="already exists"):  # an ImageWriteError a batch can skip
        write_image(target, np.zeros((H, W, 3), np.float32))
    with pytest.raises(OutputExistsError, match="already exists"):
        check_destination(target)
    assert issubclass(OutputExistsError, ImageWriteError)
    assert read_image(target).pixels.max() > 0.5
    write_image(target, np.zeros((H, W, 3), np.float32), overwrite=True)
    assert read_image(target).pixels.max() == 0
    assert files_in(tmp_path) == ["out.png"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_no_temp_file_left_after_failed_write(tmp_path, monkeypatch, overwrite):
    def boom(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(iio_write.os, "fsync", boom)
    with pytest.raises(ImageWriteError, match="x.png.*space"):
        write_image(tmp_path / "x.png", gradient(), overwrite=overwrite)
    assert files_in(tmp_path) == []
    monkeypatch.undo()

    monkeypatch.setattr(iio_write.os, "replace", boom)
    monkeypatch.setattr(iio_write.os, "link", boom)
    with pytest.raises(ImageWriteError):
        write_image(tmp_path / "y.tif", gradient(), overwrite=overwrite)
    assert files_in(tmp_path) == []


def test_written_file_permissions_are_normal(tmp_path):
    out = write_image(tmp_path / "perm.png", gradient())
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


def test_missing_output_folder(tmp_path):
    with pytest.raises(ImageWriteError, match="does not exist"):
        write_image(tmp_path / "nope" / "a.png", gradient())


def test_read_only_output_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running with privileges that ignore folder permissions")
        with pytest.raises(ImageWriteError, match="a.png.*permission"):
            write_image(ro / "a.png", gradient())
        assert files_in(ro) == []
    finally:
        os.chmod(ro, 0o755)


def test_read_only_output_folder_simulated(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(iio_write.tempfile, "mkstemp", denied)
    with pytest.raises(ImageWriteError, match="a.png.*permission.*read-only"):
        write_image(tmp_path / "a.png", gradient())
    monkeypatch.undo()
    monkeypatch.setattr(iio_write.os, "access", lambda *a, **k: False)
    with pytest.raises(ImageWriteError, match="b.png.*permission.*read-only"):
        write_image(tmp_path / "b.png", gradient())
    assert files_in(tmp_path) == []


def test_an_output_folder_that_cannot_be_made(tmp_path, monkeypatch):
    """check_destination(make_folder=True) / check_output_folder say why a missing folder cannot be made
    (a file in its path, a read-only folder above it), and make_output_folder turns the OSError into an
    ImageWriteError."""
    blocker = write_image(tmp_path / "photo.png", gradient())
    target = blocker / "sub" / "a.png"
    for check in (lambda: check_destination(target, make_folder=True),
                  lambda: iio.check_output_folder(target.parent), lambda: iio.make_output_folder(target)):
        with pytest.raises(ImageWriteError, match="is a file, not a folder"):
            check()
    with pytest.raises(ImageWriteError, match="does not exist"):
        check_destination(tmp_path / "new" / "a.png")  # without make_folder, as write_image asks
    check_destination(tmp_path / "new" / "deeper" / "a.png", make_folder=True)  # can be made: fine
    iio.check_output_folder(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # checks make nothing
    with pytest.raises(ImageWriteError, match="is a file, not a folder"):
        iio.check_output_folder(blocker)
    monkeypatch.setattr(iio_write.os, "access", lambda *a, **k: False)
    for check in (lambda: check_destination(tmp_path / "new" / "a.png", make_folder=True),
                  lambda: iio.check_output_folder(tmp_path / "new"), lambda: iio.check_output_folder(tmp_path)):
        with pytest.raises(ImageWriteError, match="no permission to write into.*read-only"):
            check()
    monkeypatch.undo()
    iio.make_output_folder(tmp_path / "new" / "deeper" / "a.png")
    assert (tmp_path / "new" / "deeper").is_dir()


def test_a_lossless_webp_is_written_back_lossless(tmp_path):
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "lossless.webp", lossless=True)
    Image.fromarray(pixels).save(tmp_path / "lossy.webp", quality=80)
    img = read_image(tmp_path / "lossless.webp")
    assert img.lossless and np.array_equal(np.round(img.pixels * 255).astype(np.uint8), pixels)
    (tmp_path / "out").mkdir()
    out = write_image(tmp_path / "out" / "lossless.webp", img.pixels, like=img)
    assert b"VP8L" in out.read_bytes()[:64]
    assert np.array_equal(read_image(out).pixels, img.pixels)  # exact, as PNG would be
    lossy = read_image(tmp_path / "lossy.webp")
    assert not lossy.lossless
    assert b"VP8 " in write_image(tmp_path / "out" / "lossy.webp", lossy.pixels, like=lossy).read_bytes()[:64]
    assert not read_image(write_image(tmp_path / "out" / "x.png", img.pixels, like=img)).lossless


def test_32_bit_integer_tiff_is_refused_not_clipped(tmp_path):
    """Pillow opens 32-bit integer TIFFs as mode "I"; values beyond 16 bits used to be clipped to white."""
    big = np.linspace(0, 200000, 64 * 64).reshape(64, 64).astype(np.int32)
    Image.fromarray(big).save(tmp_path / "i32.tif")
    with pytest.raises(ImageReadError, match="i32.tif.*32-bit integer values \\(0 to 200000\\)"):
        read_image(tmp_path / "i32.tif")
    small = (big // 4).astype(np.int32)  # 0..50000: 16-bit values in a 32-bit file are read as 16-bit
    Image.fromarray(small).save(tmp_path / "i32small.tif")
    img = read_image(tmp_path / "i32small.tif")
    assert img.bit_depth == 16 and np.allclose(img.pixels[:, :, 0] * 65535, small, atol=0.5)


def test_a_truncated_tiff_whose_directory_is_lost_is_called_damaged(tmp_path):
    """OpenCV writes the tag directory at the end: cut in half, the file was described as an unsupported
    TIFF variant with made-up properties ("8-bit colour, 1 channels")."""
    data = np.random.default_rng(0).integers(0, 65535, (128, 128, 3)).astype(np.uint16)
    assert cv2.imwrite(str(tmp_path / "full.tif"), data)
    full = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(full[: len(full) // 2])
    with pytest.raises(ImageReadError, match="cut.tif.*damaged or incomplete") as info:
        read_image(tmp_path / "cut.tif")
    assert "variant" not in str(info.value)


def test_write_argument_checks(tmp_path):
    with pytest.raises(ImageWriteError, match="JPEG.*16-bit"):
        write_image(tmp_path / "a.jpg", gradient(), bit_depth=16)
    with pytest.raises(ImageWriteError, match="extension"):
        write_image(tmp_path / "a.xyz", gradient())
    with pytest.raises(ImageWriteError, match="shape"):
        write_image(tmp_path / "a.png", np.zeros((4, 4, 5), np.float32))
    with pytest.raises(ImageWriteError, match="alpha"):
        write_image(tmp_path / "a.png", gradient(), alpha=np.ones((2, 2), np.float32))
    # Explicit format wins; 16-bit "like" becomes 8-bit for JPEG.
    img16 = read_image(write_image(tmp_path / "s.png", gradient(), bit_depth=16))
    out = write_image(tmp_path / "t.jpg", img16.pixels, like=img16)
    assert read_image(out).format == "JPEG" and read_image(out).bit_depth == 8
    out = write_image(tmp_path / "u.dat", gradient(), format="png")
    assert read_image(out).format == "PNG"
    assert files_in(tmp_path) == ["s.png", "t.jpg", "u.dat"]


# --------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------


def test_output_path_for(tmp_path):
    src = tmp_path / "photos" / "IMG_0001.JPG"
    assert output_path_for(src) == tmp_path / "photos" / "IMG_0001_denoised.JPG"
    assert output_path_for(src, suffix="_clean") == tmp_path / "photos" / "IMG_0001_clean.JPG"
    assert output_path_for(src, tmp_path / "out") == tmp_path / "out" / "IMG_0001.JPG"
    assert output_path_for(src, tmp_path / "photos") == tmp_path / "photos" / "IMG_0001_denoised.JPG"


def test_list_images(tmp_path):
    for name in ["b.JPG", "a.png", "c.tiff", "d.TIF", "e.webp", "f.bmp", "g.jpeg", "notes.txt",
                 ".hidden.png", "._a.png", "noext"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "z.png").write_bytes(b"x")
    hidden_dir = tmp_path / ".cache"
    hidden_dir.mkdir()
    (hidden_dir / "y.png").write_bytes(b"x")

    names = [p.name for p in list_images(tmp_path)]
    assert names == sorted(["b.JPG", "a.png", "c.tiff", "d.TIF", "e.webp", "f.bmp", "g.jpeg"])
    rec = list_images(tmp_path, recursive=True)
    assert sub / "z.png" in rec and hidden_dir / "y.png" not in rec
    assert rec == sorted(rec)
    with pytest.raises(ImageReadError):
        list_images(tmp_path / "missing")


def test_camera_raw_and_heic_files_are_refused_with_the_way_round(tmp_path):
    """A NEF, CR2, DNG or ARW is a TIFF inside whose first image is a small preview: before, it was read as
    that 160x120 preview and "denoised". Now raw and HEIC files are refused by name with what to do, left
    out of folder listings and listed on their own (for the messages that say so)."""
    Image.fromarray(np.zeros((120, 160, 3), np.uint8)).save(tmp_path / "preview.tif")
    data = (tmp_path / "preview.tif").read_bytes()
    for name in ("DSC_0001.NEF", "IMG_2.cr2", "x.dng", "y.ARW"):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageReadError, match="camera raw file.*export it .* 16-bit TIFF") as info:
            read_image(tmp_path / name)
        assert name in str(info.value)
    (tmp_path / "IMG_3.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    with pytest.raises(ImageReadError, match="HEIC photo.*JPEG, PNG or TIFF"):
        read_image(tmp_path / "IMG_3.HEIC")
    assert read_image(tmp_path / "preview.tif").size == (160, 120)  # the same bytes as a TIFF are read
    assert iio.unsupported_photo_message(tmp_path / "a.jpg") is None
    assert [p.name for p in list_images(tmp_path)] == ["preview.tif"]
    assert [p.name for p in iio.list_unreadable_photos(tmp_path)] == sorted(
        ["DSC_0001.NEF", "IMG_2.cr2", "x.dng", "y.ARW", "IMG_3.HEIC"])


def test_loaded_image_properties():
    img = LoadedImage(
        pixels=np.zeros((3, 5, 1), np.float32), alpha=None, bit_depth=8, format="PNG",
        path=None, exif=None, icc_profile=None, mode="L",
    )
    assert img.is_gray and img.size == (5, 3)


def test_package_is_qt_and_torch_free():
    from pathlib import Path

    files = sorted(Path(iio.__file__).parent.glob("*.py"))
    assert len(files) >= 8  # __init__ and its parts
    for f in files:
        src = f.read_text(encoding="utf-8")
        assert "PySide6" not in src and "import torch" not in src, f.name


def test_a_full_disk_is_its_own_error_and_leaves_no_temp_file(tmp_path, monkeypatch):
    import errno

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(iio_write.os, "fsync", full)
    with pytest.raises(DiskFullError, match="the disk holding .* is full"):
        write_image(tmp_path / "x.png", gradient())
    assert issubclass(DiskFullError, ImageWriteError) and files_in(tmp_path) == []
