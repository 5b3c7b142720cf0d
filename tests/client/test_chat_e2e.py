#!/usr/bin/env python3
"""asyncchat against asyncchatd with the chat plugin (docs/CHAT.md), end to
end: the terminal client through a pty talks with other clients by name
(/nick, /join, /msg, /who, /rooms, errors, quit), a second asyncchat in
file mode with --room and --json; with a history backend (the test module
memhistory), history on join and /history, and --reconnect after the
connection is cut (through a proxy the test cuts), which replays exactly
what was missed, each message shown once. The other people are
tests/lib/chat.py's client. TAP on stdout."""

import json
import os
import re
import socket
import threading

from chat import TEXT, connect, is_event, is_said
from harness import (CLIENT, SERVER, Server, main, mkdtemp, skip_all,
                     test_plugin)
from procs import run
from term import Pty, plain

T = rb"\[\d\d:\d\d:\d\d\] "
WAIT = 15


def chat_server(history=False):
    """asyncchatd with chat (and the memhistory backend)."""
    plugins, sections = ["chat"], {"chat": {}}
    if history:
        plugins.append(test_plugin("memhistory"))
        sections["memhistory"] = {}
    return Server(plugins=plugins, sections=sections)


def peer(srv, nick, rooms=()):
    """Another participant over unix, joined by its session_ack; its
    handshake's frames are read as any others."""
    return connect(srv, "unix", nick=nick,
                   rooms=[{"room": r} for r in rooms] or None, sync=False)


def shows(t, p, pattern, mark, name):
    m = p.expect(pattern, WAIT, mark)
    t.ok(m is not None, name, plain(p.out[mark:]))
    return m


class Proxy:
    """A TCP relay to a server's port that the test can cut, as a network
    would: cut() closes every connection; new ones are still relayed."""

    def __init__(self, port):
        self.target = port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.socks = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.socks += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pipe, args=(x, y),
                                 daemon=True).start()

    def _pipe(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.lsock.close()
        self.cut()


def case_chat(t):
    """Two people and a file: every command the terminal client types,
    what the others get, and what it shows."""
    with chat_server() as srv:
        p = Pty([CLIENT, "--nick", "alice", "--room", "dev", "tcp",
                 "interactive", "127.0.0.1", str(srv.port)])
        try:
            shows(t, p, rb"\[alice #dev\]> ", 0, "--nick and --room: the "
                  "prompt shows the nick and room the server gave")
            mark = len(p.out)
            carol = peer(srv, "carol", ["dev"])
            shows(t, p, T + rb"\* carol joined #dev\r?\n", mark,
                  "another client joining is a line")
            mark = len(p.out)
            carol.send_message("hi alice", TEXT, extra={"room": "dev"})
            shows(t, p, T + rb"#dev <carol> hi alice\r?\n", mark,
                  "its message shows its nick (and the room: alice is in "
                  "#lobby too)")
            p.type("hi carol\r")
            f = carol.wait_for(is_said("hi carol", room="dev"), "hi carol")
            t.eq(f.header.get("from"), "alice", "what alice types reaches "
                 "carol from alice, in #dev")
            shows(t, p, T + rb"#dev <alice \(me\)> hi carol\r?\n", mark,
                  "and alice sees it marked as hers")

            mark = len(p.out)
            p.type("/nick alicia\r")
            carol.wait_for(is_event("nick", old="alice", nick="alicia"),
                           "the nick event")
            t.ok(True, "/nick: the others get the nick event")
            shows(t, p, T + rb"\* alice is now alicia\r?\n", mark,
                  "/nick: alice sees it as a line")
            shows(t, p, rb"\[alicia #dev\]> ", mark, "/nick: the prompt "
                  "shows the new nick")
            mark = len(p.out)
            carol.send_message("still there?", TEXT, extra={"room": "dev"})
            p.type("/join #ops\r")
            shows(t, p, T + rb"\* alicia joined #ops\r?\n", mark,
                  "/join #ops: joined")
            shows(t, p, rb"\[alicia #ops\]> ", mark, "/join: the prompt "
                  "shows the new current room")
            p.type("/part\r")
            shows(t, p, T + rb"\* alicia left #ops\r?\n", mark,
                  "/part: the current room left")
            shows(t, p, rb"\[alicia #dev\]> ", mark,
                  "and the room before is current again")
            mark = len(p.out)
            p.type("/who\r")
            shows(t, p, T + rb"\* #dev: alicia, carol\r?\n", mark,
                  "/who: the members of the current room")
            p.type("/rooms\r")
            shows(t, p, T + rb"\* rooms: [^\r\n]*#dev \(2\)", mark,
                  "/rooms: the rooms with their members")
            p.type("/msg carol psst\r")
            f = carol.wait_for(is_said("psst"), "the direct message")
            t.eq((f.header.get("from"), f.header.get("to")),
                 ("alicia", "carol"), "/msg: carol gets it, from alicia")
            shows(t, p, T + rb"@carol <alicia \(me\)> psst\r?\n", mark,
                  "/msg: alice sees it as a direct message")
            mark = len(p.out)
            carol.send_message("psst back", TEXT, extra={"to": "alicia"})
            shows(t, p, T + rb"@carol <carol> psst back\r?\n", mark,
                  "a direct message to alice shows whom it is from")
            mark = len(p.out)
            p.type("/join b@d\r")
            shows(t, p, T + rb"! /join: bad_room[^\r\n]*\r?\n", mark,
                  "an error reply is shown")
            p.type("/history\r")
            shows(t, p, T + rb"! /history: no_history[^\r\n]*\r?\n", mark,
                  "/history without a history backend: its error shown")
            mark = len(p.out)
            p.type("/help\r")
            shows(t, p, T + rb"[^\r\n]*/join[^\r\n]*/msg", mark,
                  "/help: the server's help is shown")
            p.type("//slash\r")
            carol.wait_for(is_said("/slash", room="dev"), "/slash")
            t.ok(True, "//slash reaches the room as /slash")

            mark = len(p.out)
            rc, out, err = file_mode(srv, ["from bob"], "--nick", "bob",
                                     "--room", "dev", "--json")
            t.eq(rc, 0, "a second asyncchat, in file mode, ran", err)
            shows(t, p, T + rb"#dev <bob> from bob\r?\n", mark,
                  "its line shows its nick")
            objs = [json.loads(l) for l in out.splitlines()]
            mine = [o for o in objs if o.get("content") == "from bob"]
            t.ok(len(mine) == 1 and mine[0].get("from") == "bob" and
                 mine[0].get("room") == "dev" and
                 isinstance(mine[0].get("seq"), int) and
                 mine[0].get("own") is True,
                 "file --json: from, room, seq and own", out)
            t.ok(any(o.get("event") == "join" and o.get("nick") == "bob" and
                     o.get("room") == "dev" for o in objs) and
                 any(o.get("event") == "names" and o.get("room") == "dev"
                     and "bob" in [n.get("nick") for n in o.get("names")]
                     for o in objs),
                 "file --json: its events with their members", out)
            shows(t, p, T + rb"\* bob quit[^\r\n]*\r?\n", mark,
                  "and its leaving is a quit line")

            mark = len(p.out)
            carol.close()
            shows(t, p, T + rb"\* carol quit \([^\r\n]*\)\r?\n", mark,
                  "a client that closes: a quit line with the reason")
            p.type("/quit\r")
            t.eq(p.wait(WAIT), 0, "/quit leaves with status 0",
                 plain(p.out[mark:]))
        finally:
            p.close()


def file_mode(srv, lines, *opts):
    path = os.path.join(mkdtemp("acchat."), "in.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return run([CLIENT] + list(opts) + ["unix", "file", path,
                                        srv.unix_path], timeout=60)


def case_history(t):
    """With a history backend: the replay on joining, with the time each
    was said, the end of it, and /history."""
    with chat_server(history=True) as srv:
        carol = peer(srv, "carol")
        for i in range(3):
            carol.send_message("before %d" % i, TEXT)
        carol.sync()
        p = Pty([CLIENT, "--nick", "alice", "unix", "interactive",
                 srv.unix_path])
        try:
            shows(t, p, T + rb"<carol> before 0\r?\n[\s\S]*<carol> before 2"
                  rb"\r?\n[\s\S]*\* end of #lobby history: 3 messages", 0,
                  "joining: the room's history, then the end of it")
            mark = len(p.out)
            p.type("/history 2\r")
            shows(t, p, T + rb"<carol> before 1\r?\n[\s\S]*<carol> before 2"
                  rb"\r?\n[\s\S]*\* end of #lobby history: 2 messages", mark,
                  "/history 2: the last two again, then the end")
            t.ok(b"before 0" not in p.out[mark:], "and only those",
                 plain(p.out[mark:]))
        finally:
            p.close()


def case_history_unavailable(t):
    """With the history plugin and a database it cannot use: the terminal
    client shows what the server says, on joining and on /history."""
    path = os.path.join(mkdtemp("accli-"), "h.db")
    with open(path, "wb") as f:
        f.write(os.urandom(8192))
    with Server(plugins=["chat", "history"],
                sections={"chat": {}, "history": {"path": path}}) as srv:
        p = Pty([CLIENT, "--nick", "alice", "unix", "interactive",
                 srv.unix_path])
        try:
            shows(t, p, T + rb"\* end of #lobby history: 0 messages; "
                  rb"unavailable: the server cannot use its history "
                  rb"database\r?\n", 0, "joining: the end of the replay says "
                  "history is unavailable, and why")
            mark = len(p.out)
            p.type("/history\r")
            shows(t, p, rb"history_unavailable: the server cannot use its "
                  rb"history database", mark, "/history: the error, and why")
        finally:
            p.close()


def case_reconnect(t):
    """--reconnect: the connection is cut; messages are said meanwhile; the
    client comes back with its nick, in its rooms, the current one still
    current, and shows exactly what it missed, each message once."""
    with chat_server(history=True) as srv:
        proxy = Proxy(srv.port)
        p = Pty([CLIENT, "--reconnect", "--nick", "alice", "--room", "dev",
                 "tcp", "interactive", "127.0.0.1", str(proxy.port)])
        try:
            shows(t, p, rb"\[alice #dev\]> ", 0, "connected through the "
                  "proxy")
            carol = peer(srv, "carol", ["dev"])
            carol.wait_for(is_event("history-end", room="dev"), "carol in")
            mark = len(p.out)
            for room, text in (("dev", "d1"), ("lobby", "l1"),
                               ("dev", "d2")):
                carol.send_message(text, TEXT, extra={"room": room})
            shows(t, p, T + rb"#dev <carol> d2\r?\n", mark, "messages seen")

            mark = len(p.out)
            logmark = len(srv.log())
            proxy.cut()
            carol.wait_for(is_event("quit", nick="alice"), "alice's quit")
            for room, text in (("dev", "d3 missed"), ("lobby", "l2 missed"),
                               ("dev", "d4 missed")):
                carol.send_message(text, TEXT, extra={"room": room})
            carol.sync()
            shows(t, p, rb"; reconnecting", mark, "the cut is said")
            shows(t, p, rb"Reconnected: session", mark, "and mended")
            shows(t, p, T + rb"#dev <carol> d4 missed\r?\n", mark,
                  "what was missed in #dev is shown")
            shows(t, p, T + rb"#lobby <carol> l2 missed\r?\n", mark,
                  "and in #lobby")
            shows(t, p, rb"\[alice #dev\]> ", mark, "with the same nick, "
                  "#dev still current")
            t.ok(srv.wait_log(r"memhistory: replay dev mode=since sent=2",
                              WAIT, logmark),
                 "the server replayed #dev since the last seq seen: 2",
                 srv.log())
            t.ok(srv.wait_log(r"memhistory: replay lobby mode=since sent=1",
                              WAIT, logmark),
                 "and #lobby since its last seq: 1", srv.log())
            out = plain(p.out)
            for line in ("#dev <carol> d1", "#lobby <carol> l1",
                         "#dev <carol> d2", "#dev <carol> d3 missed",
                         "#lobby <carol> l2 missed", "#dev <carol> d4 missed"):
                t.eq(out.count(line), 1, "%r shown once" % line, out)
            p.type("back\r")
            f = carol.wait_for(is_said("back"), "back")
            t.eq((f.header.get("from"), f.header.get("room")),
                 ("alice", "dev"), "a line typed after it goes to #dev from "
                 "alice")
            t.ok(re.search(r"\n[^\n]*! ", out) is None,
                 "no error on the way", out)

            # The default room current when the connection goes: the
            # session_ack lists it last; the server, which joins it first,
            # still makes it current there, so /history (sent as typed)
            # replays the room the prompt shows.
            mark = len(p.out)
            p.type("/join lobby\r")
            shows(t, p, rb"\[alice #lobby\]> ", mark, "/join of a room we "
                  "are in makes it current")
            mark = len(p.out)
            proxy.cut()
            shows(t, p, rb"Reconnected: session", mark, "cut again, mended")
            shows(t, p, rb"\[alice #lobby\]> ", mark, "#lobby still current")
            carol.send_message("l3", TEXT, extra={"room": "lobby"})
            shows(t, p, T + rb"#lobby <carol> l3\r?\n", mark, "a new one")
            mark = len(p.out)
            p.type("/history 1\r")
            shows(t, p, T + rb"\* end of #lobby history: 1 message\r?\n",
                  mark, "/history replays the room the prompt shows")
            t.ok(b"#lobby <carol> l3" in p.out[mark:], "the message again",
                 plain(p.out[mark:]))
        finally:
            p.close()
            proxy.close()


if __name__ == "__main__":
    if not os.path.exists(CLIENT) or not os.path.exists(SERVER):
        skip_all("programs not built")
    main([case_chat, case_history, case_history_unavailable,
          case_reconnect])
