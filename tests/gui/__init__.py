"""GUI tests (pytest-qt, offscreen); sub-packages mirror lepton_desktop.gui's features."""
