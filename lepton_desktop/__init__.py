"""Lepton Desktop: a model's whole life on one's own machine, in one project file.

Importing this package imports neither Qt nor torch (start-up stays fast and the
core stays usable headless).
"""

__version__ = "0.1.0"
