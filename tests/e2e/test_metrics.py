#!/usr/bin/env python3
"""The Prometheus endpoint (metrics_listen): the exposition format, parsed
strictly; values that move by exactly what the traffic should move them
(handshakes, broadcast messages, a bad HMAC, timeouts, a slow consumer);
404 and 405; SIGHUP keeping or moving the endpoint; config errors."""

import re
import signal
import socket
import time
import urllib.error
import urllib.request

import acproto
from harness import Server, ipv6_available, main
from metrics import (Metrics, fetch, metrics_url, parse,  # noqa: F401
                     scrape)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FAMILIES = {
    "asyncchat_up": "gauge",
    "asyncchat_build_info": "gauge",
    "asyncchat_start_time_seconds": "gauge",
    "asyncchat_sessions_open": "gauge",
    "asyncchat_sessions_handshaken": "gauge",
    "asyncchat_sessions_total": "counter",
    "asyncchat_sessions_open_by_transport": "gauge",
    "asyncchat_http_connections": "gauge",
    "asyncchat_http_responses_total": "counter",
    "asyncchat_frames_received_total": "counter",
    "asyncchat_frames_sent_total": "counter",
    "asyncchat_received_bytes_total": "counter",
    "asyncchat_sent_bytes_total": "counter",
    "asyncchat_frame_errors_total": "counter",
    "asyncchat_disconnects_total": "counter",
    "asyncchat_memory_buffered_bytes": "gauge",
    "asyncchat_memory_limit_bytes": "gauge",
    "asyncchat_reloads_total": "counter",
    "asyncchat_reload_failures_total": "counter",
    "asyncchat_plugins_loaded": "gauge",
    "asyncchat_plugin_calls_total": "counter",
    "asyncchat_plugin_errors_total": "counter",
    "asyncchat_plugin_seconds": "histogram",
    "asyncchat_plugin_chain_seconds": "histogram",
}
ERROR_TOKENS = ("bad_magic", "bad_version", "header_too_large",
                "content_too_large", "header_crc", "content_crc", "hmac",
                "bad_header", "empty_content", "session_mismatch",
                "not_acknowledged", "server_full", "too_many_connections",
                "rate_limited", "unexpected_frame")
REASONS = ("client-disconnect", "handshake-timeout", "heartbeat-timeout",
           "protocol-error", "too-many-errors", "slow-consumer",
           "server-full", "eof", "io-error", "server-shutdown", "plugin",
           "tls-error", "per-ip-limit", "rate-limit", "memory-limit")


def metrics_server(**kw):
    opts = {"metrics_listen": "127.0.0.1:0"}
    opts.update(kw.pop("server", {}))
    return Server(server=opts, **kw)


def case_format(t):
    with metrics_server(plugins=["broadcast", "echo"]) as srv:
        url = metrics_url(srv)
        t.ok(re.match(r"http://127\.0\.0\.1:[1-9]\d*/metrics$", url),
             "the log names the real port: " + url)
        status, ctype, body = fetch(url)
        t.eq(status, 200, "GET /metrics: 200")
        t.eq(ctype, CONTENT_TYPE, "Content-Type is the 0.0.4 text format")
        try:
            m = Metrics(body)
            err = None
        except ValueError as e:
            m, err = None, str(e)
        t.ok(m is not None, "the exposition parses strictly", err)
        if m is None:
            return
        t.eq({f: m.types.get(f) for f in FAMILIES}, FAMILIES,
             "every family is there with HELP and the right TYPE")
        t.eq(m.get("asyncchat_up"), 1.0, "asyncchat_up 1")
        t.ok(m.labels("asyncchat_build_info", "version"),
             "build_info has a version label")
        t.ok(abs(m.get("asyncchat_start_time_seconds") - time.time()) < 60,
             "start time is now")
        t.eq(m.labels("asyncchat_frame_errors_total", "error"),
             sorted(ERROR_TOKENS), "every error token is a series")
        t.eq(m.labels("asyncchat_disconnects_total", "reason"),
             sorted(REASONS), "every disconnect reason is a series")
        t.eq(m.labels("asyncchat_frames_received_total", "type"),
             sorted(acproto.TYPES), "every frame type is a series")
        t.eq(m.labels("asyncchat_sessions_open_by_transport", "transport"),
             sorted(["tcp", "unix", "tls", "ws", "wss"]),
             "every transport is a series")
        t.eq(m.labels("asyncchat_plugin_calls_total", "plugin"),
             ["broadcast", "echo"], "one calls series per plugin")
        t.eq(m.get("asyncchat_plugins_loaded"), 2.0, "two plugins loaded")
        t.eq(m.get("asyncchat_sessions_total"), 0.0, "no sessions yet")
        t.eq(m.get("asyncchat_plugin_seconds_bucket", plugin="echo", le="+Inf"),
             0.0, "echo's histogram is empty")
        base = url[:-len("/metrics")]
        t.eq(fetch(base + "/")[0], 404, "GET /: 404")
        t.eq(fetch(base + "/metricsx")[0], 404, "GET /metricsx: 404")
        t.eq(fetch(url + "?x=1")[0], 200, "GET /metrics?x=1: 200")
        t.eq(fetch(url, "POST")[0], 405, "POST /metrics: 405")
        t.eq(fetch(url, "DELETE")[0], 405, "DELETE /metrics: 405")
        c = srv.client("tcp")
        t.eq(c.sync(), [], "chat is served while metrics are on")
        c.close()


def delta(a, b, name, **labels):
    """How much a sample moved from scrape a to scrape b."""
    return (b.get(name, **labels) or 0.0) - (a.get(name, **labels) or 0.0)


def case_traffic(t):
    with metrics_server(plugins=["broadcast"]) as srv:
        url = metrics_url(srv)
        s0 = scrape(url)
        a, b, c = (srv.client("tcp", name=n) for n in ("a", "b", "c"))
        for x in (a, b, c):
            x.sync()
        s1 = scrape(url)
        t.eq(delta(s0, s1, "asyncchat_sessions_total"), 3, "sessions_total +3")
        t.eq(s1.get("asyncchat_sessions_open"), 3, "3 sessions open")
        t.eq(s1.get("asyncchat_sessions_handshaken"), 3, "3 handshaken")
        t.eq(delta(s0, s1, "asyncchat_frames_received_total", type="session_ack"),
             3, "3 session_ack received")
        t.eq(delta(s0, s1, "asyncchat_frames_sent_total", type="session_init"),
             3, "3 session_init sent")

        # 5 messages through broadcast (to the 2 others), then a ping.
        sent = [a.send_message(b"metrics %d" % i) for i in range(5)]
        ping = a.frame("heartbeat", b"ping")
        pong = a.ping()
        for x in (b, c):
            got = [x.recv_frame().raw for _ in range(5)]
            t.eq(got, sent, "%s got the 5 broadcasts" % x.name)
        s2 = scrape(url)
        t.eq(delta(s1, s2, "asyncchat_frames_received_total", type="message"),
             5, "frames_received{message} +5")
        t.eq(delta(s1, s2, "asyncchat_frames_received_total", type="heartbeat"),
             1, "frames_received{heartbeat} +1")
        t.eq(delta(s1, s2, "asyncchat_frames_sent_total", type="message"),
             10, "frames_sent{message} +10 (5 to each of 2)")
        t.eq(delta(s1, s2, "asyncchat_frames_sent_total", type="heartbeat"),
             1, "frames_sent{heartbeat} +1")
        t.eq(delta(s1, s2, "asyncchat_received_bytes_total"),
             sum(map(len, sent)) + len(ping), "received bytes: exactly the frames")
        t.eq(delta(s1, s2, "asyncchat_sent_bytes_total"),
             2 * sum(map(len, sent)) + len(pong.raw), "sent bytes: exactly the frames")
        t.eq(delta(s1, s2, "asyncchat_plugin_calls_total", plugin="broadcast"),
             5, "plugin_calls{broadcast} +5")
        t.eq(delta(s1, s2, "asyncchat_plugin_seconds_count", plugin="broadcast"),
             5, "plugin_seconds_count{broadcast} +5")
        t.eq(delta(s1, s2, "asyncchat_plugin_seconds_bucket", plugin="broadcast",
                   le="+Inf"), 5, "plugin_seconds +Inf bucket +5")
        t.ok(0 < delta(s1, s2, "asyncchat_plugin_seconds_sum", plugin="broadcast") < 1,
             "plugin_seconds_sum grew by less than a second")
        t.eq(delta(s1, s2, "asyncchat_plugin_chain_seconds_count"), 5,
             "plugin_chain_seconds_count +5")

        # A frame signed with another key, and a message before session_ack.
        bad = acproto.encode("message", b"forged", session_id=b.session_id,
                             key="not-the-key")
        b.send_raw(bad)
        e = b.recv_frame()
        t.eq(e.header.get("error"), "hmac", "wrong key -> error hmac")
        d = srv.client("tcp", name="d", handshake=False)
        d.handshake(ack=False)
        d.send_message(b"too early")
        e = d.recv_frame()
        t.eq(e.header.get("error"), "not_acknowledged", "early message -> not_acknowledged")
        s3 = scrape(url)
        t.eq(delta(s2, s3, "asyncchat_frame_errors_total", error="hmac"), 1,
             "frame_errors{hmac} +1")
        t.eq(delta(s2, s3, "asyncchat_frame_errors_total", error="not_acknowledged"),
             1, "frame_errors{not_acknowledged} +1")
        t.eq(delta(s2, s3, "asyncchat_frame_errors_total", error="content_crc"), 0,
             "frame_errors{content_crc} unmoved")
        t.eq(delta(s2, s3, "asyncchat_frames_sent_total", type="error"), 2,
             "frames_sent{error} +2")
        t.eq(delta(s2, s3, "asyncchat_frames_received_total", type="message"), 1,
             "only the verified early message counts as received")
        t.eq(s3.get("asyncchat_sessions_open"), 4, "4 sessions open")
        t.eq(s3.get("asyncchat_sessions_handshaken"), 3, "3 of them handshaken")

        # Goodbyes: a disconnect frame and a plain close.
        a.send("disconnect", b"bye")
        t.ok(a.is_closed(), "a closed after its disconnect")
        b.close()
        d.close()
        deadline = time.monotonic() + 3
        while True:
            s4 = scrape(url)
            if s4.get("asyncchat_sessions_open") == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        t.eq(s4.get("asyncchat_sessions_open"), 1, "1 session left open")
        t.eq(s4.get("asyncchat_sessions_handshaken"), 1, "1 handshaken left")
        t.eq(delta(s3, s4, "asyncchat_disconnects_total", reason="client-disconnect"),
             1, "disconnects{client-disconnect} +1")
        t.eq(delta(s3, s4, "asyncchat_disconnects_total", reason="eof"), 2,
             "disconnects{eof} +2")
        c.close()


def case_timeouts(t):
    opts = {"heartbeat_timeout": 0.4, "handshake_timeout": 0.4}
    with metrics_server(plugins=["echo"], server=opts) as srv:
        url = metrics_url(srv)
        silent = srv.client("tcp", name="silent")
        mute = srv.client("unix", name="mute", handshake=False)
        mute.handshake(ack=False)
        t.ok(silent.is_closed(3), "silent session closed by the heartbeat timeout")
        t.ok(mute.is_closed(3), "mute session closed by the handshake timeout")
        m = scrape(url)
        t.eq(m.get("asyncchat_disconnects_total", reason="heartbeat-timeout"), 1,
             "disconnects{heartbeat-timeout} 1")
        t.eq(m.get("asyncchat_disconnects_total", reason="handshake-timeout"), 1,
             "disconnects{handshake-timeout} 1")
        t.eq(m.get("asyncchat_frames_sent_total", type="disconnect"), 2,
             "2 disconnect frames sent")
        t.eq((m.get("asyncchat_sessions_open"), m.get("asyncchat_sessions_handshaken")),
             (0, 0), "no session left")
        silent.close()
        mute.close()


def case_slow_consumer(t):
    opts = {"max_content_size": 65536, "max_output_buffer": "256K",
            "heartbeat_timeout": 30}
    with metrics_server(plugins=["broadcast"], server=opts) as srv:
        url = metrics_url(srv)
        slow = srv.client("unix", name="slow", rcvbuf=4096)
        flooder = srv.client("tcp", name="flooder")
        frame = flooder.frame("message", b"S" * 65536)
        for _ in range(100):     # 6.4 MiB to a client that never reads
            flooder.send_raw(frame)
        flooder.sync(10)
        m = srv.wait_log(r"closed reason=slow-consumer", timeout=3)
        t.ok(m is not None, "the log says slow-consumer", srv.log()[-1500:])
        s = scrape(url)
        t.eq(s.get("asyncchat_disconnects_total", reason="slow-consumer"), 1,
             "disconnects{slow-consumer} 1")
        t.eq(s.get("asyncchat_plugin_calls_total", plugin="broadcast"), 100,
             "plugin_calls{broadcast} 100")
        t.ok(s.get("asyncchat_frames_sent_total", type="message") < 100,
             "fewer than 100 messages were queued to the slow client")
        slow.close()
        flooder.close()


def case_reload(t):
    with metrics_server(plugins=["broadcast"]) as srv:
        url = metrics_url(srv)
        a, b = srv.client("tcp"), srv.client("tcp")
        for i in range(2):
            a.send_message(b"before %d" % i)
        a.sync()
        off = len(srv.log())
        srv.signal(signal.SIGHUP)
        t.ok(srv.wait_log(r"configuration reloaded", start=off),
             "SIGHUP with the same file reloads")
        t.ok("metrics on" not in srv.log()[off:],
             "an unchanged metrics_listen is kept, not reopened")
        m = scrape(url)
        t.eq(m.get("asyncchat_reloads_total"), 1, "reloads_total 1")
        t.eq(m.get("asyncchat_plugin_calls_total", plugin="broadcast"), 2,
             "plugin_calls{broadcast} kept across the reload")

        # Move the endpoint: the old address closes, the new one answers.
        if ipv6_available():
            new = "[::1]:0"
            pattern = r"http://\[::1\]:\d+/metrics$"
        else:
            new = "127.0.0.1:%d" % free_port()
            pattern = r"http://127\.0\.0\.1:\d+/metrics$"
        srv.server_opts["metrics_listen"] = new
        srv.write_config()
        off = len(srv.log())
        srv.signal(signal.SIGHUP)
        t.ok(srv.wait_log(r"configuration reloaded", start=off),
             "SIGHUP with a new metrics_listen reloads")
        url2 = metrics_url(srv, start=off)
        t.ok(re.match(pattern, url2), "metrics moved to " + url2)
        try:
            fetch(url)
            old_closed = False
        except (urllib.error.URLError, OSError):
            old_closed = True
        t.ok(old_closed, "the old address no longer answers")
        m = scrape(url2)
        t.eq(m.get("asyncchat_reloads_total"), 2, "reloads_total 2")

        # A broken file: refused, counted, endpoint unchanged.
        srv.write_config(text=srv.config_text() + "[server]\nnot_a_key = 1\n")
        off = len(srv.log())
        srv.signal(signal.SIGHUP)
        t.ok(srv.wait_log(r"reload failed: keeping", start=off),
             "a broken file is refused")
        m = scrape(url2)
        t.eq((m.get("asyncchat_reloads_total"),
              m.get("asyncchat_reload_failures_total")), (3, 1),
             "reloads_total 3, reload_failures_total 1")
        t.eq([f.content for f in b.sync()], [b"before 0", b"before 1"],
             "sessions survive the reloads")

        # metrics_listen removed: the endpoint closes.
        del srv.server_opts["metrics_listen"]
        srv.write_config()
        off = len(srv.log())
        srv.signal(signal.SIGHUP)
        t.ok(srv.wait_log(r"metrics off", start=off), "log says 'metrics off'")
        try:
            fetch(url2)
            closed = False
        except (urllib.error.URLError, OSError):
            closed = True
        t.ok(closed, "nothing answers once metrics_listen is gone")
        a.close()
        b.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def case_config(t):
    for value in ("localhost:9100", "127.0.0.1", "127.0.0.1:65536",
                  "::1:9100", "[::1]9100", "[nope]:9100", "127.0.0.1:x"):
        srv = Server(server={"metrics_listen": value}, start=False)
        rc, out = srv.check()
        t.ok(rc == 1 and re.search(
            r"asyncchat\.conf:\d+: \[server\] metrics_listen: %s: expected "
            % re.escape(value), out), "refused with FILE:LINE: %s" % value, out)
    for value in ("none", "127.0.0.1:9100", "[::1]:0", "0.0.0.0:9100"):
        srv = Server(server={"metrics_listen": value}, start=False)
        rc, out = srv.check()
        t.eq(rc, 0, "accepted: %s" % value, out)
    # In use at start: the server refuses to run.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        srv = Server(server={"metrics_listen": "127.0.0.1:%d" % s.getsockname()[1]},
                     start=False)
        rc, out = srv.start_fails()
        t.ok(rc == 1 and "cannot serve metrics" in out,
             "a busy port stops the start with a clear error", out)
    finally:
        s.close()


if __name__ == "__main__":
    main([case_format, case_traffic, case_timeouts, case_slow_consumer,
          case_reload, case_config])
