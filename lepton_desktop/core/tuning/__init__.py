"""Hyperparameter tuning with Optuna: studies in the project file or a shared storage."""
