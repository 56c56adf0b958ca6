"""Qt-free image reading and writing for photographers' files.

Reads JPEG, PNG (8/16-bit), TIFF (8/16-bit, 32-bit float), WebP and BMP into
float32 arrays in [0, 1] with the EXIF orientation applied, and writes them
back keeping bit depth, alpha, EXIF, XMP, the ICC profile and the resolution
where the format allows it.

Implementation notes
--------------------
* Pillow is used for everything it handles well. 16-bit colour PNG/TIFF (and
  float colour TIFF) are decoded with OpenCV (``np.fromfile``-style
  ``cv2.imdecode``, so non-ASCII paths work), because Pillow reduces them to
  8 bits.
* 16-bit PNG is encoded with ``cv2.imencode``; the ICC profile (``iCCP``
  chunk) and EXIF (``eXIf`` chunk) are then spliced into the PNG stream, so
  metadata survives for 16-bit PNG as well.
* All TIFF output (8, 16 and 32-bit float) goes through a small built-in
  baseline TIFF writer (Deflate compression, horizontal predictor for integer
  data) that stores the ICC profile and the EXIF tags (IFD0 tags such as
  Make/Model plus the Exif and GPS sub-IFDs), the XMP packet and the
  resolution. Other TIFF-only tags of the input (IPTC, Photoshop data, ...)
  are not carried over.
* 16/32-bit grayscale with alpha is written as RGBA (PNG and TIFF), since
  OpenCV cannot write or read it; BMP and JPEG output drop alpha.
* XMP (ratings, keywords, captions) is carried for JPEG (Pillow >= 11), PNG
  (an ``iTXt`` chunk), TIFF (tag 700) and WebP, its ``tiff:Orientation`` set
  to 1 like the EXIF's (read also from a PNG's tEXt / zTXt chunk of that
  name). Extended XMP (a JPEG's second XMP segment) is not carried, nor the
  main packet's pointer to it; IPTC (JPEG APP13) and other PNG text chunks
  are not carried either. What a format cannot hold (EXIF or XMP over a JPEG's
  64 KB) is left out and named in ``write_image(..., notes=)``.
* A quarter turn on reading swaps the resolution, in ``LoadedImage.dpi`` and in
  the EXIF's XResolution / YResolution.
* Refused with a message rather than read wrong: 16-bit and float colour TIFFs
  stored as separate planes (OpenCV scrambles them) and float pixels far above
  1.0 (high dynamic range, which would be clipped). Undone on reading:
  premultiplied (associated) alpha and MinIsWhite grey beyond 8 bits. Camera
  JPEGs with an MPF preview (Pillow's "MPO") read as JPEGs; of a multi-page
  TIFF or an animation the first page is read and ``LoadedImage.notes`` says so.
* On import, Pillow's ``Image.MAX_IMAGE_PIXELS`` is raised to ``MAX_PIXELS``
  if it is lower, so images up to our own limit open without a warning;
  larger ones raise :class:`ImageReadError`.

Modules (the public API is this package's; the modules are its parts)
----------------------------------------------------------------------
* ``common``: formats, bit depths, tag numbers, the errors, :class:`LoadedImage`.
* ``metadata``: EXIF and XMP orientation, the EXIF/ICC/XMP/resolution bytes in PNG and TIFF.
* ``tiff``: the TIFF writer and the TIFF tag checks of the readers.
* ``read``: :func:`read_image`.
* ``encode``: pixels -> a format's bytes at a bit depth.
* ``write``: :func:`write_image` (checks, protected inputs, atomic replace).
* ``folders``: :func:`output_path_for`, :func:`list_images` (and the raw/HEIC files it leaves out), the
  batch's ``OUTPUT_FORMATS``.
"""

from __future__ import annotations

from .common import (MAX_PIXELS, SUPPORTED_SUFFIXES, DiskFullError, ImageReadError, ImageWriteError, LoadedImage,
                     OutputExistsError, unsupported_photo_message)
from .folders import (OUTPUT_FORMATS, OutputFormat, display_name, has_images_below, left_out_note, list_images,
                      list_unreadable_photos,
                      name_list, not_a_photo_message, output_format, output_path_for, split_inputs,
                      unreadable_photos_in)
from .read import read_image
from .write import (check_destination, check_output_folder, make_output_folder, output_folder_problem,
                    write_image)

__all__ = [
    "ImageReadError",
    "ImageWriteError",
    "OutputExistsError",
    "DiskFullError",
    "LoadedImage",
    "MAX_PIXELS",
    "SUPPORTED_SUFFIXES",
    "read_image",
    "check_destination",
    "check_output_folder",
    "output_folder_problem",
    "make_output_folder",
    "write_image",
    "output_path_for",
    "OUTPUT_FORMATS",
    "OutputFormat",
    "output_format",
    "list_images",
    "has_images_below",
    "list_unreadable_photos",
    "unreadable_photos_in",
    "name_list",
    "display_name",
    "split_inputs",
    "left_out_note",
    "not_a_photo_message",
    "unsupported_photo_message",
]
