"""WebSocket (RFC 6455) for the tests: framing both ways, a client, a socket.

Test-only, standard library only, written from RFC 6455 alone; shared by
the test web server (tests/web/wsserver.py: the server end) and the
suites that speak to asyncchatd's ws:// and wss:// listeners (the client
end).

    head, rest = handshake(sock, "127.0.0.1:8080", origin=None)
    ws = WsSocket(sock, rest)       # a socket whose bytes travel in binary
    ws.sendall(frame_bytes)         # messages: one message per sendall
    data = ws.recv(65536)           # payloads of binary messages; b"" at
                                    # a close (ws.close_code says which)
    raw = frame(OP_PING, b"x", mask=True, rsv=0, fin=True, length=None)

frame() writes whatever a test asks for (unmasked, reserved bits, an
opcode the RFC does not define, a length not in its shortest form), so
that a test can play a hostile client; read_frame()/FrameParser read
frames back, strictly.  acproto.Client wraps a WsSocket like any socket
(acproto.Client.ws), so every protocol case can run over a WebSocket.
"""

import base64
import hashlib
import os
import select
import socket
import ssl
import struct

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

MAX_HEAD = 65536


class WsClosed(ConnectionError):
    """The WebSocket ended: a close frame, EOF, or a breach of the RFC."""


class HandshakeError(Exception):
    """The server did not answer the upgrade with 101; status and head
    say what it answered."""

    def __init__(self, status, head):
        Exception.__init__(self, "upgrade refused: %s" % status)
        self.status = status
        self.head = head


def accept_key(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def new_key():
    """A fresh Sec-WebSocket-Key: 16 random bytes in base64."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None,
          mask_key=None):
    """One frame's bytes.  mask: a client's frames are masked, a server's
    not; rsv: the three reserved bits; length: force the length form
    (7, 16 or 64 bits) whatever the payload's size."""
    head = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0xF)])
    n = len(payload)
    bit = 0x80 if mask else 0
    form = length or (7 if n < 126 else 16 if n < 65536 else 64)
    if form == 7:
        head += bytes([bit | n])
    elif form == 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = mask_key or os.urandom(4)
    return head + key + mask_bytes(payload, key)


def mask_bytes(data, key):
    """data XOR the 4-byte key repeated (masking and unmasking alike)."""
    # one big-int operation, not a loop over the bytes
    if not data:
        return b""
    reps = (key * (len(data) // 4 + 1))[:len(data)]
    x = int.from_bytes(data, "big") ^ int.from_bytes(reps, "big")
    return x.to_bytes(len(data), "big")


def close_payload(code, reason=b""):
    """A close frame's payload: the code, then the reason."""
    return struct.pack("!H", code) + reason


class FrameParser:
    """Frames out of a byte stream: feed() bytes, next() a whole frame as
    (fin, rsv, opcode, masked, payload) or None.  Strict: a server's
    frames must not be masked (want_mask=False), a client's must."""

    def __init__(self, want_mask=False, max_payload=64 * 1024 * 1024):
        self.buf = bytearray()
        self.want_mask = want_mask
        self.max_payload = max_payload

    def feed(self, data):
        self.buf += data

    def next(self):
        b = self.buf
        if len(b) < 2:
            return None
        fin, rsv, opcode = b[0] >> 7, (b[0] >> 4) & 7, b[0] & 0xF
        masked, n, i = b[1] >> 7, b[1] & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, i = struct.unpack("!H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, i = struct.unpack("!Q", b[2:10])[0], 10
        if bool(masked) != self.want_mask:
            raise WsClosed("a %s frame" % ("masked" if masked else
                                          "unmasked"))
        if n > self.max_payload:
            raise WsClosed("a frame of %d bytes" % n)
        key = b""
        if masked:
            if len(b) < i + 4:
                return None
            key, i = bytes(b[i:i + 4]), i + 4
        if len(b) < i + n:
            return None
        payload = bytes(b[i:i + n])
        del b[:i + n]
        if masked:
            payload = mask_bytes(payload, key)
        return bool(fin), rsv, opcode, bool(masked), payload


def _read_head(sock, limit=MAX_HEAD):
    """Read an HTTP answer head; return (head bytes, what came after)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise WsClosed("connection closed before the answer's head: %r"
                           % data[:200])
        data += chunk
        if len(data) > limit:
            raise WsClosed("answer head too long")
    end = data.index(b"\r\n\r\n") + 4
    return data[:end], data[end:]


def request_head(host, path="/ws", origin=None, key=None, version="13",
                 extra=()):
    """The bytes of an upgrade request (extra: more header lines)."""
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host,
             "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: %s" % (key or new_key()),
             "Sec-WebSocket-Version: %s" % version]
    if origin is not None:
        lines.append("Origin: %s" % origin)
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def handshake(sock, host, path="/ws", origin=None, extra=()):
    """Send an upgrade request on sock and check the 101 answer.  Returns
    the bytes that followed the answer's head (the first frames).  Raises
    HandshakeError with the status if the server refused."""
    key = new_key()
    sock.sendall(request_head(host, path, origin, key, extra=extra))
    head, rest = _read_head(sock)
    text = head.decode("latin-1")
    status = text.split("\r\n", 1)[0]
    if not status.startswith("HTTP/1.1 101 "):
        raise HandshakeError(status, text)
    headers = {}
    for line in text.split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise WsClosed("bad Sec-WebSocket-Accept: %r" % headers)
    if headers.get("upgrade", "").lower() != "websocket":
        raise WsClosed("no Upgrade: websocket in %r" % headers)
    return rest


class WsSocket:
    """A client's WebSocket over a connected socket, shaped like a socket
    for acproto.Client: sendall() sends one masked binary message, recv()
    returns the payloads of binary messages (in order, as one stream)
    and b"" once the server closed (close_code: its code, or None at a
    bare EOF).  Pings are answered.  Any other kind of frame, or a frame
    the RFC forbids a server to send, raises WsClosed."""

    def __init__(self, sock, rest=b""):
        self.sock = sock
        self.parser = FrameParser(want_mask=False)
        self.parser.feed(rest)
        self.data = bytearray()
        self.close_code = None
        self.close_reason = b""
        self.closed = False             # a close frame arrived
        self.messages = 0               # binary messages received
        self.pings = []                 # pongs received (their payloads)

    # -- socket-like -------------------------------------------------------
    def fileno(self):
        return self.sock.fileno()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def setsockopt(self, *a):
        self.sock.setsockopt(*a)

    def pending(self):
        """Bytes ready without reading the socket (poll cannot see them)."""
        self._parse()
        tls = self.sock.pending() if isinstance(self.sock, ssl.SSLSocket) \
            else 0
        return len(self.data) + tls + (1 if self.closed else 0)

    def sendall(self, data):
        self.sock.sendall(frame(OP_BINARY, bytes(data)))

    def send_frame(self, raw):
        """Send bytes as they are (a frame a test made with frame())."""
        self.sock.sendall(raw)

    def recv(self, n):
        while not self.data and not self.closed:
            self._parse()
            if self.data or self.closed:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                self.closed = True
                break
            self.parser.feed(chunk)
        out = bytes(self.data[:n])
        del self.data[:n]
        return out

    def shutdown(self, how):
        self.sock.shutdown(how)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- frames ------------------------------------------------------------
    def _parse(self):
        while not self.closed:
            f = self.parser.next()
            if f is None:
                return
            fin, rsv, opcode, _, payload = f
            if rsv:
                raise WsClosed("reserved bits from the server")
            if opcode in (OP_BINARY, OP_CONT):
                if not fin:
                    raise WsClosed("a fragmented message from the server")
                self.data += payload
                self.messages += 1
            elif opcode == OP_PING:
                self.sock.sendall(frame(OP_PONG, payload))
            elif opcode == OP_PONG:
                self.pings.append(payload)
            elif opcode == OP_CLOSE:
                self.closed = True
                if len(payload) >= 2:
                    self.close_code = struct.unpack("!H", payload[:2])[0]
                    self.close_reason = payload[2:]
            else:
                raise WsClosed("opcode %d from the server" % opcode)

    def frames(self, timeout=3.0):
        """Every frame the server sends until it closes the TCP
        connection, as (opcode, payload) pairs; WsClosed after timeout."""
        got = []
        self.sock.settimeout(timeout)
        while True:
            f = self.parser.next()
            if f is not None:
                got.append((f[2], f[4]))
                continue
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise WsClosed("still open after %.1f s: %r" % (timeout,
                                                               got))
            except ConnectionError:
                return got
            if not chunk:
                return got
            self.parser.feed(chunk)


def connect(host, port, path="/ws", origin=None, ctx=None,
            server_hostname="localhost", timeout=5.0, host_header=None):
    """Open a TCP connection (TLS with ctx), upgrade it; a WsSocket."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ctx is not None:
            s = ctx.wrap_socket(s, server_hostname=server_hostname)
        if host_header is None:
            host_header = ("[%s]:%d" if ":" in host else "%s:%d") % (host,
                                                                    port)
        rest = handshake(s, host_header, path, origin)
    except Exception:
        s.close()
        raise
    return WsSocket(s, rest)


def wait_readable(sock, timeout):
    """True if sock has bytes (or EOF) within timeout."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    return bool(select.select([sock], [], [], timeout)[0])
