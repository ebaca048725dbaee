import pytest

from infill.models.embedded.tiny import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Lacuna checkpoint on disk, built once per session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), seed=0)


@pytest.fixture(scope="session")
def tiny_denoiser(tiny_model_dir):
    from infill.models import load_denoiser

    return load_denoiser(tiny_model_dir, device="cpu")
