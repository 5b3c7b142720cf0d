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

from chat import connect, error_of, events, is_said, messages, reply
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


def case_plain_join(t):
    """A session whose session_ack knew nothing of chat (the original
    client's) joins bare: the join event and the reply, no names and no
    replay, which would overrun its 1024-byte reads; SINCE and /history
    replay, since it asked."""
    with history_server() as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        until_ends(a, a.welcome, 2)
        for i in range(3):
            a.cmd("m%d" % i)
        p = connect(srv)
        got = p.cmd("/join dev")
        t.eq(kinds(got), ["join", "reply"], "/join: the join event and the "
             "reply only")
        t.ok(sum(len(f.raw) for f in got) <= 1024, "%d bytes: one read of "
             "the original client" % sum(len(f.raw) for f in got))
        got = run(p, "/join dev 1")
        t.eq(kinds(got), ["reply", "msg:m1", "msg:m2", "history-end"],
             "/join dev SINCE: the replay it asked for")
        t.eq(srv.log().count("memhistory: replay dev mode=last"), 1,
             "the bare /join asked for none (the one there is alice's: "
             "the backend's queue is serial, so p's would have ended by "
             "now)")
        got = run(p, "/history 1")
        t.eq(kinds(got), ["reply", "msg:m2", "history-end"], "/history 1")


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
        t.ok(srv.wait_log("slower than 4096 messages: no longer held", 10),
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


main([case_replay_on_join, case_room_lives_on, case_plain_join,
      case_max_replay,
      case_live_held_during_replay, case_durable, case_hold_overflow,
      case_reload_while_storing, case_sqlite, case_database_unusable])
