#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opt.h"
#include "usage.h"

void opt_list_free(struct opt_list *l)
{
	free(l->items);
	l->items = NULL;
	l->nr = 0;
}

static void print_table(FILE *f, const struct option_spec *o)
{
	for (; o && o->type != OPT_END; o++) {
		char left[80];
		int n = 0;

		if (!o->help)
			continue;
		if (o->short_name)
			n = snprintf(left, sizeof(left), "-%c, ", o->short_name);
		n += snprintf(left + n, sizeof(left) - n, "--%s", o->long_name);
		if (o->argh)
			snprintf(left + n, sizeof(left) - n, o->type == OPT_OPTSTRING ? "[=%s]" : " %s", o->argh);
		fprintf(f, "    %-26s %s\n", left, o->help);
	}
}

void opt_usage(const char *const *usage, const struct option_spec *opts,
	       const struct option_spec *global, int to_stderr)
{
	FILE *f = to_stderr ? stderr : stdout;
	int i;

	for (i = 0; usage[i]; i++)
		fprintf(f, "%s %s\n", i ? "   or:" : "usage:", usage[i]);
	if (opts && opts->type != OPT_END) {
		fprintf(f, "\noptions:\n");
		print_table(f, opts);
	}
	if (global && global->type != OPT_END) {
		fprintf(f, "\nglobal options:\n");
		print_table(f, global);
	}
}

int opt_usage_error(const char *const *usage, const char *fmt, ...)
{
	va_list ap;
	int i;

	fputs("backup: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	for (i = 0; usage[i]; i++)
		fprintf(stderr, "%s %s\n", i ? "   or:" : "usage:", usage[i]);
	return -1;
}

static const struct option_spec *find_long(const struct option_spec *o, const char *name, size_t len)
{
	for (; o && o->type != OPT_END; o++)
		if (strlen(o->long_name) == len && !strncmp(o->long_name, name, len))
			return o;
	return NULL;
}

static const struct option_spec *find_short(const struct option_spec *o, int c)
{
	for (; o && o->type != OPT_END; o++)
		if (o->short_name == c)
			return o;
	return NULL;
}

static int set_value(const struct option_spec *o, const char *arg, const char *const *usage)
{
	char *end;

	switch (o->type) {
	case OPT_BOOL:
		*(int *)o->value = 1;
		return 0;
	case OPT_STRING:
	case OPT_OPTSTRING:
		*(const char **)o->value = arg;
		return 0;
	case OPT_LIST: {
		struct opt_list *l = o->value;
		l->items = xrealloc(l->items, (l->nr + 1) * sizeof(*l->items));
		l->items[l->nr++] = arg;
		return 0;
	}
	case OPT_INT:
	case OPT_SECONDS:
		errno = 0;
		*(long *)o->value = strtol(arg, &end, 10);
		if (errno || !*arg || *end)
			return opt_usage_error(usage, "option '--%s' wants a number, not '%s'",
					       o->long_name, arg);
		if (o->type == OPT_SECONDS && *(long *)o->value < 0)
			return opt_usage_error(usage, "--%s takes a number of seconds >= 0", o->long_name);
		return 0;
	case OPT_END:
		break;
	}
	return -1;
}

static void list_opts(const struct option_spec *o)
{
	for (; o && o->type != OPT_END; o++)
		if (o->help)
			printf("--%s%s ", o->long_name, o->argh && o->type != OPT_OPTSTRING ? "=" : "");
}

int opt_parse(int argc, const char **argv, const struct option_spec *opts,
	      const struct option_spec *global, const char *const *usage)
{
	int i, nr = 0, only_operands = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *arg = NULL;
		const struct option_spec *o;

		if (only_operands || a[0] != '-' || !a[1]) {
			argv[nr++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_operands = 1;
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			opt_usage(usage, opts, global, 0);
			exit(EXIT_OK);
		}
		if (!strcmp(a, "--list-opts")) {
			list_opts(opts);
			list_opts(global);
			putchar('\n');
			exit(EXIT_OK);
		}
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);

			o = find_long(opts, a + 2, len);
			if (!o)
				o = find_long(global, a + 2, len);
			if (!o)
				return opt_usage_error(usage, "unknown option '%s'", a);
			if (eq)
				arg = eq + 1;
		} else {
			o = find_short(opts, a[1]);
			if (!o)
				o = find_short(global, a[1]);
			if (!o)
				return opt_usage_error(usage, "unknown option '%s'", a);
			if (a[2])
				arg = a + 2;
		}
		if (o->type == OPT_BOOL) {
			if (arg)
				return opt_usage_error(usage, "option '--%s' takes no value", o->long_name);
		} else if (o->type == OPT_OPTSTRING) {
			if (!arg)
				arg = "";
		} else if (!arg) {
			if (i + 1 >= argc)
				return opt_usage_error(usage, "option '--%s' needs a value", o->long_name);
			arg = argv[++i];
		}
		if (set_value(o, arg, usage) < 0)
			return -1;
	}
	argv[nr] = NULL;
	return nr;
}
