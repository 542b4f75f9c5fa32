"""Tests of lepton_desktop.gui.tuning."""
