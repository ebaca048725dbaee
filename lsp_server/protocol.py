"""pygls' protocol, subclassed, and every use of pygls internals the server needs.

The rest of ``lsp_server`` talks to pygls through its public API and the small functions
here, so a pygls upgrade that moves a private name breaks one module.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from typing import Any

import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCRequestMessage, LanguageServerProtocol, lsp_method

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

    - Malformed params of a request answer InvalidParams naming the bad field (pygls only
      logs them, leaving the client waiting forever).
    - Requests before ``initialize`` answer ServerNotInitialized; notifications are dropped.
    - Requests after ``shutdown`` answer InvalidRequest.
    - ``lacuna/*`` params arrive as plain dicts (not pygls' namedtuples, which rename keys).
    """

    initialized_ok = False
    exit_code: int | None = None

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
        """pygls' exit, plus TCP: there ``sys.exit`` inside the connection task is swallowed
        by asyncio and the server would keep listening, so stop the TCP server instead."""
        if (user_handler := self.fm.features.get(types.EXIT)) is not None:
            yield user_handler, args, None
        self.exit_code = 0 if self._shutdown else 1
        if getattr(self._server, "_server", None) is not None:  # serving TCP
            self._server.shutdown()
            return
        if self.writer is None:
            sys.exit(self.exit_code)
        res = self.writer.close()
        if inspect.isawaitable(res):
            fut = asyncio.ensure_future(res)
            fut.add_done_callback(lambda _: sys.exit(self.exit_code))
        else:
            sys.exit(self.exit_code)

    def handle_message(self, message):
        if isinstance(message, _Malformed):
            self._send_response(message.id, error=invalid(message.message).to_response_error())
            return
        method = getattr(message, "method", None)
        is_request = method is not None and hasattr(message, "id")
        if not self.initialized_ok and method not in (types.INITIALIZE, types.EXIT):
            if is_request:
                err = error(
                    SERVER_NOT_INITIALIZED,
                    f"the server is not initialized: send 'initialize' before {method!r}",
                )
                self._send_response(message.id, error=err.to_response_error())
            return
        if self._shutdown and is_request:
            err = JsonRpcInvalidRequest(
                message=f"the server is shutting down: {method!r} is not served"
            )
            self._send_response(message.id, error=err.to_response_error())
            return
        super().handle_message(message)


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
