"""Masked LMs (BERT, ModernBERT) through AutoModelForMaskedLM, as iterative infillers."""

import pytest
import torch
from family_checks import check_fill, check_interface, check_shapes
from tiny_families import build_tiny_bert, build_tiny_modernbert

from infill.models import detect_family, load_denoiser
from infill.models.runtime.weights import ModelLoadError

BUILDERS = {"bert": build_tiny_bert, "modernbert": build_tiny_modernbert}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def mlm(request, tmp_path_factory):
    path = BUILDERS[request.param](tmp_path_factory.mktemp(request.param))
    return request.param, path, load_denoiser(path, device="cpu")


def test_detected_and_framed_with_cls_and_sep(mlm):
    kind, path, den = mlm
    assert detect_family(path).family == "masked-lm"
    check_interface(den, "masked-lm")
    tok = den.tokenizer
    assert den.mask_id == tok.mask_token_id
    assert den.prefix_ids == (tok.cls_token_id,) and den.suffix_ids == (tok.sep_token_id,)
    assert den.end_ids == frozenset() and not den.instruct
    assert den.max_length == den.model.config.max_position_embeddings


def test_logits_are_the_heads_own_rows_unshifted(mlm):
    _, _, den = mlm
    check_shapes(den)
    ids = torch.tensor([[*den.prefix_ids, 7, den.mask_id, 8, *den.suffix_ids]])
    with torch.inference_mode():
        own = den.model(input_ids=ids).logits
    torch.testing.assert_close(den.logits(ids), own)
    torch.testing.assert_close(den.logits(ids, positions=torch.tensor([2])), own[:, [2]])


def test_iterative_unmasking_fills_only_the_holes(mlm):
    check_fill(mlm[2])


def test_a_checkpoint_without_its_mlm_head_is_refused(tmp_path):
    from transformers import BertConfig, BertModel

    path = build_tiny_bert(tmp_path / "bert")
    config = BertConfig.from_pretrained(str(path))
    config.architectures = ["BertForMaskedLM"]
    BertModel(config).save_pretrained(str(path))  # body only, under the MLM's name
    with pytest.raises(ModelLoadError, match="masked-LM head"):
        load_denoiser(path, device="cpu")
