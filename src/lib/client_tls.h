/*
 * client_tls.h - TLS for the client (client_tls.c); private to the library.
 */
#ifndef AC_LIB_CLIENT_TLS_H
#define AC_LIB_CLIENT_TLS_H

#include <stddef.h>

struct bufferevent;
struct event_base;
struct ssl_ctx_st;
struct ac_client_tls_options;

struct ssl_ctx_st *client_tls_ctx(const struct ac_client_tls_options *opts,
	    char **cause);
void	client_tls_ctx_free(struct ssl_ctx_st *ctx);
struct bufferevent *client_tls_wrap(struct event_base *base,
	    struct bufferevent *tcp, struct ssl_ctx_st *ctx, const char *host,
	    int verify);
int	client_tls_error(struct bufferevent *bev, char *buf, size_t len);

#endif /* AC_LIB_CLIENT_TLS_H */
