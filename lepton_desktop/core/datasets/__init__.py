"""Import and preparation of datasets (tables, image folders, time series)."""
