/*
 * direct.c - direct messages between servers: cluster->direct sends the
 * signed frame to the subject of the recipient's node, P.direct.<node>,
 * as a NATS request with the recipient's session id in a header; that
 * node checks the frame as a client's (host->frame_from_bytes), hands it
 * to chat, which queues it to the session if it is still there, and
 * answers "ok" or "gone". No answer within CLUSTER_REQUEST_WAIT (the node
 * is down, the link is) is AC_CLUSTER_DOWN. At most once: nothing is
 * sent again, and the sender is told which it was.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* A request (out) or an answer (in), on a worker. */
struct direct_job {
	struct cluster		*cl;
	struct link		*link;
	char			 subject[256];
	char			 to[CLUSTER_ID_MAX + 1];
	struct ac_frame		*frame;		/* out: our reference */
	const uint8_t		*bytes;
	size_t			 len;
	ac_cluster_done_fn	 done;
	void			*arg;
	char			 answer[8];	/* in: "ok" or "gone" */
	enum ac_cluster_status	 status;
};

/* The request, on a worker. */
static void
direct_work(void *arg)
{
	struct direct_job	*j = arg;
	natsMsg			*m = NULL, *reply = NULL;
	natsStatus		 s;
	const char		*data;

	j->status = AC_CLUSTER_GONE;
	if (j->frame == NULL)
		return;		/* no node has that session */
	j->status = AC_CLUSTER_DOWN;
	s = natsMsg_Create(&m, j->subject, NULL, (const char *)j->bytes,
	    (int)j->len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, CLUSTER_HDR_TO, j->to);
	if (s == NATS_OK)
		s = natsConnection_RequestMsg(&reply, j->link->nc, m,
		    CLUSTER_REQUEST_WAIT);
	natsMsg_Destroy(m);
	if (s != NATS_OK)
		return;
	data = natsMsg_GetData(reply);
	if (natsMsg_GetDataLength(reply) == 2 && memcmp(data, "ok", 2) == 0)
		j->status = AC_CLUSTER_OK;
	else
		j->status = AC_CLUSTER_GONE;
	natsMsg_Destroy(reply);
}

/* The request is answered (or not): tell chat. */
static void
direct_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct cluster		*cl = state;
	struct direct_job	*j = arg;

	(void)s;
	link_release(cl, j->link);
	if (j->frame != NULL)
		cl->host->frame_unref(cl->p, j->frame);
	if (status != AC_JOB_DONE)
		j->status = AC_CLUSTER_DOWN;
	if (j->status == AC_CLUSTER_DOWN)
		cl->counts[CC_DIRECT_FAILURES]++;
	j->done(j->arg, j->status);
	free(j);
}

/*
 * cluster->direct: hand frame f to remote session `to`. Returns 0 (done
 * comes later), or -1 when the link is not ready.
 */
int
direct_send(struct cluster *cl, const char *to, const struct ac_frame *f,
    ac_cluster_done_fn done, void *arg)
{
	struct direct_job	*j;
	const char		*node;

	if (!link_ready(cl) || to == NULL || strlen(to) > CLUSTER_ID_MAX ||
	    done == NULL)
		return (-1);
	if ((j = calloc(1, sizeof *j)) == NULL)
		return (-1);
	j->cl = cl;
	snprintf(j->to, sizeof j->to, "%s", to);
	j->done = done;
	j->arg = arg;
	if ((node = presence_node_of(cl, to)) != NULL) {
		snprintf(j->subject, sizeof j->subject, "%s%s",
		    cl->names.direct_prefix, node);
		j->frame = cl->host->frame_ref(cl->p, f);
		j->bytes = cl->host->frame_bytes(j->frame, &j->len);
	}
	if (link_submit(cl, NULL, AC_JOB_NO_CANCEL, direct_work, direct_done,
	    j, &j->link) != 0) {
		if (j->frame != NULL)
			cl->host->frame_unref(cl->p, j->frame);
		free(j);
		return (-1);
	}
	cl->counts[CC_DIRECT]++;
	return (0);
}

/* The answer, on a worker. */
static void
direct_answer_work(void *arg)
{
	struct direct_job	*j = arg;

	natsConnection_PublishString(j->link->nc, j->subject, j->answer);
}

/* The answer is sent. */
static void
direct_answer_done(void *state, struct ac_session *s, void *arg,
    enum ac_job_status status)
{
	struct direct_job	*j = arg;

	(void)s;
	(void)status;
	link_release(state, j->link);
	free(j);
}

/*
 * A direct message for a session of this node (loop thread): check it,
 * hand it to chat, answer.
 */
void
direct_mail(struct cluster *cl, struct mail *m)
{
	struct direct_job	*j;
	struct ac_frame		*f;
	int			 ok = 0;

	if (m->reply == NULL || m->subject == NULL)
		return;
	if ((f = cl->host->frame_from_bytes(cl->p, m->data, m->len)) != NULL) {
		if (cl->listening && cl->listener.direct != NULL &&
		    cl->listener.direct(cl->listener.arg, m->subject, f) == 0)
			ok = 1;
		cl->host->frame_unref(cl->p, f);
	} else
		cluster_refuse(cl, "a direct message", m->subject,
		    "not a frame that verifies");
	if ((j = calloc(1, sizeof *j)) == NULL)
		return;
	j->cl = cl;
	snprintf(j->subject, sizeof j->subject, "%s", m->reply);
	snprintf(j->answer, sizeof j->answer, "%s", ok ? "ok" : "gone");
	if (link_submit(cl, NULL, AC_JOB_NO_CANCEL, direct_answer_work,
	    direct_answer_done, j, &j->link) != 0)
		free(j);
}
