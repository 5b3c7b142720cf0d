/*
 * cli.h - the asyncchat client program: shared state and prototypes,
 * grouped by the file that defines them.
 */
#ifndef AC_CLI_H
#define AC_CLI_H

#include <stddef.h>

#include <asyncchat/asyncchat.h>

struct event_base;

/* Exit statuses (asyncchat(1), EXIT STATUS); 128+N after signal N. */
#define CLI_EXIT_OK		0
#define CLI_EXIT_FAILURE	1	/* connection, handshake, server */
#define CLI_EXIT_USAGE		2
#define CLI_EXIT_PROTOCOL	3	/* the server broke the protocol or a
					   frame failed verification */

/* Which server the program talks to and how it behaves (from argv). */
struct cli {
	enum ac_client_transport	 transport;
	const char			*host;		/* tcp, tls */
	const char			*port;		/* tcp, tls */
	const char			*path;		/* unix */
	struct ac_client_tls_options	 tls;		/* tls */
	const char			*file;		/* "-" is stdin */

	int				 json;
	int				 quiet;
	int				 pipeline;
	long				 interval_ms;
	long				 reply_timeout_ms;

	struct event_base		*base;
	struct ac_key			*key;
	struct ac_client		*client;
	int				 status;	/* exit status */
};

/* main.c */
int	 cli_connect(struct cli *);
int	 cli_end_status(enum ac_client_end);
void	 cli_install_signal_ignores(void);

/* output.c */
char	*output_format(const struct cli *, enum ac_msg_type, const char *,
	    const char *, const void *, size_t);
void	 output_error(const char *, ...)
	    __attribute__((format(printf, 1, 2)));
int	 output_is_text(const char *, const void *, size_t);
char	*output_escape(const void *, size_t);

/* interactive.c */
int	 interactive_run(struct cli *);

/* filemode.c */
int	 filemode_run(struct cli *);

#endif /* AC_CLI_H */
