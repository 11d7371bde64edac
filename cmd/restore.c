/*
 * restore.c — backup restore: the options, and the report of what
 * lib/recover.c (a whole machine) or lib/restore.c (single paths) did.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "recover.h"
#include "restore.h"
#include "snapshot.h"
#include "usage.h"

static const char *const usage[] = {
	"backup restore SRC --new NAME [--disk-format dir|ext4]",
	"backup restore SRC --existing NAME [--overwrite] [--disk-format dir|ext4] [--wait SECONDS]",
	"backup restore SRC --path P... --to DIR",
	NULL
};

static void add_json_stats(struct strbuf *js, const struct restore_stats *st)
{
	strbuf_addf(js, "\"files\":%llu,\"bytes\":%llu,\"dirs\":%llu,\"others\":%llu,\"errors\":%llu",
		    (unsigned long long)st->files, (unsigned long long)st->bytes,
		    (unsigned long long)st->dirs, (unsigned long long)st->others,
		    (unsigned long long)st->errors);
}

/* The "disks" member of the JSON report; with from, the backup's labels. */
static void add_json_disks(struct strbuf *js, const struct recover_result *res, int from)
{
	size_t i;

	strbuf_addstr(js, "\"disks\":[");
	for (i = 0; i < res->ndisks; i++) {
		strbuf_addstr(js, i ? ",{\"label\":" : "{\"label\":");
		strbuf_add_json(js, res->disks[i].label);
		if (from) {
			strbuf_addstr(js, ",\"from\":");
			strbuf_add_json(js, res->disks[i].from);
		}
		strbuf_addstr(js, ",\"path\":");
		strbuf_add_json(js, res->disks[i].path);
		strbuf_addf(js, ",\"size\":%llu}", (unsigned long long)res->disks[i].size);
	}
	strbuf_addch(js, ']');
}

static int restore_new(struct ctx *ctx, struct backup_info *b, const char *name, int ext4)
{
	struct recover_result res;
	struct strbuf js = STRBUF_INIT;
	int r = recover_new(ctx->repo, ctx->cfg, b, name, ext4, &res);

	if (r < 0)
		goto out;
	if (ctx->json) {
		strbuf_addf(&js, "{\"backup\":\"%s\",\"machine\":", b->hex);
		strbuf_add_json(&js, name);
		strbuf_addstr(&js, ",\"config\":");
		strbuf_add_json(&js, res.config);
		strbuf_addf(&js, ",\"disk_format\":\"%s\",", ext4 ? "ext4" : "dir");
		add_json_disks(&js, &res, 0);
		strbuf_addch(&js, ',');
		add_json_stats(&js, &res.stats);
		strbuf_addch(&js, '}');
		print_json(&js);
	} else if (!ctx->quiet) {
		printf("restored %s (%s, %s) as new machine '%s': %llu files, %llu bytes; defined in '%s'\n",
		       b->hex, b->machine, b->kind, name, (unsigned long long)res.stats.files,
		       (unsigned long long)res.stats.bytes, res.config);
	}
out:
	recover_release(&res);
	strbuf_release(&js);
	return exit_status(r);
}

static int restore_existing(struct ctx *ctx, struct backup_info *b, const char *name, int overwrite,
			    int ext4, long wait)
{
	struct recover_result res;
	struct strbuf js = STRBUF_INIT, labels = STRBUF_INIT;
	size_t i;
	int r = recover_existing(ctx->repo, ctx->cfg, b, name, overwrite, ext4, wait, &res);

	if (r < 0)
		goto out;
	for (i = 0; i < res.ndisks; i++)
		strbuf_addf(&labels, "%s%s", i ? ", " : "", res.disks[i].label);
	if (ctx->json) {
		strbuf_addf(&js, "{\"backup\":\"%s\",\"machine\":", b->hex);
		strbuf_add_json(&js, name);
		strbuf_addstr(&js, ",\"config\":");
		strbuf_add_json(&js, res.config);
		strbuf_addstr(&js, ",\"profile\":");
		strbuf_add_json(&js, res.profile);
		strbuf_addf(&js, ",\"disk_format\":\"%s\",\"overwrite\":%s,\"required_bytes\":%llu,"
			    "\"unallocated_bytes\":%llu,", ext4 ? "ext4" : "dir",
			    overwrite ? "true" : "false", (unsigned long long)res.required,
			    (unsigned long long)res.unallocated);
		add_json_disks(&js, &res, 1);
		strbuf_addstr(&js, ",\"removed_disks\":[");
		for (i = 0; i < res.nremoved; i++) {
			strbuf_addstr(&js, i ? ",{\"label\":" : "{\"label\":");
			strbuf_add_json(&js, res.removed[i].label);
			strbuf_addstr(&js, ",\"source\":");
			strbuf_add_json(&js, res.removed[i].source);
			strbuf_addf(&js, ",\"deleted\":%s}", res.removed[i].deleted ? "true" : "false");
		}
		strbuf_addstr(&js, "],\"removed_profiles\":[");
		for (i = 0; i < res.nremoved_profiles; i++) {
			if (i)
				strbuf_addch(&js, ',');
			strbuf_add_json(&js, res.removed_profiles[i]);
		}
		strbuf_addstr(&js, "],");
		add_json_stats(&js, &res.stats);
		strbuf_addch(&js, '}');
		print_json(&js);
	} else if (!ctx->quiet) {
		printf("restored %s (%s, %s) into machine '%s' as disks %s and profile '%s'%s: "
		       "%llu files, %llu bytes; boot it with 'backup boot-config %s --boot %s'\n",
		       b->hex, b->machine, b->kind, name, labels.buf, res.profile,
		       overwrite ? ", replacing its disks and profiles" : "",
		       (unsigned long long)res.stats.files, (unsigned long long)res.stats.bytes, name,
		       res.profile);
	}
out:
	recover_release(&res);
	strbuf_release(&js);
	strbuf_release(&labels);
	return r == ERR_LOCKED ? machine_busy(name) : exit_status(r);
}

static int restore_paths(struct ctx *ctx, struct backup_info *b, const struct opt_list *paths, const char *to)
{
	const char *root = machine_root_disk(b->layout);
	struct restore_stats st = { 0 };
	struct strbuf js = STRBUF_INIT;
	int i, ret = EXIT_OK;

	for (i = 0; i < paths->nr; i++) {
		const char *p = paths->items[i], *colon = strchr(p, ':'), *rel;
		char *label = NULL, *target;
		struct backup_disk *d;
		int r;

		/* LABEL:/path names another disk; a plain path is on the root disk. */
		if (colon && colon > p && !memchr(p, '/', colon - p)) {
			label = xstrndup(p, colon - p);
			rel = colon + 1;
		} else {
			label = root ? xstrdup(root) : NULL;
			rel = p;
		}
		if (!label) {
			error("'%s' does not say which disk: %s has several; write LABEL:%s", p, b->machine, p);
			ret = EXIT_ERROR;
			continue;
		}
		d = backup_disk(b, label);
		if (!d) {
			error("backup %s has no disk '%s'", b->hex, label);
			free(label);
			ret = EXIT_ERROR;
			continue;
		}
		while (*rel == '/')
			rel++;
		target = root && !strcmp(label, root) ? xstrdup(to) : xasprintf("%s/%s", to, label);
		r = restore_path(ctx->repo, d->tree, rel, target, &st);
		if (r == ERR_NOTFOUND)
			error("backup %s has no '%s' on disk '%s'", b->hex, p, label);
		if (r < 0)
			ret = EXIT_ERROR;
		free(target);
		free(label);
	}
	if (st.errors)
		ret = EXIT_ERROR;
	if (ctx->json) {
		strbuf_addf(&js, "{\"backup\":\"%s\",\"to\":", b->hex);
		strbuf_add_json(&js, to);
		strbuf_addch(&js, ',');
		add_json_stats(&js, &st);
		strbuf_addch(&js, '}');
		print_json(&js);
	} else if (!ctx->quiet && ret == EXIT_OK) {
		printf("restored %llu files, %llu bytes from %s into '%s'\n", (unsigned long long)st.files,
		       (unsigned long long)st.bytes, b->hex, to);
	}
	strbuf_release(&js);
	return ret;
}

int cmd_restore(int argc, const char **argv, struct ctx *ctx)
{
	const char *new_name = NULL, *existing = NULL, *to = NULL, *format = NULL;
	struct opt_list paths = { 0 };
	int overwrite = 0, ext4 = 0;
	long wait = 0;
	const struct option_spec opts[] = {
		{ OPT_STRING, 0, "new", &new_name, "NAME", "create machine NAME from the backup" },
		{ OPT_STRING, 0, "existing", &existing, "NAME", "add the backup's disks and a profile to machine NAME" },
		{ OPT_BOOL, 0, "overwrite", &overwrite, NULL, "with --existing: replace NAME's disks and profiles" },
		{ OPT_STRING, 0, "disk-format", &format, "FORMAT", "make the disks as folders (dir, the default) or ext4 image files (ext4)" },
		{ OPT_SECONDS, 0, "wait", &wait, "SECONDS", "with --existing: wait this long for a busy machine (default: fail at once)" },
		{ OPT_LIST, 0, "path", &paths, "P", "restore only P (repeatable): /etc/hostname or LABEL:/www" },
		{ OPT_STRING, 0, "to", &to, "DIR", "where --path restores to" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	struct backup_info *b = NULL;
	int ret = EXIT_USAGE, lock = -1;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		goto out;
	if (argc != 1) {
		opt_usage_error(usage, "restore needs one SRC: MACHINE, MACHINE:SLOT or a backup id");
		goto out;
	}
	if (!!new_name + !!existing + !!paths.nr != 1 || (paths.nr && !to) || (to && !paths.nr)) {
		opt_usage_error(usage, "give one of --new NAME, --existing NAME or --path P... --to DIR");
		goto out;
	}
	if (overwrite && !existing) {
		opt_usage_error(usage, "--overwrite goes with --existing NAME");
		goto out;
	}
	if (format && paths.nr) {
		opt_usage_error(usage, "--disk-format goes with --new or --existing");
		goto out;
	}
	if (format && strcmp(format, "dir") && strcmp(format, "ext4")) {
		opt_usage_error(usage, "--disk-format is dir or ext4, not '%s'", format);
		goto out;
	}
	ext4 = format && !strcmp(format, "ext4");
	ret = EXIT_ERROR;
	if (ctx_prepare(ctx) < 0)
		goto out;
	/* Packs must not be reclaimed while they are read. */
	lock = repo_lock_shared(ctx->repo, -1);
	if (lock < 0 || snapshot_resolve(ctx->repo, argv[0], &b) < 0)
		goto out;
	if (new_name)
		ret = restore_new(ctx, b, new_name, ext4);
	else if (existing)
		ret = restore_existing(ctx, b, existing, overwrite, ext4, wait);
	else
		ret = restore_paths(ctx, b, &paths, to);
out:
	repo_unlock(lock);
	backup_info_free(b);
	opt_list_free(&paths);
	return ret;
}
