"""A loopback proxy in front of the test S3 server that answers some
requests as an overloaded S3 does (503 SlowDown), to test retries with
backoff and the SQLSTATE of throttling that outlasts them (moto itself
never throttles). Every other request is forwarded unchanged.
"""

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)
HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length"}


class ThrottlingProxy:
    def __init__(self, upstream):
        target = urlsplit(upstream)
        self.upstream = (target.hostname, target.port)
        # 0: forward everything; n: answer every n-th request with 503 SlowDown.
        self.throttle_every = 0
        self.requests = 0
        self.throttled = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.should_throttle():
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(SLOW_DOWN)))
                    self.end_headers()
                    self.wfile.write(SLOW_DOWN)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def should_throttle(self):
        with self.lock:
            self.requests += 1
            if self.throttle_every and self.requests % self.throttle_every == 0:
                self.throttled += 1
                return True
            return False

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
