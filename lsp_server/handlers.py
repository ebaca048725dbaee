"""The LSP handlers, one per feature, registered from :data:`FEATURES`.

Each handler reads its params, builds the engine's request (:mod:`lsp_server.requests`)
and awaits :meth:`LacunaServer.run_fill`; :func:`lsp_server.errors.user_errors` answers
the user's mistakes with InvalidParams.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from grammars.functions import find_function_body
from infill.holes import find_markers
from infill.types import Hole, InfillError, Length

from . import requests
from .errors import user_errors
from .positions import range_at, range_offsets
from .progress import Progress, valid_token
from .protocol import CONTENT_MODIFIED, error, unstructure
from .requests import FILL_METHOD
from .server import LacunaServer, Superseded

KIND = "refactor.rewrite.lacuna"
KIND_SELECTION = f"{KIND}.selection"
KIND_MARKERS = f"{KIND}.markers"
KIND_BODY = f"{KIND}.body"


def _client_supports(ls: LacunaServer, *path: str) -> bool:
    node: Any = ls.client_capabilities
    for name in path:
        node = getattr(node, name, None)
        if node is None:
            return False
    return bool(node)


def _workspace_edit(ls: LacunaServer, uri: str, version: int, edits: list[types.TextEdit]
                    ) -> types.WorkspaceEdit:
    if _client_supports(ls, "workspace", "workspace_edit", "document_changes"):
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
            edits=edits,
        )])
    return types.WorkspaceEdit(changes={uri: edits})


def _progress(ls: LacunaServer, title: str, token: Any = None, partial: Any = None,
              create: bool = True) -> Progress:
    for name, value in (("workDoneToken", token), ("partialResultToken", partial)):
        if not valid_token(value):
            raise InfillError(f"{name} must be an integer or a string, got {value!r}")
    return Progress(ls, title, token, partial,
                    create=create and _client_supports(ls, "window", "work_done_progress"))


# -- lifecycle and documents ------------------------------------------------------------


def initialize(ls: LacunaServer, params: types.InitializeParams) -> None:
    ls.settings = ls.defaults
    ls.apply_settings(params.initialization_options, "initializationOptions")
    ls.protocol.initialized_ok = True


async def did_change_configuration(ls: LacunaServer,
                                   params: types.DidChangeConfigurationParams) -> None:
    raw = params.settings
    if not raw and _client_supports(ls, "workspace", "configuration"):
        try:
            got = await asyncio.wait_for(ls.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section="lacuna")])
            ), timeout=5)
            raw = got[0] if got else None
        except (JsonRpcException, TimeoutError):
            raw = None
    if raw:
        ls.apply_settings(raw, "settings")


def did_open(ls: LacunaServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.cancel_jobs(params.text_document.uri, "stale")
    ls.generations.bump(params.text_document.uri)


def did_change(ls: LacunaServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.cancel_jobs(params.text_document.uri, "stale")
    ls.generations.bump(params.text_document.uri)


def did_close(ls: LacunaServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.cancel_jobs(params.text_document.uri, "stale")
    ls.generations.close(params.text_document.uri)


def progress_cancel(ls: LacunaServer, params: types.WorkDoneProgressCancelParams) -> None:
    job = ls.progress_jobs.get(params.token)
    if job is not None:
        job.cancel("cancelled")


def shutdown(ls: LacunaServer, *args) -> None:
    ls.cancel_jobs(None, "shutdown")


def exit_(ls: LacunaServer, *args) -> None:
    ls.close_worker()


# -- fills --------------------------------------------------------------------------------


@user_errors("codeAction")
def code_action(ls: LacunaServer, params: types.CodeActionParams
                ) -> list[types.CodeAction] | None:
    doc = ls.document(params.text_document.uri)
    text = doc.source
    try:
        requests.check_text(text)
    except InfillError:
        return None  # not valid Unicode (a lone surrogate): nothing here could be filled
    start, end = range_offsets(text, params.range, ls.encoding)
    only = params.context.only if params.context else None
    base = {"uri": doc.uri, "version": doc.version}
    actions: list[types.CodeAction] = []

    def offer(kind: str, title: str, data: dict, disabled: str | None = None) -> None:
        if only and not any(kind == o or kind.startswith(f"{o}.") for o in only):
            return
        actions.append(types.CodeAction(
            title=title, kind=kind, data={**base, **data},
            disabled=types.CodeActionDisabled(reason=disabled) if disabled else None,
        ))

    if end > start:
        offer(KIND_SELECTION, "Fill selection",
              {"action": "selection", "range": requests.range_json(params.range)})
    marker = ls.settings.marker
    try:
        found = find_markers(text, marker, ls.settings.budget)
        if found:
            offer(KIND_MARKERS, f"Fill {marker} markers ({len(found)})", {"action": "markers"})
    except InfillError as e:
        offer(KIND_MARKERS, f"Fill {marker} markers", {"action": "markers"}, str(e))
    body = find_function_body(text, doc.language_id or "", start)
    if body is not None:
        name = f" of {body.name}()" if body.name else ""
        offer(KIND_BODY, f"Write function body{name}", {"action": "body", "offset": start})
    return actions or None


@user_errors("codeAction/resolve")
async def resolve(ls: LacunaServer, action: types.CodeAction) -> types.CodeAction:
    data = action.data if isinstance(action.data, dict) else None
    if data is None or data.get("action") not in ("selection", "markers", "body"):
        raise InfillError("codeAction/resolve: this action was not offered by Lacuna "
                          "(its data is missing or unknown)")
    doc = ls.document(data.get("uri"))
    if data.get("version") != doc.version:
        raise error(CONTENT_MODIFIED,
                    f"{doc.uri} changed since the action was offered (version "
                    f"{data.get('version')}, now {doc.version}): ask for code actions again")
    text, settings, enc = doc.source, ls.settings, ls.encoding
    body, canvas = None, text  # canvas: the text the model fills (a body's lead/trail in)
    if data["action"] == "selection":
        a, b = requests.offsets(text, requests.parse_range(data.get("range"), "data.range"),
                                enc)
        holes = [Hole(a, b, Length.auto(settings.budget))]
    elif data["action"] == "markers":
        holes = requests.marker_holes(text, settings)
    else:
        offset = data.get("offset")
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise InfillError("codeAction/resolve: data.offset must be an integer")
        body = find_function_body(text, doc.language_id or "", offset)
        if body is None:
            raise InfillError("codeAction/resolve: no empty function body here any more")
        canvas, hole = body.prepare(text, settings.body_budget)
        holes = [hole]
    constraint, _ = requests.constraint(doc.language_id or "", settings.syntax_constraint)
    request = requests.make_request(doc, canvas, holes, settings, constraint is not None)
    result = await ls.run_fill(doc, request, settings, constraint=constraint,
                               progress=_progress(ls, action.title))
    if body is None:
        edits = requests.to_lsp_edits(text, result, enc)
    else:
        new_text = body.lead + result.fills[0].text + body.trail
        edits = [types.TextEdit(range=range_at(text, body.start, body.end, enc),
                                new_text=new_text)]
    action.edit = _workspace_edit(ls, doc.uri, doc.version, edits)
    return action


@user_errors(FILL_METHOD)
async def lacuna_fill(ls: LacunaServer, params: Any) -> dict:
    if not isinstance(params, dict):
        raise InfillError(f"{FILL_METHOD}: params must be an object, got {type(params).__name__}")
    td = params.get("textDocument")
    if not isinstance(td, dict):
        raise InfillError(f"{FILL_METHOD}: textDocument must be an object with a uri")
    doc = ls.document(td.get("uri"))
    version = params.get("version", td.get("version"))
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise InfillError(f"{FILL_METHOD}: version must be an integer, got {version!r}")
    if version is not None and version != doc.version:
        raise error(CONTENT_MODIFIED, f"{doc.uri} is at version {doc.version}, not {version}: "
                    "no edits were computed; send the current version")
    text, enc = doc.source, ls.encoding
    settings, constrain = requests.fill_options(ls.settings, params.get("options"))
    ranges = params.get("ranges") or []
    holes = (requests.range_holes(text, ranges, enc, settings.budget) if ranges
             else requests.marker_holes(text, settings))
    constraint, state = requests.constraint(doc.language_id or "", constrain)
    request = requests.make_request(doc, text, holes, settings, constraint is not None)
    progress = _progress(ls, "Lacuna fill", params.get("workDoneToken"),
                         params.get("partialResultToken"))
    result = await ls.run_fill(doc, request, settings, constraint=constraint,
                               progress=progress)
    edits = requests.to_lsp_edits(text, result, enc)
    stats = {**result.stats(), "version": doc.version, "language": request.language,
             "constraint": state,
             "model": {**ls.worker.model_info, "loads": ls.worker.loads,
                       "description": ls.model_description()}}
    return {"edits": [unstructure(ls, e) for e in edits], "stats": stats}


@user_errors("inlineCompletion")
async def inline_completion(ls: LacunaServer, params: types.InlineCompletionParams
                            ) -> types.InlineCompletionList:
    doc = ls.document(params.text_document.uri)
    text, settings = doc.source, ls.settings.for_ghost_text()
    offset = requests.offset(text, params.position, ls.encoding, "inlineCompletion")
    hole = Hole(offset, offset, Length.auto(settings.inline_budget))
    constraint, _ = requests.constraint(doc.language_id or "", settings.syntax_constraint)
    request = requests.make_request(doc, text, [hole], settings, constraint is not None,
                                    ghost=True)
    progress = None
    if params.work_done_token is not None:
        progress = _progress(ls, "Lacuna", params.work_done_token, create=False)
    try:
        result = await ls.run_fill(doc, request, settings, constraint=constraint,
                                   progress=progress, inline=True)
    except Superseded:
        return types.InlineCompletionList(items=[])
    fill_text = result.fills[0].text if result.fills else ""
    if not fill_text:
        return types.InlineCompletionList(items=[])
    at = types.Range(start=params.position, end=params.position)
    return types.InlineCompletionList(
        items=[types.InlineCompletionItem(insert_text=fill_text, range=at)])


#: (method, options, handler): what :func:`register` gives pygls.
FEATURES: list[tuple[str, Any, Callable]] = [
    (types.INITIALIZE, None, initialize),
    (types.WORKSPACE_DID_CHANGE_CONFIGURATION, None, did_change_configuration),
    (types.TEXT_DOCUMENT_DID_OPEN, None, did_open),
    (types.TEXT_DOCUMENT_DID_CHANGE, None, did_change),
    (types.TEXT_DOCUMENT_DID_CLOSE, None, did_close),
    (types.WINDOW_WORK_DONE_PROGRESS_CANCEL, None, progress_cancel),
    (types.SHUTDOWN, None, shutdown),
    (types.EXIT, None, exit_),
    (types.TEXT_DOCUMENT_CODE_ACTION,
     types.CodeActionOptions(code_action_kinds=[KIND_SELECTION, KIND_MARKERS, KIND_BODY],
                             resolve_provider=True),
     code_action),
    (types.CODE_ACTION_RESOLVE, None, resolve),
    (FILL_METHOD, None, lacuna_fill),
    (types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions(), inline_completion),
]


def register(server: LacunaServer) -> None:
    for method, options, handler in FEATURES:
        server.feature(method, options)(handler)
