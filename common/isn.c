/* common/isn.c - DESIGN §3 ISN: SHA-256 (libcrypto) over a fixed 40-byte message. */
#include <openssl/sha.h>
#include <string.h>

#include "isn.h"

int isn_dir(const struct ecv_tuple *t)
{
	return tuple_dir(t);
}

uint32_t isn_compute(const struct ecv_tuple *t)
{
	uint8_t msg[40], md[SHA256_DIGEST_LENGTH];

	msg[0] = 0x01; /* message version */
	msg[1] = t->proto;
	msg[2] = (uint8_t)tuple_dir(t);
	msg[3] = 0x00;
	memcpy(msg + 4, t->saddr, 16);
	memcpy(msg + 20, t->daddr, 16);
	msg[36] = t->sport >> 8;
	msg[37] = t->sport & 0xff;
	msg[38] = t->dport >> 8;
	msg[39] = t->dport & 0xff;
	SHA256(msg, sizeof(msg), md);
	return (uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 | (uint32_t)md[2] << 8 | md[3];
}
