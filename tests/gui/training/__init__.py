"""Tests of lepton_desktop.gui.training."""
