"""Which file names hold which kind of table (no pyarrow: the GUI reads these at start)."""

from __future__ import annotations

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
TABULAR_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES + (".npz",)
