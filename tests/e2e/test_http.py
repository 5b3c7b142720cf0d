#!/usr/bin/env python3
"""The HTTP side of ws:// and wss:// listeners: the page's files from
web_root (content types, caching, HEAD, 404, 405, no listing), paths that
try to leave web_root (.., %2e%2e, %2f, NUL, absolute forms, symbolic
links), bounded requests (414, 431, 413, 400, handshake_timeout), the
upgrade's checks (400, 426, 405) and web_origins (403), web_root and
web_origins in the configuration, and wss:// with the test PKI."""

import os
import re
import signal
import socket
import ssl
import time

import acproto
import acws
from harness import SRCDIR, Server, main, mkdtemp
from pki import certs

WEB = os.path.join(SRCDIR, "web")


class Response:
    """One HTTP answer: status, headers (lower-case names), body."""

    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def __repr__(self):
        return "<%d %s %r %d bytes>" % (self.status, self.reason,
                                         self.headers, len(self.body))


class HttpConn:
    """A raw HTTP/1.1 connection: send bytes, read answers."""

    def __init__(self, port, ctx=None, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if ctx is not None:
            s = ctx.wrap_socket(s, server_hostname="localhost")
        self.s = s
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.s.sendall(data)

    def _more(self):
        try:
            chunk = self.s.recv(65536)
        except (ConnectionError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def read(self, head_only=False):
        """The next answer (head_only: to a HEAD, with no body)."""
        while b"\r\n\r\n" not in self.buf:
            if self.eof:
                raise acproto.Closed("closed before an answer: %r"
                                     % self.buf[:200])
            self._more()
        end = self.buf.index(b"\r\n\r\n") + 4
        head = self.buf[:end].decode("latin-1")
        self.buf = self.buf[end:]
        lines = head.split("\r\n")
        m = re.match(r"HTTP/1\.1 (\d{3}) (.*)$", lines[0])
        if not m:
            raise AssertionError("bad status line %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            if line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        n = 0 if head_only or m.group(1) in ("101", "304") else \
            int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            if self.eof:
                raise acproto.Closed("closed inside a body")
            self._more()
        body, self.buf = self.buf[:n], self.buf[n:]
        return Response(int(m.group(1)), m.group(2), headers, body)

    def closed(self, timeout=3.0):
        """True if the server closes the connection within timeout."""
        self.s.settimeout(timeout)
        try:
            while not self.eof:
                self._more()
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def request(port, target, method="GET", headers=(), ctx=None,
            host=None):
    """One request on a new connection; its answer."""
    c = HttpConn(port, ctx)
    try:
        lines = ["%s %s HTTP/1.1" % (method, target),
                 "Host: %s" % (host or "127.0.0.1:%d" % port)]
        lines.extend(headers)
        c.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return c.read(head_only=(method == "HEAD"))
    finally:
        c.close()


def raw(port, data, ctx=None):
    """Send raw bytes on a new connection: (answer or None, closed)."""
    c = HttpConn(port, ctx)
    try:
        c.send(data)
        try:
            r = c.read()
        except acproto.Closed:
            r = None
        return r, c.closed()
    finally:
        c.close()


def upgrade(port, headers, ctx=None, host=None, target="/ws"):
    """Send an upgrade request with these headers replacing the usual
    ones (a None value leaves one out); the answer."""
    base = {"Host": host or "127.0.0.1:%d" % port, "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": acws.new_key(),
            "Sec-WebSocket-Version": "13"}
    base.update(headers)
    lines = ["GET %s HTTP/1.1" % target]
    lines += ["%s: %s" % (k, v) for k, v in base.items() if v is not None]
    c = HttpConn(port, ctx)
    try:
        c.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return c.read()
    finally:
        c.close()


def file_bytes(name):
    with open(os.path.join(WEB, name), "rb") as f:
        return f.read()


def case_files(t):
    """GET / is index.html; each file with its type and caching."""
    with Server(plugins=["echo"]) as srv:
        port = srv.ws_port
        r = request(port, "/")
        t.eq((r.status, r.body), (200, file_bytes("index.html")),
             "GET / is index.html, whole")
        t.eq(r.headers.get("content-type"), "text/html; charset=utf-8",
             "index.html is text/html; charset=utf-8")
        t.eq(r.headers.get("cache-control"), "no-cache",
             "Cache-Control: no-cache (revalidated: no versioned names)")
        t.ok(re.match(r'^"[0-9a-f]{16}"$', r.headers.get("etag", "")),
             "a strong ETag", repr(r.headers))
        t.eq(r.headers.get("x-content-type-options"), "nosniff", "nosniff")
        t.eq(r.headers.get("x-frame-options"), "DENY", "never framed")
        t.ok("frame-ancestors 'none'" in
             r.headers.get("content-security-policy", ""),
             "a CSP with frame-ancestors 'none'", repr(r.headers))
        t.eq(r.headers.get("connection"), "keep-alive",
             "HTTP/1.1 connections are kept")
        t.eq(request(port, "/index.html").body, r.body,
             "/index.html is the same file")
        types = {"style.css": "text/css; charset=utf-8",
                 "favicon.svg": "image/svg+xml",
                 "js/main.js": "text/javascript; charset=utf-8",
                 "js/protocol.js": "text/javascript; charset=utf-8"}
        for name, ctype in types.items():
            r = request(port, "/" + name)
            t.eq((r.status, r.headers.get("content-type"), r.body),
                 (200, ctype, file_bytes(name)),
                 "/%s: 200, %s, the file's bytes" % (name, ctype))
        for name in sorted(os.listdir(os.path.join(WEB, "js"))):
            r = request(port, "/js/" + name)
            t.eq((r.status, r.body), (200, file_bytes("js/" + name)),
                 "/js/%s is served" % name)
        r = request(port, "/?x=1&y=%2e%2e")
        t.eq((r.status, r.body), (200, file_bytes("index.html")),
             "a query string is ignored")


def case_other_types(t):
    """Content types by extension, from a web_root of our own."""
    d = mkdtemp("acweb-")
    files = {"a.png": "image/png", "a.ico": "image/x-icon",
             "a.json": "application/json", "A.JS": "text/javascript; "
             "charset=utf-8", "a.mjs": "text/javascript; charset=utf-8",
             "a.txt": "text/plain; charset=utf-8",
             "a.webmanifest": "application/manifest+json",
             "noext": "application/octet-stream",
             "a.bin": "application/octet-stream",
             "empty.html": "text/html; charset=utf-8"}
    for name in files:
        with open(os.path.join(d, name), "wb") as f:
            f.write(b"" if name == "empty.html" else name.encode() * 3)
    with Server(plugins=["echo"], server={"web_root": d}) as srv:
        for name, ctype in sorted(files.items()):
            r = request(srv.ws_port, "/" + name)
            want = b"" if name == "empty.html" else name.encode() * 3
            t.eq((r.status, r.headers.get("content-type"), r.body),
                 (200, ctype, want), "/%s: %s" % (name, ctype))


def case_head_and_304(t):
    """HEAD: the headers of GET, no body; If-None-Match: 304."""
    with Server(plugins=["echo"]) as srv:
        port = srv.ws_port
        g = request(port, "/style.css")
        c = HttpConn(port)
        c.send(b"HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /favicon.svg HTTP/1.1\r\nHost: x\r\n\r\n")
        h = c.read(head_only=True)
        nxt = c.read()
        c.close()
        t.eq(h.status, 200, "HEAD: 200")
        t.eq({k: v for k, v in h.headers.items() if k != "date"},
             {k: v for k, v in g.headers.items() if k != "date"},
             "HEAD: the headers GET gives")
        t.eq((nxt.status, nxt.body), (200, file_bytes("favicon.svg")),
             "HEAD had no body: the next answer follows at once")
        r = request(port, "/style.css",
                    headers=["If-None-Match: %s" % g.headers["etag"]])
        t.eq((r.status, r.body), (304, b""), "If-None-Match with the ETag: "
             "304 without a body")
        t.eq(r.headers.get("etag"), g.headers["etag"], "304 repeats the ETag")
        r = request(port, "/style.css", headers=['If-None-Match: "other", %s'
                                                  % g.headers["etag"]])
        t.eq(r.status, 304, "an ETag among others: 304")
        r = request(port, "/style.css", headers=['If-None-Match: "0"'])
        t.eq(r.status, 200, "another ETag: 200")
        r = request(port, "/missing", method="HEAD")
        t.eq((r.status, r.body), (404, b""), "HEAD of a missing file: 404")


def case_not_found_and_methods(t):
    """404 for what is not a file (directories never listed), 405 for
    methods other than GET and HEAD."""
    with Server(plugins=["echo"]) as srv:
        port = srv.ws_port
        for target in ("/missing.html", "/js", "/js/", "/js/missing.js",
                       "//index.html", "/index.html/", "/INDEX.HTML",
                       "/..\\..\\etc\\passwd", "/.well-known/x"):
            r = request(port, target)
            t.eq(r.status, 404, "GET %s: 404" % target)
            t.ok(b"index.html" not in r.body and b"main.js" not in r.body,
                 "GET %s lists nothing" % target, repr(r.body))
        c = HttpConn(port)
        c.send(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        a, b = c.read(), c.read()
        c.close()
        t.eq((a.status, b.status), (404, 200),
             "a 404 keeps the connection for the next request")
        for method in ("POST", "PUT", "DELETE", "OPTIONS", "get"):
            r = request(port, "/", method=method)
            t.eq((r.status, r.headers.get("allow")), (405, "GET, HEAD"),
                 "%s /: 405, Allow: GET, HEAD" % method)
        r = request(port, "/ws", method="POST")
        t.eq((r.status, r.headers.get("allow")), (405, "GET"),
             "POST /ws: 405, Allow: GET")


def case_escapes(t):
    """Nothing outside web_root is ever served: .. in every spelling, an
    encoded slash or NUL, absolute forms, symbolic links."""
    d = mkdtemp("acweb-")
    secret = os.path.join(mkdtemp("acsecret-"), "secret.txt")
    with open(secret, "w") as f:
        f.write("SECRET-OUTSIDE")
    os.makedirs(os.path.join(d, "sub"))
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write("<p>inside</p>")
    with open(os.path.join(d, "sub", "in.txt"), "w") as f:
        f.write("inside too")
    with open(os.path.join(d, ".hidden"), "w") as f:
        f.write("SECRET-HIDDEN")
    with open(os.path.join(d, "50%.txt"), "w") as f:
        f.write("SECRET-PERCENT")
    os.symlink(secret, os.path.join(d, "link.txt"))
    os.symlink(os.path.dirname(secret), os.path.join(d, "linkdir"))
    os.symlink(os.path.join(d, "index.html"), os.path.join(d, "inner.html"))
    srv = Server(plugins=["echo"], server={"web_root": d}, start=False)
    st, out = srv.check()
    t.ok(st == 0 and re.search(r"4 entries of web_root not served \(symbolic"
                               r" links are never followed\)", out),
         "-t: the links (and 50%.txt) are not served, and it says so", out)
    with srv.start():
        port = srv.ws_port
        t.eq(request(port, "/sub/in.txt").body, b"inside too",
             "a file in a subdirectory is served")
        bad = ["/../secret.txt", "/sub/../../x", "/%2e%2e/%2e%2e/etc/passwd",
               "/%2E%2E/x", "/sub/%2e%2e/index.html", "/.%2e/x",
               "/sub/./in.txt", "/.", "/..", "/sub/..", "/..%2fetc%2fpasswd",
               "/sub%2fin.txt", "/index.html%00", "/%00", "/%zz", "/%2",
               "/a%", "/index.html#frag"]
        for target in bad:
            r = request(port, target)
            t.eq(r.status, 400, "GET %s: 400" % target)
            t.ok(b"SECRET" not in r.body and b"inside" not in r.body,
                 "GET %s serves nothing" % target)
        for target, why in (("/sub/%2e%2e/x", b"a . or .. segment in the "
                             b"path"),
                            ("/sub%2fin.txt", b"an encoded NUL or / in the "
                             b"path"),
                            ("/%zz", b"a bad %-escape in the path")):
            t.eq(request(port, target).body, b"400 Bad Request: " + why +
                 b"\n", "GET %s: the answer says what is wrong" % target)
        for target in ("/link.txt", "/linkdir/secret.txt", "/inner.html",
                       "/.hidden", "/50%25.txt", "/" + secret,
                       "/" + secret.lstrip("/"), "/etc/passwd"):
            r = request(port, target)
            t.eq(r.status, 404, "GET %s: 404" % target)
            t.ok(b"SECRET" not in r.body, "GET %s serves nothing" % target)
        for target in ("http://127.0.0.1/etc/passwd", "*",
                       "127.0.0.1:80", "secret.txt"):
            r, closed = raw(port, ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n"
                                   % target).encode())
            t.eq(r and r.status, 400, "GET %s (not origin-form): 400"
                 % target)
        r, closed = raw(port, b"GET /index.html\0 HTTP/1.1\r\nHost: x\r\n\r\n")
        t.eq(r and r.status, 400, "a NUL byte in the request: 400")
        r, closed = raw(port, "GET /\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n"
                        .encode("utf-8"))
        t.eq(r and r.status, 400, "a raw non-ASCII byte in the path: 400")
        t.ok(srv.poll() is None, "server still running")


def case_bounds(t):
    """Requests are bounded before they are parsed: 414, 431, 413, 400,
    505, and handshake_timeout for slow or silent peers."""
    with Server(plugins=["echo"], server={"handshake_timeout": 1}) as srv:
        port = srv.ws_port
        r, closed = raw(port, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n")
        t.eq((r and r.status, closed), (414, True),
             "a request line over 4096 bytes: 414, closed")
        r, closed = raw(port, b"GET /" + b"a" * 4000 +
                        b" HTTP/1.1\r\nHost: x\r\n\r\n")
        t.eq(r and r.status, 404, "a request line under the bound: parsed")
        r, closed = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " +
                        b"b" * 9000 + b"\r\n\r\n")
        t.eq((r and r.status, closed), (431, True),
             "a head over 8192 bytes: 431, closed")
        t.eq(r and r.body, b"431 Request Header Fields Too Large: the "
             b"request head is over 8192 bytes\n", "and says so")
        r, closed = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n" +
                        b"".join(b"X-H%d: v\r\n" % i for i in range(65)) +
                        b"\r\n")
        t.eq((r and r.status, closed), (431, True),
             "65 header lines: 431, closed")
        r, closed = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n" +
                        b"".join(b"X-H%d: v\r\n" % i for i in range(63)) +
                        b"\r\n")
        t.eq(r and r.status, 200, "64 header lines: parsed")
        for label, req, code in [
                ("a body (Content-Length: 5)",
                 b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
                 b"hello", 413),
                ("a chunked body", b"POST / HTTP/1.1\r\nHost: x\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
                 b"\r\n", 413),
                ("Content-Length: -1", b"GET / HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: -1\r\n\r\n", 400),
                ("no Host in HTTP/1.1", b"GET / HTTP/1.1\r\n\r\n", 400),
                ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                 400),
                ("a folded header", b"GET / HTTP/1.1\r\nHost: x\r\n"
                 b"X-A: a\r\n  folded\r\n\r\n", 400),
                ("a space before the colon", b"GET / HTTP/1.1\r\nHost : x"
                 b"\r\n\r\n", 400),
                ("a control character in a value", b"GET / HTTP/1.1\r\n"
                 b"Host: x\r\nX-A: a\x01b\r\n\r\n", 400),
                ("a bare CR in a value", b"GET / HTTP/1.1\r\nHost: x\r\n"
                 b"X-A: a\rb\r\n\r\n", 400),
                ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
                ("HTTP/1", b"GET / HTTP/1\r\nHost: x\r\n\r\n", 400),
                ("no version", b"GET /\r\nHost: x\r\n\r\n", 400),
                ("two spaces", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
                ("binary junk", b"\x16\x03\x01\x02\x00\x01\x00\r\n\r\n",
                 400)]:
            r, closed = raw(port, req)
            t.eq((r and r.status, closed), (code, True),
                 "%s: %d, closed" % (label, code))
        r, closed = raw(port, b"GET / HTTP/1.0\r\n\r\n")
        t.eq((r and r.status, r and r.headers.get("connection"), closed),
             (200, "close", True), "HTTP/1.0 without Host: served, closed")
        r, closed = raw(port, b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n"
                        b"Connection: close\r\n\r\n")
        t.eq((r and r.status, closed), (200, True),
             "empty lines before a request are skipped; Connection: close")
        r, closed = raw(port, b"GET / HTTP/1.1\nHost: x\n\n")
        t.eq(r and r.status, 200, "bare LF line ends are understood")
        # silent and slow peers
        for label, data in (("a silent connection", b""),
                            ("half a request line", b"GET /ind"),
                            ("a head without its end",
                             b"GET / HTTP/1.1\r\nHost: x\r\n")):
            c = HttpConn(port)
            if data:
                c.send(data)
            t0 = time.monotonic()
            closed = c.closed(5)
            t.ok(closed, "%s: closed after handshake_timeout" % label,
                 "after %.1f s" % (time.monotonic() - t0))
            c.close()
        c = HttpConn(port)
        t0 = time.monotonic()
        closed = False
        try:
            while time.monotonic() - t0 < 5:
                c.send(b"X")            # a byte at a time, forever
                time.sleep(0.1)
        except OSError:
            closed = True
        t.ok(closed or c.closed(1), "a peer trickling a byte at a time is "
             "closed: the timeout is for the whole request")
        c.close()
        # keep-alive: many requests on one connection, in order
        c = HttpConn(port)
        c.send(b"".join(b"GET /favicon.svg HTTP/1.1\r\nHost: x\r\n\r\n"
                        for _ in range(5)))
        rs = [c.read() for _ in range(5)]
        t.ok(all(r.status == 200 and r.body == file_bytes("favicon.svg")
                 for r in rs), "five pipelined requests, five answers")
        c.close()
        c = HttpConn(port)
        c.send(b"".join(b"GET /favicon.svg HTTP/1.1\r\nHost: x\r\n\r\n"
                        for _ in range(101)))
        rs = []
        try:
            for _ in range(101):
                rs.append(c.read())
        except acproto.Closed:
            pass
        t.eq(len(rs), 100, "a connection serves 100 requests")
        t.eq(rs[-1].headers.get("connection"), "close",
             "the 100th says Connection: close")
        c.close()
        with srv.client("tcp") as cl:
            t.eq(cl.sync(), [], "the chat is served throughout")


def case_upgrade_checks(t):
    """The upgrade needs what RFC 6455 4.2.1 asks for."""
    with Server(plugins=["echo"]) as srv:
        port = srv.ws_port
        for label, hdrs, code in [
                ("no Upgrade", {"Upgrade": None}, 400),
                ("Upgrade: h2c", {"Upgrade": "h2c"}, 400),
                ("no Connection: upgrade", {"Connection": "keep-alive"}, 400),
                ("no key", {"Sec-WebSocket-Key": None}, 400),
                ("a key of 15 bytes", {"Sec-WebSocket-Key":
                                       "AAAAAAAAAAAAAAAAAAAA"}, 400),
                ("a key that is not base64", {"Sec-WebSocket-Key":
                                              "!!!!!!!!!!!!!!!!!!!!!!=="}, 400),
                ("two keys", {"Sec-WebSocket-Key": acws.new_key() +
                              "\r\nSec-WebSocket-Key: " + acws.new_key()},
                 400),
                ("no version", {"Sec-WebSocket-Version": None}, 426),
                ("version 8", {"Sec-WebSocket-Version": "8"}, 426)]:
            r = upgrade(port, hdrs)
            t.eq(r.status, code, "%s: %d" % (label, code))
            if code == 426:
                t.eq(r.headers.get("sec-websocket-version"), "13",
                     "%s: the answer names version 13" % label)
        r, closed = raw(port, acws.request_head("x").replace(b"HTTP/1.1",
                                                             b"HTTP/1.0"))
        t.eq(r and r.status, 400, "an upgrade in HTTP/1.0: 400")
        r = upgrade(port, {"Connection": "keep-alive, Upgrade",
                           "Upgrade": "websocket"})
        t.eq(r.status, 101, "Connection: keep-alive, Upgrade: 101")
        r = upgrade(port, {}, target="/ws?room=x")
        t.eq(r.status, 101, "/ws with a query: 101")
        r = upgrade(port, {}, target="/ws/")
        t.eq(r.status, 404, "/ws/ is not /ws: 404")
        # a client that sends frames right behind its request
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(acws.request_head("127.0.0.1:%d" % port, key=acws.new_key())
                  + acws.frame(acws.OP_PING, b"early"))
        ws = acws.WsSocket(s, acws._read_head(s)[1])
        c = acproto.Client(ws, name="eager")
        c.handshake()
        t.eq(ws.pings, [b"early"], "frames right behind the request are "
             "read after the upgrade")
        c.close()


def origin_status(port, origin, host=None, ctx=None):
    hdrs = {} if origin is None else {"Origin": origin}
    return upgrade(port, hdrs, host=host, ctx=ctx).status


def case_origins(t):
    """web_origins: by default the page's own origin only (and on a
    loopback listener only by a loopback name, against DNS rebinding);
    a list; or *."""
    with Server(plugins=["echo"]) as srv:
        port = srv.ws_port
        own = "http://127.0.0.1:%d" % port
        for origin, host, code, label in [
                (own, None, 101, "the page's own origin"),
                (own.upper().replace("HTTP", "http"), None, 101,
                 "its own origin in capitals"),
                (None, None, 101, "no Origin (not a browser)"),
                ("http://localhost:%d" % port, "localhost:%d" % port, 101,
                 "http://localhost:PORT with Host localhost:PORT"),
                ("http://evil.example", None, 403, "another site"),
                ("http://127.0.0.1:%d" % (port + 1), None, 403,
                 "another port"),
                ("https://127.0.0.1:%d" % port, None, 403, "https for ws://"),
                ("null", None, 403, "null (a sandboxed or file: page)"),
                ("http://evil.example:%d" % port,
                 "evil.example:%d" % port, 403,
                 "a rebound name: Origin and Host agree, not loopback"),
                (own + "/", None, 403, "an origin with a path"),
                ("", None, 403, "an empty Origin")]:
            t.eq(origin_status(port, origin, host), code,
                 "default, %s: %d" % (label, code))
        m = srv.wait_log(r"http: refusing a WebSocket from origin "
                         r"http://evil\.example \(web_origins; \d+ more since "
                         r"the last line\) peer=127\.0\.0\.1:\d+", timeout=2)
        t.ok(m is not None, "a refused origin is logged (at a bounded rate)",
             srv.log()[-1500:])
    listed = "https://chat.example.org, http://127.0.0.1:1234"
    with Server(plugins=["echo"], server={"web_origins": listed}) as srv:
        port = srv.ws_port
        for origin, code in [("https://chat.example.org", 101),
                             ("https://CHAT.example.org:443", 101),
                             ("http://127.0.0.1:1234", 101),
                             ("http://chat.example.org", 403),
                             ("http://127.0.0.1:%d" % port, 403),
                             (None, 101)]:
            t.eq(origin_status(port, origin), code,
                 "web_origins = %s, Origin %s: %d" % (listed, origin, code))
    with Server(plugins=["echo"], server={"web_origins": "*"}) as srv:
        for origin in ("http://evil.example", "null"):
            t.eq(origin_status(srv.ws_port, origin), 101,
                 "web_origins = *, Origin %s: 101" % origin)
        t.ok(re.search(r"web_origins: \* lets the pages of every web site "
                       r"open sessions", srv.log()), "* is warned about")
    # a listener on every address: the own origin by any name
    with Server(plugins=["echo"], ws=False, unix=False,
                server={"listen": ["tcp://127.0.0.1:0", "ws://0.0.0.0:0"]}
                ) as srv:
        m = srv.wait_log(r"listening on ws://0\.0\.0\.0:(\d+)", 3)
        port = int(m.group(1))
        t.eq(origin_status(port, "http://chat.example:%d" % port,
                           host="chat.example:%d" % port), 101,
             "on 0.0.0.0, the page's own origin by a name: 101")
        t.ok(re.search(r"listen: ws://0\.0\.0\.0:0 without web_origins: "
                       r"the pages of any web site can open sessions here",
                       srv.log()),
             "which any site can be by DNS rebinding: warned about",
             srv.log()[-1500:])


def case_config(t):
    """ws://, wss://, web_root and web_origins in the configuration."""
    srv = Server(plugins=["echo"], start=False)
    for label, opts, pattern in [
            ("a web_root that does not exist",
             {"web_root": "/nonexistent/web"},
             r"\[server\] web_root: /nonexistent/web: No such file"),
            ("a web_root that is a file", {"web_root": "/etc/hostname"},
             r"web_root: /etc/hostname: not a directory"),
            ("a bad origin", {"web_origins": "chat.example.org"},
             r"web_origins: chat\.example\.org: expected origins"),
            ("an origin with a path",
             {"web_origins": "https://a.example/x"}, r"web_origins: "),
            ("* among origins", {"web_origins": "http://a.example, *"},
             r"web_origins: "),
            ("wss:// without a certificate",
             {"listen": ["wss://127.0.0.1:0"]},
             r"wss://127\.0\.0\.1:0 needs tls_cert and tls_key"),
            ("ws:// with a path", {"listen": ["ws://127.0.0.1:8080/chat"]},
             r"bad port"),
            ("ws:/ typo", {"listen": ["ws:/127.0.0.1:8080"]},
             r"expected tcp://HOST:PORT, tls://HOST:PORT, ws://HOST:PORT, "
             r"wss://HOST:PORT or unix:///PATH")]:
        srv.write_config(server=opts)
        st, out = srv.check()
        t.ok(st == 1 and re.search(pattern, out), "%s: -t fails, saying "
             "so" % label, out)
    srv.write_config(server={"listen": ["tcp://127.0.0.1:0"],
                             "web_root": WEB, "web_origins": "*"})
    st, out = srv.check()
    t.ok(st == 0 and "web_root: ignored: no ws:// or wss:// listener" in out
         and "web_origins: ignored" in out,
         "web_root and web_origins without a web listener: warned, ignored",
         out)
    # web_root = none: /ws only
    with Server(plugins=["echo"], server={"web_root": "none"}) as srv:
        t.eq(request(srv.ws_port, "/").status, 404,
             "web_root = none: GET / is 404")
        with srv.client("ws") as c:
            t.eq(c.sync(), [], "and /ws works")


def case_reload(t):
    """SIGHUP reads web_root again; an answer being written keeps the
    files it was started with."""
    d = mkdtemp("acweb-")
    path = os.path.join(d, "index.html")
    with open(path, "w") as f:
        f.write("version one")
    with Server(plugins=["echo"], server={"web_root": d}) as srv:
        port = srv.ws_port
        a = request(port, "/")
        t.eq(a.body, b"version one", "the first version")
        with open(path, "w") as f:
            f.write("version two")
        t.eq(request(port, "/").body, b"version one",
             "files are read once: a change waits for SIGHUP")
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        srv.wait_log(r"configuration reloaded", timeout=5, start=mark)
        b = request(port, "/", headers=["If-None-Match: %s" %
                                        a.headers["etag"]])
        t.eq((b.status, b.body), (200, b"version two"),
             "after SIGHUP the new file, with a new ETag")
        os.rename(d, d + ".gone")
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        m = srv.wait_log(r"reload failed: .*web_root", timeout=5, start=mark)
        t.ok(m is not None, "a web_root gone at SIGHUP fails the reload")
        t.eq(request(port, "/").body, b"version two",
             "and the running files are kept")


def case_http_limits(t):
    """Web connections are bounded on their own: max_clients of them and
    max_clients_per_ip from one address get 503 past that, and do not
    take the sessions' places."""
    with Server(plugins=["echo"], server={"max_clients_per_ip": 3}) as srv:
        port = srv.ws_port
        held = [HttpConn(port) for _ in range(3)]
        for h in held:          # each is accepted once it is answered
            h.send(b"GET /favicon.svg HTTP/1.1\r\nHost: x\r\n\r\n")
            h.read()
        r, closed = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        t.eq((r and r.status, closed), (503, True),
             "a fourth web connection from the address: 503")
        with srv.client("tcp") as c:
            t.eq(c.sync(), [], "sessions are counted apart: TCP served")
        for h in held:
            h.close()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            r, _ = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            if r and r.status == 200:
                break
            time.sleep(0.05)
        t.eq(r and r.status, 200, "once they close, served again")


def case_wss(t):
    """wss:// with the TLS settings of tls://: the page over https, a
    session over a WebSocket in TLS, the own origin https://."""
    c = certs()
    opts = {"listen": ["tcp://127.0.0.1:0", "wss://127.0.0.1:0"],
            "tls_cert": c.srv_crt, "tls_key": c.srv_key}
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.load_verify_locations(c.ca_crt)
    with Server(plugins=["echo"], server=opts, unix=False) as srv:
        m = srv.wait_log(r"listening on wss://127\.0\.0\.1:(\d+)", 5)
        port = int(m.group(1))
        srv.wss_port = port
        r = request(port, "/", ctx=ctx)
        t.eq((r.status, r.body), (200, file_bytes("index.html")),
             "GET / over https")
        cl = srv.client("wss", ctx=ctx)
        sent = cl.send_message(b"over wss")
        t.eq(cl.recv_frame().raw, sent, "a session over wss echoes")
        own = "https://localhost:%d" % port
        t.eq(origin_status(port, own, host="localhost:%d" % port, ctx=ctx),
             101, "wss: https://localhost:PORT is the own origin")
        t.eq(origin_status(port, "http://localhost:%d" % port,
                           host="localhost:%d" % port, ctx=ctx), 403,
             "wss: http:// is another origin")
        # a client that does not speak TLS
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        try:
            data = s.recv(100)
        except ConnectionError:
            data = b""
        s.close()
        t.ok(b"HTTP/1.1 200" not in data, "plain HTTP on wss:// gets no page")
        m = srv.wait_log(r"http: TLS handshake failed: .* peer=127\.0\.0\.1",
                         timeout=3)
        t.ok(m is not None, "the failed handshake is logged", srv.log())
        t.eq(cl.sync(), [], "the wss session is unaffected")
        cl.close()


def case_sha1_accept(t):
    """The Sec-WebSocket-Accept of RFC 6455's own example."""
    t.eq(acws.accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "the test library's accept key")
    with Server(plugins=["echo"]) as srv:
        c = HttpConn(srv.ws_port)
        c.send(acws.request_head("127.0.0.1:%d" % srv.ws_port,
                                 key="dGhlIHNhbXBsZSBub25jZQ=="))
        r = c.read()
        c.close()
        t.eq((r.status, r.headers.get("sec-websocket-accept"),
              r.headers.get("upgrade"), r.headers.get("connection")),
             (101, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "websocket", "Upgrade"),
             "the server's answer to the RFC's example key")


if __name__ == "__main__":
    main([case_files, case_other_types, case_head_and_304,
          case_not_found_and_methods, case_escapes, case_bounds,
          case_upgrade_checks, case_origins, case_config, case_reload,
          case_http_limits, case_wss, case_sha1_accept])
