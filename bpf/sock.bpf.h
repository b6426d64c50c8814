/* bpf/sock.bpf.h - reading a TCP socket's endpoints from kernel structures (CO-RE).
 * Owns: struct sock -> family/addresses/ports, fd -> struct sock through the task's
 * file table. Does not own: what the tuple is used for (ecv.bpf.c). */
#ifndef ECV_SOCK_BPF_H
#define ECV_SOCK_BPF_H

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef IPPROTO_TCP
#define IPPROTO_TCP 6
#endif
#define ECV_S_IFMT 00170000
#define ECV_S_IFSOCK 0140000

/* Endpoints of one TCP socket, addresses as 16 bytes (IPv4 as ::ffff:a.b.c.d). */
struct sock_tuple {
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport; /* host byte order */
	__u16 rport;
	__u8 family;
};

static __always_inline void sock_v4_mapped(__u8 out[16], __u32 v4_be)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &v4_be, 4);
}

static __always_inline bool sock_is_v4_mapped(const __u8 a[16])
{
	for (int i = 0; i < 10; i++)
		if (a[i])
			return false;
	return a[10] == 0xff && a[11] == 0xff;
}

/* Fills t from a TCP socket. Returns 0, or -1 for anything but an IPv4/IPv6 TCP socket.
 * A dual-stack IPv6 socket talking to an IPv4 peer (both addresses v4-mapped) is
 * reported as AF_INET: that is what travels on the wire and what the frames must say. */
static __always_inline int sock_read_tuple(struct sock *sk, struct sock_tuple *t)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* sk_protocol was a bitfield before 5.6; the probed bitfield read handles both. */
	__u16 proto = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);

	if (proto != IPPROTO_TCP)
		return -1;
	t->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		sock_v4_mapped(t->laddr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		sock_v4_mapped(t->raddr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
		t->family = AF_INET;
		return 0;
	}
	if (family != AF_INET6)
		return -1;
	BPF_CORE_READ_INTO(&t->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	BPF_CORE_READ_INTO(&t->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	t->family = sock_is_v4_mapped(t->laddr) && sock_is_v4_mapped(t->raddr) ? AF_INET : AF_INET6;
	return 0;
}

/* The struct sock behind file descriptor fd of the current task, or NULL when fd is not
 * a socket. Walks task->files->fdt->fd[fd] -> file -> socket -> sk with CO-RE reads. */
static __always_inline struct sock *sock_from_fd(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds;
	struct file *file = NULL;
	struct socket *sock;
	unsigned int max_fds;
	umode_t mode;

	if (fd < 0)
		return NULL;
	max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
	if ((unsigned int)fd >= max_fds)
		return NULL;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	/* Only sockets: their inode mode says so, no kernel symbol address needed. */
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & ECV_S_IFMT) != ECV_S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

#endif
