#!/usr/bin/env python3
"""Timeouts and resource limits of a live asyncchatd: heartbeat timeout,
handshake timeout, slow consumer, max_clients, max_output_buffer checks,
a burst of connects."""

import os
import random
import re
import resource
import selectors
import socket
import threading
import time

import acproto
from harness import Server, main, transports


def wait_closed(c, timeout):
    """Return (frames before EOF, seconds until EOF) or (frames, None)."""
    t0 = time.monotonic()
    try:
        frames = c.recv_until_closed(timeout)
        return frames, time.monotonic() - t0
    except acproto.Timeout:
        return [], None


def disconnect_reason(frames):
    for f in frames:
        if f.type == "disconnect":
            try:
                return f.json().get("reason")
            except (ValueError, AttributeError):
                return "(bad disconnect content %r)" % f.content
    return None


def case_heartbeat_timeout(t):
    with Server(plugins=["echo"], server={"heartbeat_timeout": 0.8}) as srv:
        trs = transports()
        # timing: silent sessions are closed after about the timeout, not
        # long before it
        cs = [srv.client(tr) for tr in trs]
        t0 = time.monotonic()
        for tr, c in zip(trs, cs):
            frames, after = wait_closed(c, 3.0)
            elapsed = time.monotonic() - t0
            t.ok(after is not None and 0.6 <= elapsed <= 2.5,
                 "%s: silent session closed between 0.6 and 2.5 s (timeout 0.8 s)" % tr,
                 "elapsed %.2f s" % elapsed)
            c.close()
        # life: pings and messages keep sessions open past the timeout,
        # while silent ones beside them are closed
        silent = [srv.client(tr, name="silent-" + tr) for tr in trs]
        lively = [srv.client(tr, name="lively-" + tr) for tr in trs]
        talkers = [srv.client(tr, name="talker-" + tr) for tr in trs]
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:     # 2.5 times the timeout
            for c in lively:
                c.ping()
            for c in talkers:
                sent = c.send_message(b"alive")
                c.recv_frame()
            time.sleep(0.2)
        for tr, c in zip(trs, silent):
            frames, after = wait_closed(c, 2.0)
            t.ok(after is not None, "%s: silent session closed" % tr)
            t.eq(disconnect_reason(frames), "Heartbeat timeout",
                 "%s: disconnect reason 'Heartbeat timeout'" % tr, repr(frames))
            d = [f for f in frames if f.type == "disconnect"]
            t.ok(d and d[0].content_type == "application/json"
                 and d[0].session_id == c.session_id
                 and d[0].json().get("message") == "Disconnecting",
                 "%s: disconnect frame is JSON {message: Disconnecting} with own id" % tr,
                 repr(d))
        for tr, c in zip(trs, lively):
            t.eq(c.sync(), [], "%s: pinging session kept past the timeout" % tr)
        for tr, c in zip(trs, talkers):
            t.eq(c.sync(), [], "%s: messages count as life" % tr)
        # a session heard from falls silent: closed about the timeout
        # after its last frame (the timer, added when it last fired, is
        # added again for what is left), not at once and not never
        t0 = time.monotonic()
        for tr, c in zip(trs, talkers):
            frames, after = wait_closed(c, 3.0)
            elapsed = time.monotonic() - t0
            t.ok(after is not None and 0.6 <= elapsed <= 2.5,
                 "%s: talker fallen silent closed between 0.6 and 2.5 s "
                 "after its last frame" % tr, "elapsed %.2f s" % elapsed)
        for c in silent + lively + talkers:
            c.close()


def case_handshake_timeout(t):
    with Server(plugins=["echo"], server={"handshake_timeout": 0.5}) as srv:
        for tr in transports():
            with srv.client(tr, handshake=False) as c, srv.client(tr) as acked:
                t0 = time.monotonic()
                c.handshake(ack=False)
                frames, after = wait_closed(c, 3.0)
                elapsed = time.monotonic() - t0
                t.ok(after is not None, "%s: no ack -> closed" % tr)
                t.ok(0.35 <= elapsed <= 2.0,
                     "%s: closed between 0.35 and 2 s (timeout 0.5 s)" % tr,
                     "elapsed %.2f s" % elapsed)
                t.ok(all(f.type in ("error", "disconnect") for f in frames),
                     "%s: nothing but error/disconnect before close" % tr, repr(frames))
                time.sleep(0.2)
                t.eq(acked.sync(), [], "%s: acknowledged session unaffected" % tr)
            # a connection that never even reads the session_init
            s = socket.socket(socket.AF_UNIX if tr == "unix" else socket.AF_INET)
            s.settimeout(3)
            s.connect(srv.addr(tr)[1] if tr == "unix" else srv.addr(tr)[1:])
            s.close()
            with srv.client(tr) as c:
                t.eq(c.sync(), [], "%s: server fine after a mute connect" % tr)


def case_slow_consumer(t):
    opts = {"max_output_buffer": "1M", "max_content_size": 65536,
            "heartbeat_timeout": 30}
    with Server(plugins=["broadcast"], server=opts) as srv:
        slow = srv.client("tcp", name="slow", rcvbuf=4096)
        slow_unix = srv.client("unix", name="slow-unix", rcvbuf=4096)
        reader = srv.client("unix", name="reader")
        reader2 = srv.client("tcp", name="reader2")
        flooder = srv.client("tcp", name="flooder")
        n = 300
        payload = b"F" * 65536
        got = {reader.name: 0, reader2.name: 0}
        errors = []
        cond = threading.Condition()
        finished = set()

        def drain(c):
            try:
                while got[c.name] < n:
                    f = c.recv_frame(10)
                    if f.type == "message" and f.content == payload:
                        with cond:
                            got[c.name] += 1
                            cond.notify_all()
                    else:
                        errors.append("%s: unexpected %r" % (c.name, f))
            except Exception as e:
                errors.append("%s: %s" % (c.name, e))
            with cond:
                finished.add(c.name)   # let the flooder go on without it
                cond.notify_all()

        threads = [threading.Thread(target=drain, args=(c,)) for c in (reader, reader2)]
        for th in threads:
            th.start()
        t0 = time.monotonic()
        frame = flooder.frame("message", payload)
        # The readers read as fast as they can, but Python may fall behind a
        # C server: keep them within 6 frames (384 KiB, well under the 1 MiB
        # bound) so that only the client that never reads is slow.
        try:
            for i in range(n):
                with cond:
                    cond.wait_for(lambda: all(v >= i - 6 or k in finished
                                              for k, v in got.items()), timeout=10)
                flooder.send_raw(frame)
        except OSError as e:
            errors.append("flooder: %s" % e)
        for th in threads:
            th.join(20)
        t.eq(got, {reader.name: n, reader2.name: n},
             "both readers got all %d 64 KiB broadcasts" % n, "\n".join(errors))
        t.ok(time.monotonic() - t0 < 20, "flood finished in time")
        for c, label in ((slow, "tcp"), (slow_unix, "unix")):
            m = srv.wait_log(r"session %s closed reason=slow-consumer" % re.escape(c.session_id),
                             timeout=3)
            t.ok(m is not None, "%s: log says 'session <id> closed reason=slow-consumer'"
                 % label, srv.log()[-2000:])
            # what is queued in the kernel may still be read, then EOF
            total, eof = 0, False
            deadline = time.monotonic() + 5
            try:
                while time.monotonic() < deadline:
                    c.sock.settimeout(max(0.01, deadline - time.monotonic()))
                    data = c.sock.recv(1 << 20)
                    if not data:
                        eof = True
                        break
                    total += len(data)
            except socket.timeout:
                pass
            except OSError:     # reset: closed as well
                eof = True
            t.ok(eof, "%s: slow consumer's connection closed" % label,
                 "read %d bytes without EOF" % total)
            t.ok(total < 8 * 1024 * 1024, "%s: it got far less than the flood" % label,
                 "read %d bytes" % total)
            c.close()
        t.eq(flooder.sync(), [], "flooder still served")
        t.eq(reader.sync(), [], "reader still served")
        for c in (reader, reader2, flooder):
            c.close()
        t.ok(srv.poll() is None, "server still running")


def case_max_clients(t):
    with Server(plugins=["echo"], server={"max_clients": 2}) as srv:
        a = srv.client("tcp")
        b = srv.client("unix")
        for tr in transports():
            c = srv.client(tr, handshake=False)
            try:
                e = c.recv_frame(3)
            except (acproto.Closed, acproto.Timeout) as ex:
                e = ex
            ok = isinstance(e, acproto.Frame) and e.type == "error" and \
                e.header.get("error") == "server_full" and \
                e.content.startswith(b"server_full: ")
            t.ok(ok, "%s: third client gets error server_full" % tr, repr(e))
            t.ok(c.is_closed(2), "%s: and is closed" % tr)
            c.close()
        t.eq(a.sync(), [], "first client still served")
        t.eq(b.sync(), [], "second client still served")
        a.close()
        # once a slot is free a new client gets in (the server notices the
        # close asynchronously: allow it a moment)
        deadline = time.monotonic() + 3
        c = None
        while time.monotonic() < deadline:
            c = srv.client("tcp", handshake=False)
            try:
                f = c.recv_frame(3)
                if f.type == "session_init":
                    break
            except (acproto.Closed, acproto.Timeout):
                pass
            c.close()
            c = None
            time.sleep(0.1)
        t.ok(c is not None, "a freed slot is reused")
        if c:
            c.session_id = f.session_id
            c.send("session_ack", b"Session acknowledged")
            t.eq(c.sync(), [], "the new client is served")
            c.close()
        b.close()


def case_output_buffer_config(t):
    # max_output_buffer must hold one largest frame: 64 + header + content
    base = {"max_header_size": 1024, "max_content_size": 65536}
    srv = Server(plugins=["echo"], start=False,
                 server=dict(base, max_output_buffer=64 + 1024 + 65536 - 1))
    rc, out = srv.check()
    t.eq(rc, 1, "max_output_buffer one byte short of a frame: -t exits 1", out)
    t.ok("max_output_buffer" in out, "the error names max_output_buffer", out)
    t.ok(re.search(re.escape(srv.confpath) + r":\d+", out) is not None,
         "the error names FILE:LINE", out)
    srv = Server(plugins=["echo"], start=False,
                 server=dict(base, max_output_buffer=64 + 1024 + 65536))
    rc, out = srv.check()
    t.eq(rc, 0, "max_output_buffer exactly one frame: accepted", out)
    for v in ("64K", "1M", "1G"):
        srv = Server(plugins=["echo"], start=False, server=dict(base, max_output_buffer=v))
        rc, out = srv.check()
        want = 1 if v == "64K" else 0
        t.eq(rc, want, "max_output_buffer = %s: -t exits %d" % (v, want), out)
    srv = Server(plugins=["echo"], start=False, server={"max_output_buffer": "1M"})
    rc, out = srv.check()
    t.eq(rc, 1, "1M with the default 10 MiB max_content_size is refused", out)


def case_connect_burst(t):
    # the issue: "a burst of 1,000 connects must all get their session_init
    # quickly".  Raise our fd limit (the server inherits it) if we can.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1200 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    n = min(1000, soft - 100)
    with Server(plugins=["echo"], server={"handshake_timeout": 10}) as srv:
        socks = []
        t0 = time.monotonic()
        try:
            for i in range(n):
                s = socket.socket(socket.AF_INET)
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", srv.port))
                except BlockingIOError:
                    pass
                socks.append(s)
            # one overall deadline, whatever the server does
            sel = selectors.DefaultSelector()
            for s in socks:
                sel.register(s, selectors.EVENT_READ, acproto.Decoder(srv.key))
            inits = 0
            left = n
            deadline = t0 + 10
            while left and time.monotonic() < deadline:
                for key, _ in sel.select(0.2):
                    s, d = key.fileobj, key.data
                    try:
                        data = s.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    f = None
                    if data:
                        d.feed(data)
                        f = d.next()
                        if f is None:
                            continue
                    sel.unregister(s)
                    left -= 1
                    if isinstance(f, acproto.Frame) and f.type == "session_init":
                        inits += 1
            sel.close()
            elapsed = time.monotonic() - t0
            t.eq(inits, n, "%d connects at once all get session_init" % n)
            t.ok(elapsed < 10, "within 10 s", "took %.1f s" % elapsed)
        finally:
            for s in socks:
                s.close()


def case_slow_sender_mid_chain(t):
    # The sender itself becomes a slow consumer (it never reads its echoes)
    # while the chain still has broadcast and logger to run for the frame
    # that overflowed it: the server must carry on without touching the
    # closed session (run under ASan to see use-after-free).
    srv = Server(plugins=["echo", "broadcast", "logger"], start=False,
                 server={"max_output_buffer": "256K", "max_content_size": 65536,
                         "max_header_size": 4096})
    srv.sections = {"logger": {"path": os.path.join(srv.dir, "m.log")}}
    srv.write_config()
    with srv.start():
        hog = srv.client("tcp", name="hog", rcvbuf=4096)
        watcher = srv.client("unix", name="watcher")
        frame = hog.frame("message", b"H" * 60000)
        sent = 0
        seen = 0
        try:
            for i in range(200):
                hog.send_raw(frame)
                sent += 1
                # the watcher keeps up: one broadcast read per frame sent
                # (after the hog is closed mid-chain the last one may not come)
                if watcher.recv_frame(2).raw == frame:
                    seen += 1
        except (OSError, acproto.Timeout):
            pass
        m = srv.wait_log(r"session %s closed reason=slow-consumer" % re.escape(hog.session_id),
                         timeout=3)
        t.ok(m is not None, "the sender is closed as a slow consumer (%d frames sent, "
             "%d broadcast to the watcher)" % (sent, seen), srv.log()[-2000:])
        hog.close()
        watcher.expect_silence(0.3)
        t.eq(watcher.sync(), [], "another session is still served")
        t.ok(srv.poll() is None, "server still running")


def case_churn(t):
    # clients come and go (cleanly, abruptly, mid-frame) while others
    # broadcast: the server must neither crash nor stall
    rng = random.Random(11)
    with Server(plugins=["broadcast", "echo"], server={"max_output_buffer": "11M"}) as srv:
        stable = srv.client("unix", name="stable")
        live = []
        t0 = time.monotonic()
        ops = 0
        while time.monotonic() - t0 < 2.0:
            ops += 1
            r = rng.random()
            if r < 0.3 or not live:
                try:
                    live.append(srv.client(rng.choice(["tcp", "unix"])))
                except (acproto.Closed, acproto.Timeout, OSError):
                    pass
            elif r < 0.5:
                c = live.pop(rng.randrange(len(live)))
                how = rng.randrange(3)
                if how == 0:
                    c.send("disconnect", b'{"message": "Disconnecting", "reason": "churn"}',
                           content_type="application/json")
                elif how == 1:
                    c.send_raw(c.frame("message", b"half" * 100)[:rng.randrange(1, 300)])
                c.close()
            else:
                c = rng.choice(live)
                try:
                    c.send_message(b"churn %d" % ops)
                except OSError:
                    pass
            # keep the stable client's queue short
            stable.expect_silence(0)
        t.ok(srv.poll() is None, "server alive after %d churn operations" % ops)
        for c in live:
            c.close()
        stable.expect_silence(0.3)
        t.eq(stable.sync(), [], "a session held throughout is still served")
        with srv.client("tcp") as c, srv.client("unix") as d:
            stable.expect_silence(0.1)
            sent = c.send_message(b"after churn")
            t.eq(d.recv_frame().raw, sent, "broadcast works after the churn")


if __name__ == "__main__":
    main([case_heartbeat_timeout, case_handshake_timeout, case_slow_consumer,
          case_max_clients, case_output_buffer_config, case_connect_burst,
          case_slow_sender_mid_chain, case_churn])
