"""The server's one error boundary: user errors become InvalidParams, expected answers log
one line, and nothing a client sends becomes a popup with Python exception text."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcRequestCancelled,
)

from infill.types import InfillError

from .positions import PositionError
from .protocol import CONTENT_MODIFIED, REQUEST_FAILED, SERVER_NOT_INITIALIZED, invalid

log = logging.getLogger(__name__)

#: Answers that tell the user something about their request, not about the server: they
#: log one line at info level, no traceback.
EXPECTED = {JsonRpcInvalidParams.CODE, JsonRpcRequestCancelled.CODE, CONTENT_MODIFIED,
            REQUEST_FAILED, SERVER_NOT_INITIALIZED}

F = TypeVar("F", bound=Callable[..., Any])


def _translate(where: str, exc: Exception) -> JsonRpcException:
    if isinstance(exc, InfillError | PositionError):
        return invalid(str(exc))
    log.error("%s failed", where, exc_info=exc)
    # The traceback stays in this log; the client gets the exception's name only.
    return JsonRpcInternalError(message=f"{where} failed: {type(exc).__name__}")


def user_errors(where: str) -> Callable[[F], F]:
    """Handler decorator: ``InfillError``/``PositionError`` answer InvalidParams; any other
    exception answers InternalError without a traceback in its ``data``."""

    def wrap(handler: F) -> F:
        if inspect.iscoroutinefunction(handler):
            @functools.wraps(handler)
            async def run_async(*args, **kwargs):
                try:
                    return await handler(*args, **kwargs)
                except JsonRpcException:
                    raise
                except Exception as e:
                    raise _translate(where, e) from None

            return run_async  # type: ignore[return-value]

        @functools.wraps(handler)
        def run(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except JsonRpcException:
                raise
            except Exception as e:
                raise _translate(where, e) from None

        return run  # type: ignore[return-value]

    return wrap


def answer_of(exc: BaseException | None) -> JsonRpcException | None:
    """The JSON-RPC answer an exception is or wraps (pygls wraps a handler's exception in
    its ``FeatureRequestError``), if any."""
    for _ in range(4):
        if exc is None or isinstance(exc, JsonRpcException):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


class ExpectedAnswers(logging.Filter):
    """pygls logs every error answer with its traceback at ERROR: keep that for real
    failures, make an expected answer (:data:`EXPECTED`) one line at info level."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = answer_of(record.exc_info[1] if record.exc_info else None)
        if exc is None or exc.code not in EXPECTED:
            return True
        record.msg, record.args = "answered %s: %s", (exc.code, exc.message)
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def quiet_expected_answers() -> None:
    """Install :class:`ExpectedAnswers` on pygls' loggers (once)."""
    for name in ("pygls.protocol.json_rpc", "pygls.protocol.language_server",
                 "lsp_server.server"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ExpectedAnswers) for f in logger.filters):
            logger.addFilter(ExpectedAnswers())
