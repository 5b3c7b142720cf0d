/*
 * report.c - what a run measured: one line for people and, with --json,
 * one JSON object per line for scripts (tools/bench.sh).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "bench.h"

/* The resident set size of a process in KiB from /proc, or -1. */
long
report_rss_kib(pid_t pid)
{
	char	 path[64], line[256];
	FILE	*f;
	long	 kib = -1;

	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

/* Print s as a JSON string. */
static void
report_json_string(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* Nanoseconds as microseconds. */
static double
report_us(uint64_t ns)
{
	return (double)ns / 1e3;
}

/* Server memory per idle session in bytes, or -1 if not measured. */
static double
report_rss_per_session(const struct bench *b)
{
	long	held = b->rss_held > b->rss_end ? b->rss_held : b->rss_end;

	if (b->server_pid <= 0 || b->rss_base < 0 || held < 0 ||
	    b->nconns == 0)
		return -1;
	return (double)(held - b->rss_base) * 1024.0 / b->nconns;
}

/* Print a JSON member that is a number, or null when v < 0. */
static void
report_json_number(const char *name, double v, int decimals)
{
	if (v < 0)
		printf(", \"%s\": null", name);
	else
		printf(", \"%s\": %.*f", name, decimals, v);
}

/* Microseconds of CPU per message, or -1. */
static double
report_per_msg(double secs, uint64_t msgs)
{
	if (secs < 0 || msgs == 0)
		return -1;
	return secs * 1e6 / (double)msgs;
}

/* A share of the window in percent, or -1. */
static double
report_pct(double secs, double wall)
{
	if (secs < 0 || wall <= 0)
		return -1;
	return 100.0 * secs / wall;
}

/*
 * Print who was busy: the client's CPU and wait for a CPU as a share of
 * the window, its CPU per message, the server's, and the client-bound flag.
 */
static void
report_cpu_line(const struct bench *b, const struct cpu_use *u)
{
	double	ccpu = u->user + u->sys;

	if (u->wall <= 0)
		return;
	printf("  client CPU %.0f%% (user %.0f%%, sys %.0f%%", 100.0 * ccpu /
	    u->wall, 100.0 * u->user / u->wall, 100.0 * u->sys / u->wall);
	if (u->wait >= 0)
		printf(", waiting for a CPU %.0f%%", report_pct(u->wait,
		    u->wall));
	printf(")");
	if (b->window_msgs > 0)
		printf(", %.3f us/msg", report_per_msg(ccpu, b->window_msgs));
	if (u->server_cpu >= 0) {
		printf("; server CPU %.0f%%", report_pct(u->server_cpu,
		    u->wall));
		if (u->server_wait >= 0)
			printf(" (waiting %.0f%%)", report_pct(u->server_wait,
			    u->wall));
		if (b->window_msgs > 0)
			printf(", %.3f us/msg", report_per_msg(u->server_cpu,
			    b->window_msgs));
	}
	if (u->client_bound)
		printf("; CLIENT-BOUND (busy >= %.0f%%): the rate is the "
		    "client's", 100.0 * b->bound_at);
	printf("\n");
}

/* Print the human line and, if asked, the JSON line of a finished run. */
void
report_print(struct bench *b)
{
	double	secs = b->t_stop - b->t_start, rate = 0, mb = 0, wire = 0;
	int	ok = b->errors == 0 && b->lost == 0 && b->duplicates == 0;
	const struct histogram *h = &b->hist;
	struct cpu_use u;

	cpu_use(b, &u);

	if (secs > 0) {
		rate = (double)b->window_msgs / secs;
		mb = (double)b->window_bytes / secs / 1e6;
		wire = (double)b->window_wire / secs / 1e6;
	}
	if (strcmp(b->mode, "idle") == 0) {
		printf("idle %s: %d sessions held %.1f s, server RSS %ld -> "
		    "%ld -> %ld KiB, %.0f B per session; pings %llu pongs "
		    "%llu lost %llu%s%s\n", b->target.text, b->nconns, secs,
		    b->rss_base, b->rss_held, b->rss_end,
		    report_rss_per_session(b), (unsigned long long)b->pings,
		    (unsigned long long)b->pongs,
		    (unsigned long long)b->lost, ok ? "" : " FAILED: ",
		    ok ? "" : b->error);
	} else if (strcmp(b->mode, "fanout") == 0 ||
	    strcmp(b->mode, "resp") == 0 || strcmp(b->mode, "room") == 0) {
		printf("%s %s: %d senders -> %d receivers, %zu B, window %d, "
		    "%.1f s: %.0f deliveries/s, %.1f MB/s; latency p50 %.0f "
		    "p99 %.0f p99.9 %.0f us; verified %llu lost %llu "
		    "duplicates %llu%s%s\n", b->mode, b->target.text,
		    b->senders, b->receivers, b->size, b->window, secs, rate,
		    mb, report_us(histogram_quantile(h, 0.5)),
		    report_us(histogram_quantile(h, 0.99)),
		    report_us(histogram_quantile(h, 0.999)),
		    (unsigned long long)b->verified,
		    (unsigned long long)b->lost,
		    (unsigned long long)b->duplicates, ok ? "" : " FAILED: ",
		    ok ? "" : b->error);
	} else {
		printf("%s %s: %d x %d, %zu B, %.1f s: %.0f msgs/s, %.1f MB/s "
		    "(wire %.1f); latency p50 %.1f p99 %.1f p99.9 %.1f us; "
		    "verified %llu lost %llu%s%s\n", b->mode, b->target.text,
		    b->nconns, b->window, b->size, secs, rate, mb, wire,
		    report_us(histogram_quantile(h, 0.5)),
		    report_us(histogram_quantile(h, 0.99)),
		    report_us(histogram_quantile(h, 0.999)),
		    (unsigned long long)b->verified,
		    (unsigned long long)b->lost, ok ? "" : " FAILED: ",
		    ok ? "" : b->error);
	}
	report_cpu_line(b, &u);
	if (!b->json) {
		fflush(stdout);
		return;
	}

	printf("{\"mode\": ");
	report_json_string(b->mode);
	printf(", \"target\": ");
	report_json_string(b->target.text);
	printf(", \"conns\": %d, \"window\": %d, \"size\": %zu, "
	    "\"receivers\": %d, \"senders\": %d, \"duration_s\": %.3f, "
	    "\"sent\": %llu, \"received\": %llu, \"msgs\": %llu, "
	    "\"msgs_per_s\": %.1f, \"mb_per_s\": %.3f, "
	    "\"wire_mb_per_s\": %.3f, "
	    "\"p50_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, "
	    "\"max_us\": %.2f, \"verified\": %llu, \"pings\": %llu, "
	    "\"pongs\": %llu, \"pongs_lost\": %llu, \"lost\": %llu, "
	    "\"duplicates\": %llu, \"errors\": %llu", b->nconns, b->window,
	    b->size, b->receivers, b->senders, secs,
	    (unsigned long long)b->sent, (unsigned long long)b->received,
	    (unsigned long long)b->window_msgs, rate, mb, wire,
	    report_us(histogram_quantile(h, 0.5)),
	    report_us(histogram_quantile(h, 0.99)),
	    report_us(histogram_quantile(h, 0.999)), report_us(h->max),
	    (unsigned long long)b->verified, (unsigned long long)b->pings,
	    (unsigned long long)b->pongs, (unsigned long long)b->pongs_lost,
	    (unsigned long long)b->lost,
	    (unsigned long long)b->duplicates,
	    (unsigned long long)b->errors);
	if (strcmp(b->mode, "idle") == 0)
		printf(", \"sessions\": %d, \"rss_base_kib\": %ld, "
		    "\"rss_held_kib\": %ld, \"rss_end_kib\": %ld, "
		    "\"rss_per_session_bytes\": %.1f", b->nconns, b->rss_base,
		    b->rss_held, b->rss_end, report_rss_per_session(b));
	printf(", \"verify\": \"%s\"", b->full_verify ||
	    b->match_sent == NULL ? "codec" : "identity");
	if (b->room != NULL) {
		printf(", \"room\": ");
		report_json_string(b->room);
		printf(", \"events\": %llu", (unsigned long long)b->events);
	}
	report_json_number("cpu_wall_s", u.wall > 0 ? u.wall : -1, 3);
	report_json_number("client_user_s", u.wall > 0 ? u.user : -1, 3);
	report_json_number("client_sys_s", u.wall > 0 ? u.sys : -1, 3);
	report_json_number("client_wait_s", u.wait, 3);
	report_json_number("client_cpu_pct", report_pct(u.user + u.sys,
	    u.wall), 1);
	report_json_number("client_wait_pct", report_pct(u.wait, u.wall), 1);
	report_json_number("client_us_per_msg", u.wall > 0 ?
	    report_per_msg(u.user + u.sys, b->window_msgs) : -1, 4);
	printf(", \"client_bound\": %s, \"bound_pct\": %.0f",
	    u.client_bound ? "true" : "false", 100.0 * b->bound_at);
	report_json_number("server_cpu_s", u.server_cpu, 3);
	report_json_number("server_cpu_pct", report_pct(u.server_cpu,
	    u.wall), 1);
	report_json_number("server_wait_pct", report_pct(u.server_wait,
	    u.wall), 1);
	report_json_number("server_us_per_msg", report_per_msg(u.server_cpu,
	    b->window_msgs), 4);
	printf(", \"error\": ");
	report_json_string(b->error);
	printf(", \"ok\": %s}\n", ok ? "true" : "false");
	fflush(stdout);
}
