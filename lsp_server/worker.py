"""The model worker: one thread, one loaded model, a queue of fills.

The event loop never runs the model. Each fill becomes a :class:`Job` on a FIFO queue; the
single worker thread loads the model lazily on the first job (and again only when the
model, device or quantization settings change), then runs the jobs one at a time. A job is
cancelled by setting its event: a queued job is skipped, a running one stops at the next
denoising step (``infill.engine.fill``'s ``should_cancel``), and the loaded model stays.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import quant
from infill.engine import fill
from infill.models import ModelLoadError
from infill.types import Cancelled, Constraint, Denoiser, InfillRequest, InfillResult, StepInfo

from .config import Settings

log = logging.getLogger(__name__)


def resolve_model(path: str | None) -> tuple[Path, str | None]:
    """The directory to load and an optional note; the lead's resolver when it exists."""
    try:
        from infill.models.default import resolve_model as resolve  # type: ignore
    except ImportError:
        resolve = None
    if resolve is not None:
        return resolve(path)
    chosen = path or os.environ.get("LACUNA_MODEL")
    if not chosen:
        raise ModelLoadError(
            "no model configured: set the 'model' setting (initializationOptions) "
            "or the LACUNA_MODEL environment variable to a model directory"
        )
    return Path(chosen).expanduser(), None


def load(settings: Settings) -> tuple[Denoiser, dict[str, object]]:
    """Load the configured model through ``quant.load``: it quantizes the weights while
    they stream in (or not, for ``none``) and reads a saved quantized directory as is."""
    path, note = resolve_model(settings.model)
    denoiser = quant.load(path, device=settings.device, mode=settings.quant)
    info: dict[str, object] = {"path": str(path), "family": getattr(denoiser, "family", None),
                               "quant": settings.quant}
    if note:
        info["note"] = note
    return denoiser, info


@dataclass(eq=False)
class Job:
    request: InfillRequest
    settings: Settings
    constraint: Constraint | None = None
    on_step: Callable[[StepInfo], None] | None = None
    future: Future[InfillResult] = field(default_factory=Future)
    event: threading.Event = field(default_factory=threading.Event)
    #: Why the job was cancelled: "cancelled", "superseded", "stale", "shutdown".
    reason: str | None = None
    steps_done: int = 0
    started: threading.Event = field(default_factory=threading.Event)

    def cancel(self, reason: str = "cancelled") -> None:
        if self.reason is None:
            self.reason = reason
        self.event.set()

    @property
    def cancelled(self) -> bool:
        return self.event.is_set()


_STOP = object()


class Worker:
    """Runs jobs in submission order on one daemon thread, sharing one model."""

    def __init__(self, loader: Callable[[Settings], tuple[Denoiser, dict]] = load) -> None:
        self._loader = loader
        self._queue: queue.Queue = queue.Queue()
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
    ) -> Job:
        job = Job(request, settings, constraint, on_step)
        self._queue.put(job)
        return job

    def close(self) -> None:
        self._queue.put(_STOP)

    def _model(self, settings: Settings) -> Denoiser:
        key = settings.model_key()
        if self._denoiser is None or key != self._key:
            self._denoiser = None  # let the old model go before the new one loads
            self._key = None
            denoiser, info = self._loader(settings)
            self._denoiser, self._key, self.model_info = denoiser, key, info
            self.loads += 1
        return self._denoiser

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            if not job.future.set_running_or_notify_cancel():
                continue
            if job.cancelled:
                job.future.set_exception(Cancelled(job.reason or "cancelled"))
                continue
            job.started.set()
            try:
                denoiser = self._model(job.settings)

                def step(info: StepInfo, job: Job = job) -> None:
                    job.steps_done = info.step
                    if job.on_step is not None and not job.cancelled:
                        job.on_step(info)

                result = fill(
                    job.request,
                    denoiser,
                    constraint=job.constraint,
                    on_step=step,
                    should_cancel=job.event.is_set,
                )
            except Cancelled:
                job.future.set_exception(Cancelled(job.reason or "cancelled"))
            except BaseException as e:  # every failure goes back to the request
                if not isinstance(e, ModelLoadError | ValueError):
                    log.exception("fill failed")
                job.future.set_exception(e)
            else:
                job.future.set_result(result)
