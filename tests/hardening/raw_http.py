"""HTTP/1.1 spoken byte by byte over plain sockets: whatever a hostile client can put on the
wire, at whatever pace, and what the server answers (or that it hung up)."""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass

#: How long a client waits for an answer or a hang-up before giving up; far beyond any
#: deadline the server keeps, so hitting it means the server kept the connection open.
PATIENCE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back on one connection."""

    raw: bytes
    #: The server closed (or reset) the connection; ``False``: the client gave up waiting.
    closed: bool

    @property
    def status(self) -> int | None:
        match = re.match(rb"HTTP/1\.[01] ([0-9]{3}) ", self.raw)
        return int(match.group(1)) if match else None

    def header(self, name: bytes) -> bytes | None:
        head = self.raw.partition(b"\r\n\r\n")[0]
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


def request_head(
    method: str, target: bytes, headers: list[tuple[bytes, bytes]], *, version: bytes = b"1.1"
) -> bytes:
    lines = [method.encode() + b" " + target + b" HTTP/" + version]
    lines += [name + b": " + value for name, value in [(b"host", b"127.0.0.1"), *headers]]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def post(target: bytes, body: bytes, content_type: bytes = b"application/json") -> bytes:
    """A whole POST request, as a streaming server sends one."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    return request_head("POST", target, headers) + body


def exchange(port: int, data: bytes, *, patience: float = PATIENCE_SECONDS) -> Answer:
    """Send ``data`` at once and read until the server hangs up (or ``patience`` runs out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=patience) as sock:
        sock.sendall(data)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> Answer:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except TimeoutError:
        return Answer(b"".join(chunks), closed=False)
    except ConnectionResetError:
        pass
    return Answer(b"".join(chunks), closed=True)


@dataclass(frozen=True, slots=True)
class Trickled:
    """How a slow client fared."""

    sent: int
    total: int
    answer: Answer

    @property
    def cut_off(self) -> bool:
        """The server hung up before the client had sent everything."""
        return self.answer.closed and self.sent < self.total


async def trickle(
    port: int,
    data: bytes,
    *,
    at_once: int = 0,
    interval: float = 1.0,
    started: asyncio.Event | None = None,
) -> Trickled:
    """Send the first ``at_once`` bytes of ``data`` together, then one byte per ``interval``,
    stopping when the server hangs up; then wait (up to the patience) for it to answer or
    hang up. ``started`` is set once the first bytes are out."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    hung_up = asyncio.create_task(_read_to_end(reader))
    pieces = [data[:at_once]] + [data[at : at + 1] for at in range(at_once, len(data))]
    sent = 0
    try:
        for number, piece in enumerate(pieces):
            if number and (await asyncio.wait({hung_up}, timeout=interval))[0]:
                break
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
            if started is not None and number == 0:
                started.set()
        done, _ = await asyncio.wait({hung_up}, timeout=PATIENCE_SECONDS)
        answer = hung_up.result() if done else Answer(b"", closed=False)
    except ConnectionError:
        answer = await asyncio.wait_for(hung_up, PATIENCE_SECONDS)
    finally:
        hung_up.cancel()
        writer.close()
    return Trickled(sent, len(data), answer)


async def _read_to_end(reader: asyncio.StreamReader) -> Answer:
    try:
        return Answer(await reader.read(), closed=True)
    except ConnectionError:
        return Answer(b"", closed=True)
