/* agent/sites.h - where the data-call uprobes of one library or binary go.
 * Owns: reading the target's ELF (libelf) and decoding SSL_read/SSL_write and their _ex
 * variants (Capstone) to choose, per function, the cheapest uprobe site that sees the
 * same arguments: the exported symbol, or the internal function it calls as
 * (SSL *, void *buf, size_t num, size_t *processed) when the symbol's first instruction
 * is single-stepped by x86 uprobes and the callee's first instruction is emulated.
 * Anything not proven falls back to the exported symbol. The same for GnuTLS's data
 * functions and for Go's crypto/tls (symbol table, or .gopclntab/.itablink through
 * gopclntab.h when stripped; PIE relocations applied).
 * Does not own: attaching (probe.c) or logging. Pure: a path or bytes in, a table out. */
#ifndef AGENT_SITES_H
#define AGENT_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sites_mode {
	SITES_AUTO = 0, /* internal sites where proven */
	SITES_EXPORTED, /* always the exported symbols (the old way) */
};

/* The data functions, by index. Reads and writes each pair a plain and an _ex variant. */
enum site_func { SITE_SSL_WRITE = 0, SITE_SSL_READ, SITE_SSL_WRITE_EX, SITE_SSL_READ_EX, SITE_N };

#define SITE_NAME_LEN 64
#define SITE_WHY_LEN 160

struct site {
	bool present;		    /* the exported symbol exists and has code */
	bool internal;		    /* probe the callee below instead of the symbol */
	uint64_t sym_addr;	    /* virtual address of the exported symbol */
	uint64_t addr;		    /* internal: the callee's virtual address */
	uint64_t offset;	    /* internal: its file offset (what a uprobe takes) */
	char callee[SITE_NAME_LEN]; /* internal: its symbol name, "" when stripped */
	char why[SITE_WHY_LEN];	    /* the first instruction and the reason of the choice */
};

struct sites {
	struct site f[SITE_N];
};

/* The section a function lives in, as bytes at a virtual address. */
struct sites_code {
	const uint8_t *bytes;
	size_t len;
	uint64_t addr;
};

/* "SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex". */
const char *sites_func_name(enum site_func f);
int sites_mode_parse(const char *s, enum sites_mode *mode);
const char *sites_mode_name(enum sites_mode mode);

/* Chooses the sites of the ELF file at path (out is filled in any case: on error every
 * present function is at its exported symbol). Returns 0, or -errno when the file
 * cannot be read as an ELF object (err says why, in words). */
int sites_choose(const char *path, enum sites_mode mode, struct sites *out, char *err,
		 size_t errlen);

/* The same on an ELF image in memory. */
int sites_choose_mem(const void *image, size_t size, enum sites_mode mode, struct sites *out,
		     char *err, size_t errlen);

/* Decodes one function: fn_addr..fn_addr+fn_len inside sec. ex: the function is an _ex
 * variant (its 4th argument must pass through unchanged); else the 4th argument must be
 * set to a slot of its own frame. On success s->internal and s->addr say the proven
 * callee; otherwise s->why says why not. Returns 0 or -errno (Capstone unusable). */
int sites_follow(const struct sites_code *sec, uint64_t fn_addr, size_t fn_len, bool ex,
		 struct site *s);

/* Which of names[0..n) an ELF file defines as functions (.symtab or .dynsym): found[i]
 * set for each. Returns 0, or -errno when the file cannot be read as an ELF object (err
 * says why). Used to tell what TLS stack an executable carries. */
int sites_find_funcs(const char *path, const char *const *names, size_t n, bool *found, char *err,
		     size_t errlen);

/* GnuTLS's data sites (libgnutls.so.30, 3.7): gnutls_record_send jumps to the exported
 * gnutls_record_send2 (session, data, size, pad, flags), probed at its symbol;
 * gnutls_record_recv and gnutls_record_recv_seq tail-jump to one internal
 * _gnutls_recv_int (session, type, data, size, ...), found by decoding both and
 * probed there (application data is type 23); gnutls_transport_get_int reads the
 * session's transport int at fd_disp. */
struct sites_gnutls {
	uint64_t send_offset; /* file offset of gnutls_record_send2 */
	uint64_t recv_offset; /* file offset of _gnutls_recv_int */
	uint64_t recv_addr;   /* its virtual address */
	uint32_t fd_disp;     /* displacement of gnutls_transport_get_int's load */
	bool fd_known;	      /* fd_disp decoded */
	char send_why[SITE_WHY_LEN];
	char recv_why[SITE_WHY_LEN];
};

/* Finds the GnuTLS sites of the ELF file at path. Returns 0, -ENOENT when a function
 * is missing or the receive path cannot be proven (err says which), or another -errno. */
int sites_gnutls(const char *path, struct sites_gnutls *out, char *err, size_t errlen);

/* Decodes a tail-jumping function fn_addr..fn_addr+fn_len inside sec: the one target of
 * its relative jmps leaving the function (into sec), in *target. Returns 0, -ENOENT
 * when there is no such target or more than one, -ENOMEM (Capstone unusable). */
int sites_tail_target(const struct sites_code *sec, uint64_t fn_addr, size_t fn_len,
		      uint64_t *target);

/* Decodes `mov DISP(%rdi),%eax; ret` at fn_addr (a field getter): *disp. Returns 0,
 * -ENOENT when the code is not that shape, -ENOMEM. */
int sites_getter_disp(const struct sites_code *sec, uint64_t fn_addr, uint32_t *disp);

/* Go crypto/tls (ABIInternal, x86-64): where crypto/tls.(*Conn).Write and .Read are
 * entered and every RET they leave by (never a uretprobe on Go: goroutine stacks move),
 * and the handshakes that begin a connection. */
#define SITES_GO_MAX_RETS 32

enum sites_go_func { SITES_GO_WRITE = 0, SITES_GO_READ, SITES_GO_N };

struct sites_go_func_site {
	uint64_t entry_offset; /* file offset of the entry site */
	bool entry_jbe;	       /* the site is the stack check's jbe: a hit whose branch to
				* morestack is taken is not the call (it comes again) */
	uint64_t rets[SITES_GO_MAX_RETS]; /* file offsets of its RET instructions */
	size_t n_rets;
	char why[SITE_WHY_LEN];
};

struct sites_go {
	struct sites_go_func_site f[SITES_GO_N];
	uint64_t handshake[2]; /* file offsets of clientHandshake, serverHandshake; 0 = absent */
	uint64_t close;	       /* file offset of (*Conn).Close; 0 = absent */
	uint64_t tcpconn_itab; /* link-time address of the *net.TCPConn,net.Conn itab; 0 =
				* unknown */
	bool pie;	       /* position-independent: a process's itab is tcpconn_itab +
				* its load bias (where it maps file offset 0 - load_vaddr) */
	uint64_t load_vaddr;   /* link-time address of the segment at file offset 0 */
	bool stripped;	       /* functions found in .gopclntab, not the symbol table */
	char version[32];      /* from the build info: "go1.22.8" */
};

/* Finds the Go sites of the ELF executable at path: a Go program (its .go.buildinfo),
 * functions from its symbol table or, stripped, its .gopclntab; the itab from the symbol
 * table or .itablink. Returns 0, -ENOENT when it is not Go, a function is missing or
 * cannot be decoded (err says which, in one line), or another -errno. */
int sites_go(const char *path, struct sites_go *out, char *err, size_t errlen);

/* Whether the ELF executable at path is a Go program (its .go.buildinfo) and one that
 * has crypto/tls.(*Conn).Read and Write (symbol table or .gopclntab). Returns 1 (Go with
 * crypto/tls), 0 (not Go, or Go without crypto/tls: err says which), or -errno when the
 * file cannot be read as ELF. ver: the Go version, "" when not Go. */
int sites_go_detect(const char *path, char *ver, size_t vcap, char *err, size_t errlen);

#endif
