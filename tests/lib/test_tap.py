#!/usr/bin/env python3
"""tests/lib/tap.py as its readers read it.

Every suite's results reach make check through automake's tap-driver.sh,
and the stages without a test-suite.log reach tools/run-tests through
tools/tap-count.awk.  Here the writer prints every kind of line it can
(a "#" in a name, SKIP, TODO, diagnostics, a plan first or last, Bail
out!) and both readers must judge each line as meant.
"""

import io
import os
import subprocess
import sys

from harness import SRCDIR, main, mkdtemp
import tap

DRIVER = os.path.join(SRCDIR, "build-aux", "tap-driver.sh")
COUNTER = os.path.join(SRCDIR, "tools", "tap-count.awk")

# (what the writer is told, the line it must print, automake's verdict)
SCRIPT = [
    (lambda t: t.ok(True, "plain"), "ok 1 - plain", "PASS"),
    (lambda t: t.ok(False, "fails", "why\nand why"), "not ok 2 - fails",
     "FAIL"),
    (lambda t: t.ok(True, "a # and a \\ in a name"),
     "ok 3 - a \\# and a \\\\ in a name", "PASS"),
    (lambda t: t.ok(True, "# SKIP is only words here"),
     "ok 4 - \\# SKIP is only words here", "PASS"),
    (lambda t: t.ok(True, "ends in a backslash\\ # TODO no"),
     "ok 5 - ends in a backslash\\\\ \\# TODO no", "PASS"),
    (lambda t: t.skip("skipped", "no\nnetwork"),
     "ok 6 - skipped # SKIP no network", "SKIP"),
    (lambda t: t.ok(False, "a known bug", known_bug="issue 12"),
     "not ok 7 - a known bug # TODO issue 12", "XFAIL"),
    (lambda t: t.ok(True, "a known bug, fixed", known_bug="issue 12"),
     "ok 8 - a known bug, fixed", "PASS"),
    (lambda t: t.ok(True, "two\nlines"), "ok 9 - two lines", "PASS"),
    (lambda t: t.eq(2, 3, "eq"), "not ok 10 - eq", "FAIL"),
]


def write_script(plan_first=False):
    """The writer's output for SCRIPT, and its exit status."""
    out = io.StringIO()
    w = tap.Tap(out)
    if plan_first:
        w.plan(len(SCRIPT))
    for step, _, _ in SCRIPT:
        step(w)
    rc = w.done()
    return out.getvalue(), rc


def drive(text, label):
    """Run text through tap-driver.sh; the per-test results it records."""
    if not os.path.exists(DRIVER):
        return None
    d = mkdtemp("actap-")
    src = os.path.join(d, "out.tap")
    with open(src, "w") as f:
        f.write(text)
    env = dict(os.environ, AM_TAP_AWK="awk")
    p = subprocess.run(
        ["sh", DRIVER, "--test-name", label, "--log-file",
         os.path.join(d, "t.log"), "--trs-file", os.path.join(d, "t.trs"),
         "--expect-failure", "no", "--color-tests", "no",
         "--enable-hard-errors", "yes", "--", "cat", src],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=60)
    with open(os.path.join(d, "t.trs")) as f:
        trs = f.read()
    return [line.split()[1] for line in trs.splitlines()
            if line.startswith(":test-result:")], p.stdout.decode()


def count(text):
    """tools/tap-count.awk's "passed failed skipped" for text."""
    p = subprocess.run(["awk", "-f", COUNTER], input=text.encode(),
                       stdout=subprocess.PIPE, timeout=60)
    return tuple(int(x) for x in p.stdout.split())


def suite_count(results):
    """What run-tests makes of a test-suite.log with these results."""
    return (sum(r in ("PASS", "XFAIL") for r in results),
            sum(r in ("FAIL", "XPASS", "ERROR") for r in results),
            sum(r == "SKIP" for r in results))


def case_lines(t):
    text, rc = write_script()
    lines = text.splitlines()
    tests = [ln for ln in lines if not ln.startswith("#")]
    for (_, want, _), got in zip(SCRIPT, tests):
        t.eq(got, want, "prints %s" % want.split(" - ", 1)[1])
    t.eq(tests[len(SCRIPT):], ["1..%d" % len(SCRIPT)], "plan at the end")
    t.ok("# why" in lines and "# and why" in lines and
         lines.index("# why") == lines.index("not ok 2 - fails") + 1,
         "diagnostics follow the failure, one # line each", text)
    t.ok("#      got: 2" in lines, "eq shows what it got", text)
    t.eq(rc, 1, "a failure makes the exit status 1")
    out = io.StringIO()
    w = tap.Tap(out)
    w.ok(True, "x", known_bug="b")
    w.skip("y", "z")
    t.eq(w.done(), 0, "skips and known bugs alone: status 0")


def case_plan_first(t):
    text, rc = write_script(plan_first=True)
    t.eq(text.splitlines()[0], "1..%d" % len(SCRIPT), "plan() prints first")
    t.ok(text.count("1..") == 1, "and done() does not print it again", text)
    out = io.StringIO()
    w = tap.Tap(out)
    w.plan(3)
    w.ok(True, "one")
    t.eq(w.done(), 1, "fewer lines than planned: status 1")
    t.ok("# planned 3 tests but ran 1" in out.getvalue(),
         "and says so", out.getvalue())


def case_automake(t):
    text, _ = write_script()
    r = drive(text, "script")
    if r is None:
        raise tap.Skip("no build-aux/tap-driver.sh (run autoreconf)")
    results, out = r
    t.eq(results, [v for _, _, v in SCRIPT],
         "tap-driver.sh judges every line as meant", out)
    t.eq(count(text), suite_count(results),
         "tools/tap-count.awk counts as run-tests counts a test-suite.log")
    text, _ = write_script(plan_first=True)
    results, out = drive(text, "planned")
    t.eq(results, [v for _, _, v in SCRIPT], "the same with the plan first",
         out)


def case_bail_out(t):
    prog = ("import tap\nt = tap.Tap()\nt.ok(True, 'before')\n"
            "t.bail_out('the server\\nwill not start')\n"
            "t.ok(True, 'never')\n")
    p = subprocess.run([sys.executable, "-c", prog], stdout=subprocess.PIPE,
                       timeout=60)
    text = p.stdout.decode()
    t.eq(text, "ok 1 - before\nBail out! the server will not start\n",
         "one line, nothing after it")
    t.eq(p.returncode, 1, "exit status 1")
    r = drive(text, "bail")
    if r is None:
        raise tap.Skip("no build-aux/tap-driver.sh (run autoreconf)")
    results, out = r
    t.ok("ERROR" in results, "tap-driver.sh: an error", out)
    t.eq(count(text), (1, 1, 0), "tools/tap-count.awk: a failure")


def case_skip_all(t):
    prog = "import tap\ntap.skip_all('nats-server is not installed')\n"
    p = subprocess.run([sys.executable, "-c", prog], stdout=subprocess.PIPE,
                       timeout=60)
    text = p.stdout.decode()
    t.eq((text, p.returncode),
         ("1..0 # SKIP nats-server is not installed\n", 0),
         "a skipped plan, status 0")
    r = drive(text, "skipall")
    if r is None:
        raise tap.Skip("no build-aux/tap-driver.sh (run autoreconf)")
    t.eq(r[0], ["SKIP"], "tap-driver.sh: the program is skipped", r[1])


def case_run(t):
    prog = """import tap
def case_good(t):
    t.ok(True, "fine")
def case_skips(t):
    t.ok(True, "first")
    raise tap.Skip("no IPv6 here")
def case_raises(t):
    t.ok(True, "first")
    raise ValueError("boom")
def after(t):
    t.diag("after " + t.prefix)
raise SystemExit(tap.run([case_good, case_skips, case_raises], after,
                         lambda: "extra diagnostics"))
"""
    p = subprocess.run([sys.executable, "-c", prog], stdout=subprocess.PIPE,
                       timeout=60)
    text = p.stdout.decode()
    tests = [ln for ln in text.splitlines() if not ln.startswith("#")]
    t.eq(tests, ["ok 1 - good: fine", "ok 2 - skips: first",
                 "ok 3 - skips: rest of case # SKIP no IPv6 here",
                 "ok 4 - raises: first",
                 "not ok 5 - raises: ran without an exception", "1..5"],
         "one prefix a case, Skip and exceptions reported", text)
    t.ok("ValueError: boom" in text and "# extra diagnostics" in text,
         "the traceback and error_diag() as diagnostics", text)
    t.ok(text.count("# after ") == 3 and "# after raises: " in text,
         "after_case runs after every case, under its prefix", text)
    t.eq(p.returncode, 1, "status 1 after a failure")


if __name__ == "__main__":
    main([case_lines, case_plan_first, case_automake, case_bail_out,
          case_skip_all, case_run])
