"""DiffusionGemma through transformers' DiffusionGemmaForBlockDiffusion, behind Denoiser."""

import pytest
import torch
from family_checks import check_fill, check_interface, check_shapes
from tiny_families import build_tiny_diffusion_gemma

from infill.models import detect_family, diffusion_gemma, load_denoiser
from infill.models.runtime.weights import ModelLoadError


@pytest.fixture(scope="module")
def dg_dir(tmp_path_factory):
    return build_tiny_diffusion_gemma(tmp_path_factory.mktemp("diffusiongemma"), seed=4)


@pytest.fixture(scope="module")
def dg(dg_dir):
    return load_denoiser(dg_dir, device="cpu")


def test_detected_and_loaded(dg_dir, dg):
    assert detect_family(dg_dir).family == "diffusion-gemma"
    check_interface(dg, "diffusion-gemma")
    assert dg.mask_id == dg.tokenizer.convert_tokens_to_ids("<mask>")
    assert dg.prefix_ids == (dg.tokenizer.bos_token_id,)
    assert {dg.tokenizer.eos_token_id, dg.tokenizer.pad_token_id} <= dg.end_ids


def test_canvas_is_split_at_the_first_hole_and_holes_become_noise(dg):
    check_shapes(dg)
    m = dg.mask_id
    ids = torch.tensor([[dg.prefix_ids[0], 20, 21, m, m, 22, 23]])
    got = dg.logits(ids, positions=torch.tensor([3, 4]))
    # The same call made by hand: prefix through the encoder, holes + right context as the
    # decoder's canvas, the holes replaced by the adapter's seeded uniform noise.
    canvas = ids[:, 3:].clone()
    noise = torch.randint(0, dg.vocab_size, canvas.shape,
                          generator=torch.Generator().manual_seed(canvas.shape[1]))
    canvas[canvas == m] = noise[canvas == m]
    with torch.inference_mode():
        want = dg.model(input_ids=ids[:, :3], decoder_input_ids=canvas).logits
    torch.testing.assert_close(got, want[:, :2])
    again = dg.logits(ids, positions=torch.tensor([3, 4]))  # the cached prefix gives the same
    torch.testing.assert_close(again, got)
    full = dg.logits(ids)
    assert int(full[0, 1].argmax()) == 20  # context rows echo their own token


def test_right_context_past_one_canvas_is_cut(dg):
    m = dg.mask_id
    long_tail = [30] * (dg.canvas_length + 10)
    ids = torch.tensor([[dg.prefix_ids[0], m, m, *long_tail]])
    short = torch.tensor([[dg.prefix_ids[0], m, m, *long_tail[: dg.canvas_length - 2]]])
    torch.testing.assert_close(dg.logits(ids, positions=torch.tensor([1, 2])),
                               dg.logits(short, positions=torch.tensor([1, 2])))


def test_fill_stays_inside_the_holes(dg):
    check_fill(dg)


def test_missing_transformers_class_is_named(dg_dir, monkeypatch):
    import transformers

    monkeypatch.setattr(transformers, "DiffusionGemmaForBlockDiffusion", None)
    with pytest.raises(ModelLoadError, match="DiffusionGemmaForBlockDiffusion.*lacks"):
        diffusion_gemma.load(dg_dir, {}, torch.device("cpu"), torch.float32)
