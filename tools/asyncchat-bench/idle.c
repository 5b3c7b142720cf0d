/*
 * idle.c - idle mode: hold N handshaken sessions that only send heartbeats
 * and read the server's resident memory (VmRSS) before, while and after.
 */
#include "config.h"

#include <stdlib.h>

#include "bench.h"

/* The phase of an idle run. */
struct idle {
	int	settling;	/* every session acked: waiting for pongs */
};

/* A session is acknowledged; when all are, ping each to be sure. */
static void
idle_ready(struct conn *c)
{
	struct bench	*b = c->b;
	struct idle	*id = b->mode_state;
	int		 i;

	if (++b->nready < b->nconns)
		return;
	id->settling = 1;
	for (i = 0; i < b->nconns; i++)
		session_ping(b->conns[i]);
}

/*
 * A pong. Once every session has answered, the server holds them all:
 * read its memory and start holding them for the run's duration.
 */
static void
idle_pong(struct conn *c)
{
	struct bench	*b = c->b;
	struct idle	*id = b->mode_state;

	if (id->settling && b->pongs == b->pings) {
		id->settling = 0;
		if (b->server_pid > 0)
			b->rss_held = report_rss_kib(b->server_pid);
		bench_start_window(b);
	}
	if (!b->running)
		bench_check_drained(b);
}

/* Idle sessions get no messages. */
static void
idle_message(struct conn *c, const uint8_t *content, size_t len, size_t wire,
    const char *sid)
{
	bench_fail(c->b, "connection %d: a message on an idle session",
	    c->index);
}

/* The hold is over: read the memory again while the sessions still live. */
static void
idle_stop(struct bench *b)
{
	if (b->server_pid > 0)
		b->rss_end = report_rss_kib(b->server_pid);
}

/* Nothing is in flight but pongs, which the caller waits for. */
static int
idle_is_drained(struct bench *b)
{
	return 1;
}

/* Release the run's phase. */
static void
idle_free(struct bench *b)
{
	free(b->mode_state);
	b->mode_state = NULL;
}

/* Make the sessions and hooks of an idle run; read the memory before. */
int
idle_setup(struct bench *b)
{
	int	i;

	if ((b->mode_state = calloc(1, sizeof(struct idle))) == NULL)
		return -1;
	b->free_state = idle_free;
	for (i = 0; i < b->nconns; i++)
		b->conns[i] = conn_new(b, i, ROLE_IDLE);
	if (b->server_pid > 0 &&
	    (b->rss_base = report_rss_kib(b->server_pid)) < 0) {
		bench_fail(b, "cannot read /proc/%ld/status",
		    (long)b->server_pid);
		return -1;
	}
	b->on_ready = idle_ready;
	b->on_message = idle_message;
	b->on_pong = idle_pong;
	b->on_stop = idle_stop;
	b->is_drained = idle_is_drained;
	return 0;
}
