"""An independent implementation of the asyncchat wire protocol, version 1.

The one codec and the one blocking client of every Python test suite
(tests/lib/README.md).  Written from PROTOCOL.md alone (it shares no code
with libasyncchat), so a bug in the C codec cannot hide itself by being
present on both sides of a test; tests/lib/test_acproto.py checks it
against the vectors of tests/data/frames.json.  Standard library only.

    frame = encode("message", b"hi", session_id=sid)   # Python json.dumps spelling
    dec = Decoder(); dec.feed(data)
    for item in dec: ...                                # Frame or FrameError
    c = Client.tcp("127.0.0.1", port); sid = c.handshake(); c.ping()

A Client wraps any connected stream socket (TCP, unix, TLS, or one a
scripted server accepted), so a test can play either end.
"""

import hmac as _hmac
import json
import select
import socket
import ssl
import struct
import time
import zlib

MAGIC = bytes.fromhex("89504e470e0b1b0b")
VERSION = 1
FIXED_FORMAT = "!8sHHIIQI32s"
FIXED_SIZE = struct.calcsize(FIXED_FORMAT)
assert FIXED_SIZE == 64

MAX_HEADER_LEN = 65536
MAX_CONTENT_LEN = 10 * 1024 * 1024
DEFAULT_KEY = b"default-key"

TYPES = ("session_init", "session_ack", "heartbeat", "message", "chunk",
         "error", "disconnect")

# PROTOCOL.md "Checks a receiver makes, in this order".
CHECK_ORDER = ("bad_magic", "bad_version", "header_too_large",
               "content_too_large", "header_crc", "content_crc", "hmac",
               "bad_header", "empty_content")
# Errors 1-3 leave the stream unframeable: the connection must be closed.
FATAL_ERRORS = frozenset(CHECK_ORDER[:4])

TEXT_UTF8 = "text/plain; charset=utf-8"
OCTETS = "application/octet-stream"


def _key(key):
    """Return key as bytes (str keys are UTF-8)."""
    if key is None:
        return DEFAULT_KEY
    if isinstance(key, str):
        return key.encode("utf-8")
    return bytes(key)


def header_bytes(header):
    """Spell a header dict as the Python peer does (json.dumps defaults)."""
    return json.dumps(header).encode("utf-8")


def frame_mac(key, header_json, content):
    """The frame's HMAC-SHA256 over header JSON and content."""
    return _hmac.digest(_key(key), header_json + content, "sha256")


def fixed_header(header_json, content_len, content_crc=0, mac=b"\0" * 32,
                 version=VERSION, msg_type=0, magic=MAGIC):
    """The 64-byte fixed header alone, with whatever lengths and checks
    the caller says (to announce a body that is sent later, or never)."""
    return struct.pack(FIXED_FORMAT, magic, version, msg_type,
                       len(header_json), zlib.crc32(header_json),
                       content_len, content_crc, mac)


def encode_raw(header_json, content, key=None, version=VERSION, msg_type=0,
               magic=MAGIC):
    """Build a frame from exact header JSON bytes and content bytes."""
    if isinstance(header_json, str):
        header_json = header_json.encode("utf-8")
    if isinstance(content, str):
        content = content.encode("utf-8")
    fixed = fixed_header(header_json, len(content), zlib.crc32(content),
                         frame_mac(key, header_json, content), version,
                         msg_type, magic)
    return fixed + header_json + content


def encode(type_, content, session_id=None, content_type=OCTETS, key=None,
           extra=None):
    """Build a frame with the header {type, content_type, session_id, ...}."""
    header = {"type": type_, "content_type": content_type,
              "session_id": session_id}
    if extra:
        header.update(extra)
    return encode_raw(header_bytes(header), content, key)


class Frame:
    """One decoded frame (verified unless its Decoder was told not to)."""

    def __init__(self, raw, header_json, content, header=None, msg_type=0):
        self.raw = raw
        self.header_json = header_json
        self.content = content
        self._header = header
        self.msg_type = msg_type

    @property
    def header(self):
        """The header as a dict (parsed when first asked for)."""
        if self._header is None:
            self._header = json.loads(self.header_json.decode("utf-8"))
        return self._header

    @property
    def type(self):
        return self.header.get("type")

    @property
    def session_id(self):
        return self.header.get("session_id")

    @property
    def content_type(self):
        return self.header.get("content_type")

    def text(self):
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content.decode("utf-8"))

    def __repr__(self):
        c = self.content if len(self.content) <= 80 else \
            self.content[:80] + b"...(%d bytes)" % len(self.content)
        return "Frame(%s, %r)" % (self.header_json.decode("utf-8", "replace"), c)


class FrameError(Exception):
    """A frame failed a PROTOCOL.md check; token is the error's name."""

    def __init__(self, token, text=""):
        Exception.__init__(self, "%s: %s" % (token, text) if text else token)
        self.token = token
        self.fatal = token in FATAL_ERRORS


class Decoder:
    """Incremental decoder: feed() any segmentation, iterate for results.

    Iteration yields Frame objects and FrameError objects (not raised) for
    frames that failed checks 4-7, which framing survives.  A fatal error
    (checks 1-3) is yielded once and the decoder then stays dead: the rest
    of the stream cannot be framed.

    verify=False makes every check after the CRCs (HMAC, header JSON,
    type, empty content) the caller's business: for load generators that
    read tens of thousands of frames a second and only count them.
    """

    def __init__(self, key=None, max_header=MAX_HEADER_LEN,
                 max_content=MAX_CONTENT_LEN, verify=True):
        self.key = _key(key)
        self.max_header = max_header
        self.max_content = max_content
        self.verify = verify
        self.buf = bytearray()
        self.dead = None

    def feed(self, data):
        if self.dead is None:
            self.buf += data

    def pending(self):
        """Bytes buffered but not yet a complete frame."""
        return len(self.buf)

    def __iter__(self):
        while True:
            item = self.next()
            if item is None:
                return
            yield item

    def next(self):
        """Return the next Frame or FrameError, or None if more data is needed."""
        if self.dead is not None:
            return None
        if len(self.buf) < FIXED_SIZE:
            return None
        (magic, version, msg_type, hlen, hcrc, clen, ccrc,
         mac) = struct.unpack_from(FIXED_FORMAT, self.buf, 0)
        # Checks 1-3 use the fixed header alone, before waiting for the body.
        err = None
        if magic != MAGIC:
            err = FrameError("bad_magic", "got %s" % magic.hex())
        elif version != VERSION:
            err = FrameError("bad_version", "got %d" % version)
        elif hlen > self.max_header:
            err = FrameError("header_too_large", "%d > %d" % (hlen, self.max_header))
        elif clen > self.max_content:
            err = FrameError("content_too_large", "%d > %d" % (clen, self.max_content))
        if err is not None:
            self.dead = err
            self.buf = bytearray()
            return err
        total = FIXED_SIZE + hlen + clen
        if len(self.buf) < total:
            return None
        raw = bytes(self.buf[:total])
        del self.buf[:total]
        hjson = raw[FIXED_SIZE:FIXED_SIZE + hlen]
        content = raw[FIXED_SIZE + hlen:]
        if zlib.crc32(hjson) != hcrc:
            return FrameError("header_crc")
        if zlib.crc32(content) != ccrc:
            return FrameError("content_crc")
        if not self.verify:
            return Frame(raw, hjson, content, None, msg_type)
        want = _hmac.digest(self.key, hjson + content, "sha256")
        if not _hmac.compare_digest(want, mac):
            return FrameError("hmac")
        try:
            header = json.loads(hjson.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            return FrameError("bad_header", "not JSON: %s" % e)
        if not isinstance(header, dict):
            return FrameError("bad_header", "not an object")
        t = header.get("type")
        if not isinstance(t, str) or t not in TYPES:
            return FrameError("bad_header", "type %r" % (t,))
        if clen == 0:
            return FrameError("empty_content")
        return Frame(raw, hjson, content, header, msg_type)


def decode_one(data, key=None, **limits):
    """Decode exactly one frame from data: return Frame or FrameError."""
    d = Decoder(key, **limits)
    d.feed(data)
    item = d.next()
    if item is None:
        return FrameError("incomplete", "%d bytes" % len(data))
    return item


class Closed(Exception):
    """The peer closed the connection (EOF or reset)."""


class Timeout(Exception):
    """Nothing (enough) arrived within the time given."""


class ProtocolViolation(Exception):
    """The server sent something that is not a valid frame."""


class Client:
    """A small blocking client for tests: every wait has a timeout.

    content_type is what send() and frame() put in the header when not
    told otherwise.
    """

    def __init__(self, sock, key=None, name="client", content_type=OCTETS):
        self.sock = sock
        self.key = _key(key)
        self.name = name
        self.content_type = content_type
        self.dec = Decoder(self.key)
        self.session_id = None
        self.eof = False
        self.pushback = []      # frames read early, returned first

    # -- connecting ------------------------------------------------------
    @classmethod
    def tcp(cls, host, port, key=None, timeout=5.0, name="tcp", rcvbuf=None,
            **kw):
        """Connect over TCP (host is a numeric IPv4 or IPv6 address)."""
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        try:
            s.connect((host, port))
        except OSError:
            s.close()
            raise
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(s, key, name, **kw)

    @classmethod
    def unix(cls, path, key=None, timeout=5.0, name="unix", rcvbuf=None,
             **kw):
        """Connect to a unix socket."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        try:
            s.connect(path)
        except OSError:
            s.close()
            raise
        return cls(s, key, name, **kw)

    @classmethod
    def tls(cls, host, port, ctx, server_hostname="localhost", key=None,
            timeout=5.0, name="tls", **kw):
        """Connect over TCP and TLS (ctx: an ssl.SSLContext)."""
        s = socket.create_connection((host, port), timeout=timeout)
        try:
            ss = ctx.wrap_socket(s, server_hostname=server_hostname)
        except Exception:
            s.close()
            raise
        return cls(ss, key, name, **kw)

    @classmethod
    def ws(cls, host, port, key=None, timeout=5.0, name="ws", ctx=None,
           origin=None, rcvbuf=None, **kw):
        """Connect to a ws:// listener (wss:// with ctx, an
        ssl.SSLContext) and upgrade to a WebSocket at /ws: the protocol's
        bytes then travel in binary messages, one per send (acws.py)."""
        import acws
        s = acws.connect(host, port, origin=origin, ctx=ctx,
                         timeout=timeout)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        return cls(s, key, name, **kw)

    @classmethod
    def connect(cls, addr, **kw):
        """addr is ("tcp", host, port), ("unix", path), ("ws", host, port)
        or ("wss", host, port, ssl_context)."""
        if addr[0] == "unix":
            return cls.unix(addr[1], **kw)
        if addr[0] == "ws":
            return cls.ws(addr[1], addr[2], **kw)
        if addr[0] == "wss":
            return cls.ws(addr[1], addr[2], ctx=addr[3], **kw)
        return cls.tcp(addr[1], addr[2], **kw)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- sending ---------------------------------------------------------
    def send_raw(self, data):
        self.sock.sendall(data)

    def frame(self, type_, content, content_type=None, session_id=Ellipsis,
              extra=None):
        """Encode a frame with this client's key (and session id by default)."""
        if session_id is Ellipsis:
            session_id = self.session_id
        if content_type is None:
            content_type = self.content_type
        return encode(type_, content, session_id, content_type, self.key, extra)

    def send(self, type_, content, content_type=None, session_id=Ellipsis,
             extra=None):
        data = self.frame(type_, content, content_type, session_id, extra)
        self.send_raw(data)
        return data

    def send_message(self, content, content_type=None, **kw):
        return self.send("message", content, content_type=content_type, **kw)

    # -- receiving -------------------------------------------------------
    def _fill(self, deadline):
        """Read once from the socket before deadline; raise Closed/Timeout."""
        if self.eof:
            raise Closed("%s: connection closed" % self.name)
        tls = isinstance(getattr(self.sock, "sock", self.sock), ssl.SSLSocket)
        # TLS: decrypted bytes may wait inside the SSL object, where poll
        # cannot see them; a WebSocket (acws.WsSocket) may hold payload
        # bytes already read.
        pending = getattr(self.sock, "pending", None)
        if pending is None or pending() == 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("%s: timed out" % self.name)
            p = select.poll()
            p.register(self.sock, select.POLLIN)
            if not p.poll(left * 1000):
                raise Timeout("%s: timed out" % self.name)
        gone = (ConnectionError, ssl.SSLError, socket.timeout) if tls \
            else ConnectionError
        try:
            data = self.sock.recv(262144)
        except gone as e:
            self.eof = True
            raise Closed("%s: %s" % (self.name, e))
        if not data:
            self.eof = True
            raise Closed("%s: connection closed by peer" % self.name)
        self.dec.feed(data)

    def recv_frame(self, timeout=3.0):
        """Return the next Frame; raise Timeout, Closed or ProtocolViolation."""
        if self.pushback:
            return self.pushback.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            item = self.dec.next()
            if isinstance(item, Frame):
                return item
            if isinstance(item, FrameError):
                raise ProtocolViolation("%s: peer sent a bad frame: %s"
                                        % (self.name, item))
            self._fill(deadline)

    def recv_type(self, type_, timeout=3.0):
        """Return the next frame, which must be of type_."""
        f = self.recv_frame(timeout)
        if f.type != type_:
            raise ProtocolViolation("%s: expected %s, got %r" % (self.name, type_, f))
        return f

    def recv_until_closed(self, timeout=3.0):
        """Read frames until EOF; return them.  Raise Timeout if still open."""
        deadline = time.monotonic() + timeout
        frames = []
        while True:
            try:
                frames.append(self.recv_frame(max(0.0, deadline - time.monotonic())))
            except Closed:
                return frames

    def expect_silence(self, timeout=0.3):
        """Return frames that arrive within timeout (normally none)."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                got.append(self.recv_frame(max(0.0, deadline - time.monotonic())))
            except Timeout:
                return got

    def is_closed(self, timeout=2.0):
        """True if the peer closes within timeout (frames before EOF are dropped)."""
        try:
            self.recv_until_closed(timeout)
            return True
        except Timeout:
            return False
        except ProtocolViolation:
            return False

    def messages(self, timeout=0.0):
        """Every message and chunk received so far and within timeout, as
        (sender session id, content) pairs; other frames are dropped.
        With timeout 0 only what has already arrived is looked at."""
        return [(f.session_id, f.content) for f in self.expect_silence(timeout)
                if f.type in ("message", "chunk")]

    def collect(self, n, timeout):
        """Wait until n messages or chunks have come (or timeout); return
        them as (sender session id, content) pairs.  Other frames are
        dropped."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            try:
                f = self.recv_frame(max(0.0, deadline - time.monotonic()))
            except Timeout:
                break
            if f.type in ("message", "chunk"):
                got.append((f.session_id, f.content))
        return got

    # -- protocol steps --------------------------------------------------
    def handshake(self, timeout=3.0, ack=True, sync=True):
        """Read session_init, answer session_ack; return the session id.

        With sync, also ping and wait for the pong, so that the server has
        surely processed the ack (and the session is in every broadcast)
        when this returns; frames that came before the pong stay queued.
        """
        f = self.recv_frame(timeout)
        if f.type != "session_init":
            raise ProtocolViolation("%s: expected session_init, got %r" % (self.name, f))
        self.session_id = f.session_id
        self.init_frame = f
        if ack:
            self.send("session_ack", b"Session acknowledged", OCTETS)
            if sync:
                self.pushback.extend(self.sync(timeout))
        return self.session_id

    def ping(self, timeout=3.0):
        """Send a heartbeat ping; return the pong frame (must be next)."""
        self.send("heartbeat", b"ping", OCTETS)
        f = self.recv_frame(timeout)
        if f.type != "heartbeat" or f.content != b"pong":
            raise ProtocolViolation("%s: expected pong, got %r" % (self.name, f))
        return f

    def sync(self, timeout=3.0):
        """Ping and return every frame that arrived before the pong.

        The server handles a session's frames in order, so anything it sent
        to us because of earlier frames is queued before the pong.
        """
        self.send("heartbeat", b"ping", OCTETS)
        before = []
        deadline = time.monotonic() + timeout
        while True:
            f = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if f.type == "heartbeat" and f.content == b"pong":
                return before
            before.append(f)
