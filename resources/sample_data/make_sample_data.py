"""Regenerate the bundled sample data (see README.md for sources and licences).

Usage (from the repository root, with the project's virtualenv)::

    pip install --target /tmp/sm statsmodels --no-deps   # only to read its Nile copy
    python resources/sample_data/make_sample_data.py /tmp/sm/statsmodels/datasets/nile/nile.csv

The output is deterministic: the same files, byte for byte, on every run.
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn import datasets

HERE = Path(__file__).resolve().parent
#: Images kept per digit class: enough to train a tiny CNN, small enough for the repo.
DIGITS_PER_CLASS = 30


def write_iris() -> None:
    """150 rows, four measurements in cm and the species name."""
    bunch = datasets.load_iris(as_frame=True)
    frame = bunch.frame.rename(
        columns={
            "sepal length (cm)": "sepal_length",
            "sepal width (cm)": "sepal_width",
            "petal length (cm)": "petal_length",
            "petal width (cm)": "petal_width",
        }
    )
    frame["species"] = [bunch.target_names[t] for t in frame.pop("target")]
    frame.to_csv(HERE / "iris.csv", index=False)


def write_diabetes() -> None:
    """442 patients, ten baseline variables (unscaled) and disease progression a year later."""
    bunch = datasets.load_diabetes(as_frame=True, scaled=False)
    frame = bunch.frame.rename(columns={"target": "progression"})
    frame.to_csv(HERE / "diabetes.csv", index=False, float_format="%.6g")


def write_digits() -> None:
    """The first 30 8x8 grayscale images of each digit, as PNG files."""
    bunch = datasets.load_digits()
    out = HERE / "digits"
    shutil.rmtree(out, ignore_errors=True)
    for digit in range(10):
        folder = out / str(digit)
        folder.mkdir(parents=True)
        rows = np.flatnonzero(bunch.target == digit)[:DIGITS_PER_CLASS]
        for row in rows:
            # The source holds 0..16 intensities; stretch them to the 0..255 of a PNG.
            pixels = np.round(bunch.images[row] * (255 / 16)).astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels, mode="L").save(buffer, format="PNG", optimize=True)
            (folder / f"{row:04d}.png").write_bytes(buffer.getvalue())


def write_nile(source: Path) -> None:
    """Annual flow of the Nile at Aswan, 1871-1970 (copied from statsmodels' file)."""
    text = source.read_text(encoding="utf-8").replace("\r\n", "\n")
    if not text.startswith("year,volume\n") or len(text.splitlines()) != 101:
        raise SystemExit(f"{source}: not the expected 100-year Nile series")
    (HERE / "nile.csv").write_text(text, encoding="utf-8")


def main() -> None:
    """Write every sample file."""
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    write_iris()
    write_diabetes()
    write_digits()
    write_nile(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
