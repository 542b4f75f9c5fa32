"""The model registry: versions, aliases, notes, and loading a version back."""
