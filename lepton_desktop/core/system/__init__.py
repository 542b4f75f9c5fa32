"""The machine and its processes: system metrics sampled cheaply (CPU, memory, GPU),
and children that stop with their parent (:mod:`.lifeline`)."""
