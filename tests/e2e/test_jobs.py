#!/usr/bin/env python3
"""The worker pool plugins use (host->job_submit) against a live asyncchatd,
through tests/plugins/jobs.c: work off the loop thread and completions on
it; cancellation when the session closes, when a SIGHUP unloads the plugin
mid-job (the plugin must stay loaded until its running job is over) and at
shutdown; AC_JOB_NO_CANCEL and AC_JOB_SERIAL; the queue bound; the pool's
metrics.  A job that blocks waits for a gate file the test creates, so no
test times anything.  Run under the ASan build too: the harness fails a case
whose server printed a sanitizer report."""

import os
import signal
import time

import acproto
from harness import Server, main, mkdtemp, test_plugin
from metrics import metrics_url, scrape

TEXT = acproto.TEXT_UTF8
WAIT = 10.0


class Jobs:
    """A server with the jobs plugin, and its gate directory."""

    def __init__(self, threads=2, queue=None, plugins=None, **kw):
        self.gates = mkdtemp("acjobs-")
        server = {"worker_threads": threads}
        if queue is not None:
            server["worker_queue"] = queue
        server.update(kw.pop("server", {}))
        self.jobs = test_plugin("jobs")
        self.srv = Server(plugins=plugins or [self.jobs], server=server,
                          sections={"jobs": {"gate_dir": self.gates}}, **kw)

    def running(self, jid, timeout=WAIT):
        """Wait until job jid's work function is running."""
        path = os.path.join(self.gates, jid + ".running")
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def release(self, jid):
        open(os.path.join(self.gates, jid), "w").close()


def cmd(c, text):
    c.send_message(text.encode(), TEXT)


def reply(c, timeout=WAIT):
    return c.recv_type("message", timeout).content.decode()


def case_loop_thread(t):
    j = Jobs()
    with j.srv as srv:
        for tr in ("tcp", "unix"):
            with srv.client(tr) as c:
                cmd(c, "run %s1" % tr)
                t.eq(reply(c), "done %s1 worker=1 loop=1" % tr,
                     "%s: the work runs on a worker, the completion on the "
                     "loop thread" % tr)
        c = srv.client("tcp")
        for i in range(20):
            cmd(c, "run m%d" % i)
        got = sorted(reply(c) for _ in range(20))
        t.eq(got, sorted("done m%d worker=1 loop=1" % i for i in range(20)),
             "twenty jobs at once all complete, once each")
        c.close()


def case_session_closes(t):
    j = Jobs(threads=1)
    with j.srv as srv:
        a, b = srv.client("tcp"), srv.client("unix")
        cmd(a, "run a1 block")
        t.ok(j.running("a1"), "a1 runs (and holds the only worker)")
        cmd(b, "run b1")
        cmd(b, "keep b2")
        b.sync()
        b.close()
        t.ok(srv.wait_log(r"job b1 cancelled session=gone", WAIT)
             is not None, "a queued job of a closed session is cancelled: "
             "its completion still runs, without the session",
             srv.log()[-2000:])
        t.ok("job b2" not in srv.log(), "an AC_JOB_NO_CANCEL job stays "
             "queued")
        j.release("a1")
        t.eq(reply(a), "done a1 worker=1 loop=1", "the running job completes")
        t.ok(srv.wait_log(r"job b2 done session=gone", WAIT) is not None,
             "then the AC_JOB_NO_CANCEL job runs, its session gone",
             srv.log()[-2000:])
        # a session that closes while its job runs: done, session gone
        c = srv.client("tcp")
        cmd(c, "run c1 block")
        t.ok(j.running("c1"), "c1 runs")
        c.close()
        t.ok(srv.wait_log(r"session \S+ closed reason=", WAIT) is not None,
             "its session closes meanwhile")
        j.release("c1")
        t.ok(srv.wait_log(r"job c1 done session=gone", WAIT) is not None,
             "a running job completes without its closed session",
             srv.log()[-2000:])
        cmd(a, "run a2")
        t.eq(reply(a), "done a2 worker=1 loop=1", "the pool goes on")
        a.close()


def case_queue_bound(t):
    j = Jobs(threads=1, queue=2, server={"metrics_listen": "127.0.0.1:0"})
    with j.srv as srv:
        url = metrics_url(srv)
        c = srv.client("tcp")
        cmd(c, "run q0 block")
        t.ok(j.running("q0"), "q0 runs")
        cmd(c, "run q1")
        cmd(c, "run q2")
        cmd(c, "run q3")
        t.eq(reply(c), "refused q3",
             "past worker_queue jobs waiting, job_submit refuses")
        m = scrape(url)
        t.eq((m.get("asyncchat_worker_threads"),
              m.get("asyncchat_worker_jobs_running"),
              m.get("asyncchat_worker_jobs_queued"),
              m.get("asyncchat_worker_jobs_total", status="refused")),
             (1.0, 1.0, 2.0, 1.0), "the pool's metrics say so")
        j.release("q0")
        t.eq(sorted(reply(c) for _ in range(3)),
             ["done q%d worker=1 loop=1" % i for i in range(3)],
             "the queued ones run once the worker is free")
        m = scrape(url)
        t.eq((m.get("asyncchat_worker_jobs_queued"),
              m.get("asyncchat_worker_jobs_total", status="done")),
             (0.0, 3.0), "and are counted done")
        c.close()


def case_session_share(t):
    """Jobs tied to sessions fill at most 3/4 of worker_queue: the rest is
    kept for jobs tied to none (the history plugin's writes), so that
    sessions asking for work (replays) cannot have them refused."""
    j = Jobs(threads=1, queue=4)
    with j.srv as srv:
        c = srv.client("tcp")
        cmd(c, "run s0 block")
        t.ok(j.running("s0"), "s0 runs (and holds the only worker)")
        for i in (1, 2, 3, 4):
            cmd(c, "run s%d" % i)
        t.eq(reply(c), "refused s4",
             "a fourth session job waiting: refused, at 3 of worker_queue 4")
        cmd(c, "free f1")
        cmd(c, "free f2")
        t.eq(reply(c), "refused f2",
             "a job tied to no session still finds the last place; the "
             "next one finds the queue full")
        j.release("s0")
        t.eq(sorted(reply(c) for _ in range(4)),
             ["done s%d worker=1 loop=1" % i for i in range(4)],
             "every accepted session job runs")
        t.ok(srv.wait_log(r"job f1 done session=gone", WAIT) is not None,
             "and the job tied to no session", srv.log()[-2000:])
        c.close()


def case_serial(t):
    j = Jobs(threads=2)
    with j.srv as srv:
        c = srv.client("tcp")
        cmd(c, "serial x1 block")
        t.ok(j.running("x1"), "serial x1 runs")
        cmd(c, "serial x2")
        cmd(c, "run y1")
        t.eq(reply(c), "done y1 worker=1 loop=1",
             "a plain job takes the free worker")
        j.release("x1")
        t.eq([reply(c), reply(c)], ["done x1 worker=1 loop=1",
                                    "done x2 worker=1 loop=1"],
             "the second serial job waited for the first, with a worker "
             "free all along")
        c.close()


def case_sighup_mid_job(t):
    j = Jobs(threads=1)
    with j.srv as srv:
        a = srv.client("tcp")
        cmd(a, "run h1 block")
        t.ok(j.running("h1"), "h1 runs")
        cmd(a, "run h2")
        a.sync()
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        t.ok(srv.wait_log(r"configuration reloaded", WAIT, start=mark)
             is not None, "reloaded", srv.log()[mark:])
        t.ok(srv.wait_log(r"job h2 cancelled session=open", WAIT, start=mark)
             is not None, "the old instance's queued job is cancelled",
             srv.log()[mark:])
        t.eq(reply(a), "cancelled h2", "and its completion may still answer")
        t.ok(srv.wait_log(r"unloading 1 plugin once [12] jobs? of theirs",
                          WAIT, start=mark) is not None,
             "the old instance waits for its running job",
             srv.log()[mark:])
        t.ok("fini outstanding" not in srv.log()[mark:],
             "its fini has not run")
        cmd(a, "run h3")
        t.ok(j.running("h1"), "h1 still running")
        j.release("h1")
        got = sorted([reply(a), reply(a)])
        t.eq(got, ["done h1 worker=1 loop=1", "done h3 worker=1 loop=1"],
             "the new instance takes jobs meanwhile; the old job completes")
        m = srv.wait_log(r"fini outstanding=(\d+)", WAIT, start=mark)
        t.ok(m is not None and m.group(1) == "0",
             "then the old instance is finished, every job completed",
             srv.log()[mark:])
        log = srv.log()[mark:]
        t.ok(log.find("job h1 done") < log.find("fini outstanding"),
             "its last job before its fini", log)

        # Unloaded for good by a reload without it, mid-job.
        cmd(a, "run u1 block")
        t.ok(j.running("u1"), "u1 runs")
        srv.plugins = ["echo"]
        srv.write_config()
        mark = len(srv.log())
        srv.signal(signal.SIGHUP)
        t.ok(srv.wait_log(r"configuration reloaded", WAIT, start=mark)
             is not None, "reloaded without the plugin")
        sent = a.send_message(b"echo now")
        t.eq(a.recv_frame(WAIT).raw, sent, "the new chain runs")
        j.release("u1")
        t.eq(reply(a), "done u1 worker=1 loop=1",
             "the unloaded plugin's job completes, its code still mapped")
        t.ok(srv.wait_log(r"fini outstanding=0", WAIT, start=mark)
             is not None, "then it is finished and unloaded",
             srv.log()[mark:])
        a.close()


def case_shutdown_mid_job(t):
    j = Jobs(threads=1)
    srv = j.srv
    a = srv.client("tcp")
    cmd(a, "run s1 block")
    t.ok(j.running("s1"), "s1 runs")
    cmd(a, "run s2")
    a.sync()
    srv.signal(signal.SIGTERM)
    t.ok(srv.wait_log(r"worker pool: waiting for 1 running", WAIT)
         is not None, "shutdown waits for the running job", srv.log()[-2000:])
    j.release("s1")
    rc = srv.wait_exit(WAIT)
    t.eq(rc, 0, "then the server exits 0", srv.log()[-2000:])
    log = srv.log()
    t.ok("job s2 cancelled session=gone" in log,
         "the queued job is cancelled", log[-2000:])
    t.ok("job s1 done session=gone" in log and "fini outstanding=0" in log,
         "the running one completes before fini", log[-2000:])
    a.close()


def case_unused_pool(t):
    with Server(plugins=["echo"],
                server={"metrics_listen": "127.0.0.1:0"}) as srv:
        m = scrape(metrics_url(srv))
        t.eq(m.get("asyncchat_worker_threads"), 0.0,
             "no job, no worker thread")


def case_config(t):
    for key, bad in (("worker_threads", "0"), ("worker_threads", "257"),
                     ("worker_queue", "0"), ("worker_queue", "x")):
        srv = Server(plugins=["echo"], server={key: bad}, start=False)
        rc, out = srv.check(("-t",))
        t.ok(rc == 1 and "[server] %s: %s: expected" % (key, bad) in out,
             "%s = %s is refused, naming the key" % (key, bad), out)


if __name__ == "__main__":
    main([case_loop_thread, case_session_closes, case_queue_bound,
          case_session_share, case_serial, case_sighup_mid_job, case_shutdown_mid_job,
          case_unused_pool, case_config])
