"""Messages between a parent process and a worker over a pipe: ``.npz`` frames.

Each frame is its length (8 bytes, little-endian), then an ``.npz`` archive of plain
arrays with a JSON ``meta`` string. Read with ``allow_pickle=False`` and with the
length checked before the payload is allocated, so a damaged or hostile stream can
neither run code nor exhaust memory. Used by the strong baseline's worker
(:mod:`.strong_baseline`).
"""

from __future__ import annotations

import io
import json
from typing import IO, Any

import numpy as np

#: The longest message: the arrays of the largest capped strong-baseline input (rows
#: and pixels are capped, validation and test splits are not) with room to spare.
MAX_FRAME_BYTES = 1 << 36


def frame(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """One message of the pipe protocol: its length, then an ``.npz`` of ``arrays`` with
    ``meta`` as a JSON string."""
    buffer = io.BytesIO()
    named: dict[str, Any] = {"meta": np.array(json.dumps(meta)), **arrays}
    np.savez(buffer, **named)
    payload = buffer.getvalue()
    return len(payload).to_bytes(8, "little") + payload


def read_frame(stream: IO[bytes]) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The next message of ``stream`` (None at its end).

    Raises:
        ValueError: a frame longer than :data:`MAX_FRAME_BYTES`, cut short, or not an
            ``.npz`` of plain arrays.
    """
    head = stream.read(8)
    if len(head) < 8:
        return None
    size = int.from_bytes(head, "little")
    if size > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {size:,} bytes is over the limit")
    payload = stream.read(size)
    if len(payload) < size:
        raise ValueError("a frame was cut short")
    with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
        meta = json.loads(str(archive["meta"]))
        return meta, {key: archive[key] for key in archive.files if key != "meta"}
