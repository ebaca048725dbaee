"""pygls' protocol, subclassed, and every use of pygls internals the server needs.

The rest of ``lsp_server`` talks to pygls through its public API and the small functions
here, so a pygls upgrade that moves a private name breaks one module.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import cattrs
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
)
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCRequestMessage, LanguageServerProtocol, lsp_method

from . import documents
from .framing import BadFrame

log = logging.getLogger(__name__)

SERVER_NOT_INITIALIZED = -32002
CONTENT_MODIFIED = -32801
REQUEST_FAILED = -32803


def error(code: int, message: str) -> JsonRpcException:
    return JsonRpcException(code=code, message=message)


def invalid(message: str) -> JsonRpcException:
    return JsonRpcInvalidParams(message=message)


class _Malformed:
    """A request whose params could not be structured: answered with InvalidParams."""

    def __init__(self, msg_id: Any, method: str, message: str) -> None:
        self.id, self.method, self.message = msg_id, method, message


class LacunaProtocol(LanguageServerProtocol):
    """pygls' protocol with the answers LSP requires where pygls stays silent.

    :meth:`receive` takes each decoded payload from :mod:`lsp_server.transport` (pygls'
    own read loop is not used) and gives every request exactly one answer:

    - a parse error (:class:`~lsp_server.framing.BadFrame`) answers -32700 with id null;
    - a bad envelope (see :func:`envelope`) or a batch answers InvalidRequest (-32600);
    - before ``initialize``, requests answer ServerNotInitialized (-32002), params unread;
      a second ``initialize`` answers InvalidRequest and changes nothing;
    - malformed params answer InvalidParams naming the bad field (pygls only logs them);
    - after ``shutdown``, requests answer InvalidRequest;
    - ``exit`` sent as a request is answered, then exits like the notification.

    ``lacuna/*`` params arrive as plain dicts (not pygls' namedtuples, which rename keys).
    """

    initialized_ok = False
    exit_code: int | None = None
    #: Called with the exit status once ``exit`` is handled (the transport stops there).
    on_exit: Callable[[int], None] | None = None

    def receive(self, data: Any) -> None:
        """Handle one payload: a JSON value, or a frame that could not be read."""
        try:
            self._receive(data)
        except Exception:
            log.exception("cannot handle a message")

    def _receive(self, data: Any) -> None:
        if isinstance(data, BadFrame):
            self.answer_error(None, JsonRpcParseError(message=f"parse error: {data.reason}"))
            return
        if isinstance(data, list):
            self._reject_batch(data)
            return
        kind, msg_id, problem = envelope(data)
        if problem is not None:
            if kind == "request":
                self.answer_error(msg_id, JsonRpcInvalidRequest(message=problem))
            else:
                log.warning("dropped a %s: %s", kind, problem)
            return
        method = data.get("method")
        if method == types.EXIT and kind == "request":
            self._send_response(msg_id, result=None)  # answered, then exit as notified
            data, kind = {k: v for k, v in data.items() if k != "id"}, "notification"
        if kind != "response" and not self.initialized_ok and method not in (
                types.INITIALIZE, types.EXIT):
            if kind == "request":
                self.answer_error(msg_id, error(
                    SERVER_NOT_INITIALIZED,
                    f"the server is not initialized: send 'initialize' before {method!r}"))
            return
        if method == types.INITIALIZE and self.initialized_ok:
            if kind == "request":
                self.answer_error(msg_id, JsonRpcInvalidRequest(
                    message="the server is already initialized: 'initialize' is sent once"))
            return
        try:
            message = self.structure_message(data)
        except JsonRpcException as exc:
            log.warning("dropped a %s %r: %s", kind, method, _describe(exc, data))
            return
        self.handle_message(message)

    def _reject_batch(self, items: list[Any]) -> None:
        """LSP has no batches: each request in one answers InvalidRequest by its id (id
        null once for those without a usable id); notifications in it are dropped."""
        reason = "batches are not supported: send each message in its own frame"
        nameless = not items
        for item in items:
            kind, msg_id, _ = envelope(item)
            if kind == "request" and msg_id is not None:
                self.answer_error(msg_id, JsonRpcInvalidRequest(message=reason))
            elif kind == "request":
                nameless = True
        if nameless:
            self.answer_error(None, JsonRpcInvalidRequest(message=reason))

    def answer_error(self, msg_id: Any, exc: JsonRpcException) -> None:
        """Answer ``msg_id`` with ``exc``; None answers with ``"id": null``, as JSON-RPC
        wants when the id could not be read (pygls' converter would drop the field)."""
        log.info("answered %s: %s", exc.code, exc.message)
        if msg_id is not None:
            self._send_response(msg_id, error=exc.to_response_error())
            return
        self._send_data({"jsonrpc": "2.0", "id": None,
                         "error": {"code": exc.code, "message": exc.message}})

    def structure_message(self, data: dict[str, Any]):
        is_request = "jsonrpc" in data and "method" in data and "id" in data
        if is_request and str(data["method"]).startswith("lacuna/"):
            return JsonRPCRequestMessage(
                id=data["id"], method=data["method"], jsonrpc=data["jsonrpc"],
                params=data.get("params"),
            )
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if not is_request:
                raise
            return _Malformed(data["id"], str(data["method"]), _describe(exc, data))

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args):
        """The user's exit handler, then the transport stops: status 0 after ``shutdown``,
        1 without (pygls' own ``sys.exit`` is swallowed by its stdio and TCP loops)."""
        if (user_handler := self.fm.features.get(types.EXIT)) is not None:
            yield user_handler, args, None
        self.exit_code = 0 if self._shutdown else 1
        if self.on_exit is None:
            sys.exit(self.exit_code)
        self.on_exit(self.exit_code)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        """pygls' didChange, except that a change to a document never opened is the
        client's mistake: one info line, nothing changed (pygls raises KeyError)."""
        uri = params.text_document.uri
        if documents.find(self.workspace, uri) is None:
            log.info("didChange for %s, which is not open: ignored", uri)
            return
        yield from super().lsp_text_document__did_change(params)

    def handle_message(self, message):
        if isinstance(message, _Malformed):
            self._send_response(message.id, error=invalid(message.message).to_response_error())
            return
        method = getattr(message, "method", None)
        is_request = method is not None and hasattr(message, "id")
        if self._shutdown and is_request:
            err = JsonRpcInvalidRequest(
                message=f"the server is shutting down: {method!r} is not served"
            )
            self._send_response(message.id, error=err.to_response_error())
            return
        super().handle_message(message)


def valid_id(msg_id: Any) -> bool:
    """LSP's request ids: an integer or a string (JSON-RPC's null and fractions are not)."""
    return isinstance(msg_id, str) or (isinstance(msg_id, int) and not isinstance(msg_id, bool))


def envelope(data: Any) -> tuple[str, Any, str | None]:
    """What a JSON-RPC payload is ("request", "notification" or "response"), the id to
    answer it by (None where its own is unusable) and what is wrong with it, if anything."""
    if not isinstance(data, dict):
        return "request", None, f"a message is a JSON object, not {_kind(data)}"
    has_id, msg_id = "id" in data, data.get("id")
    answer_id = msg_id if valid_id(msg_id) else None
    if "method" not in data and ("result" in data or "error" in data):
        if data.get("jsonrpc") != "2.0" or not (valid_id(msg_id) or msg_id is None):
            return "response", answer_id, "not a JSON-RPC 2.0 response"
        return "response", answer_id, None
    kind = "request" if has_id or "method" not in data else "notification"
    if has_id and not valid_id(msg_id):
        return kind, None, f"id must be an integer or a string, got {_kind(msg_id)}"
    if data.get("jsonrpc") != "2.0":
        return kind, answer_id, f"'jsonrpc' must be \"2.0\", got {data.get('jsonrpc')!r:.40}"
    if "method" not in data:
        return kind, answer_id, "a message needs a 'method' (or a 'result' or 'error')"
    if not isinstance(data["method"], str):
        return kind, answer_id, f"'method' must be a string, got {_kind(data['method'])}"
    params = data.get("params")
    if params is not None and not isinstance(params, dict | list):
        return kind, answer_id, f"'params' must be an object or an array, got {_kind(params)}"
    return kind, answer_id, None


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "an integer", float: "a number with a fraction", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _describe(exc: Exception, data: dict[str, Any]) -> str:
    cause = exc.__cause__
    method = data.get("method")
    if isinstance(cause, cattrs.ClassValidationError):
        details = cattrs.transform_error(cause)
        shown = "; ".join(d.replace("$.", "") for d in details[:3])
        return f"malformed params for {method!r}: {shown}"
    return f"malformed params for {method!r}: {cause or exc}"


# -- pygls internals, named -----------------------------------------------------------------


def unstructure(server: LanguageServer, obj: Any) -> Any:
    """``obj`` (an lsprotocol type) as JSON-ready data, by pygls' own converter."""
    return server.protocol._converter.unstructure(obj)


def forget_progress(server: LanguageServer, token: Any) -> None:
    """Drop pygls' record of a work-done token, so ``end`` never waits on its create."""
    server.work_done_progress.tokens.pop(token, None)
