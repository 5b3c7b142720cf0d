#!/usr/bin/env python3
"""asyncchatd under valgrind memcheck through one scripted run (issue 6).

The server (echo and broadcast plugins, a 2-second handshake timeout)
runs under `valgrind --leak-check=full --errors-for-leak-kinds=definite,
indirect --error-exitcode=1`; clients connect over TCP, unix and a
WebSocket (ws://), chat, send every invalid vector of frames.json, let a
session time out in its handshake, fetch the page's files, send bad HTTP
and bad WebSocket frames, and the server is stopped by SIGTERM with
clients connected (one of them over a WebSocket).
The run passes only if the server exits 0 and valgrind's summary shows 0
errors and 0 bytes definitely and indirectly lost.

Not part of `make check` (valgrind must be installed, and the run is
slow on a loaded machine): `make check-valgrind`.  Set VALGRIND to use
another valgrind binary.
"""

import json
import os
import re
import signal
import time

import socket

import acproto
import acws
import harness
from harness import VECTORS, Server, main

# valgrind slows the server down some 20-50 times: every wait is longer.
VG_START_TIMEOUT = 90.0
VG_STOP_TIMEOUT = 60.0
VG_WAIT = 20.0
HANDSHAKE_TIMEOUT = 2


class ValgrindServer(Server):
    """A harness Server started through libtool under valgrind."""

    start_timeout = VG_START_TIMEOUT

    def command(self, args):
        self.vglog = os.path.join(self.dir, "valgrind.log")
        libtool = os.path.join(harness.BUILDDIR, "libtool")
        return [libtool, "--mode=execute",
                os.environ.get("VALGRIND", "valgrind"),
                "--leak-check=full", "--show-leak-kinds=definite,indirect",
                "--errors-for-leak-kinds=definite,indirect",
                "--error-exitcode=1", "--track-fds=no",
                "--log-file=" + self.vglog] + Server.command(self, args)

    def vg_text(self):
        try:
            with open(self.vglog, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def lost_bytes(text, kind):
    """Bytes valgrind reports as `kind` lost (0 if all blocks were freed)."""
    m = re.search(r"%s lost: ([\d,]+) bytes" % kind, text)
    if m:
        return int(m.group(1).replace(",", ""))
    if "All heap blocks were freed" in text:
        return 0
    return None


def case_valgrind(t):
    with open(VECTORS) as f:
        vectors = json.load(f)
    srv = ValgrindServer(plugins=["echo", "broadcast"],
                         server={"handshake_timeout": HANDSHAKE_TIMEOUT},
                         start=False)
    t0 = time.monotonic()
    srv.start()
    t.ok(True, "server ready under valgrind (%.1f s)" % (time.monotonic() - t0))

    # chat: a and b over both transports; echo to the sender, broadcast
    # to the other
    a = srv.client("tcp", name="a", timeout=VG_WAIT)
    b = srv.client("unix", name="b", timeout=VG_WAIT)
    for i in range(20):
        sent = a.send_message(b"hello %d" % i, content_type=acproto.TEXT_UTF8)
        got_a = a.recv_frame(VG_WAIT)
        got_b = b.recv_frame(VG_WAIT)
        if got_a.raw != sent or got_b.raw != sent:
            break
    t.eq((got_a.raw, got_b.raw), (sent, sent),
         "chat: 20 messages echoed to a and broadcast to b")
    sent = b.send("chunk", b"x" * 100000)
    t.eq(b.recv_frame(VG_WAIT).raw, sent, "chat: a 100 kB chunk echoed")
    t.eq(a.recv_frame(VG_WAIT).raw, sent, "chat: a 100 kB chunk broadcast")

    # every invalid vector on a connection of its own
    answered = 0
    for v in vectors["invalid"]:
        c = srv.client("tcp", name=v["name"], timeout=VG_WAIT)
        try:
            c.send_raw(bytes.fromhex(v["frame_hex"]))
            try:
                e = c.recv_frame(VG_WAIT)
                if e.type == "error" and e.header.get("error") == v["error"]:
                    answered += 1
                else:
                    t.diag("%s: got %r" % (v["name"], e))
            except (acproto.Closed, acproto.Timeout) as ex:
                t.diag("%s: %s" % (v["name"], ex))
        finally:
            c.close()
    t.eq(answered, len(vectors["invalid"]),
         "every invalid vector answered with its error")

    # a session that never acknowledges is closed by the handshake timeout
    c = srv.client("unix", handshake=False, name="silent", timeout=VG_WAIT)
    c.handshake(ack=False, timeout=VG_WAIT)
    t0 = time.monotonic()
    try:
        frames = c.recv_until_closed(HANDSHAKE_TIMEOUT + VG_WAIT)
    except acproto.Timeout:
        frames = None
    reason = None
    for f in frames or []:
        if f.type == "disconnect":
            reason = f.json().get("reason")
    t.eq(reason, "Handshake timeout",
         "silent session closed by the handshake timeout (%.1f s)"
         % (time.monotonic() - t0), repr(frames))
    c.close()

    # a connection that vanishes mid-frame
    c = srv.client("tcp", name="vanish", timeout=VG_WAIT)
    c.send_raw(c.frame("message", b"never finished")[:80])
    c.close()
    t.ok(b.sync(VG_WAIT) == [] and a.sync(VG_WAIT) == [],
         "chat clients still served")

    # the web listener: files (kept alive and closed), bad requests, a
    # WebSocket chatting, bad WebSocket frames, one left open at SIGTERM
    answers = []
    for req in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                b"HEAD /js/main.js HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET /%2e%2e/x HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 70 + b"\r\n",
                b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", srv.ws_port),
                                     timeout=VG_WAIT)
        s.sendall(req)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        answers += [int(x) for x in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]
    t.eq(answers, [200, 200, 404, 400, 431, 400],
         "web: files, 404, and bad requests answered")
    w = srv.client("ws", name="w", timeout=VG_WAIT)
    sent = w.send_message(b"over a websocket")
    t.eq((w.recv_frame(VG_WAIT).raw, a.recv_frame(VG_WAIT).raw),
         (sent, sent), "web: a WebSocket session echoed and broadcast")
    b.recv_frame(VG_WAIT)
    for bad in (acws.frame(acws.OP_TEXT, b"text"),
                acws.frame(acws.OP_BINARY, b"x", mask=False),
                acws.frame(acws.OP_PING, b"p" * 126)):
        c = srv.client("ws", name="badws", timeout=VG_WAIT)
        c.sock.send_frame(c.frame("message", b"first") + bad)
        try:
            c.sock.frames(VG_WAIT)
        except acws.WsClosed as ex:
            t.diag("bad frame: %s" % ex)
        c.close()
    for c in (a, b, w):
        while c.expect_silence(0.5):
            pass
    t.ok(w.sync(VG_WAIT) == [], "web: the WebSocket session still served")

    # SIGTERM with a and b connected
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    rc = srv.wait_exit(VG_STOP_TIMEOUT)
    if rc is None:
        srv.kill()
    a.close()
    b.close()
    w.close()
    t.eq(rc, 0, "SIGTERM: exit status 0 under valgrind (%.1f s)"
         % (time.monotonic() - t0), srv.stderr_tail)

    text = srv.vg_text()
    m = re.search(r"ERROR SUMMARY: ([\d,]+) errors", text)
    errors = int(m.group(1).replace(",", "")) if m else None
    summary = [line for line in text.splitlines()
               if re.search(r"(lost|reachable|suppressed|ERROR SUMMARY|"
                            r"in use at exit|total heap usage):", line)]
    for line in summary:
        t.diag(re.sub(r"^==\d+== ", "valgrind: ", line))
    tail = lambda: text[-6000:]  # noqa: E731
    t.eq(errors, 0, "valgrind: 0 errors", tail)
    t.eq(lost_bytes(text, "definitely"), 0, "valgrind: 0 bytes definitely lost",
         tail)
    t.eq(lost_bytes(text, "indirectly"), 0, "valgrind: 0 bytes indirectly lost",
         tail)


if __name__ == "__main__":
    main([case_valgrind])
