#!/usr/bin/env python3
"""The chat plugin with a backend that numbers room messages itself
(asyncchat/history.h, version 3: numbers, append, listen), as the cluster
backend does for rooms that span servers: here the in-memory test backend
tests/plugins/memhistory with numbers = yes, whose jobs wait on a gate
file when told, so a test decides when appends complete.

What chat must do with such a backend: never number a message itself;
deliver every message, the sender's own too, only when the backend hands
it back, in the backend's order, once; make the frame again when the
backend gives it another seq; deliver a message the backend could not
store to this server's members only, without seq, and tell the sender
(cluster_down); and overlap a replay that read past what was live when it
was asked with the live messages, without sending anything twice.
"""

import os

import chat
from chat import error_of, events, is_said, messages
from harness import Server, main, mkdtemp, test_plugin


def numbered_server(gate=None, **opts):
    hist = {"numbers": "yes"}
    hist.update(opts)
    if gate is not None:
        hist["gate_dir"] = gate
    return Server(plugins=["chat", test_plugin("memhistory")],
                  sections={"chat": {}, "memhistory": hist})


def connect(srv, **kw):
    """chat.connect, then read until every room it joined at the
    handshake has its history-end: a session's replays run one at a time,
    so the history-end of one room may otherwise come after another
    room's first messages, where a test looks for nothing else."""
    c = chat.connect(srv, **kw)
    frames = list(c.welcome)
    rooms = [f.header["room"] for f in events(frames, "join")
             if f.header.get("session") == c.session_id]
    while len([f for f in events(frames, "history-end")
               if f.header["room"] in rooms]) < len(rooms):
        f = c.recv_frame(10)
        frames.append(f)
        c.welcome.append(f)
    return c


def open_gate(gate):
    with open(os.path.join(gate, "open"), "w"):
        pass


def kinds(frames):
    """Each frame as its event, or "msg:CONTENT" for a message."""
    return [f.header["event"] if "event" in f.header else
            "msg:" + f.content.decode() for f in frames]


def said(c, texts, timeout=10.0):
    """Wait until c got the messages with these texts; return them."""
    got = []
    for text in texts:
        got.append(c.wait_for(is_said(text), "message %r" % text, timeout))
    return got


def quiet(c):
    """Start c in no room: leave the default room it joined."""
    c.cmd("/part")


def until_end(c, frames):
    """frames, plus what arrives until they hold a history-end."""
    frames = list(frames)
    while "history-end" not in kinds(frames):
        frames.append(c.recv_frame(10))
    return frames


def case_numbered_by_the_backend(t):
    with numbered_server() as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        b = connect(srv, nick="bob", rooms=[{"room": "dev"}])
        texts = ["m%d" % i for i in range(5)]
        for text in texts:
            a.say(text, extra={"room": "dev", "seq": 99, "time": "x"})
        got_a = said(a, texts)
        got_b = said(b, texts)
        t.eq([f.header["seq"] for f in got_a], [1, 2, 3, 4, 5],
             "the sender's own messages come back numbered 1..5 by the "
             "backend")
        t.eq([f.raw for f in got_a], [f.raw for f in got_b],
             "every member gets the same frames")
        t.eq([f.header["from"] for f in got_b], ["alice"] * 5,
             "signed as from alice, whatever the client put in seq/time")
        t.eq(kinds(a.sync()) + kinds(b.sync()), [],
             "each message once, nothing else")
        t.ok(all(f.session_id == a.session_id for f in got_b),
             "the sender's session id")


def case_another_server_takes_a_seq(t):
    with numbered_server(skip_every=2) as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        b = connect(srv, nick="bob", rooms=[{"room": "dev"}])
        for i in range(4):
            a.say("n%d" % i, extra={"room": "dev"})
        got = said(b, ["n0", "n1", "n2", "n3"])
        t.eq([f.header["seq"] for f in got], [1, 3, 4, 6],
             "a message whose seq another server took is made again with "
             "the next: the delivered frame carries the seq it was stored "
             "under")
        t.eq(kinds(b.sync()), [], "the frame made for the lost seq goes "
             "nowhere")
        got = until_end(b, b.cmd("/history 10"))
        t.eq([f.header.get("seq") for f in messages(got)], [1, 3, 4, 6],
             "the replay gives the stored frames")


def case_not_stored(t):
    with numbered_server(fail_appends="yes") as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        b = connect(srv, nick="bob", rooms=[{"room": "dev"}])
        c = connect(srv, nick="carol", rooms=[{"room": "ops"}])
        a.say("lonely", extra={"room": "dev"})
        f = b.wait_for(is_said("lonely"), "the message at bob")
        t.ok("seq" not in f.header and f.header["room"] == "dev" and
             f.header["from"] == "alice",
             "a message the backend could not store reaches the room's "
             "members here, without seq")
        r = a.wait_for(lambda f: f.header.get("event") == "reply",
                       "the sender's reply")
        t.eq((r.header["command"], r.header["status"], r.header["error"]),
             ("message", "error", "cluster_down"),
             "and its sender is told: cluster_down")
        t.ok(b"not kept" in r.content, "saying it is not kept: %r"
             % r.content)
        t.eq([k for k in kinds(c.sync()) if k.startswith("msg:")], [],
             "nobody outside the room")
        got = until_end(b, b.cmd("/history"))
        t.eq(messages(got), [], "and it is not in the history")


def case_replay_past_until(t):
    gate = mkdtemp()
    try:
        replay_past_until(t, gate)
    finally:
        open_gate(gate)


def replay_past_until(t, gate):
    with numbered_server(gate=gate) as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        b = connect(srv, nick="bob", extra={})
        quiet(b)
        for i in range(3):
            a.say("p%d" % i, extra={"room": "dev"})
        a.sync()                # the appends are queued before the join
        got = b.cmd("/join dev 0")
        t.eq(kinds(got), ["join", "names", "reply"],
             "the replay waits behind the appends")
        t.eq(events(got, "join")[0].header["nick"], "bob", "bob joined")
        open_gate(gate)
        got = until_end(b, [])
        got += b.sync()
        t.eq(kinds(got), ["msg:p0", "msg:p1", "msg:p2", "history-end"],
             "the messages stored while the replay waited came live and "
             "in the replay, which read past `until`: once each")
        he = events(got, "history-end")[0].header
        t.eq((he["seq"], he["replayed"]), (3, 3),
             "history-end names the last seq the replay covered")
        a.say("p3", extra={"room": "dev"})
        f = b.wait_for(is_said("p3"), "live again")
        t.eq(f.header["seq"], 4, "and live delivery goes on above it")
    t.ok("fini outstanding=0" in srv.log(), "every job completed")


def case_sender_gone(t):
    gate = mkdtemp()
    try:
        with numbered_server(gate=gate) as srv:
            a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
            b = connect(srv, nick="bob", rooms=[{"room": "dev"}])
            a.say("last words", extra={"room": "dev"})
            a.sync()
            a.close()
            b.wait_for(lambda f: f.header.get("event") == "quit",
                       "alice's quit")
            open_gate(gate)
            f = b.wait_for(is_said("last words"), "the message")
            t.eq((f.header["from"], f.header["seq"]), ("alice", 1),
                 "a message whose sender left before it was stored is "
                 "still delivered")
            t.eq(error_of(b.cmd("/who")), None, "and the server is fine")
    finally:
        open_gate(gate)


if __name__ == "__main__":
    main([case_numbered_by_the_backend, case_another_server_takes_a_seq,
          case_not_stored, case_replay_past_until, case_sender_gone])
