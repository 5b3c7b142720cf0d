#!/usr/bin/env python3
"""The client library's reconnecting (tests/client/reconnect.c): attempts
against a port where nothing listens yet back off exponentially up to the
cap; after a lost connection a new session is made; a local disconnect
sends `disconnect` and stops. TAP on stdout."""

import os
import socket
import subprocess
import time
import uuid

import acproto
from harness import BUILDDIR, main

KEY = b"default-key"
PROG = os.path.join(BUILDDIR, "tests", "client", "reconnect")


def recv_frame(peer):
    """The next frame from the client, or None at EOF."""
    try:
        return peer.recv_frame(5)
    except acproto.Closed:
        return None


def handshake(conn, sid):
    """Play the server's side of the handshake on an accepted conn."""
    peer = acproto.Client(conn, KEY, "server")
    peer.session_id = sid
    peer.send("session_init", "Session established")
    f = recv_frame(peer)
    assert f.type == "session_ack" and f.session_id == sid, f
    return peer


def case_reconnect(t):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    wrapper = os.environ.get("AC_TEST_WRAPPER", "").split()
    p = subprocess.Popen(wrapper + [PROG, "127.0.0.1", str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.2)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(2)
    ls.settimeout(5)
    sids = [str(uuid.uuid4()), str(uuid.uuid4())]
    disconnect = None
    try:
        c1, _ = ls.accept()
        c1.settimeout(5)
        handshake(c1, sids[0]).close()  # the connection is lost
        c2, _ = ls.accept()
        c2.settimeout(5)
        peer = handshake(c2, sids[1])
        while True:
            f = recv_frame(peer)
            if f is None or f.type == "disconnect":
                disconnect = f
                break
        peer.close()
    finally:
        ls.close()
    out, err = p.communicate(timeout=20)
    events = [l.split(" ", 2) for l in out.decode().splitlines()]
    fails = [int(e[0]) for e in events if e[1] == "connect"]
    gaps = [b - a for a, b in zip(fails, fails[1:])]
    t.ok(p.returncode == 0, "reconnect: the program connected twice",
         out.decode() + err.decode())
    t.ok(len(fails) >= 3, "reconnect: retried while nothing listened (%d)"
         % len(fails), out.decode())
    # A loaded machine only makes the delays longer, so check each against
    # its floor (100, 200, 400, 400 ms...) and the cap loosely.
    floors = [min(100 << i, 400) - 15 for i in range(len(gaps))]
    t.ok(len(gaps) >= 2 and all(g >= f for g, f in zip(gaps, floors))
         and max(gaps) < 400 + 1500,
         "reconnect: delays double and stay under the cap %r" % gaps)
    kinds = [e[1] for e in events if e[1] != "connect"]
    t.ok(kinds == ["connected", "lost", "connected", "local"],
         "reconnect: connected, lost, connected again, local end",
         out.decode())
    t.ok([e[2] for e in events if e[1] == "connected"] == sids,
         "reconnect: each connection reports its own session id",
         out.decode())
    t.ok(disconnect is not None and disconnect.session_id == sids[1]
         and b"test done" in disconnect.content,
         "reconnect: disconnect sent with the new session id and reason",
         repr(disconnect))


if __name__ == "__main__":
    main([case_reconnect])
