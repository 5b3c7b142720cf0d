#!/usr/bin/env python3
"""asyncchatd's command line and config checking: -t, errors that name
FILE:LINE and the key, from -t and from startup."""

import os
import re

import acproto
import harness
from harness import Server, main, mkdtemp, run_server_cmd


def bad_config(t, label, mutate, key, marker=None, where=True, extra_lines=0):
    """The mutated config fails -t and startup with status 1 naming key and,
    if where, FILE:LINE: of the line holding marker (or one of the
    extra_lines lines after it)."""
    srv = Server(plugins=["echo"], start=False)
    text = mutate(srv.config_text())
    srv.write_config(text)
    marker = marker or key
    lineno = next((i + 1 for i, line in enumerate(text.splitlines())
                   if marker in line), 0)
    lines = "|".join(str(lineno + k) for k in range(extra_lines + 1))
    for mode, args in (("-t", ("-t",)), ("startup", ("-f",))):
        rc, out = srv.check(args)
        t.eq(rc, 1, "%s: %s exits 1" % (label, mode), out)
        if where:
            pat = re.escape(srv.confpath) + r":(%s):" % lines
            t.ok(re.search(pat, out) is not None and key in out,
                 "%s: %s error is 'FILE:%s: ...' naming %s" % (label, mode, lines, key),
                 out)
        else:
            t.ok(key in out, "%s: %s error names %s" % (label, mode, key), out)
    t.ok(not os.path.exists(srv.unix_path), "%s: no socket created" % label)


def add_server_line(line):
    return lambda text: text.replace("[plugins]", line + "\n\n[plugins]", 1)


def case_bad_configs(t):
    bad_config(t, "unknown key", add_server_line("no_such_key_e2e = 1"), "no_such_key_e2e")
    bad_config(t, "bad number", add_server_line("max_clients = lots"), "max_clients",
               "= lots")
    bad_config(t, "bad timeout", add_server_line("heartbeat_timeout = -1"),
               "heartbeat_timeout")
    bad_config(t, "bad size suffix", add_server_line("max_output_buffer = 12Q"),
               "max_output_buffer")
    bad_config(t, "duplicate key", add_server_line("max_errors = 3\nmax_errors = 4"),
               "max_errors", "max_errors = 4")
    bad_config(t, "unknown section", lambda text: text + "\n[nonsense_e2e]\nx = 1\n",
               "nonsense_e2e", extra_lines=1)
    bad_config(t, "bad listen URL", add_server_line("listen = carrier-pigeon://x"),
               "listen", "carrier-pigeon")
    bad_config(t, "bad broadcast option",
               lambda text: text.replace("load = echo", "load = broadcast")
               + "\n[plugin.broadcast]\ninclude_sender = perhaps\n",
               "include_sender", where=False)


def case_check_ok(t):
    srv = Server(plugins=["echo"], start=False,
                 server={"handshake_timeout": 0.5, "heartbeat_timeout": 1.5,
                         "max_clients": 100, "max_errors": 5, "backlog": 64,
                         "unix_mode": "0660", "max_header_size": 4096,
                         "max_content_size": "1M", "max_output_buffer": "4M",
                         "log_level": "info"})
    rc, out = srv.check()
    t.eq(rc, 0, "-t on a config using many keys exits 0", out)
    t.ok("configuration OK" in out, "prints 'configuration OK'", out)
    t.ok(not os.path.exists(srv.unix_path), "-t binds nothing")


def case_unix_mode(t):
    with Server(plugins=["echo"], server={"unix_mode": "0600"}) as srv:
        mode = os.stat(srv.unix_path).st_mode & 0o777
        t.eq(oct(mode), oct(0o600), "unix_mode = 0600 applied to the socket")
    with Server(plugins=["echo"], server={"unix_mode": "0666"}) as srv:
        mode = os.stat(srv.unix_path).st_mode & 0o777
        t.eq(oct(mode), oct(0o666), "unix_mode = 0666 applied to the socket")


def case_stale_socket(t):
    # a stale socket file (nothing answering) is replaced
    import socket
    srv = Server(plugins=["echo"], start=False)
    s = socket.socket(socket.AF_UNIX)
    s.bind(srv.unix_path)
    s.close()
    with srv.start():
        with srv.client("unix") as c:
            t.eq(c.sync(), [], "stale socket file replaced and served")
        # a live one is not taken over
        srv2 = Server(plugins=["echo"], start=False)
        srv2.unix_path = srv.unix_path
        srv2.write_config()
        rc, out = srv2.start_fails(timeout=5)
        t.ok(rc is not None and rc != 0, "a second server refuses a live socket path", out)
        with srv.client("unix") as c:
            t.eq(c.sync(), [], "the first server still owns it")


def case_log_file(t):
    # -f logs to stderr whatever `log` says (asyncchatd --help), so this one
    # runs without -f (the server never daemonises: it stays our child)
    srv = Server(plugins=["echo"], start=False)
    logfile = os.path.join(srv.dir, "asyncchatd.log")
    srv.server_opts["log"] = logfile
    srv.write_config()
    # readiness comes from the log, which now goes to the file: read it there
    srv.logpath = logfile
    with srv.start(args=()):
        with srv.client("unix") as c:
            t.eq(c.sync(), [], "log = FILE: server runs and serves")
        t.ok("listening on tcp://127.0.0.1:" in open(logfile).read(),
             "log = FILE: log lines go to the file")
        with open(srv.stderr_path) as f:
            err = f.read()
        t.ok("listening on" not in err, "log = FILE: not to stderr as well", err)
    rc = srv.returncode
    t.eq(rc, 0, "log = FILE: exit 0")


def case_long_load_line(t):
    """A `load` line of 500 characters and more (absolute plugin paths in a
    deep directory) passes -t and loads its chain: the line has no length
    limit (inih's was 198 characters)."""
    top = mkdtemp("acload-")
    deep = top
    while len(deep) < 170:
        deep = os.path.join(deep, "plugins-with-a-long-directory-name")
    os.makedirs(deep)
    paths = []
    for name, src in (("echo", harness.PLUGINDIR),
                      ("tag", harness.TESTPLUGINDIR),
                      ("broadcast", harness.PLUGINDIR)):
        os.symlink(os.path.join(src, name + ".so"),
                   os.path.join(deep, name + ".so"))
        paths.append(os.path.join(deep, name + ".so"))
    srv = Server(plugins=paths, sections={"tag": {"tag": "T"}}, start=False)
    line = next(ln for ln in srv.config_text().splitlines()
                if ln.startswith("load = "))
    t.ok(len(line) >= 500, "the load line has %d characters" % len(line))
    rc, out = srv.check()
    t.ok(rc == 0 and "configuration OK" in out,
         "-t: a %d-character load line is accepted" % len(line), out)
    with srv.start():
        c = srv.client("unix")
        sent = c.send_message(b"hi", acproto.TEXT_UTF8)
        t.eq(c.recv_frame().raw, sent, "echo, loaded from the long line, "
             "answers first")
        t.eq(c.recv_type("message").content, b"T:hi",
             "then tag, the second plugin of the line")
        c.close()


def case_cli(t):
    rc, out = run_server_cmd(["--version"])
    t.eq(rc, 0, "--version exits 0", out)
    t.ok(re.search(r"\d+\.\d+", out) is not None, "--version prints a version", out)
    rc, out = run_server_cmd(["--help"])
    t.eq(rc, 0, "--help exits 0", out)
    t.ok("-c" in out and "-t" in out, "--help lists the options", out)
    rc, out = run_server_cmd(["--no-such-option"])
    t.ok(rc not in (0, None), "an unknown option fails", out)
    rc, out = run_server_cmd(["-t", "-c", "/nonexistent-e2e/asyncchat.conf"])
    t.eq(rc, 1, "-t with a missing config file exits 1", out)
    t.ok("/nonexistent-e2e/asyncchat.conf" in out, "and names the file", out)


if __name__ == "__main__":
    main([case_bad_configs, case_check_ok, case_unix_mode, case_stale_socket, case_log_file,
          case_long_load_line, case_cli])
