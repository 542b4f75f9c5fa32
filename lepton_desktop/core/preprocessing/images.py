"""Pictures to model inputs: decode, convert, resize, normalise (one implementation).

Training fits an ``image`` step on its train split (:func:`fit_image_step`) and
encodes every picture with :func:`encode_pictures`; serving decodes a client's bytes
with :func:`decode_image` and encodes them with the same function and the stored step.

``{"step": "image", "mode": "L" | "RGB", "size": [width, height], "mean": m, "std": s}``
    Pictures are converted to ``mode``, resized to ``size`` (bilinear) when they differ,
    scaled to [0, 1] and normalised with the train split's pixel mean and spread.
"""

from __future__ import annotations

import io
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.errors import LeptonError

if TYPE_CHECKING:
    from PIL import Image

#: Modes that carry one channel: such a dataset trains in grayscale (``L``).
GRAY_MODES = ("L", "1", "P", "LA", "I;16")


class ImageDecodeError(LeptonError):
    """Bytes that are not a readable picture; the message says why."""


def decode_image(data: bytes) -> Image.Image:
    """Open and fully decode an encoded picture (PNG, JPEG, ...).

    Raises:
        ImageDecodeError: empty, truncated, not a picture, or a decompression bomb.
    """
    # Pillow is imported by the functions that use it: tabular training and serving,
    # which import this module too, never pay for it.
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageDecodeError("not a readable image (it is empty: 0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(data))
            picture.load()
    except UnidentifiedImageError:
        # (Pillow's own message names its buffer, "<_io.BytesIO object at 0x...>";
        # the caller names the file or the record.)
        raise ImageDecodeError(
            f"not a readable image ({len(data):,} bytes in no picture format Pillow knows)"
        ) from None
    except (OSError, SyntaxError, ValueError,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"not a readable image ({_without_buffer(str(exc))})") from None
    return picture


def _without_buffer(text: str) -> str:
    return re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", "", text) or "unreadable"


def image_mode(pictures: Sequence[Image.Image]) -> str:
    """``L`` when every picture has one channel, else ``RGB``."""
    return "L" if all(p.mode in GRAY_MODES for p in pictures) else "RGB"


def common_size(pictures: Sequence[Image.Image]) -> tuple[int, int]:
    """The most common ``(width, height)``: the size every picture is resized to."""
    return Counter(p.size for p in pictures).most_common(1)[0][0]


def pixels(picture: Image.Image, mode: str, size: Sequence[int]) -> np.ndarray:
    """One picture as float32 ``(channels, height, width)`` in [0, 1], not yet normalised."""
    from PIL import Image

    picture = picture.convert(mode)
    wanted = (int(size[0]), int(size[1]))
    if picture.size != wanted:
        picture = picture.resize(wanted, Image.Resampling.BILINEAR)
    array = np.asarray(picture, dtype=np.float32) / 255.0
    return array[None] if mode == "L" else array.transpose(2, 0, 1)


def fit_image_step(train_pixels: np.ndarray, mode: str, size: Sequence[int]) -> dict[str, Any]:
    """The ``image`` step: ``mode``, ``size`` and the pixel mean/spread of the train split."""
    mean, std = float(train_pixels.mean()), float(train_pixels.std()) or 1.0
    return {"step": "image", "mode": mode, "size": [int(size[0]), int(size[1])],
            "mean": mean, "std": std}  # fmt: skip


def normalize(x: np.ndarray, step: dict[str, Any]) -> np.ndarray:
    """Pixels (any batch shape) normalised with the step's mean and spread, float32."""
    return ((x - step["mean"]) / step["std"]).astype(np.float32)


def encode_pictures(pictures: Sequence[Image.Image], step: dict[str, Any]) -> np.ndarray:
    """Pictures -> a float32 ``(N, channels, height, width)`` model input."""
    stacked = np.stack([pixels(p, step["mode"], step["size"]) for p in pictures])
    return normalize(stacked, step)
