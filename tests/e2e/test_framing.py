#!/usr/bin/env python3
"""Framing under any segmentation: 100 frames in one write, one byte at a
time, random cuts, the largest frame -- over TCP and Unix (echo plugin)."""

import random
import threading
import time

import acproto
from harness import Server, main, transports


def collect(c, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    out = []
    while len(out) < n:
        out.append(c.recv_frame(max(0.0, deadline - time.monotonic())))
    return out


def case_hundred_in_one_write(t):
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            with srv.client(tr) as c:
                frames = [c.frame("message", ("frame %03d" % i).encode() * (1 + i % 7),
                                  acproto.TEXT_UTF8) for i in range(100)]
                c.send_raw(b"".join(frames))
                got = collect(c, 100)
                t.eq(len(got), 100, "%s: 100 replies" % tr)
                t.ok([f.raw for f in got] == frames,
                     "%s: 100 replies in order, byte for byte" % tr,
                     lambda: "first difference at %d" % next(
                         (i for i, (a, b) in enumerate(zip(got, frames)) if a.raw != b), -1))
                t.eq(c.sync(), [], "%s: nothing extra" % tr)


def case_mixed_types_one_write(t):
    # pings and messages interleaved in one segment: replies in order
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            with srv.client(tr) as c:
                data, want = [], []
                for i in range(30):
                    if i % 3 == 0:
                        data.append(c.frame("heartbeat", b"ping"))
                        want.append(("heartbeat", b"pong"))
                    else:
                        m = c.frame("message", b"m%d" % i)
                        data.append(m)
                        want.append(("message", b"m%d" % i))
                c.send_raw(b"".join(data))
                got = collect(c, len(want))
                t.eq([(f.type, f.content) for f in got], want,
                     "%s: pings and messages in one write answered in order" % tr)


def case_handshake_in_one_write(t):
    # the ack and the first messages may arrive in the same segment
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            with srv.client(tr, handshake=False) as c:
                c.handshake(ack=False)
                ack = c.frame("session_ack", b"Session acknowledged")
                msgs = [c.frame("message", b"early %d" % i) for i in range(3)]
                c.send_raw(ack + b"".join(msgs))
                got = collect(c, 3)
                t.eq([f.raw for f in got], msgs, "%s: ack + 3 messages in one write" % tr)


def case_one_byte_at_a_time(t):
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            with srv.client(tr, handshake=False) as c:
                c.handshake(ack=False)
                ack = c.frame("session_ack", b"Session acknowledged")
                msg = c.frame("message", "one byte at a time ✓".encode("utf-8"),
                              acproto.TEXT_UTF8)
                for b in ack + msg:
                    c.send_raw(bytes([b]))
                    time.sleep(0.0005)
                got = c.recv_frame(5)
                t.eq(got.raw, msg, "%s: ack and message sent 1 byte at a time" % tr)
                t.eq(c.sync(), [], "%s: nothing extra" % tr)


def case_random_segmentation(t):
    rng = random.Random(42)
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            with srv.client(tr) as c:
                frames = [c.frame("message", bytes(rng.randrange(256)
                                                   for _ in range(rng.randrange(1, 3000))))
                          for _ in range(40)]
                stream = b"".join(frames)
                cuts = sorted(rng.sample(range(1, len(stream)), 120))
                # make sure some cuts land exactly on and around the 64-byte header
                pos = 0
                for f in frames[:5]:
                    cuts += [pos + 63, pos + 64, pos + 65]
                    pos += len(f)
                cuts = sorted(set(x for x in cuts if 0 < x < len(stream)))
                for a, b in zip([0] + cuts, cuts + [len(stream)]):
                    c.send_raw(stream[a:b])
                    if rng.random() < 0.2:
                        time.sleep(0.001)
                got = collect(c, len(frames))
                t.ok([f.raw for f in got] == frames,
                     "%s: 40 frames cut at %d random places echo in order" % (tr, len(cuts)))


def case_largest_frame(t):
    # default limits: a 10 MiB message must be accepted and echoed whole
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            with srv.client(tr) as c:
                content = bytes(random.Random(7).getrandbits(8) for _ in range(1024)) * 10240
                assert len(content) == acproto.MAX_CONTENT_LEN
                sent = c.frame("message", content)
                th = threading.Thread(target=c.send_raw, args=(sent,))
                th.start()
                try:
                    f = c.recv_frame(20)
                finally:
                    th.join(20)
                t.ok(f.raw == sent, "%s: a 10 MiB message echoes whole" % tr,
                     lambda: "got %d bytes" % len(f.raw))
                t.eq(c.sync(), [], "%s: session fine after 10 MiB" % tr)


def case_concurrent_large_broadcast(t):
    # three senders write 1 MiB frames at once, in small pieces: every
    # receiver gets whole frames, each sender's in its order
    with Server(plugins=["broadcast"],
                sections={"broadcast": {"include_sender": "yes"}}) as srv:
        trs = ["tcp", "unix", "ws"]
        cs = [srv.client(tr, name="c%d" % i) for i, tr in enumerate(trs)]
        per = 4
        frames = {}
        for i, c in enumerate(cs):
            frames[c.session_id] = [c.frame("message", bytes([65 + i]) * (1 << 20) + b"%d" % k)
                                    for k in range(per)]
        got = {c.name: [] for c in cs}
        errors = []

        def reader(c):
            try:
                while len(got[c.name]) < per * len(cs):
                    got[c.name].append(c.recv_frame(20))
            except Exception as e:
                errors.append("%s: %s" % (c.name, e))

        def writer(c):
            data = b"".join(frames[c.session_id])
            try:
                for a in range(0, len(data), 8191):
                    c.send_raw(data[a:a + 8191])
            except Exception as e:
                errors.append("%s writing: %s" % (c.name, e))

        ths = [threading.Thread(target=reader, args=(c,)) for c in cs] + \
              [threading.Thread(target=writer, args=(c,)) for c in cs]
        for th in ths:
            th.start()
        for th in ths:
            th.join(30)
        t.ok(not errors, "readers and writers finished", "\n".join(errors))
        for c in cs:
            by_sender = {}
            for f in got[c.name]:
                by_sender.setdefault(f.session_id, []).append(f.raw)
            t.ok(by_sender == frames,
                 "%s: all %d 1 MiB frames whole, in order per sender" % (c.name, per * 3),
                 lambda: "got %r" % {k: len(v) for k, v in by_sender.items()})
        for c in cs:
            c.close()


if __name__ == "__main__":
    main([case_hundred_in_one_write, case_mixed_types_one_write,
          case_handshake_in_one_write, case_one_byte_at_a_time,
          case_random_segmentation, case_largest_frame,
          case_concurrent_large_broadcast])
