/* tests/kernels/offers.c - tells which of the agent's socket hooks the running kernel
 * offers, independently of the agent: loads and attaches each program of
 * offers.bpf.o alone and prints one line per hook,
 *   kprobe offered
 *   tracepoint not-offered <reason>
 * Usage: ecv-kernel-offers OBJECT. Exit 0 once every hook has been tried. */
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const hooks[] = { "kprobe", "fentry", "tracepoint", "syscalls" };

/* The first line libbpf printed at a try: the refusal's own words. */
static char first_msg[256];

static int keep_first(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[sizeof(first_msg)];

	if (level == LIBBPF_DEBUG || first_msg[0])
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = 0;
	memcpy(first_msg, line, sizeof(line));
	return 0;
}

/* Why HOOK is missing, where a file of the kernel says so better than an errno. */
static const char *known_reason(const char *hook)
{
	if (!strcmp(hook, "kprobe") && access("/sys/bus/event_source/devices/kprobe", F_OK))
		return "kernel without kprobes (no /sys/bus/event_source/devices/kprobe)";
	if (!strcmp(hook, "tracepoint") &&
	    access("/sys/kernel/tracing/events/sock/sock_send_length", F_OK) &&
	    access("/sys/kernel/debug/tracing/events/sock/sock_send_length", F_OK))
		return "kernel without the tracepoint sock/sock_send_length";
	return NULL;
}

static int try_hook(const char *path, int h)
{
	char name[32];
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_link *link = NULL;
	const char *stage = "open";
	const char *reason;
	int err;

	first_msg[0] = 0;
	snprintf(name, sizeof(name), "offer_%s", hooks[h]);
	obj = bpf_object__open_file(path, NULL);
	err = libbpf_get_error(obj);
	if (err) {
		obj = NULL;
		goto cleanup;
	}
	bpf_object__for_each_program(prog, obj)
		bpf_program__set_autoload(prog, !strcmp(bpf_program__name(prog), name));
	stage = "load";
	err = bpf_object__load(obj);
	if (err)
		goto cleanup;
	stage = "attach";
	link = bpf_program__attach(bpf_object__find_program_by_name(obj, name));
	err = libbpf_get_error(link);
	if (err)
		link = NULL;
cleanup:
	if (!err) {
		printf("%s offered\n", hooks[h]);
	} else {
		reason = known_reason(hooks[h]);
		if (reason)
			printf("%s not-offered %s\n", hooks[h], reason);
		else
			printf("%s not-offered refused at %s: %s%s%s%s\n", hooks[h], stage,
			       strerror(err < 0 ? -err : err), first_msg[0] ? " (" : "", first_msg,
			       first_msg[0] ? ")" : "");
	}
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OBJECT\n", argv[0]);
		return 2;
	}
	libbpf_set_print(keep_first);
	for (int h = 0; h < (int)(sizeof(hooks) / sizeof(hooks[0])); h++)
		try_hook(argv[1], h);
	return 0;
}
