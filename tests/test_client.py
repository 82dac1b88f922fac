"""toonserve.client against a real HTTP server on a real socket that drops connections the ways a
killed process does: each endpoint is a pure function of the photo, so the client sends it again."""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections.abc import Iterator

import httpx
import pytest

from toonserve.client import retry_policy, toonserve_client

PHOTO = b"\xff\xd8 not really a photo"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def read_request(connection: socket.socket) -> None:
    """Reads one request: its head, and its body to its Content-Length."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    while len(body) < length:
        body += connection.recv(65536)


class DroppingServer(socketserver.ThreadingTCPServer):
    """Answers 200, but the first `drops` requests, once read, lose their connection: reset, or
    closed without a word (a SIGKILLed proxy's connections end either way, by what was unread)."""

    daemon_threads = True

    def __init__(self, drops: int, reset: bool) -> None:
        super().__init__(("127.0.0.1", 0), DroppingHandler)
        self.drops, self.reset, self.requests = drops, reset, 0
        self.lock = threading.Lock()


class DroppingHandler(socketserver.BaseRequestHandler):
    server: DroppingServer

    def handle(self) -> None:
        with self.server.lock:
            self.server.requests += 1
            drop = self.server.requests <= self.server.drops
        read_request(self.request)
        if not drop:
            self.request.sendall(ANSWER)
        elif self.server.reset:
            # Zero linger, closed here before socketserver's shutdown could send FIN: close sends RST.
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.request.close()


@pytest.fixture(params=["reset", "closed"])
def server(request: pytest.FixtureRequest) -> Iterator[DroppingServer]:
    with DroppingServer(drops=2, reset=request.param == "reset") as running:
        threading.Thread(target=running.serve_forever, daemon=True).start()
        yield running
        running.shutdown()


def base_url(server: DroppingServer) -> str:
    host, port = server.socket.getsockname()
    return f"http://{host}:{port}"


def test_a_request_whose_connection_drops_is_sent_again(server: DroppingServer) -> None:
    with toonserve_client(base_url(server), retry=retry_policy(backoff_s=0.01)) as client:
        response = client.post("/v1/anime", content=PHOTO)
    assert response.status_code == 200
    assert server.requests == 3


def test_without_retries_the_drop_reaches_the_caller(server: DroppingServer) -> None:
    """The server really drops the connection: a plain client sees it."""
    with httpx.Client(base_url=base_url(server)) as client, pytest.raises(httpx.TransportError):
        client.post("/v1/anime", content=PHOTO)
