/* common/tuple.h - the TCP/UDP 5-tuple shared by every module.
 * Owns: the address representation (16 bytes, IPv4 as ::ffff:a.b.c.d), formatting,
 * parsing, reversal and the symmetric flow hash.
 * Does not own: the ISN (isn.h). Pure: no sockets, no clocks. */
#ifndef ECV_TUPLE_H
#define ECV_TUPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest string tuple_addr_str() writes, NUL included (INET6_ADDRSTRLEN). */
#define TUPLE_ADDR_STRLEN 46

struct ecv_tuple {
	uint8_t saddr[16]; /* IPv6, or IPv4-mapped ::ffff:a.b.c.d */
	uint8_t daddr[16];
	uint16_t sport; /* host byte order */
	uint16_t dport;
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t proto;	/* IPPROTO_TCP (6) or IPPROTO_UDP (17) */
	uint8_t pad[2]; /* zero: tuples are compared and hashed with memcmp */
};

/* Writes a 16-byte address from 4 IPv4 bytes (network order) as ::ffff:a.b.c.d. */
void tuple_addr_from_v4(uint8_t out[16], const uint8_t v4[4]);
/* True if the 16-byte address is IPv4-mapped. */
bool tuple_addr_is_v4(const uint8_t a[16]);

/* Parses a numeric IPv4 or IPv6 address into 16 bytes; *family gets AF_INET or
 * AF_INET6. Returns 0 or -EINVAL. */
int tuple_addr_parse(const char *s, uint8_t out[16], uint8_t *family);
/* Formats a 16-byte address (IPv4-mapped ones as dotted quad). Returns buf. */
char *tuple_addr_str(const uint8_t a[16], char buf[TUPLE_ADDR_STRLEN]);

/* Fills a tuple (zeroing padding). Returns 0 or -EINVAL when the families differ. */
int tuple_init(struct ecv_tuple *t, const uint8_t saddr[16], uint16_t sport,
	       const uint8_t daddr[16], uint16_t dport, uint8_t proto);
/* The same flow seen from the other side (src and dst swapped). */
void tuple_reverse(struct ecv_tuple *out, const struct ecv_tuple *in);
bool tuple_equal(const struct ecv_tuple *a, const struct ecv_tuple *b);
/* Canonical direction bit of DESIGN §3: 0 if A(src)||sport_be < A(dst)||dport_be. */
int tuple_dir(const struct ecv_tuple *t);
/* Symmetric 64-bit hash: equal for a tuple and its reverse. Not cryptographic; used for
 * sharding, flow tables and the VxLAN outer source port. */
uint64_t tuple_hash(const struct ecv_tuple *t);
/* "src:sport > dst:dport" ([v6]:port for IPv6) into buf; returns buf. */
char *tuple_str(const struct ecv_tuple *t, char *buf, size_t len);

#endif
