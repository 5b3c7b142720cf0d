"""A chat-layer client for the tests of the chat plugin (docs/CHAT.md).

Built on acproto.Client: joining at the handshake (nick and rooms in the
session_ack), commands as text, and helpers to pick events out of the
frames a step caused.  Every wait has a timeout; "what did this cause" is
read with sync() (a ping: the server answers in order, so everything a
step queued for this client arrives before the pong).

    a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
    got = a.cmd("/join ops")           # frames before the pong
    reply(got)["status"] == "ok"
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acproto  # noqa: E402

TEXT = acproto.TEXT_UTF8


class ChatClient(acproto.Client):
    """acproto.Client plus chat steps; .welcome holds the handshake's frames."""

    def chat_handshake(self, nick=None, rooms=None, extra=None, timeout=5.0):
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


def connect(srv, transport="tcp", nick=None, rooms=None, extra=None,
            key=Ellipsis, sock_client=None):
    """A connected, handshaken ChatClient (its handshake frames in .welcome)."""
    if sock_client is not None:
        c = sock_client
    else:
        if key is Ellipsis:
            key = srv.key
        c = ChatClient.connect(srv.addr(transport), key=key, name=transport)
    c.chat_handshake(nick=nick, rooms=rooms, extra=extra)
    return c


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
