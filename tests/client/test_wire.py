#!/usr/bin/env python3
"""The client's frame decoding, against scripted servers: frames split into
single bytes, many frames in one segment, relayed frames carrying another
session's id (PROTOCOL.md rule 7), a bad HMAC (reported, session kept), a
bad magic (fatal), an `error` frame and a `disconnect` with a reason.
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
            if text == "bad hmac":
                return (s.frame("message", "forged", key=b"other-key") +
                        s.frame("message", "after the forged one"))
            if text == "error":
                return s.frame("error", "bad_header: something was wrong")
            return s.frame("message", "ok " + text)
        s.serve(reply)

    srv = Scripted(script)
    rc, out, err = client(srv, ["first", "bad hmac", "error", "last"])
    srv.done()
    t.ok(texts(out) == ["ok first", "after the forged one", "ok last"],
         "bad frames: a forged frame is dropped, the session goes on",
         out + err)
    t.ok("bad frame from server: hmac" in err and
         "server error: bad_header: something was wrong" in err,
         "bad frames: the hmac failure and the server error are shown", err)
    t.ok(rc != 0, "bad frames: exit status is not 0 (%d)" % rc)


def case_bad_magic(t):
    def script(s):
        s.handshake()
        s.recv()        # the ping
        s.conn.sendall(b"GARBAGE!" + b"\0" * 100)
        time.sleep(1)

    srv = Scripted(script)
    rc, out, err = client(srv, ["x"])
    srv.done()
    t.ok(rc != 0 and "bad_magic" in err and "protocol error" in err,
         "bad magic: the connection ends with a protocol error", err)


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
    t.ok(rc != 0 and "handshake failed: expected session_init" in err,
         "handshake: another frame first is a handshake failure", err)


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
          case_server_disconnect, case_no_session_init,
          case_close_in_handshake])
