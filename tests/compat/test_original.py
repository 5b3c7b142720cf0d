#!/usr/bin/env python3
"""The original Python client ("Async Socket Chat", vistart/python-socket-
demo) against asyncchatd with logger, chat and history: in file mode, its
tcp_client.py sets a nick, joins a room and talks there with one of our
clients (tests/lib/chat.py), each seeing the other's message by name
(issue 14).  The original is not part of this tree and never copied into
it: the test runs its files from a checkout named by AC_ORIGINAL_DIR, and
skips without one (tests/compat/README.md).

tcp_client.py imports aioconsole, a package Debian does not ship, for its
interactive mode only; the test puts a stand-in of its own (a few lines,
below) first on the original's PYTHONPATH.  Nothing is written into the
checkout (no bytecode either).  TAP on stdout; the original's own output
is shown as diagnostics."""

import os
import re
import sys

from chat import connect, is_event, is_said
from harness import Server, main, mkdtemp, skip_all
from procs import Process, wait_until

WAIT = 20.0
ORIGINAL = os.environ.get("AC_ORIGINAL_DIR", "")
NEEDED = ("tcp_client.py", "base_client.py", "message.py", "interfaces.py")

# Our own stand-in, not the aioconsole package: file mode never calls it.
AIOCONSOLE_STANDIN = '''"""Stand-in for the aioconsole package, written for asyncchat's
tests/compat/test_original.py: the original tcp_client.py imports it for
its interactive mode, which the test does not use."""


async def ainput(prompt=""):
    raise EOFError("aioconsole stand-in: no console in this test")
'''

LINES = ["/nick orig", "/join dev", "hello from the original client", "exit"]


def case_original_chats(t):
    d = mkdtemp("accompat-")
    standin = os.path.join(d, "standin")
    os.mkdir(standin)
    with open(os.path.join(standin, "aioconsole.py"), "w") as f:
        f.write(AIOCONSOLE_STANDIN)
    msgfile = os.path.join(d, "messages.txt")
    with open(msgfile, "w") as f:
        f.write("\n".join(LINES) + "\n")
    srv = Server(plugins=["logger", "chat", "history"],
                 sections={"logger": {"path": os.path.join(d, "chat.log")},
                           "chat": {},
                           "history": {"path": os.path.join(d, "h.db")}})
    with srv:
        ours = connect(srv, nick="ours", rooms=[{"room": "dev"}])
        if not any(is_event("history-end", room="dev")(f)
                   for f in ours.welcome):
            ours.wait_for(is_event("history-end", room="dev"),
                          "ours in #dev")

        env = dict(os.environ)
        env["PYTHONPATH"] = standin
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        out = os.path.join(d, "original.out")
        orig = Process([sys.executable, os.path.join(ORIGINAL,
                                                     "tcp_client.py"),
                        "file", msgfile, "127.0.0.1", str(srv.port)],
                       out, cwd=d, env=env, name="tcp_client.py")

        try:
            talk(t, ours, orig)
        finally:
            for line in orig.log().splitlines():
                t.diag("original: " + line)
        t.ok(wait_until(lambda: "hello from the original client" in
                        open(os.path.join(d, "chat.log")).read(), WAIT),
             "the logger wrote its message")
        with open(os.path.join(d, "chat.log")) as logf:
            t.ok('"nick":"orig"' in logf.read(), "with the nick orig")


def talk(t, ours, orig):
    """What the two clients see of each other in #dev."""
    ours.wait_for(is_event("join", room="dev", nick="orig"),
                  "orig joining #dev", WAIT)
    t.ok(True, "the original client took the nick orig (/nick) and "
         "joined #dev (/join), typed as text")
    f = ours.wait_for(is_said("hello from the original client", room="dev"),
                      "orig's message", WAIT)
    t.eq((f.header["from"], f.header["room"], f.header["seq"]),
         ("orig", "dev", 1), "our client gets its line in #dev, from orig")
    # The original takes each read as one frame and drops a read holding
    # two (docs/CHAT.md), so ours is sent once it has read its own echo:
    # nothing else is then on its way to it.
    t.ok(wait_until(lambda: "Decoded: hello from the original client" in
                    orig.log(), WAIT), "the original shows its own line, "
         "relayed back to it in #dev")
    ours.say("hello orig, from ours", extra={"room": "dev"})
    t.ok(wait_until(lambda: "Decoded: hello orig, from ours" in orig.log(),
                    WAIT), "and ours, as it receives it")
    q = ours.wait_for(is_event("quit", nick="orig"), "orig leaving", WAIT)
    t.eq(q.header["reason"], "client-disconnect", "it leaves with a "
         "disconnect frame after `exit`")
    t.eq(orig.wait_exit(WAIT), 0, "the original client ends with status 0")
    text = orig.log()
    t.ok(re.search(r"Decoded: \* guest-[0-9a-f]{8} joined #lobby", text),
         "it showed an event as its text line (its join of the lobby)")
    t.ok("Decoded: * end of #dev history" in text, "its /join's "
         "history-end came in a read of its own, after the join, names "
         "and reply (chat waits before a plain session's replay)")
    t.ok("Invalid magic" not in text and "Incomplete header" not in text,
         "no read of it began inside a frame: it stayed in step")


if __name__ == "__main__":
    if not ORIGINAL:
        skip_all("AC_ORIGINAL_DIR does not name a checkout of the original "
                 "client (vistart/python-socket-demo); tests/compat/README.md")
    missing = [n for n in NEEDED
               if not os.path.isfile(os.path.join(ORIGINAL, n))]
    if missing:
        skip_all("AC_ORIGINAL_DIR=%s has no %s: not a checkout of the "
                 "original client" % (ORIGINAL, ", ".join(missing)))
    main([case_original_chats])
