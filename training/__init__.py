"""Training the embedded default, run from the repository root as modules:
``python -m training.NAME``."""
