"""Lacuna's language server: infilling through standard LSP, plus ``lacuna/fill``.

Features (one handler each):

- ``textDocument/codeAction``: "Fill selection", "Fill [MASK] markers", "Write function
  body", listed instantly without a model; ``codeAction/resolve`` runs the fill and returns
  the edit (a versioned ``TextDocumentEdit``).
- ``lacuna/fill``: ``{textDocument, version?, ranges?, options?, workDoneToken?,
  partialResultToken?}`` -> ``{edits, stats}`` for clients that apply raw edits themselves.
- ``textDocument/inlineCompletion``: ghost text at the cursor (an auto-length hole); a newer
  request supersedes an older one, which then answers an empty list.
- Work-done progress: one ``report`` per denoising step. ``lacuna/fill`` with a
  ``partialResultToken`` also gets ``$/progress`` values ``{step, total, texts}`` carrying
  the text so far; each such value *replaces* the previous one, and the final response
  still holds the whole result.
- ``$/cancelRequest``: the sampler stops at its next step; the request answers
  RequestCancelled (-32800); the model stays loaded.
- Stale documents: a fill whose document changes (or closes) while it runs is stopped and
  answers ContentModified (-32801) with no edits; so does a request whose ``version`` (or a
  code action whose offered version) is not the document's current one. The client asks
  again; the server never recomputes on its own.
- Errors: bad input answers InvalidParams (-32602) with a one-line reason; a request before
  ``initialize`` answers ServerNotInitialized (-32002); a model that cannot load answers
  RequestFailed (-32803) with the loader's message. The server keeps serving after each.

Documents are synchronised in full (``TextDocumentSyncKind.Full``) so the server's text is
exactly the editor's; positions are converted by :mod:`lsp_server.positions` in the
negotiated encoding (UTF-16 unless the client offers another).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcRequestCancelled,
)
from pygls.lsp.server import LanguageServer

from infill.edits import edits_from_result
from infill.holes import find_markers, validate_holes
from infill.models import ModelLoadError
from infill.types import (
    Cancelled,
    Constraint,
    Hole,
    InfillError,
    InfillRequest,
    InfillResult,
    Length,
    LengthOptions,
    SamplingOptions,
    StepInfo,
)

from . import bodies
from .config import Settings, merge
from .positions import PositionError, line_spans, offset_at, range_at, range_offsets
from .protocol import (
    CONTENT_MODIFIED,
    REQUEST_FAILED,
    LacunaProtocol,
    error,
    forget_progress,
    invalid,
    unstructure,
)
from .worker import Job, Worker

log = logging.getLogger(__name__)

VERSION = "0.1.0"
FILL_METHOD = "lacuna/fill"
KIND = "refactor.rewrite.lacuna"
KIND_SELECTION = f"{KIND}.selection"
KIND_MARKERS = f"{KIND}.markers"
KIND_BODY = f"{KIND}.body"

class _Superseded(Exception):
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
        #: Running and queued jobs per document URI (stale edits are never applied).
        self.jobs: dict[str, set[Job]] = {}
        self.inline_job: Job | None = None
        #: Jobs by work-done progress token (``window/workDoneProgress/cancel`` stops them).
        self.progress_jobs: dict[Any, Job] = {}
        self._tokens = itertools.count(1)

    @property
    def worker(self) -> Worker:
        if self._worker is None:
            self._worker = Worker()
        return self._worker

    # -- helpers -----------------------------------------------------------------------

    @property
    def encoding(self) -> str:
        enc = self.workspace.position_encoding or types.PositionEncodingKind.Utf16
        return str(getattr(enc, "value", enc))

    def document(self, uri: Any):
        if not isinstance(uri, str) or not uri:
            raise invalid(f"textDocument.uri must be a non-empty string, got {uri!r}")
        doc = self.workspace.text_documents.get(uri)
        if doc is None:
            from urllib.parse import unquote

            doc = self.workspace.text_documents.get(unquote(uri))
        if doc is None:
            raise invalid(f"unknown document {uri}: open it with textDocument/didOpen first")
        return doc

    def warn(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"Lacuna: {message}"))

    def constraint_for(self, language: str, want: bool | str) -> tuple[Constraint | None, str]:
        """The syntax constraint for ``language`` and a word for the stats.

        ``want``: False (off), True (use it where a grammar exists), "require" (error if
        there is none).
        """
        if not want:
            return None, "off"
        constraint, why = _syntax_constraint(language)
        if constraint is None and want == "require":
            raise invalid(f"the syntax constraint was required but is {why}")
        return constraint, "on" if constraint is not None else why

    def apply_settings(self, raw: Any, where: str) -> None:
        self.settings, problems = merge(self.settings, raw)
        if problems:
            self.warn(f"ignored {where}: " + "; ".join(problems))

    # -- running fills --------------------------------------------------------------------

    async def run_fill(
        self,
        uri: str,
        request: InfillRequest,
        settings: Settings,
        *,
        constraint: Constraint | None,
        version: int | None,
        progress: Progress | None = None,
        inline: bool = False,
    ) -> InfillResult:
        loop = asyncio.get_running_loop()
        on_step = None
        if progress is not None:
            on_step = progress.step_callback(loop)
        job = self.worker.submit(request, settings, constraint=constraint, on_step=on_step)
        self.jobs.setdefault(uri, set()).add(job)
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
                raise _Superseded() from None
            if job.reason == "stale":
                raise _stale(uri, version, self) from None
            raise JsonRpcRequestCancelled(message="the fill was cancelled") from None
        except ModelLoadError as e:
            raise error(REQUEST_FAILED, f"cannot load the model: {e}") from None
        except InfillError as e:
            raise invalid(str(e)) from None
        except JsonRpcException:
            raise
        except Exception as e:
            log.exception("fill failed")
            raise JsonRpcInternalError(message=f"the fill failed: {type(e).__name__}: {e}") from e
        finally:
            self.jobs.get(uri, set()).discard(job)
            if self.inline_job is job:
                self.inline_job = None
            if progress is not None:
                progress.end()
        doc = self.workspace.text_documents.get(uri)
        if doc is None or (version is not None and doc.version != version):
            raise _stale(uri, version, self)
        if result.constraint_satisfied is False:
            self.warn(
                f"the fill does not parse as {request.language} "
                "(the syntax constraint could not be satisfied)"
            )
        return result

    def cancel_jobs(self, uri: str | None, reason: str) -> None:
        groups = self.jobs.values() if uri is None else [self.jobs.get(uri, set())]
        for group in groups:
            for job in list(group):
                job.cancel(reason)


def _stale(uri: str, version: int | None, server: LacunaServer) -> JsonRpcException:
    doc = server.workspace.text_documents.get(uri)
    now = "closed" if doc is None else f"now at version {doc.version}"
    return error(
        CONTENT_MODIFIED,
        f"{uri} changed while the fill ran (started at version {version}, {now}); "
        "no edits were applied: ask again",
    )


def _syntax_constraint(language: str) -> tuple[Constraint | None, str]:
    """Ask ``grammars`` for a syntax constraint (the grammars issue's seam)."""
    try:
        import grammars
    except ImportError:
        return None, "unavailable: the grammars package is missing"
    make = getattr(grammars, "syntax_constraint", None)
    if make is None:
        return None, "unavailable: this build has no syntax constraint yet"
    try:
        constraint = make(language)
    except (LookupError, ValueError):
        constraint = None
    if constraint is None:
        return None, f"unavailable: no grammar for language id {language!r}"
    return constraint, "on"


class Progress:
    """Work-done progress for one fill: begin, one report per denoising step, end.

    ``token`` is the client's ``workDoneToken``; with none and a client that supports
    ``window.workDoneProgress``, a server-initiated token is created first. ``partial``
    (a ``partialResultToken``) also receives the text so far each step.
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
        self._task: asyncio.Future | None = None
        self.job: Job | None = None

    def start(self) -> None:
        """Begin now with the client's token; or create one in the background: the fill
        never waits for the client's progress UI (reports before it is ready are dropped)."""
        if self.create:
            self._task = asyncio.ensure_future(self._create_and_begin())
        else:
            self._begin()

    async def _create_and_begin(self) -> None:
        token = f"lacuna-{next(self.server._tokens)}"
        try:
            await asyncio.wait_for(self.server.work_done_progress.create_async(token), 10)
        except (JsonRpcException, TimeoutError):
            return
        self.token = token
        if not self.ended:
            self._begin()

    def _begin(self) -> None:
        if self.token is None:
            return
        self.server.work_done_progress.begin(
            self.token,
            types.WorkDoneProgressBegin(
                title=self.title, cancellable=True, message="queued", percentage=0
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
        if self.active:
            self.server.work_done_progress.report(
                self.token,
                types.WorkDoneProgressReport(
                    message=f"step {step}/{total}, {left} masked",
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
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self.active:
            self.active = False
            self.server.progress_jobs.pop(self.token, None)
            forget_progress(self.server, self.token)
            self.server.work_done_progress.end(self.token, types.WorkDoneProgressEnd())


# -- building requests ----------------------------------------------------------------------


def sampling(settings: Settings) -> SamplingOptions:
    """The sampler options of ``settings`` (ghost text passes ``settings.for_ghost_text()``)."""
    try:
        return SamplingOptions(
            steps=settings.steps,
            threshold=settings.threshold,
            temperature=settings.temperature,
            seed=settings.seed,
            block_length=settings.block_length,
            cache=settings.cache,
        )
    except InfillError as e:
        raise invalid(str(e)) from None


def make_request(doc, text: str, holes: list[Hole], settings: Settings,
                 constrain: bool, ghost: bool = False) -> InfillRequest:
    """The engine's request; ``ghost``: for ghost text, whose ``auto`` length policy means
    ``grow`` (fewest passes) for a model with no policy of its own."""
    try:
        holes = validate_holes(text, holes)
    except InfillError as e:
        raise invalid(str(e)) from None
    return InfillRequest(
        text=text,
        holes=holes,
        language=doc.language_id or "plaintext",
        options=sampling(settings),
        constrain=constrain,
        context_tokens=settings.context_tokens,
        length=LengthOptions(policy=settings.length_policy,
                             fallback="grow" if ghost else "absorb"),
    )


def to_lsp_edits(text: str, result: InfillResult, encoding: str) -> list[types.TextEdit]:
    spans = line_spans(text)
    return [
        types.TextEdit(range=range_at(text, e.start, e.end, encoding, spans=spans),
                       new_text=e.new_text)
        for e in edits_from_result(result)
    ]


def _client_supports(server: LacunaServer, *path: str) -> bool:
    node: Any = server.client_capabilities
    for name in path:
        node = getattr(node, name, None)
        if node is None:
            return False
    return bool(node)


def marker_holes(text: str, settings: Settings) -> list[Hole]:
    try:
        return find_markers(text, settings.marker, settings.budget)
    except InfillError as e:
        raise invalid(str(e)) from None


# -- the server -----------------------------------------------------------------------------


def build_server(defaults: Settings | None = None, worker: Worker | None = None) -> LacunaServer:
    server = LacunaServer(defaults, worker)

    @server.feature(types.INITIALIZE)
    def initialize(ls: LacunaServer, params: types.InitializeParams) -> None:
        ls.settings = ls.defaults
        ls.apply_settings(params.initialization_options, "initializationOptions")
        ls.protocol.initialized_ok = True

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: LacunaServer, params: types.DidChangeConfigurationParams
    ) -> None:
        raw = params.settings
        if not raw and _client_supports(ls, "workspace", "configuration"):
            try:
                got = await asyncio.wait_for(
                    ls.workspace_configuration_async(
                        types.ConfigurationParams(items=[types.ConfigurationItem(section="lacuna")])
                    ),
                    timeout=5,
                )
                raw = got[0] if got else None
            except (JsonRpcException, TimeoutError):
                raw = None
        if raw:
            ls.apply_settings(raw, "settings")

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LacunaServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.cancel_jobs(params.text_document.uri, "stale")

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LacunaServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.cancel_jobs(params.text_document.uri, "stale")

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(ls: LacunaServer, params: types.WorkDoneProgressCancelParams) -> None:
        job = ls.progress_jobs.get(params.token)
        if job is not None:
            job.cancel("cancelled")

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: LacunaServer, *args) -> None:
        ls.cancel_jobs(None, "shutdown")

    @server.feature(types.EXIT)
    def exit_(ls: LacunaServer, *args) -> None:
        if ls._worker is not None:
            ls._worker.close()

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[KIND_SELECTION, KIND_MARKERS, KIND_BODY], resolve_provider=True
        ),
    )
    def code_action(ls: LacunaServer, params: types.CodeActionParams):
        doc = ls.document(params.text_document.uri)
        text = doc.source
        enc = ls.encoding
        start, end = range_offsets(text, params.range, enc)
        only = params.context.only if params.context else None
        base = {"uri": doc.uri, "version": doc.version}
        actions: list[types.CodeAction] = []

        def offer(kind: str, title: str, data: dict, disabled: str | None = None) -> None:
            if only and not any(kind == o or kind.startswith(f"{o}.") for o in only):
                return
            actions.append(
                types.CodeAction(
                    title=title, kind=kind, data={**base, **data},
                    disabled=types.CodeActionDisabled(reason=disabled) if disabled else None,
                )
            )

        if end > start:
            offer(KIND_SELECTION, "Fill selection", {"action": "selection",
                                                     "range": _range_json(params.range)})
        marker = ls.settings.marker
        try:
            found = find_markers(text, marker, ls.settings.budget)
            if found:
                offer(KIND_MARKERS, f"Fill {marker} markers ({len(found)})",
                      {"action": "markers"})
        except InfillError as e:
            offer(KIND_MARKERS, f"Fill {marker} markers", {"action": "markers"}, str(e))
        body = bodies.find_body(text, doc.language_id or "", start)
        if body is not None:
            name = f" of {body.name}()" if body.name else ""
            offer(KIND_BODY, f"Write function body{name}", {"action": "body", "offset": start})
        return actions or None

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(ls: LacunaServer, action: types.CodeAction) -> types.CodeAction:
        data = action.data if isinstance(action.data, dict) else None
        if data is None or data.get("action") not in ("selection", "markers", "body"):
            raise invalid("codeAction/resolve: this action was not offered by Lacuna "
                          "(its data is missing or unknown)")
        doc = ls.document(data.get("uri"))
        if data.get("version") != doc.version:
            raise error(
                CONTENT_MODIFIED,
                f"{doc.uri} changed since the action was offered (version "
                f"{data.get('version')}, now {doc.version}): ask for code actions again",
            )
        text, settings, enc = doc.source, ls.settings, ls.encoding
        kind = data["action"]
        body = None
        canvas = text  # the text the model fills (a body's lead/trail written in)
        if kind == "selection":
            rng = _parse_range(data.get("range"), "data.range")
            a, b = _offsets(text, rng, enc)
            holes = [Hole(a, b, Length.auto(settings.budget))]
        elif kind == "markers":
            holes = marker_holes(text, settings)
        else:
            offset = data.get("offset")
            if isinstance(offset, bool) or not isinstance(offset, int):
                raise invalid("codeAction/resolve: data.offset must be an integer")
            body = bodies.find_body(text, doc.language_id or "", offset)
            if body is None:
                raise invalid("codeAction/resolve: no empty function body here any more")
            canvas, at = body.prepare(text)
            holes = [Hole(at, at, Length.auto(settings.body_budget))]
        constraint, _ = ls.constraint_for(doc.language_id or "", settings.syntax_constraint)
        request = make_request(doc, canvas, holes, settings, constraint is not None)
        progress = Progress(ls, action.title, None, None,
                            create=_client_supports(ls, "window", "work_done_progress"))
        result = await ls.run_fill(doc.uri, request, settings, constraint=constraint,
                                   version=doc.version, progress=progress)
        if body is None:
            edits = to_lsp_edits(text, result, enc)
        else:
            new_text = body.lead + result.fills[0].text + body.trail
            edits = [types.TextEdit(range=range_at(text, body.start, body.end, enc),
                                    new_text=new_text)]
        action.edit = _workspace_edit(ls, doc.uri, doc.version, edits)
        return action

    @server.feature(FILL_METHOD)
    async def lacuna_fill(ls: LacunaServer, params: Any) -> dict:
        if not isinstance(params, dict):
            raise invalid(f"{FILL_METHOD}: params must be an object, got {type(params).__name__}")
        td = params.get("textDocument")
        if not isinstance(td, dict):
            raise invalid(f"{FILL_METHOD}: textDocument must be an object with a uri")
        doc = ls.document(td.get("uri"))
        version = params.get("version", td.get("version"))
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise invalid(f"{FILL_METHOD}: version must be an integer, got {version!r}")
        if version is not None and version != doc.version:
            raise error(
                CONTENT_MODIFIED,
                f"{doc.uri} is at version {doc.version}, not {version}: "
                "no edits were computed; send the current version",
            )
        version = doc.version
        text, enc = doc.source, ls.encoding
        settings, constrain = _fill_options(ls.settings, params.get("options"))
        ranges = params.get("ranges") or []
        if not isinstance(ranges, list):
            raise invalid(f"{FILL_METHOD}: ranges must be a list of LSP ranges")
        if ranges:
            spans = line_spans(text)
            parsed = [_parse_range(r, f"ranges[{i}]") for i, r in enumerate(ranges)]
            offsets = [_offsets(text, r, enc, spans, f"ranges[{i}]") for i, r in enumerate(parsed)]
            _check_overlaps(parsed, offsets)
            holes = [Hole(a, b, Length.auto(settings.budget)) for a, b in offsets]
        else:
            holes = marker_holes(text, settings)
        constraint, state = ls.constraint_for(doc.language_id or "", constrain)
        request = make_request(doc, text, holes, settings, constraint is not None)
        token = params.get("workDoneToken")
        partial = params.get("partialResultToken")
        progress = Progress(ls, "Lacuna fill", token, partial,
                            create=_client_supports(ls, "window", "work_done_progress"))
        result = await ls.run_fill(doc.uri, request, settings, constraint=constraint,
                                   version=version, progress=progress)
        edits = to_lsp_edits(text, result, enc)
        stats = {**result.stats(), "version": version, "language": request.language,
                 "constraint": state,
                 "model": {**ls.worker.model_info, "loads": ls.worker.loads}}
        return {"edits": [unstructure(ls, e) for e in edits],
                "stats": stats}

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: LacunaServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        doc = ls.document(params.text_document.uri)
        text, enc, settings = doc.source, ls.encoding, ls.settings.for_ghost_text()
        try:
            offset = offset_at(text, params.position, enc, strict=True)
        except PositionError as e:
            raise invalid(f"inlineCompletion: {e}") from None
        hole = Hole(offset, offset, Length.auto(settings.inline_budget))
        constraint, _ = ls.constraint_for(doc.language_id or "", settings.syntax_constraint)
        request = make_request(doc, text, [hole], settings, constraint is not None,
                               ghost=True)
        progress = None
        if params.work_done_token is not None:
            progress = Progress(ls, "Lacuna", params.work_done_token, None, create=False)
        try:
            result = await ls.run_fill(doc.uri, request, settings, constraint=constraint,
                                       version=doc.version, progress=progress, inline=True)
        except _Superseded:
            return types.InlineCompletionList(items=[])
        fill_text = result.fills[0].text if result.fills else ""
        if not fill_text:
            return types.InlineCompletionList(items=[])
        at = types.Range(start=params.position, end=params.position)
        return types.InlineCompletionList(
            items=[types.InlineCompletionItem(insert_text=fill_text, range=at)]
        )

    return server


def _workspace_edit(ls: LacunaServer, uri: str, version: int, edits: list[types.TextEdit]
                    ) -> types.WorkspaceEdit:
    if _client_supports(ls, "workspace", "workspace_edit", "document_changes"):
        return types.WorkspaceEdit(
            document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=uri, version=version
                    ),
                    edits=edits,
                )
            ]
        )
    return types.WorkspaceEdit(changes={uri: edits})


def _range_json(rng: types.Range) -> dict:
    return {"start": {"line": rng.start.line, "character": rng.start.character},
            "end": {"line": rng.end.line, "character": rng.end.character}}


def _parse_range(raw: Any, where: str) -> types.Range:
    def pos(p: Any, name: str) -> types.Position:
        ok = isinstance(p, dict) and all(
            isinstance(p.get(k), int) and not isinstance(p.get(k), bool) and p.get(k) >= 0
            for k in ("line", "character")
        )
        if not ok:
            raise invalid(f"{where}.{name} must be {{line, character}} with integers >= 0, "
                          f"got {p!r}")
        return types.Position(line=p["line"], character=p["character"])

    if not isinstance(raw, dict):
        raise invalid(f"{where} must be an LSP range {{start, end}}, got {raw!r}")
    return types.Range(start=pos(raw.get("start"), "start"), end=pos(raw.get("end"), "end"))


def _offsets(text: str, rng: types.Range, enc: str, spans=None, where: str = "range"
             ) -> tuple[int, int]:
    try:
        return range_offsets(text, rng, enc, strict=True, spans=spans)
    except PositionError as e:
        raise invalid(f"{where}: {e}") from None


def _fmt(rng: types.Range) -> str:
    return (f"{rng.start.line}:{rng.start.character}-{rng.end.line}:{rng.end.character}")


def _check_overlaps(ranges: list[types.Range], offsets: list[tuple[int, int]]) -> None:
    order = sorted(range(len(offsets)), key=lambda i: offsets[i])
    for i, j in zip(order, order[1:], strict=False):
        (a0, a1), (b0, b1) = offsets[i], offsets[j]
        if b0 < a1 or (a0, a1) == (b0, b1):
            raise invalid(
                f"ranges[{i}] ({_fmt(ranges[i])}) and ranges[{j}] ({_fmt(ranges[j])}) overlap"
            )


#: Per-request options of lacuna/fill; the model, device and quantization are settings only.
_OPTION_KEYS = {"steps", "threshold", "temperature", "seed", "blockLength", "budget",
                "contextTokens", "marker", "syntaxConstraint"}


def _fill_options(settings: Settings, raw: Any) -> tuple[Settings, bool | str]:
    if raw is None:
        return settings, settings.syntax_constraint
    if not isinstance(raw, dict):
        raise invalid(f"{FILL_METHOD}: options must be an object, got {raw!r}")
    raw = dict(raw)
    constrain: bool | str = settings.syntax_constraint
    if "syntaxConstraint" in raw:
        constrain = raw.pop("syntaxConstraint")
        if constrain not in (True, False, "require"):
            raise invalid(f"{FILL_METHOD}: options.syntaxConstraint must be true, false or "
                          f"'require', got {constrain!r}")
    unknown = sorted(set(raw) - _OPTION_KEYS)
    if unknown:
        raise invalid(f"{FILL_METHOD}: unknown option(s) {', '.join(unknown)} "
                      f"(known: {', '.join(sorted(_OPTION_KEYS))})")
    merged, problems = merge(settings, raw)
    if problems:
        raise invalid(f"{FILL_METHOD}: " + "; ".join(problems))
    return merged, constrain


# -- entry points ---------------------------------------------------------------------------


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
    if tcp:
        host, sep, port = tcp.rpartition(":")
        if not sep or not port.isdigit():
            raise SystemExit(f"lacuna serve: --tcp wants HOST:PORT, got {tcp!r}")
        server.start_tcp(host or "127.0.0.1", int(port))
        raise SystemExit(server.protocol.exit_code or 0)
    server.start_io()
