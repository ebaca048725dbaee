"""Checks every model family must pass, shared by the tests/test_models_*.py files."""

from __future__ import annotations

import torch

from infill.edits import apply_edits, edits_from_result
from infill.engine import fill
from infill.types import Denoiser, Hole, InfillRequest, Length, SamplingOptions

DOC = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"


def check_interface(den: Denoiser, family: str) -> None:
    """The Denoiser protocol, with the attributes ``lacuna doctor`` reads."""
    assert isinstance(den, Denoiser)
    assert den.family == family
    assert isinstance(den.device, torch.device) and isinstance(den.dtype, torch.dtype)
    assert isinstance(den.model, torch.nn.Module)
    assert den.mask_id not in den.end_ids
    assert den.max_length > 64


def check_shapes(den: Denoiser) -> torch.Tensor:
    """Full and row-selected logits agree and have ``[batch, length|rows, vocab]`` shape."""
    body = den.tokenizer("x = 1\n", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([[*den.prefix_ids, *body, den.mask_id, den.mask_id, *body,
                         *den.suffix_ids]])
    holes = torch.tensor([len(den.prefix_ids) + len(body), len(den.prefix_ids) + len(body) + 1])
    full = den.logits(ids)
    rows = den.logits(ids, positions=holes)
    assert full.dtype == torch.float32 and rows.dtype == torch.float32
    assert full.shape[:2] == ids.shape and rows.shape[:2] == (1, 2)
    assert full.shape[-1] == rows.shape[-1] >= len(den.tokenizer)
    torch.testing.assert_close(full[:, holes], rows, rtol=1e-4, atol=1e-4)
    return full


def check_fill(den: Denoiser) -> None:
    """Holes get exactly their tokens, no mask survives, nothing outside a hole changes."""
    first = DOC.index("a + b")
    second = DOC.index("a - b")
    holes = [Hole(first, first + 5, Length.exact(3)), Hole(second, second + 5, Length.auto(4))]
    req = InfillRequest(DOC, holes, options=SamplingOptions(steps=4, seed=3))
    result = fill(req, den)
    assert len(result.fills) == 2
    assert len(result.fills[0].token_ids) == 3
    assert len(result.fills[1].token_ids) + result.fills[1].trimmed == 4
    for f in result.fills:
        assert den.mask_id not in f.token_ids
    out = apply_edits(DOC, edits_from_result(result))
    head, tail = DOC[:first], DOC[second + 5:]
    middle = DOC[first + 5:second]
    assert out.startswith(head) and out.endswith(tail)
    assert middle in out[len(head):len(out) - len(tail)]
    again = fill(req, den)
    assert [f.text for f in again.fills] == [f.text for f in result.fills]  # deterministic
