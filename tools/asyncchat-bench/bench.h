/*
 * bench.h - asyncchat-bench: load generator and verifier for asyncchatd, the
 * raw echo ceiling and Redis pub/sub.
 *
 * One process, one thread, one libevent loop. A run is a set of
 * connections (struct conn) that share one framing (the protocol, a 4-byte
 * length prefix or RESP) and one mode (echo, fanout, room, idle) that
 * decides what to send and checks what comes back. Every message carries a
 * stamp (send time, sequence number, sender) at the end of its content, so
 * that latency, order, loss and duplicates are all read from the messages
 * themselves.
 *
 * The client must never be what limits a run, so it also measures itself:
 * its CPU time and its wait for a CPU over the measured window, against the
 * window's wall time (cpu.c). A point where the client was busy for most
 * of the window is flagged client-bound: its rate is the client's, not the
 * server's.
 */
#ifndef BENCH_H
#define BENCH_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <asyncchat/frame.h>
#include <asyncchat/uuid.h>

struct event;
struct event_base;
struct evbuffer;
struct ac_key;
struct bench;
struct conn;

/* How the bytes on a connection are framed. */
enum framing {
	FRAMING_PROTOCOL,	/* asyncchat frames, fully verified */
	FRAMING_RAW,		/* 4-byte big-endian length, then payload */
	FRAMING_RESP,		/* Redis RESP2 pub/sub */
};

/* What a connection is for in a fan-out run. */
enum conn_role {
	ROLE_ECHO,
	ROLE_RECEIVER,
	ROLE_SENDER,
	ROLE_IDLE,
};

/* Where the server under test listens. */
struct target {
	int		 is_unix;
	char		*host;
	char		*port;
	char		*path;
	char		*text;		/* as given, for reports */
};

/*
 * The stamp at the end of every message's content (host byte order: only
 * this program reads it).
 */
struct stamp {
	uint64_t	sent_ns;
	uint64_t	seq;
	uint32_t	sender;
} __attribute__((packed));
#define STAMP_LEN	sizeof(struct stamp)

/*
 * A message encoded once; per send only the stamp changes, and with it the
 * content CRC and the HMAC, which are finished from states saved up to the
 * stamp (the stamp is the last bytes, so the prefix is hashed only once).
 */
struct tmpl {
	uint8_t		*bytes;
	size_t		 len;
	size_t		 stamp_off;	/* offset of the stamp in bytes */
	int		 protocol;	/* CRC and HMAC to finish per send */
	void		*mac_state;	/* SHA-256 state up to the tail */
	size_t		 mac_tail;	/* offset where the state stops */
	void		*outer_state;	/* SHA-256 state after K ^ opad */
	uint32_t	 crc_prefix;	/* CRC-32 of the content before it */
	size_t		 content_off;
	size_t		 var_off;	/* bytes a restamp changes, besides */
	size_t		 var_len;	/* the stamp: the CRC and the HMAC */
};

/*
 * What varies between two sends of one template: the bytes at var_off and
 * the stamp. An echo run keeps one per message in flight to recognise the
 * message when it comes back.
 */
#define SLOT_LEN	(AC_HMAC_LEN + 4 + STAMP_LEN)

/* CPU time of the client and the server at one instant (cpu.c). */
struct cpu_sample {
	double		 wall;		/* monotonic clock, s */
	double		 user;		/* this thread's user time, s */
	double		 sys;		/* this thread's system time, s */
	double		 wait;		/* this thread's wait for a CPU, s */
	int		 wait_ok;	/* /proc/thread-self/schedstat read */
	double		 server_cpu;	/* the server's utime + stime, s */
	double		 server_wait;	/* its threads' wait for a CPU, s */
	int		 server_ok;	/* /proc/PID/stat read */
};

/* CPU use over the measured window (report.c prints it). */
struct cpu_use {
	double		 wall;
	double		 user;
	double		 sys;
	double		 wait;		/* -1 when not known */
	double		 server_cpu;	/* -1 when not measured */
	double		 server_wait;	/* -1 when not measured */
	int		 client_bound;
};

/* Latency samples in log-linear buckets (about 1.6 % resolution). */
#define HIST_SUB	64
#define HIST_EXP	40
struct histogram {
	uint64_t	 counts[HIST_EXP][HIST_SUB];
	uint64_t	 n;
	uint64_t	 max;
};

/* One socket to the server under test. */
struct conn {
	struct bench	*b;
	int		 index;
	enum conn_role	 role;
	int		 fd;
	int		 connected;
	int		 closed;
	struct event	*rev;
	struct event	*wev;
	int		 write_wanted;	/* wev is added: the socket is full */

	uint8_t		*in;		/* own buffer: one read takes a lot */
	size_t		 in_len;
	size_t		 in_size;
	uint8_t		*out;		/* bytes not yet written */
	size_t		 out_off;	/* from here */
	size_t		 out_len;	/* to here */
	size_t		 out_size;
	int		 dirty;		/* in the bench's list to flush */

	/* Protocol session. */
	char		 sid[AC_UUID_STRLEN + 1];
	int		 acked;
	uint64_t	 pings_out;	/* pings sent, pong not yet seen */
	int		 subscribed;	/* RESP: SUBSCRIBE confirmed */

	/* Sending: the message template and the next sequence number. */
	struct tmpl	 tmpl;
	int		 have_tmpl;
	uint64_t	 seq_sent;
	uint64_t	 seq_acked;	/* echo: next seq expected back */
	uint64_t	*expect;	/* fanout: next seq per sender */
	uint8_t		*slots;		/* echo: SLOT_LEN per seq % window */
	uint64_t	 room_seq;	/* room: the last room seq seen */
};

/* Options and state of one run. */
struct bench {
	/* Options. */
	const char	*mode;
	struct target	 target;
	const char	*key_text;
	int		 nconns;
	int		 window;
	size_t		 size;
	double		 duration;
	double		 drain;
	double		 heartbeat;
	int		 receivers;
	int		 senders;
	int		 sessions;
	pid_t		 server_pid;
	int		 json;
	int		 connect_parallel;
	const char	*channel;
	int		 full_verify;
	double		 bound_at;	/* client-bound at this busy share */
	const char	*room;		/* room mode: the chat room */

	/* Run state. */
	enum framing	 framing;
	struct event_base *base;
	struct ac_key	*key;
	struct ac_limits limits;
	struct conn	**conns;
	int		 next_connect;
	int		 connecting;
	int		 nready;
	int		 running;	/* inside the measured window */
	int		 stopped;	/* the window is over: draining */
	int		 finished;
	double		 t_start;
	double		 t_stop;
	double		 t_end;
	struct event	*stop_ev;
	struct event	*drain_ev;
	struct event	*ping_ev;
	struct event	*flush_ev;	/* active once a turn: write all */
	struct conn	**dirty;	/* connections with output to write */
	int		 ndirty;
	int		 flush_queued;	/* flush_ev is active */
	uint64_t	 now_ns;	/* clock read after the last read() */
	struct evbuffer	*scratch;	/* for frames encoded with the codec */

	/* CPU time at the start and the end of the measured window. */
	struct cpu_sample cpu_start;
	struct cpu_sample cpu_stop;
	int		 cpu_started;
	int		 cpu_stopped;

	/* Counters. */
	struct histogram hist;
	uint64_t	 sent;		/* messages sent */
	uint64_t	 received;	/* messages received and checked */
	uint64_t	 window_msgs;	/* received inside the window */
	uint64_t	 window_bytes;	/* their content bytes */
	uint64_t	 window_wire;	/* their wire bytes */
	uint64_t	 verified;	/* frames that passed every check */
	uint64_t	 pings;
	uint64_t	 pongs;
	uint64_t	 pongs_lost;	/* pings never answered by the end */
	uint64_t	 lost;
	uint64_t	 duplicates;
	uint64_t	 errors;
	uint64_t	 events;	/* room: chat events, not counted */
	char		 error[512];	/* the first error */

	/* The frame being handled after a full decode (room mode checks the
	 * server's members and keeps the first delivery of each message). */
	const struct ac_message *cur_msg;
	const uint8_t	*cur_frame;
	size_t		 cur_frame_len;

	/* The mode's hooks. */
	void		(*on_ready)(struct conn *);
	void		(*on_message)(struct conn *, const uint8_t *, size_t,
			    size_t, const char *);
	void		(*on_pong)(struct conn *);
	void		(*on_stop)(struct bench *);
	int		(*is_drained)(struct bench *);
	int		(*match_sent)(struct conn *, const uint8_t *, size_t);
	void		(*on_finish)(struct bench *);
	void		(*free_state)(struct bench *);
	void		 *mode_state;

	/* One read buffer for every connection (one thread reads). */
	uint8_t		*rbuf;
	size_t		 rbuf_size;

	/* Idle mode: the server's resident memory, in KiB. */
	long		 rss_base;
	long		 rss_held;
	long		 rss_end;
};

/* main.c */
double		 bench_now(void);
uint64_t	 bench_now_ns(void);
void		 bench_fail(struct bench *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 bench_start_window(struct bench *);
void		 bench_check_drained(struct bench *);

/* cpu.c */
void		 cpu_sample(struct cpu_sample *, pid_t);
void		 cpu_use(const struct bench *, struct cpu_use *);

/* target.c */
int		 target_parse(struct target *, const char *);
int		 target_connect(const struct target *);
void		 target_free(struct target *);

/* conn.c */
struct conn	*conn_new(struct bench *, int, enum conn_role);
int		 conn_start(struct conn *);
uint8_t		*conn_reserve(struct conn *, size_t);
void		 conn_write(struct conn *, const void *, size_t);
void		 conn_write_evbuffer(struct conn *, struct evbuffer *);
void		 conn_flush_soon(struct conn *);
void		 conn_flush_all(struct bench *);
void		 conn_close(struct conn *);
void		 conn_free(struct conn *);
void		 conn_connect_more(struct bench *);

/* session.c */
size_t		 session_parse(struct conn *, const uint8_t *, size_t);
void		 session_ping(struct conn *);

/* raw.c */
size_t		 raw_parse(struct conn *, const uint8_t *, size_t);
int		 raw_tmpl(struct conn *);

/* resp.c */
size_t		 resp_parse(struct conn *, const uint8_t *, size_t);
void		 resp_subscribe(struct conn *);
int		 resp_tmpl(struct conn *);

/* tmpl.c */
int		 tmpl_protocol(struct tmpl *, const struct bench *,
		    const char *, size_t);
int		 tmpl_wrap(struct tmpl *, const uint8_t *, size_t,
		    const uint8_t *, size_t, size_t);
void		 tmpl_fill(uint8_t *, size_t);
void		 tmpl_stamp(struct tmpl *, uint64_t, uint64_t, uint32_t);
void		 tmpl_save(const struct tmpl *, uint8_t *);
int		 tmpl_is_sent(const struct tmpl *, const uint8_t *,
		    const uint8_t *, size_t);
int		 tmpl_content_ok(const struct bench *, const uint8_t *,
		    size_t);
void		 tmpl_free(struct tmpl *);

/* histogram.c */
void		 histogram_add(struct histogram *, uint64_t);
uint64_t	 histogram_quantile(const struct histogram *, double);

/* echo.c */
int		 echo_setup(struct bench *);

/* fanout.c */
int		 fanout_setup(struct bench *);

/* idle.c */
int		 idle_setup(struct bench *);

/* report.c */
long		 report_rss_kib(pid_t);
void		 report_print(struct bench *);

#endif /* BENCH_H */
