/* common/isn.h - the hash-derived initial sequence number of DESIGN §3, bit-exact.
 * Owns: the 40-byte message layout and the SHA-256 (libcrypto) derivation.
 * Does not own: the tuple representation (tuple.h). Pure. */
#ifndef ECV_ISN_H
#define ECV_ISN_H

#include <stdint.h>

#include "tuple.h"

/* ISN of the direction src -> dst of t: first 4 bytes of SHA-256(msg), big-endian,
 * msg = 0x01 | proto | dir | 0x00 | A(src) | A(dst) | sport_be | dport_be. */
uint32_t isn_compute(const struct ecv_tuple *t);
/* Direction bit (same as tuple_dir()). */
int isn_dir(const struct ecv_tuple *t);

#endif
