#!/usr/bin/env python3
"""chat-storm.py: what one member's event storm costs everyone else.

READERS sessions sit in room `big` and read (and drop) everything; one
attacker in `big` sends /nick (or /part big and /join big in turn) as
fast as RATE a second; a probe alone in room `quiet` pings every 20 ms. The probe's
ping round trips are printed without the storm, then with it.

    tools/chat-storm.py --port PORT [--key KEY] [--readers 1000]
        [--rate 2000] [--seconds 5] [--command nick|joinpart]

The server must load chat, allow the connections from 127.0.0.1
(max_clients_per_ip = 0) and not rate-limit the attacker's frames
(max_message_rate large enough). A benchmark, not a test: it asserts
nothing. Uses tests/lib (standard library only).
"""

import argparse
import os
import selectors
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "lib"))
import acproto  # noqa: E402
from chat import TEXT, ChatClient  # noqa: E402


def session(args, room, nick):
    """A handshaken chat session in room, its handshake frames read."""
    c = ChatClient.tcp("127.0.0.1", args.port, key=args.key.encode())
    c.chat_handshake(nick=nick, rooms=[{"room": room}], timeout=30)
    return c


def drain_all(socks, stop):
    """Read and drop what every socket of socks is sent."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    while not stop.is_set():
        for key, _ in sel.select(0.1):
            try:
                key.fileobj.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                sel.unregister(key.fileobj)


def probe(c, seconds):
    """Ping round trips, in milliseconds, for seconds."""
    rtts = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        c.ping(60)
        rtts.append((time.monotonic() - t0) * 1000)
        time.sleep(0.02)
    return rtts


def attack(c, args, stop, sent):
    """Send commands at args.rate a second, in 10 ms batches."""
    i = 0
    step = 0.01
    per = max(1, int(args.rate * step))
    nxt = time.monotonic()
    while not stop.is_set():
        batch = []
        for _ in range(per):
            if args.command == "nick":
                line = b"/nick storm%d" % (i % 2)
            else:
                line = b"/part big" if i % 2 == 0 else b"/join big"
            batch.append(c.frame("message", line, content_type=TEXT))
            i += 1
        try:
            c.sock.sendall(b"".join(batch))
        except OSError as e:
            print("attacker disconnected: %s" % e)
            return
        sent[0] = i
        nxt += step
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def summary(name, rtts):
    rtts = sorted(rtts)
    p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
    print("%-12s %5d pings  median %8.2f ms  p99 %8.2f ms  max %8.2f ms" %
          (name, len(rtts), statistics.median(rtts), p99, rtts[-1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", default="default-key")
    ap.add_argument("--readers", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--command", choices=("nick", "joinpart"),
                    default="nick")
    args = ap.parse_args()

    readers = [session(args, "big", "r%d" % i) for i in range(args.readers)]
    attacker = session(args, "big", "storm")
    quiet = session(args, "quiet", "probe")
    stop = threading.Event()
    socks = [r.sock for r in readers] + [attacker.sock]
    t = threading.Thread(target=drain_all, args=(socks, stop), daemon=True)
    t.start()
    summary("quiet", probe(quiet, args.seconds))
    sent = [0]
    storm = threading.Event()
    a = threading.Thread(target=attack, args=(attacker, args, storm, sent),
                         daemon=True)
    t0 = time.monotonic()
    a.start()
    rtts = probe(quiet, args.seconds)
    storm.set()
    a.join()
    elapsed = time.monotonic() - t0
    summary("storm", rtts)
    print("attacker sent %d commands in %.1f s (%.0f a second)" %
          (sent[0], elapsed, sent[0] / elapsed))
    stop.set()
    t.join()
    for c in readers + [attacker, quiet]:
        c.close()


if __name__ == "__main__":
    main()
