/*
 * jobs.c - a test module for the worker pool. Each text message is a
 * command:
 *
 *	KIND ID [block]
 *
 * KIND is run (a job tied to the sender's session), keep (the same with
 * AC_JOB_NO_CANCEL), serial (AC_JOB_SERIAL) or free (tied to no session).
 * The work function notes its thread and, with `block`, creates
 * GATE_DIR/ID.running and waits until the test creates GATE_DIR/ID (for
 * at most a minute), so that a test decides when a job ends without any
 * timing of its own. The completion answers the sender, if its session
 * is still open, "done ID worker=W loop=L" (W: the work ran on another
 * thread than the loop; L: the completion runs on the loop thread) or
 * "cancelled ID", and logs "job ID done|cancelled session=open|gone". A
 * refused job is answered "refused ID". fini logs how many jobs it had
 * not seen complete ("fini outstanding=N"), which must be 0.
 *
 * Option: gate_dir = DIR (required).
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <asyncchat/plugin.h>

#define JOBS_GATE_WAIT_MS	60000

/* The plugin's state: the loop thread's id and the jobs in flight. */
struct jobs_state {
	struct ac_plugin		*p;
	const struct ac_host_api	*host;
	char				*gate_dir;
	pthread_t			 loop;
	unsigned int			 outstanding;
};

/* What one job carries to its worker and back. */
struct jobs_arg {
	char		id[64];
	int		block;
	char		gate[PATH_MAX];
	char		running[PATH_MAX];
	pthread_t	loop;		/* copied: the worker reads no state */
	int		off_loop;	/* set by the work function */
};

static int	jobs_init(struct ac_plugin *, const struct ac_host_api *,
		    const struct ac_plugin_option *, size_t, void **);
static void	jobs_fini(void *);
static int	jobs_process_message(void *, struct ac_session *,
		    const struct ac_message *, const struct ac_frame *);

AC_PLUGIN_DESCRIPTOR = {
	AC_PLUGIN_HEADER,
	.name = "jobs",
	.version = "0",
	.description = "test: worker pool jobs on command",
	.init = jobs_init,
	.fini = jobs_fini,
	.process_message = jobs_process_message,
};

/* Read gate_dir; remember which thread the loop is. */
static int
jobs_init(struct ac_plugin *p, const struct ac_host_api *host,
    const struct ac_plugin_option *opts, size_t nopts, void **state)
{
	struct jobs_state	*js;
	size_t			 i;
	const char		*dir = NULL;

	if (!AC_HOST_HAS(host, job_submit)) {
		host->log(p, AC_LOG_ERROR, "host without a worker pool");
		return -1;
	}
	for (i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "gate_dir") != 0) {
			host->log(p, AC_LOG_ERROR, "line %d: unknown option "
			    "'%s' (known: gate_dir)", opts[i].line,
			    opts[i].key);
			return -1;
		}
		dir = opts[i].value;
	}
	if (dir == NULL) {
		host->log(p, AC_LOG_ERROR, "gate_dir is required");
		return -1;
	}
	if ((js = calloc(1, sizeof *js)) == NULL ||
	    (js->gate_dir = strdup(dir)) == NULL) {
		free(js);
		return -1;
	}
	js->p = p;
	js->host = host;
	js->loop = pthread_self();
	*state = js;
	return 0;
}

/* Say how many jobs never completed (the host promises none). */
static void
jobs_fini(void *state)
{
	struct jobs_state	*js = state;

	js->host->log(js->p, AC_LOG_INFO, "fini outstanding=%u",
	    js->outstanding);
	free(js->gate_dir);
	free(js);
}

/* Create an empty file (the "I am running" flag). */
static void
jobs_touch(const char *path)
{
	int	fd;

	if ((fd = open(path, O_WRONLY|O_CREAT|O_CLOEXEC, 0600)) != -1)
		close(fd);
}

/* Worker thread: note the thread, then maybe wait for the gate file. */
static void
jobs_work(void *arg)
{
	struct jobs_arg		*ja = arg;
	struct timespec		 ts = { 0, 5 * 1000 * 1000 };
	int			 waited = 0;

	ja->off_loop = !pthread_equal(pthread_self(), ja->loop);
	if (!ja->block)
		return;
	jobs_touch(ja->running);
	while (access(ja->gate, F_OK) != 0 && waited < JOBS_GATE_WAIT_MS) {
		nanosleep(&ts, NULL);
		waited += 5;
	}
}

/* Loop thread: answer and log how the job ended. */
static void
jobs_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct jobs_state	*js = state;
	struct jobs_arg		*ja = arg;
	char			 reply[256];
	int			 n;

	js->outstanding--;
	if (status == AC_JOB_DONE)
		n = snprintf(reply, sizeof reply, "done %s worker=%d loop=%d",
		    ja->id, ja->off_loop, pthread_equal(pthread_self(),
		    js->loop) != 0);
	else
		n = snprintf(reply, sizeof reply, "cancelled %s", ja->id);
	js->host->log(js->p, AC_LOG_INFO, "job %s %s session=%s", ja->id,
	    status == AC_JOB_DONE ? "done" : "cancelled",
	    s != NULL ? "open" : "gone");
	if (s != NULL)
		js->host->send(js->p, s, AC_MSG_MESSAGE,
		    "text/plain; charset=utf-8", NULL, reply, (size_t)n);
	free(ja);
}

/* Parse "KIND ID [block]" and submit the job. */
static int
jobs_process_message(void *state, struct ac_session *from,
    const struct ac_message *msg, const struct ac_frame *frame)
{
	struct jobs_state	*js = state;
	struct jobs_arg		*ja;
	struct ac_session	*s = from;
	char			 cmd[256], kind[16], reply[128];
	int			 flags = 0, n;

	if (msg->content_len >= sizeof cmd)
		return AC_PLUGIN_CONTINUE;
	memcpy(cmd, msg->content, msg->content_len);
	cmd[msg->content_len] = '\0';
	if ((ja = calloc(1, sizeof *ja)) == NULL)
		return -1;
	n = sscanf(cmd, "%15s %63s", kind, ja->id);
	if (n != 2) {
		free(ja);
		return AC_PLUGIN_CONTINUE;
	}
	ja->block = strstr(cmd, " block") != NULL;
	ja->loop = js->loop;
	snprintf(ja->gate, sizeof ja->gate, "%s/%s", js->gate_dir, ja->id);
	snprintf(ja->running, sizeof ja->running, "%s/%s.running",
	    js->gate_dir, ja->id);
	if (strcmp(kind, "keep") == 0)
		flags = AC_JOB_NO_CANCEL;
	else if (strcmp(kind, "serial") == 0)
		flags = AC_JOB_SERIAL;
	else if (strcmp(kind, "free") == 0)
		s = NULL;
	else if (strcmp(kind, "run") != 0) {
		free(ja);
		return AC_PLUGIN_CONTINUE;
	}
	if (js->host->job_submit(js->p, s, flags, jobs_work, jobs_done,
	    ja) != 0) {
		n = snprintf(reply, sizeof reply, "refused %s", ja->id);
		js->host->send(js->p, from, AC_MSG_MESSAGE,
		    "text/plain; charset=utf-8", NULL, reply, (size_t)n);
		free(ja);
		return AC_PLUGIN_STOP;
	}
	js->outstanding++;
	return AC_PLUGIN_STOP;
}
