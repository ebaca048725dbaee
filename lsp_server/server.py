"""Lacuna's language server: its state (settings, jobs, documents) and how a fill runs.

Features (one handler each, in :mod:`lsp_server.handlers`):

- ``textDocument/codeAction``: "Fill selection", "Fill [MASK] markers", "Write function
  body", listed instantly without a model; ``codeAction/resolve`` runs the fill and returns
  the edit (a versioned ``TextDocumentEdit``).
- ``lacuna/fill``: ``{textDocument, version?, ranges?, options?, workDoneToken?,
  partialResultToken?}`` -> ``{edits, stats}`` for clients that apply raw edits themselves.
- ``textDocument/inlineCompletion``: ghost text at the cursor (an auto-length hole); a newer
  request supersedes an older one, which then answers an empty list. Ghost text runs before
  explicit fills (:mod:`lsp_server.worker`).
- Work-done progress (:mod:`lsp_server.progress`): one ``report`` per denoising step; the
  first messages name the model. ``lacuna/fill`` with a ``partialResultToken`` also gets
  ``$/progress`` values ``{step, total, texts}`` carrying the text so far; each such value
  *replaces* the previous one, and the final response still holds the whole result.
- ``$/cancelRequest``: the sampler stops at its next step; the request answers
  RequestCancelled (-32800); the model stays loaded.
- Stale documents: a fill whose document changes (or closes) while it runs is stopped and
  answers ContentModified (-32801) with no edits, whatever the version numbers say
  (:mod:`lsp_server.documents`); so does a request whose ``version`` (or a code action's
  offered version) is not the document's current one. The client asks again.
- Errors (:mod:`lsp_server.errors`): bad input answers InvalidParams (-32602) with a
  one-line reason; a request before ``initialize`` answers ServerNotInitialized (-32002); a
  model that cannot load answers RequestFailed (-32803). Server errors go to the log, never
  to a popup; the server keeps serving after each.

Documents are synchronised in full (``TextDocumentSyncKind.Full``) so the server's text is
exactly the editor's; positions are converted by :mod:`lsp_server.positions` in the
negotiated encoding (UTF-16 unless the client offers another).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from infill.models import ModelLoadError
from infill.types import Cancelled, Constraint, InfillError, InfillRequest, InfillResult

from . import documents, transport
from .config import Settings, merge
from .errors import quiet_expected_answers
from .progress import Progress
from .protocol import CONTENT_MODIFIED, REQUEST_FAILED, LacunaProtocol, error
from .worker import Job, Worker, describe

log = logging.getLogger(__name__)

VERSION = "0.1.0"


class Superseded(Exception):
    """An inline completion replaced by a newer one."""


class LacunaServer(LanguageServer):
    def __init__(self, defaults: Settings | None = None, worker: Worker | None = None) -> None:
        super().__init__(
            "lacuna",
            VERSION,
            protocol_cls=LacunaProtocol,
            text_document_sync_kind=types.TextDocumentSyncKind.Full,
        )
        self.defaults = defaults or Settings()
        self.settings = self.defaults
        self._worker = worker
        #: Running and queued jobs per document (``documents.key``): stale edits never apply.
        self.jobs: dict[str, set[Job]] = {}
        self.inline_job: Job | None = None
        #: Jobs by work-done progress token (``window/workDoneProgress/cancel`` stops them).
        self.progress_jobs: dict[Any, Job] = {}
        self.generations = documents.Generations()
        self.warned_test_model = False

    @property
    def worker(self) -> Worker:
        if self._worker is None:
            self._worker = Worker()
        return self._worker

    def close_worker(self) -> None:
        if self._worker is not None:
            self._worker.close()

    @property
    def encoding(self) -> str:
        enc = self.workspace.position_encoding or types.PositionEncodingKind.Utf16
        return str(getattr(enc, "value", enc))

    def document(self, uri: Any) -> TextDocument:
        """The open document at ``uri`` (any percent-encoding), or the user's error."""
        if not isinstance(uri, str) or not uri:
            raise InfillError(f"textDocument.uri must be a non-empty string, got {uri!r}")
        doc = documents.find(self.workspace, uri)
        if doc is None:
            raise InfillError(f"unknown document {uri}: open it with textDocument/didOpen first")
        return doc

    def warn(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"Lacuna: {message}"))

    def apply_settings(self, raw: Any, where: str) -> None:
        self.settings, problems = merge(self.settings, raw)
        if problems:
            self.warn(f"ignored {where}: " + "; ".join(problems))

    def model_description(self) -> str:
        if self._worker is None or not self._worker.loaded(self.settings):
            return f"loading model {self.settings.model or 'from $LACUNA_MODEL or the default'}"
        return describe(self._worker.model_info)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls' hook for errors outside a request's answer: the log, never a popup."""
        where = getattr(source, "__name__", source)
        if error.__traceback__ is not None:
            log.error("%s: %s", where, error, exc_info=error)
        else:  # pygls' JsonRpcInternalError.of carries the traceback as text in ``data``
            trace = getattr(error, "data", None)
            log.error("%s: %s%s", where, error, f"\n{trace}" if trace else "")

    # -- running fills --------------------------------------------------------------------

    async def run_fill(
        self,
        doc: TextDocument,
        request: InfillRequest,
        settings: Settings,
        *,
        constraint: Constraint | None,
        progress: Progress | None = None,
        inline: bool = False,
    ) -> InfillResult:
        """Run ``request`` on the worker for ``doc`` as it is now; ContentModified if the
        document changes, closes or reopens meanwhile."""
        uri, version = doc.uri, doc.version
        generation = self.generations.of(uri)
        on_step = progress.step_callback(asyncio.get_running_loop()) if progress else None
        job = self.worker.submit(request, settings, constraint=constraint, on_step=on_step,
                                 inline=inline)
        group = self.jobs.setdefault(documents.key(uri), set())
        group.add(job)
        if inline:
            if self.inline_job is not None:
                self.inline_job.cancel("superseded")
            self.inline_job = job
        try:
            if progress is not None:
                progress.job = job
                progress.start()
            result = await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            job.cancel("cancelled")
            raise
        except Cancelled:
            if job.reason == "superseded":
                raise Superseded() from None
            if job.reason == "stale":
                raise self._stale(uri, version) from None
            raise JsonRpcRequestCancelled(message="the fill was cancelled") from None
        except ModelLoadError as e:
            raise error(REQUEST_FAILED, f"cannot load the model: {e}") from None
        finally:
            group.discard(job)
            if self.inline_job is job:
                self.inline_job = None
            if progress is not None:
                progress.end()
        if self.generations.of(uri) != generation:
            raise self._stale(uri, version)
        self._after_fill(request, result)
        return result

    def _after_fill(self, request: InfillRequest, result: InfillResult) -> None:
        if self.worker.model_info.get("test_model") and not self.warned_test_model:
            self.warned_test_model = True
            self.warn(f"{describe(self.worker.model_info)}; set 'lacuna.model' to a real "
                      "model, or name none for the embedded default")
        if result.constraint_satisfied is False:
            self.warn(
                f"the fill does not parse as {request.language} "
                "(the syntax constraint could not be satisfied)"
            )

    def _stale(self, uri: str, version: int | None) -> JsonRpcException:
        doc = documents.find(self.workspace, uri)
        now = "closed" if doc is None else f"now at version {doc.version}"
        return error(
            CONTENT_MODIFIED,
            f"{uri} changed while the fill ran (started at version {version}, {now}); "
            "no edits were applied: ask again",
        )

    def cancel_jobs(self, uri: str | None, reason: str) -> None:
        groups = self.jobs.values() if uri is None else [self.jobs.get(documents.key(uri), ())]
        for group in groups:
            for job in list(group):
                job.cancel(reason)


def build_server(defaults: Settings | None = None, worker: Worker | None = None) -> LacunaServer:
    from .handlers import register

    quiet_expected_answers()
    server = LacunaServer(defaults, worker)
    register(server)
    return server


def serve(tcp: str | None = None, init: dict | None = None) -> None:
    """Run the server on stdio, or on ``tcp`` ("HOST:PORT"); ``init`` holds CLI defaults
    (e.g. ``{"model": DIR, "device": "cpu", "quant": "none"}``) that the client's
    ``initializationOptions`` override."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="lacuna-lsp %(levelname)s %(name)s: %(message)s")
    defaults, problems = merge(Settings(), {k: v for k, v in (init or {}).items()
                                            if v is not None})
    if problems:
        raise SystemExit("lacuna serve: " + "; ".join(problems))
    server = build_server(defaults)
    try:
        if tcp:
            host, sep, port = tcp.rpartition(":")
            if not sep or not port.isdigit():
                raise SystemExit(f"lacuna serve: --tcp wants HOST:PORT, got {tcp!r}")
            raise SystemExit(transport.serve_tcp(lambda: build_server(defaults), host or
                                                 "127.0.0.1", int(port), LacunaServer.close_worker))
        raise SystemExit(transport.serve_stdio(server))
    finally:
        server.close_worker()
