/*
 * main.c - asyncchat-bench: options, the run's timers and its outcome.
 *
 * A run has three phases: connect and handshake every connection (not
 * measured), the measured window of --duration seconds, then a drain of at
 * most --drain seconds in which nothing new is sent (no message, no ping)
 * and everything in flight must come back, pongs included. The run ends as
 * soon as nothing is in flight; whatever has not come back by the end of
 * the drain is lost.
 */
#include "config.h"

#include <sys/resource.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include <asyncchat/key.h>

#include "bench.h"

#define DEFAULT_CHANNEL		"asyncchat-bench"
#define DEFAULT_ROOM		"bench"
#define READY_TIMEOUT		30.0
#define DEFAULT_BOUND		90

static void	bench_finish(struct bench *);

/* Print how to use the program and exit with status. */
static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout,
"usage: asyncchat-bench MODE [options] TARGET\n"
"modes:\n"
"  echo    C connections x W frames in flight x S bytes (server: echo plugin)\n"
"  raw     the same with a 4-byte length prefix (server: tools/raw-echo)\n"
"  fanout  P senders to R receivers (server: broadcast, include_sender = no)\n"
"  resp    the same over Redis pub/sub (server: redis-server)\n"
"  room    P senders to R receivers in one chat room (server: chat)\n"
"  idle    N sessions held with heartbeats; server RSS with --server-pid\n"
"TARGET: HOST:PORT, tcp://HOST:PORT, [::1]:PORT, unix:PATH or /PATH\n"
"options:\n"
"  -c, --conns N        connections (echo, raw; default 16)\n"
"  -w, --window W       messages in flight per connection or sender (32)\n"
"  -s, --size S         content bytes per message, at least %zu (64)\n"
"  -t, --duration T     seconds measured (5)\n"
"  -d, --drain D        seconds allowed for in-flight messages after (5)\n"
"  -r, --receivers R    fanout/resp/room receivers (100)\n"
"  -p, --senders P      fanout/resp/room senders (1)\n"
"  -n, --sessions N     idle sessions (1000)\n"
"  -k, --key KEY        HMAC key (default-key)\n"
"  -H, --heartbeat H    seconds between pings on every session (5)\n"
"  -P, --server-pid PID the server's pid: its CPU time per message from\n"
"                       /proc (every mode) and its memory (idle)\n"
"      --channel NAME   Redis channel (" DEFAULT_CHANNEL ")\n"
"      --room NAME      room mode: the chat room (" DEFAULT_ROOM ")\n"
"      --parallel N     connects in progress at once (64)\n"
"      --full-verify    decode every frame received with the codec, not\n"
"                       only those that differ from what was sent\n"
"      --bound PCT      flag the point client-bound when the client was\n"
"                       busy (on a CPU or waiting for one) for PCT %% of\n"
"                       the window or more (%d)\n"
"  -j, --json           also print one JSON line\n", STAMP_LEN,
	    DEFAULT_BOUND);
	exit(status);
}

/* Seconds on the monotonic clock. */
double
bench_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Nanoseconds on the monotonic clock. */
uint64_t
bench_now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Record a failure (the first one is reported) and end the run. */
void
bench_fail(struct bench *b, const char *fmt, ...)
{
	va_list	ap;

	if (b->errors++ == 0) {
		va_start(ap, fmt);
		vsnprintf(b->error, sizeof b->error, fmt, ap);
		va_end(ap);
	}
	bench_finish(b);
}

/* End the loop; the run is over. */
static void
bench_finish(struct bench *b)
{
	if (b->finished)
		return;
	b->finished = 1;
	b->running = 0;
	b->t_end = bench_now();
	if (b->t_stop == 0)
		b->t_stop = b->t_start != 0 ? b->t_end : 0;
	if (b->cpu_started && !b->cpu_stopped) {
		cpu_sample(&b->cpu_stop, b->server_pid);
		b->cpu_stopped = 1;
	}
	event_base_loopbreak(b->base);
}

/* A timeval of the given seconds. */
static struct timeval
bench_tv(double secs)
{
	struct timeval	tv;

	tv.tv_sec = (time_t)secs;
	tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
	return tv;
}

/* The measured window is over: stop sending, wait for what is in flight. */
static void
bench_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench	*b = arg;
	struct timeval	 tv = bench_tv(b->drain);

	cpu_sample(&b->cpu_stop, b->server_pid);
	b->cpu_stopped = 1;
	b->running = 0;
	b->stopped = 1;
	b->t_stop = bench_now();
	event_del(b->ping_ev);		/* a ping now would race the end */
	if (b->on_stop != NULL)
		b->on_stop(b);
	evtimer_add(b->drain_ev, &tv);
	bench_check_drained(b);
}

/* The drain time is over: what has not arrived is lost. */
static void
bench_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	bench_finish(arg);
}

/* Not every connection got ready in time. */
static void
bench_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench	*b = arg;

	if (b->t_start == 0)
		bench_fail(b, "only %d of %d connections ready after %.0f s",
		    b->nready, b->nconns, READY_TIMEOUT);
}

/* Ping every handshaken session, as a client keeping them alive does. */
static void
bench_ping_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench	*b = arg;
	int		 i;

	if (b->stopped)
		return;
	for (i = 0; i < b->nconns; i++)
		session_ping(b->conns[i]);
}

/* Write what this loop turn queued on every connection. */
static void
bench_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_flush_all(arg);
}

/* Every connection is ready: the measured window starts now. */
void
bench_start_window(struct bench *b)
{
	struct timeval	tv = bench_tv(b->duration);

	cpu_sample(&b->cpu_start, b->server_pid);
	b->cpu_started = 1;
	b->t_start = bench_now();
	b->now_ns = bench_now_ns();
	b->running = 1;
	evtimer_add(b->stop_ev, &tv);
}

/* After the window, finish as soon as nothing is in flight. */
void
bench_check_drained(struct bench *b)
{
	if (b->stopped && !b->finished && b->pings == b->pongs &&
	    b->is_drained(b))
		bench_finish(b);
}

/* Parse a positive integer option or exit. */
static long
bench_int(const char *name, const char *s, long min, long max)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "asyncchat-bench: %s: expected %ld to %ld, got "
		    "'%s'\n", name, min, max, s);
		exit(2);
	}
	return v;
}

/* Parse a seconds option or exit. */
static double
bench_seconds(const char *name, const char *s)
{
	char	*end;
	double	 v;

	v = strtod(s, &end);
	if (*end != '\0' || v <= 0 || v > 86400) {
		fprintf(stderr, "asyncchat-bench: %s: expected seconds, got "
		    "'%s'\n", name, s);
		exit(2);
	}
	return v;
}

/* Raise the open-file limit to fit n connections. */
static void
bench_raise_nofile(int n)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = (rlim_t)n + 64 < rl.rlim_max ? (rlim_t)n + 64 :
		    rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Parse the options, set up the mode, run the loop and report the run. */
int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "conns", required_argument, NULL, 'c' },
		{ "window", required_argument, NULL, 'w' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 't' },
		{ "drain", required_argument, NULL, 'd' },
		{ "receivers", required_argument, NULL, 'r' },
		{ "senders", required_argument, NULL, 'p' },
		{ "sessions", required_argument, NULL, 'n' },
		{ "key", required_argument, NULL, 'k' },
		{ "heartbeat", required_argument, NULL, 'H' },
		{ "server-pid", required_argument, NULL, 'P' },
		{ "channel", required_argument, NULL, 'C' },
		{ "room", required_argument, NULL, 'R' },
		{ "parallel", required_argument, NULL, 'L' },
		{ "json", no_argument, NULL, 'j' },
		{ "full-verify", no_argument, NULL, 'F' },
		{ "bound", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct bench	 bench, *b = &bench;
	struct timeval	 tv;
	int		 ch, i, rc;

	memset(b, 0, sizeof *b);
	b->nconns = 16;
	b->window = 32;
	b->size = 64;
	b->duration = 5;
	b->drain = 5;
	b->heartbeat = 5;
	b->receivers = 100;
	b->senders = 1;
	b->sessions = 1000;
	b->key_text = AC_DEFAULT_KEY;
	b->connect_parallel = 64;
	b->channel = DEFAULT_CHANNEL;
	b->bound_at = DEFAULT_BOUND / 100.0;

	while ((ch = getopt_long(argc, argv, "c:w:s:t:d:r:p:n:k:H:P:jh",
	    longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			b->nconns = bench_int("--conns", optarg, 1, 100000);
			break;
		case 'w':
			b->window = bench_int("--window", optarg, 1, 65536);
			break;
		case 's':
			b->size = bench_int("--size", optarg, STAMP_LEN,
			    AC_DEFAULT_MAX_CONTENT);
			break;
		case 't':
			b->duration = bench_seconds("--duration", optarg);
			break;
		case 'd':
			b->drain = bench_seconds("--drain", optarg);
			break;
		case 'r':
			b->receivers = bench_int("--receivers", optarg, 1,
			    100000);
			break;
		case 'p':
			b->senders = bench_int("--senders", optarg, 1, 10000);
			break;
		case 'n':
			b->sessions = bench_int("--sessions", optarg, 1,
			    1000000);
			break;
		case 'k':
			b->key_text = optarg;
			break;
		case 'H':
			b->heartbeat = bench_seconds("--heartbeat", optarg);
			break;
		case 'P':
			b->server_pid = bench_int("--server-pid", optarg, 1,
			    INT_MAX);
			break;
		case 'C':
			b->channel = optarg;
			break;
		case 'R':
			b->room = optarg;
			break;
		case 'L':
			b->connect_parallel = bench_int("--parallel", optarg,
			    1, 100000);
			break;
		case 'j':
			b->json = 1;
			break;
		case 'F':
			b->full_verify = 1;
			break;
		case 'B':
			b->bound_at = bench_int("--bound", optarg, 1, 100) /
			    100.0;
			break;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 2)
		usage(2);
	b->mode = argv[0];
	if (target_parse(&b->target, argv[1]) != 0) {
		fprintf(stderr, "asyncchat-bench: %s: not HOST:PORT or a unix "
		    "path\n", argv[1]);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	b->base = event_base_new();
	b->key = ac_key_new(b->key_text, strlen(b->key_text));
	ac_limits_default(&b->limits);
	b->rss_base = b->rss_held = b->rss_end = -1;

	if (strcmp(b->mode, "echo") == 0 || strcmp(b->mode, "raw") == 0) {
		b->framing = strcmp(b->mode, "raw") == 0 ? FRAMING_RAW :
		    FRAMING_PROTOCOL;
		b->receivers = b->senders = 0;
	} else if (strcmp(b->mode, "fanout") == 0 ||
	    strcmp(b->mode, "resp") == 0 || strcmp(b->mode, "room") == 0) {
		b->framing = strcmp(b->mode, "resp") == 0 ? FRAMING_RESP :
		    FRAMING_PROTOCOL;
		b->nconns = b->receivers + b->senders;
		if (strcmp(b->mode, "room") != 0)
			b->room = NULL;
		else if (b->room == NULL)
			b->room = DEFAULT_ROOM;
	} else if (strcmp(b->mode, "idle") == 0) {
		b->framing = FRAMING_PROTOCOL;
		b->nconns = b->sessions;
		b->receivers = b->senders = 0;
		b->window = 0;
	} else {
		fprintf(stderr, "asyncchat-bench: unknown mode '%s'\n",
		    b->mode);
		usage(2);
	}
	bench_raise_nofile(b->nconns);
	if ((b->conns = calloc(b->nconns, sizeof *b->conns)) == NULL ||
	    (b->dirty = calloc(b->nconns, sizeof *b->dirty)) == NULL ||
	    (b->scratch = evbuffer_new()) == NULL)
		abort();

	b->stop_ev = evtimer_new(b->base, bench_stop_cb, b);
	b->drain_ev = evtimer_new(b->base, bench_drain_cb, b);
	b->ping_ev = event_new(b->base, -1, EV_PERSIST, bench_ping_cb, b);
	b->flush_ev = event_new(b->base, -1, 0, bench_flush_cb, b);

	if (strcmp(b->mode, "echo") == 0 || strcmp(b->mode, "raw") == 0)
		rc = echo_setup(b);
	else if (strcmp(b->mode, "idle") == 0)
		rc = idle_setup(b);
	else
		rc = fanout_setup(b);
	if (rc != 0 && b->errors == 0)
		bench_fail(b, "out of memory");

	if (b->errors == 0) {
		if (b->framing == FRAMING_PROTOCOL) {
			tv = bench_tv(b->heartbeat);
			event_add(b->ping_ev, &tv);
		}
		tv = bench_tv(READY_TIMEOUT + b->nconns / 1000.0);
		event_base_once(b->base, -1, EV_TIMEOUT, bench_ready_cb, b,
		    &tv);
		conn_connect_more(b);
		if (!b->finished)
			event_base_dispatch(b->base);
	}
	if (b->on_finish != NULL)
		b->on_finish(b);
	b->pongs_lost = b->pings - b->pongs;
	b->lost += b->pongs_lost;
	if (b->pongs_lost > 0 && b->errors == 0)
		snprintf(b->error, sizeof b->error, "%llu of %llu pings not "
		    "answered in the drain time", (unsigned long long)
		    b->pongs_lost, (unsigned long long)b->pings);
	if (b->errors == 0 && b->window_msgs == 0 &&
	    strcmp(b->mode, "idle") != 0)
		bench_fail(b, "no message came back in the measured window");
	report_print(b);

	if (b->free_state != NULL)
		b->free_state(b);
	for (i = 0; i < b->nconns; i++) {
		if (b->conns[i] != NULL)
			conn_free(b->conns[i]);
	}
	free(b->conns);
	event_free(b->stop_ev);
	event_free(b->drain_ev);
	event_free(b->ping_ev);
	event_free(b->flush_ev);
	evbuffer_free(b->scratch);
	free(b->dirty);
	ac_key_free(b->key);
	event_base_free(b->base);
	target_free(&b->target);
	free(b->rbuf);
	return b->errors == 0 && b->lost == 0 && b->duplicates == 0 ? 0 : 1;
}
