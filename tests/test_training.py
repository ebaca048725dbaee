"""The default model's training code: infill-shaped examples, and the adapter it writes
reproduces the trained network when merged at load."""

from __future__ import annotations

import random

import torch

from training.corpus import choose_hole, make_example
from training.train_default import (
    MASK_ID,
    adapter_tensors,
    anneal,
    batch_of,
    loss_on,
    wrap,
)

SOURCE = "".join(f"def f{i}(x):\n    y = x + {i}\n    return y * 2\n\n" for i in range(12))


def examples(tok, n: int, rng: random.Random) -> list:
    """``n`` infill-shaped training examples cut from SOURCE."""
    out = []
    while len(out) < n:
        ex = make_example(tok, SOURCE, "python", rng, end_id=0, prefix_id=2, context=24)
        if ex is not None:
            out.append(ex)
    return out


def test_examples_are_holes_padded_with_end_tokens(tiny_denoiser):
    tok = tiny_denoiser.tokenizer
    rng = random.Random(0)
    seen = 0
    for _ in range(40):
        ex = make_example(tok, SOURCE, "python", rng, end_id=0, prefix_id=2, context=24)
        if ex is None:
            continue
        seen += 1
        assert ex.ids[0] == 2 and 1 <= ex.hole.start and ex.hole.stop <= len(ex.ids)
        hole = ex.ids[ex.hole.start:ex.hole.stop]
        text = [t for t in hole if t != 0]
        assert text and hole[:len(text)] == text  # the text first, then only padding
        assert tok.decode(text) in SOURCE
    assert seen >= 20


def test_holes_are_contiguous_spans_of_the_file():
    rng = random.Random(1)
    for _ in range(50):
        span = choose_hole(SOURCE, "python", rng)
        if span is not None:
            a, b = span
            assert 0 <= a < b <= len(SOURCE)


def test_exported_adapter_reproduces_the_trained_network(tiny_model_dir, tmp_path):
    import json
    import shutil

    from infill.models import load_denoiser
    from infill.models.runtime.adapter import save_adapter

    trained = load_denoiser(tiny_model_dir, device="cpu")
    params = wrap(trained.model, rank=4, alpha=8.0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in params.values():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    ids = torch.tensor([[2, 5, 16, 16, 9, 11, 16, 3]])
    with torch.no_grad():
        want = trained.model(ids)

    model = tmp_path / "adapted"
    shutil.copytree(tiny_model_dir, model)
    save_adapter(model / "adapter.safetensors", adapter_tensors(params), lora_scale=2.0)
    config = json.loads((model / "config.json").read_text())
    config["lacuna"]["adapter"] = "adapter.safetensors"
    (model / "config.json").write_text(json.dumps(config))
    merged = load_denoiser(model, device="cpu")
    with torch.no_grad():
        got = merged.model(ids)
    # every column but the mask token's: its embedding row is tied to the head, and the
    # trained row is merged into both (its logit is never used: masks are never proposed)
    keep = torch.arange(got.shape[-1]) != 16
    assert torch.allclose(got[..., keep], want[..., keep], atol=1e-4)


def test_loss_counts_masked_positions_only(tiny_denoiser):
    rng = random.Random(2)
    ids, noisy, masked = batch_of(examples(tiny_denoiser.tokenizer, 2, rng), 0.5, rng)
    assert masked.any() and not masked[:, 0].any()
    assert torch.equal(noisy[~masked], ids[~masked])
    loss, k = loss_on(tiny_denoiser.model, ids, noisy, masked, end_weight=0.3)
    assert k == int(masked.sum()) and torch.isfinite(loss)


def test_prefix_reveal_masks_a_hole_from_a_point_to_its_end(tiny_denoiser):
    """The left-to-right decoding state: real text, then masks to the end of the hole."""
    rng = random.Random(3)
    exs = examples(tiny_denoiser.tokenizer, 8, rng)
    ids, noisy, masked = batch_of(exs, 0.5, rng, prefix_reveal=1.0)
    cuts = set()
    for b, ex in enumerate(exs):
        hole = list(ex.hole)
        first = hole.index(next(p for p in hole if masked[b, p]))
        assert masked[b, hole[first]:hole[-1] + 1].all()  # one run, to the hole's end
        assert not masked[b, : hole[first]].any() and not masked[b, hole[-1] + 1:].any()
        text = sum(1 for p in hole if ex.ids[p] != 0)
        assert first <= text  # the cut falls inside the text or just after it
        cuts.add(first)
    assert len(cuts) > 1  # the cut point is drawn, not fixed


def test_distillation_pulls_towards_the_causal_base_at_text_positions_only(tiny_model_dir):
    from infill.models import load_denoiser

    student = load_denoiser(tiny_model_dir, device="cpu").model
    teacher = load_denoiser(tiny_model_dir, device="cpu").model.eval()
    params = wrap(student, rank=4, alpha=8.0)
    rng = random.Random(4)
    tok = load_denoiser(tiny_model_dir, device="cpu").tokenizer
    ids, noisy, masked = batch_of(examples(tok, 4, rng), 0.5, rng)
    plain, _ = loss_on(student, ids, noisy, masked)
    both, _ = loss_on(student, ids, noisy, masked, teacher=teacher, distill=1.0)
    assert both > plain  # the bidirectional student on masks is not yet the causal base
    both.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for k, p in params.items() if "lora_B" in k)
    # End-token targets (the padding) have nothing to learn from the base.
    ends = masked & (ids == 0)
    assert ends.any()
    noisy_ends = ids.masked_fill(ends, MASK_ID)
    only_end, _ = loss_on(student, ids, noisy_ends, ends)
    with_teacher, _ = loss_on(student, ids, noisy_ends, ends, teacher=teacher, distill=1.0)
    assert torch.equal(only_end, with_teacher)


def test_trained_future_biases_travel_in_the_adapter(tiny_model_dir, tmp_path):
    import json
    import shutil

    from infill.models import load_denoiser
    from infill.models.runtime.adapter import save_adapter

    trained = load_denoiser(tiny_model_dir, device="cpu")
    params = wrap(trained.model, rank=4, alpha=8.0, future_bias=-3.0)
    with torch.no_grad():
        for k, p in params.items():
            if ".future_bias." in k:
                p.add_(torch.linspace(0.0, 2.0, p.numel()))
    ids = torch.tensor([[2, 5, 16, 16, 9, 11, 16, 3]])
    with torch.no_grad():
        want = trained.model(ids)

    model = tmp_path / "adapted"
    shutil.copytree(tiny_model_dir, model)
    save_adapter(model / "adapter.safetensors", adapter_tensors(params), lora_scale=2.0,
                 info={"future_bias": -3.0})
    config = json.loads((model / "config.json").read_text())
    config["lacuna"].update(adapter="adapter.safetensors", future_bias=-3.0)
    (model / "config.json").write_text(json.dumps(config))
    merged = load_denoiser(model, device="cpu")
    assert float(merged.model.layers[0].self_attn.future_bias[-1]) == -1.0
    with torch.no_grad():
        got = merged.model(ids)
    keep = torch.arange(got.shape[-1]) != 16
    assert torch.allclose(got[..., keep], want[..., keep], atol=1e-4)


def test_annealing_drifts_every_head_to_the_target_keeping_learned_offsets():
    biases = [torch.nn.Parameter(torch.tensor([-5.0, -4.5]))]
    for _ in range(100):
        anneal(biases, start=-5.0, target=-1.0, steps=100)
    torch.testing.assert_close(biases[0].detach(), torch.tensor([-1.0, -0.5]))
