"""Tests of lepton_desktop.gui.widgets."""
