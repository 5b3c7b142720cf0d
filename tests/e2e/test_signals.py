#!/usr/bin/env python3
"""Signals to a live asyncchatd: SIGTERM/SIGINT shutdown, SIGHUP reload
(echo -> broadcast with a client connected throughout; a broken config
keeps the old one; listeners added and removed; logger reopened)."""

import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import acproto
from harness import SERVER, Server, main, test_plugin, transports
from harness import _live as live_procs


def check_shutdown(t, sig, label):
    srv = Server(plugins=["echo"], start=False)
    pid_file = os.path.join(srv.dir, "asyncchatd.pid")
    srv.server_opts["pid_file"] = pid_file
    srv.write_config()
    srv.start()
    clients = [srv.client("tcp"), srv.client("unix"), srv.client("tcp")]
    pending = srv.client("unix", handshake=False)
    pending.handshake(ack=False)
    for c in clients:
        c.sync()
    # (read once sessions are served: asyncchatd writes it after it logs
    # its listeners)
    try:
        with open(pid_file) as f:
            pid_text = f.read().strip()
    except OSError as e:
        pid_text = str(e)
    t.eq(pid_text, str(srv.pid), "%s: pid_file holds the server's pid" % label)
    srv.signal(sig)
    for i, c in enumerate(clients + [pending]):
        try:
            frames = c.recv_until_closed(4)
            closed = True
        except acproto.Timeout:
            frames, closed = [], False
        d = [f for f in frames if f.type == "disconnect"]
        ok = False
        if d:
            f = d[0]
            try:
                body = f.json()
            except ValueError:
                body = None
            ok = f.content_type == "application/json" and \
                f.session_id == c.session_id and isinstance(body, dict) and \
                body.get("message") == "Disconnecting" and \
                body.get("reason") == "Server shutting down"
        t.ok(ok, "%s: %s client %d gets disconnect 'Server shutting down'"
             % (label, c.name, i), repr(frames))
        t.ok(closed, "%s: %s client %d closed" % (label, c.name, i))
        c.close()
    rc = srv.wait_exit(5)
    t.eq(rc, 0, "%s: exit status 0" % label, srv.log()[-2000:])
    if rc is None:
        srv.kill()
    t.ok(not os.path.exists(srv.unix_path), "%s: unix socket file removed" % label)
    t.ok(not os.path.exists(pid_file), "%s: pid_file removed" % label)
    t.ok(re.search(r"AddressSanitizer|runtime error|LeakSanitizer", srv.log()) is None,
         "%s: no errors in the log" % label, srv.log()[-2000:])


def case_sigterm(t):
    check_shutdown(t, signal.SIGTERM, "SIGTERM")


def case_sigint(t):
    check_shutdown(t, signal.SIGINT, "SIGINT")


def case_sigterm_idle(t):
    srv = Server(plugins=["echo", "broadcast", "logger"], start=False)
    srv.sections = {"logger": {"path": os.path.join(srv.dir, "m.log")}}
    srv.write_config()
    srv.start()
    rc, clean = srv.stop()
    t.eq((rc, clean), (0, True), "no clients, three plugins: SIGTERM -> exit 0 promptly")
    t.ok(not os.path.exists(srv.unix_path), "unix socket file removed")


def case_sigterm_stuck_reader(t):
    # The shutdown flush is bounded (2 s): a client that never reads, with
    # megabytes queued for it, cannot hold the server up.
    with Server(plugins=["broadcast"]) as srv:
        stuck = srv.client("tcp", name="stuck", rcvbuf=4096)
        other = srv.client("unix", name="other")
        talker = srv.client("tcp", name="talker")
        frame = talker.frame("message", b"S" * 65536)
        for i in range(64):            # 4 MiB: under the default 32 MiB bound
            talker.send_raw(frame)
            other.recv_frame(5)
        t.eq(talker.sync(), [], "4 MiB queued for a client that never reads")
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        frames = []
        try:
            frames = other.recv_until_closed(5)
        except acproto.Timeout:
            pass
        t.ok(any(f.type == "disconnect" for f in frames),
             "a reading client still gets its disconnect", repr(frames))
        rc = srv.wait_exit(6)
        elapsed = time.monotonic() - t0
        t.eq(rc, 0, "exit 0 with a stuck client", srv.log()[-2000:])
        t.ok(rc is not None and elapsed < 4.5, "exit within the bounded flush (2 s) + margin",
             "took %.1f s" % elapsed)
        if rc is None:
            srv.kill()
        for c in (stuck, other, talker):
            c.close()


def spawn_until_listening(srv):
    """Start asyncchatd with stderr on a pipe; return it the moment it has
    logged its unix listener (or ended, or after 10 s)."""
    p = subprocess.Popen([SERVER, "-f", "-c", srv.confpath],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    live_procs.append(p)
    out = b""
    mark = ("listening on unix://" + srv.unix_path).encode()
    deadline = time.monotonic() + 10
    while mark not in out and time.monotonic() < deadline and p.poll() is None:
        r, _, _ = select.select([p.stderr], [], [], 0.5)
        if r:
            out += p.stderr.read1(4096)
    return p


def reap(p, timeout=5):
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    live_procs.remove(p)
    p.stderr.close()
    return rc


def case_signal_at_once(t):
    # A supervisor may signal as soon as the server says it listens: a
    # SIGTERM must still shut down in order (exit 0, socket file removed)
    # and a SIGHUP must not kill it.  Racy by nature, so a few rounds each.
    rounds = 8
    srv = Server(plugins=["echo"], start=False)
    bad = []
    for i in range(rounds):
        p = spawn_until_listening(srv)
        p.send_signal(signal.SIGTERM)
        rc = reap(p)
        left = os.path.exists(srv.unix_path)
        if rc != 0 or left:
            bad.append("round %d: status %s, socket file %s" %
                       (i, rc, "left" if left else "removed"))
        if left:
            os.unlink(srv.unix_path)
    t.ok(not bad, "SIGTERM right after 'listening on': exit 0 and socket removed "
         "(%d rounds)" % rounds, "\n".join(bad))
    bad = []
    for i in range(rounds):
        p = spawn_until_listening(srv)
        p.send_signal(signal.SIGHUP)
        time.sleep(0.1)
        alive = p.poll() is None
        if alive:
            p.send_signal(signal.SIGTERM)
        rc = reap(p)
        if not alive:
            bad.append("round %d: SIGHUP ended it with status %s" % (i, rc))
        if os.path.exists(srv.unix_path):
            os.unlink(srv.unix_path)
    t.ok(not bad, "SIGHUP right after 'listening on' does not kill the server "
         "(%d rounds)" % rounds, "\n".join(bad))


def wait_reloaded(t, srv, a, b, timeout=5.0):
    """Probe until a's message reaches b instead of echoing back to a."""
    deadline = time.monotonic() + timeout
    i = 0
    while time.monotonic() < deadline:
        i += 1
        sent = a.send_message(b"probe %d" % i)
        mine = a.sync()
        if [f.raw for f in mine] == [sent]:
            time.sleep(0.05)    # still echo: old config
            continue
        if mine:
            return False, "unexpected %r" % mine
        try:
            f = b.recv_frame(2)
        except acproto.Timeout:
            return False, "broadcast not received by b"
        return f.raw == sent, repr(f)
    return False, "still echoing after %.1f s" % timeout


def case_sighup_swap(t):
    with Server(plugins=["echo"]) as srv:
        a = srv.client("tcp", name="a")
        sent = a.send_message(b"before")
        t.eq(a.recv_frame().raw, sent, "echo before SIGHUP")
        sid = a.session_id
        srv.write_config(plugins=["broadcast"])
        b = srv.client("unix", name="b")
        srv.signal(signal.SIGHUP)
        ok, why = wait_reloaded(t, srv, a, b)
        t.ok(ok, "after SIGHUP: a's message reaches b, not a (echo -> broadcast)", why)
        t.ok(srv.poll() is None, "server still running")
        t.eq(a.session_id, sid, "client a connected throughout")
        c = srv.client("tcp", name="c")
        sent = c.send_message(b"from c")
        t.eq(a.recv_frame().raw, sent, "new client's message broadcast to a")
        t.eq(b.recv_frame().raw, sent, "new client's message broadcast to b")
        t.eq(c.sync(), [], "sender excluded (include_sender default no)")
        # and back: broadcast with include_sender = yes
        srv.write_config(plugins=["broadcast"], sections={"broadcast": {"include_sender": "yes"}})
        srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        ok = False
        while time.monotonic() < deadline and not ok:
            sent = a.send_message(b"probe")
            ok = [f.raw for f in a.sync()] == [sent]
            for x in (b, c):
                x.expect_silence(0.05)
        t.ok(ok, "plugin section re-read on SIGHUP (include_sender = yes)")
        for x in (a, b, c):
            x.close()


def case_sighup_mid_frame(t):
    # a reload between two halves of a frame: the frame still arrives whole
    # and goes through the new chain
    with Server(plugins=["echo"]) as srv:
        a = srv.client("tcp", name="a")
        p = srv.client("tcp", name="probe")
        q = srv.client("unix", name="probe2")
        frame = a.frame("message", b"split across a reload" * 50)
        a.send_raw(frame[:40])            # inside the fixed header
        srv.write_config(plugins=["broadcast"])
        srv.signal(signal.SIGHUP)
        ok, why = wait_reloaded(t, srv, p, q)
        t.ok(ok, "reloaded (probe: echo -> broadcast)", why)
        a.send_raw(frame[40:500])
        time.sleep(0.05)
        a.send_raw(frame[500:])
        got = None
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            f = q.recv_frame(3)
            if f.session_id == a.session_id:
                got = f
                break
        t.ok(got is not None and got.raw == frame,
             "the half-sent frame completes after the reload and is broadcast",
             repr(got))
        for c in (a, p, q):
            c.close()


def case_sighup_under_load(t):
    # Reloads that swap plugins while messages flow: nothing crashes,
    # sessions survive, each message is handled by one chain or the next.
    tag = test_plugin("tag")
    srv = Server(plugins=["echo"], start=False)
    logpath = os.path.join(srv.dir, "m.log")
    configs = [
        dict(plugins=["broadcast"], sections={}),
        dict(plugins=["echo", "logger"], sections={"logger": {"path": logpath}}),
        dict(plugins=[tag, "broadcast"], sections={"tag": {"tag": "T"}}),
        dict(plugins=["logger", "broadcast"], sections={"logger": {"path": logpath},
                                                        "broadcast": {"include_sender": "yes"}}),
        dict(plugins=["echo"], sections={}),
    ]
    with srv.start():
        cs = [srv.client(tr, name="%s%d" % (tr, i)) for i, tr in enumerate(["tcp", "unix", "tcp"])]
        stop = []
        errors = []
        counts = {c.name: 0 for c in cs}

        def talk(c):
            try:
                i = 0
                while not stop:
                    i += 1
                    c.send_message(b"load %d" % i)
                    for f in c.expect_silence(0.005):
                        counts[c.name] += 1
            except Exception as e:
                errors.append("%s: %r" % (c.name, e))

        ths = [threading.Thread(target=talk, args=(c,)) for c in cs]
        for th in ths:
            th.start()
        try:
            for i in range(10):
                cfg = configs[i % len(configs)]
                srv.write_config(plugins=cfg["plugins"], sections=cfg["sections"])
                srv.signal(signal.SIGHUP)
                time.sleep(0.15)
        finally:
            stop.append(1)
            for th in ths:
                th.join(10)
        t.eq(errors, [], "clients talked through 10 reloads without an error")
        t.ok(srv.poll() is None, "server still running")
        t.ok(all(v > 0 for v in counts.values()), "every client received frames meanwhile",
             repr(counts))
        # the last config is plain echo
        for c in cs:
            c.expect_silence(0.3)
            sent = c.send_message(b"final")
            got = c.sync()
            t.ok(got and got[-1].raw == sent, "%s: served by the last config (echo)" % c.name,
                 repr(got[-3:]))
            c.close()


def case_sighup_broken_config(t):
    with Server(plugins=["echo"]) as srv:
        a = srv.client("unix")
        good = open(srv.confpath).read()
        broken = good.replace("[plugins]", "bogus_key_e2e = 1\n\n[plugins]", 1)
        srv.write_config(broken)
        lineno = broken.splitlines().index("bogus_key_e2e = 1") + 1
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        m = srv.wait_log(re.escape(srv.confpath) + r":%d:.*bogus_key_e2e" % lineno,
                         timeout=3, start=mark)
        t.ok(m is not None, "broken config: error logged as FILE:LINE: ... key",
             srv.log()[mark:])
        t.ok(srv.poll() is None, "server still running")
        sent = a.send_message(b"still echo")
        t.eq(a.recv_frame().raw, sent, "old config (echo) still in force for the connected client")
        with srv.client("tcp") as c:
            sent = c.send_message(b"new client")
            t.eq(c.recv_frame().raw, sent, "new clients still accepted and echoed")
        # a config whose plugin cannot be loaded is refused the same way
        srv.write_config(plugins=["echo", "no_such_plugin_e2e"])
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        m = srv.wait_log(r"no_such_plugin_e2e", timeout=3, start=mark)
        t.ok(m is not None, "unloadable plugin on SIGHUP: error logged", srv.log()[mark:])
        time.sleep(0.2)
        sent = a.send_message(b"still echo 2")
        t.eq(a.recv_frame().raw, sent, "old plugins still in force")
        # a good config is then taken
        srv.write_config(plugins=["broadcast"])
        b = srv.client("tcp")
        srv.signal(signal.SIGHUP)
        ok, why = wait_reloaded(t, srv, a, b)
        t.ok(ok, "a fixed config is taken on the next SIGHUP", why)
        a.close()
        b.close()
        rc, clean = srv.stop()
        t.eq((rc, clean), (0, True), "exit 0 after all that")


def case_sighup_listeners(t):
    with Server(plugins=["echo"], unix=False) as srv:
        a = srv.client("tcp")
        upath = os.path.join(srv.dir, "added.sock")
        srv.unix_path = upath
        # the tcp line is unchanged: that listener is kept as it is
        srv.write_config(server={"listen": ["tcp://127.0.0.1:0", "unix://" + upath]})
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        m = srv.wait_log(re.escape("listening on unix://" + upath), timeout=3, start=mark)
        t.ok(m is not None and os.path.exists(upath), "unix listener added on SIGHUP",
             srv.log()[mark:])
        c = None
        try:
            c = srv.client("unix")
            sent = c.send_message(b"via added listener")
            ok = c.recv_frame().raw == sent
        except Exception as e:
            ok = False
            why = str(e)
        t.ok(ok, "the added listener serves", lambda: why)
        t.eq(a.sync(), [], "tcp client connected throughout")
        # now drop the tcp listener: existing sessions survive, new connects fail
        srv.write_config(server={"listen": ["unix://" + upath]})
        srv.signal(signal.SIGHUP)
        refused = False
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not refused:
            s = socket.socket()
            s.settimeout(1)
            try:
                s.connect(("127.0.0.1", srv.port))
                time.sleep(0.05)
            except OSError:
                refused = True
            finally:
                s.close()
        t.ok(refused, "tcp listener removed on SIGHUP")
        t.eq(a.sync(), [], "the tcp session survives its listener")
        if c:
            c.close()
        a.close()
        rc, clean = srv.stop()
        t.eq(rc, 0, "exit 0")
        t.ok(not os.path.exists(upath), "added unix socket removed at exit")


def case_sighup_listener_name(t):
    """A host name is resolved at start only: a reload that adds a listener
    by name is refused (resolving it would block the loop), one that adds
    a numeric address is taken, and a named listener from the start is
    kept by reloads without being resolved again."""
    srv = Server(plugins=["echo"], tcp=False, start=False)
    unix = "unix://" + srv.unix_path
    srv.write_config(server={"listen": ["tcp://localhost:0", unix]})
    with srv.start():
        t.ok(srv.wait_log(r"listening on tcp://(127\.0\.0\.1|\[::1\]):\d+",
                          timeout=3) is not None,
             "a host name is resolved at start", srv.log())
        a = srv.client("unix")
        # another spelling of the name: a new listener (URLs are its identity)
        srv.write_config(server={"listen": ["tcp://localhost:0", unix,
                                            "tcp://LOCALHOST:0"]})
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        m = srv.wait_log(r"reload failed: tcp://LOCALHOST:0: a host name is "
                         r"resolved only at start", timeout=3, start=mark)
        t.ok(m is not None, "a listener added by name on SIGHUP is refused, "
             "saying why", srv.log()[mark:])
        m = srv.wait_log(r"keeping the running configuration", timeout=3,
                         start=mark)
        t.ok(m is not None, "and the running configuration is kept")
        sent = a.send_message(b"still here")
        t.eq(a.recv_frame().raw, sent, "the server serves throughout")
        srv.write_config(server={"listen": ["tcp://localhost:0", unix,
                                            "tcp://127.0.0.1:0"]})
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        m = srv.wait_log(r"configuration reloaded", timeout=3, start=mark)
        t.ok(m is not None and "reload failed" not in srv.log()[mark:],
             "a numeric listener is added, the named one kept",
             srv.log()[mark:])
        a.close()
        rc, clean = srv.stop()
        t.eq(rc, 0, "exit 0")


def case_sighup_logger_reopen(t):
    srv = Server(plugins=["echo", "logger"], start=False)
    path = os.path.join(srv.dir, "m.log")
    srv.sections = {"logger": {"path": path}}
    srv.write_config()
    with srv.start():
        a = srv.client("tcp")
        a.send_message(b"one")
        a.recv_frame()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not (os.path.exists(path) and os.path.getsize(path)):
            time.sleep(0.05)
        os.rename(path, path + ".1")
        srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not os.path.exists(path):
            a.sync()
            time.sleep(0.05)
        a.send_message(b"two")
        a.recv_frame()
        deadline = time.monotonic() + 3
        content = b""
        while time.monotonic() < deadline:
            try:
                content = open(path, "rb").read()
            except OSError:
                content = b""
            if b"two" in content:
                break
            time.sleep(0.05)
        t.ok(b'"two"' in content and b'"one"' not in content,
             "after rename + SIGHUP the logger writes a new file", repr(content))
        old = open(path + ".1", "rb").read()
        t.ok(b'"one"' in old and b'"two"' not in old, "the rotated file kept the old line",
             repr(old))
        a.close()


if __name__ == "__main__":
    main([case_sigterm, case_sigint, case_sigterm_idle, case_signal_at_once,
          case_sigterm_stuck_reader,
          case_sighup_swap, case_sighup_mid_frame, case_sighup_under_load,
          case_sighup_broken_config, case_sighup_listeners,
          case_sighup_listener_name, case_sighup_logger_reopen])
