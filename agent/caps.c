/* agent/caps.c - dropping capabilities after start-up. */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#define CAPS_MAX 64 /* two 32-bit words of _LINUX_CAPABILITY_VERSION_3 */

uint64_t caps_needed(int auto_discover)
{
	if (!auto_discover)
		return CAPS_BIT(CAP_SYS_PTRACE);
	return CAPS_BIT(CAP_BPF) | CAPS_BIT(CAP_PERFMON) | CAPS_BIT(CAP_SYS_ADMIN) |
	       CAPS_BIT(CAP_SYS_PTRACE) | CAPS_BIT(CAP_DAC_READ_SEARCH);
}

static int caps_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };

	memset(data, 0, 2 * sizeof(*data));
	return syscall(SYS_capget, &hdr, data) ? -errno : 0;
}

int caps_effective(uint64_t *out)
{
	struct __user_cap_data_struct data[2];
	int err = caps_get(data);

	if (!err)
		*out = (uint64_t)data[1].effective << 32 | data[0].effective;
	return err;
}

/* Highest capability number the kernel knows. */
static int last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int n = CAP_LAST_CAP;

	if (f) {
		if (fscanf(f, "%d", &n) != 1 || n < 0 || n >= CAPS_MAX)
			n = CAP_LAST_CAP;
		fclose(f);
	}
	return n;
}

int caps_limit(uint64_t keep)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	uint64_t prm;
	int err, last = last_cap();

	err = caps_get(data);
	if (err)
		return err;
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which goes below. It
	 * keeps an execve() (none is made, but a library could) from regaining anything.
	 * Without CAP_SETPCAP (a pod granted only what it needs) the bounding set stays;
	 * the permitted set below, which is what a thread can ever use, still shrinks. */
	if (data[0].effective & CAPS_BIT(CAP_SETPCAP)) {
		for (int c = 0; c <= last; c++) {
			if (keep & CAPS_BIT(c))
				continue;
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) && errno != EINVAL)
				return -errno;
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -errno;
	prm = ((uint64_t)data[1].permitted << 32 | data[0].permitted) & keep;
	data[0].permitted = data[0].effective = (uint32_t)prm;
	data[1].permitted = data[1].effective = (uint32_t)(prm >> 32);
	data[0].inheritable = data[1].inheritable = 0;
	return syscall(SYS_capset, &hdr, data) ? -errno : 0;
}

static const char *const cap_name[CAPS_MAX] = {
	[CAP_CHOWN] = "cap_chown",
	[CAP_DAC_OVERRIDE] = "cap_dac_override",
	[CAP_DAC_READ_SEARCH] = "cap_dac_read_search",
	[CAP_FOWNER] = "cap_fowner",
	[CAP_FSETID] = "cap_fsetid",
	[CAP_KILL] = "cap_kill",
	[CAP_SETGID] = "cap_setgid",
	[CAP_SETUID] = "cap_setuid",
	[CAP_SETPCAP] = "cap_setpcap",
	[CAP_NET_BIND_SERVICE] = "cap_net_bind_service",
	[CAP_NET_ADMIN] = "cap_net_admin",
	[CAP_NET_RAW] = "cap_net_raw",
	[CAP_IPC_LOCK] = "cap_ipc_lock",
	[CAP_SYS_MODULE] = "cap_sys_module",
	[CAP_SYS_PTRACE] = "cap_sys_ptrace",
	[CAP_SYS_ADMIN] = "cap_sys_admin",
	[CAP_SYS_RESOURCE] = "cap_sys_resource",
	[CAP_PERFMON] = "cap_perfmon",
	[CAP_BPF] = "cap_bpf",
};

const char *caps_names(uint64_t set, char *out, size_t cap)
{
	size_t used = 0;

	if (!cap)
		return out;
	out[0] = '\0';
	for (int c = 0; c < CAPS_MAX; c++) {
		char num[16];
		const char *name = cap_name[c];
		int n;

		if (!(set & CAPS_BIT(c)))
			continue;
		if (!name) {
			snprintf(num, sizeof(num), "cap_%d", c);
			name = num;
		}
		n = snprintf(out + used, cap - used, "%s%s", used ? "," : "", name);
		if (n < 0 || (size_t)n >= cap - used) {
			out[used] = '\0'; /* whole names only */
			break;
		}
		used += (size_t)n;
	}
	if (!used)
		snprintf(out, cap, "none");
	return out;
}
