"""A local HTTP receiver (a real server on 127.0.0.1 in a thread) and endpoints
that point at it; private addresses are allowed for them, as the setting says."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webhooks.services import webhook_endpoint_create


class Receiver:
    """Records every request; answers with the next of `statuses` (then 200)."""

    def __init__(self):
        self.requests = []
        self.statuses = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                answer = b'{"ok": true}' if status < 300 else b"receiver is down"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks?source=ps"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def allow_private(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def receiver(allow_private):
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def endpoint_and_secret(owner, brand, receiver):
    return webhook_endpoint_create(
        actor=owner, brand=brand, url=receiver.url, events=["asset.created", "job.failed", "campaign.completed"]
    )


@pytest.fixture
def endpoint(endpoint_and_secret):
    return endpoint_and_secret[0]


@pytest.fixture
def secret(endpoint_and_secret):
    return endpoint_and_secret[1]


@pytest.fixture(autouse=True)
def broker(memory_broker):
    """Tasks these tests send (deliveries, retries) land in memory, read back here."""
    return memory_broker
