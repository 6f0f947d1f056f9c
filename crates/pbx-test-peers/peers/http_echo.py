"""A small HTTP server for the tests: echoes what it receives as text,
answers /json with JSON, /slow after three seconds, /missing with 404.
/hook keeps each body it is sent (a webhook's receiver); /flaky does the
same but answers 503 to the first two; /received lists what they kept,
as JSON. Prints the port it listens on, then serves until killed."""

import http.server
import json
import sys
import threading
import time

RECEIVED = []
FLAKY = {"refused": 0}
LOCK = threading.Lock()


class Echo(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body, kind="text/plain; charset=utf-8"):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Test", "yes")
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        if self.path.startswith("/slow"):
            time.sleep(3)
        if self.path.startswith("/missing"):
            return self.reply(404, "no such page")
        if self.path.startswith("/flaky"):
            with LOCK:
                FLAKY["refused"] += 1
                refuse = FLAKY["refused"] <= 2
            if refuse:
                return self.reply(503, "try again")
            with LOCK:
                RECEIVED.append(body)
            return self.reply(200, "kept")
        if self.path.startswith("/hook"):
            with LOCK:
                RECEIVED.append(body)
            return self.reply(200, "kept")
        if self.path.startswith("/received"):
            with LOCK:
                return self.reply(200, json.dumps(RECEIVED), "application/json")
        if self.path.startswith("/json"):
            return self.reply(200, json.dumps({"answer": 42, "path": self.path}), "application/json")
        kind = self.headers.get("Content-Type") or "-"
        self.reply(200, f"{self.command} {self.path} [{kind}] {body}")

    do_GET = handle_any
    do_POST = handle_any
    do_PUT = handle_any

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
print(server.server_address[1], flush=True)
server.serve_forever()
