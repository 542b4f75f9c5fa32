"""Tests of lepton_desktop.gui.datasets."""
