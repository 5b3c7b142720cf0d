#!/usr/bin/env python3
"""asyncchat file mode against asyncchatd (echo and broadcast plugins):
every line back in order with UTF-8 intact, standard input, the `exit`
line, 10,000 lines with --pipeline, a wrong key, the key from -k,
--key-file and ASYNCCHAT_KEY, no server, a server that shuts down. TAP on
stdout."""

import json
import os
import socket
import subprocess
import time

import harness
from harness import BUILDDIR, CLIENT, SERVER, main, mkdtemp, skip_all
from procs import run

LINES = ["first", "wörld ☃ — ünïcødé", "日本語のテキスト", "emoji 🎉",
         "  spaced  ", "", "\tlast\t"]
WANT = [l for l in LINES if l.strip()]


def texts(out):
    """The text part of plain output lines."""
    return [l.split("] ", 1)[1] for l in out.splitlines() if "] " in l]


def write_input(d, lines, name="in.txt"):
    path = os.path.join(d, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def server(plugins=("echo",), sections=None):
    return harness.Server(plugins=list(plugins), sections=sections)


def harness_server(**kw):
    import harness
    return harness.Server(plugins=["echo"], **kw)


def target(srv, transport):
    if transport == "unix":
        return ["unix", "file"], [srv.unix_path]
    return ["tcp", "file"], ["127.0.0.1", str(srv.port)]


def client_file(srv, transport, path, *opts, **kw):
    mode, where = target(srv, transport)
    return run([CLIENT] + list(opts) + mode + [path] + where, **kw)


def case_echo(t):
    with server() as srv:
        path = write_input(srv.dir, LINES)
        for tr in ("tcp", "unix"):
            start = len(srv.log())
            rc, out, err = client_file(srv, tr, path)
            t.ok(rc == 0 and err == "", "echo %s: exit status 0, no errors"
                 % tr, err)
            t.ok(texts(out) == WANT, "echo %s: every line back in order, "
                 "UTF-8 intact" % tr, out)
            t.ok(srv.wait_log(r"closed reason=client-disconnect", 3, start),
                 "echo %s: the server logs a clean disconnect" % tr,
                 srv.log()[start:])


def case_stdin_json(t):
    with server() as srv:
        data = ("\n".join(LINES) + "\nexit\nafter exit\n").encode()
        rc, out, err = client_file(srv, "tcp", "-", "--json",
                                   stdin_data=data)
        objs = [json.loads(l) for l in out.splitlines()]
        t.ok(rc == 0, "stdin: exit status 0", err)
        t.ok([o.get("content") for o in objs] == WANT,
             "stdin: lines up to `exit` echoed as JSON, in order", out)
        t.ok(all(o.get("type") == "message" and
                 o.get("content_type") == "text/plain; charset=utf-8" and
                 len(o.get("from") or "") == 36 and o.get("time")
                 for o in objs), "stdin: JSON fields time/from/type/"
             "content_type", out)


def case_exit_line(t):
    with server() as srv:
        path = write_input(srv.dir, ["one", "two", "  EXIT ", "three"])
        rc, out, err = client_file(srv, "unix", path)
        t.ok(rc == 0 and texts(out) == ["one", "two"],
             "exit: nothing after the `exit` line is sent", out + err)


def case_broadcast(t):
    with server(("broadcast",),
                {"broadcast": {"include_sender": "yes"}}) as srv:
        watcher = srv.client("tcp")
        path = write_input(srv.dir, LINES)
        rc, out, err = client_file(srv, "tcp", path)
        t.ok(rc == 0 and texts(out) == WANT,
             "broadcast: the sender gets every line back in order",
             out + err)
        got, senders = [], set()
        deadline = time.monotonic() + 5
        while len(got) < len(WANT) and time.monotonic() < deadline:
            f = watcher.recv_frame(5)
            if f.type == "message":
                got.append(f.content.decode("utf-8"))
                senders.add(f.session_id)
        t.ok(got == WANT, "broadcast: another session receives them in "
             "order", repr(got))
        t.ok(len(senders) == 1 and watcher.session_id not in senders,
             "broadcast: relayed frames carry the sender's session id",
             repr(senders))
        watcher.close()


def case_many(t):
    lines = ["%05d %s" % (i, "ü" * (i % 50)) for i in range(10000)]
    with server() as srv:
        path = write_input(srv.dir, lines)
        start = time.monotonic()
        rc, out, err = client_file(srv, "tcp", path, "--pipeline",
                                   timeout=120)
        took = time.monotonic() - start
        got = texts(out)
        t.ok(rc == 0 and got == lines, "10,000 lines --pipeline over tcp: "
             "nothing lost, in order (%.2f s)" % took,
             "%d lines back; %s" % (len(got), err))
        rc, out, err = client_file(srv, "unix", path, "-q", "--pipeline",
                                   timeout=120)
        t.ok(rc == 0 and out == "", "10,000 lines --pipeline -q over unix",
             err)
    with server(("broadcast",),
                {"broadcast": {"include_sender": "yes"}}) as srv:
        path = write_input(srv.dir, lines)
        rc, out, err = client_file(srv, "unix", path, "--json",
                                   "--pipeline", timeout=120)
        got = [json.loads(l)["content"] for l in out.splitlines()]
        t.ok(rc == 0 and got == lines, "10,000 lines --pipeline through "
             "broadcast: nothing lost", "%d back; %s" % (len(got), err))
        rc, out, err = client_file(srv, "tcp", path, timeout=120)
        t.ok(rc == 0 and texts(out) == lines, "10,000 lines one in flight: "
             "nothing lost", "%d back; %s" % (len(texts(out)), err))


def case_interval(t):
    with server() as srv:
        path = write_input(srv.dir, ["a", "b", "c", "d"])
        start = time.monotonic()
        rc, out, err = client_file(srv, "tcp", path, "--interval", "250",
                                   "--pipeline")
        took = time.monotonic() - start
        t.ok(rc == 0 and texts(out) == ["a", "b", "c", "d"] and took >= 0.7,
             "--interval 250: paced (%.2f s for 4 lines)" % took, out + err)


def case_wrong_key(t):
    with server() as srv:
        path = write_input(srv.dir, ["secret"])
        for tr in ("tcp", "unix"):
            rc, out, err = client_file(srv, tr, path, "-k", "not-the-key")
            t.ok(rc == 3 and "hmac: session_init failed verification"
                 in err and out == "",
                 "wrong key %s: the hmac failure shown, status 3 (%d)"
                 % (tr, rc), err)
            t.ok(len(err.strip().splitlines()) == 1,
                 "wrong key %s: one line on stderr" % tr, err)
        keyfile = os.path.join(srv.dir, "key")
        with open(keyfile, "w") as f:
            f.write("default-key\n")
        rc, out, err = client_file(srv, "tcp", path, "--key-file", keyfile)
        t.ok(rc == 0 and texts(out) == ["secret"],
             "--key-file with the right key works", err)


def case_key_sources(t):
    """The key from $ASYNCCHAT_KEY, -k before it, an empty variable
    refused, and the -k argument wiped from what ps shows."""
    key = "env-secret-Kq7"
    with harness_server(key=key, server={"log_level": "debug"}) as srv:
        path = write_input(srv.dir, ["by env"])
        env = {"ASYNCCHAT_KEY": key}
        rc, out, err = client_file(srv, "tcp", path, env=env)
        t.ok(rc == 0 and texts(out) == ["by env"],
             "ASYNCCHAT_KEY gives the key", out + err)
        rc, out, err = client_file(srv, "tcp", path,
                                   env={"ASYNCCHAT_KEY": "not-the-key"})
        t.ok(rc == 3 and "hmac" in err,
             "a wrong ASYNCCHAT_KEY fails on the HMAC (%d)" % rc, err)
        rc, out, err = client_file(srv, "tcp", path, "-k", key,
                                   env={"ASYNCCHAT_KEY": "not-the-key"})
        t.ok(rc == 0 and texts(out) == ["by env"],
             "-k takes precedence over ASYNCCHAT_KEY", out + err)
        rc, out, err = client_file(srv, "tcp", path,
                                   env={"ASYNCCHAT_KEY": ""})
        t.ok(rc == 2 and "ASYNCCHAT_KEY is set but empty" in err,
             "an empty ASYNCCHAT_KEY is a usage error (%d)" % rc, err)

        # ps reads /proc/PID/cmdline: once the session is up, the key
        # given with -k is no longer there (the option itself still is).
        if not os.path.exists("/proc/self/cmdline"):
            t.skip("-k wiped from the command line", "no /proc")
            return
        mark = len(srv.log())
        p = subprocess.Popen([CLIENT, "-k", key, "tcp", "file", "-",
                              "127.0.0.1", str(srv.port)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            up = srv.wait_log(r"session \S+ acknowledged", 10, mark)
            with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                cmdline = f.read()
            t.ok(up and key.encode() not in cmdline and b"-k" in cmdline,
                 "-k KEY: the key is gone from /proc/PID/cmdline once "
                 "connected", repr(cmdline))
        finally:
            out, err = p.communicate(timeout=20)    # closes its stdin
        t.ok(p.returncode == 0, "-k KEY: then leaves cleanly at the end "
             "of its input", err)


def case_no_server(t):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()   # nothing listens there now
    d = mkdtemp("acc.")
    path = write_input(d, ["x"])
    rc, out, err = run([CLIENT, "tcp", "file", path, "127.0.0.1", str(port)])
    t.ok(rc != 0 and "connect to 127.0.0.1 port %d" % port in err and
         "refused" in err, "no tcp server: clear message, status %d" % rc,
         err)
    sock = os.path.join(d, "none.sock")
    rc, out, err = run([CLIENT, "unix", "file", path, sock])
    t.ok(rc != 0 and sock in err and "No such file" in err,
         "no unix server: clear message, status %d" % rc, err)
    rc, out, err = run([CLIENT, "tcp", "interactive", "127.0.0.1",
                        str(port)])
    t.ok(rc != 0 and "refused" in err,
         "no server, interactive: clear message, status %d" % rc, err)
    rc, out, err = run([CLIENT, "tcp", "file", os.path.join(d, "missing"),
                        "127.0.0.1", str(port)])
    t.ok(rc != 0 and "missing" in err, "missing input file: clear message",
         err)
    rc, out, err = run([CLIENT])
    t.ok(rc == 2 and "usage" in err, "no arguments: usage, status 2", err)
    rc, out, err = run([CLIENT, "--help"])
    t.ok(rc == 0 and "tcp file FILE [host] [port]" in out, "--help", out)


def case_server_shutdown(t):
    with server() as srv:
        p = subprocess.Popen([CLIENT, "unix", "file", "-", srv.unix_path],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        p.stdin.write(b"before shutdown\n")
        p.stdin.flush()
        srv.wait_log(r"message|session .* (opened|acknowledged|established)",
                     3)
        time.sleep(0.5)
        srv.stop()
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        err = err.decode()
        t.ok(p.returncode != 0 and "Server shutting down" in err,
             "server shutdown: its reason shown, status %s"
             % p.returncode, err)
        t.ok(b"before shutdown" in out, "server shutdown: earlier line "
             "echoed", out)


def case_addresses(t):
    six = harness.ipv6_available()
    with harness.Server(plugins=["echo"], tcp6=six) as srv:
        path = write_input(srv.dir, ["by name"])
        # localhost may resolve to ::1 first; every address is tried.
        rc, out, err = run([CLIENT, "tcp", "file", path, "localhost",
                            str(srv.port)])
        t.ok(rc == 0 and texts(out) == ["by name"],
             "tcp by name (localhost): every address tried", out + err)
        if not six:
            t.skip("tcp over IPv6", "no IPv6 loopback here")
            return
        rc, out, err = run([CLIENT, "tcp", "file", path, "::1",
                            str(srv.port6)])
        t.ok(rc == 0 and texts(out) == ["by name"], "tcp over IPv6 (::1)",
             out + err)


def case_example(t):
    hello = os.path.join(BUILDDIR, "examples", "client", "hello")
    with server() as srv:
        rc, out, err = run([hello, "127.0.0.1", str(srv.port)])
        t.ok(rc == 0 and "says: Hello from libasyncchat" in out,
             "examples/client/hello against asyncchatd", out + err)


if __name__ == "__main__":
    if not os.path.exists(SERVER):
        skip_all("server binary not built: " + SERVER)
    main([case_echo, case_stdin_json, case_exit_line, case_broadcast,
          case_many, case_interval, case_wrong_key, case_key_sources,
          case_no_server,
          case_server_shutdown, case_addresses, case_example])
