"""A chat-layer client (docs/CHAT.md) for the tests that talk to asyncchatd
with the chat plugin: the plugin's own (tests/e2e/test_chat*.py) and the
terminal client's end to end (tests/client/test_chat_e2e.py), where it
plays the other people in the room.

Built on acproto.Client: joining at the handshake (nick and rooms in the
session_ack), commands as text, and helpers to pick events out of the
frames a step caused.  Every wait has a timeout; "what did this cause" is
read with sync() (a ping: the server answers in order, so everything a
step queued for this client arrives before the pong), or, for what comes
later (a replay from a history backend, another client's doing), with
wait_for() and a predicate.

    a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
    got = a.cmd("/join ops")           # frames before the pong
    reply(got)["status"] == "ok"
    a.wait_for(is_said("hi", room="dev"), "hi in #dev")
"""

import json
import time

import acproto

TEXT = acproto.TEXT_UTF8


class ChatClient(acproto.Client):
    """acproto.Client plus chat steps; .welcome holds the handshake's frames."""

    def chat_ack(self, nick=None, rooms=None, extra=None, timeout=5.0):
        """Answer session_init with a session_ack carrying nick and rooms."""
        f = self.recv_frame(timeout)
        if f.type != "session_init":
            raise acproto.ProtocolViolation("expected session_init, got %r" % f)
        self.session_id = f.session_id
        ack = dict(extra or {})
        if nick is not None:
            ack["nick"] = nick
        if rooms is not None:
            ack["rooms"] = rooms
        self.send("session_ack", b"Session acknowledged", extra=ack)
        self.welcome = []

    def chat_handshake(self, nick=None, rooms=None, extra=None, timeout=5.0):
        """chat_ack(), then the frames the handshake caused (.welcome)."""
        self.chat_ack(nick, rooms, extra, timeout)
        self.welcome = self.sync(timeout)
        return self.welcome

    def say(self, text, extra=None, content_type=TEXT, type_="message"):
        """Send text (str or bytes) as a message; return the frame's bytes."""
        if isinstance(text, str):
            text = text.encode("utf-8")
        return self.send(type_, text, content_type=content_type, extra=extra)

    def cmd(self, text, extra=None, timeout=5.0):
        """Send a line (a command or a message) and return what it caused."""
        self.say(text, extra)
        return self.sync(timeout)

    def wait_for(self, pred, what, timeout=15.0):
        """The first frame that pred accepts; the frames before it are
        dropped. AssertionError naming what after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            f = None
            if left > 0:
                try:
                    f = self.recv_frame(left)
                except acproto.Timeout:
                    pass
            if f is None:
                raise AssertionError("timed out waiting for " + what)
            if pred(f):
                return f


def connect(srv, transport="tcp", nick=None, rooms=None, extra=None,
            key=Ellipsis, sock_client=None, sync=True):
    """A connected, handshaken ChatClient (its handshake frames in .welcome).
    With sync=False it returns once the session_ack is sent, .welcome
    empty: the handshake's frames are read as any others."""
    if sock_client is not None:
        c = sock_client
    else:
        if key is Ellipsis:
            key = srv.key
        c = ChatClient.connect(srv.addr(transport), key=key, name=transport)
    if sync:
        c.chat_handshake(nick=nick, rooms=rooms, extra=extra)
    else:
        c.chat_ack(nick=nick, rooms=rooms, extra=extra)
    return c


def is_event(name, **members):
    """A predicate for an event of this name with these members."""
    return lambda f: f.header.get("event") == name and all(
        f.header.get(k) == v for k, v in members.items())


def is_said(text, **members):
    """A predicate for a relayed message with this text and members."""
    return lambda f: f.type == "message" and "event" not in f.header and \
        f.text() == text and all(f.header.get(k) == v
                                 for k, v in members.items())


def events(frames, name=None):
    """The event frames among frames (of one kind when name is given)."""
    return [f for f in frames if "event" in f.header and
            (name is None or f.header["event"] == name)]


def messages(frames):
    """The frames that are not events (room and direct messages)."""
    return [f for f in frames if f.type in ("message", "chunk") and
            "event" not in f.header]


def replies(frames):
    return events(frames, "reply")


def reply(frames):
    """The one reply event among frames (a command has exactly one)."""
    r = replies(frames)
    if len(r) != 1:
        raise AssertionError("expected one reply, got %d: %r" % (len(r), frames))
    return r[0].header


def error_of(frames):
    """The error token of the one reply, or None when it is ok."""
    h = reply(frames)
    return h.get("error") if h.get("status") == "error" else None


def names_of(frames, room=None):
    """The nicks of the names events among frames (of room), in order."""
    out = []
    for f in events(frames, "names"):
        if room is None or f.header.get("room") == room:
            out += [e["nick"] for e in f.header["names"]]
    return out


def header_text(f):
    return json.dumps(f.header, sort_keys=True)
