#!/usr/bin/env python3
"""The chat plugin with a history backend (asyncchat/history.h), mostly
the in-memory test backend tests/plugins/memhistory: replay on join, SINCE,
/history, seq and case carried by the backend once a room empties, the
order join, names, replay, history-end, live messages, and sync = full
(durable) delivery.  The backend's worker jobs wait on a gate file when
told, so a test decides when stores complete without any timing.  Then
the shipped backend, the history plugin: the same replays from SQLite,
across a kill -9 and a restart, and what people are told when its
database cannot be used (memhistory is a version 1 backend, which cannot
say so; the history plugin is version 2).
"""

import os
import signal
import subprocess
import time

from chat import (TEXT, connect, error_of, events, is_event, is_said,
                  messages, reply)
from harness import Server, Skip, main, mkdtemp, test_plugin
from metrics import metrics_url, scrape


def history_server(gate=None, **opts):
    hist = dict(opts)
    if gate is not None:
        hist["gate_dir"] = gate
    return Server(plugins=["chat", test_plugin("memhistory")],
                  sections={"chat": {}, "memhistory": hist})


def kinds(frames):
    """Each frame as its event, or "msg:CONTENT" for a message."""
    return [f.header["event"] if "event" in f.header else
            "msg:" + f.content.decode() for f in frames]


def until_ends(c, frames, ends=1):
    """frames, plus what arrives until they hold `ends` history-end events
    (a replay completes on the worker pool, after the command's pong)."""
    frames = list(frames)
    while len(events(frames, "history-end")) < ends:
        frames.append(c.recv_frame(10))
    return frames


def run(c, text, ends=1):
    """A command and everything it causes, its replay included."""
    return until_ends(c, c.cmd(text), ends)


def open_gate(gate):
    with open(os.path.join(gate, "open"), "w"):
        pass


def case_replay_on_join(t):
    with history_server(replay=3) as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "Dev"}])
        got = until_ends(a, a.welcome, 2)
        t.eq(kinds(got), ["join", "names", "join", "names", "history-end",
                          "history-end"],
             "with history, every join ends with history-end")
        sent = []
        for i in range(5):
            sent += messages(a.cmd("m%d" % i))
        t.eq([f.header["seq"] for f in sent], [1, 2, 3, 4, 5], "seq 1..5")
        b = connect(srv, nick="bob")
        until_ends(b, b.welcome)
        got = run(b, "/join dev")
        t.eq(kinds(got), ["join", "names", "reply", "msg:m2", "msg:m3",
                          "msg:m4", "history-end"],
             "join, names, reply, the last `replay` messages, history-end")
        t.eq([f.raw for f in messages(got)], [f.raw for f in sent[2:]],
             "replayed frames are byte for byte the ones delivered")
        he = events(got, "history-end")[0].header
        t.eq((he["room"], he["seq"], he["replayed"], he["truncated"]),
             ("Dev", 5, 3, False), "history-end: room, seq, replayed, "
             "truncated")
        t.ok("error" not in he, "a version 1 backend (no status()) is "
             "taken to be up: no error on history-end", he)
        got = run(b, "/join dev 1")
        t.eq(kinds(got), ["reply", "msg:m1", "msg:m2", "msg:m3", "msg:m4",
                          "history-end"],
             "/join ROOM SINCE in a room one is in: every message after SINCE")
        got = run(b, "/history 2")
        t.eq(kinds(got), ["reply", "msg:m3", "msg:m4", "history-end"],
             "/history 2: the last two of the current room")
        t.eq(error_of(b.cmd("/history 0")), "bad_argument", "/history 0")
        t.eq(error_of(b.cmd("/history x")), "bad_argument", "/history x")
        t.eq(error_of(b.cmd("/history 1 2")), "bad_argument", "/history 1 2")
        b.cmd("/part dev")
        b.cmd("/part lobby")
        t.eq(error_of(b.cmd("/history")), "no_room", "/history in no room")
        c = connect(srv, nick="carol", rooms=[{"room": "dev", "since": 3}])
        got = [f for f in until_ends(c, c.welcome, 2)
               if f.header.get("room", "").lower() == "dev"]
        t.eq(kinds(got), ["join", "names", "msg:m3", "msg:m4",
                          "history-end"],
             "rooms/since in the session_ack: exactly what came after")


def case_room_lives_on(t):
    with history_server() as srv:
        a = connect(srv, nick="alice")
        until_ends(a, a.welcome)
        run(a, "/join Ops")
        a.cmd("one")
        a.cmd("two")
        a.cmd("/part ops")
        got = run(a, "/join OPS")
        t.eq(events(got, "join")[0].header["room"], "Ops",
             "a room that emptied keeps its case in the store")
        got = a.cmd("three")
        t.eq(messages(got)[0].header["seq"], 3,
             "and its seq goes on from the backend's last_seq")
        got = run(a, "/join ops 0")
        t.eq(kinds(got), ["reply", "msg:one", "msg:two", "msg:three",
                          "history-end"], "all of it from SINCE 0")


# CHAT_PLAIN_WAIT_MS (plugins/chat/chat.h): a plain session's replays wait
# that long after the command's own frames (docs/CHAT.md).  Measured here
# with 20 ms to spare for libevent's coarse clock.
PLAIN_WAIT = 0.150
PLAIN_WAIT_SURE = PLAIN_WAIT - 0.020


def case_plain_join(t):
    """A session whose session_ack named neither nick nor rooms (the
    original client's) joins the default room bare at its handshake, and
    is answered by /join as CHAT.md says for everyone: the join event,
    names, the reply, the replay, history-end.  Its replay starts a moment
    after the reply, so that the original client reads the command's
    frames apart from history-end; what the room says meanwhile comes
    after history-end, once."""
    with history_server() as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        until_ends(a, a.welcome, 2)
        for i in range(3):
            a.cmd("m%d" % i)
        p = connect(srv)
        t.eq(kinds(p.welcome), ["join"], "its handshake: the default "
             "room's join event alone")
        sent = time.monotonic()
        got = p.cmd("/join dev")
        a.cmd("live1")
        live_at = time.monotonic()
        ended = None
        while "msg:live1" not in kinds(got):
            got.append(p.recv_frame(10))
            if ended is None and kinds(got)[-1] == "history-end":
                ended = time.monotonic()
        t.eq(kinds(got), ["join", "names", "reply", "msg:m0", "msg:m1",
                          "msg:m2", "history-end", "msg:live1"],
             "/join: join, names, reply, the replay, history-end, then "
             "the room's live message")
        t.eq(events(got, "history-end")[0].header["seq"], 3,
             "the replay covers the room as it was at the /join")
        t.ok(ended is not None and ended - sent >= PLAIN_WAIT_SURE,
             "history-end came %.0f ms after the /join was sent (the "
             "wait is %.0f ms)" % ((ended - sent) * 1000 if ended else -1,
                                  PLAIN_WAIT * 1000))
        if live_at - sent < PLAIN_WAIT_SURE:
            t.ok(True, "the live message reached the server during the "
                 "wait (%.0f ms after the /join), and was held"
                 % ((live_at - sent) * 1000))
        else:
            t.skip("the live message reached the server during the wait",
                   "the machine was too slow: %.0f ms after the /join"
                   % ((live_at - sent) * 1000))
        t.eq(kinds(p.sync()), [], "nothing twice")
        got = run(p, "/join dev 1")
        t.eq(kinds(got), ["reply", "msg:m1", "msg:m2", "msg:live1",
                          "history-end"],
             "/join dev SINCE in a room it is in: the replay after SINCE")
        got = run(p, "/history 1")
        t.eq(kinds(got), ["reply", "msg:live1", "history-end"],
             "/history 1")
        # Two replays asked at once, of two rooms, go to the backend in
        # the order asked, each after its wait; another of a room whose
        # replay is still waiting is refused, and that replay comes once.
        p.say("/history 2")
        p.say("/join dev 3")
        got = run(p, "/join lobby 0", 2)
        t.eq(kinds(got), ["reply", "reply", "reply", "msg:m2", "msg:live1",
                          "history-end", "history-end"],
             "two replays, of two rooms, in the order asked")
        t.eq([(r.header["command"], r.header.get("error"))
              for r in events(got, "reply")],
             [("history", None), ("join", "replay_in_progress"),
              ("join", None)],
             "a /join SINCE of the room whose replay waits: "
             "replay_in_progress")
        t.eq([f.header["room"] for f in events(got, "history-end")],
             ["dev", "lobby"], "history-end of #dev, then of #lobby")
        t.eq(kinds(p.sync()), [], "nothing more")
        # A replay still waiting when its member parts is never asked
        # for: had it been, its history-end would come before the one
        # of the /join after (it was due earlier).
        p.say("/join ops")
        p.say("/part ops")
        got = run(p, "/join ops")
        t.eq(kinds(got), ["join", "names", "reply", "part", "reply", "join",
                          "names", "reply", "history-end"],
             "a /part during the wait ends that replay: one history-end, "
             "the second /join's")
        q = connect(srv)
        q.say("/join dev")
        q.close()               # gone while its replay waits
        t.eq(kinds(messages(a.cmd("m4"))), ["msg:m4"],
             "the server carries on")
    t.ok("fini outstanding=0" in srv.log(),
         "every job the backend took completed before its fini")


def case_reload_while_waiting(t):
    """A reload (SIGHUP) while a plain session's replay waits: the old
    chat drops it with the session's slot, nothing of it is ever sent (a
    timer left behind would run the old chain's code after its fini: the
    sanitizer build's harness reports that), and the session goes on
    with the new chain, which knows it from its attributes only."""
    with history_server() as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        until_ends(a, a.welcome, 2)
        p = connect(srv)
        mark = len(srv.log())
        sent = time.monotonic()
        got = p.cmd("/join dev")
        srv.signal(signal.SIGHUP)
        t.ok(srv.wait_log("configuration reloaded", 5, mark),
             "a reload while the replay waits")
        t.diag("reloaded %.0f ms after the /join was sent (the wait is "
               "%.0f ms)" % ((time.monotonic() - sent) * 1000,
                             PLAIN_WAIT * 1000))
        # (memhistory keeps nothing across a reload: an empty replay.)
        got += run(p, "/join dev 0")
        t.eq(kinds(got), ["join", "names", "reply", "reply", "history-end"],
             "the session chats on, and only the new chain's replay ends")
        # A plain session of the new chain waits too; its replay ends
        # after the old one was due (timers run in the order they are
        # due), so the server has lived past that moment.
        q = connect(srv)
        t.eq(kinds(run(q, "/join dev")), ["join", "names", "reply",
                                          "history-end"],
             "the new chain: a new plain session's /join")
        t.eq(kinds(p.sync()), ["join", "join"], "p saw q join (lobby, "
             "dev), and nothing came of the old chain's replay")
    t.ok("fini outstanding=0" in srv.log(),
         "every job the backend took completed before its fini")


def case_known_join_not_delayed(t):
    """A session whose session_ack named a nick or rooms ("rooms": []
    will do) knows chat: its handshake joins give names and the replay,
    and its replays are asked for at once (in order; no bound on the
    time, which a busy machine could break)."""
    with history_server() as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        until_ends(a, a.welcome, 2)
        a.cmd("m0")
        for who, extra in (("rooms: []", {"rooms": []}),
                           ("a nick", {"nick": "bob"})):
            b = connect(srv, **extra)
            t.eq(kinds(until_ends(b, b.welcome)), ["join", "names",
                                                   "history-end"],
                 "%s: the default room's join, names and history-end" % who)
            sent = time.monotonic()
            got = run(b, "/join dev")
            t.eq(kinds(got), ["join", "names", "reply", "msg:m0",
                              "history-end"],
                 "%s: /join: join, names, reply, the replay, history-end"
                 % who)
            t.diag("%s: history-end %.0f ms after the /join was sent"
                   % (who, (time.monotonic() - sent) * 1000))
            b.close()


def case_max_replay(t):
    with history_server(max_replay=2) as srv:
        a = connect(srv, nick="alice")
        until_ends(a, a.welcome)
        run(a, "/join r")
        for i in range(4):
            a.cmd("n%d" % i)
        got = run(a, "/join r 0")
        he = events(got, "history-end")[0].header
        t.eq((kinds(got)[1:-1], he["replayed"], he["truncated"]),
             (["msg:n2", "msg:n3"], 2, True),
             "more after SINCE than max_replay: the newest, truncated")


def case_live_held_during_replay(t):
    gate = mkdtemp()
    try:
        live_held(t, gate)
    finally:
        open_gate(gate)


def live_held(t, gate):
    with history_server(gate=gate) as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        until_ends(a, a.welcome, 2)
        a.cmd("m1")             # delivered; its store waits at the gate
        b = connect(srv, nick="bob", extra={})
        b.cmd("/part")          # no lobby replay in the way
        got = b.cmd("/join dev")
        t.eq(kinds(got), ["join", "names", "reply"],
             "the replay waits behind the store (one serial queue)")
        a.cmd("m2")
        a.cmd("m3")
        t.eq(kinds(b.sync()), [],
             "live messages wait too: nothing before the replay")
        open_gate(gate)
        got = []
        while "msg:m3" not in kinds(got):
            got.append(b.recv_frame(10))
        t.eq(kinds(got), ["msg:m1", "history-end", "msg:m2", "msg:m3"],
             "replay, history-end, then what was held, in order, once each")
        t.eq(events(got, "history-end")[0].header["seq"], 1,
             "history-end gives the seq the replay covers")
        t.eq(kinds(b.sync()), [], "and nothing twice")
        c = connect(srv, nick="carol", rooms=[{"room": "dev"}])
        c.close()               # a session that goes while replaying
        a.cmd("m4")
        t.eq([k for k in kinds(b.sync()) if k.startswith("msg:")],
             ["msg:m4"], "live again")
    t.ok("fini outstanding=0" in srv.log(),
         "every job the backend took completed before its fini")


def case_durable(t):
    gate = mkdtemp()
    try:
        durable(t, gate)
    finally:
        open_gate(gate)     # a failed case must not leave jobs waiting


def durable(t, gate):
    with history_server(gate=gate, durable="yes") as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        until_ends(a, a.welcome, 2)
        b = connect(srv, nick="bob", rooms=[{"room": "dev"}])
        until_ends(b, b.welcome, 2)
        a.sync()
        t.eq(kinds(a.cmd("d1")), [], "sync = full: not delivered, not even "
             "to the sender, before it is stored")
        a.cmd("d2")
        c = connect(srv, nick="carol")
        got = c.cmd("/join dev")
        t.eq(kinds(got), ["join", "names", "reply"],
             "a joiner meanwhile: join, names, reply")
        t.eq(kinds(b.sync()), ["join", "join"],
             "the members see only the joins (carol's, in lobby and dev)")
        open_gate(gate)
        for who, x in (("alice", a), ("bob", b)):
            got = []
            while len(messages(got)) < 2:
                got.append(x.recv_frame(10))
            t.eq([(f.content, f.header["seq"]) for f in messages(got)],
                 [(b"d1", 1), (b"d2", 2)],
                 "%s gets them once stored, in order" % who)
        got = until_ends(c, [], 2)
        t.eq([k for f, k in zip(got, kinds(got))
              if f.header.get("room") == "dev"],
             ["msg:d1", "msg:d2", "history-end"],
             "the joiner gets them from its replay, once")
        t.eq(kinds(c.sync()), [], "and not live as well")
        got = a.cmd("d3")
        while not messages(got):
            got.append(a.recv_frame(10))
        t.eq(kinds(got), ["msg:d3"], "with the gate open: once stored")


def case_history_while_storing(t):
    gate = mkdtemp()
    try:
        history_while_storing(t, gate)
    finally:
        open_gate(gate)


def history_while_storing(t, gate):
    """/history N while messages wait for their store (sync = full): the
    member has not had them, and a replay of the last N may not reach back
    to them all. Before, they were taken as covered by the replay and
    never came."""
    with history_server(gate=gate, durable="yes") as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        until_ends(a, a.welcome, 2)
        b = connect(srv, nick="bob", rooms=[{"room": "dev"}])
        until_ends(b, b.welcome, 2)
        a.sync()
        for text in ("d1", "d2", "d3"):
            b.cmd(text)         # each waits for its store, at the gate
        got = a.cmd("/history 1")
        t.eq(kinds(got), ["reply"], "alice asks for the last one")
        open_gate(gate)
        got = until_ends(a, got, 1)
        while len(messages(got)) < 3:
            got.append(a.recv_frame(10))
        got += a.sync()
        t.eq([k for k in kinds(got) if k != "reply"],
             ["msg:d3", "history-end", "msg:d1", "msg:d2"],
             "the replay (d3), then the two it did not reach, once each")
        got = until_ends(a, a.cmd("/history 5"), 1)
        t.eq(kinds(got), ["reply", "msg:d1", "msg:d2", "msg:d3",
                          "history-end"],
             "with nothing waiting, /history as before")
        os.unlink(os.path.join(gate, "open"))      # closed again
        b.cmd("d4")
        b.cmd("d5")
        got = a.cmd("/history 5")
        open_gate(gate)
        got = until_ends(a, got, 1)
        got += a.sync()
        t.eq([k for k in kinds(got) if k != "reply"],
             ["msg:d1", "msg:d2", "msg:d3", "msg:d4", "msg:d5",
              "history-end"],
             "a replay that reaches back to every message waiting: each "
             "once, in order")


def case_hold_overflow(t):
    gate = mkdtemp()
    try:
        hold_overflow(t, gate)
    finally:
        open_gate(gate)


def hold_overflow(t, gate):
    """A replay slower than 4096 live messages: they stop being held, and
    nothing is lost or doubled."""
    n = 4200
    with history_server(gate=gate) as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        until_ends(a, a.welcome, 2)
        a.cmd("first")          # its store blocks the backend's queue
        b = connect(srv, nick="bob", rooms=[])
        b.cmd("/part lobby")
        t.eq(kinds(b.cmd("/join dev")), ["join", "names", "reply"],
             "bob's replay waits behind the store")
        for i in range(n):
            a.say("m%d" % i)
        a.sync(30)
        t.ok(srv.wait_log("slower than 4096 messages or 4 MiB of them: no "
                          "longer held", 10),
             "past 4096 held messages the plugin says it stops holding")
        got = []
        while len([f for f in got if "event" not in f.header]) < n:
            got.append(b.recv_frame(10))
        open_gate(gate)
        got = until_ends(b, got, 1)
        got += b.sync(30)
        seqs = [f.header["seq"] for f in got if "event" not in f.header]
        t.eq(sorted(seqs), list(range(1, n + 2)),
             "bob gets every message exactly once (the replay has the "
             "first)")
        t.eq(seqs[:n], list(range(2, n + 2)),
             "the live ones in order, ahead of the slow replay")


def case_hold_bytes(t):
    gate = mkdtemp()
    try:
        hold_bytes(t, gate)
    finally:
        open_gate(gate)


def hold_bytes(t, gate):
    """Held live messages are bounded in bytes too (4 MiB a member): held
    frames are in no output buffer, so before, a replay kept waiting let
    4096 of the largest (10 MiB) pile up for each member."""
    with history_server(gate=gate) as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        until_ends(a, a.welcome, 2)
        a.cmd("first")          # its store blocks the backend's queue
        b = connect(srv, nick="bob", rooms=[])
        b.cmd("/part lobby")
        t.eq(kinds(b.cmd("/join dev")), ["join", "names", "reply"],
             "bob's replay waits behind the store")
        big = "x" * (1 << 20)
        for i in range(6):
            a.say("%d %s" % (i, big))
        a.sync(30)
        t.ok(srv.wait_log("slower than 4096 messages or 4 MiB of them: no "
                          "longer held", 10),
             "past 4 MiB of held messages the plugin stops holding them")
        got = []
        while len([f for f in got if "event" not in f.header]) < 6:
            got.append(b.recv_frame(10))
        open_gate(gate)
        got = until_ends(b, got, 1)
        got += b.sync(30)
        seqs = [f.header["seq"] for f in got if "event" not in f.header]
        t.eq(sorted(seqs), list(range(1, 8)),
             "bob gets every message exactly once (the replay has the "
             "first)")


def case_replay_flood(t):
    gate = mkdtemp()
    try:
        replay_flood(t, gate)
    finally:
        open_gate(gate)


def replay_flood(t, gate):
    """A client asking for replays as fast as it sends frames: a member
    has one replay coming at a time (more are answered
    replay_in_progress), and a user's replays go to the backend one after
    another, so that the worker queue everyone shares keeps room for the
    replays of others (before: one burst of /history filled it, and
    everyone else's were refused)."""
    with Server(plugins=["chat", test_plugin("memhistory")],
                server={"worker_threads": 1, "worker_queue": 8},
                sections={"chat": {}, "memhistory": {"gate_dir": gate}}) \
            as srv:
        m = connect(srv, nick="mallory", rooms=[{"room": "a"}, {"room": "b"},
                                                {"room": "c"}])
        until_ends(m, m.welcome, 4)
        w = connect(srv, nick="writer", rooms=[{"room": "c"}])
        until_ends(w, w.welcome, 2)
        w.cmd("held")           # its store blocks the backend's queue
        m.wait_for(is_said("held"), "the message in #c")
        burst = b"".join(m.frame("message", text.encode(),
                                 content_type=TEXT)
                         for text in ["/history"] * 10 +
                         ["/join a 0", "/join b 0"])
        m.send_raw(burst)
        got = m.sync()
        t.eq([(r.header["command"], r.header.get("error"))
              for r in events(got, "reply")],
             [("history", None)] + [("history", "replay_in_progress")] * 9 +
             [("join", None), ("join", None)],
             "one /history of #c at a time; /join of other rooms with "
             "SINCE are taken")
        t.eq(events(got, "history-end"), [],
             "and none was refused: they wait")
        c = connect(srv, nick="carol", rooms=[{"room": "dev", "since": 0}],
                    sync=False)
        early = c.sync()
        t.eq(events(early, "history-end"), [],
             "another client's replays still find room in the queue "
             "(none ends early, refused)")
        open_gate(gate)
        got = until_ends(c, early, 2)
        t.eq([(f.header["room"], f.header["truncated"])
              for f in events(got, "history-end")],
             [("lobby", False), ("dev", False)],
             "carol's replays run, whole")
        got = until_ends(m, m.sync(), 3)
        t.eq([(f.header["room"], f.header["truncated"])
              for f in events(got, "history-end")],
             [("c", False), ("a", False), ("b", False)],
             "mallory's, one after another, in the order asked")
        got = run(m, "/history")
        t.eq(error_of(got), None, "once it has ended, /history again")
    t.ok("fini outstanding=0" in srv.log(),
         "every job the backend took completed before its fini")


def replays_asked(srv):
    """chat_replays_total: the replays chat asked of its backend."""
    return scrape(metrics_url(srv)).get("chat_replays_total", plugin="chat")


def wait_replays_asked(srv, n, timeout=10.0):
    """Wait until chat_replays_total is n; return the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        got = replays_asked(srv)
        if got == n or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def case_plain_waits_turn(t):
    gate = mkdtemp()
    try:
        plain_waits_turn(t, gate)
    finally:
        open_gate(gate)


def plain_waits_turn(t, gate):
    """A plain session's replays wait both their time and their turn: one
    of a second room, its 150 ms over, waits while the backend still has
    the first; its room left meanwhile, it is never asked of the backend
    (nor counted), and the session's next replay is not held up by it."""
    with Server(plugins=["chat", test_plugin("memhistory")],
                server={"metrics_listen": "127.0.0.1:0"},
                sections={"chat": {}, "memhistory": {"gate_dir": gate}}) \
            as srv:
        w = connect(srv, nick="writer", rooms=[{"room": "a"}])
        until_ends(w, w.welcome, 2)
        t.eq(kinds(w.cmd("held")), ["msg:held"],
             "a message delivered, its store held at the gate, and the "
             "backend's queue behind it")
        p = connect(srv)
        base = replays_asked(srv)
        got = p.cmd("/join a") + p.cmd("/join b")
        # A later plain session's replay is due after p's two (timers run
        # in the order they are due): once it is asked of the backend,
        # the wait of p's #b is over, and #b waits for its turn alone.
        r = connect(srv)
        r.cmd("/join c")
        t.eq(wait_replays_asked(srv, base + 2), base + 2,
             "p's #a and r's #c asked of the backend, p's #b not yet")
        t.eq(events(got + p.sync(), "history-end"), [],
             "no history-end yet: #a waits behind the store, #b for #a")
        t.eq(error_of(p.cmd("/join a 0")), "replay_in_progress",
             "another of #a while the backend has it: replay_in_progress")
        t.eq(error_of(p.cmd("/join b 0")), "replay_in_progress",
             "another of #b while it waits its turn: replay_in_progress")
        t.eq(kinds(p.cmd("/part b")), ["part", "reply"],
             "#b left while its replay waits its turn")
        open_gate(gate)
        got = until_ends(p, [], 1)
        t.eq([(f.header["room"], f.header["replayed"])
              for f in events(got, "history-end")], [("a", 1)],
             "#a's replay ends, with the message stored")
        t.eq(kinds(until_ends(r, [], 1)), ["history-end"],
             "so does r's")
        got = run(p, "/join b")
        t.eq([f.header["room"] for f in events(got, "history-end")], ["b"],
             "a new /join of #b is replayed: nothing of the dropped one "
             "stands in its way, and it ended without a history-end")
        t.eq(replays_asked(srv), base + 3,
             "chat_replays_total counts the replays asked of the backend, "
             "not the one dropped while it waited")
    t.ok("fini outstanding=0" in srv.log(),
         "every job the backend took completed before its fini")


def case_reload_while_storing(t):
    gate = mkdtemp()
    try:
        reload_while_storing(t, gate)
    finally:
        open_gate(gate)


def reload_while_storing(t, gate):
    with history_server(gate=gate, durable="yes") as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        until_ends(a, a.welcome, 2)
        t.eq(kinds(a.cmd("kept")), [], "a message waits for its store")
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        t.ok(srv.wait_log("configuration reloaded", 5, mark),
             "a reload while a store is pending")
        open_gate(gate)
        t.ok(srv.wait_log("memhistory: fini outstanding=0", 10, mark),
             "the old chain finishes once its store completed")
        got = a.cmd("next")
        while not messages(got):
            got.append(a.recv_frame(10))
        t.eq([(f.header["from"], f.header["room"], f.content)
              for f in messages(got)], [("alice", "dev", b"next")],
             "the session chats on with the new chain, nick and room kept")


def sqlite_server(path, server=None):
    return Server(plugins=["chat", "history"], server=server,
                  sections={"chat": {}, "history": {"path": path,
                                                    "replay": 3}})


def case_sqlite(t):
    """chat with the history plugin: what chat promises (CHAT.md, History)
    kept by SQLite, through a kill -9 and a restart."""
    path = os.path.join(mkdtemp("acchist-"), "h.db")
    with sqlite_server(path) as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "Dev"}])
        got = until_ends(a, a.welcome, 2)
        t.eq([(f.header["room"], f.header["seq"])
              for f in events(got, "history-end")], [("lobby", 0), ("Dev", 0)],
             "a new database: every join ends with history-end, seq 0")
        t.eq([f.header.get("error") for f in events(got, "history-end")],
             [None, None], "a database that works: no error on them")
        sent = []
        for i in range(5):
            # The history plugin is durable: chat delivers a message once
            # the plugin says it is stored, which may be after a pong.
            a.say("m%d" % i)
            sent.append(a.wait_for(is_said("m%d" % i, room="Dev"),
                                   "m%d delivered" % i))
        t.eq([f.header["seq"] for f in sent], [1, 2, 3, 4, 5], "seq 1..5")
        b = connect(srv, nick="bob")
        until_ends(b, b.welcome)
        got = run(b, "/join dev")
        t.eq(kinds(got), ["join", "names", "reply", "msg:m2", "msg:m3",
                          "msg:m4", "history-end"],
             "a join replays the last `replay` messages from the database")
        t.eq([f.raw for f in messages(got)], [f.raw for f in sent[2:]],
             "byte for byte the frames first delivered")
        srv.signal(signal.SIGKILL)
        srv.wait_exit(10)
    t.ok(os.path.exists(path), "the database is where `path` says")

    with sqlite_server(path) as srv:
        c = connect(srv, nick="carol", rooms=[{"room": "dev", "since": 2}])
        got = [f for f in until_ends(c, c.welcome, 2)
               if f.header.get("room", "").lower() == "dev"]
        t.eq(kinds(got), ["join", "names", "msg:m2", "msg:m3", "msg:m4",
                          "history-end"],
             "after kill -9 and a restart, a reconnect with since 2 gets "
             "exactly what came after")
        t.eq([f.raw for f in messages(got)], [f.raw for f in sent[2:]],
             "with the same bytes")
        t.eq(events(got, "join")[0].header["room"], "Dev",
             "the room keeps the case it was first shown in")
        c.say("after", extra={"room": "dev"})
        f = c.wait_for(is_said("after"), "after delivered")
        t.eq(f.header["seq"], 6, "seq goes on from the stored maximum")
        got = run(c, "/history 2")
        t.eq(kinds(got), ["reply", "msg:m4", "msg:after", "history-end"],
             "/history 2 after the restart: the last two")


def read_only_db():
    """A history database file the server may not write, and its cleanup:
    a read-only tmpfs for root (to whom file modes are no bar), a file of
    mode 0444 for anyone else."""
    if os.geteuid() != 0:
        d = mkdtemp("acchist-")
        path = os.path.join(d, "h.db")
        with sqlite_server(path):
            pass
        os.chmod(path, 0o444)
        return path, lambda: None
    d = mkdtemp("acchmnt-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", d],
                       capture_output=True)
    if r.returncode != 0:
        raise Skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
    path = os.path.join(d, "h.db")
    undo = lambda: subprocess.run(["umount", "-l", d], capture_output=True)
    with sqlite_server(path):
        pass
    r = subprocess.run(["mount", "-o", "remount,ro", d], capture_output=True)
    if r.returncode != 0:
        undo()
        raise Skip("cannot remount read-only: %s" % r.stderr.decode())
    return path, undo


def case_database_unusable(t):
    """A damaged or read-only database: the chat goes on, and whoever asks
    for history is told it is unavailable, in a reply, on history-end and
    in a metric (the history plugin's status(), interface version 2)."""
    d = mkdtemp("acchist-")
    garbage = os.path.join(d, "h.db")
    with open(garbage, "wb") as f:
        f.write(os.urandom(8192))
    unusable(t, garbage, "a damaged file")
    path, undo = read_only_db()
    try:
        unusable(t, path, "a read-only file")
    finally:
        undo()


def unusable(t, path, what):
    with sqlite_server(path, server={"metrics_listen": "127.0.0.1:0"}) \
            as srv:
        t.ok(srv.wait_log(r"cannot use \S+: .*running WITHOUT history", 10)
             is not None, "%s: the log says so at start" % what)
        a = connect(srv, nick="alice", rooms=[{"room": "dev", "since": 0}])
        ends = events(until_ends(a, a.welcome, 2), "history-end")
        t.eq([(f.header["room"], f.header["truncated"], f.header.get("error"))
              for f in ends], [("lobby", True, "history_unavailable"),
                               ("dev", True, "history_unavailable")],
             "%s: each join's history-end says history_unavailable" % what)
        t.ok("unavailable: the server cannot use its history database"
             in ends[0].text(), "%s: and its line says why, for people"
             % what, ends[0].text())
        got = a.cmd("/history")
        t.eq((error_of(got), events(got, "history-end")),
             ("history_unavailable", []),
             "%s: /history is answered history_unavailable, nothing "
             "replayed" % what)
        t.eq(reply(got)["command"], "history", "%s: a reply to /history"
             % what)
        t.ok(path not in got[0].text() and "cannot use its history "
             "database" in got[0].text(), "%s: the reply says why, without "
             "the server's file names" % what, got[0].text())
        got = run(a, "/join ops")
        t.eq([(k, f.header.get("error")) for k, f in zip(kinds(got), got)],
             [("join", None), ("names", None), ("reply", None),
              ("history-end", "history_unavailable")],
             "%s: /join: join, names, the reply, history-end with the "
             "error" % what)
        a.say("still here", extra={"room": "dev"})
        f = a.wait_for(is_said("still here"), "delivered")
        t.eq((f.header["room"], f.header["seq"]), ("dev", 1),
             "%s: messages are delivered all the same, numbered" % what)
        m = scrape(metrics_url(srv))
        t.eq(m.get("chat_error_history_unavailable_total", plugin="chat"),
             1.0, "%s: the replies are counted" % what)
        t.eq(m.get("history_healthy", plugin="history"), 0.0,
             "%s: history_healthy is 0" % what)


def case_members_change_mid_stream(t):
    gate = mkdtemp()
    try:
        members_change_mid_stream(t, gate)
    finally:
        open_gate(gate)


def dev_seqs(frames):
    """The seqs of the #dev messages among frames, in the order received."""
    return [f.header["seq"] for f in messages(frames)
            if f.header.get("room") == "dev"]


def members_change_mid_stream(t, gate):
    """A room sends most messages to the array of its members' sessions
    (room.c), and the rest, while someone replays, member by member: each
    member gets exactly its own messages while others part from the middle
    of that array, quit, rejoin, change nick and join with a replay."""
    with history_server(gate=gate) as srv:
        names = ("sam", "ann", "bob", "cat", "dan")
        s, a, b, c, d = [connect(srv, nick=n, rooms=[{"room": "dev"}])
                         for n in names]
        got = {}
        for n, x in zip(names, (s, a, b, c, d)):
            until_ends(x, x.welcome, 2)
            got[n] = []

        def send(first, last):
            for i in range(first, last + 1):
                s.say("m%d" % i, extra={"room": "dev"})
            fs = []
            while last not in dev_seqs(fs):
                fs.append(s.recv_frame(10))
            got["sam"] += dev_seqs(fs)

        def read(n, x):
            got[n] += dev_seqs(x.sync())

        send(1, 3)              # every store waits at the gate from here
        for n, x in zip(names[1:], (a, b, c, d)):
            read(n, x)
        t.eq([got[n] for n in names[1:]], [[1, 2, 3]] * 4,
             "everyone in the room gets m1..m3")
        e = connect(srv, nick="eve", rooms=[{"room": "dev", "since": 0}])
        t.eq(error_of(b.cmd("/part dev")), None, "bob parts (from the "
             "middle of the room's array)")
        t.eq(error_of(d.cmd("/nick dan2")), None, "dan changes nick")
        send(4, 5)              # eve replays: member by member
        for n, x in (("ann", a), ("bob", b), ("cat", c), ("dan", d)):
            read(n, x)
        t.eq(dev_seqs(e.sync()), [], "eve's replay waits: nothing live "
             "before it")
        open_gate(gate)
        fe = []
        while 5 not in dev_seqs(fe):
            fe.append(e.recv_frame(10))
        got["eve"] = dev_seqs(fe)
        c.close()
        a.wait_for(is_event("quit", nick="cat"), "cat's quit")
        g = connect(srv, nick="gus")
        got["gus"] = dev_seqs(g.welcome)
        fb = until_ends(b, b.cmd("/join dev 5"))
        t.eq(error_of(fb), None, "bob rejoins since 5")
        got["bob"] += dev_seqs(fb)
        t.eq(error_of(d.cmd("/part dev")), None, "dan2 parts")
        fd = until_ends(d, d.cmd("/join dev 5"))
        t.eq(error_of(fd), None, "and rejoins since 5")
        got["dan"] += dev_seqs(fd)
        send(6, 8)              # nobody replays: the array again
        for n, x in (("ann", a), ("bob", b), ("dan", d), ("eve", e),
                     ("gus", g)):
            read(n, x)
        t.eq(got["ann"], list(range(1, 9)), "ann, there throughout: "
             "m1..m8 once each")
        t.eq(got["bob"], [1, 2, 3, 6, 7, 8], "bob: nothing while parted")
        t.eq(got["cat"], [1, 2, 3, 4, 5], "cat: until it quit")
        t.eq(got["dan"], list(range(1, 9)), "dan: through a nick change "
             "and a part and join between two messages")
        t.eq(got["eve"], list(range(1, 9)), "eve: m1..m3 replayed, m4 and "
             "m5 held, then live")
        t.eq(got["gus"], [], "gus, in no room of theirs (maybe where cat's "
             "session was): none of it")
        t.eq(got["sam"], list(range(1, 9)), "the sender had each of its "
             "own once")


main([case_replay_on_join, case_room_lives_on, case_plain_join,
      case_reload_while_waiting, case_known_join_not_delayed,
      case_plain_waits_turn, case_max_replay,
      case_live_held_during_replay, case_durable,
      case_history_while_storing, case_hold_overflow,
      case_hold_bytes, case_replay_flood, case_reload_while_storing, case_sqlite, case_database_unusable,
      case_members_change_mid_stream])
