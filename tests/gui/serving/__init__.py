"""Tests of lepton_desktop.gui.serving."""
