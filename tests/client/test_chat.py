#!/usr/bin/env python3
"""asyncchat with a chat server (CHAT.md), against the fake chat server of
tests/lib/fakechat.py over TCP: interactive mode through a pty (names,
own messages marked, the room when in several, events as lines, replies,
/nick /join /part /who /rooms /msg /help and // as typed, the prompt with
nick and room, another client seen by name); --nick and --room in the
session_ack; --reconnect rejoining each room with its last seq and showing
each message once; history replay and /history; Tab completion and the
prompt on a tmux screen; hostile nicks, rooms, reasons and content shown
escaped; file mode with --room and --json; and, against asyncchatd's
broadcast, a peer's "from" and "event" members believed by no one.
TAP on stdout."""

import calendar
import json
import os
import re
import time

import acproto
import harness
from fakechat import TEXT, FakeChat, FakeChatServer, now_rfc3339
from harness import CLIENT, SERVER, main, mkdtemp, skip_all
from procs import free_port, run
from term import Pty, Tmux, have_tmux, plain

T = rb"\[\d\d:\d\d:\d\d\] "          # the clock of a chat line
WAIT = 10


def interactive(srv, *opts):
    """The client in interactive mode on a pty, against srv."""
    return Pty([CLIENT] + list(opts) + ["tcp", "interactive", "127.0.0.1",
                                        str(srv.port)])


def file_mode(srv, lines, *opts):
    """The client in file mode with these lines; (rc, out, err)."""
    path = os.path.join(mkdtemp("acchat."), "in.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return run([CLIENT] + list(opts) + ["tcp", "file", path, "127.0.0.1",
                                        str(srv.port)], timeout=60)


def got(chat, s, text):
    """The frame session s sent with this text, once it has arrived."""
    return chat.wait(lambda: next((f for f in s.messages()
                                   if f.text() == text), None),
                     WAIT, "%r from the client" % text)


def typed(t, p, chat, s, line, want, name):
    """Type a line; check what the fake received for it (text, room)."""
    p.type(line + "\r")
    f = got(chat, s, want[0])
    t.eq((f.text(), f.header.get("room")), want, name)
    return f


def shows(t, p, pattern, mark, name, timeout=WAIT):
    """Check that the pty shows pattern after mark."""
    m = p.expect(pattern, timeout, mark)
    t.ok(m is not None, name, plain(p.out[mark:]))
    return m


def clock(stamp):
    """How the client shows a chat server's time stamp: local time, with
    the date when it is not today's."""
    t = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    lt, now = time.localtime(t), time.localtime()
    if (lt.tm_year, lt.tm_yday) != (now.tm_year, now.tm_yday):
        return time.strftime("%Y-%m-%d %H:%M:%S", lt)
    return time.strftime("%H:%M:%S", lt)


def case_session(t):
    """A session through every command, as a person types it."""
    chat = FakeChat()
    with FakeChatServer(chat) as srv:
        p = interactive(srv, "--nick", "alice")
        try:
            s = chat.wait_session(1)
            shows(t, p, rb"\[alice #lobby\]> ", 0, "the prompt shows the "
                  "nick and the current room")
            mark = len(p.out)
            bob = chat.ghost("lobby", "bob")
            shows(t, p, T + rb"\* bob joined #lobby\r?\n", mark,
                  "a join event is a line: * bob joined #lobby")
            mark = len(p.out)
            chat.say("lobby", bob, "hello alice")
            shows(t, p, T + rb"<bob> hello alice\r?\n", mark,
                  "a message shows its sender's nick: <bob> hello alice")

            mark = len(p.out)
            typed(t, p, chat, s, "hi bob", ("hi bob", "lobby"),
                  "a typed line goes to the current room")
            shows(t, p, T + rb"<alice \(me\)> hi bob\r?\n", mark,
                  "our own message comes back marked (me)")

            mark = len(p.out)
            typed(t, p, chat, s, "/nick alicia", ("/nick alicia", None),
                  "/nick is sent as typed")
            shows(t, p, T + rb"\* alice is now alicia\r?\n", mark,
                  "the nick event is a line")
            shows(t, p, rb"\[alicia #lobby\]> ", mark,
                  "and the prompt shows the new nick")
            t.ok(b"nick: ok" not in p.out[mark:], "the reply to a /nick "
                 "that worked stays quiet (the event said it)",
                 plain(p.out[mark:]))

            mark = len(p.out)
            typed(t, p, chat, s, "/join #dev", ("/join dev", None),
                  "/join #dev is sent without the #")
            shows(t, p, T + rb"\* alicia joined #dev\r?\n", mark,
                  "our join is a line")
            shows(t, p, T + rb"\* #dev: alicia\r?\n", mark,
                  "the names that follow it are a list")
            shows(t, p, rb"\[alicia #dev\]> ", mark,
                  "the room joined is now the current room")
            mark = len(p.out)
            typed(t, p, chat, s, "in dev", ("in dev", "dev"),
                  "a typed line goes to the new current room")
            chat.say("lobby", bob, "meanwhile")
            shows(t, p, T + rb"#lobby <bob> meanwhile\r?\n", mark,
                  "in two rooms, a message shows its room")
            shows(t, p, T + rb"#dev <alicia \(me\)> in dev\r?\n", mark,
                  "ours too")

            mark = len(p.out)
            typed(t, p, chat, s, "/part", ("/part dev", None),
                  "/part with no room names the current room")
            shows(t, p, T + rb"\* alicia left #dev\r?\n", mark,
                  "the part event is a line")
            shows(t, p, rb"\[alicia #lobby\]> ", mark,
                  "and the room before becomes current again")

            mark = len(p.out)
            typed(t, p, chat, s, "/who", ("/who lobby", None),
                  "/who with no room names the current room")
            shows(t, p, T + rb"\* #lobby: alicia, bob\r?\n", mark,
                  "/who shows the room's members")
            mark = len(p.out)
            typed(t, p, chat, s, "/rooms", ("/rooms", None),
                  "/rooms is sent as typed")
            shows(t, p, T + rb"\* rooms: #lobby \(2\)\r?\n", mark,
                  "the rooms event is a line")

            mark = len(p.out)
            typed(t, p, chat, s, "/msg bob psst", ("/msg bob psst", None),
                  "/msg is sent as typed")
            shows(t, p, T + rb"@bob <alicia \(me\)> psst\r?\n", mark,
                  "our direct message shows whom it went to")
            mark = len(p.out)
            chat.whisper(bob, "alicia", "psst yourself")
            shows(t, p, T + rb"@bob <bob> psst yourself\r?\n", mark,
                  "a direct message to us shows whom it came from")

            mark = len(p.out)
            typed(t, p, chat, s, "/help", ("/help", None),
                  "/help is sent to the server")
            shows(t, p, T + rb"commands: /join /part", mark,
                  "its reply is shown")
            mark = len(p.out)
            typed(t, p, chat, s, "/join b@d", ("/join b@d", None),
                  "a bad room goes to the server, which judges")
            shows(t, p, T + rb"! join: bad_room\r?\n", mark,
                  "an error reply is shown, marked !")
            mark = len(p.out)
            typed(t, p, chat, s, "/frob", ("/frob", None),
                  "an unknown command goes to the server")
            shows(t, p, T + rb"! frob: unknown_command\r?\n", mark,
                  "and its error is shown")
            typed(t, p, chat, s, "//not a command", ("//not a command",
                                                     "lobby"),
                  "// goes as typed, a message to the room (the server "
                  "takes one / off)")

            # Another client, by name; then it leaves.
            mark = len(p.out)
            rc, out, err = file_mode(srv, ["hi from carol"], "--nick",
                                     "carol")
            t.eq(rc, 0, "another client (file mode) ran", err)
            shows(t, p, T + rb"<carol> hi from carol\r?\n", mark,
                  "another client's message shows its nick")
            shows(t, p, T + rb"\* carol quit \(client-disconnect\)\r?\n",
                  mark, "and its quit event, with the reason")

            mark = len(p.out)
            p.type("/quit\r")
            t.eq(p.wait(WAIT), 0, "/quit leaves with status 0",
                 plain(p.out[mark:]))
            t.ok(chat.wait(lambda: any(f.type == "disconnect"
                                       for f in s.frames), WAIT,
                           "disconnect"),
                 "with a disconnect frame")
            t.ok(not any(f.text().startswith("/quit")
                         for f in s.messages()),
                 "/quit is the client's own: not sent as text")
        finally:
            p.close()


def case_handshake(t):
    """--nick and --room in the session_ack; none without them."""
    chat = FakeChat()
    with FakeChatServer(chat) as srv:
        p = interactive(srv, "--nick", "alice", "--room", "dev", "--room",
                        "#ops")
        try:
            s = chat.wait_session(1)
            h = s.ack.header
            t.eq(h.get("nick"), "alice", "--nick: the session_ack has "
                 "\"nick\"")
            t.eq(h.get("rooms"), [{"room": "dev"}, {"room": "ops"}],
                 "--room (twice, # or not): \"rooms\" in the order given, "
                 "without since")
            shows(t, p, rb"\[alice #ops\]> ", 0,
                  "the last --room is the current room")
            typed(t, p, chat, s, "to ops", ("to ops", "ops"),
                  "and a typed line goes there")
        finally:
            p.close()

        chat.ghost("lobby", "alice")
        p = interactive(srv, "--nick", "alice")
        try:
            s = chat.wait_session(2)
            shows(t, p, T + rb"! nick: nick_in_use\r?\n", 0,
                  "a nick in use: the server's error is shown")
            shows(t, p, (r"\[guest-%s #lobby\]> " % s.sid[:8]).encode(), 0,
                  "and the prompt shows the nick the server gave")
        finally:
            p.close()

        p = interactive(srv)
        try:
            s = chat.wait_session(3)
            t.eq(sorted(s.ack.header), ["content_type", "session_id",
                                        "type"],
                 "without --nick and --room the session_ack is as ever")
            shows(t, p, (r"\[guest-%s #lobby\]> " % s.sid[:8]).encode(), 0,
                  "the prompt shows the nick the server gave")
        finally:
            p.close()

    for opts, what in ((["--nick", "two words"], "--nick two words"),
                       (["--nick", "#hash"], "--nick #hash"),
                       (["--nick", "x" * 33], "a 33-character --nick"),
                       (["--room", "b@d"], "--room b@d"),
                       (["--room", "r" * 65], "a 65-character --room"),
                       (["--reconnect"], "--reconnect in file mode")):
        rc, out, err = run([CLIENT] + opts + ["tcp", "file", "-",
                                              "127.0.0.1", "9"],
                           stdin_data=b"", timeout=30)
        t.ok(rc == 2 and "asyncchat: " in err and "--" in err,
             "%s is a usage error, said before connecting" % what,
             "rc %s: %s" % (rc, err))

    port = free_port()
    p = Pty([CLIENT, "--reconnect", "tcp", "interactive", "127.0.0.1",
             str(port)])
    try:
        st = p.wait(WAIT)
        t.ok(st == 1 and b"reconnecting" not in p.out,
             "--reconnect: a first connection that fails ends the client "
             "(status %s)" % st, plain(p.out))
    finally:
        p.close()


def case_reconnect(t):
    """--reconnect: the new session_ack carries the nick and each room
    with its last seq, the current room last; a server that replays too
    much shows nothing twice."""
    chat = FakeChat()
    with FakeChatServer(chat) as srv:
        p = interactive(srv, "--reconnect", "--nick", "alice", "--room",
                        "dev")
        try:
            s1 = chat.wait_session(1)
            shows(t, p, rb"\[alice #dev\]> ", 0, "connected, in #dev")
            bob = chat.ghost("lobby", "bob")
            chat.ghost("dev", bob)
            mark = len(p.out)
            chat.say("lobby", bob, "l1")
            chat.say("dev", bob, "d1")
            chat.say("dev", bob, "d2")
            shows(t, p, T + rb"#dev <bob> d2\r?\n", mark, "messages seen")
            lobby_seq, dev_seq = chat.room("lobby").seq, chat.room("dev").seq

            srv.accepting = False
            mark = len(p.out)
            chat.drop_all()
            shows(t, p, rb"connection lost[^\r\n]*; reconnecting", mark,
                  "a lost connection is said, and retried")
            chat.say("lobby", bob, "l2 while away")
            chat.say("dev", bob, "d3 while away")
            chat.ignore_since = True    # replays all: the client sorts it
            srv.accepting = True
            s2 = chat.wait_session(2, timeout=60)
            t.eq(s2.ack.header.get("nick"), "alice",
                 "the new session_ack asks for our nick")
            t.eq(s2.ack.header.get("rooms"),
                 [{"room": "lobby", "since": lobby_seq},
                  {"room": "dev", "since": dev_seq}],
                 "and every room with the last seq seen, the current last")
            shows(t, p, rb"Reconnected: session " + s2.sid.encode(), mark,
                  "the new session is said")
            shows(t, p, T + rb"#dev <bob> d3 while away\r?\n", mark,
                  "a message missed in #dev is shown")
            shows(t, p, T + rb"#lobby <bob> l2 while away\r?\n", mark,
                  "and one missed in #lobby")
            shows(t, p, rb"\[alice #dev\]> ", mark,
                  "the prompt still shows #dev")
            typed(t, p, chat, s2, "back", ("back", "dev"),
                  "and a typed line still goes there")
            out = plain(p.out)
            for line in ("#lobby <bob> l1", "#dev <bob> d1", "#dev <bob> d2",
                         "#dev <bob> d3 while away",
                         "#lobby <bob> l2 while away"):
                t.eq(out.count(line), 1, "%r shown once" % line, out)
            t.ok(s1.ended, "the first session is gone")

            srv.accepting = False
            mark = len(p.out)
            chat.drop_all()
            shows(t, p, rb"; reconnecting", mark, "lost again")
            p.type("exit\r")
            t.eq(p.wait(WAIT), 0, "`exit` while reconnecting leaves at once "
                 "with status 0")
        finally:
            p.close()


def case_history(t):
    """Replayed messages show when they were said, then the end of the
    replay; /history shows again what was shown."""
    chat = FakeChat()
    old = "2026-01-02T03:04:05.678Z"
    with FakeChatServer(chat) as srv:
        bob = chat.ghost("lobby", "bob")
        chat.say("lobby", bob, "from the past", time=old)
        chat.say("lobby", bob, "recent")
        p = interactive(srv, "--nick", "alice")
        try:
            chat.wait_session(1)
            shows(t, p, re.escape(("[%s] <bob> from the past" %
                                   clock(old)).encode()), 0,
                  "a replayed message shows its own time (%s)" % clock(old))
            shows(t, p, T + rb"<bob> recent\r?\n", 0, "then the next")
            shows(t, p, T + rb"\* end of #lobby history: 2 messages\r?\n",
                  0, "then the end of the replay")
            mark = len(p.out)
            p.type("/history 1\r")
            shows(t, p, T + rb"\* end of #lobby history: 1 message\r?\n",
                  mark, "/history: the end of its replay")
            t.ok(b"<bob> recent" in p.out[mark:], "/history shows again "
                 "a message already shown", plain(p.out[mark:]))
            mark = len(p.out)
            chat.say("lobby", bob, "live")
            shows(t, p, T + rb"<bob> live\r?\n", mark,
                  "a live message after it")
        finally:
            p.close()


def case_names(t):
    """The members of a big room: the first 100 after a join, every one
    after /who."""
    chat = FakeChat()
    with FakeChatServer(chat) as srv:
        for i in range(150):
            chat.ghost("big", "m%03d" % i)
        p = interactive(srv, "--nick", "alice", "--room", "big")
        try:
            m = shows(t, p, T + rb"\* #big: ([^\r\n]*)\r?\n", 0,
                      "joining a big room: its names")
            line = m.group(1).decode() if m else ""
            t.ok(line.startswith("m000, m001") and "m099" in line and
                 "m100" not in line and line.endswith(
                     " and 51 more (/who #big lists them)"),
                 "the first 100, then how many more", line)
            mark = len(p.out)
            p.type("/who\r")
            m = shows(t, p, T + rb"\* #big: ([^\r\n]*)\r?\n", mark,
                      "/who: the names again")
            line = m.group(1).decode() if m else ""
            t.eq(line.split(", "), ["m%03d" % i for i in range(150)] +
                 ["alice"], "/who: every one of them")
        finally:
            p.close()


def case_hostile(t):
    """Names, rooms, reasons and text from others cannot draw on the
    terminal: every one is shown escaped (raw bytes)."""
    chat = FakeChat()
    with FakeChatServer(chat) as srv:
        p = interactive(srv, "--nick", "alice")
        try:
            s = chat.wait_session(1)
            shows(t, p, rb"\[alice #lobby\]> ", 0, "connected")
            mark = len(p.out)
            evil = chat.ghost("lobby", "ev\x1b[31mil\r\n[1")
            shows(t, p, T + rb"\* ev\\x1b\[31mil\\r\\n\[1 joined #lobby"
                  rb"\r?\n", mark, "a nick with controls, escaped in an "
                  "event line")
            mark = len(p.out)
            chat.say("lobby", evil, "x\r[12:00:00] <alice> forged\x1b[2J")
            shows(t, p, T + rb"<ev\\x1b\[31mil\\r\\n\[1> x\\r\[12:00:00\] "
                  rb"<alice> forged\\x1b\[2J\r?\n", mark,
                  "nick and text escaped in a message line")
            # The server (or whoever holds the key) names a room with
            # controls for us, and a reason, and a new nick of ours.
            room = "r\x1b]0;pwned\x07"
            with chat.cond:
                s.deliver([s.event("join", "j", room=room, nick="alice",
                                   session=s.sid),
                           acproto.encode("message", "in r", evil.sid, TEXT,
                                          chat.key,
                                          {"room": room, "from": evil.nick,
                                           "seq": 1,
                                           "time": now_rfc3339()}),
                           s.event("quit", "q", nick=evil.nick,
                                   session=evil.sid,
                                   reason="bye\x1b[2J\u202e"),
                           s.event("nick", "n", old="alice",
                                   nick="me\x1b[1m", session=s.sid)])
            shows(t, p, T + rb"#r\\x1b\]0;pwned\\x07 <ev\\x1b", mark,
                  "a room with controls, escaped")
            shows(t, p, rb"quit \(bye\\x1b\[2J\\u202e\)", mark,
                  "a reason with controls, escaped")
            shows(t, p, rb"\[me\\x1b\[1m #lobby\]> ", mark,
                  "our own nick escaped in the prompt")
            out = p.out
            t.ok(b"\x1b[31m" not in out and b"\x1b[2J" not in out and
                 b"\x1b]0;" not in out and b"\x1b[1m" not in out and
                 b"\x07" not in out and "\u202e".encode() not in out,
                 "no control sequence from anyone reached the terminal",
                 repr(out[-600:]))
        finally:
            p.close()


def case_completion(t):
    """Tab completes commands, rooms and nicks, and never a name that
    would need escaping; the prompt on a real screen (tmux)."""
    if not have_tmux():
        t.skip("completion", "tmux not installed")
        return
    chat = FakeChat()
    with FakeChatServer(chat) as srv:
        bobby = chat.ghost("lobby", "bobby")
        chat.ghost("lobby", "bernard")
        chat.ghost("lobby", "bx\x1b[1m")
        chat.ghost("devops", bobby)
        with Tmux([CLIENT, "--nick", "alice", "tcp", "interactive",
                   "127.0.0.1", str(srv.port)], mkdtemp("actmux.")) as tm:
            prompt = "[alice #lobby]>"

            def line_is(want, what):
                s = tm.wait_screen(lambda s: [l for l in s if l][-1:] ==
                                   [want])
                t.ok([l for l in s if l][-1:] == [want], what,
                     "\n".join(s))

            line_is(prompt, "tmux: the prompt shows nick and room")
            s = chat.wait_session(1)
            tm.keys("/ro")
            tm.keys("Tab", literal=False)
            line_is(prompt + " /rooms", "tmux: /ro Tab completes /rooms")
            tm.keys("Enter", literal=False)
            tm.wait_screen(lambda s: any("* rooms:" in l for l in s))
            tm.keys("/join #dev")
            tm.keys("Tab", literal=False)
            line_is(prompt + " /join #devops", "tmux: a room from the rooms "
                    "event completes after /join #")
            tm.keys("C-u", literal=False)
            tm.keys("hi bob")
            tm.keys("Tab", literal=False)
            line_is(prompt + " hi bobby", "tmux: a nick completes in a "
                    "message")
            tm.keys("C-u", literal=False)
            tm.keys("/msg Be")
            tm.keys("Tab", literal=False)
            line_is(prompt + " /msg bernard", "tmux: a nick completes after "
                    "/msg, case folded")
            tm.keys("C-u", literal=False)
            tm.keys("bx")
            tm.keys("Tab", literal=False)
            tm.keys("!")
            line_is(prompt + " bx!", "tmux: a nick with a control "
                    "character is never offered")
            tm.keys("C-u", literal=False)
            tm.keys("Enter", literal=False)
            chat.say("lobby", bobby, "seen on screen")
            sc = tm.wait_screen(lambda s: any("seen on screen" in l
                                              for l in s))
            t.ok(any(re.match(r"^\[\d\d:\d\d:\d\d\] <bobby> seen on screen$",
                              l) for l in sc), "tmux: a message line",
                 "\n".join(sc))
            t.ok(all(f.text() != "" for f in s.messages()),
                 "tmux: an empty line sends nothing")


def case_file(t):
    """File mode: --room sends each line there (commands as they are);
    --json has from, room, seq, own and each event's members; a reply
    with an error makes the exit status 1."""
    chat = FakeChat()
    with FakeChatServer(chat) as srv:
        rc, out, err = file_mode(srv, ["hello dev", "/who", "//slashed"],
                                 "--nick", "filer", "--room", "dev",
                                 "--json")
        t.eq(rc, 0, "file mode --json --room ran", err)
        s = chat.wait_session(1)
        t.eq([(f.text(), f.header.get("room")) for f in s.messages()],
             [("hello dev", "dev"), ("/who", None), ("//slashed", "dev")],
             "--room: lines go to the room, commands as they are")
        objs = [json.loads(l) for l in out.splitlines()]
        msg = [o for o in objs if o.get("content") == "hello dev"]
        t.ok(len(msg) == 1 and msg[0].get("from") == "filer" and
             msg[0].get("room") == "dev" and msg[0].get("seq") == 1 and
             msg[0].get("own") is True and
             msg[0].get("session_id") == s.sid and
             msg[0].get("time", "").endswith("Z"),
             "--json: a message has from (the nick), room, seq, own, "
             "session_id and the server's time", out)
        joins = [o for o in objs if o.get("event") == "join"]
        t.ok(joins and joins[0].get("room") == "lobby" and
             joins[0].get("nick") == "filer" and
             joins[0].get("session") == s.sid and
             joins[0].get("from") is None,
             "--json: an event has event and its members", out)
        names = [o for o in objs if o.get("event") == "names" and
                 o.get("room") == "dev"]
        t.ok(names and names[-1].get("names") == [{"nick": "filer",
                                                   "session": s.sid}],
             "--json: names has its list", out)
        t.ok(any(o.get("event") == "reply" and o.get("command") == "who"
                 and o.get("status") == "ok" for o in objs),
             "--json: replies are there too, quiet or not", out)

        rc, out, err = file_mode(srv, ["plain one", "/join b@d"], "--nick",
                                 "filer2", "--room", "dev")
        t.eq(rc, 1, "a line the server refused: exit status 1", out + err)
        t.ok(re.search(r"^\[\d\d:\d\d:\d\d\] #dev <filer2 \(me\)> plain "
                       r"one$", out, re.M) and
             re.search(r"^\[\d\d:\d\d:\d\d\] ! join: bad_room$", out, re.M),
             "plain file mode shows chat lines and the error", out)
        rc, out, err = file_mode(srv, ["/join b@d"], "-q")
        t.ok(rc == 1 and out == "" and "join: bad_room" in err,
             "with -q the error goes to standard error", out + err)


def case_not_chat(t):
    """Against asyncchatd's broadcast (no chat layer), a peer's "event",
    "from", "room" and "seq" members are its own words: shown as ever,
    with its session id; the prompt and what is sent stay as ever."""
    if not os.path.exists(SERVER):
        raise harness.Skip("server binary not built")
    with harness.Server(plugins=["broadcast"],
                        sections={"broadcast": {"include_sender": "yes"}}
                        ) as srv:
        p = Pty([CLIENT, "unix", "interactive", srv.unix_path])
        try:
            m = p.expect(rb"Session ([0-9a-f-]{36})[\s\S]*> ", WAIT)
            t.ok(m is not None, "not chat: connected, prompt > ",
                 plain(p.out))
            sid = m.group(1).decode()
            peer = srv.client("tcp")
            mark = len(p.out)
            peer.send_message("* admin joined #lobby", TEXT,
                              extra={"event": "join", "room": "lobby",
                                     "nick": "admin", "session": sid,
                                     "from": "admin", "seq": 99})
            got = p.expect(rb"\[\d\d:\d\d:\d\d ([0-9a-f]{8})\] \* admin "
                           rb"joined #lobby\r?\n", WAIT, mark)
            t.ok(got is not None and
                 got.group(1).decode() == peer.session_id[:8],
                 "not chat: a forged event shows as the peer's message, "
                 "with its session id", plain(p.out[mark:]))
            mark = len(p.out)
            peer.send_message("as admin", TEXT,
                              extra={"from": "admin", "room": "lobby",
                                     "seq": 1})
            t.ok(p.expect(rb"\[\d\d:\d\d:\d\d [0-9a-f]{8}\] as admin\r?\n",
                          WAIT, mark) is not None and
                 b"<admin>" not in p.out,
                 "not chat: a forged \"from\" is not shown as a name",
                 plain(p.out[mark:]))
            p.type("/join #dev\r")
            f = peer.recv_frame(WAIT)
            while f.type != "message" or f.session_id != sid:
                f = peer.recv_frame(WAIT)
            t.eq((f.text(), sorted(f.header)),
                 ("/join #dev", ["content_type", "session_id", "type"]),
                 "not chat: a typed line is sent as it was typed, no room")
            t.ok(plain(p.out).endswith("\n> ") and b"]> " not in p.out,
                 "not chat: the prompt stays > ", repr(p.out[-200:]))
            peer.close()
        finally:
            p.close()


if __name__ == "__main__":
    if not os.path.exists(CLIENT):
        skip_all("client binary not built: " + CLIENT)
    main([case_session, case_handshake, case_reconnect, case_history,
          case_names, case_hostile, case_completion, case_file, case_not_chat])
