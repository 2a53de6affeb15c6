"""A minimal HTTP/1.1 client over the agent's unix socket.

Standard library only and deliberately not http.client: importing http.client
(and the email package behind it) costs more than the whole request.
One request per connection (``Connection: close``); bodies are JSON.
"""

from __future__ import annotations

import _socket  # the C module: socket.py would import enum and selectors (~7 ms at start)

from agent.cli.jsonread import loads
from agent.errors import Unreachable

TYPE_CHECKING = False  # typing costs ~3 ms to import; mypy still reads the block below

if TYPE_CHECKING:
    from typing import Any


class Reply:
    # a plain class: importing dataclasses would cost agentctl ~8 ms at start
    __slots__ = ("body", "headers", "raw", "status")

    def __init__(self, status: int, headers: dict[str, str], body: Any, raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.raw = raw  # the JSON exactly as the agent sent it


def _exchange(path: str, raw_request: bytes, timeout: float) -> bytes:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(raw_request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        sock.close()


def parse_response(raw: bytes, path: str) -> Reply:
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if not sep or len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise Unreachable(f"the agent on {path} did not answer HTTP")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    if not body:
        return Reply(int(parts[1]), headers, None, b"")
    try:
        data = loads(body)
    except ValueError:
        ctype = headers.get("content-type", "no content type")
        raise Unreachable(f"the agent on {path} sent a non-JSON answer ({ctype})") from None
    return Reply(int(parts[1]), headers, data, body)


def _dechunk(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)


def request(path: str, method: str, url: str, timeout: float, body: Any = None) -> Reply:
    payload = b""
    if body is not None:
        import json  # only requests with a body (upgrades) pay for the json package

        payload = json.dumps(body).encode()
    head = f"{method} {url} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    try:
        raw = _exchange(path, head.encode() + b"\r\n" + payload, timeout)
    except FileNotFoundError:
        raise Unreachable(f"agent socket {path} does not exist: is edge-agent running?") from None
    except ConnectionRefusedError:
        raise Unreachable(f"nothing is listening on {path}: edge-agent is not running") from None
    except PermissionError:
        raise Unreachable(f"permission denied on {path}: run as root or as a member of group edge-agent") from None
    except TimeoutError:
        raise Unreachable(f"the agent on {path} did not answer within {timeout:g}s (hung?)") from None
    except OSError as exc:
        raise Unreachable(f"talking to the agent on {path} failed: {exc.strerror or exc}") from None
    return parse_response(raw, path)


def get_status(path: str, timeout: float) -> tuple[dict[str, Any] | None, str]:
    """The /v1/status document, or None and why the agent could not give it (screens and doctor go on)."""
    try:
        reply = request(path, "GET", "/v1/status", timeout)
    except Unreachable as exc:
        return None, str(exc)
    if reply.status != 200 or not isinstance(reply.body, dict):
        return None, f"the agent answered {reply.status} to /v1/status"
    return reply.body, ""
