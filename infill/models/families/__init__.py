"""The model families: each module detects its checkpoints from their config and loads
them onto a ``Denoiser``."""
