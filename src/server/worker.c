/*
 * worker.c - the worker pool plugins hand their blocking work to
 * (host->job_submit): a bounded queue of jobs, worker threads that run
 * each job's work function, and an eventfd that brings finished jobs back
 * to the loop thread, where plugin_host_job_done() runs their completion.
 *
 * Threads. A worker touches only its job (work and arg) and the pool's own
 * lists, and those only under `mu`; never a session, a plugin's state or
 * the event loop. The plugin record a job points to is read under `mu` for
 * one field, serial_busy, which exists for the workers. Everything else
 * here (submitting, cancelling, completing) runs on the loop thread.
 *
 * Threads start lazily, one when a job is queued and none is idle, up to
 * worker_threads: a server whose plugins never submit a job has none. A
 * reload may raise worker_threads (more start when needed) or lower it
 * (the extra ones stay until a restart); worker_queue applies at once.
 *
 * Jobs tied to a session (a replay a client asked for, a look-up) may fill
 * at most three quarters of worker_queue; the last quarter is kept for
 * jobs tied to no session, the plugins' own work (the history plugin's
 * writes, its pruning). Sessions ask for jobs at the rate they send
 * frames, and a few of them could otherwise keep the queue full: every
 * write refused meanwhile is a delivered message that history never
 * stores.
 *
 * Cancelling moves a job that no worker has taken from the queue to the
 * finished list with the status AC_JOB_CANCELLED, so that every accepted
 * job completes exactly once, through the same path, on a later loop turn.
 * A job a worker is running cannot be stopped: it finishes, and whoever
 * waits for it (an unloaded plugin's dlclose, shutdown) waits.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/eventfd.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "xmalloc.h"
#include "log.h"
#include "server.h"

/* One job, from job_submit to its completion. */
struct worker_job {
	struct ac_plugin	*p;
	struct ac_session	*s;		/* compared, never read, here */
	int			 flags;
	ac_job_work_fn		 work;
	ac_job_done_fn		 done;
	void			*arg;
	enum ac_job_status	 status;
	TAILQ_ENTRY(worker_job)	 entry;
};
TAILQ_HEAD(worker_jobs, worker_job);

struct worker_pool {
	struct server		*srv;

	/* Shared with the workers, under mu. */
	pthread_mutex_t		 mu;
	pthread_cond_t		 work_cv;	/* a job was queued, or stop */
	struct worker_jobs	 queue;
	size_t			 nqueued;
	size_t			 nsession;	/* of them, tied to a session */
	size_t			 running;
	size_t			 idle;		/* workers waiting for a job */
	struct worker_jobs	 finished;
	int			 signalled;	/* efd written, not yet read */
	int			 stopping;

	/* Loop thread only. */
	int			 efd;
	struct event		*ev;
	pthread_t		*threads;
	size_t			 nthreads;
	uint64_t		 completed;
	uint64_t		 cancelled;
	uint64_t		 refused;
};

static void	*worker_main(void *);
static void	 worker_wakeup_cb(evutil_socket_t, short, void *);

/* The most queued jobs that may be tied to sessions, of queue. */
static size_t
worker_session_max(size_t queue)
{
	return (queue - queue / 4);
}

/* Take a job off the queue, with mu held. */
static void
worker_unqueue_locked(struct worker_pool *wk, struct worker_job *job)
{
	TAILQ_REMOVE(&wk->queue, job, entry);
	wk->nqueued--;
	if (job->s != NULL)
		wk->nsession--;
}

/* Make the pool (no thread yet) and watch its eventfd; -1 with *cause. */
int
worker_pool_new(struct server *srv, struct worker_pool **wp, char **cause)
{
	struct worker_pool	*wk;

	wk = ac_xcalloc(1, sizeof *wk);
	wk->srv = srv;
	TAILQ_INIT(&wk->queue);
	TAILQ_INIT(&wk->finished);
	if ((wk->efd = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC)) == -1) {
		ac_xasprintf(cause, "worker pool: eventfd: %s",
		    strerror(errno));
		free(wk);
		return (-1);
	}
	wk->ev = event_new(srv->base, wk->efd, EV_READ|EV_PERSIST,
	    worker_wakeup_cb, wk);
	if (wk->ev == NULL || event_add(wk->ev, NULL) != 0) {
		ac_xasprintf(cause, "worker pool: cannot watch the eventfd");
		if (wk->ev != NULL)
			event_free(wk->ev);
		close(wk->efd);
		free(wk);
		return (-1);
	}
	pthread_mutex_init(&wk->mu, NULL);
	pthread_cond_init(&wk->work_cv, NULL);
	*wp = wk;
	return (0);
}

/* Wake the loop thread (any thread; the counter only ever saturates). */
static void
worker_wake(struct worker_pool *wk)
{
	uint64_t	one = 1;
	ssize_t		n;

	do
		n = write(wk->efd, &one, sizeof one);
	while (n == -1 && errno == EINTR);
}

/* Move a job to the finished list, with mu held; non-zero: wake the loop. */
static int
worker_finish_locked(struct worker_pool *wk, struct worker_job *job,
    enum ac_job_status status)
{
	job->status = status;
	TAILQ_INSERT_TAIL(&wk->finished, job, entry);
	if (wk->signalled)
		return (0);
	wk->signalled = 1;
	return (1);
}

/* The first queued job a worker may take now, with mu held, or NULL: a
 * serial job waits while its plugin has one running. */
static struct worker_job *
worker_pick_locked(struct worker_pool *wk)
{
	struct worker_job	*job;

	TAILQ_FOREACH(job, &wk->queue, entry) {
		if (!(job->flags & AC_JOB_SERIAL) || !job->p->serial_busy)
			return (job);
	}
	return (NULL);
}

/* A worker thread: take jobs and run them until the pool stops. */
static void *
worker_main(void *arg)
{
	struct worker_pool	*wk = arg;
	struct worker_job	*job;
	int			 wake, serial;

	pthread_mutex_lock(&wk->mu);
	for (;;) {
		if ((job = worker_pick_locked(wk)) == NULL) {
			if (wk->stopping && TAILQ_EMPTY(&wk->queue))
				break;
			wk->idle++;
			pthread_cond_wait(&wk->work_cv, &wk->mu);
			wk->idle--;
			continue;
		}
		worker_unqueue_locked(wk, job);
		wk->running++;
		if ((serial = (job->flags & AC_JOB_SERIAL) != 0))
			job->p->serial_busy = 1;
		pthread_mutex_unlock(&wk->mu);

		job->work(job->arg);

		pthread_mutex_lock(&wk->mu);
		wk->running--;
		if (serial) {
			job->p->serial_busy = 0;
			/* The plugin's next serial job may wait for this. */
			pthread_cond_broadcast(&wk->work_cv);
		}
		wake = worker_finish_locked(wk, job, AC_JOB_DONE);
		if (wake) {
			pthread_mutex_unlock(&wk->mu);
			worker_wake(wk);
			pthread_mutex_lock(&wk->mu);
		}
	}
	pthread_mutex_unlock(&wk->mu);
	return (NULL);
}

/*
 * Start one more worker; -1 if the system refuses. Workers block every
 * signal, so that signals reach the loop thread, which handles them.
 */
static int
worker_spawn(struct worker_pool *wk)
{
	sigset_t	 all, old;
	pthread_t	 t;
	int		 error;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	error = pthread_create(&t, NULL, worker_main, wk);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error != 0) {
		log_warnx("worker pool: cannot start a thread: %s",
		    strerror(error));
		return (-1);
	}
	wk->threads = ac_xreallocarray(wk->threads, wk->nthreads + 1,
	    sizeof *wk->threads);
	wk->threads[wk->nthreads++] = t;
	log_debug("worker pool: %zu thread%s", wk->nthreads,
	    wk->nthreads == 1 ? "" : "s");
	return (0);
}

/*
 * Queue a job for plugin p (session s, may be NULL). Returns 0, or -1
 * when the queue is full (for a job tied to a session: when such jobs
 * fill their share of it), the pool is stopping or no thread can run it:
 * then nothing happens to arg.
 */
int
worker_submit(struct worker_pool *wk, struct ac_plugin *p,
    struct ac_session *s, int flags, ac_job_work_fn work,
    ac_job_done_fn done, void *arg)
{
	const struct ac_config	*cfg;
	struct worker_job	*job;
	int			 more;

	if (wk == NULL)
		return (-1);
	cfg = wk->srv->cfg;
	if (wk->stopping) {
		wk->refused++;
		return (-1);
	}
	/* The first job needs a thread before it can be promised to run. */
	if (wk->nthreads == 0 && worker_spawn(wk) == -1) {
		wk->refused++;
		return (-1);
	}
	job = ac_xcalloc(1, sizeof *job);
	job->p = p;
	job->s = s;
	job->flags = flags;
	job->work = work;
	job->done = done;
	job->arg = arg;

	pthread_mutex_lock(&wk->mu);
	if (wk->nqueued >= cfg->worker_queue || (s != NULL &&
	    wk->nsession >= worker_session_max(cfg->worker_queue))) {
		pthread_mutex_unlock(&wk->mu);
		free(job);
		wk->refused++;
		return (-1);
	}
	TAILQ_INSERT_TAIL(&wk->queue, job, entry);
	wk->nqueued++;
	if (s != NULL)
		wk->nsession++;
	more = wk->idle == 0 && wk->nthreads < cfg->worker_threads;
	pthread_cond_signal(&wk->work_cv);
	pthread_mutex_unlock(&wk->mu);

	/* Busy workers and room for another: start it (failure is fine,
	 * the running ones will get to the job). */
	if (more)
		worker_spawn(wk);
	return (0);
}

/* Cancel every queued job that match() accepts and that may be cancelled. */
static void
worker_cancel_matching(struct worker_pool *wk,
    int (*match)(const struct worker_job *, const void *), const void *what)
{
	struct worker_job	*job, *next;
	int			 wake = 0;

	pthread_mutex_lock(&wk->mu);
	for (job = TAILQ_FIRST(&wk->queue); job != NULL; job = next) {
		next = TAILQ_NEXT(job, entry);
		if ((job->flags & AC_JOB_NO_CANCEL) || !match(job, what))
			continue;
		worker_unqueue_locked(wk, job);
		wake |= worker_finish_locked(wk, job, AC_JOB_CANCELLED);
	}
	pthread_mutex_unlock(&wk->mu);
	if (wake)
		worker_wake(wk);
}

/* Does this job belong to the session? */
static int
worker_match_session(const struct worker_job *job, const void *what)
{
	return (job->s == what);
}

/* Does this job belong to a plugin of the set? (Loop thread: p is ours.) */
static int
worker_match_set(const struct worker_job *job, const void *what)
{
	return (job->p->set == what);
}

/* Anything the pool still holds. */
static int
worker_match_any(const struct worker_job *job, const void *what)
{
	return (1);
}

/* A session is closing: cancel its jobs that no worker has taken. */
void
worker_cancel_session(struct worker_pool *wk, struct ac_session *s)
{
	if (wk != NULL)
		worker_cancel_matching(wk, worker_match_session, s);
}

/* A chain is being unloaded: cancel its plugins' queued jobs. */
void
worker_cancel_set(struct worker_pool *wk, struct plugin_set *set)
{
	if (wk != NULL)
		worker_cancel_matching(wk, worker_match_set, set);
}

/*
 * Run the completion of every finished job, on the loop thread, in the
 * order they finished. A completion may submit jobs or close sessions;
 * what finishes meanwhile waits for the next call.
 */
void
worker_pool_complete(struct worker_pool *wk)
{
	struct worker_jobs	 batch;
	struct worker_job	*job;

	if (wk == NULL)
		return;
	TAILQ_INIT(&batch);
	pthread_mutex_lock(&wk->mu);
	TAILQ_CONCAT(&batch, &wk->finished, entry);
	wk->signalled = 0;
	pthread_mutex_unlock(&wk->mu);

	while ((job = TAILQ_FIRST(&batch)) != NULL) {
		TAILQ_REMOVE(&batch, job, entry);
		if (job->status == AC_JOB_DONE)
			wk->completed++;
		else
			wk->cancelled++;
		plugin_host_job_done(job->p, job->s, job->done, job->arg,
		    job->status);
		free(job);
	}
}

/* The eventfd says jobs have finished: complete them. */
static void
worker_wakeup_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker_pool	*wk = arg;
	uint64_t		 v;

	while (read(wk->efd, &v, sizeof v) == -1 && errno == EINTR)
		;
	worker_pool_complete(wk);
}

/*
 * Shutdown: cancel every queued job that may be cancelled, let the workers
 * finish the jobs they run and the AC_JOB_NO_CANCEL ones, and join them.
 * This blocks, which is what shutdown wants; the completions are left for
 * worker_pool_complete().
 */
void
worker_pool_stop(struct worker_pool *wk)
{
	size_t	i;

	if (wk == NULL || wk->stopping)
		return;
	worker_cancel_matching(wk, worker_match_any, NULL);
	pthread_mutex_lock(&wk->mu);
	wk->stopping = 1;
	if (wk->running != 0 || wk->nqueued != 0)
		log_info("worker pool: waiting for %zu running and %zu "
		    "queued job%s", wk->running, wk->nqueued,
		    wk->running + wk->nqueued == 1 ? "" : "s");
	pthread_cond_broadcast(&wk->work_cv);
	pthread_mutex_unlock(&wk->mu);
	for (i = 0; i < wk->nthreads; i++)
		pthread_join(wk->threads[i], NULL);
	free(wk->threads);
	wk->threads = NULL;
	wk->nthreads = 0;
}

/* Free a stopped pool whose completions have run; NULL is allowed. */
void
worker_pool_free(struct worker_pool *wk)
{
	if (wk == NULL)
		return;
	worker_pool_stop(wk);
	worker_pool_complete(wk);
	event_free(wk->ev);
	close(wk->efd);
	pthread_cond_destroy(&wk->work_cv);
	pthread_mutex_destroy(&wk->mu);
	free(wk);
}

/* Write the pool's metric families into b (metrics.c). */
void
worker_metrics_write(struct worker_pool *wk, struct evbuffer *b)
{
	size_t	queued, running;

	if (wk == NULL)
		return;
	pthread_mutex_lock(&wk->mu);
	queued = wk->nqueued;
	running = wk->running;
	pthread_mutex_unlock(&wk->mu);

	evbuffer_add_printf(b, "# HELP asyncchat_worker_threads Worker "
	    "threads started for plugins' jobs.\n"
	    "# TYPE asyncchat_worker_threads gauge\n"
	    "asyncchat_worker_threads %zu\n", wk->nthreads);
	evbuffer_add_printf(b, "# HELP asyncchat_worker_jobs_queued Jobs "
	    "waiting for a worker.\n"
	    "# TYPE asyncchat_worker_jobs_queued gauge\n"
	    "asyncchat_worker_jobs_queued %zu\n", queued);
	evbuffer_add_printf(b, "# HELP asyncchat_worker_jobs_running Jobs a "
	    "worker is running now.\n"
	    "# TYPE asyncchat_worker_jobs_running gauge\n"
	    "asyncchat_worker_jobs_running %zu\n", running);
	evbuffer_add_printf(b, "# HELP asyncchat_worker_jobs_total Jobs by "
	    "how they ended (refused: never queued).\n"
	    "# TYPE asyncchat_worker_jobs_total counter\n"
	    "asyncchat_worker_jobs_total{status=\"done\"} %" PRIu64 "\n"
	    "asyncchat_worker_jobs_total{status=\"cancelled\"} %" PRIu64 "\n"
	    "asyncchat_worker_jobs_total{status=\"refused\"} %" PRIu64 "\n",
	    wk->completed, wk->cancelled, wk->refused);
}
