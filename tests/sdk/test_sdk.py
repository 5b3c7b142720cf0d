"""The plugin SDK as a plugin author meets it.

Install the build into a temporary DESTDIR, then, using only what was
installed (pkg-config file, headers, library), build the example plugins
from a directory outside the source tree, load them into a running
asyncchatd by absolute path and check what they do.
"""

import json
import os
import shutil
import subprocess

import harness
from harness import Server, mkdtemp
from metrics import metrics_url, scrape

EXAMPLES = os.path.join(harness.SRCDIR, "examples", "plugins")

# What the install produced, shared by the cases (filled by case_install).
sdk = {}


def run(cmd, env=None, cwd=None):
    """Run a command; return (status, output text)."""
    p = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def pkg_config(*args):
    """pkg-config, finding asyncchat.pc in the temporary install first."""
    env = dict(os.environ)
    # The temporary install comes before any installed copy; the system
    # directories stay searchable for the libraries asyncchat.pc requires.
    env["PKG_CONFIG_PATH"] = sdk["pcdir"]
    rc, out = run(["pkg-config", "--define-prefix"] + list(args), env=env)
    if rc != 0:
        raise AssertionError("pkg-config %s failed: %s" % (args, out))
    return out.split()


def case_install(t):
    """make install into a DESTDIR lays out headers, library and .pc."""
    dest = mkdtemp("acsdk-")
    env = dict(os.environ)
    # Run a make of our own, not a child of the one running the tests.
    for var in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(var, None)
    rc, out = run(["make", "-s", "install", "DESTDIR=" + dest], env=env,
                  cwd=harness.BUILDDIR)
    t.ok(rc == 0, "make install DESTDIR=... succeeds", out[-3000:])
    pcs = []
    for root, _, files in os.walk(dest):
        if "asyncchat.pc" in files:
            pcs.append(root)
    t.eq(len(pcs), 1, "one asyncchat.pc installed")
    sdk["dest"] = dest
    sdk["pcdir"] = pcs[0]
    plugindir = pkg_config("--variable=plugindir", "asyncchat")[0]
    t.ok(os.path.isdir(plugindir), "plugindir variable names the installed "
         "plugin directory", plugindir)
    t.ok(os.path.exists(os.path.join(plugindir, "echo.so")),
         "shipped plugins are in plugindir", plugindir)
    cflags = pkg_config("--cflags", "asyncchat")
    inc = [f[2:] for f in cflags if f.startswith("-I")]
    t.ok(any(os.path.exists(os.path.join(i, "asyncchat", "plugin.h"))
             for i in inc), "--cflags finds asyncchat/plugin.h", cflags)


def build_plugin(t, name, extra_libs=()):
    """Copy examples/plugins/NAME.c out of the tree and build it there."""
    work = mkdtemp("acplug-")
    src = os.path.join(work, name + ".c")
    shutil.copy(os.path.join(EXAMPLES, name + ".c"), src)
    so = os.path.join(work, name + ".so")
    cmd = (["cc", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror",
            "-Wno-unused-parameter"] + pkg_config("--cflags", "asyncchat") +
           [src] + pkg_config("--libs", "asyncchat") + list(extra_libs) +
           ["-o", so])
    rc, out = run(cmd, cwd=work)
    t.ok(rc == 0 and os.path.exists(so),
         "%s.c builds outside the tree with the installed SDK" % name,
         " ".join(cmd) + "\n" + out)
    return so


def case_rooms(t):
    """The rooms example routes by the "room" header member."""
    so = build_plugin(t, "rooms")
    srv = Server(plugins=["logger", so], start=False, sections={"rooms": {
        "default_room": "lobby", "include_sender": "yes"}})
    log = os.path.join(srv.dir, "m.log")
    srv.sections["logger"] = {"path": log}
    srv.write_config()
    with srv.start():
        a, b, c = (srv.client("tcp") for _ in range(3))
        sent = a.send_message(b"hello red", extra={"room": "red"})
        got = a.recv_type("message")
        t.eq(got.raw, sent, "sender in room red gets its own frame back "
             "byte for byte")
        t.eq(b.expect_silence(0.3), [], "a lobby session does not get a "
             "red message")
        b.send_message(b"b joins red", extra={"room": "red"})
        t.eq(a.recv_type("message").content, b"b joins red",
             "after naming the room, b's message reaches a")
        t.eq(b.recv_type("message").content, b"b joins red",
             "and b itself (include_sender)")
        a.send_message(b"no member: still red")
        t.eq(b.recv_type("message").content, b"no member: still red",
             "a message without the member goes to the current room")
        t.eq(a.recv_type("message").content, b"no member: still red",
             "including its sender")
        c.send_message(b"lobby talk")
        t.eq(c.recv_type("message").content, b"lobby talk",
             "lobby member hears itself (include_sender)")
        t.eq(a.expect_silence(0.3) + b.expect_silence(0.1), [],
             "red sessions do not hear the lobby")
        lines = [json.loads(x) for x in open(log, "rb").read().splitlines()]
        t.eq([x.get("attrs") for x in lines],
             [None, None, {"room": "red"}, None],
             "the room is a session attribute the logger (loaded before "
             "rooms) records from the sender's next message on")
        for x in (a, b, c):
            x.close()


def case_wordfilter(t):
    """The wordfilter example stops the chain and disconnects offenders."""
    so = build_plugin(t, "wordfilter", ["-levent_core"])
    with Server(plugins=[so, "broadcast"], sections={
            "wordfilter": {"words": "spam, scam", "strikes": "2"},
            "broadcast": {"include_sender": "yes"}}) as srv:
        bad, good = srv.client("tcp"), srv.client("unix")
        bad.send_message(b"buy SPAM now", content_type="text/plain")
        f = bad.recv_type("error")
        t.ok(b"refused" in f.content, "sender is told its message was "
             "refused", repr(f))
        t.eq(good.expect_silence(0.3), [], "a refused message is not "
             "broadcast")
        good.send_message(b"clean words", content_type="text/plain")
        t.eq(good.recv_type("message").content, b"clean words",
             "clean messages still pass through to broadcast")
        t.eq(bad.recv_type("message").content, b"clean words",
             "and reach the other session")
        bad.send_message(b"a scam", content_type="text/plain")
        frames = bad.recv_until_closed(3.0)
        t.ok(any(fr.type == "disconnect" for fr in frames),
             "second strike disconnects the sender", repr(frames))
        good.send_message(b"still here", content_type="text/plain")
        t.eq(good.recv_type("message").content, b"still here",
             "the other session keeps working")
        good.close()


def case_weather(t):
    """The weather example answers from its worker-pool lookup, and the
    server keeps serving while the lookup runs."""
    so = build_plugin(t, "weather")
    with Server(plugins=[so, "echo"],
                server={"worker_threads": "2",
                        "metrics_listen": "127.0.0.1:0"},
                sections={"weather": {"delay": "1000"}}) as srv:
        a, b = srv.client("tcp"), srv.client("unix")
        a.send_message(b"/weather Paris", content_type="text/plain")
        sent = a.send_message(b"meanwhile", content_type="text/plain")
        first = a.recv_type("message", 10)
        t.eq(first.raw, sent, "a message sent after the command is echoed "
             "before the lookup ends: the loop did not wait for it")
        answer = a.recv_type("message", 10).content.decode()
        t.ok(answer.startswith("weather: Paris: ") and " C, " in answer,
             "then the lookup's answer comes", answer)
        b.send_message(b"/weather Paris", content_type="text/plain")
        t.eq(b.recv_type("message", 10).content.decode(), answer,
             "the same city, the same made-up forecast")
        b.send_message(b"/weather", content_type="text/plain")
        t.ok(b"usage" in b.recv_type("message").content,
             "a command without a city gets the usage")
        a.send_message(b"/weather Oslo", content_type="text/plain")
        a.close()       # gone before the answer: the answer is dropped
        t.ok(srv.wait_log(r"session \S+ closed") is not None,
             "a session may close while its lookup runs")
        m = scrape(metrics_url(srv))
        n = m.get("weather_lookup_seconds_count", plugin="weather")
        t.ok(n is not None and n >= 2.0, "its lookups are on /metrics",
             repr(n))
        b.close()


def case_bad_option(t):
    """An example plugin refuses an unknown option, naming it."""
    so = build_plugin(t, "rooms")
    srv = Server(plugins=[so], sections={"rooms": {"colour": "blue"}},
                 start=False)
    rc, out = harness.run_server_cmd(["-t", "-c", srv.confpath])
    t.ok(rc == 1, "asyncchatd -t fails on the bad option", out)
    t.ok("colour" in out and "rooms" in out, "the error names the plugin "
         "and the option", out)


if __name__ == "__main__":
    harness.main([case_install, case_rooms, case_wordfilter, case_weather,
                  case_bad_option])
