// SPDX-License-Identifier: GPL-2.0
/* bpf/ecv.bpf.c - plaintext capture at SSL_write/SSL_read (DESIGN §1).
 *
 * Uprobes save the arguments of SSL_* calls per thread; uretprobes emit the bytes the
 * call actually moved as ECV_EV_DATA events (16 KiB chunks) with byte offsets assigned
 * here from per-(SSL, direction) counters. While a thread is inside an SSL_* call, a
 * socket hook (one of kprobe / fentry / tp_btf / syscall tracepoints, chosen by user
 * space with autoload) learns the struct sock under the SSL object: its 5-tuple, and
 * the role the kernel saw at connection open (sock/inet_sock_set_state).
 *
 * Events leave through one shared BPF ring buffer (kernel >= 5.8) or, chosen by user
 * space before load (use_ringbuf), the perf event array; the path not chosen is dead
 * code the verifier never walks. Every program verifies on 5.10 and later: the copy
 * loops move constant-size chunks, so the verifier follows one path per iteration. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "ecv_event.h"
#include "sock.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Tunables written by user space before load (probe.c). 0 = no filter. */
const volatile __u32 filter_tgid = 0;
const volatile __u64 filter_cgroup_id = 0;
const volatile __u32 filter_netns = 0;
const volatile __u32 max_chunks = ECV_MAX_CHUNKS;
/* Event transport: 1 = the ring buffer, 0 = the perf event array. */
const volatile __u32 use_ringbuf = 0;
/* Ring buffer wake-ups: the consumer is woken once this many bytes wait, or when the
 * last wake-up is ring_wake_ns old; every other record is committed silently. */
const volatile __u64 ring_wake_bytes = 1 << 20;
const volatile __u64 ring_wake_ns = 20000000;

/* SSL_* calls cut at max_chunks, calls not copied because this CPU's scratch buffer was
 * busy (perf path, preemption; their bytes are a sequence hole), and ring buffer records
 * not reserved (ring full: a hole too). Read by user space. */
__u64 truncated_calls = 0;
__u64 busy_calls = 0;
__u64 ring_lost = 0;
__u64 ring_last_wake_ns = 0;

#define ECV_MAX_CONNS 65536
#define ECV_MAX_THREADS 16384

#define TCP_ESTABLISHED_ 1
#define TCP_SYN_SENT_ 2
#define TCP_SYN_RECV_ 3
#define TCP_CLOSE_ 7

#define SSL_CALL_HANDSHAKE 2 /* ssl_call.dir of a handshake call: no data to emit */

/* The SSL_* call a thread is inside, saved at entry: the SSL object (what the socket hook
 * ties the thread's socket I/O to) and, for SSL_read/SSL_write, the arguments the
 * uretprobe needs. */
struct ssl_call {
	__u64 ssl;
	__u64 buf;
	__u64 ex_len; /* size_t *written / *readbytes of the _ex variants, else 0 */
	__u32 dir;    /* ecv_dir, or SSL_CALL_HANDSHAKE */
	__u32 pad;
};

struct conn_key {
	__u64 ssl;
	__u32 tgid;
	__u32 pad;
};

/* What the kernel knows of one SSL object. */
struct conn_state {
	__u64 offsets[2]; /* next byte offset per ecv_dir */
	__u64 sk;	  /* struct sock the tuple was read from */
	__u32 flags;	  /* ECV_F_FROM_START, ECV_F_TUPLE, ECV_F_ROLE_* */
	__u32 closed;	  /* ECV_EV_CLOSE already sent (SSL_shutdown before SSL_free) */
	struct sock_tuple tuple;
};

/* pid_tgid -> the SSL data or handshake call in flight: one update at entry and one
 * delete at return per call (a second map for the socket hook cost the entry programs a
 * third more time, measured in docs/bench-agent-consumer.md). LRU: a thread killed
 * inside a call never reaches the uretprobe, its entry must not stay forever. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ECV_MAX_THREADS);
	__type(key, __u64);
	__type(value, struct ssl_call);
} ssl_calls SEC(".maps");

/* (tgid, SSL object) -> offsets, tuple, role. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ECV_MAX_CONNS);
	__type(key, struct conn_key);
	__type(value, struct conn_state);
} ssl_conns SEC(".maps");

/* struct sock -> ECV_F_ROLE_CLIENT / ECV_F_ROLE_SERVER, from the open the kernel saw. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ECV_MAX_CONNS);
	__type(key, __u64);
	__type(value, __u32);
} sock_roles SEC(".maps");

/* Perf path: one DATA event under construction per CPU (16 KiB does not fit the
 * 512-byte stack); the ring path reserves its records in the ring itself. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ecv_event);
} scratch SEC(".maps");

/* 1 while this CPU's scratch is in use. Programs stay on their CPU (migration is
 * disabled) but on a fully preemptible kernel another task's uprobe may run on the same
 * CPU in the middle of a copy loop: it must not overwrite the event being sent. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64); /* claimers; 64-bit: no 32-bit atomics before BPF v3 */
} scratch_busy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

/* Sized by user space before load (a page when the perf path is used). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} ring SEC(".maps");

static __always_inline __u32 current_netns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
}

/* True when the current task passes the pid, cgroup and network-namespace filters. */
static __always_inline bool filter_pass(void)
{
	if (filter_tgid && (bpf_get_current_pid_tgid() >> 32) != filter_tgid)
		return false;
	if (filter_cgroup_id && bpf_get_current_cgroup_id() != filter_cgroup_id)
		return false;
	if (filter_netns && current_netns() != filter_netns)
		return false;
	return true;
}

static __always_inline struct conn_state *conn_get(__u64 ssl, __u32 tgid, bool from_start,
						   bool *created)
{
	struct conn_key key = { .ssl = ssl, .tgid = tgid };
	struct conn_state *st, fresh = {};

	*created = false;
	st = bpf_map_lookup_elem(&ssl_conns, &key);
	if (st)
		return st;
	fresh.flags = from_start ? ECV_F_FROM_START : 0;
	/* NOEXIST: another thread of the process may have created it meanwhile. */
	if (!bpf_map_update_elem(&ssl_conns, &key, &fresh, BPF_NOEXIST))
		*created = true;
	return bpf_map_lookup_elem(&ssl_conns, &key);
}

/* Fills the header of ev (offset, len and flags are the DATA loop's to set again). */
static __always_inline void event_begin(struct ecv_event *ev, __u16 type, __u64 ssl, __u32 dir,
					const struct conn_state *st)
{
	__u64 id = bpf_get_current_pid_tgid();

	ev->ts_ns = bpf_ktime_get_ns();
	ev->ssl = ssl;
	ev->offset = 0;
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->tgid = id >> 32;
	ev->pid = (__u32)id;
	ev->len = 0;
	ev->call_len = 0;
	ev->flags = st ? st->flags : 0;
	ev->netns = current_netns();
	ev->type = type;
	ev->dir = dir;
	if (st && (st->flags & ECV_F_TUPLE)) {
		ev->lport = st->tuple.lport;
		ev->rport = st->tuple.rport;
		ev->family = st->tuple.family;
		__builtin_memcpy(ev->laddr, st->tuple.laddr, 16);
		__builtin_memcpy(ev->raddr, st->tuple.raddr, 16);
	} else {
		ev->lport = 0;
		ev->rport = 0;
		ev->family = 0;
		__builtin_memset(ev->laddr, 0, 16);
		__builtin_memset(ev->raddr, 0, 16);
	}
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
}

/* Commit flags of a ring record: wake the consumer per batch, not per record. */
static __always_inline __u64 ring_wake_flags(void)
{
	__u64 now;

	if (bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA) >= ring_wake_bytes)
		return BPF_RB_FORCE_WAKEUP;
	now = bpf_ktime_get_ns();
	if (now - ring_last_wake_ns < ring_wake_ns)
		return BPF_RB_NO_WAKEUP;
	ring_last_wake_ns = now; /* racy across CPUs: at worst one extra wake-up */
	return BPF_RB_FORCE_WAKEUP;
}

/* Emits a header-only event (START, CLOSE, SOCK). The header fits the stack, so these
 * never touch the shared scratch buffer. */
static __always_inline void emit_meta(void *ctx, __u16 type, __u64 ssl, const struct conn_state *st)
{
	__u64 hdr[ECV_EVENT_HDR_LEN / 8] = {};
	/* Only header fields are written: every access stays inside hdr[]. */
	struct ecv_event *ev = (struct ecv_event *)hdr;

	event_begin(ev, type, ssl, 0, st);
	if (use_ringbuf) {
		if (bpf_ringbuf_output(&ring, hdr, sizeof(hdr), ring_wake_flags()))
			__sync_fetch_and_add(&ring_lost, 1);
		return;
	}
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, hdr, sizeof(hdr));
}

/* One DATA record of rec_size bytes (a constant once inlined: a reservation's size is
 * fixed at verification) holding len <= rec_size - header bytes from user address src.
 * A record the ring has no room for is counted; its bytes are a hole downstream. */
static __always_inline void ring_data(const struct ecv_event *hdr, __u64 rec_size, __u64 offset,
				      __u64 len, __u32 flags, __u64 src, __u64 wake)
{
	struct ecv_event *rec = bpf_ringbuf_reserve(&ring, rec_size, 0);

	if (!rec) {
		__sync_fetch_and_add(&ring_lost, 1);
		return;
	}
	__builtin_memcpy(rec, hdr, ECV_EVENT_HDR_LEN);
	rec->offset = offset;
	rec->flags = flags;
	if (len > rec_size - ECV_EVENT_HDR_LEN)
		len = rec_size - ECV_EVENT_HDR_LEN;
	/* Not resident (a uprobe cannot fault pages in): the header goes alone, so the
	 * bytes are a counted hole rather than zeros. */
	if (bpf_probe_read_user(rec->data, len, (const void *)src))
		len = 0;
	rec->len = len;
	bpf_ringbuf_submit(rec, wake);
}

/* The last record of a call: a partial chunk in the smallest record class that holds
 * it, or a whole one; it alone may wake the consumer. */
static __always_inline void ring_last(const struct ecv_event *hdr, __u64 offset, __u64 len,
				      __u32 flags, __u64 src)
{
	__u64 wake = ring_wake_flags();

	if (len <= 512 - ECV_EVENT_HDR_LEN)
		ring_data(hdr, 512, offset, len, flags, src, wake);
	else if (len <= 2048 - ECV_EVENT_HDR_LEN)
		ring_data(hdr, 2048, offset, len, flags, src, wake);
	else if (len <= 8192 - ECV_EVENT_HDR_LEN)
		ring_data(hdr, 8192, offset, len, flags, src, wake);
	else
		ring_data(hdr, sizeof(struct ecv_event), offset, len, flags, src, wake);
}

/* Ring path of emit_data: every chunk but the last in a loop whose body has constant
 * sizes and no wake-up, so the verifier follows it quickly on every kernel; then the
 * last one (partial, or the one a truncated call marks). */
static __always_inline void ring_emit(const struct ecv_event *hdr, __u64 buf, __u64 base,
				      __u64 captured, bool trunc)
{
	__u64 last = (captured - 1) / ECV_CHUNK_SIZE * ECV_CHUNK_SIZE; /* captured > 0 */
	__u64 last_len = captured - last, last_src = buf + last, last_off = base + last;
	__u32 flags = hdr->flags, last_flags = trunc ? flags | ECV_F_TRUNCATED : flags;

	/* Bounded loop (kernel >= 5.3): constant trip count, run-time end through last. */
	for (__u32 i = 0; i < ECV_MAX_CHUNKS; i++) {
		__u64 off = (__u64)i * ECV_CHUNK_SIZE;

		if (off >= last)
			break;
		ring_data(hdr, sizeof(struct ecv_event), base + off, ECV_CHUNK_SIZE, flags,
			  buf + off, BPF_RB_NO_WAKEUP);
	}
	ring_last(hdr, last_off, last_len, last_flags, last_src);
}

/* One chunk of the perf path from the per-CPU scratch event ev (header filled). */
static __always_inline void perf_chunk(void *ctx, struct ecv_event *ev, __u64 offset, __u64 len,
				       __u32 flags, __u64 src)
{
	ev->offset = offset;
	ev->flags = flags;
	if (len > ECV_CHUNK_SIZE)
		len = ECV_CHUNK_SIZE;
	if (bpf_probe_read_user(ev->data, len, (const void *)src)) {
		ev->len = 0;
		bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, ev, ECV_EVENT_HDR_LEN);
		return;
	}
	ev->len = len;
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, ev, ECV_EVENT_HDR_LEN + len);
}

/* Perf path of emit_data: the event is built in this CPU's scratch buffer, guarded by
 * the busy flag; every chunk but the last in a loop of constant sizes, then the last. */
static __always_inline void perf_emit(void *ctx, const struct ecv_event *hdr, __u64 buf, __u64 base,
				      __u64 captured, bool trunc)
{
	__u64 last = (captured - 1) / ECV_CHUNK_SIZE * ECV_CHUNK_SIZE; /* captured > 0 */
	__u32 zero = 0, flags = hdr->flags;
	struct ecv_event *ev;
	__u64 *busy;

	ev = bpf_map_lookup_elem(&scratch, &zero);
	busy = bpf_map_lookup_elem(&scratch_busy, &zero);
	if (!ev || !busy)
		return;
	/* Claimed by add-then-look (an exchange or a fetching add needs kernel >= 5.12):
	 * whoever sees more than its own 1 backs off, so two never both own it. */
	__sync_fetch_and_add(busy, 1);
	if (*busy != 1) {
		__sync_fetch_and_add(busy, -1);
		__sync_fetch_and_add(&busy_calls, 1);
		return;
	}
	__builtin_memcpy(ev, hdr, ECV_EVENT_HDR_LEN);
	for (__u32 i = 0; i < ECV_MAX_CHUNKS; i++) {
		__u64 off = (__u64)i * ECV_CHUNK_SIZE;

		if (off >= last)
			break;
		perf_chunk(ctx, ev, base + off, ECV_CHUNK_SIZE, flags, buf + off);
	}
	perf_chunk(ctx, ev, base + last, captured - last, trunc ? flags | ECV_F_TRUNCATED : flags,
		   buf + last);
	__sync_fetch_and_add(busy, -1);
}

/* Emits n bytes of plaintext at buf as ceil(n / 16 KiB) DATA events. */
static __always_inline void emit_data(void *ctx, const struct ssl_call *call, __u64 n)
{
	__u64 hdr[ECV_EVENT_HDR_LEN / 8] = {};
	struct ecv_event *ev = (struct ecv_event *)hdr;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct conn_state *st;
	__u64 base, captured, limit;
	bool created, trunc = false;

	st = conn_get(call->ssl, tgid, false, &created);
	if (!st)
		return;
	/* Offsets advance by the whole call, captured or not: a cut call or a lost record
	 * is a visible hole in sequence space, never shifted data. "& 1": the verifier
	 * wants the index into offsets[] provably in range. A plain read-modify-write:
	 * OpenSSL forbids concurrent calls on one SSL object, and a fetching atomic add
	 * needs kernel >= 5.12. */
	base = st->offsets[call->dir & 1];
	st->offsets[call->dir & 1] = base + n;
	event_begin(ev, ECV_EV_DATA, call->ssl, call->dir & 1, st);
	ev->call_len = n > 0xffffffffULL ? 0xffffffffU : (__u32)n;
	limit = (__u64)max_chunks * ECV_CHUNK_SIZE;
	captured = n;
	if (captured > limit) {
		captured = limit;
		trunc = true;
		__sync_fetch_and_add(&truncated_calls, 1);
	}
	if (use_ringbuf)
		ring_emit(ev, call->buf, base, captured, trunc);
	else
		perf_emit(ctx, ev, call->buf, base, captured, trunc);
}

/* --- SSL data calls ---------------------------------------------------------------- */

static __always_inline int call_enter(__u64 ssl, __u64 buf, __u64 ex_len, __u32 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call call = { .ssl = ssl, .buf = buf, .ex_len = ex_len, .dir = dir };
	struct conn_state *st;
	bool created;

	if (!ssl || !filter_pass())
		return 0;
	/* Created here (mid-stream unless a handshake uprobe saw it first) so the socket
	 * hook, which runs inside the call, has a state to write the tuple into. */
	st = conn_get(ssl, id >> 32, false, &created);
	if (!st)
		return 0;
	bpf_map_update_elem(&ssl_calls, &id, &call, BPF_ANY);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_enter, void *ssl, const void *buf, int num)
{
	return call_enter((__u64)ssl, (__u64)buf, 0, ECV_DIR_WRITE);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_enter, void *ssl, const void *buf, size_t num, size_t *written)
{
	return call_enter((__u64)ssl, (__u64)buf, (__u64)written, ECV_DIR_WRITE);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_enter, void *ssl, void *buf, int num)
{
	return call_enter((__u64)ssl, (__u64)buf, 0, ECV_DIR_READ);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_enter, void *ssl, void *buf, size_t num, size_t *readbytes)
{
	return call_enter((__u64)ssl, (__u64)buf, (__u64)readbytes, ECV_DIR_READ);
}

/* Attached as uretprobe of all four data calls: plain ones return the byte count,
 * the _ex ones 1 on success with the count in *written / *readbytes; the internal
 * functions they call (agent/sites.c), entered through the _ex programs, ret > 0. */
SEC("uretprobe")
int BPF_KRETPROBE(ssl_data_exit, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call *saved, call;
	__u64 n = 0;

	saved = bpf_map_lookup_elem(&ssl_calls, &id);
	if (!saved)
		return 0;
	call = *saved;
	bpf_map_delete_elem(&ssl_calls, &id);
	if (call.dir == SSL_CALL_HANDSHAKE)
		return 0; /* the data call's entry was not seen (attached meanwhile) */
	if (call.ex_len) {
		if ((int)ret <= 0 || bpf_probe_read_user(&n, sizeof(n), (void *)call.ex_len))
			return 0;
	} else {
		if ((int)ret <= 0)
			return 0;
		n = (__u32)(int)ret;
	}
	if (n)
		emit_data(ctx, &call, n);
	return 0;
}

/* --- handshake and end ------------------------------------------------------------- */

/* SSL_new returned: an object created while we watch is followed from its very start.
 * Overwrites any state left at that address (an SSL_free we did not see). */
SEC("uretprobe")
int BPF_KRETPROBE(ssl_new_exit, void *ssl)
{
	struct conn_key key = { .ssl = (__u64)ssl, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct conn_state fresh = { .flags = ECV_F_FROM_START };
	struct conn_state *st;

	if (!ssl || !filter_pass())
		return 0;
	bpf_map_update_elem(&ssl_conns, &key, &fresh, BPF_ANY);
	st = bpf_map_lookup_elem(&ssl_conns, &key);
	if (st)
		emit_meta(ctx, ECV_EV_START, key.ssl, st);
	return 0;
}

/* A handshake on an object that already ended (SSL_shutdown, SSL_clear and SSL_set_fd on
 * the next socket, as wrk does) or already moved data begins a new connection on the
 * same object: offsets from 0, followed from its start, the socket learned again. The sk
 * pointer is forgotten too: the next socket often sits at the freed one's address.
 * Returns true if st was reset (the caller announces the new start). */
static __always_inline bool conn_restart(struct conn_state *st)
{
	if (!st->closed && !st->offsets[0] && !st->offsets[1])
		return false;
	st->offsets[0] = 0;
	st->offsets[1] = 0;
	st->sk = 0;
	st->closed = 0;
	st->flags = ECV_F_FROM_START;
	__builtin_memset(&st->tuple, 0, sizeof(st->tuple));
	return true;
}

/* SSL_set_connect_state / SSL_set_accept_state: no I/O yet, so the object is at its
 * start even if SSL_new ran before the agent (s_client and python call these, then
 * let the first SSL_read/SSL_write drive the handshake). */
SEC("uprobe")
int BPF_KPROBE(ssl_set_state_enter, void *ssl)
{
	__u64 s = (__u64)ssl;
	struct conn_state *st;
	bool created;

	if (!s || !filter_pass())
		return 0;
	st = conn_get(s, bpf_get_current_pid_tgid() >> 32, true, &created);
	if (st && (created || conn_restart(st)))
		emit_meta(ctx, ECV_EV_START, s, st);
	return 0;
}

/* SSL_do_handshake / SSL_connect / SSL_accept: the object is followed from its start. */
SEC("uprobe")
int BPF_KPROBE(ssl_handshake_enter, void *ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call call = { .ssl = (__u64)ssl, .dir = SSL_CALL_HANDSHAKE }, *saved;
	struct conn_state *st;
	bool created;

	if (!call.ssl || !filter_pass())
		return 0;
	st = conn_get(call.ssl, id >> 32, true, &created);
	if (!st)
		return 0;
	if (created || conn_restart(st))
		emit_meta(ctx, ECV_EV_START, call.ssl, st);
	/* The handshake's own socket I/O teaches the socket hook the tuple early. Inside an
	 * SSL_read/SSL_write that drives the handshake itself (BoringSSL calls
	 * SSL_do_handshake from them), the data call's arguments stay: its uretprobe
	 * needs them, and they name the same object for the socket hook. */
	saved = bpf_map_lookup_elem(&ssl_calls, &id);
	if (!saved || saved->dir == SSL_CALL_HANDSHAKE || saved->ssl != call.ssl)
		bpf_map_update_elem(&ssl_calls, &id, &call, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_handshake_exit)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call *saved = bpf_map_lookup_elem(&ssl_calls, &id);

	/* Not a data call's entry: the handshake ran inside SSL_read/SSL_write. */
	if (saved && saved->dir == SSL_CALL_HANDSHAKE)
		bpf_map_delete_elem(&ssl_calls, &id);
	return 0;
}

static __always_inline void conn_end(void *ctx, __u64 ssl, bool free)
{
	struct conn_key key = { .ssl = ssl, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct conn_state *st = bpf_map_lookup_elem(&ssl_conns, &key);

	if (!st)
		return;
	if (!st->closed) {
		st->closed = 1;
		emit_meta(ctx, ECV_EV_CLOSE, ssl, st);
	}
	/* SSL_shutdown keeps the state: a read of the peer's close_notify may follow and
	 * its offsets must go on; SSL_free ends the object (its address may be reused). */
	if (free)
		bpf_map_delete_elem(&ssl_conns, &key);
}

SEC("uprobe")
int BPF_KPROBE(ssl_shutdown_enter, void *ssl)
{
	conn_end(ctx, (__u64)ssl, false);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_free_enter, void *ssl)
{
	conn_end(ctx, (__u64)ssl, true);
	return 0;
}

/* --- socket hooks: learn the struct sock under the SSL object ---------------------- */

static __always_inline void sock_learn(void *ctx, struct sock *sk)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key key = { .tgid = id >> 32 };
	struct conn_state *st;
	struct sock_tuple t = {};
	struct ssl_call *call;
	__u64 skp = (__u64)sk;
	__u32 *role;

	call = bpf_map_lookup_elem(&ssl_calls, &id);
	if (!call || !sk)
		return;
	key.ssl = call->ssl;
	st = bpf_map_lookup_elem(&ssl_conns, &key);
	if (!st || st->sk == skp)
		return;
	if (sock_read_tuple(sk, &t))
		return;
	st->tuple = t;
	st->sk = skp;
	st->flags &= ~(ECV_F_ROLE_CLIENT | ECV_F_ROLE_SERVER);
	role = bpf_map_lookup_elem(&sock_roles, &skp);
	if (role)
		st->flags |= *role & (ECV_F_ROLE_CLIENT | ECV_F_ROLE_SERVER);
	st->flags |= ECV_F_TUPLE;
	emit_meta(ctx, ECV_EV_SOCK, key.ssl, st);
}

/* Preferred hook (the design's): needs CONFIG_KPROBES. */
SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(tcp_sendmsg_kprobe, struct sock *sk)
{
	sock_learn(ctx, sk);
	return 0;
}

SEC("kprobe/tcp_recvmsg")
int BPF_KPROBE(tcp_recvmsg_kprobe, struct sock *sk)
{
	sock_learn(ctx, sk);
	return 0;
}

/* Same functions through BTF trampolines (no kprobes needed, but may be refused). */
SEC("fentry/tcp_sendmsg")
int BPF_PROG(tcp_sendmsg_fentry, struct sock *sk)
{
	sock_learn(ctx, sk);
	return 0;
}

SEC("fentry/tcp_recvmsg")
int BPF_PROG(tcp_recvmsg_fentry, struct sock *sk)
{
	sock_learn(ctx, sk);
	return 0;
}

/* Kernels >= 6.3: every socket send/receive, after the fact, with its struct sock. */
SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send_length_btf, struct sock *sk, int ret, int flags)
{
	sock_learn(ctx, sk);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_length_btf, struct sock *sk, int ret, int flags)
{
	sock_learn(ctx, sk);
	return 0;
}

/* Last resort, any kernel with syscall tracepoints: the fd argument of the socket I/O
 * syscalls leads to the socket. Entry is enough: the fd -> socket binding is known
 * before the call runs, and nothing at exit adds to it. */
static __always_inline int sys_io_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sock *sk;

	/* Cheap test first: most syscalls on the host are not inside an SSL_* call. */
	if (!bpf_map_lookup_elem(&ssl_calls, &id))
		return 0;
	sk = sock_from_fd((int)BPF_CORE_READ(ctx, args[0]));
	if (sk)
		sock_learn(ctx, sk);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int sys_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	return sys_io_enter(ctx);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int sys_enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	return sys_io_enter(ctx);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int sys_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return sys_io_enter(ctx);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int sys_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return sys_io_enter(ctx);
}

SEC("tracepoint/syscalls/sys_enter_read")
int sys_enter_read(struct trace_event_raw_sys_enter *ctx)
{
	return sys_io_enter(ctx);
}

SEC("tracepoint/syscalls/sys_enter_readv")
int sys_enter_readv(struct trace_event_raw_sys_enter *ctx)
{
	return sys_io_enter(ctx);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int sys_enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	return sys_io_enter(ctx);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int sys_enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	return sys_io_enter(ctx);
}

/* --- roles ------------------------------------------------------------------------- */

SEC("tracepoint/sock/inet_sock_set_state")
int inet_sock_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 sk = (__u64)ctx->skaddr;
	__u32 role;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (ctx->newstate == TCP_CLOSE_) {
		bpf_map_delete_elem(&sock_roles, &sk);
		return 0;
	}
	if (ctx->newstate != TCP_ESTABLISHED_)
		return 0;
	if (ctx->oldstate == TCP_SYN_SENT_)
		role = ECV_F_ROLE_CLIENT;
	else if (ctx->oldstate == TCP_SYN_RECV_)
		role = ECV_F_ROLE_SERVER;
	else
		return 0;
	bpf_map_update_elem(&sock_roles, &sk, &role, BPF_ANY);
	return 0;
}

/* --- GnuTLS (agent/sites.h: sites_gnutls) ------------------------------------------ */

/* gnutls_record_send2 (session, data, size, pad, flags) returns the bytes sent (ssize_t).
 * The session stands for the SSL object; the
 * handshake, bye and deinit hooks are the OpenSSL ones on gnutls_handshake, gnutls_bye
 * and gnutls_deinit. The receiver below also reads handshake and alert records. */
#define GNUTLS_APPLICATION_DATA 23

/* The session field gnutls_transport_get_int reads (agent/sites.c decodes it), written
 * by user space when a GnuTLS library is hooked; 0 = unknown, or two hooked versions
 * disagree. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} gnutls_fd_disp SEC(".maps");

/* A session whose tuple is still unknown (its handshake ran before the agent) learns it
 * from its transport fd, when that is a socket: with the default transport it is the
 * connection's; with a custom one the value is no socket of this process or the kernel
 * socket hook corrects it at the call's first socket I/O. */
static __always_inline void gnutls_fd_learn(void *ctx, __u64 session)
{
	struct conn_key key = { .ssl = session, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct conn_state *st;
	__u32 zero = 0, *disp;
	struct sock *sk;
	int fd;

	disp = bpf_map_lookup_elem(&gnutls_fd_disp, &zero);
	if (!disp || !*disp)
		return;
	st = bpf_map_lookup_elem(&ssl_conns, &key);
	if (!st || (st->flags & ECV_F_TUPLE))
		return;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(session + *disp)))
		return;
	sk = sock_from_fd(fd);
	if (sk)
		sock_learn(ctx, sk);
}

SEC("uprobe")
int BPF_KPROBE(gnutls_send_enter, void *session, const void *data)
{
	call_enter((__u64)session, (__u64)data, 0, ECV_DIR_WRITE);
	gnutls_fd_learn(ctx, (__u64)session);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(gnutls_recv_enter, void *session, int type, void *data)
{
	if (type != GNUTLS_APPLICATION_DATA)
		return 0;
	call_enter((__u64)session, (__u64)data, 0, ECV_DIR_READ);
	gnutls_fd_learn(ctx, (__u64)session);
	return 0;
}

/* A data call of a stack whose hooked function also serves other work returned:
 * _gnutls_recv_int reading a handshake record inside gnutls_handshake, PR_Read on a plain
 * file inside SSL_ForceHandshake. Those leave the handshake's entry alone: its socket I/O
 * still teaches the socket hook the tuple. Counts only the bytes the call returned. */
SEC("uretprobe")
int BPF_KRETPROBE(lib_data_exit, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call *saved, call;

	saved = bpf_map_lookup_elem(&ssl_calls, &id);
	if (!saved || saved->dir == SSL_CALL_HANDSHAKE)
		return 0;
	call = *saved;
	bpf_map_delete_elem(&ssl_calls, &id);
	if ((int)ret > 0)
		emit_data(ctx, &call, (__u64)(int)ret);
	return 0;
}

/* --- NSS (libssl3 + libnspr4) ------------------------------------------------------ */

/* NSS's SSL layer methods are static: the data is taken at NSPR's PR_Read/PR_Write/
 * PR_Recv/PR_Send, which dispatch through any file descriptor's method table. Only the
 * descriptors SSL_ImportFD returned (the SSL layer on top of the socket) are followed;
 * the PRFileDesc stands for the SSL object. */
struct nss_fd_key {
	__u64 fd;
	__u32 tgid;
	__u32 pad;
};

/* (tgid, PRFileDesc *) of every SSL-layer descriptor, until PR_Close. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ECV_MAX_CONNS);
	__type(key, struct nss_fd_key);
	__type(value, __u32);
} nss_fds SEC(".maps");

/* SSL_ImportFD returned a new SSL socket: followed from its very start, as an SSL object
 * from SSL_new (its descriptor may sit at the plain socket's address). */
SEC("uretprobe")
int BPF_KRETPROBE(nss_import_exit, void *fd)
{
	struct nss_fd_key key = { .fd = (__u64)fd, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct conn_key ck = { .ssl = (__u64)fd, .tgid = key.tgid };
	struct conn_state fresh = { .flags = ECV_F_FROM_START };
	struct conn_state *st;
	__u32 one = 1;

	if (!fd || !filter_pass())
		return 0;
	bpf_map_update_elem(&nss_fds, &key, &one, BPF_ANY);
	bpf_map_update_elem(&ssl_conns, &ck, &fresh, BPF_ANY);
	st = bpf_map_lookup_elem(&ssl_conns, &ck);
	if (st)
		emit_meta(ctx, ECV_EV_START, ck.ssl, st);
	return 0;
}

static __always_inline int nss_enter(__u64 fd, __u64 buf, __u32 dir)
{
	struct nss_fd_key key = { .fd = fd, .tgid = bpf_get_current_pid_tgid() >> 32 };

	/* Most NSPR I/O is on plain files and sockets: one lookup and out. */
	if (!bpf_map_lookup_elem(&nss_fds, &key))
		return 0;
	return call_enter(fd, buf, 0, dir);
}

SEC("uprobe")
int BPF_KPROBE(nss_write_enter, void *fd, const void *buf)
{
	return nss_enter((__u64)fd, (__u64)buf, ECV_DIR_WRITE);
}

SEC("uprobe")
int BPF_KPROBE(nss_read_enter, void *fd, void *buf)
{
	return nss_enter((__u64)fd, (__u64)buf, ECV_DIR_READ);
}

SEC("uprobe")
int BPF_KPROBE(nss_close_enter, void *fd)
{
	struct nss_fd_key key = { .fd = (__u64)fd, .tgid = bpf_get_current_pid_tgid() >> 32 };

	if (!bpf_map_lookup_elem(&nss_fds, &key))
		return 0;
	bpf_map_delete_elem(&nss_fds, &key);
	conn_end(ctx, key.fd, true);
	return 0;
}

/* --- Go crypto/tls (agent/sites.h: sites_go) --------------------------------------- */

/* ABIInternal: at (*Conn).Read/Write's entry RAX = *Conn, RBX/RCX = b.ptr/len; at each
 * RET RAX = n. A goroutine may return on another thread than it entered (and a thread
 * runs many goroutines): calls are keyed by the goroutine, R14 = g. No uretprobes: the
 * runtime moves goroutine stacks and would find the kernel's return trampoline. */
struct go_key {
	__u64 g;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ECV_MAX_THREADS);
	__type(key, struct go_key);
	__type(value, struct ssl_call);
} go_calls SEC(".maps");

/* Addresses of go.itab.*net.TCPConn,net.Conn in the hooked (fixed-address) Go
 * executables, written by user space: a tls.Conn whose net.Conn has one of them holds a
 * *net.TCPConn, whose socket fd is *(int64 *)(*(*(conn + 8)) + 16). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} go_tcpconn_itabs SEC(".maps");

#define X86_FLAGS_CF (1 << 0)
#define X86_FLAGS_ZF (1 << 6)

/* The tuple of a Go connection from its *net.TCPConn (the socket hook cannot help: the
 * goroutine's socket I/O may run on any thread). */
static __always_inline void go_learn(void *ctx, __u64 conn, struct conn_state *st)
{
	__u64 itab = 0, tcpconn = 0, netfd = 0, skp;
	struct sock_tuple t = {};
	struct sock *sk;
	__s64 fd = -1;
	__u32 *role;

	if (bpf_probe_read_user(&itab, sizeof(itab), (void *)conn) ||
	    !bpf_map_lookup_elem(&go_tcpconn_itabs, &itab))
		return;
	if (bpf_probe_read_user(&tcpconn, sizeof(tcpconn), (void *)(conn + 8)) || !tcpconn ||
	    bpf_probe_read_user(&netfd, sizeof(netfd), (void *)tcpconn) || !netfd ||
	    bpf_probe_read_user(&fd, sizeof(fd), (void *)(netfd + 16)))
		return;
	if (fd < 0 || fd > 0x7fffffff)
		return;
	sk = sock_from_fd((int)fd);
	skp = (__u64)sk;
	if (!sk || st->sk == skp || sock_read_tuple(sk, &t))
		return;
	st->tuple = t;
	st->sk = skp;
	st->flags &= ~(ECV_F_ROLE_CLIENT | ECV_F_ROLE_SERVER);
	role = bpf_map_lookup_elem(&sock_roles, &skp);
	if (role)
		st->flags |= *role & (ECV_F_ROLE_CLIENT | ECV_F_ROLE_SERVER);
	st->flags |= ECV_F_TUPLE;
	emit_meta(ctx, ECV_EV_SOCK, conn, st);
}

static __always_inline int go_enter(struct pt_regs *ctx, __u32 dir, bool at_jbe)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct go_key key = { .g = ctx->r14, .tgid = tgid };
	struct ssl_call call = { .ssl = ctx->ax, .buf = ctx->bx, .dir = dir };
	struct conn_state *st;
	bool created;

	/* At the stack check's jbe: a taken branch goes to morestack, which comes back
	 * to the entry; that second pass is the call. */
	if (at_jbe && (ctx->flags & (X86_FLAGS_CF | X86_FLAGS_ZF)))
		return 0;
	if (!call.ssl || !filter_pass())
		return 0;
	st = conn_get(call.ssl, tgid, false, &created);
	if (!st)
		return 0;
	if (!(st->flags & ECV_F_TUPLE))
		go_learn(ctx, call.ssl, st);
	bpf_map_update_elem(&go_calls, &key, &call, BPF_ANY);
	return 0;
}

SEC("uprobe")
int go_write_enter(struct pt_regs *ctx)
{
	return go_enter(ctx, ECV_DIR_WRITE, false);
}

SEC("uprobe")
int go_write_enter_jbe(struct pt_regs *ctx)
{
	return go_enter(ctx, ECV_DIR_WRITE, true);
}

SEC("uprobe")
int go_read_enter(struct pt_regs *ctx)
{
	return go_enter(ctx, ECV_DIR_READ, false);
}

SEC("uprobe")
int go_read_enter_jbe(struct pt_regs *ctx)
{
	return go_enter(ctx, ECV_DIR_READ, true);
}

/* At every RET of Read/Write: n = RAX bytes moved, counted even with an error. */
SEC("uprobe")
int go_ret(struct pt_regs *ctx)
{
	struct go_key key = { .g = ctx->r14, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct ssl_call *saved, call;
	__s64 n = (__s64)ctx->ax;

	saved = bpf_map_lookup_elem(&go_calls, &key);
	if (!saved)
		return 0;
	call = *saved;
	bpf_map_delete_elem(&go_calls, &key);
	if (n > 0)
		emit_data(ctx, &call, (__u64)n);
	return 0;
}

/* (*Conn).clientHandshake / serverHandshake: the connection is followed from its start
 * (they run once per connection, before its first data). */
SEC("uprobe")
int go_handshake_enter(struct pt_regs *ctx)
{
	__u64 conn = ctx->ax;
	struct conn_state *st;
	bool created;

	if (!conn || !filter_pass())
		return 0;
	st = conn_get(conn, bpf_get_current_pid_tgid() >> 32, true, &created);
	if (!st)
		return 0;
	if (!(st->flags & ECV_F_TUPLE))
		go_learn(ctx, conn, st);
	if (created || conn_restart(st)) {
		emit_meta(ctx, ECV_EV_START, conn, st);
	} else if (!(st->flags & ECV_F_FROM_START) && !st->offsets[0] && !st->offsets[1]) {
		/* A server's first Read drives its handshake: the state that Read made
		 * before it is this connection's from its start. */
		st->flags |= ECV_F_FROM_START;
		emit_meta(ctx, ECV_EV_START, conn, st);
	}
	return 0;
}

/* (*Conn).Close: the connection ends. */
SEC("uprobe")
int go_close_enter(struct pt_regs *ctx)
{
	conn_end(ctx, ctx->ax, true);
	return 0;
}
