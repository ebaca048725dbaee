"""Drafts: a causal view proposes whole fills; the text after the hole picks one.

For a causal model the best fill of a hole is the one that makes the whole document most
likely, ``p(fill | before) * p(after | before, fill)``: the first factor is what the model
knows from the left, the second is how well the fill leads into the text the hole must meet.
``propose`` runs a beam search from the left context (healed, ``infill.heal``) and keeps the
fills the model would end where the following text begins; ``rank`` scores each with the
following text appended, in one batched pass, and the best wins. The hole's end is thus
decided by the suffix, as an infilling model's is, while every token comes from what the
base model learned.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .heal import beginning, continuing, vocabulary_texts
from .lines import SENTENCE_END, between_sentences
from .plan import Canvas
from .sample import Sampled, SamplerStep, StepCallback
from .types import Cancelled, InfillError


def drafter_of(denoiser) -> object | None:
    """The family's causal view that drafts fills (``denoiser.drafter``, optional: the
    embedded default), or ``None``."""
    return getattr(denoiser, "drafter", None)

if TYPE_CHECKING:  # the models package imports this module
    from .models.runtime.transformer import PastKV, Transformer


@dataclass(frozen=True)
class Draft:
    """One proposed fill: its tokens (the healed text first), its text without the healed
    text, the white space it still owes the following text (a line break before a line
    start, a space before a word after one; ``""`` when none), and its scores
    (``proposed``: beam log-probability with the end; ``score``: with the text after the
    hole)."""

    tokens: tuple[int, ...]
    #: Each token's log-probability under the causal view as it was proposed.
    logps: tuple[float, ...]
    text: str
    owed: str
    proposed: float
    score: float = -math.inf


@dataclass
class Drafter:
    """Beam search and ranking over one causal model and its tokenizer."""

    model: Transformer
    tokenizer: object
    tokens: int
    end_ids: frozenset[int]
    special: frozenset[int]
    #: Beams kept per step, drafts ranked, and tokens of the following text scored with
    #: each draft: on a held-out dev set (60 single-line holes in held-out corpus files)
    #: 4 drafts and 24 tokens ranked as well as 6 and 48, a second faster per fill.
    width: int = 6
    keep: int = 4
    window: int = 24
    device: torch.device | str = "cpu"
    #: The network the beam steps run on, when not ``model``: on a CPU a bf16 copy, since a
    #: step streams every weight for a handful of tokens (1.8x faster a step measured, 98%
    #: of next-token choices the same on HumanEval text) while the prefill and the ranking,
    #: many tokens a pass, stay faster in fp32.
    stepper: Transformer | None = None

    def __post_init__(self) -> None:
        self._texts = vocabulary_texts(self.tokenizer)[: self.tokens]
        self._never = torch.zeros(self.tokens, dtype=torch.bool)
        self._never[sorted(t for t in self.special | self.end_ids if t < self.tokens)] = True
        self._device = torch.device(self.device)
        from .models.runtime.transformer import ContextCache  # here: the models package imports us

        self._context = ContextCache(self.model, self._device)

    @torch.inference_mode()
    def propose(self, context: list[int], heal: str, after: str, owed: str,
                budget: int, exact: bool = False,
                on_step: Callable[[int, tuple[int, ...]], None] | None = None,
                should_cancel: Callable[[], bool] | None = None, keep: int | None = None,
                sentences: bool = False) -> tuple[list[Draft], PastKV, torch.Tensor]:
        """Drafts of at most ``budget`` tokens (exactly ``budget`` when ``exact``) after
        ``context`` (token ids, the healed token left out), the first spelling ``heal``.
        A draft ends where the model's next token would begin ``after`` (the text after the
        hole), or, until the draft ends with ``owed`` (the white space a fill must end with
        there: a line break before a line start), ``owed`` + ``after``. Returns the drafts,
        best proposed first, and the context's key/value cache and last logits for
        ``rank``. When no beam ended within the budget, the likeliest beam is the one draft
        (cut off). ``on_step`` sees each step and the leading beam's tokens;
        ``should_cancel`` is asked before each step; ``keep`` overrides how many drafts are
        returned; ``sentences``: a draft ends only where a sentence does (a hole between two
        sentences, ``infill.lines.between_sentences``)."""
        keep = keep or self.keep
        # The context read last is reused where this one shares it (the holes of one
        # document, a document filled again).
        past, start_logits = self._context.read(context)
        direct = beginning(self.tokenizer, self.tokens, after, self.end_ids, self.special)
        broken = (beginning(self.tokenizer, self.tokens, owed + after, self.end_ids,
                            self.special) if owed and after else direct)
        # Each beam: its tokens, their log-probabilities, its text (the healed text first).
        beams: list[tuple[tuple[int, ...], tuple[float, ...], str]] = [((), (), "")]
        scores = torch.zeros(1, device=self._device)
        last = start_logits[None]
        stepper = self.stepper or self.model
        beam_past = past.cast(_dtype_of(stepper)).branch()
        done: list[Draft] = []
        for step in range(budget + 1):
            if should_cancel is not None and should_cancel():
                raise Cancelled("the fill was cancelled")
            lp = torch.log_softmax(last.float()[:, : self.tokens], dim=-1)
            if not exact or step == budget:  # an exact hole ends only at its length
                done += self._ended(beams, scores, lp.exp(), heal, after, owed, direct,
                                    broken, exact, sentences)
            if step == budget:
                break
            lp = lp.masked_fill(self._never.to(lp.device), -math.inf)
            for b, (_, _, text) in enumerate(beams):
                if len(text) < len(heal):
                    allowed = continuing(self.tokenizer, self.tokens, heal[len(text):],
                                         self.special)
                    lp[b] = lp[b].masked_fill(~allowed.to(lp.device), -math.inf)
            total = (scores[:, None] + lp).flatten()
            top = torch.topk(total, min(self.width, int(torch.isfinite(total).sum())))
            if not len(top.values):
                break
            best_done = sorted((d.proposed for d in done), reverse=True)
            if (not exact and len(best_done) >= keep
                    and best_done[keep - 1] > float(top.values[0])):
                break  # no beam left can beat the drafts already ended
            rows = torch.div(top.indices, self.tokens, rounding_mode="floor")
            picked = top.indices % self.tokens
            steps = lp[rows, picked].tolist()
            beams = [(beams[r][0] + (t,), beams[r][1] + (s,), beams[r][2] + self._texts[t])
                     for r, t, s in zip(rows.tolist(), picked.tolist(), steps, strict=True)]
            scores = top.values
            beam_past = beam_past.select(rows)
            logits, beam_past = stepper.extend(picked[:, None].to(self._device), beam_past)
            last = logits[:, -1]
            if on_step is not None:
                on_step(step + 1, beams[0][0])
        if not done and beams[0][0]:
            toks, logps, text = beams[0]
            done.append(Draft(toks, logps, text[len(heal):], "", float(scores[0])))
        done.sort(key=lambda d: d.proposed, reverse=True)
        return done[:keep], past, start_logits

    def _ended(self, beams, scores: torch.Tensor, probs: torch.Tensor, heal: str, after: str,
               owed: str, direct: torch.Tensor, broken: torch.Tensor, exact: bool,
               sentences: bool) -> list[Draft]:
        """The beams that may end here, as drafts scored with the probability that the
        following text comes next (``direct``; ``broken`` while the draft still owes its
        white space)."""
        out = []
        for b, (toks, logps, text) in enumerate(beams):
            if len(text) < len(heal):
                continue
            body = text[len(heal):]
            if not exact and (not body.strip()
                              or (body[-1].isspace() and after[:1].isspace())
                              or (sentences and not SENTENCE_END.search(body.rstrip()))):
                # A hole asked for gets text; and a fill never ends in white space the
                # following text begins with (the tokenizer would have joined them).
                continue
            paid = not owed or not (heal + body) or (heal + body).endswith(owed)
            mask = direct if paid else broken
            p_end = float(probs[b][mask.to(probs.device)].sum()) if not exact else 1.0
            if p_end > 0:
                out.append(Draft(toks, logps, body, "" if paid else owed,
                                 float(scores[b]) + math.log(p_end)))
        return out

    @torch.inference_mode()
    def rank(self, drafts: list[Draft], heal: str, after: str, past: PastKV,
             start_logits: torch.Tensor) -> list[Draft]:
        """``drafts`` with ``score`` = log p(healed text + draft + the following text's
        first ``window`` tokens | context), best first: one batched pass over all drafts."""
        if not drafts:
            return []
        after_ids = self.tokenizer(after[:2000], add_special_tokens=False)["input_ids"]
        tail = self.tokenizer.decode(after_ids[: self.window])
        texts = [heal + d.text + d.owed + tail for d in drafts]
        seqs = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        longest = max(len(s) for s in seqs)
        pad = min(self.end_ids)
        ids = torch.tensor([s + [pad] * (longest - len(s)) for s in seqs], dtype=torch.long,
                           device=self._device)
        logits, _ = (self.model.extend(ids[:, :-1], past.branch()) if longest > 1
                     else (None, None))
        first = start_logits[None, None].expand(len(seqs), 1, -1)
        every = first if logits is None else torch.cat([first, logits], dim=1)
        lp = torch.log_softmax(every.float()[..., : self.tokens], dim=-1)
        token_lp = lp.gather(-1, ids[..., None]).squeeze(-1)
        real = torch.tensor([[i < len(s) for i in range(longest)] for s in seqs],
                            device=token_lp.device)
        totals = token_lp.masked_fill(~real, 0).sum(-1).tolist()
        ranked = [Draft(d.tokens, d.logps, d.text, d.owed, d.proposed, s)
                  for d, s in zip(drafts, totals, strict=True)]
        ranked.sort(key=lambda d: d.score, reverse=True)
        return ranked


def fill_canvas(drafter: Drafter, canvas: Canvas, text: str, prefix_ids: list[int],
                end_id: int, *, accept: Callable[[torch.Tensor], bool] | None = None,
                unused: Callable[[torch.Tensor], int] | None = None,
                on_step: StepCallback | None = None,
                should_cancel: Callable[[], bool] | None = None) -> tuple[Sampled, dict]:
    """Every hole of ``canvas`` filled by the best-ranked draft, in document order (a later
    hole's context holds the earlier fills). ``accept`` (a syntax constraint's verdict on
    the canvas with a draft in place) passes over drafts it rejects while any is left; with
    it, twice as many drafts are proposed. ``unused`` (the parameters the functions
    holding the hole leave unread with a draft in place) picks, among the accepted drafts,
    the best-ranked of those that leave the fewest unread.
    Unused positions of an auto hole hold ``end_id``. Returns the canvas and a report."""
    x = torch.tensor(canvas.ids, dtype=torch.long)
    confidence: dict[int, float] = {}
    steps = passes = rejected = 0
    report: dict[str, object] = {"drafts": [], "chosen": []}
    for i, run in enumerate(canvas.runs):
        positions = list(run.positions)
        if not positions:
            continue
        first = positions[0]
        context = [t for t in x[:first].tolist() if t != end_id]
        if not context:
            context = list(prefix_ids)
        if not context:
            raise InfillError("the drafts policy needs a token before the hole")
        nxt = canvas.runs[i + 1].hole.start if i + 1 < len(canvas.runs) else canvas.window[1]
        after = text[run.hole.end : max(run.hole.end, min(nxt, canvas.window[1]))]
        owed = owed_space(text, run.hole.end, after)
        done_before = steps

        def progress(step: int, lead: tuple[int, ...], positions=positions,
                     offset=done_before) -> None:
            if on_step is None:
                return
            shown = x.clone()
            shown[positions[: len(lead)]] = torch.tensor(lead[: len(positions)])
            on_step(SamplerStep(offset + step, offset + len(positions),
                                len(positions) - len(lead), 1, shown))

        drafts, past, start = drafter.propose(context, run.heal, after, owed,
                                              len(positions), exact=run.exact,
                                              on_step=progress, should_cancel=should_cancel,
                                              keep=None if accept is None else 2 * drafter.keep,
                                              sentences=between_sentences(text, run.hole.start,
                                                                          run.hole.end))
        ranked = drafter.rank(drafts, run.heal, after, past, start)
        owed_ids = drafter.tokenizer(owed, add_special_tokens=False)["input_ids"] if owed else []
        steps += max((len(d.tokens) for d in drafts), default=0)
        passes += max((len(d.tokens) for d in drafts), default=0) + 2
        chosen, fewest = None, None
        for draft in ranked:
            _place(x, positions, draft, end_id, owed_ids)
            if accept is not None and not accept(x):
                rejected += 1
                continue
            if unused is None:
                chosen = draft
                break
            left = unused(x)
            if fewest is None or left < fewest:
                chosen, fewest = draft, left
            if left == 0:
                break
        if chosen is None and ranked:
            chosen = ranked[0]  # the constraint rejects all: the likeliest stands
        if chosen is not None:
            _place(x, positions, chosen, end_id, owed_ids)
        if chosen is not None:
            confidence.update({p: math.exp(lp) for p, lp in zip(positions, chosen.logps,
                                                                 strict=False)})
        report["drafts"].append(len(ranked))
        report["chosen"].append(ranked.index(chosen) if chosen is not None else None)
    report["rejected"] = rejected
    satisfied = None if accept is None else accept(x)
    return Sampled(x, confidence, steps, passes, satisfied=satisfied), report


def _dtype_of(model) -> torch.dtype:
    weight = getattr(getattr(model, "embed_tokens", None), "weight", None)
    return weight.dtype if weight is not None else torch.float32


def owed_space(text: str, end: int, after: str) -> str:
    """The white space a fill of a hole ending at ``end`` must end with: a line break
    before a line start; a space where a space precedes the hole and a word follows it."""
    if end > 0 and text[end - 1] == "\n":
        return "\n"
    if end > 0 and text[end - 1] == " " and after[:1].strip():
        return " "
    return ""


def _place(x: torch.Tensor, positions: list[int], draft: Draft, end_id: int,
           owed_ids: list[int]) -> None:
    """The draft's tokens at ``positions``, the white space it owes after them where it
    fits (``owed_ids``), the family's end token in the rest."""
    tokens = list(draft.tokens) + (owed_ids if draft.owed else [])
    tokens = tokens[: len(positions)]
    x[positions] = torch.tensor(tokens + [end_id] * (len(positions) - len(tokens)),
                                dtype=torch.long)
