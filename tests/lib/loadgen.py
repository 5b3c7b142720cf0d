"""What the load benchmarks (tools/nats-bench.py, tools/cluster-bench.py)
share: stamped bench messages sent at a pace, counted with their
latencies on arrival, and percentiles of those.

A bench message's content is "B:<sender>.<i>:<send time in ns>"
(CLOCK_MONOTONIC, which every process on the machine shares).
"""

import socket
import time

import acproto


def stamp(index, i):
    """The content of sender index's i-th bench message, sent now."""
    return "B:%d.%d:%d" % (index, i, time.monotonic_ns())


def paced(count, rate, send):
    """send(i) for each i below count, the i-th no sooner than i / rate
    seconds after the first (all at once without a rate)."""
    t0 = time.monotonic()
    for i in range(count):
        if rate:
            wait = t0 + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        send(i)


def count_stamped(sock, dec, expect, limit, idle):
    """Read sock into the decoder dec until expect bench messages came,
    limit seconds passed or nothing came for idle seconds; (count, first
    arrival ns, last arrival ns, latencies in ns)."""
    count, first, last, lat = 0, 0, 0, []
    end = time.monotonic() + limit
    sock.settimeout(idle)
    while count < expect and time.monotonic() < end:
        try:
            data = sock.recv(1 << 20)
        except socket.timeout:
            break
        if not data:
            break
        now = time.monotonic_ns()
        dec.feed(data)
        for f in dec:
            if isinstance(f, acproto.FrameError):
                raise RuntimeError("bad frame from the server: %s" % f)
            if f.content[:2] != b"B:":
                continue
            count += 1
            lat.append(now - int(f.content.split(b":")[2]))
            first = first or now
            last = now
    return count, first, last, lat


def drain(sock, keep, limit):
    """Read and drop what comes on sock until keep (an Event) is cleared
    and nothing came for 0.2 s, the peer closes or limit seconds pass."""
    sock.settimeout(0.2)
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            if not sock.recv(1 << 20):
                break
        except socket.timeout:
            if not keep.is_set():
                break
        except OSError:
            break


def pct(lat, p):
    """The p-th percentile of sorted latencies in ns, in ms (NaN of
    none)."""
    if not lat:
        return float("nan")
    return lat[min(len(lat) - 1, int(len(lat) * p / 100.0))] / 1e6
