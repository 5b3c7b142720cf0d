#!/usr/bin/env python3
"""asyncchat interactive mode through a pseudo-terminal against asyncchatd:
type a line and see it come back; a message from another client appears
above the prompt while a half-typed line stays intact (checked on the raw
bytes and on a real screen under tmux); another participant's control
characters shown escaped, so no one can forge a line (raw bytes and tmux);
`exit`, Ctrl+D, Ctrl+C; a server shutdown. TAP on stdout."""

import os
import re
import shutil
import subprocess
import time

import harness
from harness import CLIENT, SERVER, main, skip_all
from term import Pty, plain


def server(plugins=("broadcast",)):
    return harness.Server(plugins=list(plugins),
                          sections={"broadcast": {"include_sender": "yes"}})


def start_client(srv, transport="unix"):
    if transport == "unix":
        argv = [CLIENT, "unix", "interactive", srv.unix_path]
    else:
        argv = [CLIENT, "tcp", "interactive", "127.0.0.1", str(srv.port)]
    p = Pty(argv)
    return p, p.expect(rb"Session ([0-9a-f-]{36})[\s\S]*> ", 5)


def case_type_and_see(t):
    with server(("echo",)) as srv:
        for tr in ("tcp", "unix"):
            p, m = start_client(srv, tr)
            try:
                t.ok(m is not None, "%s: connected, session shown, prompt"
                     % tr, plain(p.out))
                mark = len(p.out)
                p.type("héllo from the pty ☃\r")
                t.ok(p.expect(rb"\[\d\d:\d\d:\d\d [0-9a-f]{8}\] "
                              rb"h\xc3\xa9llo from the pty \xe2\x98\x83",
                              5, mark),
                     "%s: typed line comes back as [HH:MM:SS tag] text" % tr,
                     plain(p.out))
                mark = len(srv.log())
                p.type("exit\r")
                t.ok(p.wait(5) == 0, "%s: `exit` leaves with status 0" % tr,
                     plain(p.out))
                t.ok(srv.wait_log(r"closed reason=client-disconnect", 3,
                                  mark),
                     "%s: the server logs a clean disconnect" % tr,
                     srv.log()[mark:])
            finally:
                p.close()


def case_half_typed_line(t):
    with server() as srv:
        p, m = start_client(srv)
        try:
            t.ok(m is not None, "half line: connected", plain(p.out))
            other = srv.client("tcp")
            p.type("half typ")
            t.ok(p.expect(rb"half typ", 3), "half line: echoed as typed")
            time.sleep(0.2)
            mark = len(p.out)
            other.send_message("a message from elsewhere".encode(),
                               content_type="text/plain; charset=utf-8")
            got = p.expect(rb"a message from elsewhere[\s\S]*half typ", 5,
                           mark)
            after = p.out[mark:]
            t.ok(got is not None, "half line: message printed, then the "
                 "half line redrawn", repr(after))
            msg_at = after.find(b"a message from elsewhere")
            t.ok(b"half typ" not in after[:msg_at] or
                 after[:msg_at].rfind(b"\r") >= 0,
                 "half line: the message starts on a line of its own",
                 repr(after))
            tail = plain(after[msg_at:]).split("\n")
            t.ok(len(tail) >= 2 and tail[-1].endswith("> half typ"),
                 "half line: prompt and text intact on the last line",
                 repr(tail))
            mark = len(p.out)
            p.type("ed line\r")
            t.ok(p.expect(rb"\] half typed line", 5, mark),
                 "half line: finishing it sends the whole line",
                 plain(p.out[mark:]))
            mark = len(srv.log())
            p.type("\x04")      # Ctrl+D on an empty line
            t.ok(p.wait(5) == 0, "Ctrl+D leaves with status 0", plain(p.out))
            t.ok(srv.wait_log(r"closed reason=client-disconnect", 3, mark),
                 "Ctrl+D: clean disconnect logged", srv.log()[mark:])
            other.close()
        finally:
            p.close()


TEXT = "text/plain; charset=utf-8"

# What another participant sends, and how asyncchat must show it: on one
# line, terminal controls escaped, printable UTF-8 as it is.
HOSTILE = [
    (b"hi\r[12:00:00 deadbeef] I am someone else",
     rb"hi\r[12:00:00 deadbeef] I am someone else", TEXT),
    (b"one\n[12:00:01 deadbeef] two", rb"one\n[12:00:01 deadbeef] two",
     TEXT),
    (b"\x1b[2J\x1b[31mred\x1b[0m \x07bell \x7fdel",
     rb"\x1b[2J\x1b[31mred\x1b[0m \x07bell \x7fdel", TEXT),
    ("c1 \u009b31m nel\u0085 bidi \u202eevil\u202c sep\u2028".encode(),
     rb"c1 \u009b31m nel\u0085 bidi \u202eevil\u202c sep\u2028", TEXT),
    (b"bad utf-8 \xff\xc3( end", rb"bad utf-8 \xff\xc3( end", TEXT),
    ("ünïcødé ☃ 日本語 🎉\ttab".encode(), "ünïcødé ☃ 日本語 🎉\ttab".encode(),
     TEXT),
    (b"octets \n\r", rb"octets \n\r", "application/octet-stream"),
    (b"octets \x1b[2J", rb"<binary: 11 bytes, application/octet-stream>",
     "application/octet-stream"),
]


def case_hostile_text(t):
    """Another participant's message cannot put a control character on
    the terminal: CR, LF, ESC, C1 controls, bidi overrides and invalid
    UTF-8 come out escaped, on the message's own line (raw bytes)."""
    with server() as srv:
        p, m = start_client(srv)
        try:
            t.ok(m is not None, "hostile text: connected", plain(p.out))
            other = srv.client("tcp")
            for sent, shown, ctype in HOSTILE:
                mark = len(p.out)
                other.send_message(sent, content_type=ctype)
                got = p.expect(rb"\[\d\d:\d\d:\d\d [0-9a-f]{8}\] "
                               rb"([^\r\n]*)\r?\n", 5, mark)
                line = got.group(1) if got else None
                t.ok(line == shown, "hostile text %r shown as %r" % (
                    sent[:24], shown[:24]), repr(p.out[mark:]))
            out = p.out
            t.ok(b"\x1b[31m" not in out and b"\x1b[2J" not in out and
                 b"\xc2\x9b" not in out and b"\x07" not in out and
                 b"\xe2\x80\xae" not in out,
                 "hostile text: no raw control sequence reached the "
                 "terminal", repr(out[-400:]))
            other.close()
        finally:
            p.close()


def case_ctrl_c(t):
    with server() as srv:
        p, m = start_client(srv)
        try:
            p.type("some text")
            p.expect(rb"some text", 3)
            start = time.monotonic()
            p.type("\x03")
            st = p.wait(3)
            t.ok(st is not None and st != 0 and time.monotonic() - start < 2,
                 "Ctrl+C quits at once (status %s)" % st, plain(p.out))
        finally:
            p.close()


def case_server_disconnect(t):
    with server() as srv:
        p, m = start_client(srv)
        try:
            t.ok(m is not None, "server disconnect: connected", plain(p.out))
            srv.stop()
            st = p.wait(5)
            t.ok(st is not None and st != 0 and
                 "Server shutting down" in plain(p.out),
                 "server disconnect: reason printed, client exits (%s)" % st,
                 plain(p.out))
        finally:
            p.close()


def case_tmux_screen(t):
    """The same half-line check on a real terminal screen."""
    if shutil.which("tmux") is None:
        t.skip("tmux screen", "tmux not installed")
        return
    with server() as srv:
        sock = os.path.join(srv.dir, "tmux.sock")
        tmux = ["tmux", "-S", sock, "-f", "/dev/null"]
        try:
            subprocess.run(tmux + ["new-session", "-d", "-x", "100", "-y",
                                   "20", "env", "TERM=screen",
                                   "INPUTRC=/dev/null", "LC_ALL=C.UTF-8",
                                   CLIENT, "unix", "interactive",
                                   srv.unix_path], check=True, timeout=10)

            def screen():
                r = subprocess.run(tmux + ["capture-pane", "-p"],
                                   stdout=subprocess.PIPE, timeout=10)
                return [l.rstrip() for l in
                        r.stdout.decode("utf-8", "replace").splitlines()]

            def wait_screen(pred, timeout=5):
                end = time.monotonic() + timeout
                while time.monotonic() < end:
                    s = screen()
                    if pred(s):
                        return s
                    time.sleep(0.05)
                return screen()

            s = wait_screen(lambda s: any(l.startswith(">") for l in s))
            subprocess.run(tmux + ["send-keys", "-l", "draft in progress"],
                           check=True, timeout=10)
            wait_screen(lambda s: "> draft in progress" in s)
            other = srv.client("tcp")
            for i in range(3):
                other.send_message(("interrupting %d" % i).encode(),
                                   content_type="text/plain; charset=utf-8")
            s = wait_screen(lambda s: any("interrupting 2" in l for l in s))
            lines = [l for l in s if l]
            t.ok(lines and lines[-1] == "> draft in progress",
                 "tmux: the draft is intact on the last line", "\n".join(s))
            msgs = [l for l in lines if "interrupting" in l]
            t.ok(len(msgs) == 3 and all(re.match(
                r"^\[\d\d:\d\d:\d\d [0-9a-f]{8}\] interrupting \d$", l)
                for l in msgs), "tmux: each message on its own clean line",
                "\n".join(s))
            subprocess.run(tmux + ["send-keys", "Enter"], check=True,
                           timeout=10)
            s = wait_screen(lambda s: any(re.search(r"\] draft in progress$",
                                                    l) for l in s))
            t.ok(any(re.search(r"\] draft in progress$", l) for l in s),
                 "tmux: Enter sends the draft, it comes back", "\n".join(s))

            # A participant tries to forge a line from someone else.
            other.send_message(b"innocent\r[12:00:00 deadbeef] forged\n"
                               b"[12:00:01 deadbeef] forged too",
                               content_type="text/plain; charset=utf-8")
            s = wait_screen(lambda s: any("innocent" in l for l in s))
            mine = [l for l in s if "innocent" in l]
            t.ok(not any(l.startswith("[12:00:0") for l in s) and
                 len(mine) == 1 and re.match(
                     r"^\[\d\d:\d\d:\d\d [0-9a-f]{8}\] innocent\\r"
                     r"\[12:00:00 deadbeef\] forged\\n\[12:00:01 "
                     r"deadbeef\] forged too$", mine[0]),
                 "tmux: CR and LF in a message are shown escaped on its "
                 "own line, no forged line", "\n".join(s))
            other.close()
        finally:
            subprocess.run(tmux + ["kill-server"], timeout=10,
                           stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    if not os.path.exists(SERVER):
        skip_all("server binary not built: " + SERVER)
    main([case_type_and_see, case_half_typed_line, case_hostile_text,
          case_ctrl_c,
          case_server_disconnect, case_tmux_screen])
