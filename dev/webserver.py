"""A quiet local HTTP server over a folder: how yt-dlp's generic extractor sees the web in tests
and benchmarks (127.0.0.1 only)."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # yt-dlp closes its probing connections early


def serve_directory(directory: Path | str) -> tuple[str, http.server.ThreadingHTTPServer]:
    """(base URL, server) serving `directory` from a background thread; call server.shutdown() to stop."""
    server = _QuietServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server
