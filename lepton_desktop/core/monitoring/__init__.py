"""Monitoring a served model from what the server wrote into the project file.

:mod:`.window` names a stretch of time, :mod:`.traffic` reads requests, errors,
latency, versions and predictions over it from the request log's per-minute rollups,
and :mod:`.quality` turns feedback labels into the metrics of the model's kind. All of
it is Qt-free and reads only; the GUI's Monitoring tab and ``lepton-desktop monitor``
show the same numbers.
"""
