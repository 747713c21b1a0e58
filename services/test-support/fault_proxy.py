"""An HTTP proxy in front of moto's server that pages small and fails a
share of requests the way AWS does when it is busy.

Paging (PAGE > 0): every list or describe call that botocore's paginator
model says pages gets its page size set to PAGE (or the model's minimum)
when the request names none, so moto, which otherwise answers in one page,
hands out a token after a few items and the client must follow it.

Faults (EVERY_NTH > 0): throttling in each protocol's own error
shape (JSON: ThrottlingException; Query: Throttling, EC2's
RequestLimitExceeded; REST: S3's SlowDown), a bare 500, and a connection
reset before any answer. moto never throttles and never fails, so without
this the clients' retries are never exercised.

Denials (DENY = "METHOD PATH_REGEX"): every request of that method whose
path matches is refused with 403, as S3 refuses a HEAD of a bucket to a
caller without s3:ListBucket on it, or of another account's bucket; moto
allows everything.

Delay (DELAY_MS > 0): every request waits that long before it is passed
on, so that a command is still running when a test acts on it (a second
apply started against its lock, Ctrl-C sent to it).

Canned answers (CANNED, a JSON list): each {"body": REGEX, "status": N,
"type": CONTENT_TYPE, "answer": TEXT, "times": K} answers the first K
requests whose body matches with that answer instead of passing them on,
to show a client what AWS would say at that moment (a resource not there
yet when plan reads it, there when apply creates it).

Deterministic, so a test cannot fail one run in twenty: the first attempt
of every Nth distinct request (method, path and body) fails, and its retry,
being the same request again, goes through. Each fault is appended to a
log file, one line each, so a test can tell that faults happened.

usage: fault_proxy.py LISTEN_PORT UPSTREAM_URL EVERY_NTH FAULT_LOG PAGE [DENY [DELAY_MS [CANNED]]]
"""

import http.client
import http.server
import json
import re
import socket
import sys
import threading
import time
import urllib.parse

LISTEN_PORT = int(sys.argv[1])
UPSTREAM = urllib.parse.urlsplit(sys.argv[2])
EVERY = int(sys.argv[3])
FAULT_LOG = sys.argv[4]
PAGE = int(sys.argv[5])
DENY = sys.argv[6].split(" ", 1) if len(sys.argv) > 6 and sys.argv[6] else None
DELAY = int(sys.argv[7]) / 1000 if len(sys.argv) > 7 else 0
CANNED = json.loads(sys.argv[8]) if len(sys.argv) > 8 and sys.argv[8] else []

# Signing names (in the Authorization header's credential scope) as botocore
# names the services.
SERVICES = {"elasticloadbalancing": "elbv2"}
paginators = {}


def page_size_member(signing_name, operation):
    """(member, size) to page `operation` with, or None when it does not page."""
    service = SERVICES.get(signing_name, signing_name)
    if (service, operation) not in paginators:
        found = None
        try:
            import botocore.session

            session = botocore.session.get_session()
            config = session.get_paginator_model(service).get_paginator(operation)
            member = config.get("limit_key")
            shape = session.get_service_model(service).operation_model(operation).input_shape
            if member and shape is not None and member in shape.members:
                found = (member, max(PAGE, shape.members[member].metadata.get("min", 0)))
        except Exception:
            found = None
        paginators[(service, operation)] = found
    return paginators[(service, operation)]


def paged(headers, body):
    """The body with a page size set where the operation pages and has none."""
    scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", headers.get("Authorization", ""))
    if PAGE <= 0 or scope is None:
        return body
    target = headers.get("X-Amz-Target")
    if target and body[:1] == b"{":
        params = json.loads(body or b"{}")
        paging = page_size_member(scope.group(1), target.rsplit(".", 1)[-1])
        if paging is None or paging[0] in params:
            return body
        params[paging[0]] = paging[1]
        return json.dumps(params).encode()
    if b"Action=" in body:
        params = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
        action = dict(params).get("Action", "")
        paging = page_size_member(scope.group(1), action)
        if paging is None or any(name == paging[0] for name, _ in params):
            return body
        return urllib.parse.urlencode(params + [(paging[0], str(paging[1]))]).encode()
    return body

lock = threading.Lock()
seen = {}
failed = set()
faults = [0]


def fault_for(key):
    """The fault this request gets ('throttle', '500', 'reset'), or None."""
    with lock:
        if key not in seen:
            seen[key] = len(seen) + 1
        if EVERY <= 0 or seen[key] % EVERY != 0 or key in failed:
            return None
        failed.add(key)
        faults[0] += 1
        return ("throttle", "500", "reset")[faults[0] % 3]


def throttling(headers, body):
    """(status, content type, body) of a throttling answer in the request's protocol."""
    if headers.get("X-Amz-Target"):
        return 400, "application/x-amz-json-1.1", b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
    if b"Action=" in body and b"Version=2016-11-15" in body:
        return 503, "text/xml", (
            b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
            b"</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
        )
    if b"Action=" in body:
        return 400, "text/xml", (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
            b"</Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
        )
    return 503, "application/xml", (
        b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    )


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, content_type, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def request_body(self):
        """The request's body, sent with a length or in chunks (the SDK's
        streaming uploads)."""
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""
        body = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return body
            body += self.rfile.read(size)
            self.rfile.readline()

    def relay(self):
        body = self.request_body()
        if DENY is not None and self.command == DENY[0] and re.fullmatch(DENY[1], self.path.split("?")[0]):
            with open(FAULT_LOG, "a") as log:
                log.write(f"deny {self.command} {self.path}\n")
            denied = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
            self.answer(403, "application/xml", b"" if self.command == "HEAD" else denied)
            return
        with lock:
            canned = next(
                (rule for rule in CANNED if rule["times"] > 0 and re.search(rule["body"], body.decode("utf-8", "replace"))),
                None,
            )
            if canned is not None:
                canned["times"] -= 1
        if canned is not None:
            with open(FAULT_LOG, "a") as log:
                log.write(f"canned {self.command} {self.path} {canned['status']}\n")
            self.answer(canned["status"], canned["type"], canned["answer"].encode())
            return
        fault = fault_for((self.command, self.path, body))
        if fault is not None:
            with open(FAULT_LOG, "a") as log:
                log.write(f"{fault} {self.command} {self.path} {self.headers.get('X-Amz-Target', '')}\n")
        if fault == "reset":
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
            return
        if fault == "500":
            self.answer(500, "text/plain", b"")
            return
        if fault == "throttle":
            self.answer(*throttling(self.headers, body))
            return
        body = paged(self.headers, body)
        if DELAY:
            time.sleep(DELAY)
        upstream = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in ("connection", "content-length", "transfer-encoding")
        }
        headers["Content-Length"] = str(len(body))
        upstream.request(self.command, self.path, body=body, headers=headers)
        reply = upstream.getresponse()
        data = reply.read()
        passed = [
            (name, value)
            for name, value in reply.getheaders()
            if name.lower() not in ("content-length", "content-type", "transfer-encoding", "connection")
        ]
        self.answer(reply.status, reply.getheader("Content-Type", "application/octet-stream"), data, passed)
        upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = relay


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


Server(("127.0.0.1", LISTEN_PORT), Handler).serve_forever()
