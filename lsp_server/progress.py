"""Work-done progress for one fill: begin, one report per denoising step, end."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from infill.types import StepInfo

from .protocol import forget_progress
from .worker import Job

if TYPE_CHECKING:
    from .server import LacunaServer

_tokens = itertools.count(1)


def valid_token(token: Any) -> bool:
    """A ``ProgressToken`` is an integer or a string (LSP); anything else is refused."""
    return token is None or isinstance(token, str) or (
        isinstance(token, int) and not isinstance(token, bool))


class Progress:
    """``token`` is the client's ``workDoneToken``; with none and a client that supports
    ``window.workDoneProgress``, a server-initiated token is created first. ``partial``
    (a ``partialResultToken``) also receives the text so far each step. ``model`` names
    the model in the first message the user sees.
    """

    def __init__(self, server: LacunaServer, title: str, token: Any, partial: Any,
                 create: bool) -> None:
        self.server = server
        self.title = title
        self.token = token
        self.partial = partial
        self.create = create and token is None
        self.active = False
        self.ended = False
        self.job: Job | None = None
        self._reported = False

    def start(self) -> None:
        """Begin now with the client's token; or create one in the background: the fill
        never waits for the client's progress UI (reports before it is ready are dropped)."""
        if self.create:
            asyncio.ensure_future(self._create_and_begin())
        else:
            self._begin()

    async def _create_and_begin(self) -> None:
        token = f"lacuna-{next(_tokens)}"
        # Shielded: a fill that ends first must not cancel pygls' own request future.
        created = asyncio.shield(self.server.work_done_progress.create_async(token))
        try:
            await asyncio.wait_for(created, 10)
        except (JsonRpcException, TimeoutError, asyncio.CancelledError):
            return
        self.token = token
        if self.ended:
            forget_progress(self.server, token)
        else:
            self._begin()

    def _begin(self) -> None:
        if self.token is None:
            return
        self.server.work_done_progress.begin(
            self.token,
            types.WorkDoneProgressBegin(
                title=self.title, cancellable=True,
                message=f"queued; {self.server.model_description()}", percentage=0,
            ),
        )
        self.active = True
        if self.job is not None:
            self.server.progress_jobs[self.token] = self.job

    def step_callback(self, loop: asyncio.AbstractEventLoop) -> Callable[[StepInfo], None]:
        def on_step(info: StepInfo) -> None:  # runs on the worker thread
            texts = info.texts() if self.partial is not None else None
            loop.call_soon_threadsafe(self._report, info.step, info.total, info.masks_left, texts)

        return on_step

    def _report(self, step: int, total: int, left: int, texts: list[str] | None) -> None:
        if self.ended:
            return
        if self.active:
            message = f"step {step}/{total}, {left} masked"
            if not self._reported:  # the model is loaded now: say which one
                message += f"; {self.server.model_description()}"
                self._reported = True
            self.server.work_done_progress.report(
                self.token,
                types.WorkDoneProgressReport(
                    message=message,
                    percentage=min(100, int(100 * step / max(total, 1))),
                    cancellable=True,
                ),
            )
        if self.partial is not None:
            self.server.progress(
                types.ProgressParams(
                    token=self.partial, value={"step": step, "total": total, "texts": texts}
                )
            )

    def end(self) -> None:
        self.ended = True
        if self.active:
            self.active = False
            self.server.progress_jobs.pop(self.token, None)
            forget_progress(self.server, self.token)
            self.server.work_done_progress.end(self.token, types.WorkDoneProgressEnd())
