"""What every part of :mod:`..imageio` shares: the supported formats and bit depths, the EXIF/TIFF tag
numbers, the two error types and :class:`LoadedImage`, the decoded picture plus what writing it back needs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


MAX_PIXELS = 400_000_000
SUPPORTED_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")

# camera raw files are refused by name, not read: several are TIFF inside (NEF, CR2, DNG, ARW, ...) and
# would open as their first image, a small preview, instead of the photo
RAW_SUFFIXES = frozenset((".3fr", ".ari", ".arw", ".bay", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".fff",
                          ".iiq", ".k25", ".kdc", ".mef", ".mos", ".mrw", ".nef", ".nrw", ".orf", ".pef", ".raf",
                          ".raw", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f"))
# phone photo formats without a decoder here
HEIF_SUFFIXES = frozenset((".heic", ".heif", ".hif", ".avif"))


def unsupported_photo_message(path: str | os.PathLike[str]) -> str | None:
    """Why a photo file named ``path`` is not read, in plain words with the way round it (a camera raw
    file, a HEIC), or None when its name says nothing against it."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in RAW_SUFFIXES:
        return (f"'{p.name}' is a camera raw file, which Desktop Denoiser does not read: export it from your raw "
                "converter as a 16-bit TIFF (with the converter's own noise reduction off) and denoise that.")
    if suffix in HEIF_SUFFIXES:
        return (f"'{p.name}' is a {suffix[1:].upper()} photo, which Desktop Denoiser does not read: export or "
                "convert it to JPEG, PNG or TIFF first.")
    return None


if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_SUFFIX_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
_FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF"}
_FORMAT_DEPTHS = {
    "JPEG": (8,),
    "WEBP": (8,),
    "BMP": (8,),
    "PNG": (8, 16),
    "TIFF": (8, 16, 32),
}

_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_INTEROP_IFD = 0xA005
_ICC_TAG = 34675
# IFD0 tags that are EXIF metadata (not TIFF image structure). Used both to
# pick the EXIF out of a TIFF's tags and to put EXIF into a TIFF we write.
_EXIF_IFD0_TAGS = frozenset(
    {
        0x010D,  # DocumentName
        0x010E,  # ImageDescription
        0x010F,  # Make
        0x0110,  # Model
        0x0112,  # Orientation
        0x011A,  # XResolution
        0x011B,  # YResolution
        0x0128,  # ResolutionUnit
        0x0131,  # Software
        0x0132,  # DateTime
        0x013B,  # Artist
        0x013C,  # HostComputer
        0x8298,  # Copyright
        0xC4A5,  # PrintImageMatching
    }
)
_EXIF_PREFIX = b"Exif\x00\x00"


class ImageReadError(Exception):
    """An image file could not be read. The message names the file."""


class ImageWriteError(Exception):
    """An image file could not be written. The message names the file."""


class OutputExistsError(ImageWriteError):
    """The file to write exists and replacing it was not asked for (a batch may skip such a photo)."""


class DiskFullError(ImageWriteError):
    """The disk (or the user's quota) is full: every later photo of a batch would fail the same way, so a
    batch stops at it."""


@dataclass
class LoadedImage:
    """A decoded image plus what is needed to write it back faithfully.

    ``pixels`` is float32 HxWx3 (RGB) or HxWx1 (grayscale) in [0, 1] with the
    EXIF orientation already applied; ``alpha`` is float32 HxW or None.
    ``exif`` (if any) starts with ``b"Exif\\0\\0"`` and has Orientation = 1.
    ``mode`` is the source's mode as Pillow names it; 16-bit colour images
    read through OpenCV get a ``";16"`` suffix (e.g. ``"RGB;16"``) and float
    colour TIFFs ``";F32"``.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    format: str
    path: Path | None
    exif: bytes | None
    icc_profile: bytes | None
    mode: str
    # a WebP whose picture is stored losslessly: write_image keeps it lossless (PNG and TIFF always are)
    lossless: bool = False
    # the resolution the file states (dots per inch, x and y), written back where the format stores it
    dpi: tuple[float, float] | None = None
    # the XMP packet (ratings, keywords, captions, copyright, ...), its orientation set to 1 like the EXIF's
    xmp: bytes | None = None
    # what the reader noticed that the user should know (e.g. pages or frames after the first left out)
    notes: list[str] = field(default_factory=list)

    @property
    def is_gray(self) -> bool:
        return self.pixels.ndim == 3 and self.pixels.shape[2] == 1

    @property
    def size(self) -> tuple[int, int]:
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


def _to_unit_float(a: np.ndarray, maxval: float | None) -> np.ndarray:
    if maxval is None:  # float data
        out = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(out, 0.0, 1.0, out=out)
    out = a.astype(np.float32)
    out /= np.float32(maxval)  # exact k / maxval, same as np.float32(k / maxval)
    return out


def _depth_info(dtype: np.dtype) -> tuple[int, float | None]:
    if dtype == np.uint8:
        return 8, 255.0
    if dtype == np.uint16:
        return 16, 65535.0
    if dtype.kind == "f":
        return 32, None
    raise ValueError(f"unsupported sample type {dtype}")


def _name(path: Path) -> str:
    return f"'{path.name}'" if path.name else f"'{path}'"


def _same_file(a: Path, b: Path) -> bool:
    try:
        if os.path.normcase(str(a.resolve())) == os.path.normcase(str(Path(b).resolve())):
            return True
    except OSError:
        pass
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False
