"""The only package that speaks SQL.

Contract (after Optuna's ``BaseStorage``): every function takes an open
``sqlite3.Connection`` first; a connection belongs to one thread; functions that
write either run inside the caller's :func:`~lepton_desktop.core.store.db.transaction`
or open their own; records returned are frozen dataclasses that later writes never
change.
"""
