/*
 * mailbox.c - the one way from libnats' threads to the loop thread: a
 * locked list of mail and an eventfd the loop watches with an ordinary
 * event (write(2) on an eventfd is safe from any thread, so no libevent
 * or host function is ever called off the loop thread), as in the nats
 * plugin.
 *
 * The list is bounded in bytes: past CLUSTER_MAILBOX_MAX_BYTES, stored
 * room messages and bucket entries are dropped and counted. That loses
 * nothing for good: a room message the loop never saw is still in the
 * stream (a replay has it), and a node that far behind has bigger
 * troubles; the drop is logged. Notices (link up, down) are never
 * dropped.
 *
 * The loop takes CLUSTER_MAILBOX_BATCH pieces per wake-up, so that local
 * sessions are served in between.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/eventfd.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cluster.h"

/* A piece of mail, with a copy of subject and data. */
struct mail *
mail_new(enum mail_kind kind, struct link *l, const char *subject,
    const void *data, size_t len)
{
	struct mail	*m;

	if ((m = calloc(1, sizeof *m)) == NULL)
		return (NULL);
	m->kind = kind;
	m->link = l;
	if (subject != NULL && (m->subject = strdup(subject)) == NULL) {
		free(m);
		return (NULL);
	}
	if (len > 0) {
		if ((m->data = malloc(len)) == NULL) {
			free(m->subject);
			free(m);
			return (NULL);
		}
		memcpy(m->data, data, len);
	}
	m->len = len;
	return (m);
}

/* Free a piece of mail. */
void
mail_free(struct mail *m)
{
	if (m == NULL)
		return;
	free(m->subject);
	free(m->reply);
	free(m->hdr);
	free(m->mid);
	free(m->data);
	free(m);
}

/*
 * Post mail for the loop (any thread). Messages are dropped when the
 * mailbox holds too much; notices never are.
 */
void
mailbox_post(struct mailbox *mb, struct mail *m)
{
	uint64_t	one = 1;
	ssize_t		n;
	int		wake = 0;

	if (m == NULL)
		return;
	pthread_mutex_lock(&mb->mu);
	if ((m->kind == MAIL_FEED || m->kind == MAIL_KV ||
	    m->kind == MAIL_DIRECT) &&
	    mb->bytes + m->len > CLUSTER_MAILBOX_MAX_BYTES) {
		mb->overflow++;
		pthread_mutex_unlock(&mb->mu);
		mail_free(m);
		return;
	}
	if (mb->tail != NULL)
		mb->tail->next = m;
	else
		mb->head = m;
	mb->tail = m;
	mb->bytes += m->len;
	if (!mb->signalled) {
		mb->signalled = 1;
		wake = 1;
	}
	pthread_mutex_unlock(&mb->mu);
	if (!wake)
		return;
	do
		n = write(mb->efd, &one, sizeof one);
	while (n == -1 && errno == EINTR);
}

/* The eventfd is readable (loop thread): hand a batch to the link. */
static void
mailbox_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cluster	*cl = arg;
	struct mailbox	*mb = &cl->mb;
	struct mail	*batch, *m;
	uint64_t	 v, overflow;
	int		 n, more;

	(void)fd;
	(void)what;
	while (read(mb->efd, &v, sizeof v) == -1 && errno == EINTR)
		;
	pthread_mutex_lock(&mb->mu);
	batch = mb->head;
	for (n = 1, m = batch; m != NULL && n < CLUSTER_MAILBOX_BATCH;
	    n++)
		m = m->next;
	if (m != NULL) {
		mb->head = m->next;
		m->next = NULL;
	} else
		mb->head = NULL;
	if (mb->head == NULL)
		mb->tail = NULL;
	for (m = batch; m != NULL; m = m->next)
		mb->bytes -= m->len;
	if (!(more = (mb->head != NULL)))
		mb->signalled = 0;
	overflow = mb->overflow;
	mb->overflow = 0;
	pthread_mutex_unlock(&mb->mu);

	if (overflow != 0)
		cl->host->log(cl->p, AC_LOG_WARNING, "%llu messages from NATS "
		    "dropped: this node takes them in slower than they come "
		    "(%u MiB waiting); stored room messages are still in the "
		    "stream", (unsigned long long)overflow,
		    CLUSTER_MAILBOX_MAX_BYTES >> 20);
	while ((m = batch) != NULL) {
		batch = m->next;
		if (!cl->stopping)
			link_mail(cl, m);
		mail_free(m);
	}
	if (more)
		event_active(mb->ev, EV_READ, 1);
}

/* Make the mailbox and watch its eventfd. Returns 0, or -1 (logged). */
int
mailbox_init(struct cluster *cl)
{
	struct mailbox	*mb = &cl->mb;

	pthread_mutex_init(&mb->mu, NULL);
	if ((mb->efd = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC)) == -1) {
		cl->host->log(cl->p, AC_LOG_ERROR, "eventfd: %s",
		    strerror(errno));
		return (-1);
	}
	mb->ev = event_new(cl->host->event_base(cl->p), mb->efd,
	    EV_READ|EV_PERSIST, mailbox_cb, cl);
	if (mb->ev == NULL || event_add(mb->ev, NULL) != 0) {
		cl->host->log(cl->p, AC_LOG_ERROR, "cannot watch the eventfd");
		return (-1);
	}
	return (0);
}

/* Free the mailbox and what is left in it (no thread posts any more). */
void
mailbox_free(struct mailbox *mb)
{
	struct mail	*m;

	if (mb->ev != NULL)
		event_free(mb->ev);
	mb->ev = NULL;
	if (mb->efd >= 0)
		close(mb->efd);
	mb->efd = -1;
	while ((m = mb->head) != NULL) {
		mb->head = m->next;
		mail_free(m);
	}
	mb->tail = NULL;
	pthread_mutex_destroy(&mb->mu);
}
