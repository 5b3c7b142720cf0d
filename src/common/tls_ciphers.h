/*
 * tls_ciphers.h - the TLS 1.2 cipher suites that asyncchatd and the client
 * library accept, shared so that both ends keep one policy.
 *
 * ECDHE key exchange with an AEAD cipher (AES-GCM or ChaCha20-Poly1305)
 * only. Left out on purpose: CBC suites, whose MAC-then-encrypt padding
 * has given one timing oracle after another (Lucky Thirteen and its
 * successors), and with them every suite with a SHA-1 MAC; static RSA key
 * exchange, which has no forward secrecy (a stolen server key decrypts
 * every recorded session); finite-field DHE, slow and only as strong as
 * its parameters. Every TLS 1.2 implementation of the last decade offers
 * one of these. ECDSA and RSA certificates both work. TLS 1.3 suites are
 * OpenSSL's defaults, which are all AEAD with ephemeral key exchange.
 */
#ifndef AC_TLS_CIPHERS_H
#define AC_TLS_CIPHERS_H

#define AC_TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:" \
	"ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:" \
	"ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:" \
	"ECDHE-RSA-CHACHA20-POLY1305"

#endif /* AC_TLS_CIPHERS_H */
