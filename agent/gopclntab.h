/* agent/gopclntab.h - Go's own tables in an executable: the function table (.gopclntab,
 * the Go 1.18+ layout: 1.18/1.19 magic 0xfffffff0, 1.20+ 0xfffffff1) and the build info
 * blob (.go.buildinfo).
 * Owns: checking a pcHeader, finding a function's entry and end by name and a function's
 * name by its entry, reading the Go version from the build info.
 * Does not own: reading the ELF file (sites.c hands in the section's bytes). Pure: bytes
 * in, answers out; every read is bounds-checked (the bytes are untrusted). */
#ifndef AGENT_GOPCLNTAB_H
#define AGENT_GOPCLNTAB_H

#include <stddef.h>
#include <stdint.h>

/* The build info blob starts with this (16-byte aligned in the file). */
#define GOPCLN_BUILDINFO_MAGIC "\xff Go buildinf:"
#define GOPCLN_BUILDINFO_MAGIC_LEN 14

/* A decoded pcHeader over borrowed bytes (the section stays the caller's). */
struct gopcln {
	const uint8_t *tab; /* the section */
	size_t len;
	uint64_t text_start; /* entry offsets are relative to this address */
	uint64_t nfunc;
	uint64_t names_off, names_len; /* funcnametab */
	uint64_t pcln_off;	       /* functab: nfunc + 1 (entryoff, funcoff) pairs */
	int go120;		       /* 1: the 1.20+ magic */
};

/* Checks the header of tab[0..len) and fills g. text_start: the text base when the
 * header's own field is not in the file (a PIE's is a relocation), else 0 to use the
 * field. Returns 0, or -ENOEXEC with err saying what is wrong (pre-1.18 layouts,
 * another pointer size, offsets outside the section). */
int gopcln_init(struct gopcln *g, const void *tab, size_t len, uint64_t text_start, char *err,
		size_t errlen);

/* The function called name: its entry address and the next function's (its end, padding
 * included). Returns 0 or -ENOENT. */
int gopcln_func(const struct gopcln *g, const char *name, uint64_t *entry, uint64_t *end);

/* The name of the function whose entry is exactly addr (a pointer into the table, NUL
 * terminated inside it), or NULL. */
const char *gopcln_name_at(const struct gopcln *g, uint64_t addr);

/* The Go version a build info blob of len bytes names ("go1.22.8") into ver: Go 1.18+
 * writes it inline after the 32-byte header. Returns 0, -ENOENT when the blob holds no
 * inline version (older Go: pointers, ver is "go1.17 or older"), -ENOEXEC when it is not
 * build info. */
int gopcln_buildinfo_version(const void *blob, size_t len, char *ver, size_t cap);

#endif
