/* tests/fuzz/fuzz_meta.c - libFuzzer harness for flow metadata JSON from the network.
 * Any document meta_decode() accepts must encode again and decode to the same message
 * (unless the canonical form outgrows META_MAX_JSON). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_meta: %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char json[META_MAX_JSON + 1];
	struct meta_flow m, again;
	const char *why = NULL;
	char *copy;
	int n;

	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (meta_decode(copy, size, &m, &why) != 0) {
		CHECK(why != NULL);
		goto out;
	}
	n = meta_encode(&m, json, sizeof(json));
	CHECK(n > 0 || n == -ENOSPC);
	if (n > 0) {
		CHECK(meta_decode(json, (size_t)n, &again, &why) == 0);
		CHECK(memcmp(&m, &again, sizeof(m)) == 0);
	}
out:
	free(copy);
	return 0;
}
