/*
 * report.c - what a run measured: one line for people and, with --json,
 * one JSON object per line for scripts (tools/bench.sh).
 */
#include "config.h"

#include <sys/resource.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* This process's CPU time (user and system) in seconds. */
double
report_cpu_self(void)
{
	struct rusage	ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return -1;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Another process's CPU time (user and system) in seconds, or -1. */
double
report_cpu_of(pid_t pid)
{
	char			 path[64], buf[1024], *p;
	FILE			*f;
	unsigned long long	 utime, stime;
	size_t			 n;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The name may hold spaces: fields are counted after its ')'. */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 2,
	    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	    &utime, &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU microseconds per delivery of a measured window, or -1. */
static double
report_cpu_per(const double cpu[2], uint64_t n)
{
	if (cpu[0] < 0 || cpu[1] < 0 || n == 0)
		return -1;
	return (cpu[1] - cpu[0]) * 1e6 / (double)n;
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

/* Print the human line and, if asked, the JSON line of a finished run. */
void
report_print(struct bench *b)
{
	double	secs = b->t_stop - b->t_start, rate = 0, mb = 0, wire = 0;
	int	ok = b->errors == 0 && b->lost == 0 && b->duplicates == 0;
	const struct histogram *h = &b->hist;

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
		    "p99 %.0f p99.9 %.0f us; CPU per delivery: client %.2f, "
		    "server %.2f us; verified %llu lost %llu "
		    "duplicates %llu%s%s\n", b->mode, b->target.text,
		    b->senders, b->receivers, b->size, b->window, secs, rate,
		    mb, report_us(histogram_quantile(h, 0.5)),
		    report_us(histogram_quantile(h, 0.99)),
		    report_us(histogram_quantile(h, 0.999)),
		    report_cpu_per(b->cli_cpu, b->window_msgs),
		    report_cpu_per(b->srv_cpu, b->window_msgs),
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
	    "\"pongs\": %llu, \"lost\": %llu, \"duplicates\": %llu, "
	    "\"errors\": %llu", b->nconns, b->window, b->size,
	    b->receivers, b->senders, secs, (unsigned long long)b->sent,
	    (unsigned long long)b->received,
	    (unsigned long long)b->window_msgs, rate, mb, wire,
	    report_us(histogram_quantile(h, 0.5)),
	    report_us(histogram_quantile(h, 0.99)),
	    report_us(histogram_quantile(h, 0.999)), report_us(h->max),
	    (unsigned long long)b->verified, (unsigned long long)b->pings,
	    (unsigned long long)b->pongs, (unsigned long long)b->lost,
	    (unsigned long long)b->duplicates,
	    (unsigned long long)b->errors);
	if (strcmp(b->mode, "idle") == 0)
		printf(", \"sessions\": %d, \"rss_base_kib\": %ld, "
		    "\"rss_held_kib\": %ld, \"rss_end_kib\": %ld, "
		    "\"rss_per_session_bytes\": %.1f", b->nconns, b->rss_base,
		    b->rss_held, b->rss_end, report_rss_per_session(b));
	if (strcmp(b->mode, "fanout") == 0 || strcmp(b->mode, "room") == 0)
		printf(", \"verify\": \"%s\"", b->full_verify ? "codec" :
		    "identity");
	if (strcmp(b->mode, "room") == 0)
		printf(", \"room\": \"%s\", \"events\": %llu", b->room,
		    (unsigned long long)b->events);
	printf(", \"client_cpu_us_per_delivery\": %.3f, "
	    "\"server_cpu_us_per_delivery\": %.3f",
	    report_cpu_per(b->cli_cpu, b->window_msgs),
	    report_cpu_per(b->srv_cpu, b->window_msgs));
	printf(", \"error\": ");
	report_json_string(b->error);
	printf(", \"ok\": %s}\n", ok ? "true" : "false");
	fflush(stdout);
}
