"""Incremental causal passes give the logits of one full causal pass, however the context
is cached: grown token by token, or shared by rows that branch from it."""

import torch

from infill.models.runtime.transformer import Transformer, TransformerConfig


def small_model() -> Transformer:
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=50, hidden_size=48, intermediate_size=96, num_layers=2,
                            num_heads=6, num_kv_heads=2, max_position=64)
    return Transformer(cfg).eval()


def test_rows_branching_from_a_shared_context_match_full_causal_passes():
    model = small_model()
    context = torch.tensor([[3, 14, 15, 9, 26, 5]])
    branches = torch.tensor([[7, 8, 9], [10, 11, 12], [7, 1, 2]])
    with torch.inference_mode():
        _, past = model.extend(context)
        first, grown = model.extend(branches[:, :2], past.branch())
        # Reorder the rows as a beam search does, then take one more step.
        order = torch.tensor([2, 0, 1])
        last, _ = model.extend(branches[order, 2:], grown.select(order))
        full = model(torch.cat([context.expand(3, -1), branches], dim=1), causal=True)
    assert torch.allclose(first, full[:, 6:8], atol=1e-4)
    assert torch.allclose(last[:, 0], full[order, 8], atol=1e-4)


def test_a_context_grown_token_by_token_matches_one_pass():
    model = small_model()
    ids = torch.tensor([[4, 8, 15, 16, 23, 42]])
    with torch.inference_mode():
        logits, past = model.extend(ids[:, :3])
        steps = [logits]
        for i in range(3, 6):
            logits, past = model.extend(ids[:, i : i + 1], past)
            steps.append(logits)
        full = model(ids, causal=True)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-4)


def test_a_bf16_copy_steps_on_from_an_fp32_context():
    import copy

    model = small_model()
    half = copy.deepcopy(model).to(torch.bfloat16)
    context, step = torch.tensor([[3, 14, 15, 9]]), torch.tensor([[26], [5]])
    with torch.inference_mode():
        _, past = model.extend(context)
        fast, _ = half.extend(step, past.cast(torch.bfloat16).branch())
        exact, _ = model.extend(step, past.branch())
    assert fast.dtype == torch.bfloat16
    assert torch.allclose(fast.float(), exact, atol=5e-2, rtol=5e-2)
