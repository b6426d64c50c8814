/* agent/targets.c - what TLS stack a file carries, for discovery (targets.h). */
#include <errno.h>
#include <string.h>

#include "sites.h"
#include "targets.h"

static const char *const kind_names[TARGET_KIND_N] = {
	[TARGET_NONE] = "none", [TARGET_OPENSSL] = "openssl", [TARGET_GNUTLS] = "gnutls",
	[TARGET_NSS] = "nss",	[TARGET_GO] = "go",
};

const char *targets_kind_name(enum target_kind kind)
{
	return kind < TARGET_KIND_N ? kind_names[kind] : "?";
}

enum target_kind targets_lib_kind(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (!strncmp(base, "libssl.so", 9))
		return TARGET_OPENSSL;
	if (!strncmp(base, "libgnutls.so", 12))
		return TARGET_GNUTLS;
	if (!strncmp(base, "libssl3.so", 10) || targets_is_nspr(path))
		return TARGET_NSS;
	return TARGET_NONE;
}

bool targets_is_nspr(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "libnspr4.so", 11);
}

int targets_exe_kind(const char *path, char *err, size_t errlen)
{
	static const char *const openssl[] = { "SSL_read", "SSL_write" };
	char ver[32];
	bool found[2];
	int rc;

	rc = sites_find_funcs(path, openssl, 2, found, err, errlen);
	if (rc)
		return rc;
	if (found[0] && found[1])
		return TARGET_OPENSSL;
	/* Go by its build info, never by strings: crypto/tls in its symbol table or, stripped,
	 * in its function table. */
	rc = sites_go_detect(path, ver, sizeof(ver), err, errlen);
	if (rc < 0)
		return rc;
	return rc ? TARGET_GO : TARGET_NONE;
}
