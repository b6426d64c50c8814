/* tests/unit/test_agent_gopclntab.c - Go's function table and build info reader
 * (gopclntab.c) on tables built here in the Go 1.18+ layout (runtime/symtab.go's
 * pcHeader, functab and _func; the 1.18/1.19 and the 1.20+ magic), and on the ways a
 * table can be wrong: another magic, pointer size, offsets past its end, a name offset
 * past the name table. Real tables of Go 1.19 and 1.22 binaries are read by
 * tests/integration/test_agent_go.sh. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../../agent/gopclntab.h"
#include "check_run.h"

#define TEXT 0x401000u
#define NAMES_OFF 72u

static const char names[] = "\0main.main\0crypto/tls.(*Conn).Read\0crypto/tls.(*Conn).Write";
/* Name offsets in names[], entry offsets from TEXT, in entry order. */
static const struct {
	uint32_t name_off, entry;
} funcs[] = { { 1, 0x0 }, { 11, 0x140 }, { 35, 0x3a0 } };
#define NFUNC 3
#define TEXT_END 0x620u

static uint8_t tab[512];
static size_t tab_len;

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

/* Header, names (then 8 bytes standing for the cu table), functab, _func records. */
static void build(uint32_t magic, uint64_t text)
{
	uint64_t cu = NAMES_OFF + sizeof(names), pcln = (cu + 8 + 7) & ~7ull;
	uint64_t funcs_at = (NFUNC + 1) * 8;

	memset(tab, 0, sizeof(tab));
	wr32(tab, magic);
	tab[6] = 1;
	tab[7] = 8;
	wr64(tab + 8, NFUNC);
	wr64(tab + 24, text);
	wr64(tab + 32, NAMES_OFF);
	wr64(tab + 40, cu);
	wr64(tab + 48, cu);
	wr64(tab + 56, cu);
	wr64(tab + 64, pcln);
	memcpy(tab + NAMES_OFF, names, sizeof(names));
	for (int i = 0; i < NFUNC; i++) {
		uint64_t rec = funcs_at + 16 * (uint64_t)i;

		wr32(tab + pcln + 8 * i, funcs[i].entry);
		wr32(tab + pcln + 8 * i + 4, (uint32_t)rec);
		wr32(tab + pcln + rec, funcs[i].entry);
		wr32(tab + pcln + rec + 4, funcs[i].name_off);
	}
	wr32(tab + pcln + 8 * NFUNC, TEXT_END);
	tab_len = pcln + funcs_at + 16 * NFUNC;
}

START_TEST(functions_by_name_and_by_entry)
{
	static const uint32_t magics[] = { 0xfffffff0u, 0xfffffff1u };
	struct gopcln g;
	uint64_t entry, end;
	char err[128];

	for (int m = 0; m < 2; m++) {
		build(magics[m], TEXT);
		ck_assert_int_eq(gopcln_init(&g, tab, tab_len, 0, err, sizeof(err)), 0);
		ck_assert_int_eq(g.go120, m);
		ck_assert_int_eq(gopcln_func(&g, "crypto/tls.(*Conn).Read", &entry, &end), 0);
		ck_assert_uint_eq(entry, TEXT + 0x140);
		ck_assert_uint_eq(end, TEXT + 0x3a0);
		/* The last function ends where the text does. */
		ck_assert_int_eq(gopcln_func(&g, "crypto/tls.(*Conn).Write", &entry, &end), 0);
		ck_assert_uint_eq(entry, TEXT + 0x3a0);
		ck_assert_uint_eq(end, TEXT + TEXT_END);
		ck_assert_int_eq(gopcln_func(&g, "crypto/tls.(*Conn).Close", &entry, &end),
				 -ENOENT);
		ck_assert_str_eq(gopcln_name_at(&g, TEXT), "main.main");
		ck_assert_str_eq(gopcln_name_at(&g, TEXT + 0x3a0), "crypto/tls.(*Conn).Write");
		ck_assert_ptr_null(gopcln_name_at(&g, TEXT + 0x141)); /* not an entry */
		ck_assert_ptr_null(gopcln_name_at(&g, TEXT - 1));
	}
}
END_TEST

START_TEST(pie_text_base_from_the_caller)
{
	struct gopcln g;
	uint64_t entry, end;
	char err[128];

	/* A PIE's textStart is a relocation: 0 in the file, its addend handed in. */
	build(0xfffffff1u, 0);
	ck_assert_int_eq(gopcln_init(&g, tab, tab_len, 0, err, sizeof(err)), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err, "no text address"));
	ck_assert_int_eq(gopcln_init(&g, tab, tab_len, 0x1000, err, sizeof(err)), 0);
	ck_assert_int_eq(gopcln_func(&g, "crypto/tls.(*Conn).Read", &entry, &end), 0);
	ck_assert_uint_eq(entry, 0x1140);
}
END_TEST

START_TEST(bad_tables_are_refused_in_words)
{
	struct gopcln g;
	uint64_t entry, end;
	char err[128];

	build(0xfffffffbu, TEXT); /* Go 1.16/1.17 */
	ck_assert_int_eq(gopcln_init(&g, tab, tab_len, 0, err, sizeof(err)), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err, "magic 0xfffffffb"));
	build(0xfffffff0u, TEXT);
	tab[7] = 4;
	ck_assert_int_eq(gopcln_init(&g, tab, tab_len, 0, err, sizeof(err)), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err, "ptrSize 4"));
	build(0xfffffff0u, TEXT);
	ck_assert_int_eq(gopcln_init(&g, tab, 40, 0, err, sizeof(err)), -ENOEXEC);
	ck_assert_int_eq(gopcln_init(&g, NULL, 0, 0, err, sizeof(err)), -ENOEXEC);
	/* Cut inside the function table. */
	ck_assert_int_eq(gopcln_init(&g, tab, tab_len - 3 * 16 - 10, 0, err, sizeof(err)),
			 -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err, "outside"));
	/* A function count no table of that size holds. */
	build(0xfffffff0u, TEXT);
	wr64(tab + 8, 1ull << 40);
	ck_assert_int_eq(gopcln_init(&g, tab, tab_len, 0, err, sizeof(err)), -ENOEXEC);
	/* A name offset past the name table: that function has no name, the rest are read. */
	build(0xfffffff0u, TEXT);
	ck_assert_int_eq(gopcln_init(&g, tab, tab_len, 0, err, sizeof(err)), 0);
	wr32(tab + tab_len - 16 * NFUNC + 16 + 4, 0x7fffffff);
	ck_assert_int_eq(gopcln_func(&g, "crypto/tls.(*Conn).Read", &entry, &end), -ENOENT);
	ck_assert_ptr_null(gopcln_name_at(&g, TEXT + 0x140));
	ck_assert_int_eq(gopcln_func(&g, "crypto/tls.(*Conn).Write", &entry, &end), 0);
}
END_TEST

START_TEST(build_info_version)
{
	uint8_t blob[64];
	char ver[32];

	memset(blob, 0, sizeof(blob));
	memcpy(blob, GOPCLN_BUILDINFO_MAGIC, GOPCLN_BUILDINFO_MAGIC_LEN);
	blob[14] = 8;
	blob[15] = 2; /* version inline (Go 1.18+) */
	blob[32] = 8;
	memcpy(blob + 33, "go1.22.8", 8);
	ck_assert_int_eq(gopcln_buildinfo_version(blob, sizeof(blob), ver, sizeof(ver)), 0);
	ck_assert_str_eq(ver, "go1.22.8");
	/* Its length past the blob. */
	blob[32] = 40;
	ck_assert_int_eq(gopcln_buildinfo_version(blob, sizeof(blob), ver, sizeof(ver)), -ENOEXEC);
	blob[15] = 0; /* pointers: Go 1.17 and older */
	ck_assert_int_eq(gopcln_buildinfo_version(blob, sizeof(blob), ver, sizeof(ver)), -ENOENT);
	ck_assert_str_eq(ver, "go1.17 or older");
	blob[1] = 'g';
	ck_assert_int_eq(gopcln_buildinfo_version(blob, sizeof(blob), ver, sizeof(ver)), -ENOEXEC);
	ck_assert_int_eq(gopcln_buildinfo_version(blob, 20, ver, sizeof(ver)), -ENOEXEC);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("agent_gopclntab");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, functions_by_name_and_by_entry);
	tcase_add_test(tc, pie_text_base_from_the_caller);
	tcase_add_test(tc, bad_tables_are_refused_in_words);
	tcase_add_test(tc, build_info_version);
	suite_add_tcase(s, tc);
	return check_run(s);
}
