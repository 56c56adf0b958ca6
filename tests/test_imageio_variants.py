"""Photographers' files beyond the plain ones (pipeline/imageio): TIFF layouts OpenCV and Pillow get wrong
(separate planes, premultiplied alpha, MinIsWhite beyond 8 bits, high-dynamic-range floats), camera JPEGs
with an MPF preview, pages and frames after the first, colour-key transparency, LAB, and the metadata a
photographer keeps (XMP ratings and keywords, the resolution). Generated files only, all in tmp_path."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms, TiffImagePlugin, TiffTags

from desktop_denoiser import cli
from desktop_denoiser.pipeline.imageio import ImageReadError, read_image, write_image

H, W = 24, 32
XMP = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
       b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmp:Rating="4" '
       b'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def picture(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """A colour picture in [0, 1] with every channel different."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    return np.clip(np.stack([0.2 + 0.6 * x / w, 0.3 + 0.5 * y / h, 0.7 - 0.4 * x / w], 2)
                   + rng.normal(0, 0.02, (h, w, 3)), 0, 1).astype(np.float32)


def raw_tiff(samples: np.ndarray, *, photometric: int, planar: bool = False, extra_samples: int | None = None,
             tags: dict | None = None) -> bytes:
    """An uncompressed little-endian TIFF holding ``samples`` (HxWxC, uint8/uint16/float32) exactly as given:
    chunky, or one plane per channel (``planar``); ``extra_samples`` 1 = associated (premultiplied) alpha;
    ``tags``: more tags (number -> value)."""
    h, w, c = samples.shape
    samples = np.ascontiguousarray(samples, samples.dtype.newbyteorder("<"))
    strips = [samples[:, :, i].tobytes() for i in range(c)] if planar else [samples.tobytes()]
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    ifd[256], ifd[257] = w, h
    ifd[258] = (samples.dtype.itemsize * 8,) * c
    ifd[259], ifd[262], ifd[277], ifd[278], ifd[284] = 1, photometric, c, h, 2 if planar else 1
    if extra_samples is not None:
        ifd[338] = (extra_samples,)
    if samples.dtype.kind == "f":
        ifd[339] = (3,) * c
    for tag, value in (tags or {}).items():
        ifd[tag] = value
    offsets, pos = [], 0
    for s in strips:
        offsets.append(pos)
        pos += len(s)
    ifd.tagtype[273] = ifd.tagtype[279] = TiffTags.LONG
    ifd[273], ifd[279] = tuple(offsets), tuple(len(s) for s in strips)  # the writer adds its own end
    return b"II*\x00" + struct.pack("<I", 8) + ifd.tobytes(8) + b"".join(strips)


# --------------------------------------------------------------------------
# TIFF layouts
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_colour_in_separate_planes_beyond_8_bits_is_refused_not_scrambled(tmp_path, dtype):
    """OpenCV decoded these as if the channels were interleaved: three small grey copies of the photo in
    its top third, the rest black, written out without a word."""
    scale = 65535 if dtype == np.uint16 else 1
    path = tmp_path / "planar.tif"
    path.write_bytes(raw_tiff((picture() * scale).astype(dtype), photometric=2, planar=True))
    with pytest.raises(ImageReadError, match="separate planes") as err:
        read_image(path)
    assert "interleaved" in str(err.value)


def test_colour_in_separate_planes_at_8_bits_reads_right(tmp_path):
    pic = np.round(picture() * 255).astype(np.uint8)
    path = tmp_path / "planar8.tif"
    path.write_bytes(raw_tiff(pic, photometric=2, planar=True))
    np.testing.assert_array_equal(np.round(read_image(path).pixels * 255), pic)


def test_premultiplied_16bit_alpha_is_undone(tmp_path):
    """A partly transparent area kept its premultiplied colour (darker) under an 'unassociated' tag."""
    colour = picture()
    alpha = np.linspace(0.2, 1.0, W, dtype=np.float32)[None, :].repeat(H, 0)
    stored = np.concatenate([colour * alpha[:, :, None], alpha[:, :, None]], 2)
    path = tmp_path / "assoc.tif"
    path.write_bytes(raw_tiff(np.round(stored * 65535).astype(np.uint16), photometric=2, extra_samples=1))
    img = read_image(path)
    np.testing.assert_allclose(img.alpha, alpha, atol=1e-4)
    np.testing.assert_allclose(img.pixels, colour, atol=2e-4)
    out = write_image(tmp_path / "out.tif", img.pixels, like=img)  # written unassociated, as tagged
    again = read_image(out)
    np.testing.assert_allclose(again.pixels, colour, atol=2e-4)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_min_is_white_grey_beyond_8_bits_is_not_a_negative(tmp_path, dtype):
    """Neither Pillow nor OpenCV inverts Photometric 0 beyond 8 bits: the photo came out as a negative."""
    grey = picture()[:, :, :1] * 0.3
    stored = 1.0 - grey
    stored = np.round(stored * 65535).astype(np.uint16) if dtype == np.uint16 else stored.astype(np.float32)
    path = tmp_path / "white.tif"
    path.write_bytes(raw_tiff(stored, photometric=0))
    img = read_image(path)
    assert img.is_gray
    np.testing.assert_allclose(img.pixels, grey, atol=2e-5)


def test_floats_far_above_white_are_refused_and_a_hair_above_is_clipped(tmp_path):
    """A high-dynamic-range float TIFF (values to 4.0) was clipped to 1.0 without a word."""
    hdr = tmp_path / "hdr.tif"
    hdr.write_bytes(raw_tiff(picture() * 4, photometric=2))
    with pytest.raises(ImageReadError, match=r"reach 3\.28, above 1\.0.*16-bit TIFF"):
        read_image(hdr)
    near = tmp_path / "near.tif"
    pic = picture()
    pic[0, 0] = 1.004  # another program's rounding
    near.write_bytes(raw_tiff(pic, photometric=2))
    assert read_image(near).pixels.max() == pytest.approx(1.0)


def test_lab_tiff_reads_as_rgb_without_a_made_up_alpha(tmp_path):
    rgb = Image.fromarray(np.round(picture() * 255).astype(np.uint8))
    lab = ImageCms.profileToProfile(rgb, ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"),
                                    outputMode="LAB")
    lab.save(tmp_path / "lab.tif")
    img = read_image(tmp_path / "lab.tif")
    assert img.alpha is None and img.pixels.shape == (H, W, 3)
    assert np.abs(img.pixels - np.asarray(rgb) / 255).mean() < 0.02


# --------------------------------------------------------------------------
# camera JPEGs, pages and frames, transparency
# --------------------------------------------------------------------------

def test_camera_jpeg_with_an_mpf_preview_reads_as_a_jpeg(tmp_path):
    """Many cameras' JPEGs carry a preview in an MPF extension, which Pillow calls MPO: they were refused
    with 'MPO files are not supported'."""
    pic = Image.fromarray(np.round(picture() * 255).astype(np.uint8))
    ex = Image.Exif()
    ex[0x010F] = "TestMake"
    path = tmp_path / "IMG_0001.JPG"
    pic.save(path, format="MPO", save_all=True, append_images=[pic.resize((8, 6))], exif=ex.tobytes())
    assert Image.open(path).format == "MPO"
    img = read_image(path)
    assert img.format == "JPEG" and img.size == (W, H) and not img.notes  # the preview is no lost page
    out = write_image(tmp_path / "IMG_0001_denoised.JPG", img.pixels, like=img)
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.getexif()[0x010F] == "TestMake"


@pytest.mark.parametrize("name,kind", [("pages.tif", "3 pages"), ("anim.webp", "3 frames"),
                                       ("anim.png", "3 frames")])
def test_pages_and_frames_after_the_first_are_named_in_a_note(tmp_path, name, kind, capsys):
    """Only the first page or frame is denoised; that used to happen without a word."""
    frames = [Image.fromarray(np.round(picture(seed=i) * 255).astype(np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:])
    img = read_image(tmp_path / name)
    assert len(img.notes) == 1 and kind in img.notes[0] and "only the first" in img.notes[0]
    code = cli.main(["denoise", str(tmp_path / name), "-o", str(tmp_path / "out"), "--sigma", "5"])
    assert code == 0
    assert f"note: this file holds {kind}" in capsys.readouterr().out
    with Image.open(tmp_path / "out" / name) as out:
        assert getattr(out, "n_frames", 1) == 1


def test_one_page_files_have_no_note(tmp_path):
    Image.fromarray(np.round(picture() * 255).astype(np.uint8)).save(tmp_path / "a.tif")
    assert read_image(tmp_path / "a.tif").notes == []


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_png_colour_key_becomes_alpha(tmp_path, mode):
    """A PNG whose transparency is one colour (tRNS on RGB or grey) came back opaque, that colour showing."""
    pic = np.round(picture() * 255).astype(np.uint8)
    if mode == "L":
        pic = pic[:, :, 1]
    key = (255, 0, 255) if mode == "RGB" else 7
    pic[2:6, 3:9] = key
    Image.fromarray(pic, mode).save(tmp_path / "key.png", transparency=key)
    img = read_image(tmp_path / "key.png")
    assert img.alpha is not None
    assert (img.alpha[2:6, 3:9] == 0).all() and img.alpha.sum() == H * W - 24
    out = write_image(tmp_path / "out.png", img.pixels, like=img)
    np.testing.assert_array_equal(read_image(out).alpha, img.alpha)


# --------------------------------------------------------------------------
# metadata: XMP and resolution
# --------------------------------------------------------------------------

def _xmp_of(path) -> bytes:
    img = read_image(path)
    assert img.xmp is not None, f"no XMP read back from {path.name}"
    return img.xmp


@pytest.mark.parametrize("suffix,depth", [(".jpg", 8), (".png", 8), (".png", 16), (".tif", 8), (".tif", 16),
                                          (".webp", 8)])
def test_xmp_survives_and_its_orientation_is_set_upright(tmp_path, suffix, depth):
    """XMP (ratings, keywords, captions: what Lightroom and Bridge keep) was dropped from every output; its
    tiff:Orientation must say 1 once the reader has turned the picture, or XMP-reading editors turn it again."""
    src = read_image(write_image(tmp_path / f"a{suffix}", picture(), bit_depth=depth, xmp=XMP))
    assert b'xmp:Rating="4"' in src.xmp and b'tiff:Orientation="1"' in src.xmp
    xmp = _xmp_of(write_image(tmp_path / f"b{suffix}", src.pixels, like=src))
    assert b'xmp:Rating="4"' in xmp and b'tiff:Orientation="1"' in xmp


def test_xmp_is_read_from_files_other_programs_wrote(tmp_path):
    pic = Image.fromarray(np.round(picture() * 255).astype(np.uint8))
    pic.save(tmp_path / "a.jpg", xmp=XMP)
    pic.save(tmp_path / "a.tif", tiffinfo={700: XMP})
    for name in ("a.jpg", "a.tif"):
        assert b'xmp:Rating="4"' in _xmp_of(tmp_path / name)


@pytest.mark.parametrize("src_suffix,src_depth,out_suffix,out_depth",
                         [(".jpg", 8, ".jpg", 8), (".png", 8, ".png", 8), (".png", 16, ".png", 16),
                          (".jpg", 8, ".tif", 16), (".png", 8, ".jpg", 8), (".bmp", 8, ".bmp", 8)])
def test_resolution_survives(tmp_path, src_suffix, src_depth, out_suffix, out_depth):
    """A 300 dpi file (for print) came back at no resolution (JPEG 1:1 aspect, PNG without pHYs)."""
    pic = picture()
    src = write_image(tmp_path / f"a{src_suffix}", pic, bit_depth=src_depth, dpi=(300, 240))
    img = read_image(src)
    assert img.dpi == pytest.approx((300, 240), abs=0.01)
    (tmp_path / "out").mkdir()
    out = write_image(tmp_path / "out" / f"b{out_suffix}", img.pixels, like=img, bit_depth=out_depth)
    assert read_image(out).dpi == pytest.approx((300, 240), abs=0.01)


def test_resolution_turns_with_the_picture(tmp_path):
    ex = Image.Exif()
    ex[0x0112] = 6  # turned a quarter on reading
    Image.fromarray(np.round(picture() * 255).astype(np.uint8)).save(tmp_path / "a.jpg", dpi=(300, 200),
                                                                     exif=ex.tobytes())
    img = read_image(tmp_path / "a.jpg")
    assert img.size == (H, W) and img.dpi == pytest.approx((200, 300))


def test_no_resolution_stays_none(tmp_path):
    Image.fromarray(np.round(picture() * 255).astype(np.uint8)).save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.dpi is None and img.xmp is None
    out = write_image(tmp_path / "b.png", img.pixels, like=img)
    with Image.open(out) as im:
        assert "dpi" not in im.info and not any(k.startswith("XML") for k in im.info)
    raw = out.read_bytes()
    assert b"pHYs" not in raw and b"iTXt" not in raw


def test_xmp_too_big_for_a_jpeg_is_dropped_not_the_photo(tmp_path):
    big = XMP.replace(b'xmp:Rating="4"', b'xmp:Label="' + b"x" * 70000 + b'"')
    with pytest.warns(RuntimeWarning, match="XMP dropped"):
        out = write_image(tmp_path / "a.jpg", picture(), xmp=big)
    assert read_image(out).size == (W, H)


# --------------------------------------------------------------------------
# found by reviewing the above
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["ascii", "numbers"])
def test_a_tiff_xmp_tag_of_another_type_does_not_stop_the_photo(tmp_path, kind):
    """An XMP tag stored as text (or as numbers) ended reading with a raw TypeError / ValueError."""
    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    if kind == "ascii":
        ifd[700] = "<x:xmpmeta tiff:Orientation='3'/>"
        ifd.tagtype[700] = TiffTags.ASCII
    else:
        ifd[700] = (1000, 2000)
        ifd.tagtype[700] = TiffTags.LONG
    Image.fromarray(np.round(picture() * 255).astype(np.uint8)).save(tmp_path / "a.tif", tiffinfo=ifd)
    img = read_image(tmp_path / "a.tif")
    assert img.pixels.shape[2] == 3
    assert (img.xmp is not None) == (kind == "ascii")


@pytest.mark.parametrize("depth", [8, 16, 32])
def test_the_resolution_turns_with_a_tiff_turned_on_reading(tmp_path, depth):
    """Pillow or OpenCV turn a TIFF by its Orientation tag themselves; its resolution kept the old order."""
    pic = picture()
    samples = {8: np.round(pic * 255).astype(np.uint8), 16: np.round(pic * 65535).astype(np.uint16),
               32: pic.astype(np.float32)}[depth]
    path = tmp_path / "turned.tif"
    path.write_bytes(raw_tiff(samples, photometric=2, tags={274: 6, 282: 300.0, 283: 150.0, 296: 2}))
    img = read_image(path)
    assert img.size == (H, W) and img.dpi == pytest.approx((150, 300))
    out = read_image(write_image(tmp_path / "out.tif", img.pixels, like=img))
    assert out.size == (H, W) and out.dpi == pytest.approx((150, 300))  # the EXIF's own resolution overruled


def test_a_16bit_png_turns_by_its_xmp_as_an_8bit_one_does(tmp_path):
    """With no EXIF orientation, Pillow's 8-bit paths turn a photo by the XMP's tiff:Orientation; the 16-bit
    path (OpenCV) did not, and still reset the XMP to 1, so the result lost its turn."""
    for depth in (8, 16):
        src = write_image(tmp_path / f"x{depth}.png", picture(), bit_depth=depth, xmp=XMP)  # tiff:Orientation 6
        img = read_image(src)
        assert img.size == (H, W), depth
        assert b'tiff:Orientation="1"' in img.xmp


@pytest.mark.parametrize("dpi", [(1e9, 1e9), (100000, 100000), (1e-5, 1e-5), (0, 72), (float("nan"), 72)])
def test_a_resolution_out_of_range_is_dropped_not_the_photo(tmp_path, dpi):
    for suffix in (".png", ".bmp", ".jpg", ".tif"):
        out = write_image(tmp_path / f"d{suffix}", picture(), dpi=dpi, overwrite=True)
        got = read_image(out).dpi
        assert got is None or (suffix == ".bmp" and got == pytest.approx((96, 96), abs=0.1))  # Pillow's BMP default


@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg", ".webp"])
def test_xmp_given_as_text_is_written(tmp_path, suffix):
    out = write_image(tmp_path / f"a{suffix}", picture(), xmp=XMP.decode())
    assert b'xmp:Rating="4"' in read_image(out).xmp


def test_pages_of_a_16bit_tiff_are_noted_and_a_preview_first_page_is_refused(tmp_path):
    pages = [Image.fromarray(np.round(picture(seed=i) * 65535).astype(np.uint16)[:, :, 0]) for i in range(2)]
    pages[0].save(tmp_path / "grey16.tif", save_all=True, append_images=pages[1:])
    assert "2 pages" in read_image(tmp_path / "grey16.tif").notes[0]
    thumb = Image.fromarray(np.round(picture(8, 12) * 255).astype(np.uint8))
    full = Image.fromarray(np.round(picture() * 255).astype(np.uint8))
    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    ifd[254] = 1  # NewSubfileType: reduced-resolution version of another page
    thumb.save(tmp_path / "thumb_first.tif", save_all=True, append_images=[full], tiffinfo=ifd)
    with pytest.raises(ImageReadError, match="reduced-size preview"):
        read_image(tmp_path / "thumb_first.tif")


def test_a_16bit_grey_png_colour_key_becomes_alpha(tmp_path):
    grey = np.round(picture()[:, :, 1] * 65535).astype(np.uint16)
    grey[2:6, 3:9] = 1000
    Image.fromarray(grey).save(tmp_path / "g16.png", transparency=1000)
    img = read_image(tmp_path / "g16.png")
    assert img.bit_depth == 16 and img.alpha is not None and (img.alpha[2:6, 3:9] == 0).all()
    assert img.alpha.sum() == H * W - 24


def test_infinite_floats_are_refused_as_beyond_white(tmp_path):
    pic = picture()
    pic[0, 0, 0] = np.inf
    (tmp_path / "inf.tif").write_bytes(raw_tiff(pic, photometric=2))
    with pytest.raises(ImageReadError, match="reach inf"):
        read_image(tmp_path / "inf.tif")


# --------------------------------------------------------------------------
# found by an end-to-end probe (CLI, Save, Save As, batch)
# --------------------------------------------------------------------------

def test_metadata_a_jpeg_cannot_hold_is_reported_where_the_user_looks(tmp_path, capsys):
    """A 70 KB XMP packet does not fit a JPEG: it was dropped with only a Python warning on stderr."""
    big = XMP.replace(b'xmp:Rating="4"', b'xmp:Rating="4" xmp:Label="' + b"x" * 70000 + b'"')
    write_image(tmp_path / "big.png", picture(), xmp=big)
    with pytest.warns(RuntimeWarning):
        assert cli.main(["denoise", str(tmp_path / "big.png"), "-o", str(tmp_path / "out"), "--format", "jpg",
                         "--sigma", "5", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert any("XMP was too big for a JPEG file" in w for w in rec["warnings"])


def test_a_pointer_to_extended_xmp_is_not_carried_without_its_part(tmp_path):
    packet = XMP.replace(b'xmp:Rating="4"', b'xmp:Rating="4" xmpNote:HasExtendedXMP="0123456789ABCDEF0123456789ABCDEF"')
    img = read_image(write_image(tmp_path / "a.png", picture(), xmp=packet))
    assert b"HasExtendedXMP" not in img.xmp and b'xmp:Rating="4"' in img.xmp


def test_the_exif_resolution_turns_with_the_picture(tmp_path):
    """After a quarter turn the JFIF density was swapped but the EXIF's XResolution / YResolution were not,
    so the written file contradicted itself (and a TIFF took the EXIF's)."""
    ex = Image.Exif()
    ex[0x0112], ex[0x011A], ex[0x011B], ex[0x0128] = 6, 300.0, 150.0, 2
    Image.fromarray(np.round(picture() * 255).astype(np.uint8)).save(tmp_path / "a.jpg", dpi=(300, 150),
                                                                     exif=ex.tobytes())
    img = read_image(tmp_path / "a.jpg")
    for suffix in (".jpg", ".tif", ".png"):
        out = write_image(tmp_path / f"b{suffix}", img.pixels, like=img)
        with Image.open(out) as im:
            exif = im.getexif()
            assert (float(exif[0x011A]), float(exif[0x011B])) == (150.0, 300.0), suffix
        assert read_image(out).dpi == pytest.approx((150, 300), abs=0.02), suffix  # (PNG: per metre)


@pytest.mark.parametrize("chunk", [b"tEXt", b"zTXt"])
def test_png_xmp_in_a_text_chunk_is_read(tmp_path, chunk):
    """Some programs store a PNG's XMP in a tEXt or zTXt chunk (not iTXt): it was dropped."""
    import zlib

    from desktop_denoiser.pipeline.imageio.metadata import _png_chunk

    Image.fromarray(np.round(picture() * 255).astype(np.uint8)).save(tmp_path / "plain.png")
    data = (tmp_path / "plain.png").read_bytes()
    body = b"XML:com.adobe.xmp\x00" + (b"\x00" + zlib.compress(XMP) if chunk == b"zTXt" else XMP)
    end = 8 + 12 + 13  # after IHDR
    (tmp_path / "a.png").write_bytes(data[:end] + _png_chunk(chunk, body) + data[end:])
    assert b'xmp:Rating="4"' in read_image(tmp_path / "a.png").xmp


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_a_resolution_stated_only_in_the_exif_is_read(tmp_path, fmt):
    """A JPEG whose JFIF states an aspect only read the EXIF's X resolution for both (300 x 300 for 300 x
    150), and a WebP (no resolution field of its own) none at all."""
    ex = Image.Exif()
    ex[0x011A], ex[0x011B], ex[0x0128] = 300.0, 150.0, 2
    path = tmp_path / ("a.jpg" if fmt == "JPEG" else "a.webp")
    Image.fromarray(np.round(picture() * 255).astype(np.uint8)).save(path, fmt, exif=ex.tobytes())
    img = read_image(path)
    assert img.dpi == pytest.approx((300, 150))
    out = read_image(write_image(tmp_path / "b.tif", img.pixels, like=img))
    assert out.dpi == pytest.approx((300, 150))

