"""Training MLP, CNN and RNN models (torch is imported only here and in workers)."""
