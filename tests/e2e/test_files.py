#!/usr/bin/env python3
"""The files asyncchatd touches, against a local attacker (issue 11): the
unix socket (a squatter whose listen queue is full, a symlink put in the
socket's place), the pid file (symlinks, another server's file, reloads),
the key file (symlinks, loose modes), a key written in a readable config,
and NUL bytes in the config."""

import os
import re
import signal
import socket

from harness import BUILDDIR, SERVER, Server, Skip, main


def sanitized():
    """True if the server is built with a sanitizer."""
    for path in (os.path.join(os.path.dirname(SERVER), ".libs", "asyncchatd"),
                 SERVER):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        return b"__asan_init" in data
    return False


def squat(path):
    """A unix socket at path that listens but never accepts, with its
    listen queue full: a blocking connect() to it would wait for ever."""
    lsock = socket.socket(socket.AF_UNIX)
    lsock.bind(path)
    lsock.listen(0)
    queued = []
    for _ in range(64):
        c = socket.socket(socket.AF_UNIX)
        c.setblocking(False)
        try:
            c.connect(path)
        except BlockingIOError:
            c.close()
            return lsock, queued
        queued.append(c)
    raise AssertionError("the listen queue of %s never filled" % path)


def case_squatted_socket(t):
    """A unix socket path where someone listens with a full queue is in
    use: the server says so at once, at start and on SIGHUP, and its event
    loop never waits on it."""
    srv = Server(plugins=["echo"], start=False)
    lsock, queued = squat(srv.unix_path)
    try:
        rc, out = srv.start_fails(timeout=8)
        t.eq(rc, 1, "start: exits 1 instead of hanging", out)
        t.ok("address in use" in out, "start: says the address is in use", out)
    finally:
        for s in queued + [lsock]:
            s.close()

    with Server(plugins=["echo"]) as srv:
        c = srv.client("tcp")
        path = os.path.join(srv.dir, "squat.sock")
        lsock, queued = squat(path)
        try:
            srv.server_opts["listen"] = ["tcp://127.0.0.1:0",
                                         "unix://" + srv.unix_path,
                                         "unix://" + path]
            srv.write_config()
            off = len(srv.log())
            srv.signal(signal.SIGHUP)
            t.ok(srv.wait_log(r"reload failed: .*address in use", start=off,
                              timeout=5) is not None,
                 "SIGHUP: the reload is refused (address in use)",
                 srv.log()[off:])
            t.eq(c.sync(), [], "SIGHUP: the event loop goes on serving")
        finally:
            for s in queued + [lsock]:
                s.close()
        c.close()


def case_socket_mode_race(t):
    """Someone who swaps the socket file for a symlink after bind() cannot
    have the server chmod the symlink's target (chmod_race.so plays the
    race won)."""
    shim = os.path.join(BUILDDIR, "tests", "e2e", ".libs", "chmod_race.so")
    if not os.path.exists(shim):
        raise Skip("tests/e2e/.libs/chmod_race.so not built")
    if sanitized():
        raise Skip("LD_PRELOAD before the sanitizer runtime")
    srv = Server(plugins=["echo"], start=False, server={"unix_mode": "0666"})
    victim = os.path.join(srv.dir, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    os.chmod(victim, 0o600)
    env = {"LD_PRELOAD": shim, "AC_TEST_RACE_PATH": srv.unix_path,
           "AC_TEST_RACE_TARGET": victim}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        srv.start()
    finally:
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v
    with srv:
        t.eq(oct(os.stat(victim).st_mode & 0o777), oct(0o600),
             "the symlink's target keeps its mode")
        st = os.lstat(srv.unix_path)
        t.ok((st.st_mode & 0o170000) == 0o140000 and
             st.st_mode & 0o777 == 0o666,
             "the socket has unix_mode 0666 from its creation",
             oct(st.st_mode))


def pid_server(pid_file, **kw):
    return Server(plugins=["echo"], start=False,
                  server=dict(kw.pop("server", {}), pid_file=pid_file), **kw)


def read(path):
    with open(path) as f:
        return f.read()


def case_pid_file_symlink(t):
    """A pid_file that is a symlink is refused, and what it points to is
    left as it was."""
    srv = pid_server("/nonexistent")
    victim = os.path.join(srv.dir, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    link = os.path.join(srv.dir, "asyncchatd.pid")
    os.symlink(victim, link)
    srv.server_opts["pid_file"] = link
    srv.write_config()
    rc, out = srv.start_fails(timeout=8)
    t.eq(rc, 1, "a symlinked pid_file stops the start", out)
    t.ok(re.search(r"pid file .*asyncchatd\.pid: is a symbolic link", out),
         "and the error says why", out)
    t.eq(read(victim), "precious\n", "the symlink's target is untouched")


def case_pid_file_running(t):
    """Another running server's pid file is not overwritten; a stale one
    (left by a crash, nobody holds it) is reused and removed at exit."""
    a = pid_server("/nonexistent")
    pid_file = os.path.join(a.dir, "asyncchatd.pid")
    a.server_opts["pid_file"] = pid_file
    a.write_config()
    with a.start():
        t.eq(read(pid_file), "%d\n" % a.pid, "the first server writes its pid")
        b = pid_server(pid_file)
        rc, out = b.start_fails(timeout=8)
        t.eq(rc, 1, "a second server with the same pid_file exits 1", out)
        t.ok("held by a running server" in out, "and says why", out)
        t.eq(read(pid_file), "%d\n" % a.pid, "the first server's pid stays")
    t.ok(not os.path.exists(pid_file), "removed when the first server stops")

    with open(pid_file, "w") as f:
        f.write("99999999\n")
    with pid_server(pid_file) as c:
        c.start()
        t.eq(read(pid_file), "%d\n" % c.pid, "a stale pid file is taken over")
    t.ok(not os.path.exists(pid_file), "and removed at exit")


def case_pid_file_reload(t):
    """At exit the server removes the pid file it wrote, not the one a
    reloaded configuration names (which may be someone else's file)."""
    srv = pid_server("/nonexistent")
    first = os.path.join(srv.dir, "first.pid")
    other = os.path.join(srv.dir, "other.pid")
    with open(other, "w") as f:
        f.write("someone else's\n")
    srv.server_opts["pid_file"] = first
    srv.write_config()
    with srv.start():
        srv.server_opts["pid_file"] = other
        srv.write_config()
        off = len(srv.log())
        srv.signal(signal.SIGHUP)
        t.ok(srv.wait_log(r"configuration reloaded", start=off) is not None,
             "the reload with another pid_file is taken")
        t.ok(re.search(r"pid_file changes at the next start \(now .*first\.pid\)",
                       srv.log()[off:]), "and says pid_file waits for a restart",
             srv.log()[off:])
        rc, clean = srv.stop()
        t.eq((rc, clean), (0, True), "the server stops cleanly")
    t.ok(not os.path.exists(first), "the pid file it wrote is removed")
    t.ok(os.path.exists(other) and read(other) == "someone else's\n",
         "the file the reloaded config names is left alone")


def key_server(t, mode=0o600, link=False):
    srv = Server(plugins=["echo"], key="from-a-file", start=False)
    keyfile = os.path.join(srv.dir, "key")
    with open(keyfile, "w") as f:
        f.write("from-a-file\n")
    os.chmod(keyfile, mode)
    if link:
        os.symlink(keyfile, keyfile + ".link")
        keyfile += ".link"
    srv.server_opts["hmac_key_file"] = keyfile
    srv.write_config()
    return srv


def case_key_file(t):
    """The key file must be the file itself and keep the key: a symlink,
    or a file others can read, is refused (not only warned about)."""
    srv = key_server(t, link=True)
    rc, out = srv.check()
    t.eq(rc, 1, "-t: a symlinked hmac_key_file is refused", out)
    t.ok(re.search(r"asyncchat\.conf:\d+: \[server\] hmac_key_file: .*key\.link: "
                   r"is a symbolic link", out), "naming FILE:LINE and why", out)
    for mode in (0o644, 0o604, 0o620):
        srv = key_server(t, mode=mode)
        rc, out = srv.check()
        t.eq(rc, 1, "-t: a key file of mode %04o is refused" % mode, out)
        t.ok(re.search(r"asyncchat\.conf:\d+: \[server\] hmac_key_file: "
                       r".*(others|group).*chmod 600", out),
             "mode %04o: naming FILE:LINE and the fix" % mode, out)
        t.ok("from-a-file" not in out, "mode %04o: the key is never shown"
             % mode, out)
        rc, out = srv.start_fails(timeout=8)
        t.eq(rc, 1, "mode %04o: the server does not start" % mode, out)
    srv = key_server(t, mode=0o400)
    rc, out = srv.check()
    t.eq(rc, 0, "a key file of mode 0400 is taken", out)
    if os.geteuid() == 0:
        srv = key_server(t, mode=0o640)
        rc, out = srv.check()
        t.eq(rc, 0, "a key file root owns may be 0640 (for a group)", out)


def case_inline_key(t):
    """A key written in a configuration file that others can read draws a
    warning; the public default key does not."""
    srv = Server(plugins=["echo"], key="not-a-secret-any-more", start=False)
    os.chmod(srv.confpath, 0o644)
    rc, out = srv.check()
    t.eq(rc, 0, "-t accepts it", out)
    t.ok(re.search(r"warning: .*asyncchat\.conf:\d+: \[server\] hmac_key: the "
                   r"key is in a file that can be read .*hmac_key_file", out),
         "-t warns, naming FILE:LINE", out)
    t.ok("not-a-secret-any-more" not in out, "the key is never shown", out)
    os.chmod(srv.confpath, 0o600)
    rc, out = srv.check()
    t.ok(rc == 0 and "hmac_key" not in out, "mode 0600: no warning", out)
    srv = Server(plugins=["echo"], start=False)     # default-key
    os.chmod(srv.confpath, 0o644)
    rc, out = srv.check()
    t.ok(rc == 0 and "hmac_key" not in out,
         "the public default key: no such warning", out)


def case_nul_byte(t):
    """A NUL byte in a line is an error naming FILE:LINE, not a value cut
    short without a word."""
    srv = Server(plugins=["echo"], start=False)
    text = srv.config_text().replace(
        "[plugins]", "max_errors = 5\0 and more\n\n[plugins]", 1)
    srv.write_config(text)
    lineno = next(i + 1 for i, line in enumerate(text.splitlines())
                  if "max_errors" in line)
    rc, out = srv.check()
    t.eq(rc, 1, "-t: a NUL byte is refused", out)
    t.ok(re.search(r"asyncchat\.conf:%d: NUL byte" % lineno, out),
         "naming FILE:LINE", out)


if __name__ == "__main__":
    main([case_squatted_socket, case_socket_mode_race, case_pid_file_symlink,
          case_pid_file_running, case_pid_file_reload, case_key_file,
          case_inline_key, case_nul_byte])
