#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "fsutil.h"
#include "restore.h"
#include "snapshot.h"
#include "usage.h"

static const char *const usage[] = {
	"backup restore SRC --new NAME",
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

static int restore_new(struct ctx *ctx, struct backup_info *b, const char *name)
{
	struct config *c = ctx->cfg;
	char *conf = machine_path(c, name), *home = xasprintf("%s/%s", c->machines_root, name);
	char *disks = xasprintf("%s/disks", home);
	struct restore_stats st = { 0 };
	struct machine *m = b->layout;
	struct strbuf js = STRBUF_INIT;
	uint64_t required = 0;
	struct stat sb;
	size_t i;
	int ret = EXIT_ERROR, made = 0;

	if (!valid_name(name)) {
		error("'%s' is not a valid machine name; use letters, digits, '_', '.', '-'", name);
		goto out;
	}
	if (stat(conf, &sb) == 0) {
		error("machine '%s' already exists ('%s'); choose another name or use --existing", name, conf);
		goto out;
	}
	if (stat(home, &sb) == 0) {
		error("'%s' already exists; remove it or choose another name", home);
		goto out;
	}
	if (mkdir_p(c->machines_root, 0700) < 0 || mkdir(home, 0700) < 0) {
		error("cannot create '%s': %s", home, strerror(errno));
		goto out;
	}
	made = 1;
	if (mkdir(disks, 0700) < 0) {
		error("cannot create '%s': %s", disks, strerror(errno));
		goto out;
	}
	for (i = 0; i < b->ndisks; i++) {
		char *dir = xasprintf("%s/%s", disks, b->disks[i].label);
		int r = restore_tree(ctx->repo, b->disks[i].tree, dir, &st);

		/* The new machine's disk is the restored folder, mounted where the
		 * original was when its profile boots. */
		if (!m->disks[i].mount && m->disks[i].source[0] == '/')
			m->disks[i].mount = xstrdup(m->disks[i].source);
		free(m->disks[i].source);
		m->disks[i].source = dir;
		required += b->disks[i].size;
		if (r < 0)
			goto out;
	}
	if (st.errors) {
		error("%llu files of backup %s could not be restored; machine '%s' not created",
		      (unsigned long long)st.errors, b->hex, name);
		goto out;
	}
	free(m->name);
	m->name = xstrdup(name);
	if (m->plan < required)
		m->plan = required;
	if (mkdir_p(c->machines_dir, 0700) < 0) {
		error("cannot create '%s': %s", c->machines_dir, strerror(errno));
		goto out;
	}
	/* The machine file comes last: until it exists, no machine is defined. */
	if (machine_write(m, conf) < 0)
		goto out;
	made = 0;
	ret = EXIT_OK;
	if (ctx->json) {
		strbuf_addf(&js, "{\"backup\":\"%s\",\"machine\":", b->hex);
		strbuf_add_json(&js, name);
		strbuf_addstr(&js, ",\"config\":");
		strbuf_add_json(&js, conf);
		strbuf_addstr(&js, ",\"disks\":[");
		for (i = 0; i < m->ndisks; i++) {
			strbuf_addstr(&js, i ? ",{\"label\":" : "{\"label\":");
			strbuf_add_json(&js, m->disks[i].label);
			strbuf_addstr(&js, ",\"path\":");
			strbuf_add_json(&js, m->disks[i].source);
			strbuf_addf(&js, ",\"size\":%llu}", (unsigned long long)m->disks[i].size);
		}
		strbuf_addstr(&js, "],");
		add_json_stats(&js, &st);
		strbuf_addch(&js, '}');
		print_json(&js);
	} else if (!ctx->quiet) {
		printf("restored %s (%s, %s) as new machine '%s': %llu files, %llu bytes; defined in '%s'\n",
		       b->hex, b->machine, b->kind, name, (unsigned long long)st.files,
		       (unsigned long long)st.bytes, conf);
	}
out:
	if (made)
		remove_tree(home);
	strbuf_release(&js);
	free(conf);
	free(home);
	free(disks);
	return ret;
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
	const char *new_name = NULL, *to = NULL;
	struct opt_list paths = { 0 };
	const struct option_spec opts[] = {
		{ OPT_STRING, 0, "new", &new_name, "NAME", "create machine NAME from the backup" },
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
	if (!new_name == !paths.nr || (paths.nr && !to) || (to && !paths.nr)) {
		opt_usage_error(usage, "give either --new NAME or --path P... --to DIR");
		goto out;
	}
	ret = EXIT_ERROR;
	if (ctx_prepare(ctx) < 0)
		goto out;
	/* Packs must not be reclaimed while they are read. */
	lock = repo_lock_shared(ctx->repo, -1);
	if (lock < 0 || snapshot_resolve(ctx->repo, argv[0], &b) < 0)
		goto out;
	ret = new_name ? restore_new(ctx, b, new_name) : restore_paths(ctx, b, &paths, to);
out:
	repo_unlock(lock);
	backup_info_free(b);
	opt_list_free(&paths);
	return ret;
}
