"""Several ingest-http processes behind one port: each binds it with SO_REUSEPORT, the kernel spreads new
connections over the processes listening on it, and one that dies stops getting new connections at once (the
connections it held break; their requests were never acknowledged, so the client sends them again)."""

from __future__ import annotations

import socket

import uvicorn


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """Bound, not yet listening: uvicorn listens only after the app's start-up, so until then the kernel keeps
    sending new connections to the processes already serving."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve_on_shared_port(app, host: str, port: int) -> None:
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning")).run(
        sockets=[reuse_port_socket(host, port)])
