#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "cmd.h"
#include "diskimg.h"
#include "fsutil.h"
#include "profile.h"
#include "restore.h"
#include "snapshot.h"
#include "usage.h"
#include "verify.h"

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

/*
 * Restores disk d of backup b into the folder disks under the name label:
 * as the folder disks/LABEL, or with ext4 as the image disks/LABEL.img of
 * the disk's recorded size. Sets *path (the caller frees it) even when it
 * fails; nothing is left at *path on failure but a folder, which the
 * caller removes. Returns 0 or an exit status, after printing the reason.
 */
static int make_disk(struct ctx *ctx, const struct backup_info *b, const struct backup_disk *d,
		     const char *disks, const char *label, int ext4, char **path,
		     struct restore_stats *st)
{
	struct restore_stats before = *st;
	char hs[32], hb[32];
	int r;

	*path = xasprintf(ext4 ? "%s/%s.img" : "%s/%s", disks, label);
	if (ext4)
		r = diskimg_restore_ext4(ctx->repo, d->tree, *path, d->size, st);
	else
		r = restore_tree(ctx->repo, d->tree, *path, st);
	if (r == ERR_NOSPACE) {
		error("disk '%s' of backup %s does not fit its recorded size of %s (%llu bytes) as ext4: "
		      "it holds %llu files and folders, %s (%llu bytes); restore it with --disk-format dir, "
		      "or raise disk.%s.size of '%s' and back it up again",
		      d->label, b->hex, human_size(d->size, hs, sizeof(hs)), (unsigned long long)d->size,
		      (unsigned long long)(st->files + st->dirs + st->others -
					   before.files - before.dirs - before.others),
		      human_size(st->bytes - before.bytes, hb, sizeof(hb)),
		      (unsigned long long)(st->bytes - before.bytes), d->label, b->machine);
		return EXIT_NOSPACE;
	}
	if (st->errors > before.errors) {
		error("%llu files of disk '%s' of backup %s could not be restored",
		      (unsigned long long)(st->errors - before.errors), d->label, b->hex);
		return EXIT_ERROR;
	}
	return r < 0 ? EXIT_ERROR : EXIT_OK;
}

#define RESTORING ".restoring"

/* Creates HOME/.restoring and holds a lock on it; returns its fd. */
static int mark_restoring(const char *home)
{
	char *path = xasprintf("%s/" RESTORING, home);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
		error("cannot create '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

static void unmark_restoring(const char *home, int fd)
{
	char *path = xasprintf("%s/" RESTORING, home);

	unlink(path);
	free(path);
	close(fd);
}

/*
 * A machine folder with an unlocked .restoring in it is what a killed
 * restore left (the machine file is written last, so NAME was never
 * defined): remove it. Returns -1 when home is anything else.
 */
static int clear_abandoned(const char *home)
{
	char *path = xasprintf("%s/" RESTORING, home);
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW), ret = -1;

	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
		warning("removing '%s', left by a restore that was interrupted", home);
		ret = remove_tree(home) < 0 ? error("cannot remove '%s': %s", home, strerror(errno)) : 0;
	}
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}

static int restore_new(struct ctx *ctx, struct backup_info *b, const char *name, int ext4)
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
	int ret = EXIT_ERROR, made = 0, lockfd = -1;

	if (!valid_name(name)) {
		error("'%s' is not a valid machine name; use letters, digits, '_', '.', '-'", name);
		goto out;
	}
	if (stat(conf, &sb) == 0) {
		error("machine '%s' already exists ('%s'); choose another name or use --existing", name, conf);
		goto out;
	}
	if (stat(home, &sb) == 0 && clear_abandoned(home) < 0) {
		error("'%s' already exists; remove it or choose another name", home);
		goto out;
	}
	if (mkdir_p(c->machines_root, 0700) < 0 || mkdir(home, 0700) < 0) {
		error("cannot create '%s': %s", home, strerror(errno));
		goto out;
	}
	made = 1;
	/* Held until the machine file is written: a restore killed before
	 * leaves it unlocked, and the next restore of NAME clears the folder. */
	lockfd = mark_restoring(home);
	if (lockfd < 0)
		goto out;
	if (mkdir(disks, 0700) < 0) {
		error("cannot create '%s': %s", disks, strerror(errno));
		goto out;
	}
	for (i = 0; i < b->ndisks; i++) {
		char *path = NULL;
		int r = make_disk(ctx, b, &b->disks[i], disks, b->disks[i].label, ext4, &path, &st);

		/* The new machine's disk is the restored folder or image, mounted
		 * where the original was when its profile boots. */
		if (!m->disks[i].mount && m->disks[i].source[0] == '/')
			m->disks[i].mount = xstrdup(m->disks[i].source);
		free(m->disks[i].source);
		m->disks[i].source = path;
		if (ext4) {
			free(m->disks[i].filesystem);
			m->disks[i].filesystem = xstrdup("ext4");
		}
		required += b->disks[i].size;
		if (r) {
			ret = r;
			goto out;
		}
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
	if (machine_write(m, conf) < 0) {
		/* It may be in place but not durable: NAME did not exist before. */
		unlink(conf);
		goto out;
	}
	made = 0;
	unmark_restoring(home, lockfd);
	lockfd = -1;
	ret = EXIT_OK;
	if (ctx->json) {
		strbuf_addf(&js, "{\"backup\":\"%s\",\"machine\":", b->hex);
		strbuf_add_json(&js, name);
		strbuf_addstr(&js, ",\"config\":");
		strbuf_add_json(&js, conf);
		strbuf_addf(&js, ",\"disk_format\":\"%s\",\"disks\":[", ext4 ? "ext4" : "dir");
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
	if (lockfd >= 0)
		close(lockfd);
	strbuf_release(&js);
	free(conf);
	free(home);
	free(disks);
	return ret;
}

/* A disk of the backup being added to an existing machine. */
struct new_disk {
	const struct backup_disk *from;
	char *label;		/* its label in the target, unique there */
	char *path;		/* the folder or image made */
	char *mount;		/* where the original was mounted */
};

static int path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/*
 * A label for the backup's disk base that the target has not got, nor the
 * disks made before it, nor its disks folder: base-r1, base-r2, ...
 */
static char *new_label(const struct machine *t, const struct new_disk *nd, size_t n,
		       const char *base, const char *disks)
{
	unsigned k;

	for (k = 1;; k++) {
		char suffix[16], *label, *p1, *p2, *p3;
		int keep = (int)strlen(base), taken;
		size_t i;

		snprintf(suffix, sizeof(suffix), "-r%u", k);
		if (keep + strlen(suffix) > 64)
			keep = 64 - (int)strlen(suffix);
		label = xasprintf("%.*s%s", keep, base, suffix);
		p1 = xasprintf("%s/%s", disks, label);
		p2 = xasprintf("%s/%s.img", disks, label);
		p3 = xasprintf("%s/.%s.img.staging", disks, label);
		taken = machine_disk(t, label) || path_exists(p1) || path_exists(p2) || path_exists(p3);
		for (i = 0; i < n && !taken; i++)
			taken = !strcmp(nd[i].label, label);
		free(p1);
		free(p2);
		free(p3);
		if (!taken && valid_name(label))
			return label;
		free(label);
	}
}

/* "restore-" and the backup's short id, with "-2", "-3"... if the target has it. */
static char *new_profile_name(const struct machine *t, const struct backup_info *b)
{
	char *name = xasprintf("restore-%.8s", b->hex);
	unsigned k;

	for (k = 2; machine_profile(t, name); k++) {
		free(name);
		name = xasprintf("restore-%.8s-%u", b->hex, k);
	}
	return name;
}

/*
 * The new profile: the backup's booting profile with its devices pointing
 * at the new labels. A backup with no profile gets one that gives the new
 * disks sda, sdb, ... in order, its root disk first and booting from it.
 */
static void new_profile(struct profile *np, const struct backup_info *b, const struct new_disk *nd,
			const char *name)
{
	const struct profile *src = machine_boot_profile(b->layout);
	const char *root = machine_root_disk(b->layout);
	size_t i;
	int j, dev = 0;

	memset(np, 0, sizeof(*np));
	np->name = xstrdup(name);
	if (src) {
		for (j = 0; j < NDEVICES; j++)
			for (i = 0; src->dev[j] && i < b->ndisks; i++)
				if (!strcmp(src->dev[j], b->disks[i].label)) {
					np->dev[j] = xstrdup(nd[i].label);
					break;
				}
		if (src->root && device_index(src->root) >= 0 &&
		    np->dev[device_index(src->root)])
			np->root = xstrdup(src->root);
		return;
	}
	for (i = 0; root && i < b->ndisks; i++)
		if (!strcmp(b->disks[i].label, root)) {
			np->dev[dev++] = xstrdup(nd[i].label);
			np->root = xstrdup("sda");
		}
	for (i = 0; i < b->ndisks && dev < NDEVICES; i++)
		if (!root || strcmp(b->disks[i].label, root))
			np->dev[dev++] = xstrdup(nd[i].label);
}

static void profile_clear(struct profile *p)
{
	int j;

	free(p->name);
	free(p->root);
	for (j = 0; j < NDEVICES; j++)
		free(p->dev[j]);
	memset(p, 0, sizeof(*p));
}

/* Drops the header lines of sections that lost every key: [disk "L"] or [profile "P"]. */
static void drop_empty_headers(struct strbuf *sb, const struct machine *t)
{
	struct strbuf out = STRBUF_INIT, hdr = STRBUF_INIT;
	const char *p = sb->buf, *end = sb->buf + sb->len;

	while (p < end) {
		const char *eol = memchr(p, '\n', end - p), *a = p, *z;
		int drop = 0;
		size_t i;

		eol = eol ? eol + 1 : end;
		z = eol;
		while (a < z && (*a == ' ' || *a == '\t'))
			a++;
		while (z > a && (z[-1] == '\n' || z[-1] == '\r' || z[-1] == ' ' || z[-1] == '\t'))
			z--;
		for (i = 0; i < t->ndisks + t->nprofiles && !drop; i++) {
			strbuf_reset(&hdr);
			if (i < t->ndisks)
				strbuf_addf(&hdr, "[disk \"%s\"]", t->disks[i].label);
			else
				strbuf_addf(&hdr, "[profile \"%s\"]", t->profiles[i - t->ndisks].name);
			drop = (size_t)(z - a) == hdr.len && !memcmp(a, hdr.buf, hdr.len);
		}
		if (!drop)
			strbuf_add(&out, p, eol - p);
		p = eol;
	}
	strbuf_release(&hdr);
	strbuf_release(sb);
	*sb = out;
}

static int cfg_set(git_config *cfg, const char *section, const char *sub, const char *key,
		   const char *value)
{
	char *name = *sub ? xasprintf("%s.%s.%s", section, sub, key) : xasprintf("%s.%s", section, key);
	int ret = git_config_set_string(cfg, name, value);

	free(name);
	return ret < 0 ? error_git("cannot edit the machine file") : 0;
}

/*
 * Writes the target's new machine file: a copy of it edited with libgit2's
 * config writer, so that its comments, order and every other key stay,
 * with the new disks and profile added and, with overwrite, the old disks
 * and profiles removed. The copy is checked as a machine, synced, and
 * renamed over the file: the machine changes at once or not at all.
 */
static int write_target(const struct machine *t, const struct new_disk *nd, size_t n,
			const struct profile *np, int overwrite, int ext4)
{
	char *tmp = xasprintf("%s.restore-%d", t->path, (int)getpid());
	struct strbuf sb = STRBUF_INIT;
	git_config *cfg = NULL;
	git_config_iterator *it = NULL;
	git_config_entry *e;
	struct machine *check = NULL;
	char **drop = NULL;
	size_t ndrop = 0, i;
	struct stat st;
	int fd, j, ret = -1;

	if (stat(t->path, &st) < 0 || strbuf_read_file(&sb, t->path) < 0) {
		error("cannot read '%s': %s", t->path, strerror(errno));
		goto out;
	}
	if (write_file_durable(tmp, sb.buf, sb.len, st.st_mode & 07777) < 0)
		goto out;
	if (git_config_open_ondisk(&cfg, tmp) < 0) {
		error_git("malformed machine file");
		goto out;
	}
	if (overwrite) {
		if (git_config_iterator_new(&it, cfg) < 0) {
			error_git("cannot read the machine file");
			goto out;
		}
		while (git_config_next(&e, it) == 0)
			if (!strncmp(e->name, "disk.", 5) || !strncmp(e->name, "profile.", 8)) {
				drop = xrealloc(drop, (ndrop + 1) * sizeof(*drop));
				drop[ndrop++] = xstrdup(e->name);
			}
		git_config_iterator_free(it);
		it = NULL;
		/* A key given more than once is listed as often: all its values
		 * went with the first. */
		for (i = 0; i < ndrop; i++) {
			int r = git_config_delete_multivar(cfg, drop[i], ".*");

			if (r < 0 && r != GIT_ENOTFOUND) {
				error_git("cannot edit the machine file");
				goto out;
			}
		}
		/* The profile that booted is gone: the restored one boots. */
		if (t->boot && cfg_set(cfg, "machine", "", "boot", np->name) < 0)
			goto out;
	}
	for (i = 0; i < n; i++) {
		const char *l = nd[i].label;
		char size[32];

		snprintf(size, sizeof(size), "%llu", (unsigned long long)nd[i].from->size);
		if (cfg_set(cfg, "disk", l, "source", nd[i].path) < 0 ||
		    cfg_set(cfg, "disk", l, "size", size) < 0 ||
		    cfg_set(cfg, "disk", l, "filesystem", ext4 ? "ext4" : nd[i].from->filesystem) < 0 ||
		    (nd[i].mount && cfg_set(cfg, "disk", l, "mount", nd[i].mount) < 0))
			goto out;
	}
	if (np->root && cfg_set(cfg, "profile", np->name, "root", np->root) < 0)
		goto out;
	for (j = 0; j < NDEVICES; j++) {
		char dev[4] = { 's', 'd', (char)('a' + j), 0 };

		if (np->dev[j] && cfg_set(cfg, "profile", np->name, dev, np->dev[j]) < 0)
			goto out;
	}
	git_config_free(cfg);
	cfg = NULL;
	if (overwrite) {
		strbuf_reset(&sb);
		if (strbuf_read_file(&sb, tmp) < 0) {
			error("cannot read '%s': %s", tmp, strerror(errno));
			goto out;
		}
		drop_empty_headers(&sb, t);
		if (write_file_durable(tmp, sb.buf, sb.len, st.st_mode & 07777) < 0)
			goto out;
	}
	if (machine_parse(&check, t->name, tmp) < 0)
		goto out;
	/* libgit2 writes a new file: give it the old mode back, then make it durable. */
	if (chmod(tmp, st.st_mode & 07777) < 0 || (fd = open(tmp, O_RDONLY | O_CLOEXEC)) < 0) {
		error("cannot open '%s': %s", tmp, strerror(errno));
		goto out;
	}
	if (fsync(fd) < 0) {
		error("cannot sync '%s': %s", tmp, strerror(errno));
		close(fd);
		goto out;
	}
	close(fd);
	if (rename(tmp, t->path) < 0) {
		error("cannot rename '%s' to '%s': %s", tmp, t->path, strerror(errno));
		goto out;
	}
	/* The new file is in place: its disks must stay, whatever comes now. */
	if (fsync_parent(t->path) < 0)
		warning("cannot sync the folder of '%s': %s; the change may not survive a power loss",
			t->path, strerror(errno));
	ret = 0;
out:
	if (ret < 0)
		unlink(tmp);
	git_config_iterator_free(it);
	git_config_free(cfg);
	machine_free(check);
	free_strv(drop, ndrop);
	strbuf_release(&sb);
	free(tmp);
	return ret;
}

/* 1 if path is inside (not equal to) the folder dir; both are real paths. */
static int inside(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	return !strncmp(path, dir, len) && path[len] == '/' && path[len + 1];
}

/*
 * Deletes the old disks of t for --overwrite, each only when its source is
 * inside machines.root/NAME/ (something backup made) and holds none of the
 * new disks; any other source, such as a live machine's "/", is left in
 * place and only dropped from the machine file, which is said. Adds to js
 * a "removed_disks" array. Failures are warned about: the disks are no
 * longer the machine's either way.
 */
static void delete_old_disks(struct ctx *ctx, const struct machine *t, const char *home,
			     const struct new_disk *nd, size_t n, struct strbuf *js)
{
	char *rhome = realpath(home, NULL), *rdisks = xasprintf("%s/disks", rhome ? rhome : home);
	size_t i, k;

	strbuf_addstr(js, ",\"removed_disks\":[");
	for (i = 0; i < t->ndisks; i++) {
		const struct disk *d = &t->disks[i];
		char *rsrc = realpath(d->source, NULL);
		int ours = rhome && rsrc && inside(rsrc, rhome) && strcmp(rsrc, rdisks), deleted = 0;
		struct stat st;

		for (k = 0; k < n && ours; k++) {
			size_t len = strlen(rsrc);

			/* nd[k].path is made from home, which may not be a real path. */
			char *rnew = realpath(nd[k].path, NULL);
			if (rnew && !strncmp(rnew, rsrc, len) && (!rnew[len] || rnew[len] == '/'))
				ours = 0;
			free(rnew);
		}
		if (!ours) {
			if (!ctx->quiet)
				fprintf(stderr, "backup: disk '%s' of '%s' ('%s') is not inside '%s': "
					"dropped from the machine, its data left in place\n",
					d->label, t->name, d->source, home);
		} else if (lstat(rsrc, &st) == 0) {
			if (remove_tree(rsrc) < 0)
				warning("cannot delete disk '%s' of '%s' ('%s'): %s", d->label, t->name,
					rsrc, strerror(errno));
			else
				deleted = 1;
		}
		strbuf_addstr(js, i ? ",{\"label\":" : "{\"label\":");
		strbuf_add_json(js, d->label);
		strbuf_addstr(js, ",\"source\":");
		strbuf_add_json(js, d->source);
		strbuf_addf(js, ",\"deleted\":%s}", deleted ? "true" : "false");
		free(rsrc);
	}
	strbuf_addstr(js, "],\"removed_profiles\":[");
	for (i = 0; i < t->nprofiles; i++) {
		if (i)
			strbuf_addch(js, ',');
		strbuf_add_json(js, t->profiles[i].name);
	}
	strbuf_addch(js, ']');
	if (rhome)
		fsync_dir(rdisks);
	free(rhome);
	free(rdisks);
}

/* Names what of the backup cannot be read (verify_tree() with no folder). */
static void report_unreadable(const struct verify_mismatch *m, void *label)
{
	error("'%s:%s': %s", (const char *)label, m->path, m->detail);
}

static int nospace(const char *name, const char *hex, uint64_t need, uint64_t have, int overwrite)
{
	char hn[32], hh[32];

	if (overwrite)
		return error("not enough space on machine '%s' for backup %s, even with its disks freed: "
			     "it needs %s (%llu bytes) and the plan is %s (%llu bytes); give '%s' a bigger plan",
			     name, hex, human_size(need, hn, sizeof(hn)), (unsigned long long)need,
			     human_size(have, hh, sizeof(hh)), (unsigned long long)have, name);
	return error("not enough space on machine '%s' for backup %s: it needs %s (%llu bytes) and '%s' has "
		     "%s (%llu bytes) unallocated; resize its disks, pass --overwrite to replace them, "
		     "or give it a bigger plan",
		     name, hex, human_size(need, hn, sizeof(hn)), (unsigned long long)need, name,
		     human_size(have, hh, sizeof(hh)), (unsigned long long)have);
}

/*
 * Adds the backup's disks under new labels, and a new profile, to the
 * existing machine name. The disks are made first and the machine file
 * is written last, so that a failure leaves the machine as it was. With
 * overwrite the machine's old disks and profiles go: after the new disks
 * are made when both fit the plan at once, else before, and then only once
 * every byte of the backup has been read back.
 */
static int restore_existing(struct ctx *ctx, struct backup_info *b, const char *name, int overwrite,
			    int ext4, long wait)
{
	struct config *c = ctx->cfg;
	char *home = NULL, *disks = NULL, *pname = NULL;
	struct machine *t = NULL;
	struct new_disk *nd = NULL;
	struct profile np = { 0 };
	struct restore_stats st = { 0 };
	struct strbuf js = STRBUF_INIT, removed = STRBUF_INIT, labels = STRBUF_INIT;
	uint64_t required = 0, allocated = 0, unallocated;
	int ret = EXIT_ERROR, lock = -1, made_home = 0, made_disks = 0, deleted = 0, r;
	size_t i, nmade = 0;

	if (!valid_name(name)) {
		error("'%s' is not a valid machine name; use letters, digits, '_', '.', '-'", name);
		goto out;
	}
	/* The machine's other jobs (a backup reading its disks, another
	 * restore editing its file) wait for this one. */
	lock = repo_lock(ctx->repo, name, wait);
	if (lock == ERR_LOCKED) {
		ret = machine_busy(name);
		goto out;
	}
	if (lock < 0 || machine_load(&t, c, name) < 0)
		goto out;
	for (i = 0; i < b->ndisks; i++)
		required += b->disks[i].size;
	for (i = 0; i < t->ndisks; i++)
		allocated += t->disks[i].size;
	unallocated = t->plan > allocated ? t->plan - allocated : 0;
	if (!overwrite && unallocated < required) {
		nospace(name, b->hex, required, unallocated, 0);
		ret = EXIT_NOSPACE;
		goto out;
	}
	if (overwrite && t->plan < required) {
		nospace(name, b->hex, required, t->plan, 1);
		ret = EXIT_NOSPACE;
		goto out;
	}

	home = xasprintf("%s/%s", c->machines_root, name);
	disks = xasprintf("%s/disks", home);
	nd = xcalloc(b->ndisks ? b->ndisks : 1, sizeof(*nd));
	for (i = 0; i < b->ndisks; i++) {
		nd[i].from = &b->disks[i];
		nd[i].label = new_label(t, nd, i, b->disks[i].label, disks);
		if (b->disks[i].source[0] == '/')
			nd[i].mount = xstrdup(b->disks[i].source);
	}
	pname = new_profile_name(t, b);
	new_profile(&np, b, nd, pname);

	if (overwrite && unallocated < required) {
		/* The new disks fit only once the old ones are gone: before
		 * deleting anything, make sure the whole backup can be read. */
		struct verify_report rep = { .mismatch = report_unreadable };

		for (i = 0; i < b->ndisks; i++) {
			rep.data = b->disks[i].label;
			verify_tree(ctx->repo, b->disks[i].tree, NULL, &rep);
		}
		if (rep.mismatches) {
			error("backup %s cannot be read in full (%llu damaged); nothing deleted, machine '%s' "
			      "left as it was; run 'backup check --read-data'",
			      b->hex, (unsigned long long)rep.mismatches, name);
			goto out;
		}
	}
	if (!path_exists(home)) {
		if (mkdir_p(c->machines_root, 0700) < 0 || mkdir(home, 0700) < 0) {
			error("cannot create '%s': %s", home, strerror(errno));
			goto out;
		}
		made_home = 1;
	}
	if (!path_exists(disks)) {
		if (mkdir(disks, 0700) < 0) {
			error("cannot create '%s': %s", disks, strerror(errno));
			goto out;
		}
		made_disks = 1;
	}
	if (overwrite && unallocated < required) {
		delete_old_disks(ctx, t, home, nd, 0, &removed);
		deleted = 1;
	}
	for (i = 0; i < b->ndisks; i++) {
		r = make_disk(ctx, b, &b->disks[i], disks, nd[i].label, ext4, &nd[i].path, &st);
		nmade = i + 1;
		if (r) {
			ret = r;
			goto out;
		}
	}
	if (write_target(t, nd, b->ndisks, &np, overwrite, ext4) < 0)
		goto out;
	nmade = 0;
	made_home = made_disks = 0;
	ret = EXIT_OK;
	if (overwrite && !deleted)
		delete_old_disks(ctx, t, home, nd, b->ndisks, &removed);

	for (i = 0; i < b->ndisks; i++)
		strbuf_addf(&labels, "%s%s", i ? ", " : "", nd[i].label);
	if (ctx->json) {
		strbuf_addf(&js, "{\"backup\":\"%s\",\"machine\":", b->hex);
		strbuf_add_json(&js, name);
		strbuf_addstr(&js, ",\"config\":");
		strbuf_add_json(&js, t->path);
		strbuf_addstr(&js, ",\"profile\":");
		strbuf_add_json(&js, np.name);
		strbuf_addf(&js, ",\"disk_format\":\"%s\",\"overwrite\":%s,\"required_bytes\":%llu,"
			    "\"unallocated_bytes\":%llu,\"disks\":[", ext4 ? "ext4" : "dir",
			    overwrite ? "true" : "false", (unsigned long long)required,
			    (unsigned long long)unallocated);
		for (i = 0; i < b->ndisks; i++) {
			strbuf_addstr(&js, i ? ",{\"label\":" : "{\"label\":");
			strbuf_add_json(&js, nd[i].label);
			strbuf_addstr(&js, ",\"from\":");
			strbuf_add_json(&js, b->disks[i].label);
			strbuf_addstr(&js, ",\"path\":");
			strbuf_add_json(&js, nd[i].path);
			strbuf_addf(&js, ",\"size\":%llu}", (unsigned long long)b->disks[i].size);
		}
		strbuf_addch(&js, ']');
		if (overwrite)
			strbuf_add(&js, removed.buf, removed.len);
		else
			strbuf_addstr(&js, ",\"removed_disks\":[],\"removed_profiles\":[]");
		strbuf_addch(&js, ',');
		add_json_stats(&js, &st);
		strbuf_addch(&js, '}');
		print_json(&js);
	} else if (!ctx->quiet) {
		printf("restored %s (%s, %s) into machine '%s' as disks %s and profile '%s'%s: "
		       "%llu files, %llu bytes; boot it with 'backup boot-config %s --boot %s'\n",
		       b->hex, b->machine, b->kind, name, labels.buf, np.name,
		       overwrite ? ", replacing its disks and profiles" : "",
		       (unsigned long long)st.files, (unsigned long long)st.bytes, name, np.name);
	}
out:
	for (i = 0; i < nmade; i++)
		if (nd[i].path && path_exists(nd[i].path) && remove_tree(nd[i].path) < 0)
			warning("cannot remove '%s': %s", nd[i].path, strerror(errno));
	if (made_disks)
		rmdir(disks);
	if (made_home)
		rmdir(home);
	if (ret != EXIT_OK && deleted)
		error("the old disks of '%s' were deleted (--overwrite) but the backup was not restored; "
		      "its machine file still names them: run the restore again", name);
	else if (ret != EXIT_OK && nmade)
		error("the new disks were removed; machine '%s' left as it was", name);
	repo_unlock(lock);
	for (i = 0; nd && i < b->ndisks; i++) {
		free(nd[i].label);
		free(nd[i].path);
		free(nd[i].mount);
	}
	free(nd);
	profile_clear(&np);
	machine_free(t);
	strbuf_release(&js);
	strbuf_release(&removed);
	strbuf_release(&labels);
	free(pname);
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
