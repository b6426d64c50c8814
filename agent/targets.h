/* agent/targets.h - what TLS stack a file carries, for discovery.
 * Owns: the stack kinds the agent hooks, telling a mapped library's kind from its file
 * name (libssl.so*, libgnutls.so*, libssl3.so* + libnspr4.so*) and an executable's from the data
 * functions it defines (OpenSSL/BoringSSL linked statically: SSL_read and SSL_write in its own
 * symbol table).
 * Does not own: attaching (probe.c) or choosing probe sites (sites.c). */
#ifndef AGENT_TARGETS_H
#define AGENT_TARGETS_H

#include <stdbool.h>
#include <stddef.h>

enum target_kind {
	TARGET_NONE = 0, /* not a TLS stack the agent hooks */
	TARGET_OPENSSL,	 /* OpenSSL 1.1/3.x or BoringSSL API: SSL_read/SSL_write */
	TARGET_GNUTLS,	 /* GnuTLS 3.x: gnutls_record_send2 / _gnutls_recv_int */
	TARGET_NSS,	 /* NSS: libssl3 (SSL_ImportFD) + libnspr4 (PR_Read/PR_Write...) */
	TARGET_GO,	 /* Go crypto/tls: (*Conn).Read/Write in a Go executable */
	TARGET_KIND_N
};

/* "none", "openssl", "gnutls", "nss", "go". */
const char *targets_kind_name(enum target_kind kind);

/* The kind of a shared library from its path's file name: libssl.so* is OpenSSL,
 * libgnutls.so* GnuTLS, NSS's libssl3.so* and NSPR's libnspr4.so* NSS; anything else
 * TARGET_NONE. */
enum target_kind targets_lib_kind(const char *path);
/* True for NSPR's libnspr4.so* (NSS's data calls; it serves plain I/O too). */
bool targets_is_nspr(const char *path);

/* The kind of the executable at path from the functions it defines itself: SSL_read and
 * SSL_write (statically linked OpenSSL/BoringSSL), or a Go program (.go.buildinfo) with
 * crypto/tls.(*Conn).Read and Write (symbol table, or .gopclntab when stripped). Returns
 * the kind (TARGET_NONE when it defines none: err says why), or -errno when the file
 * cannot be read as ELF (err says why). */
int targets_exe_kind(const char *path, char *err, size_t errlen);

#endif
