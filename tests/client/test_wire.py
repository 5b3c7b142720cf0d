#!/usr/bin/env python3
"""The client's frame decoding, against scripted servers: frames split into
single bytes, many frames in one segment, relayed frames carrying another
session's id (PROTOCOL.md rule 7), a verified frame of unknown type
(reported, session kept), a bad magic (fatal), frames that fail their HMAC
or CRC check before and after the handshake (nothing sent in answer, fatal),
an `error` frame and a `disconnect` with a reason.
TAP on stdout."""

import os
import socket
import threading
import time
import uuid

import acproto
from harness import CLIENT, main, mkdtemp
from procs import run

KEY = b"default-key"
TEXT = acproto.TEXT_UTF8
PROTOCOL_FAILURE = 3     # asyncchat(1), EXIT STATUS


class Scripted:
    """A one-connection TCP server running script(self) in a thread."""

    def __init__(self, script):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.port = self.lsock.getsockname()[1]
        self.script = script
        self.peer = None        # the accepted connection, as a Client
        self.sid = str(uuid.uuid4())
        self.got = []           # (header, content) the client sent
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.lsock.settimeout(10)
            self.conn, _ = self.lsock.accept()
            self.conn.settimeout(10)
            self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.peer = acproto.Client(self.conn, KEY, "scripted")
            self.script(self)
        except Exception as e:      # reported by the test
            self.error = e
        finally:
            try:
                self.conn.close()
            except Exception:
                pass
            self.lsock.close()

    def recv(self):
        """The next frame from the client as (header, content), or None
        at EOF."""
        try:
            f = self.peer.recv_frame(10)
        except acproto.Closed:
            return None
        self.got.append((f.header, f.content))
        return f.header, f.content

    def frame(self, mtype, content, sid=None, ctype=TEXT, key=KEY):
        return acproto.encode(mtype, content,
                              self.sid if sid is None else sid, ctype, key)

    def dribble(self, data):
        for i in range(len(data)):
            self.conn.sendall(data[i:i + 1])
            time.sleep(0.0005)

    def handshake(self, split=False):
        init = self.frame("session_init", "Session established",
                          ctype="application/octet-stream")
        if split:
            self.dribble(init)
        else:
            self.conn.sendall(init)
        h, c = self.recv()
        assert h["type"] == "session_ack" and h["session_id"] == self.sid, h

    def serve(self, reply):
        """Answer every frame with reply(header, content) until disconnect."""
        while True:
            r = self.recv()
            if r is None or r[0]["type"] == "disconnect":
                return
            out = reply(*r)
            if out:
                self.conn.sendall(out)

    def done(self):
        self.thread.join(15)


def client(srv, lines, *opts, stdin=None):
    path = os.path.join(mkdtemp("acc."), "in.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return run([CLIENT] + list(opts) + ["tcp", "file", path, "127.0.0.1",
                                        str(srv.port)], timeout=30)


def texts(out):
    return [l.split("] ", 1)[1] for l in out.splitlines() if "] " in l]


def case_segmentation(t):
    other = str(uuid.uuid4())

    def script(s):
        s.handshake(split=True)

        def reply(h, c):
            if h["type"] == "heartbeat":
                pong = s.frame("heartbeat", "pong")
                s.dribble(pong)
                return None
            text = c.decode()
            # Three frames in one segment; the first relayed from another
            # session, the last split across the next segment.
            a = s.frame("message", "relay " + text, sid=other)
            b = s.frame("message", "echo " + text)
            cc = s.frame("message", "tail " + text)
            s.conn.sendall(a + b + cc[:10])
            time.sleep(0.01)
            s.conn.sendall(cc[10:])
            return None
        s.serve(reply)

    srv = Scripted(script)
    lines = ["one", "twö", "three"]
    rc, out, err = client(srv, lines, "--reply-timeout", "3")
    srv.done()
    want = []
    for l in lines:
        want += ["relay " + l, "echo " + l, "tail " + l]
    t.ok(srv.error is None, "segmentation: server script ran", srv.error)
    t.ok(rc == 0 and texts(out) == want, "segmentation: byte-by-byte "
         "session_init, three frames per segment, split frames", out + err)
    tags = [l.split("] ")[0][-8:] for l in out.splitlines()]
    t.ok(tags[0::3] == [other[:8]] * 3 and tags[1::3] == [srv.sid[:8]] * 3,
         "segmentation: another session's id is accepted and shown as the "
         "sender (rule 7)", out)
    sent = [c.decode() for h, c in srv.got if h["type"] == "message"]
    t.ok(sent == lines and all(h["session_id"] == srv.sid
                               for h, c in srv.got),
         "segmentation: the client sent every line with its own session id",
         repr(srv.got))


def case_bad_frames(t):
    def script(s):
        s.handshake()

        def reply(h, c):
            if h["type"] == "heartbeat":
                return s.frame("heartbeat", "pong")
            text = c.decode()
            if text == "unknown type":
                # Signed with the key, so verified, but of no known type.
                return (s.frame("telepathy", "?") +
                        s.frame("message", "after the unknown one"))
            if text == "error":
                return s.frame("error", "bad_header: something was wrong")
            return s.frame("message", "ok " + text)
        s.serve(reply)

    srv = Scripted(script)
    rc, out, err = client(srv, ["first", "unknown type", "error", "last"])
    srv.done()
    t.ok(texts(out) == ["ok first", "after the unknown one", "ok last"],
         "bad frames: a verified frame of unknown type is dropped, the "
         "session goes on", out + err)
    t.ok("bad frame from server: bad_header" in err and
         "server error: bad_header: something was wrong" in err,
         "bad frames: the bad header and the server error are shown", err)
    t.ok(rc == 1, "bad frames: exit status 1 (%d)" % rc)


def case_escaped_output(t):
    """File mode's plain output is for people too: a relayed message with
    CR, LF, ESC or invalid UTF-8 stays on its own line, escaped; --json
    keeps the exact text (JSON-escaped) or gives base64."""
    forged = str(uuid.uuid4())
    hostile = b"ok\r[12:00:00 deadbeef] forged\nline2 \x1b[2J \xff \xc2\x9b"

    def script(s):
        s.handshake()

        def reply(h, c):
            if h["type"] == "heartbeat":
                return s.frame("heartbeat", "pong")
            return acproto.encode("message", hostile, forged, TEXT, KEY)
        s.serve(reply)

    srv = Scripted(script)
    rc, out, err = client(srv, ["go"])
    srv.done()
    lines = out.splitlines()
    t.ok(rc == 0 and len(lines) == 1 and lines[0].endswith(
        " %s] ok\\r[12:00:00 deadbeef] forged\\nline2 \\x1b[2J \\xff "
        "\\u009b" % forged[:8]),
         "file mode: a hostile message is one escaped line", repr(out + err))
    srv = Scripted(script)
    rc, out, err = client(srv, ["go"], "--json")
    srv.done()
    import json
    objs = [json.loads(l) for l in out.splitlines()]
    t.ok(rc == 0 and len(objs) == 1 and "content_base64" in objs[0] and
         objs[0]["content_base64"] and "\x1b" not in out,
         "--json: content that is not valid UTF-8 text comes as base64",
         repr(out + err))


def case_bad_magic(t):
    def script(s):
        s.handshake()
        s.recv()        # the ping
        s.conn.sendall(b"GARBAGE!" + b"\0" * 100)
        time.sleep(1)

    srv = Scripted(script)
    rc, out, err = client(srv, ["x"])
    srv.done()
    t.ok(rc == PROTOCOL_FAILURE and "bad_magic" in err and
         "protocol error" in err,
         "bad magic: the connection ends with a protocol error (%d)" % rc,
         err)


def corrupt_crc(frame):
    """The frame with its header CRC off by one (check 4 fails)."""
    b = bytearray(frame)
    b[19] ^= 1
    return bytes(b)


def silent_after(s, frames, split=False):
    """Send frames, then read until the client closes: return every byte
    it sent in answer (there must be none) and whether it did close."""
    data = b"".join(frames)
    if split:
        s.dribble(data)
    else:
        s.conn.sendall(data)
    # Whatever the client sent that the scripted side has not read yet.
    got = b"".join(f.raw for f in s.peer.pushback) + bytes(s.peer.dec.buf)
    s.peer.pushback = []
    s.peer.dec.buf = bytearray()
    while True:
        try:
            chunk = s.conn.recv(65536)
        except socket.timeout:
            return got, False
        if not chunk:
            return got, True
        got += chunk


def case_unverified_handshake(t):
    """A peer without the key (a squatted socket, a typo'd host) sends a
    session_init signed with another key, or with a bad CRC, or an
    unverified error frame: the client sends nothing back (in particular
    no signed session_ack for the peer's session id: that would be a
    signing oracle) and exits with the protocol-failure status."""
    cases = [
        ("a session_init with a bad HMAC",
         lambda s: [s.frame("session_init", "Session established",
                            key=b"not-the-key")], "hmac"),
        ("a session_init with a bad CRC",
         lambda s: [corrupt_crc(s.frame("session_init",
                                        "Session established"))],
         "header_crc"),
        ("an error frame with a bad HMAC",
         lambda s: [s.frame("error", "hmac: please answer",
                            key=b"not-the-key")], "hmac"),
        ("a bad session_init, then a good one",
         lambda s: [s.frame("session_init", "Session established",
                            key=b"not-the-key"),
                    s.frame("session_init", "Session established")],
         "hmac"),
    ]
    for name, frames, token in cases:
        result = {}

        def script(s, frames=frames):
            result["got"], result["closed"] = silent_after(s, frames(s))

        srv = Scripted(script)
        rc, out, err = client(srv, ["never sent"], "--reply-timeout", "10")
        srv.done()
        t.ok(srv.error is None and result.get("closed"),
             "%s: the client closes the connection" % name,
             "%r %r" % (srv.error, result))
        t.ok(result.get("got") == b"",
             "%s: the client sends nothing in answer" % name,
             repr(result.get("got")))
        t.ok(rc == PROTOCOL_FAILURE and token in err and out == "",
             "%s: %s reported, exit status %d (%d)"
             % (name, token, PROTOCOL_FAILURE, rc), err)


def case_unverified_after_handshake(t):
    """After the handshake, a frame that fails its HMAC or CRC check (an
    injected one, on plain TCP) ends the session: the client reports it,
    sends nothing in answer (not even its next line) and exits with the
    protocol-failure status."""
    cases = [
        ("a forged pong", lambda s: [s.frame("heartbeat", "pong",
                                             key=b"not-the-key")], "hmac"),
        ("a forged message from another session",
         lambda s: [s.frame("message", "I am someone else",
                            sid=str(uuid.uuid4()), key=b"not-the-key")],
         "hmac"),
        ("a message with a bad CRC",
         lambda s: [corrupt_crc(s.frame("message", "x"))], "header_crc"),
        ("a forged session_init",
         lambda s: [s.frame("session_init", "Session established",
                            sid=str(uuid.uuid4()), key=b"not-the-key")],
         "hmac"),
    ]
    for name, frames, token in cases:
        result = {}

        def script(s, frames=frames):
            s.handshake()
            h, c = s.recv()     # the first frame in flight: a ping
            assert h["type"] == "heartbeat", h
            result["got"], result["closed"] = silent_after(s, frames(s),
                                                           split=True)

        srv = Scripted(script)
        rc, out, err = client(srv, ["never sent"], "--reply-timeout", "10")
        srv.done()
        t.ok(srv.error is None and result.get("closed") and
             result.get("got") == b"",
             "after the handshake, %s: the client closes and sends "
             "nothing in answer" % name,
             "%r %r" % (srv.error, result))
        t.ok(rc == PROTOCOL_FAILURE and token in err,
             "after the handshake, %s: %s reported, exit status %d (%d)"
             % (name, token, PROTOCOL_FAILURE, rc), err)


def case_server_disconnect(t):
    def script(s):
        s.handshake()
        s.recv()        # the ping
        s.conn.sendall(s.frame(
            "disconnect", '{"message": "Disconnecting", "reason": '
            '"Going away"}', ctype="application/json"))
        time.sleep(0.5)

    srv = Scripted(script)
    rc, out, err = client(srv, ["x"])
    srv.done()
    t.ok(rc != 0 and "server disconnected: Going away" in err,
         "server disconnect: its reason is shown", err)


def case_no_session_init(t):
    def script(s):
        s.conn.sendall(s.frame("message", "hello?"))
        time.sleep(1)

    srv = Scripted(script)
    rc, out, err = client(srv, ["x"])
    srv.done()
    t.ok(rc == PROTOCOL_FAILURE and
         "handshake failed: expected session_init" in err,
         "handshake: another frame first is a protocol failure (%d)" % rc,
         err)


def case_close_in_handshake(t):
    def script(s):
        pass        # accept and close

    srv = Scripted(script)
    rc, out, err = client(srv, ["x"])
    srv.done()
    t.ok(rc != 0 and "handshake failed" in err,
         "handshake: a server that closes at once", err)


if __name__ == "__main__":
    main([case_segmentation, case_bad_frames, case_bad_magic,
          case_escaped_output, case_unverified_handshake,
          case_unverified_after_handshake,
          case_server_disconnect, case_no_session_init,
          case_close_in_handshake])
