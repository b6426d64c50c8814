/* common/hash.h - small non-cryptographic hash building blocks shared by both programs.
 * Owns: FNV-1a over bytes and the 64-bit finalizer that spreads a hash over all bits.
 * Stable across hosts and runs (agents on different nodes must agree on rendezvous
 * hashing). Pure, header-only. */
#ifndef ECV_HASH_H
#define ECV_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_OFFSET 0xcbf29ce484222325ull

/* FNV-1a of p[0..n) continuing from h (start with HASH_FNV_OFFSET). */
static inline uint64_t hash_fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--) {
		h ^= *b++;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* MurmurHash3's fmix64: every output bit depends on every input bit, so keys that share
 * their low bits (aligned pointers, FNV over similar tuples) spread over a table. */
static inline uint64_t hash_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

#endif
