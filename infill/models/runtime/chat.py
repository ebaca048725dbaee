"""Base or instruct: how a family frames the canvas for its checkpoint.

A base checkpoint sees the document plainly: ``BOS + canvas`` (``prefix_ids``/``suffix_ids``
of the ``Denoiser``). An instruct checkpoint was tuned on chat turns, so infilling is posed as
an instruction: the user turn asks for the fill and the canvas (context with masks) is the
assistant's reply, closed by the end-of-turn token:

    prefix_ids = chat_template(user: instruction) + assistant header
    suffix_ids = end of the assistant turn (``<|eot_id|>``, ``<|im_end|>``, ...)

The template is the checkpoint's own (``tokenizer_config.json`` / ``chat_template.jinja``),
rendered by transformers' sandboxed Jinja, never remote code. Which form applies is decided
from the checkpoint's name (``-Instruct``, ``-it``, ``chat``) and can be forced with
``$LACUNA_INSTRUCT=1`` or ``0``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: What the user turn asks of an instruct checkpoint.
DEFAULT_INSTRUCTION = (
    "Rewrite the following text, filling in every masked span so that it reads naturally. "
    "Keep everything else exactly as it is."
)
_SENTINEL = "\u2063LACUNA_CANVAS\u2063"
_INSTRUCT_NAME = re.compile(r"instruct|chat|(?:^|[-_/])it(?:$|[-_/])|sft", re.IGNORECASE)


def looks_instruct(path: str | Path, config: dict) -> bool:
    """Whether the checkpoint at ``path`` is an instruct one (env override first)."""
    forced = os.environ.get("LACUNA_INSTRUCT", "").strip().lower()
    if forced in ("1", "true", "yes"):
        return True
    if forced in ("0", "false", "no"):
        return False
    here = Path(path).resolve()
    names = [here.name, str(config.get("_name_or_path", ""))]
    if here.parent.name == "snapshots":  # hub cache: models--ORG--NAME/snapshots/HASH
        names.append(here.parent.parent.name)
    return any(_INSTRUCT_NAME.search(n) for n in names if n)


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_frame(tokenizer, instruction: str = DEFAULT_INSTRUCTION) -> tuple[tuple[int, ...],
                                                                              tuple[int, ...]]:
    """``(prefix_ids, suffix_ids)`` that make the canvas the assistant's reply."""
    from jinja2 import TemplateError

    from .weights import ModelLoadError

    user = [{"role": "user", "content": instruction}]
    try:
        head = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(
            [*user, {"role": "assistant", "content": _SENTINEL}], tokenize=False
        )
    except TemplateError as e:  # the sandbox refused it, or it does not parse
        raise ModelLoadError(
            f"the checkpoint's chat template cannot be rendered in transformers' sandbox "
            f"({type(e).__name__}: {e}); set LACUNA_INSTRUCT=0 to use it as a base model"
        ) from None
    if full.startswith(head) and _SENTINEL in full:
        tail = full[full.index(_SENTINEL) + len(_SENTINEL):].rstrip()
    else:  # a template that rewrites the reply: close with the end token alone
        tail = tokenizer.eos_token or ""
    prefix = tokenizer(head, add_special_tokens=False)["input_ids"]
    suffix = tokenizer(tail, add_special_tokens=False)["input_ids"] if tail else []
    return tuple(prefix), tuple(suffix)


def token_id(tokenizer, text: str) -> int | None:
    """The id of a special token spelled ``text``, if the vocabulary has it."""
    vocab = tokenizer.get_vocab()
    return vocab.get(text)


def end_ids(tokenizer, config: dict, mask_id: int, *extra: int | None) -> frozenset[int]:
    """Tokens that end a fill: the config's and tokenizer's EOS and pad (plus ``extra``, e.g.
    an instruct checkpoint's end of turn), never the mask itself."""
    ends = {config.get("eos_token_id"), config.get("pad_token_id"),
            tokenizer.eos_token_id, tokenizer.pad_token_id, *extra}
    return frozenset(int(i) for i in ends if i is not None and i != mask_id)
