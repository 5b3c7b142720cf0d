#!/usr/bin/env python3
"""asyncchat file mode against a deliberately minimal server shaped like the
original Python one (one frame decoded per 1024-byte read, one reply per
message): every line arrives, heartbeats are answered, disconnect is sent.
TAP on stdout."""

import base64
import json
import os
import subprocess
import time

from harness import BUILDDIR, CLIENT, main, mkdtemp
from minimal_server import MinimalServer
from procs import run

LINES = ["hello", "wörld ☃ — ünïcødé", "  leading and trailing  ", "",
         "日本語のテキスト", "emoji 🎉", "last line"]


def write_input(d, lines, name="in.txt"):
    path = os.path.join(d, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def received(events):
    return [e[len("message "):] for e in events if e.startswith("message ")]


def check_session(t, srv, label, want):
    ok = srv.wait_for(lambda ev: "closed" in ev)
    ev = srv.events()
    t.ok(ok, "%s: the server saw the connection close" % label, srv.log())
    sess = [e for e in ev if not e.startswith(("listening", "dropped"))]
    t.ok(len(sess) > 2 and sess[0].startswith("session ") and sess[1] == "ack",
         "%s: session_ack is the first frame" % label, srv.log())
    t.ok(received(ev) == want, "%s: every line reached the server in order"
         % label, "want %r\ngot  %r" % (want, received(ev)))
    disc = [e for e in ev if e.startswith("disconnect ")]
    body = None
    if disc:
        try:
            body = json.loads(disc[0][len("disconnect "):])
        except ValueError:
            pass
    t.ok(isinstance(body, dict) and body.get("message") == "Disconnecting"
         and isinstance(body.get("reason"), str),
         "%s: disconnect sent with the JSON content" % label, srv.log())


def case_tcp_file(t):
    with MinimalServer() as srv:
        path = write_input(srv.dir, LINES + ["exit", "never sent"])
        rc, out, err = run([CLIENT, "tcp", "file", path, "127.0.0.1",
                            str(srv.port)])
        want = [l for l in LINES if l.strip()]
        t.ok(rc == 0, "tcp: exit status 0", err)
        got = [l.split("] ", 1)[1] for l in out.splitlines() if "] " in l]
        t.ok(got == ["Server received: " + l for l in want],
             "tcp: one reply printed per line, in order, UTF-8 intact",
             out + err)
        t.ok(all(l.startswith("[") and l[9] == " " and l[18] == "]"
                 for l in out.splitlines()),
             "tcp: lines look like [HH:MM:SS abcdef12] text", out)
        check_session(t, srv, "tcp", want)


def case_unix_stdin(t):
    sock = os.path.join(mkdtemp("acc."), "m.sock")
    with MinimalServer(unix_path=sock) as srv:
        data = ("\n".join(LINES) + "\n").encode()
        rc, out, err = run([CLIENT, "--json", "unix", "file", "-", sock],
                           stdin_data=data)
        want = [l for l in LINES if l.strip()]
        t.ok(rc == 0, "unix stdin: exit status 0", err)
        objs = [json.loads(l) for l in out.splitlines()]
        t.ok([o.get("content") for o in objs] ==
             ["Server received: " + l for l in want],
             "unix stdin: one JSON object per reply, in order", out)
        t.ok(all(set(o) >= {"time", "from", "type", "content_type"}
                 and o["type"] == "message" for o in objs),
             "unix stdin: JSON has time, from, type, content_type", out)
        check_session(t, srv, "unix stdin", want)


def case_many_lines(t):
    with MinimalServer() as srv:
        lines = ["line %d %s" % (i, "x" * (i % 300)) for i in range(1, 501)]
        path = write_input(srv.dir, lines)
        start = time.monotonic()
        rc, out, err = run([CLIENT, "-q", "tcp", "file", path, "127.0.0.1",
                            str(srv.port)], timeout=120)
        took = time.monotonic() - start
        t.ok(rc == 0 and out == "", "500 lines: quiet, exit status 0", err)
        srv.wait_for(lambda ev: "closed" in ev)
        t.ok(received(srv.events()) == lines,
             "500 lines: none lost by a one-frame-per-read server",
             "got %d of %d" % (len(received(srv.events())), len(lines)))
        t.ok(took < 30, "500 lines: no fixed sleep per line (%.1f s)" % took)


def case_heartbeat(t):
    with MinimalServer() as srv:
        # Hold stdin open past one heartbeat interval (5 s), then send.
        p = subprocess.Popen([CLIENT, "tcp", "file", "-", "127.0.0.1",
                              str(srv.port)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        got_ack = srv.wait_for(lambda ev: "ack" in ev)
        time.sleep(6.5)
        out, err = p.communicate("after heartbeat\n".encode(), timeout=30)
        srv.wait_for(lambda ev: "closed" in ev)
        ev = srv.events()
        pings = ev.count("ping")
        t.ok(got_ack and pings >= 2,
             "heartbeat: pings sent while idle (%d)" % pings, srv.log())
        t.ok(p.returncode == 0 and b"Server received: after heartbeat" in out,
             "heartbeat: pongs taken, session still usable", out + err)
        t.ok(received(ev) == ["after heartbeat"] and
             any(e.startswith("disconnect ") for e in ev),
             "heartbeat: the line and the disconnect arrived", srv.log())


def case_binary(t):
    with MinimalServer() as srv:
        path = write_input(srv.dir, ["binary please"])
        rc, out, err = run([CLIENT, "tcp", "file", path, "127.0.0.1",
                            str(srv.port)])
        t.ok(rc == 0 and "<binary: 14 bytes, image/png>" in out and
             "\x1b" not in out,
             "binary: shown as size and content_type, no raw bytes", repr(out))
        rc, out, err = run([CLIENT, "--json", "tcp", "file", path,
                            "127.0.0.1", str(srv.port)])
        o = json.loads(out.splitlines()[0]) if out else {}
        t.ok(o.get("size") == 14 and base64.b64decode(
            o.get("content_base64", "")) == b"\x89PNG\r\n\x1a\n\x00\x01\x1b[2J"
             and "content" not in o,
             "binary: --json gives content_base64 and size", out)


def case_example(t):
    hello = os.path.join(BUILDDIR, "examples", "client", "hello")
    if not os.path.exists(hello):
        t.skip("example program", "examples/client/hello not built")
        return
    with MinimalServer() as srv:
        rc, out, err = run([hello, "127.0.0.1", str(srv.port)])
        t.ok(rc == 0 and "Server received: Hello from libasyncchat" in out,
             "examples/client/hello talks to a server", out + err)


if __name__ == "__main__":
    main([case_tcp_file, case_unix_stdin, case_many_lines, case_binary,
          case_example, case_heartbeat])
