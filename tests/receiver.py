"""A local HTTP receiver that verifies Standard Webhooks signatures: the other end
of webhook deliveries and of the webhook publishing connector, in tests."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


class SignedReceiver:
    """Verifies each POST with `secret` (set once the endpoint exists) and answers
    `statuses` in turn, then `status`, with `answer` as a JSON body on a 200.

    messages: (headers, verified message, status answered) of each verified request;
    unverified: why a request did not verify (answered 400)."""

    def __init__(self, *, path="/hooks", statuses=(), status=200, answer=None):
        self.secret, self.statuses, self.status, self.answer = None, list(statuses), status, answer
        self.messages, self.unverified = [], []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    message = Webhook(receiver.secret).verify(body, dict(self.headers))
                except Exception as exc:  # noqa: BLE001 - recorded, the test fails on it
                    receiver.unverified.append(repr(exc))
                    self.send_response(400)
                    self.end_headers()
                    return
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                receiver.messages.append((dict(self.headers), message, status))
                content = json.dumps(receiver.answer).encode() if status == 200 and receiver.answer else b""
                self.send_response(status)
                if content:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def accepted(self):
        """(headers, message) of the requests answered with a 2xx."""
        return [(headers, message) for headers, message, status in self.messages if status < 300]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
