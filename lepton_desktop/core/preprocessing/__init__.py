"""One implementation of every transform from a raw value to a model input.

Training, evaluation, serving, bundles and the export checks all turn raw data into
tensors through these modules and nothing else, so a model is never served features
that differ from the ones it was trained on:

* :mod:`.tabular` — fill, scale and one-hot steps over columns (fitted by prep and by
  training, replayed on raw records), and :class:`.tabular.NumericPlan`, the same
  steps compiled for serving's hot path;
* :mod:`.images` — decoding, mode, resizing and normalising pictures;
* :mod:`.series` — scaling a time series and cutting it into windows.

Every fitted parameter is plain JSON (a pipeline "step"), never a pickle.
"""
