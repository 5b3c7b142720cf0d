/*
 * hostport.h - "HOST:PORT" and "[IPV6]:PORT", the address form of the
 * server's listen URLs and of metrics_listen, split in one place.
 */
#ifndef AC_HOSTPORT_H
#define AC_HOSTPORT_H

/*
 * Split s into a host (without brackets) and a port of 0 to 65535, both
 * heap strings. An IPv6 address must be in brackets, and the host may not
 * be empty. Returns 0, or -1 with a static reason in *why.
 */
int	hostport_parse(const char *s, char **host, char **port,
	    const char **why);

#endif /* AC_HOSTPORT_H */
