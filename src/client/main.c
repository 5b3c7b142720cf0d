/*
 * main.c - the asyncchat client program: arguments, key, event loop set-up,
 * then one of the two modes (interactive.c, filemode.c).
 *
 *	asyncchat [options] tcp interactive [host] [port]
 *	asyncchat [options] tcp file FILE [host] [port]
 *	asyncchat [options] tls interactive [host] [port]
 *	asyncchat [options] tls file FILE [host] [port]
 *	asyncchat [options] unix interactive [path]
 *	asyncchat [options] unix file FILE [path]
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "cli.h"
#include "xmalloc.h"

#define DEFAULT_HOST	"localhost"
#define DEFAULT_PORT	"9999"
/*
 * The shipped asyncchatd listens on /run/asyncchat/chat.sock (a directory
 * only its own user may create); the original Python server, and servers
 * configured like it, on /tmp/chat.sock. Without a path the client takes
 * the first that is a socket, else the original's.
 */
#define DEFAULT_PATH	"/run/asyncchat/chat.sock"
#define ORIGINAL_PATH	"/tmp/chat.sock"
#define KEY_FILE_MAX	65536
#define KEY_ENV		"ASYNCCHAT_KEY"

enum {
	OPT_KEY_FILE = 256,
	OPT_JSON,
	OPT_PIPELINE,
	OPT_INTERVAL,
	OPT_REPLY_TIMEOUT,
	OPT_CA,
	OPT_INSECURE,
	OPT_CERT,
	OPT_CERT_KEY,
	OPT_NICK,
	OPT_ROOM,
	OPT_RECONNECT,
};

static const struct option main_options[] = {
	{ "key",		required_argument,	NULL, 'k' },
	{ "key-file",		required_argument,	NULL, OPT_KEY_FILE },
	{ "json",		no_argument,		NULL, OPT_JSON },
	{ "quiet",		no_argument,		NULL, 'q' },
	{ "pipeline",		no_argument,		NULL, OPT_PIPELINE },
	{ "interval",		required_argument,	NULL, OPT_INTERVAL },
	{ "reply-timeout",	required_argument,	NULL,
	    OPT_REPLY_TIMEOUT },
	{ "ca",			required_argument,	NULL, OPT_CA },
	{ "insecure",		no_argument,		NULL, OPT_INSECURE },
	{ "cert",		required_argument,	NULL, OPT_CERT },
	{ "cert-key",		required_argument,	NULL, OPT_CERT_KEY },
	{ "nick",		required_argument,	NULL, OPT_NICK },
	{ "room",		required_argument,	NULL, OPT_ROOM },
	{ "reconnect",		no_argument,		NULL, OPT_RECONNECT },
	{ "help",		no_argument,		NULL, 'h' },
	{ "version",		no_argument,		NULL, 'V' },
	{ NULL,			0,			NULL, 0 }
};

/* Print the usage text to f. */
static void
main_usage(FILE *f)
{
	fprintf(f,
"usage: asyncchat [options] tcp interactive [host] [port]\n"
"       asyncchat [options] tcp file FILE [host] [port]\n"
"       asyncchat [options] tls interactive [host] [port]\n"
"       asyncchat [options] tls file FILE [host] [port]\n"
"       asyncchat [options] unix interactive [path]\n"
"       asyncchat [options] unix file FILE [path]\n"
"\n"
"Defaults: host " DEFAULT_HOST ", port " DEFAULT_PORT ", path "
DEFAULT_PATH " if it is a socket,\nelse " ORIGINAL_PATH ". FILE - is standard input.\n"
"\n"
"options:\n"
"  -k, --key KEY          shared HMAC key (default: $" KEY_ENV ", else\n"
"                         \"" AC_DEFAULT_KEY "\"); other users see it in ps:\n"
"                         prefer --key-file or " KEY_ENV "\n"
"      --key-file FILE    read the key from FILE (without a final newline)\n"
"      --nick NAME        chat: start with this nick\n"
"      --room ROOM        chat: start in ROOM too (repeatable; the last is\n"
"                         the current room); file mode sends lines there\n"
"      --reconnect        interactive: when the connection is lost, connect\n"
"                         again (with backoff) and rejoin the rooms\n"
"      --json             print received messages as JSON, one per line\n"
"  -q, --quiet            print nothing but errors\n"
"      --pipeline         file mode: send as fast as flow control allows\n"
"      --interval MS      file mode: wait MS milliseconds between lines\n"
"      --reply-timeout S  file mode: wait S seconds at most for a reply (1)\n"
"      --ca FILE          tls: trust the CAs in FILE (default: the system's)\n"
"      --insecure         tls: do not verify the server's certificate or name\n"
"      --cert FILE        tls: present the client certificate in FILE\n"
"      --cert-key FILE    tls: its private key (default: in the --cert FILE)\n"
"  -h, --help             show this help\n"
"  -V, --version          show the version\n");
}

/* The Unix socket to use when none is given: the shipped server's if it
 * is there, else the original's. */
static const char *
main_default_path(void)
{
	struct stat	sb;

	if (stat(DEFAULT_PATH, &sb) == 0 && S_ISSOCK(sb.st_mode))
		return (DEFAULT_PATH);
	return (ORIGINAL_PATH);
}

/* Report a usage error and exit with status 2. */
static void __attribute__((noreturn))
main_bad_usage(const char *fmt, const char *arg)
{
	fputs("asyncchat: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\nTry 'asyncchat --help'.\n", stderr);
	exit(2);
}

/* Report a usage error about an argument and why, and exit with status 2. */
static void __attribute__((noreturn))
main_bad_usage2(const char *fmt, const char *arg, const char *why)
{
	fputs("asyncchat: ", stderr);
	fprintf(stderr, fmt, arg, why);
	fputs("\nTry 'asyncchat --help'.\n", stderr);
	exit(2);
}

/* Parse a non-negative decimal number of at most max; -1 if invalid. */
static long
main_number(const char *s, long max)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max)
		return -1;
	return v;
}

/* Parse seconds with an optional fraction ("1", "0.25") into ms; -1 if bad. */
static long
main_seconds(const char *s)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0) || v > 86400)
		return -1;
	return (long)(v * 1000 + 0.5);
}

/* Read a key file into a new key; exits with a message on failure. */
static struct ac_key *
main_key_file(const char *path)
{
	FILE		*f;
	char		*buf;
	size_t		 len;
	struct ac_key	*key;

	if ((f = fopen(path, "rb")) == NULL) {
		output_error("key file %s: %s", path, strerror(errno));
		exit(1);
	}
	buf = ac_xmalloc(KEY_FILE_MAX + 1);
	len = fread(buf, 1, KEY_FILE_MAX + 1, f);
	if (ferror(f) || len > KEY_FILE_MAX) {
		output_error("key file %s: %s", path, ferror(f) ?
		    strerror(errno) : "too large");
		exit(1);
	}
	fclose(f);
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	key = ac_key_new(buf, len);
	memset(buf, 0, KEY_FILE_MAX + 1);
	free(buf);
	return key;
}

/*
 * Make the key from -k, --key-file, $ASYNCCHAT_KEY or the default, in that
 * order. The -k argument is then overwritten in place: /proc/PID/cmdline
 * (what ps shows) reads the process's own argument memory, so the key no
 * longer shows there once this has run. It did show until then, which is
 * why the man page says to prefer --key-file or the environment.
 */
static struct ac_key *
main_key(char *key_arg, const char *key_file)
{
	struct ac_key	*key;
	const char	*env;

	if (key_file != NULL)
		return main_key_file(key_file);
	if (key_arg != NULL) {
		key = ac_key_new(key_arg, strlen(key_arg));
		memset(key_arg, 0, strlen(key_arg));
		return key;
	}
	if ((env = getenv(KEY_ENV)) != NULL) {
		if (*env == '\0')
			main_bad_usage("%s", KEY_ENV " is set but empty");
		return ac_key_new(env, strlen(env));
	}
	return ac_key_new(AC_DEFAULT_KEY, strlen(AC_DEFAULT_KEY));
}

/* Start connecting to the server named on the command line; 0 or -1. */
int
cli_connect(struct cli *cli)
{
	char	*cause = NULL;
	int	 rc;

	if (cli->transport == AC_CLIENT_UNIX)
		rc = ac_client_connect_unix(cli->client, cli->path, &cause);
	else if (cli->transport == AC_CLIENT_TLS)
		rc = ac_client_connect_tls(cli->client, cli->host, cli->port,
		    &cli->tls, &cause);
	else
		rc = ac_client_connect_tcp(cli->client, cli->host, cli->port,
		    &cause);
	if (rc != 0) {
		output_error("%s", cause != NULL ? cause : "cannot connect");
		free(cause);
	}
	return rc;
}

/* The exit status for a connection that ended other than on our request. */
int
cli_end_status(enum ac_client_end end)
{
	if (end == AC_CLIENT_END_PROTOCOL)
		return CLI_EXIT_PROTOCOL;
	return CLI_EXIT_FAILURE;
}

/*
 * Hand the client what the next session_ack should carry: the nick and
 * rooms asked for, and later the ones we have (chat_ack_extra).
 */
void
cli_set_ack(struct cli *cli)
{
	struct json_object	*extra;

	extra = chat_ack_extra(&cli->chat);
	if (ac_client_set_ack_extra(cli->client, extra) != 0)
		output_error("too many rooms to rejoin in one session_ack");
	json_object_put(extra);
}

/* Ignore SIGPIPE: a closed socket shows up as a write error instead. */
void
cli_install_signal_ignores(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
}

/* Parse the arguments, set up the loop and run the chosen mode. */
int
main(int argc, char **argv)
{
	/* Static: what it holds lives until exit, usage errors included. */
	static struct cli cli;
	const char	*key_file = NULL, *mode;
	char		*key_arg = NULL;
	const char	*problem;
	int		 ch, interactive, nargs, tls_opts = 0;
	long		 v;
	char		**args;

	memset(&cli, 0, sizeof cli);
	cli.rooms = ac_xcalloc(argc, sizeof *cli.rooms);
	cli.reply_timeout_ms = 1000;
	ac_client_tls_options_default(&cli.tls);

	while ((ch = getopt_long(argc, argv, "hk:qV", main_options,
	    NULL)) != -1) {
		switch (ch) {
		case 'k':
			key_arg = optarg;
			break;
		case OPT_KEY_FILE:
			key_file = optarg;
			break;
		case OPT_JSON:
			cli.json = 1;
			break;
		case 'q':
			cli.quiet = 1;
			break;
		case OPT_PIPELINE:
			cli.pipeline = 1;
			break;
		case OPT_INTERVAL:
			if ((v = main_number(optarg, 3600000)) < 0)
				main_bad_usage("bad --interval: %s", optarg);
			cli.interval_ms = v;
			break;
		case OPT_REPLY_TIMEOUT:
			if ((v = main_seconds(optarg)) < 0)
				main_bad_usage("bad --reply-timeout: %s",
				    optarg);
			cli.reply_timeout_ms = v;
			break;
		case OPT_CA:
			cli.tls.ca_file = optarg;
			tls_opts = 1;
			break;
		case OPT_INSECURE:
			cli.tls.insecure = 1;
			tls_opts = 1;
			break;
		case OPT_CERT:
			cli.tls.cert_file = optarg;
			tls_opts = 1;
			break;
		case OPT_CERT_KEY:
			cli.tls.key_file = optarg;
			tls_opts = 1;
			break;
		case OPT_NICK:
			if ((problem = chat_nick_problem(optarg)) != NULL)
				main_bad_usage2("bad --nick %s: %s", optarg,
				    problem);
			cli.nick = optarg;
			break;
		case OPT_ROOM:
			if (*optarg == '#')
				optarg++;
			if ((problem = chat_room_problem(optarg)) != NULL)
				main_bad_usage2("bad --room %s: %s", optarg,
				    problem);
			cli.rooms[cli.nrooms++] = optarg;
			break;
		case OPT_RECONNECT:
			cli.reconnect = 1;
			break;
		case 'h':
			main_usage(stdout);
			return 0;
		case 'V':
			printf("asyncchat %s (libasyncchat %s)\n",
			    PACKAGE_VERSION, ac_version());
			return 0;
		default:
			fputs("Try 'asyncchat --help'.\n", stderr);
			return 2;
		}
	}
	args = argv + optind;
	nargs = argc - optind;
	if (nargs < 2) {
		main_usage(stderr);
		return 2;
	}
	if (key_arg != NULL && key_file != NULL)
		main_bad_usage("%s", "give --key or --key-file, not both");

	mode = args[1];
	if (strcmp(mode, "interactive") == 0)
		interactive = 1;
	else if (strcmp(mode, "file") == 0) {
		interactive = 0;
		if (nargs < 3)
			main_bad_usage("%s", "file mode needs a FILE (- for "
			    "standard input)");
		cli.file = args[2];
	} else
		main_bad_usage("unknown mode: %s (interactive or file)", mode);
	if (!interactive && cli.reconnect)
		main_bad_usage("%s", "--reconnect is for interactive mode");
	args += interactive ? 2 : 3;
	nargs -= interactive ? 2 : 3;

	if (strcmp(argv[optind], "tcp") == 0 ||
	    strcmp(argv[optind], "tls") == 0) {
		cli.transport = strcmp(argv[optind], "tls") == 0 ?
		    AC_CLIENT_TLS : AC_CLIENT_TCP;
		if (nargs > 2)
			main_bad_usage("%s", "too many arguments");
		cli.host = nargs > 0 ? args[0] : DEFAULT_HOST;
		cli.port = nargs > 1 ? args[1] : DEFAULT_PORT;
		if (main_number(cli.port, 65535) <= 0)
			main_bad_usage("bad port: %s", cli.port);
	} else if (strcmp(argv[optind], "unix") == 0) {
		cli.transport = AC_CLIENT_UNIX;
		if (nargs > 1)
			main_bad_usage("%s", "too many arguments");
		cli.path = nargs > 0 ? args[0] : main_default_path();
	} else
		main_bad_usage("unknown transport: %s (tcp, tls or unix)",
		    argv[optind]);
	if (tls_opts && cli.transport != AC_CLIENT_TLS)
		main_bad_usage("%s", "--ca, --insecure, --cert and --cert-key "
		    "are for tls only");
	if (cli.tls.insecure && cli.tls.ca_file != NULL)
		main_bad_usage("%s", "give --ca or --insecure, not both");
	if (cli.tls.key_file != NULL && cli.tls.cert_file == NULL)
		main_bad_usage("%s", "--cert-key needs --cert");
	if (cli.tls.insecure)
		output_error("warning: --insecure: the server's certificate "
		    "and name are not checked; anyone in between can read "
		    "and change the chat");

	cli.key = main_key(key_arg, key_file);
	chat_init(&cli.chat, cli.nick, cli.rooms, cli.nrooms);

	cli_install_signal_ignores();
	if ((cli.base = event_base_new()) == NULL) {
		output_error("cannot create the event loop");
		return 1;
	}
	if (interactive)
		cli.status = interactive_run(&cli);
	else
		cli.status = filemode_run(&cli);

	ac_client_free(cli.client);
	event_base_free(cli.base);
	ac_key_free(cli.key);
	chat_clear(&cli.chat);
	free(cli.rooms);
	return cli.status;
}
