#!/usr/bin/env python3
"""The history plugin against a live asyncchatd, driven through its
interface (asyncchat/history.h) by tests/plugins/histdrive.c as chat
drives it: numbering from last_seq, stores and their completions in order,
replays LAST / SINCE / until byte for byte, persistence across a restart
and a kill -9, retention by count and by age, reloads that change `path`
or `replay`, and what a damaged, foreign, newer, read-only, full or locked
database does (the server goes on without history, and says so).  Every
wait is for a frame or a log line."""

import os
import re
import signal
import sqlite3
import subprocess
import time

import acproto
from harness import Server, Skip, main, mkdtemp, test_plugin
from metrics import metrics_url, scrape
from procs import wait_until

TEXT = acproto.TEXT_UTF8
WAIT = 10.0
DRIVE = test_plugin("histdrive")


class Drive:
    """A client of histdrive: commands, and the room frames they bring."""

    def __init__(self, srv, tr="tcp"):
        self.c = srv.client(tr)

    def close(self):
        self.c.close()

    def until_reply(self, timeout=WAIT):
        """Room frames (history's), then the text reply that ends them
        (without its " ms=" timing, which only benchmarks read)."""
        frames = []
        while True:
            f = self.c.recv_type("message", timeout)
            if "room" in f.header:
                frames.append(f)
            else:
                return frames, re.sub(r" ms=[0-9.]+$", "", f.text())

    def ask(self, text, timeout=WAIT):
        self.c.send_message(text.encode(), TEXT)
        return self.until_reply(timeout)

    def say(self, text):
        """A command answered by one line and no frames."""
        frames, reply = self.ask(text)
        if frames:
            raise AssertionError("%s: unexpected frames %r" % (text, frames))
        return reply

    def store(self, room, n, size=0, age=0):
        cmd = "store %s %d" % (room, n)
        if size:
            cmd += " size=%d" % size
        if age:
            cmd += " age=%d" % age
        return self.ask(cmd, timeout=60)

    def replay(self, room, mode, n, until=None):
        cmd = "replay %s %s %d" % (room, mode, n)
        if until is not None:
            cmd += " until=%d" % until
        return self.ask(cmd)


def seqs(frames):
    return [f.header["seq"] for f in frames]


def expect_replay(t, c, room, mode, n, want, truncated, what):
    """Replay and check the seqs that came and the reply that ended them."""
    got, reply = c.replay(room, mode, n)
    t.eq((seqs(got), reply), (want, "replayed status=ok n=%d truncated=%d"
                              % (len(want), truncated)), what)


def stored_ok(first, last, n=None, failed=0, refused=0):
    n = last - first + 1 if n is None else n
    return ("stored %d-%d ok=%d failed=%d refused=%d inorder=1 inside=0"
            % (first, last, n, failed, refused))


def history(path, **opts):
    sec = {"path": path}
    sec.update(opts)
    return sec


def hist_server(path, hist=None, server=None, start=True, **kw):
    opts = dict(hist or {})
    return Server(plugins=[DRIVE, "history"], server=server,
                  sections={"history": history(path, **opts)},
                  start=start, **kw)


def reload(srv, **kw):
    """Rewrite the config, SIGHUP, and wait for the reload."""
    start = len(srv.log())
    srv.write_config(**kw)
    srv.signal(signal.SIGHUP)
    m = srv.wait_log(r"configuration reloaded|reload failed", WAIT,
                     start=start)
    if m is None or "failed" in m.group(0):
        raise AssertionError("reload: " + srv.log()[start:])
    return start


def case_store_and_replay(t):
    d = mkdtemp("achist-")
    srv = hist_server(d + "/h.db", {"replay": 5, "max_replay": 8})
    with srv:
        c = Drive(srv)
        t.eq(c.say("durable"), "durable 1",
             "the backend makes chat wait for every store (both sync modes)")
        t.eq(c.say("status"), "status up", "status(): up (interface 2)")
        frames, reply = c.store("Dev", 10)
        t.eq(reply, stored_ok(1, 10), "ten stores complete once each, in "
             "order, never from within store()")
        t.eq(seqs(frames), list(range(1, 11)), "delivered after each "
             "completion, in order")
        sent = {f.header["seq"]: f.raw for f in frames}
        t.eq(c.say("last dev"), "last 10 Dev",
             "last_seq counts them; the name keeps the case first used")

        got, reply = c.replay("dev", "last", 4)
        t.eq((seqs(got), reply), ([7, 8, 9, 10],
             "replayed status=ok n=4 truncated=0"),
             "LAST 4: the last four, oldest first")
        t.ok(all(f.raw == sent[f.header["seq"]] for f in got),
             "byte for byte the frames first delivered")
        got, reply = c.replay("DEV", "last", 0)
        t.eq((seqs(got), reply), ([6, 7, 8, 9, 10],
             "replayed status=ok n=5 truncated=0"),
             "LAST 0: `replay` of them (5); the room in any case")
        got, reply = c.replay("dev", "last", 100)
        t.eq((seqs(got), reply), (list(range(3, 11)),
             "replayed status=ok n=8 truncated=1"),
             "LAST over max_replay: max_replay of them, truncated")
        got, reply = c.replay("dev", "since", 3)
        t.eq((seqs(got), reply), (list(range(4, 11)),
             "replayed status=ok n=7 truncated=0"),
             "SINCE 3: exactly the messages after 3")
        t.ok(all(f.raw == sent[f.header["seq"]] for f in got),
             "SINCE: byte for byte too")
        got, reply = c.replay("dev", "since", 3, until=7)
        t.eq((seqs(got), reply), ([4, 5, 6, 7],
             "replayed status=ok n=4 truncated=0"),
             "until: nothing after it (chat delivers those itself)")
        got, reply = c.replay("dev", "last", 3, until=5)
        t.eq(seqs(got), [3, 4, 5], "LAST with until: the last before it")
        got, reply = c.replay("dev", "since", 0)
        t.eq((seqs(got), reply), (list(range(3, 11)),
             "replayed status=ok n=8 truncated=1"),
             "SINCE 0 with 10 wanted: the newest max_replay, truncated")
        got, reply = c.replay("dev", "since", 10)
        t.eq((got, reply), ([], "replayed status=ok n=0 truncated=0"),
             "SINCE the last seq: nothing, not truncated")
        got, reply = c.replay("ops", "last", 5)
        t.eq((got, reply), ([], "replayed status=ok n=0 truncated=0"),
             "a room with no history: nothing")
        t.eq(c.say("last ops"), "last 0 -", "and last_seq 0, name untouched")

        frames, reply = c.store("dEV", 2)
        t.eq((reply, seqs(frames)), (stored_ok(11, 12), [11, 12]),
             "the same room in another case goes on numbering")
        t.eq(c.say("last Dev"), "last 12 Dev", "and keeps its first case")
        t.eq(c.say("replay bad/room last 1"), "replay refused",
             "a bad room name is refused")
        c.close()


def case_file_mode(t):
    """The database holds every room message: other local users may not
    read it, nor its WAL (SQLite alone would make them 0644)."""
    d = mkdtemp("achist-")
    path = d + "/h.db"
    with hist_server(path) as srv:
        c = Drive(srv)
        frames, reply = c.store("dev", 3)
        t.eq(reply, stored_ok(1, 3), "three stored")
        for f in (path, path + "-wal"):
            mode = os.stat(f).st_mode & 0o777
            t.ok(mode & 0o007 == 0 and mode & 0o600 == 0o600,
                 "%s: the server's to read and write, nobody else's"
                 % os.path.basename(f), "mode %o" % mode)
        t.ok("can be read by every local user" not in srv.log(),
             "and nothing to warn about")
        c.close()
    # a file made before, by hand or by SQLite alone, keeps its mode
    path = d + "/open.db"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    os.chmod(path, 0o644)
    with hist_server(path) as srv:
        t.ok(srv.wait_log(r"open\.db can be read by every local user "
                          r"\(mode 644\), and it holds every room "
                          r"message", WAIT),
             "a database others can read is warned about", srv.log()[-1500:])


def case_restart(t):
    d = mkdtemp("achist-")
    path = d + "/h.db"
    with hist_server(path) as srv:
        c = Drive(srv)
        frames, reply = c.store("lobby", 20, size=300)
        t.eq(reply, stored_ok(1, 20), "twenty stored")
        sent = [f.raw for f in frames]
        c.close()
    with hist_server(path) as srv:
        t.ok(srv.wait_log(r"h\.db: 1 room with history", WAIT) is not None,
             "the restarted server loads the room", srv.log()[-1000:])
        c = Drive(srv)
        t.eq(c.say("last LOBBY"), "last 20 lobby",
             "seq continues from the stored maximum")
        got, reply = c.replay("lobby", "since", 0)
        t.eq([f.raw for f in got], sent, "every message back, same bytes")
        frames, reply = c.store("lobby", 1)
        t.eq(seqs(frames), [21], "the next message gets the next seq")
        c.close()


def case_kill9(t):
    d = mkdtemp("achist-")
    gates = mkdtemp("acjobs-")
    path = d + "/h.db"
    # one worker, which the jobs module can hold: writes then wait
    srv = Server(plugins=[test_plugin("jobs"), DRIVE, "history"],
                 server={"worker_threads": 1},
                 sections={"jobs": {"gate_dir": gates},
                           "history": history(path)})
    with srv:
        c = Drive(srv)
        frames, reply = c.store("dev", 1000, size=200)
        t.eq(reply, stored_ok(1, 1000), "1000 stored (sync = normal)")
        sent = [f.raw for f in frames]
        t.eq(len(sent), 1000, "and delivered")
        # five more while no write can run: none may be delivered yet
        blocker = srv.client("tcp")
        blocker.send_message(b"free hold block", TEXT)
        t.ok(wait_until(lambda: os.path.exists(
            os.path.join(gates, "hold.running")), WAIT),
            "the only worker is held")
        c.c.send_message(b"store dev 5", TEXT)
        early, reply = c.ask("last dev")
        t.eq(reply, "last 1005 dev", "the five were handed to store()")
        srv.signal(signal.SIGKILL)
        srv.wait_exit(WAIT)
        early += [f for f in c.c.recv_until_closed(WAIT)
                  if f.type == "message" and "room" in f.header]
        t.eq(early, [], "kill -9 while they wait for the disk: none of "
             "them was delivered")
    with hist_server(path) as srv:
        c = Drive(srv)
        t.eq(c.say("last dev"), "last 1000 dev",
             "after kill -9: numbering continues from 1000")
        got, reply = c.replay("dev", "since", 0)
        t.eq(reply, "replayed status=ok n=1000 truncated=0",
             "every delivered message replayed")
        t.ok([f.raw for f in got] == sent, "with the same bytes")
        frames, reply = c.store("dev", 1)
        t.eq(seqs(frames), [1001], "the next message gets seq 1001")
        c.close()


def case_sync_full(t):
    d = mkdtemp("achist-")
    path = d + "/h.db"
    with hist_server(path, {"sync": "full"}) as srv:
        c = Drive(srv)
        t.eq(c.say("durable"), "durable 1", "sync = full: chat waits")
        frames, reply = c.store("r", 50)
        t.eq((reply, seqs(frames)), (stored_ok(1, 50), list(range(1, 51))),
             "completions in order, once each")
        c.close()
    with hist_server(path) as srv:
        c = Drive(srv)
        got, reply = c.replay("r", "since", 0)
        t.eq(seqs(got), list(range(1, 51)), "on disk after a restart")
        c.close()


def case_retention_count(t):
    d = mkdtemp("achist-")
    with hist_server(d + "/h.db", {"max_messages": 5}) as srv:
        c = Drive(srv)
        c.store("a", 12)
        c.store("b", 3)
        got, reply = c.replay("a", "since", 0)
        t.eq((seqs(got), reply), ([8, 9, 10, 11, 12],
             "replayed status=ok n=5 truncated=1"),
             "max_messages 5: the newest five kept; the older ones are "
             "truncated away")
        got, reply = c.replay("a", "last", 10)
        t.eq((seqs(got), reply), ([8, 9, 10, 11, 12],
             "replayed status=ok n=5 truncated=0"),
             "LAST 10 of a room that keeps 5: five, not truncated")
        got, _ = c.replay("b", "since", 0)
        t.eq(seqs(got), [1, 2, 3], "per room: another room keeps its own")
        t.eq(c.say("last a"), "last 12 a", "pruning never lowers the seq")
        c.close()


def case_retention_runs(t):
    """max_messages 40: the oldest leave the file a run at a time (1/16
    of max_messages, here 2), and no replay shows the run that waits for
    its trim: a client always sees exactly the newest 40."""
    d = mkdtemp("achist-")
    path = d + "/h.db"

    def on_disk():
        con = sqlite3.connect(path)
        try:
            return [r[0] for r in con.execute(
                "SELECT seq FROM messages WHERE room = 'a' ORDER BY seq")]
        finally:
            con.close()

    with hist_server(path, {"max_messages": 40}) as srv:
        c = Drive(srv)
        c.store("a", 101)
        kept = list(range(62, 102))
        expect_replay(t, c, "a", "since", 0, kept, 1,
                      "SINCE 0 after 101 messages: the newest 40, truncated")
        expect_replay(t, c, "a", "since", 61, kept, 0,
                      "SINCE 61: exactly the 40 after it, nothing missing")
        expect_replay(t, c, "a", "since", 60, kept, 1,
                      "SINCE 60: seq 61 is over max_messages, so truncated")
        expect_replay(t, c, "a", "last", 50, kept, 0, "LAST 50: the 40 kept")
        c.close()
    rows = on_disk()
    t.ok(40 <= len(rows) <= 42 and rows[-1] == 101,
         "the file holds max_messages and at most a run more "
         "(%d rows, %s..%s)" % (len(rows), rows[0], rows[-1]))
    with hist_server(path, {"max_messages": 40}) as srv:
        c = Drive(srv)
        frames, _ = c.store("a", 1)
        t.eq(seqs(frames), [102], "after a restart the next seq is 102")
        got, _ = c.replay("a", "since", 0)
        t.eq(seqs(got), list(range(63, 103)), "and the newest 40 replay")
        reload(srv, sections={"history": history(path, max_messages=10)})
        expect_replay(t, c, "a", "since", 0, list(range(93, 103)), 1,
                      "a reload to max_messages 10 shows the newest 10 at "
                      "once")
        c.store("a", 1)
        c.close()
    rows = on_disk()
    t.eq((rows[0], rows[-1]), (94, 103),
         "and the next write drops the rest from the file")


def case_retention_age(t):
    d = mkdtemp("achist-")
    path = d + "/h.db"
    with hist_server(path, {"max_age": "1h"}) as srv:
        c = Drive(srv)
        c.store("old", 5, age=7200)
        c.store("old", 3)
        c.store("Gone", 4, age=7200)
        got, _ = c.replay("old", "since", 0)
        t.eq(seqs(got), list(range(1, 9)), "stored, old and new")
        # a reload starts a new instance, whose first pass is at once
        reload(srv)
        t.ok(srv.wait_log(r"pruned 9 messages older than max_age", WAIT)
             is not None, "the first pass prunes the nine over 1h old",
             srv.log()[-1500:])
        got, reply = c.replay("old", "since", 0)
        t.eq((seqs(got), reply), ([6, 7, 8],
             "replayed status=ok n=3 truncated=1"),
             "they are gone; SINCE 0 says truncated")
        got, reply = c.replay("gone", "since", 0)
        t.eq((got, reply), ([], "replayed status=ok n=0 truncated=1"),
             "a room whose every message went: nothing to replay")
        c.close()
    with hist_server(path, {"max_age": "0"}) as srv:
        c = Drive(srv)
        t.eq(c.say("last old"), "last 8 old", "numbering survives it")
        t.eq(c.say("last gone"), "last 4 Gone", "after a restart, a room "
             "whose every message was pruned numbers on, in its case")
        frames, _ = c.store("gone", 1)
        t.eq(seqs(frames), [5], "its next message is 5, not 1")
        c.close()


def case_reload_replay(t):
    d = mkdtemp("achist-")
    path = d + "/h.db"
    srv = hist_server(path, {"replay": 3})
    with srv:
        c = Drive(srv)
        c.store("r", 10)
        got, _ = c.replay("r", "last", 0)
        t.eq(seqs(got), [8, 9, 10], "replay = 3")
        reload(srv, sections={"history": history(path, replay=6)})
        got, _ = c.replay("r", "last", 0)
        t.eq(seqs(got), [5, 6, 7, 8, 9, 10], "after SIGHUP, replay = 6")
        frames, reply = c.store("r", 2)
        t.eq(seqs(frames), [11, 12], "numbering goes on across the reload")
        c.close()


def case_reload_path(t):
    d = mkdtemp("achist-")
    a, b = d + "/a.db", d + "/b.db"
    srv = hist_server(a)
    with srv:
        c = Drive(srv)
        c.store("r", 10)
        start = reload(srv, sections={"history": history(b)})
        t.ok(srv.wait_log(r"b\.db: 0 rooms with history", WAIT, start=start)
             is not None, "the new instance opens the new path")
        t.eq(c.say("last r"), "last 10 r",
             "last_seq carries on across instances in one process")
        frames, reply = c.store("r", 5)
        t.eq((reply, seqs(frames)), (stored_ok(11, 15), [11, 12, 13, 14, 15]),
             "stored in the new file, numbered on")
        got, reply = c.replay("r", "since", 0)
        t.eq((seqs(got), reply), ([11, 12, 13, 14, 15],
             "replayed status=ok n=5 truncated=1"),
             "the new file has only its own, so SINCE 0 is truncated")
        reload(srv, sections={"history": history(a)})
        t.eq(c.say("last r"), "last 15 r",
             "back to the first file: the higher seq of memory wins")
        got, reply = c.replay("r", "since", 0)
        t.eq(seqs(got), list(range(1, 11)), "and its messages are there")
        frames, _ = c.store("r", 1)
        t.eq(seqs(frames), [16], "the next seq is 16")
        c.close()
    con = sqlite3.connect(b)
    t.eq([r[0] for r in con.execute("SELECT seq FROM messages ORDER BY seq")],
         [11, 12, 13, 14, 15], "b.db holds 11 to 15")
    con.close()


def load_v1(path):
    """tests/data/history-v1.sql made into a database file at path, and
    its frames by room key and seq."""
    with open(os.path.join(os.environ["AC_TOP_SRCDIR"],
                           "tests/data/history-v1.sql")) as f:
        sql = f.read()
    con = sqlite3.connect(path)
    con.executescript(sql)
    frames = {(r[0], r[1]): r[2] for r in
              con.execute("SELECT room, seq, frame FROM messages")}
    dev_ms = con.execute("SELECT min(time_ms) FROM messages "
                         "WHERE room = 'dev'").fetchone()[0]
    con.close()
    return frames, dev_ms


def case_migrate_v1(t):
    """A database of schema version 1, written by the plugin before the
    rooms table: migrated at start, nothing lost, numbering from it, and
    from then on a room whose messages all go keeps its seq."""
    d = mkdtemp("achist-")
    path = d + "/h.db"
    stored, dev_ms = load_v1(path)
    # pruned: "old" (stamped 50 years before "Dev"); kept: "Dev"
    days = int((time.time() * 1000 - dev_ms) / 86400000) + 365
    with hist_server(path, {"max_age": "%dd" % days}) as srv:
        t.ok(srv.wait_log(r"h\.db: 2 rooms with history", WAIT) is not None,
             "the version 1 file opens, with its two rooms",
             srv.log()[-1500:])
        c = Drive(srv)
        t.eq((c.say("last DEV"), c.say("last old")), ("last 7 Dev",
             "last 4 old"), "numbering and names from its messages")
        got, reply = c.replay("dev", "since", 0)
        t.eq((seqs(got), reply), (list(range(1, 8)),
             "replayed status=ok n=7 truncated=0"), "every message kept")
        t.ok(all(f.raw == stored[("dev", f.header["seq"])] for f in got),
             "byte for byte as the old version stored them")
        t.ok(srv.wait_log(r"pruned 4 messages older than max_age", WAIT)
             is not None, "the old room's messages are pruned",
             srv.log()[-1500:])
        frames, _ = c.store("dev", 1)
        t.eq(seqs(frames), [8], "Dev numbers on")
        c.close()
    con = sqlite3.connect(path)
    t.eq(con.execute("PRAGMA user_version").fetchone()[0], 2,
         "the file is at schema version 2")
    t.eq(con.execute("SELECT room, name, seq FROM rooms ORDER BY room")
         .fetchall(), [("dev", "Dev", 8), ("old", "old", 4)],
         "its rooms table: each room's name as first stored, highest seq")
    t.eq(con.execute("SELECT count(*) FROM messages WHERE room = 'old'")
         .fetchone()[0], 0, "no message of the old room is left")
    con.close()
    with hist_server(path, {"max_age": "0"}) as srv:
        c = Drive(srv)
        t.eq(c.say("last old"), "last 4 old", "after a restart the old "
             "room, all its messages gone, still numbers from 4")
        frames, _ = c.store("old", 1)
        t.eq(seqs(frames), [5], "its next message is 5")
        c.close()


def case_session_gone(t):
    # one worker, held by the jobs module: the replay job waits in the queue
    gates = mkdtemp("acjobs-")
    d = mkdtemp("achist-")
    srv = Server(plugins=[test_plugin("jobs"), DRIVE, "history"],
                 server={"worker_threads": 1},
                 sections={"jobs": {"gate_dir": gates},
                           "history": history(d + "/h.db")})
    with srv:
        c = Drive(srv)
        c.store("r", 3)
        blocker = srv.client("tcp")
        blocker.send_message(b"free hold block", TEXT)
        running = os.path.join(gates, "hold.running")
        t.ok(wait_until(lambda: os.path.exists(running), WAIT),
             "the only worker is busy")
        c.c.send_message(b"replay r since 0", TEXT)
        c.c.sync()
        c.close()
        t.ok(srv.wait_log(r"replay done session=gone n=0", WAIT)
             is not None, "a replay whose session closed first: nothing "
             "sent, the completion told the session is gone",
             srv.log()[-1500:])
        open(os.path.join(gates, "hold"), "w").close()
        t.ok(srv.wait_log(r"job hold done", WAIT) is not None,
             "the worker is free again")
        c = Drive(srv)
        got, reply = c.replay("r", "since", 0)
        t.eq(seqs(got), [1, 2, 3], "replays work after it")
        c.close()
        blocker.close()


def expect_broken(t, srv, pattern, what):
    """A server whose database cannot be used: running, without history."""
    t.ok(srv.wait_log(r"cannot use \S+: .*%s.*running WITHOUT history"
                      % pattern, WAIT) is not None,
         "%s: said at start, in one line" % what, srv.log()[-1500:])
    c = Drive(srv)
    t.eq(c.say("durable"), "durable 0", "%s: chat need not wait" % what)
    t.eq(c.say("status"), "status down: the server cannot use its history "
         "database", "%s: status() says it is down, in words for people "
         "(no path)" % what)
    frames, reply = c.store("r", 3)
    t.eq((seqs(frames), reply), ([1, 2, 3], "stored 1-3 ok=0 failed=0 "
         "refused=3 inorder=1 inside=0"),
         "%s: store() refuses, the messages are delivered, numbered" % what)
    t.eq(c.say("last r"), "last 3 r", "%s: last_seq counts the refused "
         "stores: their seqs were handed out" % what)
    t.eq(c.say("replay r since 0"), "replay refused",
         "%s: replay() refuses (chat sends history-end, truncated)" % what)
    c.close()
    t.eq(srv.poll(), None, "%s: the server runs on" % what)


def case_missing_dir(t):
    d = mkdtemp("achist-")
    with hist_server(d + "/nope/h.db",
                     server={"metrics_listen": "127.0.0.1:0"}) as srv:
        expect_broken(t, srv, r"the directory \S+/nope does not exist",
                      "a directory that does not exist")
        m = scrape(metrics_url(srv))
        t.eq(m.get("history_healthy", plugin="history"), 0.0,
             "history_healthy is 0")


def case_garbage_file(t):
    d = mkdtemp("achist-")
    path = d + "/h.db"
    with open(path, "wb") as f:
        f.write(os.urandom(8192))
    with hist_server(path) as srv:
        expect_broken(t, srv, r"file is not a database", "a garbage file")
    with open(path, "rb") as f:
        t.eq(len(f.read()), 8192, "the damaged file is left as it was")


def case_foreign_db(t):
    d = mkdtemp("achist-")
    path = d + "/h.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE accounts (id INTEGER)")
    con.commit()
    con.close()
    with hist_server(path) as srv:
        expect_broken(t, srv, r"not an asyncchat history database",
                      "another program's database")
    path2 = d + "/newer.db"
    with hist_server(path2) as srv:
        c = Drive(srv)
        c.store("r", 1)
        c.close()
    con = sqlite3.connect(path2)
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    with hist_server(path2) as srv:
        expect_broken(t, srv, r"schema version 99 is newer",
                      "a newer schema")


def mount_tmpfs(size):
    """A small tmpfs of our own (root only), or Skip."""
    if os.geteuid() != 0:
        raise Skip("needs root to mount a tmpfs")
    d = mkdtemp("achmnt-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size,
                        "tmpfs", d], capture_output=True)
    if r.returncode != 0:
        raise Skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
    return d


def umount(d):
    subprocess.run(["umount", "-l", d], capture_output=True)


def case_read_only(t):
    if os.geteuid() != 0:
        d = mkdtemp("achist-")
        path = d + "/h.db"
        with hist_server(path) as srv:
            Drive(srv).store("r", 1)
        os.chmod(path, 0o444)
        with hist_server(path) as srv:
            expect_broken(t, srv, r"read-only", "a read-only file")
        return
    d = mount_tmpfs("4m")
    try:
        path = d + "/h.db"
        with hist_server(path) as srv:
            Drive(srv).store("r", 1)
        r = subprocess.run(["mount", "-o", "remount,ro", d],
                           capture_output=True)
        if r.returncode != 0:
            raise Skip("cannot remount read-only: %s" % r.stderr.decode())
        with hist_server(path) as srv:
            expect_broken(t, srv, r"read-only|readonly",
                          "a file on a read-only file system")
        with hist_server(d + "/new.db") as srv:
            expect_broken(t, srv, r"cannot write in its directory",
                          "a new file in a directory it cannot write")
    finally:
        umount(d)


def case_disk_full(t):
    d = mount_tmpfs("1m")
    try:
        path = d + "/h.db"
        filler = d + "/filler"
        with hist_server(path, server={"metrics_listen": "127.0.0.1:0"}) \
                as srv:
            url = metrics_url(srv)
            c = Drive(srv)
            c.store("r", 1)
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while os.write(fd, b"\0" * 4096) > 0:
                    pass
            except OSError:
                pass
            os.close(fd)
            frames, reply = c.store("r", 20, size=16000)
            t.eq(seqs(frames), list(range(2, 22)),
                 "disk full: every message is still delivered, in order")
            t.ok(reply.startswith("stored 2-21 ") and "failed=0" not in reply
                 and "inorder=1 inside=0" in reply,
                 "and the failed stores complete, in order", reply)
            t.ok(srv.wait_log(r"storing messages: \S+h\.db: .*full", WAIT)
                 is not None, "the failure is logged, with the reason",
                 srv.log()[-1500:])
            m = scrape(url)
            t.ok(m.get("history_store_failures_total", plugin="history")
                 >= 1, "and counted")
            t.eq(m.get("history_healthy", plugin="history"), 0.0,
                 "history_healthy is 0")
            t.eq(c.say("status"), "status down: the server cannot write to "
                 "its history database", "status() says so")
            os.unlink(filler)
            frames, reply = c.store("r", 2)
            t.eq(reply, stored_ok(22, 23), "space again: stores work")
            t.eq(c.say("status"), "status up", "and status() is up again")
            t.ok(srv.wait_log(r"storing messages: working again", WAIT)
                 is not None, "and the log says so")
            got, _ = c.replay("r", "since", 21)
            t.eq(seqs(got), [22, 23], "what was stored replays")
            c.close()
    finally:
        umount(d)


def case_locked(t):
    d = mkdtemp("achist-")
    path = d + "/h.db"
    with hist_server(path) as srv:
        c = Drive(srv)
        c.store("r", 1)
        con = sqlite3.connect(path, isolation_level=None, timeout=0)
        con.execute("BEGIN EXCLUSIVE")
        frames, reply = c.store("r", 2)
        t.eq((seqs(frames), reply), ([2, 3], "stored 2-3 ok=0 failed=2 "
             "refused=0 inorder=1 inside=0"),
             "a database locked by another process: the stores fail "
             "after the busy timeout, the messages are delivered")
        t.eq(c.say("last r"), "last 3 r", "last_seq counts the failed "
             "stores: their seqs were handed out")
        t.ok(srv.wait_log(r"storing messages: .*locked", WAIT) is not None,
             "and the log says why", srv.log()[-1500:])
        t.eq(c.say("status"), "status down: the server cannot write to "
             "its history database", "status() says it is down")
        con.execute("ROLLBACK")
        con.close()
        frames, reply = c.store("r", 1)
        t.eq(reply, stored_ok(4, 4), "unlocked: stores work again")
        t.eq(c.say("status"), "status up", "status() is up again")
        c.close()


def case_key_changed(t):
    d = mkdtemp("achist-")
    path = d + "/h.db"
    with hist_server(path, key="first-key") as srv:
        c = Drive(srv)
        c.store("r", 5)
        c.close()
    with hist_server(path, key="second-key",
                     server={"metrics_listen": "127.0.0.1:0"}) as srv:
        url = metrics_url(srv)
        c = Drive(srv)
        got, reply = c.replay("r", "since", 0)
        t.eq((got, reply), ([], "replayed status=ok n=0 truncated=1"),
             "frames signed with the old key are not replayed; truncated")
        t.ok(srv.wait_log(r"5 stored messages of #r no longer verify", WAIT)
             is not None, "the log says why", srv.log()[-1500:])
        t.eq(scrape(url).get("history_replay_skipped_total",
                             plugin="history"), 5.0, "and they are counted")
        frames, _ = c.store("r", 1)
        t.eq(seqs(frames), [6], "numbering goes on")
        got, _ = c.replay("r", "last", 10)
        t.eq(seqs(got), [6], "new messages replay")
        c.close()


def case_tampered_rows(t):
    d = mkdtemp("achist-")
    path = d + "/h.db"
    with hist_server(path) as srv:
        c = Drive(srv)
        c.store("a", 2)
        c.store("b", 1)
        c.close()
    con = sqlite3.connect(path)
    # room a's message 1 copied in as room b's message 2, and a room
    # with a name no client could have used
    con.execute("INSERT INTO messages (room, name, seq, time_ms, frame) "
                "SELECT 'b', 'b', 2, time_ms, frame FROM messages "
                "WHERE room = 'a' AND seq = 1")
    con.execute("UPDATE rooms SET seq = 2 WHERE room = 'b'")
    con.execute("INSERT INTO messages (room, name, seq, time_ms, frame) "
                "VALUES ('bad room', 'bad room', 7, 0, x'00')")
    con.execute("INSERT INTO rooms (room, name, seq) "
                "VALUES ('bad room', 'bad room', 7)")
    con.commit()
    con.close()
    with hist_server(path) as srv:
        t.ok(srv.wait_log(r"1 room with a bad name or seq left out", WAIT)
             is not None, "a row with a bad room name is left out",
             srv.log()[-1500:])
        c = Drive(srv)
        got, reply = c.replay("b", "since", 0)
        t.eq((seqs(got), reply), ([1], "replayed status=ok n=1 truncated=1"),
             "a frame copied in from another room is not replayed as b's")
        got, _ = c.replay("a", "since", 0)
        t.eq(seqs(got), [1, 2], "room a is untouched")
        c.close()


def case_metrics(t):
    d = mkdtemp("achist-")
    with hist_server(d + "/h.db",
                     server={"metrics_listen": "127.0.0.1:0"}) as srv:
        url = metrics_url(srv)
        c = Drive(srv)
        c.store("r", 30)
        c.replay("r", "last", 10)
        c.replay("r", "since", 25)
        m = scrape(url)
        g = lambda name, **kw: m.get(name, plugin="history", **kw)
        t.eq(g("history_messages_stored_total"), 30.0, "messages stored")
        t.eq(g("history_store_failures_total"), 0.0, "no failures")
        t.eq(g("history_batch_messages_sum"), 30.0,
             "the batch histogram counts every message written")
        t.ok(g("history_batch_messages_count") >= 1 and
             g("history_write_seconds_count") ==
             g("history_batch_messages_count"),
             "one write latency per batch")
        t.eq(g("history_replays_total"), 2.0, "replays")
        t.eq(g("history_replayed_frames_total"), 15.0, "replayed frames")
        t.eq(g("history_healthy"), 1.0, "healthy")
        t.ok(g("history_db_bytes") > 0, "the database size")
        t.eq(g("history_pending_messages"), 0.0, "nothing waiting")
        c.close()


def case_checkpoint(t):
    d = mkdtemp("achist-")
    path = d + "/h.db"
    with hist_server(path, server={"metrics_listen": "127.0.0.1:0"}) as srv:
        url = metrics_url(srv)
        c = Drive(srv)
        g = lambda name: scrape(url).get(name, plugin="history")
        t.eq(g("history_checkpoints_total"), 0.0,
             "no checkpoint while the WAL is small")
        # about 3000 pages of 4 KiB: past the 1000 that start one
        frames, reply = c.store("big", 3000, size=4000)
        t.eq(reply, stored_ok(1, 3000), "3000 large messages stored")
        t.ok(wait_until(lambda: g("history_checkpoints_total") >= 1, WAIT),
             "a checkpoint job ran while the server runs")
        t.ok(os.path.getsize(path) > 3000 * 4000,
             "and folded the messages into the database file")
        t.eq(g("history_store_failures_total"), 0.0,
             "no write failed beside it")
        t.ok(g("history_checkpoint_waits_total") >= 0,
             "the checkpoints between two writes are counted")
        # the WAL is started over once copied: more messages do not
        # make it grow past what the first burst took
        wal = os.path.getsize(path + "-wal")
        for i in range(3):
            frames, reply = c.store("big", 3000, size=4000)
            t.eq(reply, stored_ok(3001 + 3000 * i, 6000 + 3000 * i),
                 "3000 more stored")
            t.ok(wait_until(lambda: g("history_checkpoints_total") >= 2 + i,
                            WAIT), "checkpointed again")
        t.ok(os.path.getsize(path + "-wal") <= 2 * wal,
             "the WAL stays bounded (%d bytes after the first burst, %d "
             "after four)" % (wal, os.path.getsize(path + "-wal")))
        got, reply = c.replay("big", "last", 5)
        t.eq(seqs(got), [11996, 11997, 11998, 11999, 12000],
             "the newest replayed")
        c.close()


def case_options(t):
    d = mkdtemp("achist-")
    bad = [
        ({"colour": "red"}, r"line \d+: unknown option 'colour'"),
        ({"path": "rel/h.db"}, r"path: bad value 'rel/h.db' \(expected an "
         r"absolute file path\)"),
        ({"replay": "60", "max_replay": "50"},
         r"replay \(60\) is more than max_replay \(50\)"),
        ({"max_age": "3w"}, r"max_age: bad value '3w'"),
        ({"max_age": "-1d"}, r"max_age: bad value"),
        ({"sync": "fast"}, r"sync: bad value 'fast' \(expected full or "
         r"normal\)"),
        ({"max_replay": "0"}, r"max_replay: bad value '0'"),
    ]
    for opts, pattern in bad:
        sec = {"path": d + "/h.db"}
        sec.update(opts)
        srv = Server(plugins=[DRIVE, "history"], sections={"history": sec},
                     start=False)
        rc, out = srv.check()
        t.ok(rc != 0 and re.search(pattern, out) is not None,
             "refused, saying why: %r" % (opts,), out[-800:])
    good = {"path": d + "/h.db", "replay": "0", "max_replay": "100000",
            "max_messages": "0", "max_age": "86400", "sync": "normal"}
    srv = Server(plugins=[DRIVE, "history"], sections={"history": good},
                 start=False)
    rc, out = srv.check()
    t.eq(rc, 0, "every key at an edge of its range is taken", out[-800:])


if __name__ == "__main__":
    main([case_store_and_replay, case_file_mode, case_restart, case_kill9,
          case_sync_full, case_retention_count, case_retention_runs,
          case_retention_age, case_reload_replay,
          case_reload_path, case_migrate_v1, case_session_gone, case_missing_dir,
          case_garbage_file, case_foreign_db, case_read_only,
          case_disk_full, case_locked, case_key_changed,
          case_tampered_rows, case_metrics, case_checkpoint,
          case_options])
