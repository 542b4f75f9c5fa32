"""Widgets, item models and dialogs used by the tabs."""
