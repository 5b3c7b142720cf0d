#!/bin/sh
# bench.sh - the benchmark of issues 7 and 17 in one go, on loopback:
# asyncchatd (echo, then broadcast) next to its ceilings (tools/raw-echo in
# its three modes) and Redis pub/sub, and the chat plugin's room fan-out
# next to the same run's broadcast (issue 14) and the room with the history
# plugin next to it (issue 15), one server at a time, every
# point with the same client (asyncchat-bench). Every point records the
# server's CPU time per message (from /proc, over the measured window), the
# client's own CPU use, and whether the client was the limit (client-bound):
# a client-bound point is marked and never counted as a target met. Prints
# a table of ours / reference ratios and writes results.jsonl, table.md and
# bench.png into the results directory.
#
# usage: tools/bench.sh [-b BUILDDIR] [-o RESULTS] [-t SECONDS] [-n IDLE]
#   -b  the build tree (default: the current directory)
#   -o  where results go (default: BUILDDIR/bench-results/DATE)
#   -t  seconds measured per point (default 2; about 110 points are run)
#   -n  idle sessions (default 10000)
#   -q  quick: fewer points (no sweeps), for a first look
set -u

builddir=$(pwd)
results=
duration=2
idle_sessions=10000
quick=no
while getopts b:o:t:n:qh opt; do
	case $opt in
	b) builddir=$(cd "$OPTARG" && pwd) || exit 2 ;;
	o) results=$OPTARG ;;
	t) duration=$OPTARG ;;
	n) idle_sessions=$OPTARG ;;
	q) quick=yes ;;
	*) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done

bench=$builddir/tools/asyncchat-bench/asyncchat-bench
rawecho=$builddir/tools/raw-echo
asyncchatd=$builddir/src/server/asyncchatd
plugindir=$builddir/plugins/.libs
srcdir=$(cd "$(dirname "$0")/.." && pwd)
for f in "$bench" "$rawecho" "$asyncchatd"; do
	[ -x "$f" ] || { echo "bench.sh: $f not built (make first, or -b BUILDDIR)" >&2; exit 2; }
done
[ -n "$results" ] || results=$builddir/bench-results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$results" || exit 2
results=$(cd "$results" && pwd)
tmp=$(mktemp -d /tmp/acbench.XXXXXX) || exit 2
jsonl=$results/results.jsonl
: > "$jsonl"
failures=0

# 10,000 sessions need as many descriptors in the server and the client.
ulimit -n "$(ulimit -Hn)" 2>/dev/null

# Every server started, as "name pid" lines, for stopping them by pid.
servers=$tmp/servers

# Stop one server by its pid: TERM, then KILL after 5 s.
stop_pid() {
	kill -TERM "$1" 2>/dev/null
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1; i=$((i + 1))
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# Stop every server started so far.
stop_all() {
	[ -f "$servers" ] || return 0
	while read -r name pid; do
		stop_pid "$pid"
	done < "$servers"
	: > "$servers"
}

cleanup() {
	stop_all
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wait until a server's log names its TCP port; print it.
wait_port() {
	i=0
	while [ $i -lt 100 ]; do
		p=$(sed -n 's|.*listening on tcp://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$1" | head -n 1)
		[ -n "$p" ] && { echo "$p"; return 0; }
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1; i=$((i + 1))
	done
	echo "bench.sh: server did not start; its log:" >&2
	cat "$1" >&2
	return 1
}

# A free loopback TCP port (for redis-server, which cannot pick one).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Remember a started server: its name, pid and port (pid_NAME, port_NAME).
started() {
	echo "$1 $2" >> "$servers"
	eval "pid_$(echo "$1" | tr - _)=$2 port_$(echo "$1" | tr - _)=$3"
}

# Start asyncchatd with one plugin: start_asyncchatd NAME PLUGIN.
start_asyncchatd() {
	conf=$tmp/$1.conf
	cat > "$conf" <<EOF
[server]
listen = tcp://127.0.0.1:0
hmac_key = default-key
log = stderr
log_level = info
plugin_dir = $plugindir
max_clients = 100000
max_clients_per_ip = 0
max_message_rate = 0
max_byte_rate = 0
heartbeat_timeout = 3600
handshake_timeout = 120
pid_file = none

[plugins]
load = $2

[plugin.broadcast]
include_sender = no
EOF
	[ "$2" = broadcast ] || sed -i '/^\[plugin.broadcast\]/,$d' "$conf"
	case $2 in
	*history*)
		# A database of its own under the run's temporary directory,
		# the shipped default sync mode, and metrics for its counters.
		printf '\n[plugin.history]\npath = %s\nsync = normal\n' \
		    "$tmp/$1.db" >> "$conf"
		sed -i 's|^pid_file = none$|&\nmetrics_listen = 127.0.0.1:0|' \
		    "$conf" ;;
	esac
	# Empty the log now: a server started again under the same name must
	# not have its predecessor's port read before its own shell truncates.
	: > "$tmp/$1.log"
	"$asyncchatd" -f -c "$conf" 2> "$tmp/$1.log" &
	pid=$!
	p=$(wait_port "$tmp/$1.log" $pid) || return 1
	started "$1" $pid "$p"
}

# Start raw-echo in one of its modes: start_rawecho NAME MODE.
start_rawecho() {
	: > "$tmp/$1.log"
	"$rawecho" -m "$2" -l tcp://127.0.0.1:0 2> "$tmp/$1.log" &
	pid=$!
	p=$(wait_port "$tmp/$1.log" $pid) || return 1
	started "$1" $pid "$p"
}

# Start redis-server on a free loopback port, without persistence.
start_redis() {
	p=$(free_port)
	: > "$tmp/redis.log"
	redis-server --port "$p" --bind 127.0.0.1 --save '' \
	    --appendonly no > "$tmp/redis.log" 2>&1 &
	pid=$!
	i=0
	while ! grep -q "Ready to accept" "$tmp/redis.log" && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1))
	done
	started redis $pid "$p"
}

# The port of a started server by name.
port_of() {
	eval "echo \${port_$(echo "$1" | tr - _):-}"
}

# The pid of a started server by name.
pid_of() {
	eval "echo \${pid_$(echo "$1" | tr - _):-}"
}

# The load average now (the machine may be shared: keep it beside every
# figure).
loadavg() {
	cut -d' ' -f1-3 /proc/loadavg
}

# Run one point: point LABEL SERVER MODE [bench options]; keeps the JSON.
# The bench reads the server's CPU time from /proc/PID/stat at the start
# and the end of its measured window (-P), so connecting and draining do
# not count; it flags the point client-bound from its own CPU use.
point() {
	label=$1; server=$2; shift 2
	port=$(port_of "$server")
	pid=$(pid_of "$server")
	if [ -z "$port" ]; then
		failures=$((failures + 1))
		return
	fi
	load=$(loadavg)
	out=$("$bench" "$@" -t "$duration" -P "$pid" --json "127.0.0.1:$port" 2>&1)
	status=$?
	printf '%-22s %-16s %s\n' "$label" "$server" "$(printf '%s\n' "$out" | sed -n 1p)"
	cpu=$(printf '%s\n' "$out" | sed -n 's/^  client CPU/client CPU/p')
	printf '%-39s %s; load %s\n' "" "${cpu:-no CPU figures}" "$load"
	json=$(printf '%s\n' "$out" | grep '^{' | tail -n 1)
	if [ $status -ne 0 ] || [ -z "$json" ]; then
		failures=$((failures + 1))
		[ -n "$json" ] || json='{"ok": false}'
	fi
	printf '{"label": "%s", "server": "%s", "load": "%s", "result": %s}\n' \
	    "$label" "$server" "$load" "$json" >> "$jsonl"
}

# The history plugin's server's own counters (messages stored, store
# failures, write transactions) into history.txt, for the table.
history_metrics() {
	mp=$(sed -n 's|.*metrics on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' \
	    "$tmp/asyncchatd-history.log" | head -n 1)
	[ -n "$mp" ] || return 0
	python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
	    "http://127.0.0.1:$mp/metrics" 2>/dev/null |
	    grep '^history_' > "$results/history.txt"
}

# One echo point against every echo server in turn, side by side in time.
echo_point() {
	label=$1; shift
	point "$label" raw-echo-bev raw "$@"
	point "$label" raw-echo-event raw "$@"
	point "$label" raw-echo-frames echo "$@"
	point "$label" asyncchatd echo "$@"
}

sizes="64 256 1024 4096 16384"
clients="1 2 4 8 16 32"
rounds=3
if [ $quick = yes ]; then
	sizes="64 4096"
	clients="1 16"
	rounds=1
fi

echo "asyncchat benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, ${duration} s per point, load $(loadavg)"
echo "results: $results"

# The echo servers wait side by side (idle, they cost nothing) so that
# each point runs against all of them within seconds of each other.
start_rawecho raw-echo-bev bev
start_rawecho raw-echo-event event
start_rawecho raw-echo-frames frames
start_asyncchatd asyncchatd echo
for s in $sizes; do
	echo_point "echo 16x32 $s" -c 16 -w 32 -s "$s"
done
# Latency is the noisiest figure on a shared machine: several rounds,
# interleaved; the table takes the median of each server's rounds.
r=0
while [ $r -lt $rounds ]; do
	for c in $clients; do
		echo_point "echo ${c}x1 64" -c "$c" -w 1 -s 64
	done
	r=$((r + 1))
done
stop_all

start_asyncchatd asyncchatd broadcast
start_asyncchatd asyncchatd-chat chat
start_asyncchatd asyncchatd-history "chat, history"
if command -v redis-server > /dev/null; then
	start_redis
else
	echo "redis-server not installed: no Redis reference (apt-get install redis-server)"
fi
r=0
while [ $r -lt $rounds ]; do
	# A window of 64 messages in flight per sender, then 512: the small
	# window shows delivery latency, the large one the server's capacity.
	# The chat plugin's room (its defaults; the members join the room in
	# their session_ack, the sender sends with "room") right after
	# broadcast, at the same load.
	for w in 64 512; do
		point "fanout 1->100 128 w$w" asyncchatd fanout -p 1 -r 100 -s 128 -w $w
		point "fanout 1->100 128 w$w" asyncchatd-chat room -p 1 -r 100 -s 128 -w $w
		point "fanout 1->100 128 w$w" asyncchatd-history room -p 1 -r 100 -s 128 -w $w
		[ -z "$(port_of redis)" ] || point "fanout 1->100 128 w$w" redis resp -p 1 -r 100 -s 128 -w $w
	done
	r=$((r + 1))
done
history_metrics
stop_all

# Idle: a fresh server each, so that its memory before is its baseline.
start_asyncchatd asyncchatd echo
point "idle $idle_sessions" asyncchatd idle -n "$idle_sessions" -H 5
stop_all
start_rawecho raw-echo-frames frames
point "idle $idle_sessions" raw-echo-frames idle -n "$idle_sessions" -H 5
stop_all

# The table of ratios and the plot's data files, from results.jsonl.
python3 - "$jsonl" "$results" "$duration" <<'PYEOF' || failures=$((failures + 1))
import json, os, sys

jsonl, outdir, duration = sys.argv[1], sys.argv[2], sys.argv[3]
res = {}
loads = []
for line in open(jsonl):
    r = json.loads(line)
    res.setdefault((r["label"], r["server"]), []).append(r["result"])
    if r.get("load"):
        loads.append(float(r["load"].split()[0]))


def get(label, server, key):
    """The median over the rounds of a point; None if any round failed."""
    rs = res.get((label, server))
    if not rs or not all(r.get("ok") and r.get(key) is not None for r in rs):
        return None
    vals = sorted(r[key] for r in rs)
    return vals[len(vals) // 2]


def bound(label, server):
    """True if any round of the point was client-bound (None: no data)."""
    rs = res.get((label, server))
    if not rs:
        return None
    return any(r.get("client_bound") for r in rs)


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if unit == "us":
        return "%.1f us" % v
    if unit == "MB/s":
        return "%.1f MB/s" % v
    if unit == "B":
        return "%.0f B" % v
    return "{:,.0f}".format(v) + (" " + unit if unit else "")


def fmt_cpu(label, server):
    """Server CPU per message, client CPU share (+ its wait for a CPU)."""
    us = get(label, server, "server_us_per_msg")
    pct = get(label, server, "client_cpu_pct")
    wait = get(label, server, "client_wait_pct")
    return "%s / %s%s" % ("n/a" if us is None else "%.2f us" % us,
                          "n/a" if pct is None else "%.0f %%" % pct,
                          "" if not wait else " (+%.0f %% waiting)" % wait)


def starved():
    """Points where the client or the server waited for a CPU for more
    than a tenth of the window: the machine was shared."""
    n = 0
    for rs in res.values():
        for r in rs:
            if max(r.get("client_wait_pct") or 0,
                   r.get("server_wait_pct") or 0) > 10:
                n += 1
                break
    return n


def judge(ok, *points):
    """The met column: never yes when a point it rests on was client-bound."""
    if ok is None:
        return "n/a"
    if any(bound(*p) for p in points):
        return "client-bound, not judged"
    return "yes" if ok else "NO"


rows = []


def row(what, label, ours_srv, ref_srv, ref_name, key, unit, target,
        higher_better=True):
    ours = get(label, ours_srv, key)
    ref = get(label, ref_srv, key)
    ratio = ours / ref if ours is not None and ref else None
    ok = None
    if ratio is not None:
        ok = ratio >= target if higher_better else ratio <= target
    points = [(label, ours_srv), (label, ref_srv)]
    tgt = ("≥ %.1f" if higher_better else "≤ %.1f") % target
    rows.append((what, fmt(ours, unit), fmt(ref, unit) + " (" + ref_name + ")",
                 "n/a" if ratio is None else "%.3f" % ratio, tgt,
                 judge(ok, *points), fmt_cpu(label, ours_srv),
                 fmt_cpu(label, ref_srv)))


def cpu_row(what, label, limit):
    """A target on the server's CPU per message: it does not depend on the
    client, so a client-bound point still gives it."""
    us = get(label, "asyncchatd", "server_us_per_msg")
    ok = None if us is None else us <= limit
    rows.append((what, "n/a" if us is None else "%.2f us" % us, "", "",
                 "≤ %.1f us" % limit, "n/a" if ok is None else
                 ("yes" if ok else "NO"), fmt_cpu(label, "asyncchatd"), ""))


row("echo 16x32 64 B, msgs/s", "echo 16x32 64", "asyncchatd",
    "raw-echo-frames", "frame-boundary echo", "msgs_per_s", "", 0.7)
cpu_row("echo 16x32 64 B, server CPU per message", "echo 16x32 64", 0.7)
row("echo 16x32 4 KiB, MB/s", "echo 16x32 4096", "asyncchatd",
    "raw-echo-frames", "frame-boundary echo", "mb_per_s", "MB/s", 0.6)
cpu_row("echo 16x32 4 KiB, server CPU per message", "echo 16x32 4096", 3.0)
row("echo 1x1 64 B, p99 latency", "echo 1x1 64", "asyncchatd",
    "raw-echo-event", "raw echo", "p99_us", "us", 1.5, False)
for w in (64, 512):
    row("fanout 1->100 128 B, window %d, deliveries/s" % w,
        "fanout 1->100 128 w%d" % w, "asyncchatd", "redis", "Redis pub/sub",
        "msgs_per_s", "", 1.3)
for w in (64, 512):
    row("chat room 1->100 128 B, window %d, deliveries/s" % w,
        "fanout 1->100 128 w%d" % w, "asyncchatd-chat", "asyncchatd",
        "broadcast, same run", "msgs_per_s", "", 0.8)
for w in (64, 512):
    row("chat room + history (sync = normal), window %d, deliveries/s" % w,
        "fanout 1->100 128 w%d" % w, "asyncchatd-history", "asyncchatd-chat",
        "chat room without history, same run", "msgs_per_s", "", 0.8)
idle = [k for k in res if k[0].startswith("idle ") and k[1] == "asyncchatd"]
if idle:
    ours = get(idle[0][0], "asyncchatd", "rss_per_session_bytes")
    ref = get(idle[0][0], "raw-echo-frames", "rss_per_session_bytes")
    rows.append(("idle %s sessions, server RSS per session" % idle[0][0][5:],
                 fmt(ours, "B"), fmt(ref, "B") + " (frame-boundary echo)",
                 "n/a" if ours is None else "%.2f KiB" % (ours / 1024), "≤ 2 KiB",
                 "n/a" if ours is None else ("yes" if ours <= 2048 else "NO"),
                 "", ""))

# The instrument's own headroom: how much faster than asyncchatd the same
# client drives the cheapest protocol server in the same run.
fast = get("echo 16x32 64", "raw-echo-frames", "msgs_per_s")
slow = get("echo 16x32 64", "asyncchatd", "msgs_per_s")
headroom = []
if fast and slow:
    headroom.append("Client headroom: at echo 16x32 64 B the client drove the "
                    "frame-boundary echo at %.2f x asyncchatd's rate "
                    "(issue 17 asks >= 2.5)." % (fast / slow))
for srv in ("asyncchatd", "raw-echo-frames"):
    cl = get("echo 16x32 64", srv, "client_us_per_msg")
    sv = get("echo 16x32 64", srv, "server_us_per_msg")
    if cl is not None and sv is not None:
        headroom.append("Against %s the client spent %.3f us of CPU per "
                        "message, the server %.3f us (client / server %.2f)."
                        % (srv, cl, sv, cl / sv))

servers_ctx = ("raw-echo-bev", "raw-echo-event", "raw-echo-frames", "asyncchatd")
ctx = []
for label, what in (("echo 16x32 64", "16x32 64 B, msgs/s"),
                    ("echo 16x32 4096", "16x32 4 KiB, msgs/s")):
    cells = []
    for srv in servers_ctx:
        v = fmt(get(label, srv, "msgs_per_s"))
        us = get(label, srv, "server_us_per_msg")
        cells.append(v + ("" if us is None else ", %.2f us" % us) +
                     (" (client-bound)" if bound(label, srv) else ""))
    ctx.append((what, cells))
ctx.append(("1x1 64 B, p99", [fmt(get("echo 1x1 64", s, "p99_us"), "us")
                              for s in servers_ctx]))

head = ("target", "asyncchatd", "reference", "ratio", "target", "met",
        "asyncchatd: server CPU/msg / client CPU", "reference: server CPU/msg / client CPU")
# A point's CPU cells: the server's CPU per message (utime + stime over the
# window / messages), then the client's CPU share of the window and, if
# any, its share spent waiting for a CPU.
lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
lines += ["| " + " | ".join(r) + " |" for r in rows]
lines += ["", "| point (msgs/s, server CPU per message) | raw-echo bev | raw-echo event | frame-boundary echo | asyncchatd |",
          "|---|---|---|---|---|"]
lines += ["| " + w + " | " + " | ".join(v) + " |" for w, v in ctx]
lines += [""] + headroom
# The history server's own count of what it stored, its failures and its
# write transactions.
hist = {}
try:
    for line in open(os.path.join(outdir, "history.txt")):
        k, v = line.split()[0], line.split()[-1]
        hist[k.split("{")[0]] = float(v)
except OSError:
    pass
if hist:
    stored = hist.get("history_messages_stored_total", 0)
    batches = hist.get("history_batch_messages_count", 0)
    wsec = hist.get("history_write_seconds_sum", 0)
    lines += ["", "History: %d room messages stored in the run, %d store "
              "failures, %d write transactions (%.1f messages each, %.1f us "
              "of write per message). Messages stored per second at a "
              "point: its deliveries/s over 100 (each room message is "
              "stored once)." %
              (stored, hist.get("history_store_failures_total", 0), batches,
               stored / batches if batches else 0,
               wsec / stored * 1e6 if stored else 0)]
lines += ["", "%s s per point; load average (1 min) %s during the run. The frame-boundary"
          % (duration, "%.2f-%.2f" % (min(loads), max(loads)) if loads else "n/a"),
          "echo and asyncchatd are driven by the protocol-verifying client, the raw echoes",
          "by the length-prefix client. A point is client-bound when the client was busy",
          "(on a CPU or waiting for one) for 90 % or more of its window: its rate is the",
          "client's, and no rate target resting on it is judged. Server CPU per message",
          "(utime + stime from /proc over the window) does not depend on the client.",
          "In fan-out and the chat room a message is a delivery: a room message counts",
          "once for each member, its sender included."]
n = starved()
if n:
    lines += ["", "Warning: in %d of %d points the client or the server waited for a CPU "
              "for more than 10 %% of the window (other work on this machine): rates "
              "and ratios are provisional, CPU per message less so." % (n, len(res))]
text = "\n".join(lines) + "\n"
with open(os.path.join(outdir, "table.md"), "w") as f:
    f.write(text)
print()
print(text)

servers = ("asyncchatd", "raw-echo-frames", "raw-echo-event", "raw-echo-bev")
with open(os.path.join(outdir, "throughput.dat"), "w") as f:
    f.write("# size, MB/s of: %s, then msgs/s of the same\n" % " ".join(servers))
    sizes = sorted({int(k[0].split()[2]) for k in res if k[0].startswith("echo 16x32 ")})
    for s in sizes:
        label = "echo 16x32 %d" % s
        vals = [get(label, srv, "mb_per_s") for srv in servers] + \
               [get(label, srv, "msgs_per_s") for srv in servers]
        f.write("%d %s\n" % (s, " ".join("NaN" if v is None else "%.3f" % v for v in vals)))
with open(os.path.join(outdir, "latency.dat"), "w") as f:
    f.write("# clients (window 1, 64 B), p50 us of: %s, then p99 us of the same\n"
            % " ".join(servers))
    counts = sorted({int(k[0].split()[1].split("x")[0]) for k in res
                     if k[0].startswith("echo ") and k[0].endswith("x1 64")})
    for c in counts:
        label = "echo %dx1 64" % c
        vals = [get(label, srv, "p50_us") for srv in servers] + \
               [get(label, srv, "p99_us") for srv in servers]
        f.write("%d %s\n" % (c, " ".join("NaN" if v is None else "%.2f" % v for v in vals)))
PYEOF
if command -v gnuplot > /dev/null; then
	(cd "$results" && gnuplot "$srcdir/tools/plot.gp") && echo "plot: $results/bench.png"
else
	echo "gnuplot not installed: no plot (apt-get install gnuplot-nox)"
fi
[ $failures -eq 0 ] || echo "bench.sh: $failures point(s) failed verification or did not run" >&2
[ $failures -eq 0 ]
