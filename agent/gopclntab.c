/* agent/gopclntab.c - Go's function table and build info (gopclntab.h).
 *
 * The pcHeader (runtime/symtab.go, Go 1.18+, 64-bit): magic u32, two zero pad bytes,
 * minLC (1 on x86), ptrSize (8), then nfunc, nfiles, textStart, funcnameOffset,
 * cuOffset, filetabOffset, pctabOffset, pclnOffset (8 bytes each). At pclnOffset:
 * nfunc + 1 functab entries {entryoff u32, funcoff u32} sorted by entry, the last one
 * the end of the text; funcoff (from pclnOffset) leads to a _func whose first fields are
 * entryOff u32 and nameOff i32 (into funcnametab, NUL-terminated names). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gopclntab.h"

#define MAGIC_118 0xfffffff0u
#define MAGIC_120 0xfffffff1u
#define HDR_LEN 72
#define FTAB_ENTRY 8

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

int gopcln_init(struct gopcln *g, const void *tab, size_t len, uint64_t text_start, char *err,
		size_t errlen)
{
	const uint8_t *b = tab;
	uint64_t names_end, ftab_len;
	uint32_t magic;

	memset(g, 0, sizeof(*g));
	if (!b || len < HDR_LEN) {
		snprintf(err, errlen, ".gopclntab shorter than its header");
		return -ENOEXEC;
	}
	magic = rd32(b);
	if (magic != MAGIC_118 && magic != MAGIC_120) {
		snprintf(err, errlen, ".gopclntab magic 0x%08x is not Go 1.18+'s", magic);
		return -ENOEXEC;
	}
	if (b[4] || b[5] || b[6] != 1 || b[7] != 8) {
		snprintf(err, errlen, ".gopclntab header is not x86-64's (minLC %u, ptrSize %u)",
			 b[6], b[7]);
		return -ENOEXEC;
	}
	g->tab = b;
	g->len = len;
	g->go120 = magic == MAGIC_120;
	g->nfunc = rd64(b + 8);
	g->text_start = text_start ? text_start : rd64(b + 24);
	g->names_off = rd64(b + 32);
	names_end = rd64(b + 40); /* cuOffset: the cu table follows the names */
	g->pcln_off = rd64(b + 64);
	if (!g->nfunc || g->nfunc > len / FTAB_ENTRY || g->names_off < HDR_LEN ||
	    names_end <= g->names_off || names_end > len || g->pcln_off < HDR_LEN ||
	    g->pcln_off > len) {
		snprintf(err, errlen, ".gopclntab header offsets outside its %zu bytes", len);
		return -ENOEXEC;
	}
	ftab_len = (g->nfunc + 1) * FTAB_ENTRY;
	if (ftab_len > len - g->pcln_off) {
		snprintf(err, errlen,
			 ".gopclntab function table (%" PRIu64 " functions) outside "
			 "its %zu bytes",
			 g->nfunc, len);
		return -ENOEXEC;
	}
	if (!g->text_start) {
		snprintf(err, errlen, ".gopclntab has no text address");
		return -ENOEXEC;
	}
	g->names_len = names_end - g->names_off;
	return 0;
}

/* functab entry i: its entry offset; the name of its _func into *name (NULL: bad). */
static uint32_t ftab_entry(const struct gopcln *g, uint64_t i, const char **name)
{
	const uint8_t *ft = g->tab + g->pcln_off + i * FTAB_ENTRY;
	uint64_t funcoff = rd32(ft + 4), at = g->pcln_off + funcoff;
	int32_t name_off;
	const char *nm;

	*name = NULL;
	if (i >= g->nfunc || at > g->len || g->len - at < 8)
		return rd32(ft);
	name_off = (int32_t)rd32(g->tab + at + 4);
	if (name_off < 0 || (uint64_t)name_off >= g->names_len)
		return rd32(ft);
	nm = (const char *)g->tab + g->names_off + name_off;
	/* NUL-terminated inside the name table, or not a name. */
	if (memchr(nm, '\0', g->names_len - (uint64_t)name_off))
		*name = nm;
	return rd32(ft);
}

int gopcln_func(const struct gopcln *g, const char *name, uint64_t *entry, uint64_t *end)
{
	for (uint64_t i = 0; i < g->nfunc; i++) {
		const char *nm;
		uint32_t off = ftab_entry(g, i, &nm), next;

		if (!nm || strcmp(nm, name))
			continue;
		next = rd32(g->tab + g->pcln_off + (i + 1) * FTAB_ENTRY);
		if (next <= off)
			return -ENOENT;
		*entry = g->text_start + off;
		*end = g->text_start + next;
		return 0;
	}
	return -ENOENT;
}

const char *gopcln_name_at(const struct gopcln *g, uint64_t addr)
{
	uint64_t lo = 0, hi = g->nfunc;

	if (addr < g->text_start || addr - g->text_start > UINT32_MAX)
		return NULL;
	/* The table is sorted by entry: bisect. */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		const char *nm;
		uint32_t off = ftab_entry(g, mid, &nm);

		if (g->text_start + off == addr)
			return nm;
		if (g->text_start + off < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int gopcln_buildinfo_version(const void *blob, size_t len, char *ver, size_t cap)
{
	const uint8_t *b = blob;
	uint64_t n = 0;
	size_t at = 32;

	snprintf(ver, cap, "unknown");
	if (len < 32 || memcmp(b, GOPCLN_BUILDINFO_MAGIC, GOPCLN_BUILDINFO_MAGIC_LEN))
		return -ENOEXEC;
	if (!(b[15] & 2)) {
		snprintf(ver, cap, "go1.17 or older");
		return -ENOENT;
	}
	for (int shift = 0; at < len && shift < 64; shift += 7) {
		n |= (uint64_t)(b[at] & 0x7f) << shift;
		if (!(b[at++] & 0x80))
			break;
	}
	if (!n || n > 64 || n > len - at)
		return -ENOEXEC;
	snprintf(ver, cap, "%.*s", (int)n, (const char *)b + at);
	return 0;
}
