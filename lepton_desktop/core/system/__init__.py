"""System metrics: CPU, memory and (when present) GPU load, sampled cheaply."""
