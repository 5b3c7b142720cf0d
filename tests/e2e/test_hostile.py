#!/usr/bin/env python3
"""Peers playing the attacker (issue 11): what a peer without the key, or
with one session_ack it should not have, can make the server do.

- Reflection: the server's own frames sent back to it (session_init,
  error, a second session_ack) are protocol errors; they neither keep a
  session alive nor reset its error count.
- Answers to unverified frames carry the session's own id and the
  server's own text, never what the peer chose (no signing oracle).
- session_id is compared as the exact 36 bytes.
- Before session_ack only small frames are accepted.
- max_memory bounds what sessions that never read can make the server
  hold.
"""

import re
import time
import urllib.request

import acproto
from harness import Server, main, transports

KEY = "e2e-hostile-key"
CHOSEN_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
CHOSEN_TEXT = b"PEER-CHOSEN-TEXT"


def errors_of(frames):
    return [(f.type, f.header.get("error")) for f in frames]


def wait_closed(c, timeout):
    """(frames before EOF, True) or (frames so far, False) after timeout."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            got.append(c.recv_frame(max(0.0, deadline - time.monotonic())))
        except acproto.Closed:
            return got, True
        except acproto.Timeout:
            return got, False


def case_reflection(t):
    """The attack of issue 11: a peer without the key holds one valid
    session_ack for a session it opened (from a client that signed it, the
    client's signing oracle; played here by signing it with the key) and
    keeps the session alive by sending the server's own frames back. It
    must lose the session within a heartbeat timeout or max_errors."""
    opts = {"heartbeat_timeout": 1.0, "handshake_timeout": 10}
    with Server(plugins=["broadcast"], server=opts, key=KEY) as srv:
        holder = srv.client("unix", name="key-holder")
        # The attacker decodes with the key only to find frame boundaries
        # (lengths need no key); it never signs anything.
        atk = srv.client("tcp", handshake=False, name="attacker")
        init = atk.recv_type("session_init")
        ack = acproto.encode("session_ack", b"Session acknowledged",
                             init.session_id, key=KEY)  # the oracle's answer
        atk.send_raw(ack)
        reflect = [init.raw, ack]
        closed, messages, rounds = False, 0, 0
        deadline = time.monotonic() + 4.0      # four heartbeat timeouts
        while time.monotonic() < deadline and not closed:
            rounds += 1
            holder.send_message(b"secret %d" % rounds)
            try:
                for raw in reflect:
                    atk.send_raw(raw)
                got = atk.expect_silence(0.2)
            except (acproto.Closed, OSError):
                closed = True
                break
            messages += sum(1 for f in got if f.type == "message")
            # the frames it got back are reflected next round, the
            # server's error frames included
            reflect = [init.raw, ack] + [f.raw for f in got]
        if not closed:
            closed = wait_closed(atk, 0.5)[1]
        t.ok(closed, "reflecting session_init, session_ack and error frames "
             "does not keep the session open (4 heartbeat timeouts)",
             "still open after %d rounds, %d broadcast messages read"
             % (rounds, messages))
        t.ok(srv.wait_log(r"session %s closed reason=(too-many-errors|"
                          r"heartbeat-timeout)" % init.session_id) is not None,
             "the log closes it for errors or silence", srv.log()[-1500:])
        t.eq(holder.sync(), [], "the key-holder is unaffected")
        atk.close()
        holder.close()


def case_no_life_from_server_frames(t):
    """Verified session_init and session_ack frames from an acknowledged
    client do not refresh its heartbeat timer."""
    opts = {"heartbeat_timeout": 0.8, "max_errors": 1000}
    with Server(plugins=["echo"], server=opts) as srv:
        c = srv.client("tcp")
        frames, closed = [], False
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            try:
                c.send("session_init", b"Session established")
                c.send("session_ack", b"Session acknowledged")
                frames += c.expect_silence(0.25)
            except (acproto.Closed, OSError):
                closed = True
                break
        if not closed:
            more, closed = wait_closed(c, 0.5)
            frames += more
        t.ok(closed, "closed within 3 s (heartbeat 0.8 s) while it sends "
             "session_init and session_ack", errors_of(frames)[-4:])
        t.ok(srv.wait_log(r"closed reason=heartbeat-timeout") is not None,
             "closed for its silence (reason heartbeat-timeout)",
             srv.log()[-1500:])
        t.ok(all(e == ("error", "unexpected_frame")
                 for e in errors_of(frames) if e[0] == "error"),
             "each such frame was answered unexpected_frame",
             repr(errors_of(frames)[:6]))
        c.close()


def case_error_frames_count(t):
    """An error frame from a client is an error itself: it does not reset
    the count of errors in a row."""
    with Server(plugins=["echo"], server={"max_errors": 3}) as srv:
        for tr in transports():
            c = srv.client(tr)
            for i in range(2):
                c.send_raw(acproto.encode("message", b"bad %d" % i,
                                          c.session_id, key="wrong-key"))
            e = [c.recv_frame(), c.recv_frame()]
            t.eq(errors_of(e), [("error", "hmac")] * 2,
                 "%s: two hmac errors" % tr)
            c.send("error", b"bad_header: something")
            frames, closed = wait_closed(c, 2.0)
            t.ok(closed, "%s: the client's error frame is the third error "
                 "in a row (max_errors 3): closed" % tr, repr(frames))
            t.eq(errors_of(frames)[:1], [("error", "unexpected_frame")],
                 "%s: it is answered unexpected_frame" % tr, repr(frames))
            c.close()


def check_answers(t, label, c, frames):
    """Every frame answering unverified input: an error with the
    session's own id and nothing the peer chose."""
    t.ok(frames and all(f.type == "error" for f in frames),
         "%s: only error frames answer" % label, repr(frames))
    t.ok(all(f.session_id == c.session_id for f in frames),
         "%s: each carries the session's own id" % label,
         repr([f.session_id for f in frames]))
    t.ok(all(CHOSEN_TEXT not in f.raw and CHOSEN_ID.encode() not in f.raw
             for f in frames),
         "%s: none quotes the peer's id or content" % label, repr(frames))


def case_no_signing_oracle(t):
    """What the server signs in answer to a frame that failed verification
    carries nothing the sender chose, before and after the handshake."""
    with Server(plugins=["echo"], server={"max_errors": 100}) as srv:
        c = srv.client("tcp", handshake=False)
        c.session_id = c.recv_type("session_init").session_id
        for ty in ("session_ack", "message", "heartbeat", "chunk"):
            c.send_raw(acproto.encode(ty, CHOSEN_TEXT if ty != "heartbeat"
                                      else b"ping", CHOSEN_ID,
                                      key="not-the-key"))
        frames = [c.recv_frame() for _ in range(4)]
        check_answers(t, "before ack", c, frames)
        t.eq(errors_of(frames), [("error", "hmac")] * 4,
             "before ack: each is an hmac error")
        c.close()

        c = srv.client("unix")
        for ty in ("session_ack", "message", "heartbeat", "error",
                   "session_init"):
            c.send_raw(acproto.encode(ty, CHOSEN_TEXT if ty != "heartbeat"
                                      else b"ping", CHOSEN_ID,
                                      key="not-the-key"))
        frames = [c.recv_frame() for _ in range(5)]
        check_answers(t, "after ack", c, frames)
        t.eq(c.sync(), [], "after ack: no pong, no echo, session kept")
        c.close()


def case_exact_session_id(t):
    """Only the exact 36 bytes of the id pass: not another case, not the
    id followed by an escaped NUL and more."""
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            c = srv.client(tr)
            for label, other in (("upper case", c.session_id.upper()),
                                 ("id + \\u0000 + more",
                                  c.session_id + "\u0000" + "-evil"),
                                 ("id + more", c.session_id + "x")):
                if other == c.session_id:
                    continue
                c.send_message(b"spoofed", session_id=other)
                got = c.sync()
                t.eq(errors_of(got), [("error", "session_mismatch")],
                     "%s: %s -> session_mismatch, not relayed" % (tr, label),
                     repr(got))
            sent = c.send_message(b"exact")
            t.eq(c.recv_frame().raw, sent, "%s: the exact id is relayed" % tr)
            c.close()
        # and for the handshake itself
        c = srv.client("tcp", handshake=False)
        init = c.recv_type("session_init")
        c.session_id = init.session_id
        c.send("session_ack", b"Session acknowledged",
               session_id=init.session_id.upper())
        e = c.recv_frame()
        t.eq(errors_of([e]), [("error", "session_mismatch")],
             "a session_ack with the id in upper case is refused")
        c.send_message(b"early")
        t.eq(errors_of([c.recv_frame()]), [("error", "not_acknowledged")],
             "and the session is still not acknowledged")
        c.close()


def case_preack_bounds(t):
    """Until session_ack, a frame may have at most 4096 header and 1024
    content bytes: a peer without the key cannot make the server wait for
    (and buffer, and HMAC) a 10 MiB frame."""
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            c = srv.client(tr, handshake=False)
            c.recv_type("session_init")
            header = acproto.header_bytes({"type": "session_ack",
                                           "content_type": acproto.OCTETS,
                                           "session_id": None})
            fixed = acproto.encode_raw(header, b"x" * 10485760)[:64]
            c.send_raw(fixed + header)       # the content never comes
            frames, closed = wait_closed(c, 3.0)
            t.eq(errors_of(frames), [("error", "content_too_large")],
                 "%s: a 10 MiB frame announced before the ack: "
                 "content_too_large at once" % tr, repr(frames))
            t.ok(closed, "%s: and the connection is closed" % tr)
            t.ok(frames and b"before session_ack" in frames[0].content,
                 "%s: the error says the bound is for the handshake" % tr,
                 repr(frames))
            c.close()

            c = srv.client(tr, handshake=False)
            c.recv_type("session_init")
            big = acproto.header_bytes({"type": "session_ack",
                                        "content_type": acproto.OCTETS,
                                        "session_id": None,
                                        "pad": "p" * 5000})
            c.send_raw(acproto.encode_raw(big, b"Session acknowledged",
                                          key=srv.key))
            frames, closed = wait_closed(c, 3.0)
            t.eq(errors_of(frames), [("error", "header_too_large")],
                 "%s: a 5000-byte header before the ack: header_too_large"
                 % tr, repr(frames))
            c.close()

        # A client that names itself in its ack still gets in, and after
        # the ack the configured limits apply again.
        c = srv.client("tcp", handshake=False)
        init = c.recv_type("session_init")
        c.session_id = init.session_id
        c.send("session_ack", b"Session acknowledged",
               extra={"nick": "n" * 200})
        big = c.send_message(b"B" * 200000)
        t.eq(c.recv_frame(5).raw, big,
             "after the ack a 200 kB message is accepted and echoed")
        c.close()


def case_max_memory(t):
    """A key-holder fans small frames out to sessions that never read:
    past 7/8 of max_memory the sessions holding the most are closed
    (memory-limit), and those that read, and the sender, carry on."""
    opts = {"max_memory": "16M", "max_output_buffer": "512M",
            "max_content_size": "1M", "max_header_size": 4096,
            "max_message_rate": 0, "max_byte_rate": 0,
            "metrics_listen": "127.0.0.1:0"}
    with Server(plugins=["broadcast"], server=opts) as srv:
        sinks = [srv.client("unix" if i % 2 else "tcp", name="sink%d" % i,
                            rcvbuf=4096) for i in range(6)]
        reader = srv.client("unix", name="reader")
        sender = srv.client("tcp", name="sender")
        # under 1 KiB: each sink gets a copy of its own
        frame = sender.frame("message", b"m" * 700)
        n = 8000      # 7 MB in, 7 MB queued to each sink that never reads
        got = 0
        for sent in range(200, n + 1, 200):
            sender.send_raw(frame * 200)
            while got < sent:            # the reader keeps up
                got += reader.recv_frame(10).type == "message"
        t.eq(got, n, "the reader got all %d messages" % n)
        t.eq(sender.sync(10), [], "the sender is still served")
        m = srv.wait_log(r"closed reason=memory-limit", timeout=5)
        t.ok(m is not None, "the log closes sessions for memory-limit",
             srv.log()[-2000:])
        closed = sum(1 for s in sinks if s.is_closed(3))
        t.ok(closed >= 2, "sinks that never read were closed (%d of 6)"
             % closed)
        t.eq(reader.sync(), [], "the reader is still connected")
        url = srv.wait_log(r"metrics on (http://\S+)").group(1)
        body = urllib.request.urlopen(url, timeout=5).read().decode()
        mm = re.search(r'asyncchat_disconnects_total\{reason="memory-limit"\}'
                       r' (\d+)', body)
        t.ok(mm is not None and int(mm.group(1)) == closed,
             "disconnects_total{reason=memory-limit} counts them",
             mm.group(0) if mm else body[-500:])
        mb = re.search(r"asyncchat_memory_buffered_bytes (\d+)", body)
        t.ok(mb is not None and int(mb.group(1)) < 16 * 1024 * 1024,
             "memory_buffered_bytes is under max_memory afterwards",
             mb.group(0) if mb else "")
        for c in sinks + [reader, sender]:
            c.close()


if __name__ == "__main__":
    main([case_reflection, case_no_life_from_server_frames,
          case_error_frames_count, case_no_signing_oracle,
          case_exact_session_id, case_preack_bounds, case_max_memory])
