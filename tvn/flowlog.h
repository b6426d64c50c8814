/* tvn/flowlog.h - the flow log (--flow-log PATH) and the JSON form of a flow.
 * Owns: the log file, its lock (flows end on several shard threads) and the JSON
 * layout that /flows shares.
 * Does not own: the flows (dedup.h). */
#ifndef TVN_FLOWLOG_H
#define TVN_FLOWLOG_H

#include <jansson.h>

#include "dedup.h"

struct flowlog;

/* Opens (appends to) path. Returns NULL with errno set. */
struct flowlog *flowlog_new(const char *path);
void flowlog_free(struct flowlog *fl); /* NULL-safe; flushes */

/* A dedup_end_fn: writes one JSON line for the finished flow. ctx is the flowlog. */
void flowlog_end(void *ctx, const struct dedup_flow_info *f);
/* {"src":..,"sport":..,"dst":..,"dport":..,"proto":..,"isn":[..],"sources":[..],
 *  "kept":..,"pkts_in":..,...,"meta":{..}}. Returns a new reference or NULL. */
json_t *flowlog_flow_json(const struct dedup_flow_info *f);

#endif
