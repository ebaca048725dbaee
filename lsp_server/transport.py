"""Where the bytes come from: stdio, or loopback TCP with one session per connection.

Both read frames with :class:`~lsp_server.framing.FrameReader` and hand each payload to
:meth:`LacunaProtocol.receive`; pygls' own read loops are not used (they go deaf or run
out of memory on a bad header, and lose ``exit``'s status).

TCP has no authentication, so it binds loopback addresses only. Each connection gets a
fresh server from ``make_server`` (its own documents, settings and jobs), so one client
never sees another's answers. A connection that closes without ``exit`` ends only its
session; the process ends after an ``exit`` once no other connection is open.
"""

from __future__ import annotations

import asyncio
import functools
import io
import ipaddress
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import BinaryIO

from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from .framing import FrameReader

log = logging.getLogger(__name__)

#: Bytes asked for per read (frames may span many reads).
CHUNK = 64 * 1024
#: The exit status when the client goes away without ``exit``.
NO_EXIT = 1


async def run_session(server: LanguageServer, read: Callable[[], Awaitable[bytes]]) -> int:
    """Serve one client until ``exit`` (its status) or end of input (:data:`NO_EXIT`)."""
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[int] = loop.create_future()
    protocol = server.protocol
    protocol.on_exit = lambda code: exited.done() or exited.set_result(code)

    async def pump() -> None:
        async for payload in FrameReader(read):
            protocol.receive(payload)
            if exited.done():
                return
            # Let the handler just scheduled start before the next message is read: it
            # sees the documents as they were when its request came, not after a burst.
            await asyncio.sleep(0)

    reading = asyncio.ensure_future(pump())
    await asyncio.wait({reading, exited}, return_when=asyncio.FIRST_COMPLETED)
    reading.cancel()
    if exited.done():
        return exited.result()
    if not reading.cancelled() and reading.exception() is not None:
        log.error("reading from the client failed", exc_info=reading.exception())
    log.info("the client closed the connection without 'exit'")
    return NO_EXIT


def serve_stdio(server: LanguageServer, stdin: BinaryIO | None = None,
                stdout: BinaryIO | None = None) -> int:
    """Serve on stdin/stdout; returns the exit status."""
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    return asyncio.run(_stdio(server, stdin or sys.stdin.buffer))


async def _stdio(server: LanguageServer, stdin: BinaryIO) -> int:
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)  # bounded read-ahead

    try:  # the file descriptor itself: a daemon thread inside a buffered read holds its
        fd = stdin.fileno()  # lock, and the interpreter's shutdown then aborts on it
        read = functools.partial(os.read, fd, CHUNK)
    except (OSError, AttributeError, io.UnsupportedOperation):
        read = functools.partial(stdin.read1, CHUNK)

    def read_stdin() -> None:
        """A daemon thread: a blocked read never keeps the process alive after exit."""
        while True:
            try:
                chunk = read()
            except (OSError, ValueError):
                chunk = b""
            try:
                asyncio.run_coroutine_threadsafe(chunks.put(chunk), loop).result()
            except (RuntimeError, asyncio.CancelledError):
                return
            if not chunk:
                return

    threading.Thread(target=read_stdin, name="lacuna-stdin", daemon=True).start()
    return await run_session(server, chunks.get)


def check_loopback(host: str) -> None:
    """Refuse a host that is not a loopback address: TCP mode has no authentication."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"lacuna serve: --tcp binds loopback only (TCP has no "
                         f"authentication), got host {host!r}; use 127.0.0.1 or ::1")


def serve_tcp(make_server: Callable[[], LanguageServer], host: str, port: int,
              close: Callable[[LanguageServer], None] | None = None) -> int:
    """Listen on loopback ``host:port``; one fresh server (``make_server()``) per
    connection, given to ``close`` when it ends. Returns the status of the last ``exit``."""
    check_loopback(host)
    return asyncio.run(_tcp(make_server, host.strip("[]"), port, close))  # "[::1]" too


async def _tcp(make_server: Callable[[], LanguageServer], host: str, port: int,
               close: Callable[[LanguageServer], None] | None) -> int:
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    open_sessions = 0
    exit_code: int | None = None

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_sessions, exit_code
        open_sessions += 1
        server = make_server()
        server.protocol.set_writer(writer)
        try:
            code = await run_session(server, lambda: reader.read(CHUNK))
            if server.protocol.exit_code is not None:
                exit_code = code
        finally:
            open_sessions -= 1
            writer.close()
            if close is not None:
                close(server)
            if open_sessions == 0 and exit_code is not None and not done.done():
                done.set_result(exit_code)

    listener = await asyncio.start_server(connection, host, port)
    async with listener:
        return await done
