"""A tiny Lacuna-family checkpoint built in a second, for tests and the first-run demo.

It is written exactly as a real one is (``config.json``, ``model.safetensors`` with Llama
parameter names, ``tokenizer.json``) and loaded through the same ``load_denoiser`` path, so
the tests exercise real loading code. Its weights are random unless ``train_steps`` asks
for a few seconds of masked-diffusion training on a toy corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..runtime.transformer import Transformer, TransformerConfig

SPECIALS = ["<|endoftext|>", "<|mask|>", "<|bos|>"]
END_ID, MASK_ID, BOS_ID = 0, 1, 2

TOY_CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "def sub(a, b):\n    return a - b\n",
    "def mul(a, b):\n    return a * b\n",
    "def square(x):\n    return x * x\n",
    "def is_even(n):\n    return n % 2 == 0\n",
    "def greet(name):\n    print('Hello, ' + name)\n",
    "for i in range(10):\n    total += i\n",
    "if x > 0:\n    y = x\nelse:\n    y = -x\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
    "import os\nimport sys\n\nprint(sys.argv)\n",
    "The cat sat on the mat. The dog slept by the door.\n",
    "# Install\n\nRun the setup script, then start the server.\n",
    "She opened the window and the cold air came in.\n",
    "Tests read like examples of use.\n",
    "function add(a, b) {\n  return a + b;\n}\n",
    "const xs = [1, 2, 3].map((x) => x * 2);\n",
    "你好，世界。 Emoji 🙂 and CJK 漢字 text.\r\n",
]


def build_tokenizer(vocab_size: int = 384):
    """A byte-level BPE tokenizer trained on the toy corpus (any text round-trips)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TOY_CORPUS * 4, trainer=trainer)
    assert [tok.token_to_id(s) for s in SPECIALS] == [END_ID, MASK_ID, BOS_ID]
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=SPECIALS[END_ID],
        pad_token=SPECIALS[END_ID],
        mask_token=SPECIALS[MASK_ID],
        bos_token=SPECIALS[BOS_ID],
    )


def tiny_config(vocab_size: int, hidden: int = 64, layers: int = 2, max_length: int = 512) -> dict:
    return {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": hidden * 2,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": max_length,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "lacuna": {
            "mask_token_id": MASK_ID,
            "end_token_ids": [END_ID],
            "prefix_token_ids": [BOS_ID],
            "shift_logits": True,
            "note": "tiny test model: random weights unless trained on the toy corpus",
        },
    }


def build_tiny_model(path: str | Path, seed: int = 0, train_steps: int = 0) -> Path:
    """Write a tiny checkpoint to ``path`` (created if needed) and return the path."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = tiny_config(len(tokenizer))
    cfg = TransformerConfig(
        vocab_size=config["vocab_size"], hidden_size=config["hidden_size"],
        intermediate_size=config["intermediate_size"], num_layers=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"], num_kv_heads=config["num_key_value_heads"],
        max_position=config["max_position_embeddings"], tie_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Transformer(cfg)
    for name, p in model.named_parameters():
        if "norm" not in name:
            torch.nn.init.normal_(p, std=0.02)
    if train_steps:
        _train_toy(model, tokenizer, train_steps, seed)
    state = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()
             if k != "lm_head.weight"}
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    tokenizer.save_pretrained(str(path))
    return path


def _train_toy(model: Transformer, tokenizer, steps: int, seed: int) -> None:
    """Masked-diffusion training on the toy corpus: mask a random fraction, predict it."""
    gen = torch.Generator().manual_seed(seed)
    docs = [[BOS_ID, *tokenizer(t, add_special_tokens=False)["input_ids"]] for t in TOY_CORPUS]
    width = max(len(d) for d in docs)
    batch = torch.tensor([d + [END_ID] * (width - len(d)) for d in docs])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        t = torch.rand(len(docs), 1, generator=gen).clamp(0.1, 1.0)
        noise = torch.rand(batch.shape, generator=gen) < t
        noise[:, 0] = False
        noisy = batch.masked_fill(noise, MASK_ID)
        logits = model(noisy)[:, :-1]  # shifted: row i - 1 scores token i
        target = batch[:, 1:]
        weight = noise[:, 1:].float() / t
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none"
        )
        loss = (loss * weight.reshape(-1)).sum() / weight.numel()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
