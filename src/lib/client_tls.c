/*
 * client_tls.c - TLS for the asynchronous client: the SSL_CTX made from
 * ac_client_tls_options, the switch from a connected TCP bufferevent to a
 * bufferevent_openssl on the same socket, and readable error texts.
 *
 * The TLS bufferevent sits on the socket itself rather than filtering the
 * TCP bufferevent: a filter's output counts as written once it reaches
 * the TCP bufferevent, so "output empty" would not mean "sent", and a
 * disconnect frame could be lost when the client closes after it.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <asyncchat/client.h>

#include "client_tls.h"
#include "tls_ciphers.h"

/* Refuse to prompt for a pass phrase: a library has no terminal. */
static int
client_tls_no_password_cb(char *buf, int size, int rwflag, void *arg)
{
	return 0;
}

/* Set *cause to fmt, then ": " and the newest OpenSSL reason; clear them. */
static void
client_tls_cause(char **cause, const char *fmt, ...)
{
	va_list		 ap;
	char		 what[512], reason[256];
	unsigned long	 e;
	const char	*r;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if ((e = ERR_peek_last_error()) == 0)
		snprintf(reason, sizeof reason, "unknown error");
	else if ((r = ERR_reason_error_string(e)) != NULL)
		snprintf(reason, sizeof reason, "%s", r);
	else
		ERR_error_string_n(e, reason, sizeof reason);
	ERR_clear_error();
	if (cause != NULL && asprintf(cause, "%s: %s", what, reason) == -1)
		*cause = NULL;
}

/*
 * Make the client context: TLS 1.2 or newer, the CAs to trust (the file
 * given or the system's store) unless verification is off, and the
 * client certificate if one is given. Reads the files now, once.
 */
struct ssl_ctx_st *
client_tls_ctx(const struct ac_client_tls_options *o, char **cause)
{
	SSL_CTX		*ctx;
	const char	*key;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		client_tls_cause(cause, "cannot make a TLS context");
		return NULL;
	}
	/* On TLS 1.2 only ECDHE with AEAD ciphers: tls_ciphers.h says why. */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_set_cipher_list(ctx, AC_TLS12_CIPHERS) != 1) {
		client_tls_cause(cause, "cannot set the TLS 1.2 cipher list");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* Frames are self-delimiting and signed: a missing close_notify
	 * cannot truncate one unnoticed, so it is a plain EOF. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_CTX_set_default_passwd_cb(ctx, client_tls_no_password_cb);

	if (o->insecure)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (o->ca_file != NULL) {
			if (SSL_CTX_load_verify_locations(ctx, o->ca_file,
			    NULL) != 1) {
				client_tls_cause(cause, "CA file %s",
				    o->ca_file);
				goto fail;
			}
		} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			client_tls_cause(cause, "system CA store");
			goto fail;
		}
	}

	if (o->cert_file != NULL) {
		key = o->key_file != NULL ? o->key_file : o->cert_file;
		if (SSL_CTX_use_certificate_chain_file(ctx,
		    o->cert_file) != 1) {
			client_tls_cause(cause, "certificate %s",
			    o->cert_file);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, key,
		    SSL_FILETYPE_PEM) != 1) {
			client_tls_cause(cause, "private key %s (PEM, not "
			    "encrypted)", key);
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			client_tls_cause(cause, "private key %s does not "
			    "match certificate %s", key, o->cert_file);
			goto fail;
		}
	} else if (o->key_file != NULL) {
		if (cause != NULL && asprintf(cause, "private key %s given "
		    "without a certificate", o->key_file) == -1)
			*cause = NULL;
		goto fail;
	}
	ERR_clear_error();
	return ctx;

fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Drop a context; NULL is allowed. */
void
client_tls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

/*
 * Move the socket of a connected TCP bufferevent to a new TLS one that
 * starts the handshake, checking the server's name unless verify is 0.
 * On success tcp is freed (without closing the socket, which the new
 * bufferevent now owns); on failure NULL is returned and tcp is intact.
 */
struct bufferevent *
client_tls_wrap(struct event_base *base, struct bufferevent *tcp,
    struct ssl_ctx_st *ctx, const char *host, int verify)
{
	struct bufferevent	*bev;
	struct in6_addr		 a6;
	struct in_addr		 a4;
	SSL			*ssl;
	evutil_socket_t		 fd;
	int			 ip;

	if ((fd = bufferevent_getfd(tcp)) < 0 || (ssl = SSL_new(ctx)) == NULL)
		goto fail;

	/*
	 * An address is checked against the certificate's IP names and is
	 * not sent as SNI (RFC 6066 allows only host names there).
	 */
	ip = inet_pton(AF_INET, host, &a4) == 1 ||
	    inet_pton(AF_INET6, host, &a6) == 1;
	if (!ip && SSL_set_tlsext_host_name(ssl, host) != 1)
		goto fail_ssl;
	if (verify) {
		if (ip) {
			if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
			    host) != 1)
				goto fail_ssl;
		} else {
			SSL_set_hostflags(ssl,
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (SSL_set1_host(ssl, host) != 1)
				goto fail_ssl;
		}
	}

	/* The new bufferevent takes the socket; tcp must not close it. */
	bufferevent_disable(tcp, EV_READ | EV_WRITE);
	bufferevent_setfd(tcp, -1);
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		/* libevent freed ssl, whose socket BIO closed fd. */
		ERR_clear_error();
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_free(tcp);
	return bev;

fail_ssl:
	SSL_free(ssl);
fail:
	ERR_clear_error();
	return NULL;
}

/*
 * Describe what went wrong with TLS on bev into buf: the OpenSSL reasons
 * and, when a certificate was refused, why ("certificate verify failed:
 * hostname mismatch"). Returns 0 if there was nothing to describe.
 */
int
client_tls_error(struct bufferevent *bev, char *buf, size_t len)
{
	SSL		*ssl = bufferevent_openssl_get_ssl(bev);
	unsigned long	 e;
	long		 vr;
	const char	*r;
	char		 one[256];
	size_t		 used;

	buf[0] = '\0';
	if (ssl == NULL)
		return 0;
	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		/* libevent also queues SSL_get_error() codes: skip them. */
		if (ERR_GET_LIB(e) == 0)
			continue;
		if ((r = ERR_reason_error_string(e)) != NULL)
			snprintf(one, sizeof one, "%s", r);
		else
			ERR_error_string_n(e, one, sizeof one);
		if (strstr(buf, one) != NULL)
			continue;
		used = strlen(buf);
		snprintf(buf + used, len - used, "%s%s", used != 0 ? "; " : "",
		    one);
	}
	if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) &&
	    (vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		used = strlen(buf);
		snprintf(buf + used, len - used, "%s%s", used != 0 ? ": " : "",
		    X509_verify_cert_error_string(vr));
	}
	ERR_clear_error();
	return buf[0] != '\0';
}
