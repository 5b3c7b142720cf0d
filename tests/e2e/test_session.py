#!/usr/bin/env python3
"""Session life against a live asyncchatd: handshake, heartbeats, keys,
session ids, client disconnect -- over TCP, Unix, a WebSocket and (if
present) IPv6."""

import os
import re
import time

import acproto
from harness import Server, Skip, ipv6_available, main, transports

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def check_handshake(t, srv, transport):
    c = srv.client(transport, handshake=False)
    with c:
        f = c.recv_frame(3)
        t.eq(f.type, "session_init", "%s: first frame is session_init" % transport)
        t.eq(f.content, b"Session established", "%s: content 'Session established'" % transport)
        sid = f.session_id
        t.ok(isinstance(sid, str) and UUID4.match(sid) is not None,
             "%s: session_id is a v4 UUID in RFC 4122 text form" % transport,
             "session_id %r" % (sid,))
        t.ok(isinstance(f.content_type, str) and f.content_type != "",
             "%s: session_init has a content_type" % transport, repr(f))
        c.session_id = sid
        c.send("session_ack", b"Session acknowledged")
        pong = c.ping()
        t.eq(pong.session_id, sid, "%s: pong carries the recipient's id" % transport)
        t.eq(pong.type, "heartbeat", "%s: pong is a heartbeat frame" % transport)
        # echo plugin: the message comes back byte for byte
        sent = c.send_message(b"hello over " + transport.encode(), acproto.TEXT_UTF8)
        back = c.recv_frame(3)
        t.eq(back.raw, sent, "%s: echo returns the frame byte for byte" % transport)
        return sid


def case_handshake(t):
    with Server(plugins=["echo"]) as srv:
        ids = set()
        for tr in transports():
            ids.add(check_handshake(t, srv, tr))
        t.eq(len(ids), len(transports()), "each session gets a fresh id")


def case_handshake_ipv6(t):
    if not ipv6_available():
        raise Skip("::1 is not available on this machine")
    with Server(plugins=["echo"], tcp6=True, unix=False) as srv:
        check_handshake(t, srv, "tcp6")
        check_handshake(t, srv, "tcp")


def case_many_sessions_unique_ids(t):
    with Server(plugins=["echo"]) as srv:
        trs = transports()
        clients = [srv.client(trs[i % len(trs)]) for i in range(21)]
        ids = [c.session_id for c in clients]
        t.eq(len(set(ids)), 21, "21 concurrent sessions have 21 distinct ids")
        t.ok(all(UUID4.match(i or "") for i in ids), "all are v4 UUIDs", repr(ids))
        for c in clients:
            c.close()


def case_heartbeat_pong(t):
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            with srv.client(tr) as c:
                for i in range(3):
                    p = c.ping()
                t.eq((p.type, p.content, p.session_id),
                     ("heartbeat", b"pong", c.session_id),
                     "%s: ping -> heartbeat 'pong' with own id, three times" % tr)
                t.eq(c.expect_silence(0.2), [], "%s: nothing else after pongs" % tr)


def case_own_key(t):
    # A server with its own key: frames signed with it work, others get an
    # hmac error and the session is kept.
    with Server(plugins=["echo"], key="e2e-not-the-default") as srv:
        for tr in transports():
            with srv.client(tr) as c:
                t.ok(c.init_frame is not None, "%s: handshake with the server's key" % tr)
                sent = c.send_message(b"signed right")
                t.eq(c.recv_frame().raw, sent, "%s: message with the right key echoes" % tr)
                c.send_raw(acproto.encode("message", b"signed wrong", c.session_id,
                                          key="default-key"))
                e = c.recv_frame()
                t.eq((e.type, e.header.get("error")), ("error", "hmac"),
                     "%s: wrong key -> error hmac" % tr, repr(e))
                t.ok(e.content.startswith(b"hmac: "), "%s: error content 'hmac: ...'" % tr,
                     repr(e))
                t.eq(e.content_type, acproto.TEXT_UTF8, "%s: error content_type" % tr)
                t.eq(c.sync(), [], "%s: session kept after hmac error" % tr)


def case_hmac_key_file(t):
    srv = Server(plugins=["echo"], key="from-a-file", start=False)
    keyfile = os.path.join(srv.dir, "key")
    with open(keyfile, "w") as f:
        f.write("from-a-file")
    os.chmod(keyfile, 0o600)
    srv.server_opts["hmac_key_file"] = keyfile
    srv.write_config()
    with srv.start():
        with srv.client("tcp") as c:
            sent = c.send_message(b"key from hmac_key_file")
            t.eq(c.recv_frame().raw, sent, "hmac_key_file key is used")


def case_session_mismatch(t):
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            with srv.client(tr) as c:
                other = "6f1c2a1e-3b7d-4c55-9a0e-2d4b8f1e7c90"
                c.send_message(b"not my id", session_id=other)
                e = c.recv_frame()
                t.eq((e.type, e.header.get("error")), ("error", "session_mismatch"),
                     "%s: foreign session_id -> error session_mismatch" % tr, repr(e))
                t.eq(e.session_id, c.session_id, "%s: error carries the recipient's id" % tr)
                t.eq(c.sync(), [], "%s: session kept, frame dropped (no echo)" % tr)
                sent = c.send_message(b"after mismatch")
                t.eq(c.recv_frame().raw, sent, "%s: next message echoes" % tr)


def case_not_acknowledged(t):
    with Server(plugins=["echo"]) as srv:
        with srv.client("tcp", handshake=False) as c:
            c.handshake(ack=False)
            c.send_message(b"too early")
            e = c.recv_frame()
            t.eq((e.type, e.header.get("error")), ("error", "not_acknowledged"),
                 "message before session_ack -> error not_acknowledged", repr(e))


def case_ack_wrong_id(t):
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            with srv.client(tr, handshake=False) as c:
                c.handshake(ack=False)
                c.send("session_ack", b"Session acknowledged",
                       session_id="6f1c2a1e-3b7d-4c55-9a0e-2d4b8f1e7c90")
                e = c.recv_frame()
                t.eq((e.type, e.header.get("error")), ("error", "session_mismatch"),
                     "%s: session_ack with another id -> session_mismatch" % tr, repr(e))
                c.send_message(b"too early")
                e = c.recv_frame()
                t.eq(e.header.get("error"), "not_acknowledged",
                     "%s: still not acknowledged after a wrong ack" % tr, repr(e))
                c.send("session_ack", b"Session acknowledged")
                sent = c.send_message(b"now")
                t.eq(c.recv_frame().raw, sent, "%s: the right ack then works" % tr)


def case_control_frames_not_relayed(t):
    # only message and chunk frames go through the plugin chain; error,
    # session_init and a second session_ack are the client's mistakes
    # (PROTOCOL.md, who may send what), answered with unexpected_frame
    with Server(plugins=["echo"]) as srv:
        with srv.client("tcp") as c:
            for ty in ("error", "session_init", "session_ack"):
                c.send(ty, b"from a client")
                got = c.sync()
                t.eq([(f.type, f.header.get("error"), f.session_id) for f in got],
                     [("error", "unexpected_frame", c.session_id)],
                     "a client's %s frame is not echoed: unexpected_frame" % ty,
                     repr(got))
                t.ok(all(b"from a client" not in f.raw for f in got),
                     "the answer to a client's %s quotes none of it" % ty)
            c.send("heartbeat", b"pong")
            t.eq(c.sync(), [], "a client's heartbeat 'pong' gets no answer")


def case_client_disconnect(t):
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            c = srv.client(tr)
            c.send("disconnect", b'{"message": "Disconnecting", "reason": "bye"}',
                   content_type="application/json")
            t0 = time.monotonic()
            try:
                frames = c.recv_until_closed(2)
                closed = True
            except acproto.Timeout:
                frames, closed = [], False
            t.ok(closed, "%s: server closes after a client disconnect" % tr,
                 "still open after %.1f s" % (time.monotonic() - t0))
            t.ok(all(f.type != "message" for f in frames),
                 "%s: no message after disconnect" % tr, repr(frames))
            c.close()
        # the server carries on
        with srv.client("tcp") as c:
            t.eq(c.sync(), [], "server still serves new sessions")
        t.ok(srv.poll() is None, "server still running")


def case_abrupt_close(t):
    # Clients vanishing mid-frame must not disturb the server.
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            for cut in (10, 64, 100):
                c = srv.client(tr)
                c.send_raw(c.frame("message", b"x" * 200)[:cut])
                c.close()
            c = srv.client(tr, handshake=False)
            c.close()
        with srv.client("unix") as c:
            sent = c.send_message(b"still fine")
            t.eq(c.recv_frame().raw, sent, "server serves after abrupt closes")
        rc, clean = srv.stop()
        t.eq((rc, clean), (0, True), "server exits 0 on SIGTERM afterwards")


if __name__ == "__main__":
    main([case_handshake, case_handshake_ipv6,
          case_many_sessions_unique_ids, case_heartbeat_pong, case_own_key,
          case_hmac_key_file, case_session_mismatch, case_not_acknowledged,
          case_ack_wrong_id, case_control_frames_not_relayed,
          case_client_disconnect, case_abrupt_close])
