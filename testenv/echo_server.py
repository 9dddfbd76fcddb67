"""A task's HTTP server for traffic tests: answers every GET with its `--text` (the app and
version a client counts), `/health` with 200, and a share `--error-rate` of requests with
500. Standard library only, so a Marathon task runs it by path:

    python3 testenv/echo_server.py --port $PORT0 --text "$MARATHON_APP_ID"

On SIGTERM (Mesos' kill, after Marathon's TASK_KILLING) it stops accepting connections at
once and exits after the requests in flight are answered, as a well-behaved service does.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--text", default="ok")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    body = (args.text + "\n").encode()
    rng = random.Random()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if args.delay_ms:
                threading.Event().wait(args.delay_ms / 1000)
            failing = self.path != "/health" and rng.random() < args.error_rate
            status = 500 if failing else 200
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            return

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
                super().handle_error(request, client_address)  # type: ignore[arg-type]

    server = Server((args.host, args.port), Handler)
    server.daemon_threads = False  # answer what is in flight before exiting
    server.block_on_close = True

    def stop(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
