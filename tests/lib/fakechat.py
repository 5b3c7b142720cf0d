"""A fake chat server for the clients' tests: CHAT.md played in Python.

Enough of the chat and history plugins to drive a client: the handshake
with "nick" and "rooms" in the session_ack, rooms with members, history
replay and history-end, relayed messages with room, from, seq and time,
direct messages, /join /part /nick /msg /who /rooms /history /help,
`reply` events, and `quit` when a session ends. The test adds members
that have no connection ("bob") and makes them talk, and can cut every
connection as a crash of the server would.

It is not the server (plugins/chat is): it is the protocol written a
second time, independently of the clients under test, so that a client
can be tested on its own. Frames are encoded with acproto.

A session runs over a link: anything with recv() (the next bytes from
the client; EOFError or OSError at the end), send(bytes),
send_pieces(list), abort() and `closed`. The web client's tests wrap a
WebSocket (tests/web/test_web.py); `FakeChatServer` here serves plain
TCP or a unix socket. Frames the server sends for one event go out
together in one send(), and the session_init split over two, so a
client's framing is exercised on both sides of an edge.

    chat = FakeChat()
    with FakeChatServer(chat) as srv:       # srv.port
        s = chat.wait_session(1)            # s.ack: the session_ack Frame
        chat.say("lobby", chat.ghost("lobby", "bob"), "hello")
"""

import datetime
import os
import re
import socket
import threading
import uuid

import acproto

TEXT = acproto.TEXT_UTF8
SERVER_SET = ("event", "from", "seq", "time", "room", "to")


def now_rfc3339():
    """The current time as CHAT.md spells it (UTC, milliseconds)."""
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def fold(name):
    """ASCII case folding, as CHAT.md compares names."""
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in name)


class Room:
    def __init__(self, name):
        self.name = name
        self.seq = 0
        self.history = []       # (seq, frame bytes), as first delivered
        self.members = {}       # session id -> Session or Ghost


class Ghost:
    """A member with no connection (the test speaks for it)."""

    def __init__(self, nick):
        self.sid = str(uuid.uuid4())
        self.nick = nick

    def event(self, *args, **members):
        return b""

    def deliver(self, frames):
        pass


ROOM_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def nick_problem(nick):
    """The error token for a nick CHAT.md refuses, or None."""
    if not 1 <= len(nick) <= 32 or nick[0] in "#/@" or \
            any(c.isspace() or ord(c) < 32 or 0x7f <= ord(c) <= 0x9f
                for c in nick):
        return "bad_nick"
    return None


class TcpLink:
    """A session's link over a connected stream socket."""

    def __init__(self, sock):
        self.sock = sock
        self.closed = False
        self.lock = threading.Lock()

    def recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("EOF")
        return data

    def send(self, data):
        with self.lock:
            if self.closed:
                raise OSError("closed")
            self.sock.sendall(data)

    def send_pieces(self, pieces):
        for p in pieces:
            self.send(p)

    def abort(self):
        with self.lock:
            self.closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Session:
    """One session: its handshake, what it sent, its rooms."""

    def __init__(self, chat, link, origin=None):
        self.chat = chat
        self.ws = link
        self.origin = origin
        self.sid = str(uuid.uuid4())
        self.nick = None
        self.ack = None         # the session_ack Frame
        self.frames = []        # every verified frame after the ack
        self.errors = []        # FrameError tokens and link problems
        self.current = None     # fold(room) joined last
        self.ended = False
        self.reason = "connection lost"

    # -- what the test reads --------------------------------------------
    def messages(self):
        return [f for f in self.frames if f.type == "message"]

    def pings(self):
        return [f for f in self.frames if f.type == "heartbeat"]

    # -- the connection --------------------------------------------------
    def run(self):
        init = acproto.encode("session_init", "Session established",
                              self.sid, key=self.chat.key)
        cut = self.chat.init_split
        dec = acproto.Decoder(self.chat.key)
        try:
            self.ws.send_pieces([init[:cut], init[cut:]] if cut else [init])
            while True:
                data = self.ws.recv()
                dec.feed(data)
                for item in dec:
                    with self.chat.cond:
                        self.handle(item)
                        self.chat.cond.notify_all()
        except Exception as e:      # the end of the link, however it came
            self.errors.append("link: %s" % e)
        finally:
            with self.chat.cond:
                self.ended = True
                self.chat.gone(self)
                self.chat.cond.notify_all()

    def deliver(self, frames):
        """Send frames (bytes) to the client in one send()."""
        if frames and not self.ws.closed:
            try:
                self.ws.send(b"".join(frames))
            except OSError as e:
                self.errors.append("send: %s" % e)

    def event(self, event, text, **members):
        members["event"] = event
        return acproto.encode("message", text, self.sid, TEXT,
                              self.chat.key, members)

    def reply(self, command, error=None, text=None):
        if text is None:
            text = ("%s: %s" % (command, error)) if error else \
                "%s: ok" % command
        m = {"command": command, "status": "error" if error else "ok"}
        if error:
            m["error"] = error
        return self.event("reply", text, **m)

    # -- what the page sent ----------------------------------------------
    def handle(self, item):
        if isinstance(item, acproto.FrameError):
            self.errors.append(item.token)
            return
        if self.ack is None:
            if item.type == "session_ack" and item.session_id == self.sid:
                self.ack = item
                self.chat.handshake(self)
            else:
                self.errors.append("before the ack: %s" % item.type)
            return
        self.frames.append(item)
        if item.type == "disconnect":
            self.reason = "client-disconnect"
        elif item.type == "heartbeat":
            self.deliver([acproto.encode("heartbeat", "pong", self.sid,
                                         key=self.chat.key)])
        elif item.type == "message" and item.session_id == self.sid:
            text = item.text()
            if item.content_type.startswith("text/plain") and \
                    text.startswith("/") and not text.startswith("//"):
                self.chat.command(self, text)
            else:
                self.chat.relay(self, item)


class FakeChat:
    """The shared state of every session: rooms, nicks, history."""

    def __init__(self, key="default-key", default_room="lobby"):
        self.key = key
        self.default_room = default_room
        self.cond = threading.Condition()
        self.rooms = {}
        self.sessions = []      # in the order they connected
        self.init_split = 30    # bytes of session_init in its first message
        self.ignore_since = False   # replay everything (a sloppy server)
        self.history = True     # as with the history plugin

    def serve(self, link, origin=None):
        """Run one session over link until it ends (blocks)."""
        s = Session(self, link, origin)
        with self.cond:
            self.sessions.append(s)
            self.cond.notify_all()
        s.run()

    def wait(self, pred, timeout=20.0, what="the condition"):
        """Wait until pred() (called under the lock) is true."""
        with self.cond:
            if not self.cond.wait_for(pred, timeout):
                raise AssertionError("timed out waiting for %s" % what)
            return pred()

    def wait_session(self, n, timeout=20.0):
        """The n-th session (1-based) once its session_ack has arrived."""
        return self.wait(lambda: len(self.sessions) >= n and
                         self.sessions[n - 1].ack is not None and
                         self.sessions[n - 1],
                         timeout, "session %d's session_ack" % n)

    def live(self):
        return [s for s in self.sessions if not s.ended]

    def drop_all(self):
        """Cut every connection, as a crash of the server would."""
        for s in self.live():
            s.ws.abort()
        self.wait(lambda: not self.live(), what="every session to end")

    # -- rooms -------------------------------------------------------------
    def room(self, name):
        r = self.rooms.get(fold(name))
        if r is None:
            r = self.rooms[fold(name)] = Room(name)
        return r

    def nick_taken(self, nick, but=None):
        for r in self.rooms.values():
            for m in r.members.values():
                if m is not but and m.nick is not None and \
                        fold(m.nick) == fold(nick):
                    return True
        return any(s is not but and not s.ended and s.nick is not None and
                   fold(s.nick) == fold(nick) for s in self.sessions)

    def handshake(self, s):
        h = s.ack.header
        want = h.get("nick")
        out = []
        if isinstance(want, str) and not nick_problem(want) and \
                not self.nick_taken(want, s):
            s.nick = want
        else:
            s.nick = "guest-" + s.sid[:8]
            if want is not None:
                out.append(s.reply("nick", "nick_in_use" if isinstance(
                    want, str) and not nick_problem(want) else "bad_nick"))
        rooms = [r for r in h.get("rooms") or [] if isinstance(r, dict) and
                 isinstance(r.get("room"), str)]
        # The default room is joined first, with the since the ack gives
        # it, so that its replay starts where the client stopped.
        since = [r.get("since") for r in rooms
                 if fold(r["room"]) == fold(self.default_room)]
        self.join(s, self.default_room, since[0] if since else None, out)
        for r in rooms:
            if not ROOM_RE.match(r["room"]):
                out.append(s.reply("join", "bad_room"))
            elif fold(r["room"]) == fold(self.default_room):
                s.current = fold(self.default_room)
            else:
                self.join(s, r["room"], r.get("since"), out)
        s.deliver(out)

    def join(self, s, name, since, out):
        """Join s to a room; its own frames are added to out."""
        r = self.room(name)
        if s.sid in r.members:
            s.current = fold(r.name)
            if since is None:
                return
        else:
            r.members[s.sid] = s
            text = "* %s joined #%s" % (s.nick, r.name)
            ev = None
            for m in r.members.values():
                if m is s:
                    ev = s.event("join", text, room=r.name, nick=s.nick,
                                 session=s.sid)
                    out.append(ev)
                else:
                    m.deliver([m.event("join", text, room=r.name,
                                       nick=s.nick, session=s.sid)])
            out.append(s.event("names", "* in #%s: %s" % (r.name, " ".join(
                m.nick for m in r.members.values())), room=r.name,
                names=[{"nick": m.nick, "session": m.sid}
                       for m in r.members.values()]))
        s.current = fold(r.name)
        self.replay(s, r, since, out)

    def replay(self, s, r, since, out, count=50):
        """The replay of a room after SINCE (or its last count), then
        history-end, added to out."""
        if since is None or self.ignore_since:
            replay = r.history[-count:] if since is None else r.history
        else:
            replay = [x for x in r.history if x[0] > since]
        out.extend(raw for _, raw in replay)
        out.append(s.event("history-end", "* end of #%s history" % r.name,
                           room=r.name, seq=r.seq, replayed=len(replay),
                           truncated=False))

    def gone(self, s):
        """A session ended: it leaves its rooms, and everyone who shared
        one with it gets one quit event."""
        told = set()
        for r in self.rooms.values():
            if r.members.pop(s.sid, None) is None:
                continue
            for m in r.members.values():
                if m.sid not in told:
                    told.add(m.sid)
                    m.deliver([m.event("quit", "* %s quit (%s)" % (
                        s.nick, s.reason), nick=s.nick, session=s.sid,
                        reason=s.reason)])

    def neighbours(self, s):
        """Every member sharing a room with s, s included, once each."""
        seen = {s.sid: s}
        for r in self.rooms.values():
            if s.sid in r.members:
                for m in r.members.values():
                    seen.setdefault(m.sid, m)
        return list(seen.values())

    # -- messages ----------------------------------------------------------
    def relayed(self, sender, content, content_type, extra, room=None,
                to=None, time=None):
        """The frame the server makes of a message, and its seq."""
        members = {k: v for k, v in extra.items() if k not in SERVER_SET}
        seq = None
        if room is not None:
            room.seq += 1
            seq = room.seq
            members["room"] = room.name
        if to is not None:
            members["to"] = to
        members["from"] = sender.nick
        if seq is not None:
            members["seq"] = seq
        members["time"] = time or now_rfc3339()
        raw = acproto.encode("message", content, sender.sid, content_type,
                             self.key, members)
        return raw, seq

    def to_room(self, sender, r, content, content_type, extra, time=None):
        raw, seq = self.relayed(sender, content, content_type, extra, room=r,
                                time=time)
        r.history.append((seq, raw))
        for m in r.members.values():
            m.deliver([raw])
        return seq

    def relay(self, s, f):
        h = f.header
        extra = {k: v for k, v in h.items()
                 if k not in ("type", "content_type", "session_id")}
        if isinstance(h.get("to"), str):
            peer = self.find(h["to"])
            if peer is None:
                s.deliver([s.reply("message", "no_such_nick")])
                return
            raw, _ = self.relayed(s, f.content, f.content_type, extra,
                                  to=peer.nick)
            peer.deliver([raw])
            s.deliver([raw])
            return
        name = h.get("room") if isinstance(h.get("room"), str) else \
            (self.rooms[s.current].name if s.current in self.rooms else None)
        r = self.rooms.get(fold(name)) if name else None
        if r is None or s.sid not in r.members:
            s.deliver([s.reply("message", "not_in_room")])
            return
        self.to_room(s, r, f.content, f.content_type, extra)

    def find(self, nick):
        for r in self.rooms.values():
            for m in r.members.values():
                if fold(m.nick) == fold(nick):
                    return m
        return None

    def command(self, s, text):
        words = text[1:].split()
        name = words[0].lower() if words else ""
        out = []
        if name == "join" and len(words) >= 2:
            since = int(words[2]) if len(words) >= 3 and \
                words[2].isdigit() else None
            if not ROOM_RE.match(words[1]):
                out.append(s.reply("join", "bad_room"))
            else:
                out.append(s.reply("join"))
                self.join(s, words[1], since, out)
        elif name == "part":
            r = self.rooms.get(fold(words[1])) if len(words) >= 2 else \
                self.rooms.get(s.current)
            if r is None or s.sid not in r.members:
                out.append(s.reply("part", "not_in_room"))
            else:
                text = "* %s left #%s" % (s.nick, r.name)
                for m in list(r.members.values()):
                    ev = m.event("part", text, room=r.name, nick=s.nick,
                                 session=s.sid)
                    out.append(ev) if m is s else m.deliver([ev])
                del r.members[s.sid]
                out.append(s.reply("part"))
        elif name == "nick" and len(words) == 2:
            if nick_problem(words[1]):
                out.append(s.reply("nick", "bad_nick"))
            elif self.nick_taken(words[1], s):
                out.append(s.reply("nick", "nick_in_use"))
            else:
                old, s.nick = s.nick, words[1]
                text = "* %s is now %s" % (old, s.nick)
                for m in self.neighbours(s):
                    ev = m.event("nick", text, old=old, nick=s.nick,
                                 session=s.sid)
                    out.append(ev) if m is s else m.deliver([ev])
                out.append(s.reply("nick"))
        elif name == "msg" and len(words) >= 3:
            peer = self.find(words[1])
            if peer is None:
                out.append(s.reply("msg", "no_such_nick"))
            else:
                body = text[1:].split(None, 2)[2]
                raw, _ = self.relayed(s, body.encode(), TEXT, {},
                                      to=peer.nick)
                if peer is not s:
                    peer.deliver([raw])
                out.append(raw)
                out.append(s.reply("msg"))
        elif name == "rooms":
            rooms = [r for r in self.rooms.values() if r.members]
            out.append(s.event("rooms", "* %d rooms" % len(rooms), rooms=[
                {"room": r.name, "members": len(r.members)} for r in rooms]))
            out.append(s.reply("rooms"))
        elif name == "history":
            r = self.rooms.get(s.current)
            n = int(words[1]) if len(words) >= 2 and words[1].isdigit() \
                else 50
            if not self.history or r is None:
                out.append(s.reply("history", "no_history"))
            else:
                out.append(s.reply("history"))
                self.replay(s, r, None, out, count=n)
        elif name == "who":
            r = self.rooms.get(fold(words[1])) if len(words) >= 2 else \
                self.rooms.get(s.current)
            if r is None or s.sid not in r.members:
                out.append(s.reply("who", "not_in_room"))
            else:
                out.append(s.event("names", "* in #%s: %s" % (r.name, " ".join(
                    m.nick for m in r.members.values())), room=r.name,
                    names=[{"nick": m.nick, "session": m.sid}
                           for m in r.members.values()]))
                out.append(s.reply("who"))
        elif name == "help":
            out.append(s.reply("help", text="commands: /join /part /nick "
                               "/msg /who /rooms /history /help"))
        else:
            out.append(s.reply(name or "?", "unknown_command"))
        s.deliver(out)

    # -- the test speaking for members without a connection ---------------
    def ghost(self, room, who):
        """Add a member with no connection (a nick, or a ghost made before)
        to a room; the others see it join."""
        with self.cond:
            g = Ghost(who) if isinstance(who, str) else who
            r = self.room(room)
            r.members[g.sid] = g
            text = "* %s joined #%s" % (g.nick, r.name)
            for m in r.members.values():
                m.deliver([m.event("join", text, room=r.name, nick=g.nick,
                                   session=g.sid)])
            return g

    def say(self, room, ghost, text, time=None):
        """A ghost's message to a room; returns its seq."""
        with self.cond:
            return self.to_room(ghost, self.room(room), text, TEXT, {},
                                time=time)

    def whisper(self, ghost, to_nick, text):
        """A ghost's direct message to a session."""
        with self.cond:
            peer = self.find(to_nick)
            raw, _ = self.relayed(ghost, text, TEXT, {}, to=peer.nick)
            peer.deliver([raw])


class FakeChatServer:
    """Serves a FakeChat on 127.0.0.1 (a free port) or a unix socket path,
    one thread per connection; `accepting` False refuses connections (they
    are accepted and closed at once), as a server that is down would."""

    def __init__(self, chat, unix_path=None):
        self.chat = chat
        self.unix_path = unix_path
        if unix_path is not None:
            self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.lsock.bind(unix_path)
        else:
            self.lsock = socket.socket()
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.lsock.bind(("127.0.0.1", 0))
            self.port = self.lsock.getsockname()[1]
        self.lsock.listen(16)
        self.accepting = True
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                return
            if self.stopped or not self.accepting:
                conn.close()
                continue
            if self.unix_path is None:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn):
        try:
            self.chat.serve(TcpLink(conn))
        finally:
            conn.close()

    def stop(self):
        """Stop accepting and cut every connection."""
        self.stopped = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        for s in self.chat.live():
            s.ws.abort()
        if self.unix_path is not None:
            try:
                os.unlink(self.unix_path)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()
