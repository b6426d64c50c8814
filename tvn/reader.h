/* tvn/reader.h - offline input: pcap captures merged by timestamp (--read).
 * Owns: the open capture files, the per-file kind (VxLAN datagrams or inner frames) and
 * the timestamp merge.
 * Does not own: validation (ingest.h) or what happens to packets. */
#ifndef TVN_READER_H
#define TVN_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest.h"

struct reader;

/* Opens every file. A file whose first packets are UDP to port 4789 (or UDP carrying a
 * strictly valid VxLAN header and a parseable frame, on any port) is read as VxLAN
 * (the outer source address + VNI is the copy's source); otherwise each packet is an
 * inner frame and the file is one source (index i + 1 in addr[15], VNI 0). Returns
 * NULL with errno set and a logged reason naming the file. */
struct reader *reader_new(const char *const *paths, size_t n);
void reader_free(struct reader *r); /* NULL-safe */

/* Called for each packet in timestamp order. For VxLAN files dgram is the UDP payload
 * and src_addr the outer source; for inner files dgram is the frame and src_addr is
 * NULL (the file's source is in *file_src). truncated: the capture cut the packet. */
typedef int (*reader_fn)(void *ctx, const uint8_t *dgram, size_t len, uint64_t ts_ns,
			 const uint8_t *src_addr, const struct dedup_src *file_src, bool truncated);
/* Reads every file to its end, calling fn; stops early when fn returns non-zero or
 * *stop becomes true. Returns 0, fn's value, or -errno. Packets whose outer headers are
 * not IP/UDP in a VxLAN file go to fn with len 0 ("outer"). */
int reader_run(struct reader *r, reader_fn fn, void *ctx, volatile int *stop);

#endif
