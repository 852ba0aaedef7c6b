"""Several ingest-http processes can bind one port (SO_REUSEPORT); a plain second bind of it fails."""

from __future__ import annotations

import socket

import pytest

from services.ingest.shared_port import reuse_port_socket


def test_two_reuse_port_sockets_share_a_port_a_plain_one_does_not():
    first = reuse_port_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    first.listen()
    second = reuse_port_socket("127.0.0.1", port)
    second.listen()
    plain = socket.socket()
    try:
        assert second.getsockname()[1] == port
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    finally:
        for sock in (first, second, plain):
            sock.close()
