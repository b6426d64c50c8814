/* common/ecv_event.h - the one event layout shared by bpf/ (the BPF programs) and agent/.
 * Owns: the BPF -> user-space ABI (perf event array samples).
 * Fixed-width fields, largest first. The user side pins the size with _Static_assert. */
#ifndef ECV_EVENT_H
#define ECV_EVENT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define ECV_CHUNK_SIZE 16384 /* bytes of plaintext per event */
#define ECV_MAX_CHUNKS 64    /* chunks per SSL call captured intact: 1 MiB */

enum ecv_event_type {
	ECV_EV_DATA = 1,  /* plaintext of one SSL_read/SSL_write call (one chunk of it) */
	ECV_EV_START = 2, /* handshake call seen: the SSL object is followed from its start */
	ECV_EV_CLOSE = 3, /* SSL_free/SSL_shutdown: the connection ends */
	ECV_EV_SOCK = 4,  /* the socket under an SSL object became known (tuple, role) */
};

enum ecv_dir {
	ECV_DIR_WRITE = 0, /* local -> remote (SSL_write*) */
	ECV_DIR_READ = 1,  /* remote -> local (SSL_read*) */
};

enum ecv_event_flags {
	ECV_F_TRUNCATED = 1 << 0,   /* the call was longer than the capture limit */
	ECV_F_FROM_START = 1 << 1,  /* offsets are absolute: the SSL object was seen from its
				     * handshake */
	ECV_F_TUPLE = 1 << 2,	    /* laddr/raddr/lport/rport/family are valid */
	ECV_F_ROLE_CLIENT = 1 << 3, /* the kernel saw an active open */
	ECV_F_ROLE_SERVER = 1 << 4, /* the kernel saw a passive open */
};

struct ecv_event {
	__u64 ts_ns;  /* bpf_ktime_get_ns() */
	__u64 ssl;    /* SSL object pointer (user space address) */
	__u64 offset; /* byte offset of data[0] in the (ssl, dir) plaintext stream */
	__u64 cgroup_id;
	__u32 tgid;
	__u32 pid;
	__u32 len;	/* valid bytes in data[] */
	__u32 call_len; /* bytes the whole SSL call moved (may exceed what was captured) */
	__u32 flags;	/* ecv_event_flags */
	__u32 netns;	/* network namespace inode */
	__u16 type;	/* ecv_event_type */
	__u16 lport;	/* host byte order */
	__u16 rport;
	__u8 dir;	/* ecv_dir */
	__u8 family;	/* AF_INET (2) / AF_INET6 (10) when ECV_F_TUPLE */
	__u8 laddr[16]; /* local address, IPv4 as ::ffff:a.b.c.d */
	__u8 raddr[16]; /* remote address */
	char comm[16];
	__u8 data[ECV_CHUNK_SIZE];
};

/* An integer constant expression (usable for array sizes, in BPF and user space). */
#define ECV_EVENT_HDR_LEN ((unsigned long)__builtin_offsetof(struct ecv_event, data))

#endif
