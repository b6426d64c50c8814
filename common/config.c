/* common/config.c - `--config FILE` (JSON, jansson) turned into argv entries. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"

/* A growable, NULL-terminated argv whose strings it owns. */
struct strvec {
	char **v;
	int n;
	int cap;
};

static int strvec_push_owned(struct strvec *sv, char *s)
{
	if (!s)
		return -ENOMEM;
	if (sv->n + 2 > sv->cap) {
		int cap = sv->cap ? sv->cap * 2 : 16;
		char **v = realloc(sv->v, (size_t)cap * sizeof(*v));

		if (!v) {
			free(s);
			return -ENOMEM;
		}
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
	return 0;
}

static int strvec_push(struct strvec *sv, const char *s)
{
	return strvec_push_owned(sv, strdup(s));
}

static int strvec_pushf(struct strvec *sv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int strvec_pushf(struct strvec *sv, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	return strvec_push_owned(sv, s);
}

/* Hands the array to the caller; an empty vector still yields a valid "{ NULL }". */
static int strvec_take(struct strvec *sv, int *argc, char ***argv)
{
	if (!sv->v) {
		sv->v = calloc(1, sizeof(*sv->v));
		if (!sv->v)
			return -ENOMEM;
	}
	*argc = sv->n;
	*argv = sv->v;
	sv->v = NULL;
	sv->n = sv->cap = 0;
	return 0;
}

void config_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const struct option *find_option(const struct option *longopts, const char *name)
{
	for (const struct option *o = longopts; o && o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

/* Writes a scalar argument value as the command line would carry it. Returns 0, -EINVAL
 * when v is not a string or a number, -ENOMEM. */
static int push_value(struct strvec *sv, const char *name, const json_t *v)
{
	double d;
	char buf[64];

	switch (json_typeof(v)) {
	case JSON_STRING:
		return strvec_pushf(sv, "--%s=%s", name, json_string_value(v));
	case JSON_INTEGER:
		return strvec_pushf(sv, "--%s=%" JSON_INTEGER_FORMAT, name, json_integer_value(v));
	case JSON_REAL:
		/* Shortest text that reads back as the same double, so "0.1" stays "0.1". */
		d = json_real_value(v);
		snprintf(buf, sizeof(buf), "%.15g", d);
		if (strtod(buf, NULL) != d)
			snprintf(buf, sizeof(buf), "%.17g", d);
		return strvec_pushf(sv, "--%s=%s", name, buf);
	default:
		return -EINVAL;
	}
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* One key of the file. Returns 0, -ENOMEM, or -EINVAL with err set. */
static int convert_key(struct strvec *sv, const char *path, const struct option *o, const char *key,
		       const json_t *v, char *err, size_t errlen)
{
	size_t i;
	json_t *e;
	int ret;

	if (json_is_object(v)) {
		set_err(err, errlen, "%s: key '%s': nested objects are not allowed", path, key);
		return -EINVAL;
	}

	switch (o->has_arg) {
	case no_argument:
		if (!json_is_boolean(v)) {
			set_err(err, errlen, "%s: key '%s': expected a boolean, got %s", path, key,
				type_name(v));
			return -EINVAL;
		}
		return json_is_true(v) ? strvec_pushf(sv, "--%s", key) : 0;

	case optional_argument:
		if (json_is_boolean(v))
			return json_is_true(v) ? strvec_pushf(sv, "--%s", key) : 0;
		ret = push_value(sv, key, v);
		if (ret == -EINVAL)
			set_err(err, errlen, "%s: key '%s': expected a string or a boolean, got %s",
				path, key, type_name(v));
		return ret;

	default: /* required_argument */
		if (json_is_array(v)) {
			/* An array repeats the flag: the only meaningful use is a repeatable one.
			 */
			json_array_foreach (v, i, e) {
				ret = push_value(sv, key, e);
				if (ret == -EINVAL)
					set_err(err, errlen,
						"%s: key '%s'[%zu]: expected a string, got %s",
						path, key, i, type_name(e));
				if (ret)
					return ret;
			}
			return 0;
		}
		ret = push_value(sv, key, v);
		if (ret == -EINVAL)
			set_err(err, errlen, "%s: key '%s': expected a string, got %s", path, key,
				type_name(v));
		return ret;
	}
}

int config_to_argv(const char *path, const struct option *longopts, int *argc, char ***argv,
		   char *err, size_t errlen)
{
	struct strvec sv = { 0 };
	json_error_t jerr;
	json_t *root = NULL;
	FILE *f = NULL;
	struct stat st;
	const char *key;
	json_t *v;
	int ret;

	*argv = NULL;
	*argc = 0;
	f = fopen(path, "r");
	if (!f) {
		ret = -errno;
		set_err(err, errlen, "%s: %s", path, strerror(-ret));
		goto cleanup;
	}
	/* fopen() accepts a directory; say so instead of a puzzling JSON error. */
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		set_err(err, errlen, "%s: %s", path, strerror(EISDIR));
		goto cleanup;
	}
	root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		ret = -EINVAL;
		set_err(err, errlen, "%s:%d:%d: invalid JSON: %s", path, jerr.line, jerr.column,
			jerr.text);
		goto cleanup;
	}
	if (!json_is_object(root)) {
		ret = -EINVAL;
		set_err(err, errlen, "%s: expected a JSON object of option names, got %s", path,
			type_name(root));
		goto cleanup;
	}

	/* jansson keeps insertion order, so repeated flags keep the file's order. */
	json_object_foreach (root, key, v) {
		const struct option *o = find_option(longopts, key);

		if (!o) {
			ret = -EINVAL;
			set_err(err, errlen, "%s: unknown key '%s'", path, key);
			goto cleanup;
		}
		if (strcmp(key, "config") == 0) {
			ret = -EINVAL;
			set_err(err, errlen, "%s: key 'config': a config file cannot name another",
				path);
			goto cleanup;
		}
		ret = convert_key(&sv, path, o, key, v, err, errlen);
		if (ret) {
			if (ret == -ENOMEM)
				set_err(err, errlen, "%s: out of memory", path);
			goto cleanup;
		}
	}
	ret = strvec_take(&sv, argc, argv);
	if (ret)
		set_err(err, errlen, "%s: out of memory", path);

cleanup:
	config_argv_free(sv.v);
	json_decref(root);
	if (f)
		fclose(f);
	return ret;
}

/* Whether getopt_long() would take "--NAME" (name of namelen bytes) as --config: an exact
 * match, or else a prefix of "config" and of no other long option. An ambiguous prefix is
 * left for getopt_long() to reject. */
static bool names_config(const char *name, size_t namelen, const struct option *longopts)
{
	const struct option *o, *match = NULL;

	if (!longopts)
		return namelen == 6 && !strncmp(name, "config", 6);
	for (o = longopts; o->name; o++) {
		if (strncmp(o->name, name, namelen))
			continue;
		if (strlen(o->name) == namelen)
			return !strcmp(o->name, "config");
		if (match)
			return false;
		match = o;
	}
	return match && !strcmp(match->name, "config");
}

/* Locates the --config value (or an abbreviation getopt_long() accepts) in argv.
 * Returns 0 with *path NULL when absent. */
static int find_config_arg(int argc, char *const *argv, const struct option *longopts,
			   const char **path, char *err, size_t errlen)
{
	*path = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val, *eq;
		size_t n;

		if (strcmp(a, "--") == 0)
			break;
		if (strncmp(a, "--", 2) || !a[2])
			continue;
		eq = strchr(a + 2, '=');
		n = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
		if (!names_config(a + 2, n, longopts))
			continue;
		if (!eq) {
			if (i + 1 >= argc) {
				set_err(err, errlen, "option '--config' requires an argument");
				return -EINVAL;
			}
			val = argv[++i];
		} else {
			val = eq + 1;
		}
		if (*path) {
			set_err(err, errlen, "option '--config' given more than once");
			return -EINVAL;
		}
		if (!*val) {
			set_err(err, errlen, "option '--config' requires an argument");
			return -EINVAL;
		}
		*path = val;
	}
	return 0;
}

int config_merge(int argc, char *const *argv, const struct option *longopts, int *out_argc,
		 char ***out_argv, char *err, size_t errlen)
{
	struct strvec sv = { 0 };
	char **file_argv = NULL;
	const char *path;
	int file_argc = 0;
	int ret;

	*out_argv = NULL;
	*out_argc = 0;
	ret = find_config_arg(argc, argv, longopts, &path, err, errlen);
	if (ret)
		goto cleanup;
	if (path) {
		ret = config_to_argv(path, longopts, &file_argc, &file_argv, err, errlen);
		if (ret)
			goto cleanup;
	}

	ret = strvec_push(&sv, argc > 0 ? argv[0] : "");
	for (int i = 0; !ret && i < file_argc; i++)
		ret = strvec_push(&sv, file_argv[i]);
	for (int i = 1; !ret && i < argc; i++)
		ret = strvec_push(&sv, argv[i]);
	if (!ret)
		ret = strvec_take(&sv, out_argc, out_argv);
	if (ret)
		set_err(err, errlen, "failed to build arguments: %s", strerror(-ret));

cleanup:
	config_argv_free(sv.v);
	config_argv_free(file_argv);
	return ret;
}
