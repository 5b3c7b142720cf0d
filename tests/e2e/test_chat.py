#!/usr/bin/env python3
"""The chat plugin (docs/CHAT.md): names, sending, every command, event and
error token, joining at the handshake, quit events, limits, and what a
hostile client gets for each input chat reads.  Through the suite's own
Python client (acproto), mostly over tcp and unix.
"""

import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import time

import acproto
from chat import (TEXT, ChatClient, connect, error_of, events, is_said,
                  messages, names_of, reply, replies)
from harness import Server, main, mkdtemp

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def chat_server(sections=None, server=None, plugins=("chat",), **kw):
    secs = {"chat": {}}
    secs.update(sections or {})
    return Server(plugins=list(plugins), sections=secs, server=server, **kw)


def guest_of(c):
    return "guest-" + c.session_id.replace("-", "")[:8]


def case_handshake_defaults(t):
    d = mkdtemp()
    log = os.path.join(d, "messages.log")
    with chat_server(plugins=("logger", "chat"),
                     sections={"logger": {"path": log}}) as srv:
        a = connect(srv, "tcp")
        j = events(a.welcome, "join")
        t.eq(len(j), 1, "a new session gets one join event")
        t.eq(j[0].header["room"], "lobby", "into the default room, lobby")
        t.eq(j[0].header["nick"], guest_of(a),
             "with a guest nick: guest- and the first 8 hex digits of its id")
        t.eq(j[0].header["session"], a.session_id, "naming its session")
        t.eq(j[0].session_id, a.session_id,
             "an event carries the recipient's own session_id")
        t.eq(j[0].content_type, TEXT, "events are text/plain; charset=utf-8")
        t.eq(j[0].content, ("* %s joined #lobby" % guest_of(a)).encode(),
             "and a line a person can read")
        t.eq(len(a.welcome), 1, "an ack without nick or rooms (a client "
             "that may know nothing of chat): the join event alone")
        b = connect(srv, "unix", rooms=[])
        t.eq([f.header["event"] for f in b.welcome], ["join", "names"],
             "an ack with \"rooms\": []: the join event, then the names")
        t.eq(names_of(b.welcome, "lobby"), [guest_of(a), guest_of(b)],
             "in join order")
        t.eq(replies(b.welcome), [], "no reply when nothing went wrong")
        t.eq(events(b.welcome, "history-end"), [],
             "no history-end without a history backend")
        got = a.sync()
        t.eq([f.header.get("nick") for f in events(got, "join")],
             [guest_of(b)], "members see the newcomer join")
        a.cmd("/nick alice")
        a.say("logged")
        a.sync()
        line = [json.loads(x) for x in open(log) if '"logged"' in x]
        t.eq(line[0]["attrs"].get("nick") if line else None, "alice",
             "the logger records the nick attribute")
        t.eq(line[0]["attrs"].get("rooms") if line else None, "lobby",
             "and the rooms attribute")


def case_nick(t):
    # Many nicks in a row: the command budget is test_fairness.py's.
    with chat_server(sections={"chat": {"command_rate": 0}}) as srv:
        a = connect(srv)
        b = connect(srv, "unix")
        c = connect(srv, extra=None)
        c.cmd("/part")              # c shares no room with anyone
        a.sync(), b.sync()
        got = a.cmd("/nick alice")
        n = events(got, "nick")
        t.eq(len(n), 1, "/nick: one nick event to the sender")
        t.eq((n[0].header["old"], n[0].header["nick"], n[0].header["session"]),
             (guest_of(a), "alice", a.session_id), "old, nick, session")
        t.eq(reply(got), {"event": "reply", "command": "nick", "status": "ok",
                          "type": "message", "content_type": TEXT,
                          "session_id": a.session_id},
             "and a reply: command nick, status ok")
        t.eq([f.header["nick"] for f in events(b.sync(), "nick")], ["alice"],
             "a session sharing a room gets the nick event")
        t.eq(events(c.sync(), "nick"), [], "a session sharing none does not")
        t.eq(error_of(b.cmd("/nick ALICE")), "nick_in_use",
             "nick_in_use: nicks compare with ASCII case folding")
        t.eq(error_of(b.cmd("/nick alice")), "nick_in_use", "the same nick")
        got = a.cmd("/nick Alice")
        t.eq((error_of(got), events(got, "nick")[0].header["nick"]),
             (None, "Alice"), "changing the case of one's own nick is allowed")
        got = a.cmd("/nick Alice")
        t.eq((error_of(got), events(got, "nick")), (None, []),
             "the same nick again: ok, no event")
        bad = ["", "a" * 33, "two words", "tab\there", "#hash", "/slash",
               "@at", "ctl\x01x", "del\x7fx", "nbsp\u00a0x", "zw\u200bx",
               "rtl\u202ex", "bom\ufeffx", "c1\u0085x", "wj\u2060x",
               "soft\u00adx"]
        for nick in bad:
            t.eq(error_of(b.cmd("/nick " + nick)), "bad_nick",
                 "bad_nick: %r" % nick)
        got = b.cmd(b"/nick bad\xff\xfe".decode("latin-1").encode("latin-1")
                    .decode("utf-8", "surrogateescape")
                    .encode("utf-8", "surrogateescape"))
        t.eq(error_of(got), "bad_argument",
             "a command that is not UTF-8: bad_argument")
        ok32 = "\u00e9" * 32
        t.eq(error_of(b.cmd("/nick " + ok32)), None,
             "32 two-byte characters make a valid nick")
        t.eq(error_of(b.cmd("/nick " + "\U0001f600" * 32)), None,
             "so do 32 four-byte ones")
        t.eq(error_of(b.cmd("/nick " + "\U0001f600" * 33)), "bad_nick",
             "33 characters do not")
        # Unicode case is not folded: distinct nicks, by design.
        t.eq(error_of(c.cmd("/nick \u00c5lice")), None, "/nick Ålice")
        t.eq(error_of(b.cmd("/nick \u00e5lice")), None,
             "ålice is another nick (only ASCII folds)")
        t.eq(error_of(b.cmd("/nick \uff41lice")), None,
             "fullwidth ａlice is another nick than alice")
        t.eq(error_of(b.cmd("/nick al\u0131ce")), None,
             "dotless alıce is another nick than alice")
        t.eq(error_of(b.cmd("/NICK bob")), None, "command words fold: /NICK")


def case_join_part(t):
    with chat_server() as srv:
        a = connect(srv, nick="alice")
        b = connect(srv, "unix", nick="bob")
        a.sync()
        got = a.cmd("/join Dev")
        t.eq([f.header["event"] for f in events(got)], ["join", "names", "reply"],
             "/join: join, names, then the reply")
        t.eq(events(got, "join")[0].header["room"], "Dev",
             "a room is shown in the case first used")
        got = b.cmd("/join #DEV")
        t.eq(events(got, "join")[0].header["room"], "Dev",
             "rooms compare ignoring case; #ROOM is accepted in commands")
        t.eq(names_of(got, "Dev"), ["alice", "bob"], "names of the room")
        t.eq([f.header["nick"] for f in events(a.sync(), "join")], ["bob"],
             "the members see the join")
        got = a.say("hi") and a.sync()
        t.eq(messages(got)[0].header["room"], "Dev",
             "the room joined last is the current room")
        got = a.cmd("/join lobby")
        t.eq((error_of(got), [f.header["event"] for f in events(got)]),
             (None, ["reply"]),
             "joining a room one is in: only the reply (it becomes current)")
        a.say("in lobby")
        t.eq(messages(a.sync())[0].header["room"], "lobby",
             "and messages now go there")
        b.sync()
        got = a.cmd("/part lobby")
        t.eq([f.header["event"] for f in events(got)], ["part", "reply"],
             "/part ROOM: the part event, then the reply")
        t.eq(events(got, "part")[0].header, {
            "type": "message", "content_type": TEXT,
            "session_id": a.session_id, "event": "part", "room": "lobby",
            "nick": "alice", "session": a.session_id}, "its members")
        t.eq([f.header["nick"] for f in events(b.sync(), "part")], ["alice"],
             "members of the room see the part")
        a.say("where")
        t.eq(messages(a.sync())[0].header["room"], "Dev",
             "after /part the current room is the one before")
        t.eq(error_of(a.cmd("/part lobby")), "not_in_room",
             "/part of a room one is not in: not_in_room")
        t.eq(error_of(a.cmd("/part no.such")), "not_in_room",
             "/part of a room that does not exist: not_in_room")
        t.eq(error_of(a.cmd("/part bad!room")), "bad_room", "/part bad!room")
        t.eq(error_of(a.cmd("/part")), None, "/part: the current room")
        t.eq(error_of(a.cmd("/part")), "no_room", "/part in no room: no_room")
        a.say("nowhere")
        t.eq(error_of(a.sync()), "no_room",
             "a message in no room: a reply with no_room")
        t.eq(reply(a.cmd("x"))["command"], "message",
             "whose command is message")
        b.cmd("/part Dev")
        got = a.cmd("/join dEV")
        t.eq(events(got, "join")[0].header["room"], "dEV",
             "a room that emptied is gone: a new one takes the new case")
        a.say("first")
        t.eq(messages(a.sync())[0].header["seq"], 1,
             "and without history starts again at seq 1")
        t.eq(error_of(a.cmd("/join")), "bad_room", "/join without a room")
        t.eq(error_of(a.cmd("/join a b c")), "bad_argument",
             "/join with three words")
        t.eq(error_of(a.cmd("/join dev -1")), "bad_argument",
             "/join with a SINCE that is not a seq")


def case_room_limits(t):
    with chat_server(sections={"chat": {"max_rooms": 3,
                                        "command_rate": 0}}) as srv:
        a = connect(srv)
        t.eq(error_of(a.cmd("/join r1")), None, "lobby + r1")
        t.eq(error_of(a.cmd("/join r2")), None, "lobby + r1 + r2 = max_rooms 3")
        t.eq(error_of(a.cmd("/join r3")), "too_many_rooms",
             "one more: too_many_rooms (the default room counts)")
        t.eq(error_of(a.cmd("/join r1")), None,
             "rejoining a room one is in is not a new room")
        a.cmd("/part lobby")
        t.eq(error_of(a.cmd("/join r3")), None, "after a part there is room")
        t.eq(error_of(a.cmd("/join " + "x" * 64)), "too_many_rooms", "full")
        a.cmd("/part r3")
        t.eq(error_of(a.cmd("/join " + "x" * 64)), None, "64 bytes: a room")
        a.cmd("/part " + "x" * 64)
        for bad in ["x" * 65, "sp ace", "d\u00e9v", "a/b", "a#b", "a\x00b",
                    "a,b", "*", "dev\x1b[31m"]:
            t.eq(error_of(a.cmd("/join " + bad)) in ("bad_room",
                                                       "bad_argument"),
                 True, "not a room: %r" % bad)
        for ok in ["A-Z_a.z-0.9", "...", "-", "_"]:
            got = a.cmd("/join " + ok)
            t.eq(error_of(got), None, "a room: %r" % ok)
            a.cmd("/part " + ok)
        a.say("x", extra={"room": "#r1"})
        t.eq(error_of(a.sync()), "bad_room",
             "the room member is the bare name: #r1 is bad_room")
        for bad in [5, ["r1"], {"room": "r1"}, "", "x" * 65, True]:
            a.say("x", extra={"room": bad})
            t.eq(error_of(a.sync()), "bad_room", "room member %r" % (bad,))
        a.say("null", extra={"room": None})
        m = messages(a.sync())
        t.eq([x.header["room"] for x in m], ["r1"],
             "room null is no room: the current one")
        # room and to are read from the header's bytes as json-c reads
        # them: escapes decoded, the last of duplicates, a NUL ending a
        # member's name; any other member is kept on the relayed frame.
        a.cmd("/join r2")
        spelled = [
            (r'"room": "r\u0031"', "r1", "an escaped room name"),
            (r'"room": "r2", "room": "r1"', "r1",
             "the last of two room members"),
            (r'"room": 5, "room": "r1"', "r1",
             "the last of two room members, the first not a string"),
            (r'"room\u0000x": "r1"', "r1", "a name up to its NUL"),
            (r'"x": {"room": "r1"}', "r2",
             "a nested room member is not the header's"),
        ]
        for members, room, what in spelled:
            hdr = ('{"type": "message", "content_type": "%s", '
                   '"session_id": "%s", %s}' % (TEXT, a.session_id, members))
            a.send_raw(acproto.encode_raw(hdr, what.encode(), key=srv.key))
            m = messages(a.sync())
            t.eq([(x.header.get("room"), x.text()) for x in m],
                 [(room, what)], "room member spelt %s: %s" % (members, what))
        hdr = ('{"type": "message", "content_type": "%s", "session_id": '
               '"%s", "room": "r1", "to": null, "mood": "\\u263a"}'
               % (TEXT, a.session_id))
        a.send_raw(acproto.encode_raw(hdr, b"own", key=srv.key))
        m = messages(a.sync())
        t.eq([(x.header.get("room"), x.header.get("mood"), "to" in x.header)
              for x in m], [("r1", "\u263a", False)],
             "to null is no direct message; the sender's own member is kept")
        a.cmd("/nick zed")
        hdr = ('{"type": "message", "content_type": "%s", "session_id": '
               '"%s", "to": "z\\u0065d", "room": null}'
               % (TEXT, a.session_id))
        a.send_raw(acproto.encode_raw(hdr, b"dm", key=srv.key))
        m = messages(a.sync())
        t.eq([(x.header.get("to"), "room" in x.header, x.text()) for x in m],
             [("zed", False, "dm")],
             "a to member spelt with an escape is decoded, then looked up")
        a.cmd("/part r2")


def case_config(t):
    with chat_server(sections={"chat": {"max_rooms": 0}}, start=False) as srv:
        rc, out = srv.check()
        t.ok(rc != 0 and "max_rooms" in out and "line" in out,
             "max_rooms = 0 is refused, naming the line", out)
    with chat_server(sections={"chat": {"default_room": "no way"}},
                     start=False) as srv:
        rc, out = srv.check()
        t.ok(rc != 0 and "default_room" in out, "a bad default_room is refused",
             out)
    with chat_server(sections={"chat": {"colour": "red"}}, start=False) as srv:
        rc, out = srv.check()
        t.ok(rc != 0 and "unknown option 'colour'" in out,
             "an unknown option is refused", out)
    with chat_server(sections={"chat": {"default_room": ""}}) as srv:
        a = connect(srv)
        t.eq(events(a.welcome), [], "default_room empty: a session starts "
             "in no room, and nothing is sent")
        a.say("hello")
        t.eq(error_of(a.sync()), "no_room", "so a message gets no_room")
    with chat_server(sections={"chat": {"default_room": "Hall"}}) as srv:
        a = connect(srv)
        t.eq(events(a.welcome, "join")[0].header["room"], "Hall",
             "default_room = Hall")


def case_messages(t):
    with chat_server() as srv:
        a = connect(srv, nick="alice")
        b = connect(srv, "unix", nick="bob")
        c = connect(srv, nick="carol")
        a.cmd("/join dev")
        b.cmd("/join dev")
        a.sync(), b.sync(), c.sync()
        sent = a.say("hello dev")
        got = a.sync()
        m = messages(got)
        t.eq(len(m), 1, "the sender gets its own message (sender included)")
        h = m[0].header
        t.eq((h["room"], h["from"], h["seq"], m[0].session_id, m[0].content),
             ("dev", "alice", 1, a.session_id, b"hello dev"),
             "stamped with room, from, seq 1 and the sender's session_id")
        t.ok(TIME_RE.match(h.get("time", "")),
             "time is RFC 3339 UTC with milliseconds: %r" % h.get("time"))
        t.eq(m[0].content_type, TEXT, "the content type is the sender's")
        t.ok(m[0].raw != sent, "it is a new frame, not the sender's bytes")
        t.eq([x.header["seq"] for x in messages(b.sync())], [1],
             "a member gets it")
        t.eq(messages(c.sync()), [], "a session outside the room does not")
        a.say("two")
        a.say("three", extra={"room": "dev"})
        t.eq([x.header["seq"] for x in messages(a.sync())], [2, 3],
             "seq +1 per message of the room")
        a.say("in lobby", extra={"room": "lobby"})
        t.eq([(x.header["room"], x.header["seq"]) for x in messages(a.sync())],
             [("lobby", 1)], "each room counts on its own")
        t.eq([x.content for x in messages(c.sync())], [b"in lobby"],
             "a room member named in the header reaches that room")
        b.sync()
        c.say("sneak", extra={"room": "dev"})
        t.eq(error_of(c.sync()), "not_in_room",
             "to a room one is not in: not_in_room")
        t.eq(messages(b.sync()), [], "and nothing reaches the room")
        a.say("//help")
        m = messages(a.sync())
        t.eq((m[0].content, m[0].header["seq"]), (b"/help", 4),
             "//text is a message with the content /text")
        a.say("/not a command", content_type="application/octet-stream")
        t.eq(messages(a.sync())[0].content, b"/not a command",
             "only text/plain can be a command")
        a.say("part", type_="chunk", content_type=TEXT)
        m = messages(a.sync())
        t.eq((m[0].type, m[0].header["seq"]), ("chunk", 6),
             "a chunk goes to the room like a message")
        a.say("/join x", type_="chunk", content_type=TEXT)
        t.eq(messages(a.sync())[0].content, b"/join x",
             "a chunk is never a command")
        big = b"z" * (1024 * 1024)
        a.send("message", big, content_type="application/octet-stream",
               extra={"room": "dev"})
        m = messages(a.sync())
        t.eq(len(m[0].content) if m else 0, len(big), "a 1 MiB message goes")
        b.sync()


def case_slow_member(t):
    """A member that stops reading is closed as a slow consumer in the
    middle of a room's deliveries (the server hands a room message to all
    its members in one call): the others get every message, in order."""
    opts = {"max_output_buffer": "64K", "max_header_size": "4K",
            "max_content_size": "16K", "max_message_rate": 0,
            "max_byte_rate": 0}
    with chat_server(server=opts) as srv:
        room = [{"room": "slow"}]
        a = connect(srv, nick="alice", rooms=room)
        b = connect(srv, "unix", nick="bob", rooms=room)
        slow = ChatClient.connect(srv.addr("unix"), key=srv.key,
                                  name="slow", rcvbuf=4096)
        connect(srv, nick="snail", rooms=room, sock_client=slow)
        a.sync(), b.sync()
        body = b"x" * 4000
        n = 600            # 2.4 MB for a reader of 64 KiB
        got = {a: [], b: []}
        seen = []           # b's events meanwhile
        for i in range(n):
            a.send("message", b"%d:" % i + body,
                   content_type="application/octet-stream",
                   extra={"room": "slow"})
            if i % 10 != 9:
                continue
            for c in (a, b):        # the readers keep up, batch by batch
                while len(got[c]) <= i:
                    f = c.recv_frame(15)
                    if f.type == "message" and "event" not in f.header:
                        got[c].append(int(f.content.split(b":", 1)[0]))
                    elif c is b:
                        seen.append(f)
        t.eq(got[b], list(range(n)), "a reading member gets all %d "
             "messages, in order" % n)
        t.eq(got[a], list(range(n)), "and so does the sender")
        t.ok(srv.wait_log(r"session %s closed reason=slow-consumer"
                          % slow.session_id, 10) is not None,
             "the member that stopped reading is closed as a slow consumer",
             srv.log()[-2000:])
        left = lambda f: f.header.get("event") == "quit" and \
            f.header.get("nick") == "snail"
        t.ok(any(left(f) for f in seen) or
             b.wait_for(left, "snail's quit") is not None,
             "the room is told it quit")
        t.eq(b.sync(), [], "and the room goes on")
        a.close(), b.close(), slow.close()


def case_forged_members(t):
    with chat_server() as srv:
        a = connect(srv, nick="alice")
        b = connect(srv, nick="bob")
        a.sync()
        forged = {"event": "join", "from": "bob", "seq": 999,
                  "time": "1999-01-01T00:00:00.000Z", "x-client": [1, 2],
                  "nick": "carol", "session": b.session_id}
        a.cmd("honest", extra=forged)
        got = messages(b.sync())
        h = got[0].header if got else {}
        t.eq("event" in h, False, "a client's event member is not relayed")
        t.eq((h.get("from"), h.get("seq")), ("alice", 1),
             "from and seq are the server's")
        t.ok(h.get("time") != forged["time"], "time is the server's")
        t.eq((h.get("x-client"), h.get("nick"), h.get("session")),
             ([1, 2], "carol", b.session_id),
             "the sender's other members are kept")
        t.eq(list(h)[:3], ["type", "content_type", "session_id"],
             "type, content_type and session_id first")
        a.cmd("to lobby", extra={"room": "LOBBY"})
        t.eq(messages(b.sync())[0].header["room"], "lobby",
             "room is the server's spelling, not the sender's")
        a.cmd("dm", extra={"to": "BOB"})
        t.eq(messages(b.sync())[0].header["to"], "bob",
             "to is the recipient's nick as it is")
        a.say("both", extra={"room": "lobby", "to": "bob"})
        t.eq(error_of(a.sync()), "bad_argument",
             "room and to together: bad_argument")
        t.eq(messages(b.sync()), [], "and nothing is sent")


def case_one_frame_shared(t):
    with chat_server() as srv:
        clients = [connect(srv, tr) for tr in ("tcp", "unix", "tcp", "unix")]
        for c in clients:
            c.sync()
        clients[0].say("for all", extra={"x": 1})
        raws = []
        for c in clients:
            m = messages(c.sync())
            raws.append(m[0].raw if m else None)
        t.ok(raws[0] is not None and all(r == raws[0] for r in raws),
             "every recipient, the sender too, gets the same bytes")
        f = acproto.decode_one(raws[0], key=srv.key)
        t.ok(isinstance(f, acproto.Frame),
             "which verify with the key (CRCs, HMAC)")
        bad = acproto.decode_one(raws[0], key="other-key")
        t.ok(isinstance(bad, acproto.FrameError) and bad.token == "hmac",
             "and not with another key: the host signed it")
        clients[1].say("dm", extra={"to": "guest-" +
                                    clients[2].session_id.replace("-", "")[:8]})
        r1 = messages(clients[1].sync())
        r2 = messages(clients[2].sync())
        t.ok(len(r1) == 1 and len(r2) == 1 and r1[0].raw == r2[0].raw,
             "a direct message: one frame for the recipient and the sender")


def case_direct(t):
    with chat_server() as srv:
        a = connect(srv, nick="alice")
        b = connect(srv, "unix", nick="bob")
        c = connect(srv, nick="carol")
        a.cmd("/part")
        b.sync(), c.sync()
        got = a.cmd("/msg BOB psst, bob")
        m = messages(got)
        t.eq(len(m), 1, "/msg: the sender gets its copy")
        h = m[0].header
        t.eq((h.get("to"), h.get("from"), "room" in h, "seq" in h,
              m[0].content), ("bob", "alice", False, False, b"psst, bob"),
             "to the recipient's nick, from, no room, no seq")
        t.ok(TIME_RE.match(h.get("time", "")), "with a time")
        t.eq(reply(got)["command"], "msg", "and a reply")
        got = b.sync()
        t.eq([x.raw for x in messages(got)], [m[0].raw],
             "the recipient gets the same frame (no room needed in common)")
        t.eq(messages(c.sync()), [], "nobody else does")
        a.say("via to", extra={"to": "carol"})
        got = a.sync()
        t.eq((len(messages(got)), replies(got)), (1, []),
             "a message with to: the copy, no reply")
        t.eq(messages(c.sync())[0].content, b"via to", "to carol")
        a.say("me", extra={"to": "alice"})
        t.eq(len(messages(a.sync())), 1,
             "to naming oneself: one frame, not two")
        got = a.cmd("/msg alice note to self")
        t.eq((len(messages(got)), error_of(got)), (1, None), "/msg oneself")
        t.eq(error_of(a.cmd("/msg nobody hi")), "no_such_nick",
             "/msg to an unknown nick: no_such_nick")
        a.say("x", extra={"to": "nobody"})
        t.eq(error_of(a.sync()), "no_such_nick", "to an unknown nick")
        a.say("x", extra={"to": 42})
        t.eq(error_of(a.sync()), "no_such_nick", "to that is not a string")
        t.eq(error_of(a.cmd("/msg bob")), "bad_argument", "/msg NICK alone")
        t.eq(error_of(a.cmd("/msg")), "bad_argument", "/msg alone")
        t.eq(error_of(a.cmd("/msg bob    ")), "bad_argument",
             "/msg NICK and spaces")
        huge = "/msg bob " + "y" * (1024 * 1024)
        got = a.cmd(huge)
        t.eq((error_of(got), len(messages(got)[0].content) if messages(got)
              else 0), (None, 1024 * 1024), "a 1 MiB /msg goes")
        t.eq(len(messages(b.sync(timeout=10))[0].content), 1024 * 1024,
             "to the recipient")
        # A header just under the limit, which the server's members push
        # past it.
        hdr = {"type": "message", "content_type": TEXT,
               "session_id": a.session_id, "to": "bob", "pad": ""}
        room = 65536 - len(acproto.header_bytes(hdr)) - 8
        a.say("x", extra={"to": "bob", "pad": "p" * room})
        got = a.sync()
        t.ok(len(got) == 1 and got[0].header.get("error") == "too_large",
             "a header that the server's members push past the limit: "
             "too_large", lambda: repr([f.header.get("event") for f in got]))
        a.cmd("/join dev")
        a.say("x", extra={"pad": "p" * room})
        got = a.sync()
        t.ok(len(got) == 1 and got[0].header.get("error") == "too_large",
             "in a room too")
        a.say("after")
        t.eq(messages(a.sync())[0].header["seq"], 1,
             "a refused message takes no seq")
        a.say("long", extra={"pad": "q" * 3000})
        got = messages(a.sync())
        t.eq([(f.header.get("pad"), f.header["seq"]) for f in got],
             [("q" * 3000, 2)], "a header of some KiB that fits goes, "
             "its own member kept")


def case_who_rooms(t):
    with chat_server() as srv:
        a = connect(srv, nick="alice")
        b = connect(srv, nick="bob")
        a.cmd("/join dev")
        b.cmd("/join ops")
        got = a.cmd("/who")
        t.eq((names_of(got, "dev"), error_of(got)), (["alice"], None),
             "/who: names of the current room, and a reply")
        got = a.cmd("/who lobby")
        t.eq(names_of(got, "lobby"), ["alice", "bob"], "/who ROOM")
        n = events(got, "names")[0].header["names"]
        t.eq(n[0]["session"], a.session_id, "names carry sessions")
        t.eq(error_of(a.cmd("/who ops")), "not_in_room",
             "/who of a room one is not in: not_in_room")
        t.eq(error_of(a.cmd("/who b@d")), "bad_room", "/who b@d: bad_room")
        got = a.cmd("/rooms")
        r = events(got, "rooms")
        t.eq(sorted((x["room"], x["members"]) for x in r[0].header["rooms"]),
             [("dev", 1), ("lobby", 2), ("ops", 1)],
             "/rooms: every room with members")
        t.eq(reply(got)["command"], "rooms", "and a reply")
        a.cmd("/part dev")
        a.cmd("/part lobby")
        t.eq(error_of(a.cmd("/who")), "no_room", "/who in no room")


def case_history_help_unknown(t):
    with chat_server() as srv:
        a = connect(srv)
        t.eq(error_of(a.cmd("/history")), "no_history",
             "/history without a history backend: no_history")
        t.eq(error_of(a.cmd("/history 5")), "no_history", "/history N too")
        got = a.cmd("/join dev 7")
        t.eq((error_of(got), events(got, "history-end")), (None, []),
             "/join with SINCE works and sends no history-end")
        got = a.cmd("/help")
        t.ok(error_of(got) is None and b"/join ROOM" in replies(got)[0].content
             and b"/msg NICK TEXT" in replies(got)[0].content,
             "/help: the commands, in the reply's text")
        got = a.cmd("/frobnicate now")
        t.eq((reply(got).get("command"), error_of(got)),
             ("frobnicate", "unknown_command"),
             "an unknown command: unknown_command, named")
        t.eq(error_of(a.cmd("/")), "unknown_command", "/ alone")
        got = a.cmd("/\x1b[2Jevil")
        t.eq((reply(got).get("command"), error_of(got)),
             ("", "unknown_command"),
             "a command word with control characters is not echoed")
        got = a.cmd("/" + "q" * 40)
        t.eq(reply(got).get("command"), "", "nor a very long one")
        got = a.cmd("/help\r\n")
        t.eq(error_of(got), None, "a trailing newline is ignored")


def case_quit(t):
    with chat_server() as srv:
        a = connect(srv, nick="alice")
        b = connect(srv, "unix", nick="bob")
        c = connect(srv, nick="carol")
        d = connect(srv, nick="dave")
        for x in (a, b):
            x.cmd("/join dev")
            x.cmd("/join ops")
        d.cmd("/part")
        a.sync(), b.sync(), c.sync()
        a.close()
        got = b.sync()
        q = events(got, "quit")
        t.eq(len(q), 1, "a session sharing two rooms gets one quit")
        t.eq((q[0].header["nick"], q[0].header["session"],
              q[0].header["reason"]), ("alice", a.session_id, "eof"),
             "nick, session and the close reason")
        t.eq(events(got, "part"), [], "and no part events")
        t.eq(len(events(c.sync(), "quit")), 1, "one sharing one room: one")
        t.eq(events(d.sync(), "quit"), [], "one sharing none: none")
        got = b.cmd("/who dev")
        t.eq(names_of(got, "dev"), ["bob"], "the closed session left its rooms")
        t.eq(error_of(b.cmd("/msg alice hi")), "no_such_nick",
             "and its nick is free")
        b.send("disconnect", b'{"message": "Disconnecting", "reason": "bye"}',
               content_type="application/json")
        t.eq([f.header["reason"] for f in events(c.sync(), "quit")],
             ["client-disconnect"], "the reason of a disconnect frame")
        e = connect(srv, nick="alice")
        t.eq(replies(e.welcome), [], "a freed nick can be taken at once")


def case_ack_join(t):
    with chat_server(sections={"chat": {"max_rooms": 4}}) as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"},
                                              {"room": "Ops", "since": 3}])
        j = [f.header["room"] for f in events(a.welcome, "join")]
        t.eq(j, ["lobby", "dev", "Ops"],
             "nick and rooms in the session_ack: joined in order after lobby")
        t.eq(events(a.welcome, "join")[0].header["nick"], "alice",
             "with the nick asked for")
        t.eq(replies(a.welcome), [], "no replies when all went well")
        a.say("where")
        t.eq(messages(a.sync())[0].header["room"], "Ops",
             "the last room listed is current")
        b = connect(srv, nick="ALICE", rooms=[{"room": "lobby", "since": 2}])
        t.eq((error_of(b.welcome), reply(b.welcome)["command"]),
             ("nick_in_use", "nick"), "a nick in use: a reply, nick_in_use")
        t.eq(events(b.welcome, "join")[0].header["nick"], guest_of(b),
             "and a guest nick")
        t.eq([f.header["room"] for f in events(b.welcome, "join")], ["lobby"],
             "the default room listed is joined once")
        # The default room listed last: joined first (with its since), it
        # becomes current where it is listed, as /join of a room one is in
        # makes it; a /part then goes back to the room listed before it.
        d = connect(srv, nick="dora", rooms=[{"room": "dev"},
                                             {"room": "LOBBY", "since": 1}])
        t.eq([f.header["room"] for f in events(d.welcome, "join")],
             ["lobby", "dev"], "lobby listed last: joined first, once")
        d.say("where now")
        t.eq([m.header["room"] for m in messages(d.sync())], ["lobby"],
             "the default room listed last is current")
        t.eq(error_of(d.cmd("/part")), None, "/part leaves it")
        d.say("and now")
        t.eq([m.header["room"] for m in messages(d.sync())], ["dev"],
             "and the room listed before it is current")
        e = connect(srv, nick="emil", rooms=[{"room": "lobby"},
                                             {"room": "dev"}])
        e.say("here")
        t.eq([m.header["room"] for m in messages(e.sync())], ["dev"],
             "the default room listed first: the last listed is current")
        for bad in ["", "#x", "a b", 7, False, "x" * 33, ["alice"]]:
            c = connect(srv, nick=bad)
            t.eq(error_of(c.welcome), "bad_nick", "nick %r: bad_nick" % (bad,))
        c = connect(srv, rooms=[{"room": "ok1"}, {"room": "bad room"},
                                {"nope": 1}, "str"])
        errs = [f.header.get("error") for f in replies(c.welcome)]
        t.eq(errs, ["bad_room", "bad_room", "bad_room"],
             "each bad entry gets its reply", lambda: repr(errs))
        t.eq([f.header["room"] for f in events(c.welcome, "join")],
             ["lobby", "ok1"], "the good ones are joined")
        c = connect(srv, rooms=[{"room": "ok2", "since": -1},
                                {"room": "ok3", "since": "x"},
                                {"room": "ok4", "since": 0}])
        errs = [f.header.get("error") for f in replies(c.welcome)]
        t.eq(errs, ["bad_argument", "bad_argument"],
             "a since that is not a seq: bad_argument", lambda: repr(errs))
        t.eq([f.header["room"] for f in events(c.welcome, "join")],
             ["lobby", "ok4"], "and that room is not joined")
        for bad in (-1, "x", 1.5, None, [2]):
            c = connect(srv, rooms=[{"room": "dev"},
                                    {"room": "Lobby", "since": bad}])
            errs = [(f.header.get("error"), f.header.get("command"))
                    for f in replies(c.welcome)]
            t.eq(errs, [("bad_argument", "join")], "the default room's entry "
                 "with since %r: bad_argument, as for any room" % (bad,),
                 lambda: repr(errs))
            c.say("where")
            t.eq([m.header["room"] for m in messages(c.sync())], ["dev"],
                 "since %r: the entry is left out, so it does not make the "
                 "default room current" % (bad,))
        c = connect(srv, rooms={"room": "dev"})
        t.eq(error_of(c.welcome), "bad_argument", "rooms not a list")
        # As many rooms as a session_ack can list (its header is at most
        # 4096 bytes: the server's bound before the handshake is done).
        c = connect(srv, rooms=[{"room": "r%d" % i} for i in range(200)])
        errs = [f.header.get("error") for f in replies(c.welcome)]
        t.eq(errs, ["too_many_rooms", "too_many_rooms"],
             "200 rooms listed: a bounded number of replies",
             lambda: repr(errs))
        t.eq(len(events(c.welcome, "join")), 4, "max_rooms joined")


def case_transports(t):
    with chat_server() as srv:
        a = connect(srv, "tcp", nick="tcpuser")
        b = connect(srv, "unix", nick="unixuser")
        a.sync()
        own = b.cmd("over unix")
        t.eq([(m.header["from"], m.content) for m in messages(a.sync())],
             [("unixuser", b"over unix")], "unix to tcp")
        t.eq([m.header["from"] for m in messages(own)], ["unixuser"],
             "the sender has its copy")
        a.cmd("over tcp")
        t.eq([(m.header["from"], m.content) for m in messages(b.sync())],
             [("tcpuser", b"over tcp")], "tcp to unix")


class TLSChatClient(ChatClient):
    """ChatClient over an SSL socket: bytes already decrypted may wait in
    the SSL object, so poll the socket only when none do."""

    def _fill(self, deadline):
        if self.eof:
            raise acproto.Closed("%s: connection closed" % self.name)
        if self.sock.pending() == 0:
            left = deadline - time.monotonic()
            p = select.poll()
            p.register(self.sock, select.POLLIN)
            if left <= 0 or not p.poll(left * 1000):
                raise acproto.Timeout("%s: timed out" % self.name)
        data = self.sock.recv(262144)
        if not data:
            self.eof = True
            raise acproto.Closed("%s: connection closed by peer" % self.name)
        self.dec.feed(data)


def case_tls(t):
    openssl = shutil.which("openssl")
    if openssl is None:
        t.skip("chat over tls", "no openssl program")
        return
    d = mkdtemp()
    crt, key = os.path.join(d, "s.crt"), os.path.join(d, "s.key")
    cnf = os.path.join(d, "req.cnf")
    with open(cnf, "w") as f:
        f.write("[req]\ndistinguished_name = dn\n[dn]\n")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-config", cnf, "-subj", "/CN=localhost", "-days", "2",
                    "-keyout", key, "-out", crt], check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(key, 0o600)
    listen = ["tcp://127.0.0.1:0", "tls://127.0.0.1:0"]
    with chat_server(server={"listen": listen, "tls_cert": crt,
                             "tls_key": key}, unix=False) as srv:
        m = srv.wait_log(r"listening on tls://127\.0\.0\.1:(\d+)", 5)
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.load_verify_locations(crt)
        s = socket.create_connection(("127.0.0.1", int(m.group(1))), 5)
        tls = TLSChatClient(ctx.wrap_socket(s, server_hostname="localhost"),
                            srv.key, "tls")
        a = connect(srv, sock_client=tls, nick="secure",
                    rooms=[{"room": "vault"}])
        t.eq([f.header["room"] for f in events(a.welcome, "join")],
             ["lobby", "vault"], "over tls: nick and rooms at the handshake")
        b = connect(srv, "tcp", nick="plain", rooms=[{"room": "vault"}])
        a.sync()
        own = messages(a.cmd("over tls"))
        got = messages(b.sync())
        t.ok(len(own) == 1 and [f.raw for f in got] == [own[0].raw] and
             got[0].header["from"] == "secure",
             "a message from a tls session reaches a tcp one, same bytes")
        b.cmd("/msg secure back")
        t.eq([(f.header["from"], f.content) for f in messages(a.sync())],
             [("plain", b"back")], "and a direct message the other way")


def case_compact(t):
    """The frames one command sends back to its sender in a small room fit
    in 1024 bytes together (the original client reads 1024 at a time)."""
    with chat_server() as srv:
        a = connect(srv, nick="alice-the-first")
        b = connect(srv, nick="bob-the-second")
        c = connect(srv, nick="carol-the-third")
        for x in (a, b, c):
            x.cmd("/join dev")
        welcome = connect(srv, nick="dave-the-fourth").welcome
        t.ok(sum(len(f.raw) for f in welcome) <= 1024,
             "the handshake's events: %d bytes"
             % sum(len(f.raw) for f in welcome))
        crowd = [connect(srv, nick="member-%02d-with-a-long-nick" % i,
                         rooms=[]) for i in range(30)]
        plain = connect(srv).welcome
        t.ok(sum(len(f.raw) for f in plain) <= 1024,
             "a plain session_ack, a lobby of %d: %d bytes"
             % (len(crowd) + 5, sum(len(f.raw) for f in plain)))
        a.sync()
        steps = ["/nick alice-the-1st", "/join ops", "/join dev", "/who",
                 "/rooms", "/msg bob-the-second hello there", "/help",
                 "/history", "/part ops", "/frob", "/join bad!", "hello dev",
                 "/msg nobody x", "/nick bob-the-second"]
        for s in steps:
            got = a.cmd(s)
            size = sum(len(f.raw) for f in got)
            t.ok(size <= 1024 and got, "%s: %d bytes in %d frames"
                 % (s, size, len(got)))


def case_reload(t):
    with chat_server() as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        b = connect(srv, nick="bob", rooms=[{"room": "dev"}, {"room": "ops"}])
        b.cmd("/join dev")          # dev current for bob
        a.sync()
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        t.ok(srv.wait_log("configuration reloaded", 5, mark), "SIGHUP reloads")
        t.eq(a.sync(), [], "nothing is sent to anyone by a reload")
        got = a.cmd("/who")
        t.eq(names_of(got, "dev"), ["alice", "bob"],
             "nicks and rooms come back from the session attributes")
        b.cmd("still here")
        m = messages(a.sync())
        t.eq([(x.header["from"], x.header["room"]) for x in m],
             [("bob", "dev")], "the current room too")
        t.eq(error_of(b.cmd("/nick alice")), "nick_in_use",
             "the nick table is rebuilt")
        got = b.cmd("/who ops")
        t.eq(names_of(got, "ops"), ["bob"], "every room")


def case_nats_refused(t):
    from harness import PLUGINDIR
    if not os.path.exists(os.path.join(PLUGINDIR, "nats.so")):
        t.skip("chat with nats", "nats plugin not built (no libnats)")
        return
    for order in (("chat", "nats"), ("nats", "chat")):
        with Server(plugins=list(order), start=False,
                    sections={"nats": {"servers": "nats://127.0.0.1:1"}}) as srv:
            rc, out = srv.check()
            t.ok(rc != 0 and "cannot run with the nats plugin" in out and
                 "docs/SCALING.md" in out,
                 "asyncchatd -t refuses %s and says why and where to read"
                 % ", ".join(order), out)
            rc, out = srv.start_fails()
            t.ok(rc != 0 and "cannot run with the nats plugin" in out,
                 "and so does a start", out)


def case_shipped_config(t):
    """The shipped etc/asyncchat.conf makes a chat server: only its paths
    and listeners are changed to the test's."""
    from harness import BUILDDIR, PLUGINDIR
    path = os.path.join(BUILDDIR, "etc", "asyncchat.conf")
    if not os.path.exists(path):
        t.skip("shipped config", "etc/asyncchat.conf not built")
        return
    srv = Server(plugins=[], start=False)
    out = []
    for line in open(path):
        if line.startswith(("listen", "plugin_dir", "path")):
            continue
        out.append(line)
        if line.strip() == "[server]":
            out += ["listen = tcp://127.0.0.1:0\n",
                    "listen = unix://%s\n" % srv.unix_path,
                    "plugin_dir = %s\n" % PLUGINDIR, "log = stderr\n"]
        if line.strip() == "[plugin.logger]":
            out.append("path = %s\n" % os.path.join(srv.dir, "m.log"))
        if line.strip() == "[plugin.history]":
            out.append("path = %s\n" % os.path.join(srv.dir, "h.db"))
    text = "".join(out)
    t.ok(re.search(r"^load = logger, chat, history$", text, re.M),
         "the shipped chain is logger, chat, history")
    srv.write_config(text)
    with srv:
        srv.start()
        a = connect(srv, nick="alice")
        b = connect(srv, "unix", nick="bob")
        b.say("hi all")
        # With history, chat delivers once the message is stored: wait for
        # it, not for a pong.
        f = a.wait_for(is_said("hi all"), "hi all", 10)
        t.eq((f.header["from"], f.header["room"]), ("bob", "lobby"),
             "and it chats in the lobby")
        t.ok('"nick":"bob"' in open(os.path.join(srv.dir, "m.log")).read(),
             "the logger records the nick")
        c = connect(srv, nick="carol")
        got = c.welcome
        while not events(got, "history-end"):
            got.append(c.recv_frame(10))
        t.eq([(m.header["from"], m.content) for m in messages(got)],
             [("bob", b"hi all")], "and the history replays the lobby to "
             "whoever joins")


def case_hostile_ack(t):
    with chat_server() as srv:
        # 3000 bytes still fit a session_ack's header (at most 4096 bytes
        # before the handshake; test_hostile.py checks that a longer one
        # is refused before any plugin sees it).
        c = connect(srv, nick="x" * 3000)
        t.eq(error_of(c.welcome), "bad_nick", "a 3000-byte nick")
        c = connect(srv, nick="\ud800".encode("utf-8", "surrogatepass")
                    .decode("utf-8", "replace"))
        t.eq(replies(c.welcome), [], "a replacement character is a letter")
        c = connect(srv, rooms=[{"room": "r", "since": 10 ** 30}])
        t.eq((replies(c.welcome), len(events(c.welcome, "join"))), ([], 2),
             "a since past 64 bits is read as the largest: no replay")
        c = connect(srv, rooms=[{"room": "r", "since": 1.5}])
        t.eq(error_of(c.welcome), "bad_argument", "a since that is a float")
        t.eq(replies(c.cmd("/help"))[0].header["status"], "ok",
             "the session is fine afterwards")
        # Raw header bytes: a nick that is not UTF-8 never reaches chat
        # (the frame's header is refused), a lone surrogate escape does, as
        # U+FFFD (json-c's reading).
        for spelled in (b'"\xff\xfex"', b'"\\ud800x"'):
            raw = acproto.Client.connect(srv.addr("tcp"), key=srv.key)
            init = raw.recv_frame()
            hdr = (b'{"type": "session_ack", "content_type": null, '
                   b'"session_id": "' + init.session_id.encode() +
                   b'", "nick": ' + spelled + b'}')
            raw.send_raw(acproto.encode_raw(hdr, b"ack", key=srv.key))
            raw.session_id = init.session_id
            if spelled.startswith(b'"\xff'):
                f = raw.recv_frame()
                t.eq((f.type, f.header.get("error")), ("error", "bad_header"),
                     "a nick of bytes that are not UTF-8: the header is "
                     "refused before any plugin")
            else:
                got = raw.sync()
                t.eq(([f.header["nick"] for f in events(got, "join")],
                      replies(got)), (["\ufffdx"], []),
                     "a lone surrogate escape reaches chat as U+FFFD")
            raw.close()


main([case_handshake_defaults, case_slow_member, case_nick, case_join_part, case_room_limits,
      case_config, case_messages, case_forged_members, case_one_frame_shared,
      case_direct, case_who_rooms, case_history_help_unknown, case_quit,
      case_ack_join, case_transports, case_tls, case_compact, case_reload,
      case_nats_refused, case_shipped_config, case_hostile_ack])
