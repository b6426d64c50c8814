// SPDX-License-Identifier: GPL-2.0
/* tests/kernels/offers.bpf.c - one empty program per socket-hook mechanism of the
 * agent (bpf/ecv.bpf.c), each attached where the agent's is: what offers.c loads and
 * attaches one at a time to tell which hooks a kernel offers, whatever the agent does. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("kprobe/tcp_sendmsg")
int offer_kprobe(void *ctx)
{
	return 0;
}

SEC("fentry/tcp_sendmsg")
int offer_fentry(void *ctx)
{
	return 0;
}

SEC("tp_btf/sock_send_length")
int offer_tracepoint(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int offer_syscalls(void *ctx)
{
	return 0;
}
