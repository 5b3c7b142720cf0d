#!/bin/sh
# bench.sh - issue 7's benchmark in one go, on loopback: asyncchatd (echo,
# then broadcast) next to its ceilings (tools/raw-echo in its three modes)
# and Redis pub/sub, and the chat plugin's room fan-out next to the same
# run's broadcast, one server at a time, every point with the same client
# (asyncchat-bench). Prints a table of ours / ceiling ratios and writes
# results.jsonl, table.md and bench.png into the results directory.
#
# usage: tools/bench.sh [-b BUILDDIR] [-o RESULTS] [-t SECONDS] [-n IDLE]
#   -b  the build tree (default: the current directory)
#   -o  where results go (default: BUILDDIR/bench-results/DATE)
#   -t  seconds measured per point (default 2; about 90 points are run)
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
	*) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 2 ;;
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
		p=$(sed -n 's|.*listening on tcp://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$1" 2>/dev/null | head -n 1)
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
	# A log left by an earlier server of this name must not be read for
	# this one's port.
	rm -f "$tmp/$1.log"
	"$asyncchatd" -f -c "$conf" 2> "$tmp/$1.log" &
	pid=$!
	p=$(wait_port "$tmp/$1.log" $pid) || return 1
	started "$1" $pid "$p"
}

# Start raw-echo in one of its modes: start_rawecho NAME MODE.
start_rawecho() {
	rm -f "$tmp/$1.log"
	"$rawecho" -m "$2" -l tcp://127.0.0.1:0 2> "$tmp/$1.log" &
	pid=$!
	p=$(wait_port "$tmp/$1.log" $pid) || return 1
	started "$1" $pid "$p"
}

# Start redis-server on a free loopback port, without persistence.
start_redis() {
	p=$(free_port)
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

# Run one point: point LABEL SERVER MODE [bench options]; keeps the JSON.
point() {
	label=$1; server=$2; shift 2
	port=$(port_of "$server")
	if [ -z "$port" ]; then
		failures=$((failures + 1))
		return
	fi
	out=$("$bench" "$@" -t "$duration" --json "127.0.0.1:$port" 2>&1)
	status=$?
	printf '%-22s %-16s %s\n' "$label" "$server" "$(printf '%s\n' "$out" | sed -n 1p)"
	json=$(printf '%s\n' "$out" | grep '^{' | tail -n 1)
	if [ $status -ne 0 ] || [ -z "$json" ]; then
		failures=$((failures + 1))
		[ -n "$json" ] || json='{"ok": false}'
	fi
	printf '{"label": "%s", "server": "%s", "result": %s}\n' \
	    "$label" "$server" "$json" >> "$jsonl"
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

echo "asyncchat benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, ${duration} s per point"
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
if command -v redis-server > /dev/null; then
	start_redis
else
	echo "redis-server not installed: no Redis reference (apt-get install redis-server)"
fi
r=0
while [ $r -lt $rounds ]; do
	# A window of 32 messages in flight per sender, then 512: the small
	# window shows delivery latency, the large one the server's capacity.
	# The chat plugin's room (its defaults; the members join the room in
	# their session_ack, the sender sends with "room") right after
	# broadcast, at the same load; -P adds each server's CPU per delivery.
	for w in 32 512; do
		point "fanout 1->100 128 w$w" asyncchatd fanout -p 1 -r 100 -s 128 -w $w -P "$(pid_of asyncchatd)"
		point "fanout 1->100 128 w$w" asyncchatd-chat room -p 1 -r 100 -s 128 -w $w -P "$(pid_of asyncchatd-chat)"
		[ -z "$(port_of redis)" ] || point "fanout 1->100 128 w$w" redis resp -p 1 -r 100 -s 128 -w $w -P "$(pid_of redis)"
	done
	r=$((r + 1))
done
stop_all

# Idle: a fresh server each, so that its memory before is its baseline.
start_asyncchatd asyncchatd echo
point "idle $idle_sessions" asyncchatd idle -n "$idle_sessions" -P "$(pid_of asyncchatd)" -H 5
stop_all
start_rawecho raw-echo-frames frames
point "idle $idle_sessions" raw-echo-frames idle -n "$idle_sessions" -P "$(pid_of raw-echo-frames)" -H 5
stop_all

# The table of ratios and the plot's data files, from results.jsonl.
python3 - "$jsonl" "$results" "$duration" <<'PYEOF' || failures=$((failures + 1))
import json, os, sys

jsonl, outdir, duration = sys.argv[1], sys.argv[2], sys.argv[3]
res = {}
for line in open(jsonl):
    r = json.loads(line)
    res.setdefault((r["label"], r["server"]), []).append(r["result"])


def get(label, server, key):
    """The median over the rounds of a point; None if any round failed."""
    rs = res.get((label, server))
    if not rs or not all(r.get("ok") and key in r for r in rs):
        return None
    vals = sorted(r[key] for r in rs)
    return vals[len(vals) // 2]


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


rows = []


def row(what, ours, ceil, ceil_name, unit, target, higher_better=True):
    ratio = ours / ceil if ours is not None and ceil else None
    if ratio is None:
        met = "n/a"
    elif higher_better:
        met = "yes" if ratio >= target else "NO"
    else:
        met = "yes" if ratio <= target else "NO"
    tgt = ("≥ %.1f" if higher_better else "≤ %.1f") % target
    rows.append((what, fmt(ours, unit), fmt(ceil, unit) + " (" + ceil_name + ")",
                 "n/a" if ratio is None else "%.3f" % ratio, tgt, met))


row("echo 16x32 64 B, msgs/s",
    get("echo 16x32 64", "asyncchatd", "msgs_per_s"),
    get("echo 16x32 64", "raw-echo-frames", "msgs_per_s"), "frame-boundary echo", "", 0.5)
row("echo 16x32 4 KiB, MB/s",
    get("echo 16x32 4096", "asyncchatd", "mb_per_s"),
    get("echo 16x32 4096", "raw-echo-frames", "mb_per_s"), "frame-boundary echo", "MB/s", 0.6)
row("echo 1x1 64 B, p99 latency",
    get("echo 1x1 64", "asyncchatd", "p99_us"),
    get("echo 1x1 64", "raw-echo-event", "p99_us"), "raw echo", "us", 1.5, False)
for w in (32, 512):
    row("fanout 1->100 128 B, window %d, deliveries/s" % w,
        get("fanout 1->100 128 w%d" % w, "asyncchatd", "msgs_per_s"),
        get("fanout 1->100 128 w%d" % w, "redis", "msgs_per_s"), "Redis pub/sub", "", 1.0)
for w in (32, 512):
    row("chat room 1->100 128 B, window %d, deliveries/s" % w,
        get("fanout 1->100 128 w%d" % w, "asyncchatd-chat", "msgs_per_s"),
        get("fanout 1->100 128 w%d" % w, "asyncchatd", "msgs_per_s"), "broadcast, same run", "", 0.8)
idle = [k for k in res if k[0].startswith("idle ") and k[1] == "asyncchatd"]
if idle:
    ours = get(idle[0][0], "asyncchatd", "rss_per_session_bytes")
    ref = get(idle[0][0], "raw-echo-frames", "rss_per_session_bytes")
    rows.append(("idle %s sessions, server RSS per session" % idle[0][0][5:],
                 fmt(ours, "B"), fmt(ref, "B") + " (frame-boundary echo)",
                 "n/a" if ours is None else "%.2f KiB" % (ours / 1024), "≤ 2 KiB",
                 "n/a" if ours is None else ("yes" if ours <= 2048 else "NO")))

ceilings = ("raw-echo-bev", "raw-echo-event", "raw-echo-frames", "asyncchatd")
ctx = []
for label, what in (("echo 16x32 64", "16x32 64 B, msgs/s"),
                    ("echo 16x32 4096", "16x32 4 KiB, msgs/s")):
    ctx.append((what, [fmt(get(label, s, "msgs_per_s")) for s in ceilings]))
ctx.append(("1x1 64 B, p99", [fmt(get("echo 1x1 64", s, "p99_us"), "us") for s in ceilings]))

# CPU per delivery of the fan-out servers and of the client (medians of
# the rounds; provisional on a shared machine, whose load shows in both).
cpu = []
for w in (32, 512):
    for srv, name in (("asyncchatd", "broadcast"), ("asyncchatd-chat", "chat room"),
                      ("redis", "Redis")):
        lab = "fanout 1->100 128 w%d" % w
        sc = get(lab, srv, "server_cpu_us_per_delivery")
        cc = get(lab, srv, "client_cpu_us_per_delivery")
        cpu.append(("%s, window %d" % (name, w), fmt(get(lab, srv, "msgs_per_s")),
                    "n/a" if sc is None or sc < 0 else "%.3f" % sc,
                    "n/a" if cc is None or cc < 0 else "%.3f" % cc))

head = ("target", "asyncchatd", "reference", "ratio", "target", "met")
lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
lines += ["| " + " | ".join(r) + " |" for r in rows]
lines += ["", "| point | raw-echo bev | raw-echo event | frame-boundary echo | asyncchatd |",
          "|---|---|---|---|---|"]
lines += ["| " + w + " | " + " | ".join(v) + " |" for w, v in ctx]
lines += ["", "| fan-out 1->100 128 B | deliveries/s | server CPU us/delivery | client CPU us/delivery |",
          "|---|---|---|---|"]
lines += ["| " + " | ".join(r) + " |" for r in cpu]
lines += ["", "%s s per point. The frame-boundary echo and asyncchatd are driven by the" % duration,
          "protocol-verifying client, the raw echoes by the length-prefix client."]
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
