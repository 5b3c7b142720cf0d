/*
 * consumer.c - a test module that uses the interface "test.counter" of
 * provider.c.
 *
 * It looks the interface up in init (found only when the provider comes
 * earlier in the chain) and again in ready (found wherever it is). Each
 * message "next" is answered
 *
 *	consumer: at_init=A version=V serial=S next=N
 *
 * or "consumer: no provider". A message "later ID" submits a job that
 * creates GATE_DIR/ID.running, waits for GATE_DIR/ID and whose completion
 * calls the interface, logging "later ID done|cancelled next=N serial=S":
 * after a reload that must still reach the old provider instance, which
 * the host may not have finished yet.
 *
 * Options: min_version = N (default 1); required = yes|no (default no:
 * with yes, ready fails without the interface); gate_dir = DIR.
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <asyncchat/plugin.h>

#include "counter_iface.h"

/* One instance and the interface it found. */
struct consumer_state {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
	unsigned int			 min_version;
	int				 required;
	char				*gate_dir;
	int				 at_init;
	const struct test_counter	*counter;
	unsigned int			 version;
};

/* A "later" job: only its gate paths and id. */
struct consumer_job {
	char	id[64];
	char	gate[PATH_MAX];
	char	running[PATH_MAX];
};

static int	consumer_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static int	consumer_ready(void *);
static void	consumer_fini(void *);
static int	consumer_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "consumer",
	.version = "0",
	.description = "test: uses test.counter",
	.init = consumer_init,
	.ready = consumer_ready,
	.fini = consumer_fini,
	.process_message = consumer_process_message,
};

/* Read the options; try the lookup already. */
static int
consumer_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct consumer_state	*cs;
	unsigned long long	 v;
	size_t			 i;

	if ((cs = calloc(1, sizeof *cs)) == NULL)
		return -1;
	cs->p = p;
	cs->host = host;
	cs->min_version = 1;
	for (i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "min_version") == 0 &&
		    ac_option_uint(opts[i].value, 1, 100, &v) == 0)
			cs->min_version = (unsigned int)v;
		else if (strcmp(opts[i].key, "required") == 0 &&
		    ac_option_bool(opts[i].value, &cs->required) == 0)
			continue;
		else if (strcmp(opts[i].key, "gate_dir") == 0) {
			free(cs->gate_dir);
			cs->gate_dir = strdup(opts[i].value);
		} else {
			host->log(p, AC_LOG_ERROR, "line %d: bad option '%s'",
			    opts[i].line, opts[i].key);
			free(cs->gate_dir);
			free(cs);
			return -1;
		}
	}
	cs->at_init = host->interface_get(p, TEST_COUNTER_NAME,
	    cs->min_version, NULL) != NULL;
	*state = cs;
	return 0;
}

/* The chain is initialised: find the interface, or refuse it. */
static int
consumer_ready(void *state)
{
	struct consumer_state	*cs = state;

	cs->counter = cs->host->interface_get(cs->p, TEST_COUNTER_NAME,
	    cs->min_version, &cs->version);
	if (cs->counter == NULL && cs->required) {
		cs->host->log(cs->p, AC_LOG_ERROR, "needs interface %s "
		    "version %u or later", TEST_COUNTER_NAME, cs->min_version);
		return -1;
	}
	return 0;
}

/* Free the state. */
static void
consumer_fini(void *state)
{
	struct consumer_state	*cs = state;

	free(cs->gate_dir);
	free(cs);
}

/* Worker: say it runs, then wait for the gate file (at most a minute). */
static void
consumer_work(void *arg)
{
	struct consumer_job	*cj = arg;
	struct timespec		 ts = { 0, 5 * 1000 * 1000 };
	int			 i, fd;

	if ((fd = open(cj->running, O_WRONLY|O_CREAT|O_CLOEXEC, 0600)) != -1)
		close(fd);
	for (i = 0; i < 12000 && access(cj->gate, F_OK) != 0; i++)
		nanosleep(&ts, NULL);
}

/* Loop: call the provider this instance found. */
static void
consumer_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct consumer_state	*cs = state;
	struct consumer_job	*cj = arg;

	if (cs->counter != NULL)
		cs->host->log(cs->p, AC_LOG_INFO, "later %s %s next=%u "
		    "serial=%u", cj->id, status == AC_JOB_DONE ? "done" :
		    "cancelled", cs->counter->next(cs->counter->ctx),
		    cs->counter->serial(cs->counter->ctx));
	free(cj);
}

/* Answer "next", or start a "later" job. */
static int
consumer_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct consumer_state	*cs = state;
	struct consumer_job	*cj;
	char			 reply[256];
	int			 n;

	if (msg->content_len > 6 && memcmp(msg->content, "later ", 6) == 0 &&
	    cs->gate_dir != NULL && msg->content_len - 6 < sizeof cj->id) {
		if ((cj = calloc(1, sizeof *cj)) == NULL)
			return -1;
		memcpy(cj->id, msg->content + 6, msg->content_len - 6);
		snprintf(cj->gate, sizeof cj->gate, "%s/%s", cs->gate_dir,
		    cj->id);
		snprintf(cj->running, sizeof cj->running, "%s/%s.running",
		    cs->gate_dir, cj->id);
		if (cs->host->job_submit(cs->p, NULL, 0, consumer_work,
		    consumer_done, cj) != 0)
			free(cj);
		return AC_PLUGIN_STOP;
	}
	if (cs->counter == NULL)
		n = snprintf(reply, sizeof reply, "consumer: no provider");
	else
		n = snprintf(reply, sizeof reply, "consumer: at_init=%d "
		    "version=%u serial=%u next=%u", cs->at_init, cs->version,
		    cs->counter->serial(cs->counter->ctx),
		    cs->counter->next(cs->counter->ctx));
	cs->host->send(cs->p, from, AC_MSG_MESSAGE,
	    "text/plain; charset=utf-8", NULL, reply, (size_t)n);
	return AC_PLUGIN_STOP;
}
