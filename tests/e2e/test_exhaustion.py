#!/usr/bin/env python3
"""asyncchatd out of descriptors and under connection floods (issue 11):
RLIMIT_NOFILE checked against max_clients at start, the metrics listener
resting after EMFILE instead of spinning, its connections capped, and
refusals logged at a bounded rate."""

import re
import resource
import select
import socket
import time

from harness import Server, Skip, main


def nofile_limits(pid):
    """(soft, hard) RLIMIT_NOFILE of a process, from /proc."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no Max open files in /proc/%d/limits" % pid)


def wait_count(srv, pattern, n, start, timeout):
    """True once pattern matches n times in the log from offset start."""
    deadline = time.monotonic() + timeout
    while len(re.findall(pattern, srv.log()[start:])) < n:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def start_with_soft_nofile(srv, soft):
    """Start srv with a soft descriptor limit of soft (the hard limit as
    it is): the test's own soft limit is lowered around the fork."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, old[1]))
    try:
        srv.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)
    return srv


def case_nofile_raised(t):
    """max_clients 1000 with a soft limit of 256 and room under the hard
    limit: the server raises its soft limit and says so."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1200:
        raise Skip("the hard descriptor limit (%d) is too low" % hard)
    # (without the ws:// listener, whose web connections would double it)
    srv = Server(plugins=["echo"], start=False, ws=False,
                 server={"max_clients": 1000})
    with start_with_soft_nofile(srv, 256):
        soft, _ = nofile_limits(srv.pid)
        t.ok(soft >= 1000, "the soft limit was raised past max_clients",
             "soft limit %d" % soft)
        t.ok(re.search(r"raised the descriptor limit from 256 to \d+ for "
                       r"max_clients 1000", srv.log()),
             "the log says so", srv.log()[-1500:])


def case_nofile_warned(t):
    """max_clients beyond the hard limit: the server warns at start."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= 1000000:
        raise Skip("the hard descriptor limit is not below 1000000")
    srv = Server(plugins=["echo"], start=False,
                 server={"max_clients": 1000000})
    with start_with_soft_nofile(srv, 256):
        t.ok(re.search(r"warning the descriptor limit is %d \(hard limit %d\), "
                       r"but max_clients 1000000 needs about \d+" % (hard, hard),
                       srv.log()),
             "the log warns that max_clients does not fit", srv.log()[-1500:])
        with srv.client("tcp") as c:
            t.eq(c.sync(), [], "and the server runs")


def case_metrics_emfile(t):
    """Out of descriptors, a scrape makes the metrics listener rest a
    second between tries (as the chat listeners do) instead of retrying
    accept() in a busy loop that logs every failure; once descriptors are
    free again the scrape is answered."""
    opts = {"max_clients": 1000, "handshake_timeout": 60,
            "metrics_listen": "127.0.0.1:0"}
    with Server(plugins=["echo"], server=opts) as srv:
        murl = srv.wait_log(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")
        mport = int(murl.group(1))
        resource.prlimit(srv.pid, resource.RLIMIT_NOFILE, (64, 64))
        chat = []
        for _ in range(100):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", srv.port))
            chat.append(s)
        t.ok(srv.wait_log(r"accept on tcp://127\.0\.0\.1:\d+: Too many open "
                          r"files", timeout=5) is not None,
             "the chat listener runs out of descriptors", srv.log()[-1500:])
        off = len(srv.log())
        scrape = socket.create_connection(("127.0.0.1", mport), timeout=5)
        scrape.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        m = srv.wait_log(r"accept on http://127\.0\.0\.1:%d/metrics: Too many "
                         r"open files" % mport, timeout=5, start=off)
        t.ok(m is not None, "the metrics listener says it is out of "
             "descriptors", srv.log()[off:][-1500:])
        # A second such line means it rested and tried again.
        again = wait_count(srv, r"accept on http://\S+: Too many open files",
                           2, off, 5)
        lines = srv.log()[off:].count("\n")
        t.ok(again and lines < 50,
             "it rests between tries: %d log lines in the meantime" % lines,
             srv.log()[off:][-1500:])
        for s in chat:
            s.close()
        scrape.settimeout(10)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                data = scrape.recv(65536)
                if not data:
                    break
                answer += data
        except OSError as e:
            answer += repr(e).encode()
        t.ok(re.match(rb"HTTP/1\.[01] 200 ", answer),
             "once descriptors are free the scrape is answered",
             answer[:200])
        scrape.close()


def case_metrics_connection_cap(t):
    """Idle connections to the metrics endpoint beyond its cap (16) are
    closed at once, and said so at a bounded rate; a scrape works once
    they are gone."""
    opts = {"metrics_listen": "127.0.0.1:0"}
    with Server(plugins=["echo"], server=opts) as srv:
        mport = int(srv.wait_log(r"metrics on http://127\.0\.0\.1:(\d+)/")
                    .group(1))
        held = [socket.create_connection(("127.0.0.1", mport), timeout=5)
                for _ in range(40)]
        eof = set()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and len(eof) < 24:
            ready, _, _ = select.select([s for s in held if s not in eof],
                                        [], [], 0.2)
            for s in ready:
                try:
                    if s.recv(1) == b"":
                        eof.add(s)
                except OSError:
                    eof.add(s)
        t.eq(len(eof), 24, "40 idle connections: the 24 past the cap of 16 "
             "are closed at once")
        t.ok(1 <= srv.log().count("metrics: 16 connections open, refusing "
                                  "more") <= 2,
             "refusals are logged at most every 5 s", srv.log()[-1500:])
        for s in held:
            s.close()
        deadline = time.monotonic() + 5
        answer = b""
        while time.monotonic() < deadline:
            s = socket.create_connection(("127.0.0.1", mport), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            answer = s.recv(64)
            s.close()
            if re.match(rb"HTTP/1\.[01] 200 ", answer):
                break
            time.sleep(0.1)
        t.ok(re.match(rb"HTTP/1\.[01] 200 ", answer),
             "a scrape is answered once they are gone", answer)


def case_server_full_log(t):
    """A connection flood against a full server logs one line per 5 s
    (with a count), not one per connection."""
    with Server(plugins=["echo"], server={"max_clients": 2}) as srv:
        a, b = srv.client("tcp"), srv.client("unix")
        refused = 0
        for i in range(30):
            c = srv.client("tcp" if i % 2 else "unix", handshake=False)
            f = c.recv_frame()
            refused += f.header.get("error") == "server_full"
            c.close()
        t.eq(refused, 30, "30 connections get server_full")
        lines = re.findall(r"server full \(2 sessions\): refusing[^\n]*",
                           srv.log())
        t.ok(1 <= len(lines) <= 2, "%d log lines for them" % len(lines),
             "\n".join(lines))
        t.eq(srv.log().count("closed reason=server-full"), 0,
             "their closes are logged at debug level only")
        t.eq(a.sync() + b.sync(), [], "the two sessions are served")
        a.close()
        b.close()


if __name__ == "__main__":
    main([case_nofile_raised, case_nofile_warned, case_metrics_emfile,
          case_metrics_connection_cap, case_server_full_log])
