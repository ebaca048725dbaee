"""The model worker: one thread, one loaded model, two queues of fills.

The event loop never runs the model. Each fill becomes a :class:`Job`; the single worker
thread loads the model lazily on the first job (and again only when the model, device or
quantization settings change), then runs the jobs one at a time: ghost text (``inline``)
first, explicit fills in submission order. Ghost text never waits behind an explicit fill:
a running explicit fill stops at its next denoising step when an inline job arrives and is
run again from the start afterwards (at most :data:`MAX_RESTARTS` times, then it runs to
the end). A job is cancelled by setting its event: a queued job is skipped, a running one
stops at the next denoising step, and the loaded model stays.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import quant
from infill.engine import fill
from infill.models import ModelLoadError
from infill.models.default import TINY_NOTE, resolve_model
from infill.types import Cancelled, Constraint, Denoiser, InfillRequest, InfillResult, StepInfo

from .config import Settings

log = logging.getLogger(__name__)

#: How often one explicit fill may be preempted by ghost text before it runs to the end.
MAX_RESTARTS = 3
#: How long ``close`` waits for a running fill to stop at its next step.
JOIN_SECONDS = 5.0


def _is_test_model(path: Path, note: str | None) -> bool:
    """The tiny random model, named (``tiny``) or by its directory's own note."""
    if note == TINY_NOTE:
        return True
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    own = config.get("lacuna", {}).get("note", "") if isinstance(config, dict) else ""
    return isinstance(own, str) and own.startswith("tiny test model")


def load(settings: Settings) -> tuple[Denoiser, dict[str, object]]:
    """Load the configured model through ``quant.load``: it quantizes the weights while
    they stream in (or not, for ``none``) and reads a saved quantized directory as is."""
    path, note = resolve_model(settings.model)
    denoiser = quant.load(path, device=settings.device, mode=settings.quant)
    info: dict[str, object] = {"path": str(path), "family": getattr(denoiser, "family", None),
                               "quant": settings.quant, "test_model": _is_test_model(path, note)}
    if note:
        info["note"] = note
    return denoiser, info


def describe(info: dict[str, object]) -> str:
    """One line naming a loaded model and where it came from (``load``'s ``info``)."""
    if not info:
        return "model not loaded yet"
    text = f"model {info.get('family')} from {info.get('path')}"
    if info.get("quant") not in (None, "none"):
        text += f", quantization {info['quant']}"
    if info.get("test_model"):
        text += " (random test model: its fills mean nothing)"
    return text


@dataclass(eq=False)
class Job:
    request: InfillRequest
    settings: Settings
    constraint: Constraint | None = None
    on_step: Callable[[StepInfo], None] | None = None
    inline: bool = False
    future: Future[InfillResult] = field(default_factory=Future)
    event: threading.Event = field(default_factory=threading.Event)
    #: Why the job was cancelled: "cancelled", "superseded", "stale", "shutdown".
    reason: str | None = None
    #: How often ghost text preempted it.
    restarts: int = 0
    started: threading.Event = field(default_factory=threading.Event)

    def cancel(self, reason: str = "cancelled") -> None:
        if self.reason is None:
            self.reason = reason
        self.event.set()

    @property
    def cancelled(self) -> bool:
        return self.event.is_set()


class Worker:
    """Runs jobs on one daemon thread, sharing one model; inline jobs first."""

    def __init__(self, loader: Callable[[Settings], tuple[Denoiser, dict]] = load) -> None:
        self._loader = loader
        self._ready = threading.Condition()
        self._inline: deque[Job] = deque()
        self._explicit: deque[Job] = deque()
        self._running: Job | None = None
        self._stopping = False
        self._key: tuple | None = None
        self._denoiser: Denoiser | None = None
        self.model_info: dict[str, object] = {}
        self.loads = 0
        self._thread = threading.Thread(target=self._run, name="lacuna-model", daemon=True)
        self._thread.start()

    def submit(
        self,
        request: InfillRequest,
        settings: Settings,
        *,
        constraint: Constraint | None = None,
        on_step: Callable[[StepInfo], None] | None = None,
        inline: bool = False,
    ) -> Job:
        job = Job(request, settings, constraint, on_step, inline)
        with self._ready:
            if self._stopping:
                job.cancel("shutdown")
            (self._inline if inline else self._explicit).append(job)
            self._ready.notify()
        return job

    def loaded(self, settings: Settings) -> bool:
        """Whether the model ``settings`` name is the one loaded now."""
        return self._denoiser is not None and self._key == settings.model_key()

    def close(self, timeout: float = JOIN_SECONDS) -> None:
        """Cancel every job, stop the thread and wait for it briefly: a process that exits
        while the thread is inside the model aborts (status 134)."""
        with self._ready:
            self._stopping = True
            for job in [*self._inline, *self._explicit, self._running]:
                if job is not None:
                    job.cancel("shutdown")
            self._ready.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _model(self, settings: Settings) -> Denoiser:
        key = settings.model_key()
        if self._denoiser is None or key != self._key:
            self._denoiser = None  # let the old model go before the new one loads
            self._key = None
            denoiser, info = self._loader(settings)
            self._denoiser, self._key, self.model_info = denoiser, key, info
            self.loads += 1
        return self._denoiser

    def _next(self) -> Job | None:
        with self._ready:
            while not (self._inline or self._explicit or self._stopping):
                self._ready.wait()
            if self._inline or self._explicit:
                job = (self._inline or self._explicit).popleft()
                self._running = job
                return job
            return None

    def _preempted(self, job: Job) -> bool:
        """An explicit fill yields to waiting ghost text (boundedly); a superseded inline
        job still in the queue is no reason to start over."""
        return (not job.inline and job.restarts < MAX_RESTARTS
                and any(not j.cancelled for j in list(self._inline)))

    def _run(self) -> None:
        while (job := self._next()) is not None:
            try:
                self._serve(job)
            finally:
                self._running = None
        for job in [*self._inline, *self._explicit]:  # stopped: answer what is left
            self._finish(job, Cancelled("shutdown"))

    def _finish(self, job: Job, outcome: InfillResult | BaseException) -> None:
        if not job.started.is_set() and not job.future.set_running_or_notify_cancel():
            return
        if isinstance(outcome, BaseException):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)

    def _serve(self, job: Job) -> None:
        if job.cancelled:
            self._finish(job, Cancelled(job.reason or "cancelled"))
            return
        if not job.started.is_set():
            if not job.future.set_running_or_notify_cancel():
                return
            job.started.set()
        try:
            denoiser = self._model(job.settings)

            def step(info: StepInfo, job: Job = job) -> None:
                if job.on_step is not None and not job.cancelled:
                    job.on_step(info)

            result = fill(
                job.request,
                denoiser,
                constraint=job.constraint,
                on_step=step,
                should_cancel=lambda: job.event.is_set() or self._preempted(job),
            )
        except Cancelled:
            if not job.cancelled:  # preempted by ghost text: run again after it
                job.restarts += 1
                with self._ready:
                    self._explicit.appendleft(job)
                return
            job.future.set_exception(Cancelled(job.reason or "cancelled"))
        except BaseException as e:  # every failure goes back to the request
            if not isinstance(e, ModelLoadError | ValueError):
                log.exception("fill failed")
            job.future.set_exception(e)
        else:
            job.future.set_result(result)
