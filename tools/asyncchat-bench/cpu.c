/*
 * cpu.c - who was busy during the measured window: the client's own CPU
 * time and its wait for a CPU, and the server's CPU time, each sampled at
 * the window's start and end.
 *
 * A load generator reports the server's speed only while it has time to
 * spare. If the client spent most of the window on a CPU, or runnable but
 * waiting for one (a busy machine), the rate it saw is its own limit, and
 * the point is flagged client-bound. The server's CPU time per message
 * does not depend on the client at all, so it is reported beside the rate.
 *
 * Sources (Linux): getrusage(RUSAGE_THREAD) for this thread's user and
 * system time; /proc/thread-self/schedstat (run time, run-queue wait, in
 * ns) for its wait; /proc/PID/stat utime + stime (clock ticks, every thread
 * of the server) for the server's CPU time and /proc/PID/task/TID/schedstat
 * summed over its threads for its wait.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/time.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* A timeval in seconds. */
static double
cpu_tv(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

/* The run-queue wait in a schedstat file, in seconds; -1 if unreadable. */
static double
cpu_schedstat_wait(const char *path)
{
	unsigned long long	 run, wait;
	FILE			*f;
	int			 n;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fscanf(f, "%llu %llu", &run, &wait);
	fclose(f);
	if (n != 2)
		return -1;
	return (double)wait / 1e9;
}

/* A process's utime + stime from /proc/PID/stat, in seconds; -1 if not. */
static double
cpu_proc_time(pid_t pid)
{
	char			 path[64], buf[1024], *p;
	unsigned long long	 utime, stime;
	FILE			*f;
	size_t			 n;
	long			 hz;
	int			 field;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';

	/* The name (field 2) may hold spaces and ')': skip to the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	p++;
	for (field = 2; field < 13; field++) {
		if ((p = strchr(p + 1, ' ')) == NULL)
			return -1;
	}
	if (sscanf(p, " %llu %llu", &utime, &stime) != 2)
		return -1;
	if ((hz = sysconf(_SC_CLK_TCK)) <= 0)
		return -1;
	return (double)(utime + stime) / (double)hz;
}

/* The run-queue wait of every thread of a process, in seconds, or -1. */
static double
cpu_proc_wait(pid_t pid)
{
	char		 path[320];
	struct dirent	*de;
	DIR		*d;
	double		 sum = 0, w;
	int		 found = 0;

	snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%ld/task/%s/schedstat",
		    (long)pid, de->d_name);
		if ((w = cpu_schedstat_wait(path)) >= 0) {
			sum += w;
			found = 1;
		}
	}
	closedir(d);
	return found ? sum : -1;
}

/* Sample the client's and, if pid > 0, the server's CPU time now. */
void
cpu_sample(struct cpu_sample *s, pid_t pid)
{
	struct rusage	ru;

	memset(s, 0, sizeof *s);
	s->wall = bench_now();
	if (getrusage(RUSAGE_THREAD, &ru) == 0) {
		s->user = cpu_tv(&ru.ru_utime);
		s->sys = cpu_tv(&ru.ru_stime);
	}
	s->wait = cpu_schedstat_wait("/proc/thread-self/schedstat");
	s->wait_ok = s->wait >= 0;
	if (pid > 0) {
		s->server_cpu = cpu_proc_time(pid);
		s->server_wait = cpu_proc_wait(pid);
		s->server_ok = s->server_cpu >= 0;
	}
}

/*
 * The CPU use over the window and whether the client was the limit: busy
 * (on a CPU, or runnable and waiting for one) for at least bound_at of the
 * window's wall time.
 */
void
cpu_use(const struct bench *b, struct cpu_use *u)
{
	const struct cpu_sample	*s0 = &b->cpu_start, *s1 = &b->cpu_stop;
	double			 busy;

	memset(u, 0, sizeof *u);
	u->wait = u->server_cpu = u->server_wait = -1;
	if (!b->cpu_started || !b->cpu_stopped)
		return;
	u->wall = s1->wall - s0->wall;
	u->user = s1->user - s0->user;
	u->sys = s1->sys - s0->sys;
	if (s0->wait_ok && s1->wait_ok)
		u->wait = s1->wait - s0->wait;
	if (s0->server_ok && s1->server_ok) {
		u->server_cpu = s1->server_cpu - s0->server_cpu;
		if (s0->server_wait >= 0 && s1->server_wait >= 0)
			u->server_wait = s1->server_wait - s0->server_wait;
	}
	busy = u->user + u->sys + (u->wait > 0 ? u->wait : 0);
	u->client_bound = u->wall > 0 && busy >= b->bound_at * u->wall;
}
