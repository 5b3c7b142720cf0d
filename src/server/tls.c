/*
 * tls.c - the server's TLS context: certificate, key and optional client
 * CA, loaded once with the configuration (so `asyncchatd -t` sees a bad
 * file) and shared by every tls:// listener until the next reload.
 *
 * A reload makes a new SSL_CTX; each SSL holds a reference to the context
 * it was made from, so sessions that are already open keep the old
 * certificate until they end.
 *
 * tls_bev_failure() says why a TLS bufferevent failed, for every
 * transport that has one (conn.c, http.c, ws.c).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "xmalloc.h"
#include "server.h"
#include "tls_ciphers.h"

#define TLS_SESSION_CONTEXT	"asyncchatd"

/*
 * Refuse to ask for a pass phrase: there is no terminal to ask on, and a
 * prompt would stop the server at start or, worse, on SIGHUP.
 */
static int
tls_no_password_cb(char *buf, int size, int rwflag, void *arg)
{
	return (0);
}

/* Describe the first queued OpenSSL error (or fallback) and clear them. */
static const char *
tls_last_error(char *buf, size_t len, const char *fallback)
{
	unsigned long	 e;
	const char	*reason;

	if ((e = ERR_peek_last_error()) == 0) {
		snprintf(buf, len, "%s", fallback);
		return (buf);
	}
	reason = ERR_reason_error_string(e);
	if (reason != NULL)
		snprintf(buf, len, "%s", reason);
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return (buf);
}

/* Non-zero if e says a key does not go with its certificate. */
static int
tls_is_mismatch(unsigned long e)
{
	return (ERR_GET_LIB(e) == ERR_LIB_X509 &&
	    (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
	    ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH));
}

/* Describe one OpenSSL error code for a log line. */
const char *
tls_error_string(unsigned long e, char *buf, size_t len)
{
	const char	*reason;

	reason = ERR_reason_error_string(e);
	if (reason != NULL)
		snprintf(buf, len, "%s", reason);
	else
		ERR_error_string_n(e, buf, len);
	return (buf);
}

/*
 * Make the server context from PEM files: a certificate chain, its key
 * and, if ca is not NULL, the CAs whose client certificates are required.
 * Returns NULL with *cause (naming which key went wrong: the caller adds
 * the file and line) on any error; *which is "tls_cert", "tls_key" or
 * "tls_client_ca".
 */
struct ssl_ctx_st *
tls_server_ctx(const char *cert, const char *key, const char *ca,
    const char **which, char **cause)
{
	SSL_CTX			*ctx;
	STACK_OF(X509_NAME)	*names;
	char			 err[256];

	ERR_clear_error();
	*which = "tls_cert";
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		ac_xasprintf(cause, "cannot make a TLS context: %s",
		    tls_last_error(err, sizeof err, "unknown error"));
		return (NULL);
	}

	/*
	 * TLS 1.2 and newer only, and on TLS 1.2 only ECDHE with AEAD
	 * ciphers (tls_ciphers.h says why). No compression (CRIME), no
	 * renegotiation (a cheap way for a client to make us do expensive
	 * work), and our cipher order rather than the client's. The session
	 * id context lets resumption work when client certificates are
	 * verified.
	 */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_set_cipher_list(ctx, AC_TLS12_CIPHERS) != 1) {
		ac_xasprintf(cause, "cannot set the TLS 1.2 cipher list: %s",
		    tls_last_error(err, sizeof err, "unknown error"));
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/*
	 * A peer that closes without close_notify is an ordinary EOF:
	 * frames carry their own length and HMAC, so truncation cannot
	 * pass a partial frame off as a whole one.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx,
	    (const unsigned char *)TLS_SESSION_CONTEXT,
	    strlen(TLS_SESSION_CONTEXT));
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_password_cb);

	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ac_xasprintf(cause, "%s: cannot load the certificate: %s",
		    cert, tls_last_error(err, sizeof err, "unknown error"));
		goto fail;
	}
	*which = "tls_key";
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		if (tls_is_mismatch(ERR_peek_last_error()))
			ac_xasprintf(cause, "%s does not match the "
			    "certificate in %s: %s", key, cert, tls_last_error(
			    err, sizeof err, "key mismatch"));
		else
			ac_xasprintf(cause, "%s: cannot load the private key "
			    "(PEM, not encrypted): %s", key, tls_last_error(
			    err, sizeof err, "unknown error"));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ac_xasprintf(cause, "%s does not match the certificate in "
		    "%s: %s", key, cert, tls_last_error(err, sizeof err,
		    "key mismatch"));
		goto fail;
	}

	if (ca != NULL) {
		*which = "tls_client_ca";
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			ac_xasprintf(cause, "%s: cannot load the CA "
			    "certificates: %s", ca, tls_last_error(err,
			    sizeof err, "unknown error"));
			goto fail;
		}
		if ((names = SSL_load_client_CA_file(ca)) == NULL) {
			ac_xasprintf(cause, "%s: no CA certificate names: %s",
			    ca, tls_last_error(err, sizeof err, "empty file"));
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	ERR_clear_error();
	return (ctx);

fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return (NULL);
}

/* Drop the configuration's reference to a context; NULL is allowed. */
void
tls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

/*
 * Why a TLS bufferevent reported an error: the OpenSSL reasons queued on
 * it (each once) and why a client certificate was refused, into why.
 * Returns 1 if it is a TLS failure, or 0 if it is a plain socket error
 * after a good handshake (up: the handshake was done); err is the socket
 * error, said when OpenSSL has no reason. The error queue is cleared.
 */
int
tls_bev_failure(struct bufferevent *bev, int up, int err, char *why,
    size_t len)
{
	SSL		*ssl = bufferevent_openssl_get_ssl(bev);
	unsigned long	 e;
	long		 vr;
	char		 one[256];
	size_t		 n;

	why[0] = '\0';
	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		/* libevent also queues SSL_get_error() codes: not reasons. */
		if (ERR_GET_LIB(e) == 0)
			continue;
		tls_error_string(e, one, sizeof one);
		if (strstr(why, one) != NULL)
			continue;
		n = strlen(why);
		snprintf(why + n, len - n, "%s%s", n != 0 ? "; " : "", one);
	}
	if (ssl != NULL && (vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		n = strlen(why);
		snprintf(why + n, len - n, "%s%s", n != 0 ? ": " : "",
		    X509_verify_cert_error_string(vr));
	}
	ERR_clear_error();
	if (why[0] != '\0')
		return (1);
	if (up)
		return (0);
	snprintf(why, len, "%s", err != 0 ?
	    evutil_socket_error_to_string(err) : "connection closed");
	return (1);
}
