"""A customer's web server for pbxd's "ask web URL" tests (seed 000 §30).

Every request is kept: GET /received lists them, one per line: the time it
came (milliseconds since the epoch), the method and path, and the body as
sent (a form, percent-encoded), tab-separated.

What it answers depends on the path:
  /route?dtype=phone&dnumber=202[&answer_url=..][&hangup_url=..][&crlf=1]
      text/plain, one `key: value` line per query field (but crlf), lines
      ending in \\r\\n with crlf=1, else \\n;
  /sleep?seconds=N   answers `dtype: hangup` after N seconds;
  /error             500;
  /html              200 text/html;
  /parlay?action=Route&to=ADDRESS[&to=...]
      a Parlay X client: a notification (notifyBusy...) gets an empty SOAP
      response; a question (handleBusy...) is answered with the action
      (Continue when none) and its routing addresses;
  anything else      200 text/plain, empty (the answer and hangup URLs).

Arguments: [CERT KEY] to serve HTTPS. Prints the port it listens on, then
serves until killed."""

import http.server
import re
import ssl
import sys
import threading
import time
import urllib.parse

RECEIVED = []
LOCK = threading.Lock()


class Router(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body, kind="text/plain"):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/received":
            with LOCK:
                flat = body.replace("\t", " ").replace("\r", " ").replace("\n", " ")
                RECEIVED.append(f"{int(time.time() * 1000)}\t{self.command} {self.path}\t{flat}")
        query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        if url.path == "/received":
            with LOCK:
                return self.reply(200, "".join(line + "\n" for line in RECEIVED))
        if url.path == "/route":
            end = "\r\n" if ("crlf", "1") in query else "\n"
            lines = [f"{key}: {value}" for key, value in query if key != "crlf"]
            return self.reply(200, "".join(line + end for line in lines))
        if url.path == "/sleep":
            time.sleep(float(dict(query).get("seconds", "10")))
            return self.reply(200, "dtype: hangup\n")
        if url.path == "/error":
            return self.reply(500, "broken")
        if url.path == "/parlay":
            found = re.search(r"<(?:[\w.-]+:)?((?:handle|notify)\w+)[\s/>]", body)
            operation = found.group(1) if found else "unknown"
            inner = ""
            if operation.startswith("handle"):
                action = dict(query).get("action", "Continue")
                addresses = "".join(
                    f"<routingAddress>{value}</routingAddress>" for key, value in query if key == "to"
                )
                inner = f"<result><actionToPerform>{action}</actionToPerform>{addresses}</result>"
            envelope = (
                '<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
                f'<soapenv:Body><ns:{operation}Response xmlns:ns="urn:test">{inner}</ns:{operation}Response>'
                "</soapenv:Body></soapenv:Envelope>"
            )
            return self.reply(200, envelope, "text/xml")
        if url.path == "/html":
            return self.reply(200, "<p>dtype: phone</p>", "text/html")
        self.reply(200, "")

    do_GET = handle_any
    do_POST = handle_any

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Router)
server.daemon_threads = True
if len(sys.argv) == 3:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
