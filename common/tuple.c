/* common/tuple.c - the 5-tuple: addresses, formatting, reversal, symmetric hash. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "hash.h"
#include "tuple.h"

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

void tuple_addr_from_v4(uint8_t out[16], const uint8_t v4[4])
{
	memcpy(out, v4_mapped_prefix, sizeof(v4_mapped_prefix));
	memcpy(out + 12, v4, 4);
}

bool tuple_addr_is_v4(const uint8_t a[16])
{
	return memcmp(a, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0;
}

int tuple_addr_parse(const char *s, uint8_t out[16], uint8_t *family)
{
	uint8_t v4[4];

	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, v4) == 1) {
		tuple_addr_from_v4(out, v4);
		if (family)
			*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		if (family)
			*family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

char *tuple_addr_str(const uint8_t a[16], char buf[TUPLE_ADDR_STRLEN])
{
	if (tuple_addr_is_v4(a))
		inet_ntop(AF_INET, a + 12, buf, TUPLE_ADDR_STRLEN);
	else
		inet_ntop(AF_INET6, a, buf, TUPLE_ADDR_STRLEN);
	return buf;
}

int tuple_init(struct ecv_tuple *t, const uint8_t saddr[16], uint16_t sport,
	       const uint8_t daddr[16], uint16_t dport, uint8_t proto)
{
	bool v4 = tuple_addr_is_v4(saddr);

	if (v4 != tuple_addr_is_v4(daddr))
		return -EINVAL;
	memset(t, 0, sizeof(*t));
	memcpy(t->saddr, saddr, 16);
	memcpy(t->daddr, daddr, 16);
	t->sport = sport;
	t->dport = dport;
	t->family = v4 ? AF_INET : AF_INET6;
	t->proto = proto;
	return 0;
}

void tuple_reverse(struct ecv_tuple *out, const struct ecv_tuple *in)
{
	struct ecv_tuple r = *in; /* in and out may alias */

	memcpy(r.saddr, in->daddr, 16);
	memcpy(r.daddr, in->saddr, 16);
	r.sport = in->dport;
	r.dport = in->sport;
	*out = r;
}

bool tuple_equal(const struct ecv_tuple *a, const struct ecv_tuple *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* memcmp order of A(addr) || port_be for the two endpoints. */
static int endpoint_cmp(const uint8_t a[16], uint16_t ap, const uint8_t b[16], uint16_t bp)
{
	int c = memcmp(a, b, 16);

	if (c)
		return c;
	return (ap > bp) - (ap < bp); /* big-endian bytes compare like the numbers */
}

int tuple_dir(const struct ecv_tuple *t)
{
	return endpoint_cmp(t->saddr, t->sport, t->daddr, t->dport) < 0 ? 0 : 1;
}

/* FNV-1a over the canonical (lower endpoint first) bytes, then a splitmix64 finalizer so
 * that every output bit depends on every input bit (the VxLAN port uses the low bits). */
uint64_t tuple_hash(const struct ecv_tuple *t)
{
	const uint8_t *lo = t->saddr, *hi = t->daddr;
	uint16_t lop = t->sport, hip = t->dport;
	uint64_t h = HASH_FNV_OFFSET;

	if (endpoint_cmp(lo, lop, hi, hip) > 0) {
		lo = t->daddr;
		hi = t->saddr;
		lop = t->dport;
		hip = t->sport;
	}
	h = hash_fnv1a(h, lo, 16);
	h = hash_fnv1a(h, &lop, sizeof(lop));
	h = hash_fnv1a(h, hi, 16);
	h = hash_fnv1a(h, &hip, sizeof(hip));
	h = hash_fnv1a(h, &t->proto, 1);
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

char *tuple_str(const struct ecv_tuple *t, char *buf, size_t len)
{
	char s[TUPLE_ADDR_STRLEN], d[TUPLE_ADDR_STRLEN];
	bool v4 = tuple_addr_is_v4(t->saddr);

	tuple_addr_str(t->saddr, s);
	tuple_addr_str(t->daddr, d);
	if (v4)
		snprintf(buf, len, "%s:%u > %s:%u", s, t->sport, d, t->dport);
	else
		snprintf(buf, len, "[%s]:%u > [%s]:%u", s, t->sport, d, t->dport);
	return buf;
}
