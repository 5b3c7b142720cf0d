"""A test-only HTTP server on 127.0.0.1: static files and a WebSocket.

Serves the web client's files the way asyncchatd will (web/ at "/"), the
in-browser checks at /__test__/ and the vectors at /__data__/, and hands
each RFC 6455 upgrade of GET /ws to an application callback with a WsConn.
Standard library only; written for the tests from RFC 6455 alone, so it
is small and strict rather than complete (no extensions, no subprotocols).
The framing is tests/lib/acws.py's, which the clients of asyncchatd's own
ws:// listeners use too.

    srv = WebServer({"/": web_dir}, on_websocket=app)   # app(ws, request)
    srv.start(); ... srv.url ... srv.stop()
"""

import http.server
import os
import posixpath
import socket
import struct
import threading
import urllib.parse

from acws import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING,  # noqa: F401
                  OP_PONG, OP_TEXT, WsClosed, accept_key, mask_bytes)
from acws import frame as _frame

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
}

MAX_MESSAGE = 16 * 1024 * 1024


def ws_frame(opcode, payload, fin=True):
    """One unmasked (server-to-client) frame."""
    return _frame(opcode, payload, fin=fin, mask=False)


class WsConn:
    """The server end of one WebSocket: whole messages in, frames out."""

    def __init__(self, sock, rfile):
        self.sock = sock
        self.rfile = rfile              # buffered: may hold bytes already
        self.wlock = threading.Lock()
        self.closed = False
        self.close_code = None

    def _read(self, n):
        data = self.rfile.read(n)
        if data is None or len(data) < n:
            raise WsClosed("EOF")
        return data

    def _frame(self):
        b0, b1 = self._read(2)
        fin, opcode = b0 & 0x80, b0 & 0x0F
        if b0 & 0x70:
            raise WsClosed("reserved bits set")
        if not b1 & 0x80:
            raise WsClosed("unmasked frame from the client")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        if n > MAX_MESSAGE:
            raise WsClosed("frame too large")
        mask = self._read(4)
        return bool(fin), opcode, mask_bytes(self._read(n), mask)

    def recv(self):
        """The next data message as (opcode, bytes); WsClosed at the end.

        Pings are answered and a close is echoed, as RFC 6455 asks."""
        parts, first = [], None
        while True:
            fin, opcode, data = self._frame()
            if opcode == OP_PING:
                self._send(ws_frame(OP_PONG, data))
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                self.close_code = struct.unpack("!H", data[:2])[0] \
                    if len(data) >= 2 else None
                self.close(data[:2] if len(data) >= 2 else b"")
                raise WsClosed("close %r" % self.close_code)
            if opcode == OP_CONT:
                if first is None:
                    raise WsClosed("continuation without a start")
            elif opcode in (OP_TEXT, OP_BINARY):
                if first is not None:
                    raise WsClosed("new message inside a fragmented one")
                first = opcode
            else:
                raise WsClosed("opcode %d" % opcode)
            parts.append(data)
            if fin:
                return first, b"".join(parts)

    def _send(self, data):
        with self.wlock:
            if self.closed:
                raise WsClosed("closed")
            self.sock.sendall(data)

    def send(self, payload):
        """Send one binary message."""
        self._send(ws_frame(OP_BINARY, payload))

    def send_pieces(self, pieces):
        """Send each piece as a binary message of its own."""
        for p in pieces:
            self.send(p)

    def close(self, code_bytes=struct.pack("!H", 1000)):
        """Send a close frame (once) and stop sending."""
        with self.wlock:
            if self.closed:
                return
            try:
                self.sock.sendall(ws_frame(OP_CLOSE, code_bytes))
            except OSError:
                pass
            self.closed = True

    def abort(self):
        """Cut the TCP connection without a close frame, as a crash would."""
        with self.wlock:
            self.closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        self.server.owner.requests.append(fmt % args)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/ws":
            self._websocket()
        else:
            self._static(path)

    def _static(self, path):
        name = self.server.owner.resolve(path)
        if name is None:
            self._error(404)
            return
        with open(name, "rb") as f:
            body = f.read()
        ext = os.path.splitext(name)[1]
        self.send_response(200)
        self.send_header("Content-Type",
                         CONTENT_TYPES.get(ext, "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code):
        body = b"%d\n" % code
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _websocket(self):
        owner = self.server.owner
        h = self.headers
        key = h.get("Sec-WebSocket-Key", "")
        if h.get("Upgrade", "").lower() != "websocket" or \
                "upgrade" not in h.get("Connection", "").lower() or \
                h.get("Sec-WebSocket-Version") != "13" or not key:
            self._error(400)
            return
        if not owner.accepting:
            self._error(503)
            return
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(key))
        self.end_headers()
        self.wfile.flush()
        ws = WsConn(self.connection, self.rfile)
        request = {"origin": h.get("Origin"), "path": self.path}
        try:
            owner.on_websocket(ws, request)
        finally:
            ws.close()
            self.close_connection = True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class WebServer:
    """Static roots by URL prefix plus /ws, on 127.0.0.1 and a free port."""

    def __init__(self, roots, on_websocket):
        # Longest prefix first, so /__test__/ wins over /.
        self.roots = sorted(roots.items(), key=lambda kv: -len(kv[0]))
        self.on_websocket = on_websocket
        self.accepting = True
        self.requests = []
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = None

    def resolve(self, path):
        """The file for a URL path, or None; nothing outside its root."""
        path = urllib.parse.unquote(path)
        if "\0" in path:
            return None
        for prefix, root in self.roots:
            if not path.startswith(prefix):
                continue
            rel = posixpath.normpath(path[len(prefix):] or ".")
            if rel.startswith("..") or rel.startswith("/"):
                return None
            if rel == ".":
                rel = "index.html"
            root = os.path.realpath(root)
            name = os.path.realpath(os.path.join(root, rel))
            if not name.startswith(root + os.sep) or not os.path.isfile(name):
                return None
            return name
        return None

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       name="webserver", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
