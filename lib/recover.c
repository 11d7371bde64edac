/*
 * recover.c — restoring a whole machine from a backup (recover.h): the
 * disks, the machine file, and the rules of --new, --existing and
 * --overwrite.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "diskimg.h"
#include "fsutil.h"
#include "profile.h"
#include "recover.h"
#include "strbuf.h"
#include "usage.h"
#include "verify.h"

/*
 * Restores disk d of backup b into the folder disks under the name label:
 * as the folder disks/LABEL, or with ext4 as the image disks/LABEL.img of
 * the disk's recorded size. Sets *path (the caller frees it) even when it
 * fails; nothing is left at *path on failure but a folder, which the
 * caller removes. Returns 0, ERR_NOSPACE or -1, after printing the reason.
 */
static int make_disk(struct repo *repo, const struct backup_info *b, const struct backup_disk *d,
		     const char *disks, const char *label, int ext4, char **path,
		     struct restore_stats *st)
{
	struct restore_stats before = *st;
	char hs[32], hb[32];
	int r;

	*path = xasprintf(ext4 ? "%s/%s.img" : "%s/%s", disks, label);
	if (ext4)
		r = diskimg_restore_ext4(repo, d->tree, *path, d->size, st);
	else
		r = restore_tree(repo, d->tree, *path, st);
	if (r == ERR_NOSPACE) {
		error("disk '%s' of backup %s does not fit its recorded size of %s (%llu bytes) as ext4: "
		      "it holds %llu files and folders, %s (%llu bytes); restore it with --disk-format dir, "
		      "or raise disk.%s.size of '%s' and back it up again",
		      d->label, b->hex, human_size(d->size, hs, sizeof(hs)), (unsigned long long)d->size,
		      (unsigned long long)(st->files + st->dirs + st->others -
					   before.files - before.dirs - before.others),
		      human_size(st->bytes - before.bytes, hb, sizeof(hb)),
		      (unsigned long long)(st->bytes - before.bytes), d->label, b->machine);
		return ERR_NOSPACE;
	}
	if (st->errors > before.errors) {
		error("%llu files of disk '%s' of backup %s could not be restored",
		      (unsigned long long)(st->errors - before.errors), d->label, b->hex);
		return -1;
	}
	return r < 0 ? -1 : 0;
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

int recover_new(struct repo *repo, const struct config *c, struct backup_info *b, const char *name,
		int ext4, struct recover_result *res)
{
	char *conf = machine_path(c, name), *home = xasprintf("%s/%s", c->machines_root, name);
	char *disks = xasprintf("%s/disks", home);
	struct machine *m = b->layout;
	struct stat sb;
	size_t i;
	int ret = -1, made = 0, lockfd = -1;

	memset(res, 0, sizeof(*res));
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
		int r = make_disk(repo, b, &b->disks[i], disks, b->disks[i].label, ext4, &path, &res->stats);

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
		res->required += b->disks[i].size;
		if (r) {
			ret = r;
			goto out;
		}
	}
	free(m->name);
	m->name = xstrdup(name);
	if (m->plan < res->required)
		m->plan = res->required;
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
	ret = 0;
	res->disks = xcalloc(m->ndisks ? m->ndisks : 1, sizeof(*res->disks));
	res->ndisks = m->ndisks;
	for (i = 0; i < m->ndisks; i++) {
		res->disks[i].label = xstrdup(m->disks[i].label);
		res->disks[i].from = i < b->ndisks ? b->disks[i].label : NULL;
		res->disks[i].path = xstrdup(m->disks[i].source);
		res->disks[i].size = m->disks[i].size;
	}
	res->config = conf;
	conf = NULL;
out:
	if (made)
		remove_tree(home);
	if (lockfd >= 0)
		close(lockfd);
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
 * Deletes the old disks of t for overwrite, each only when its source is
 * inside machines.root/NAME/ (something backup made) and holds none of the
 * new disks; any other source, such as a live machine's "/", is left in
 * place and only dropped from the machine file, which is said. Lists them
 * in res. Failures are warned about: the disks are no longer the
 * machine's either way.
 */
static void delete_old_disks(const struct machine *t, const char *home, const struct new_disk *nd,
			     size_t n, struct recover_result *res)
{
	char *rhome = realpath(home, NULL), *rdisks = xasprintf("%s/disks", rhome ? rhome : home);
	size_t i, k;

	res->removed = xcalloc(t->ndisks ? t->ndisks : 1, sizeof(*res->removed));
	res->nremoved = t->ndisks;
	for (i = 0; i < t->ndisks; i++) {
		const struct disk *d = &t->disks[i];
		char *rsrc = realpath(d->source, NULL);
		int ours = rhome && rsrc && inside(rsrc, rhome) && strcmp(rsrc, rdisks);
		struct stat st;

		res->removed[i].label = xstrdup(d->label);
		res->removed[i].source = xstrdup(d->source);
		for (k = 0; k < n && ours; k++) {
			size_t len = strlen(rsrc);

			/* nd[k].path is made from home, which may not be a real path. */
			char *rnew = realpath(nd[k].path, NULL);
			if (rnew && !strncmp(rnew, rsrc, len) && (!rnew[len] || rnew[len] == '/'))
				ours = 0;
			free(rnew);
		}
		if (!ours) {
			if (verbosity >= 0)
				fprintf(stderr, "backup: disk '%s' of '%s' ('%s') is not inside '%s': "
					"dropped from the machine, its data left in place\n",
					d->label, t->name, d->source, home);
		} else if (lstat(rsrc, &st) == 0) {
			if (remove_tree(rsrc) < 0)
				warning("cannot delete disk '%s' of '%s' ('%s'): %s", d->label, t->name,
					rsrc, strerror(errno));
			else
				res->removed[i].deleted = 1;
		}
		free(rsrc);
	}
	res->removed_profiles = xcalloc(t->nprofiles + 1, sizeof(*res->removed_profiles));
	res->nremoved_profiles = t->nprofiles;
	for (i = 0; i < t->nprofiles; i++)
		res->removed_profiles[i] = xstrdup(t->profiles[i].name);
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
int recover_existing(struct repo *repo, const struct config *c, const struct backup_info *b,
		     const char *name, int overwrite, int ext4, long wait, struct recover_result *res)
{
	char *home = NULL, *disks = NULL, *pname = NULL;
	struct machine *t = NULL;
	struct new_disk *nd = NULL;
	struct profile np = { 0 };
	uint64_t allocated = 0;
	int ret = -1, lock = -1, made_home = 0, made_disks = 0, deleted = 0, r;
	size_t i, nmade = 0;

	memset(res, 0, sizeof(*res));
	if (!valid_name(name)) {
		error("'%s' is not a valid machine name; use letters, digits, '_', '.', '-'", name);
		goto out;
	}
	/* The machine's other jobs (a backup reading its disks, another
	 * restore editing its file) wait for this one. */
	lock = repo_lock(repo, name, wait);
	if (lock == ERR_LOCKED) {
		ret = ERR_LOCKED;
		goto out;
	}
	if (lock < 0 || machine_load(&t, c, name) < 0)
		goto out;
	for (i = 0; i < b->ndisks; i++)
		res->required += b->disks[i].size;
	for (i = 0; i < t->ndisks; i++)
		allocated += t->disks[i].size;
	res->unallocated = t->plan > allocated ? t->plan - allocated : 0;
	if (overwrite ? t->plan < res->required : res->unallocated < res->required) {
		nospace(name, b->hex, res->required, overwrite ? t->plan : res->unallocated, overwrite);
		ret = ERR_NOSPACE;
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

	if (overwrite && res->unallocated < res->required) {
		/* The new disks fit only once the old ones are gone: before
		 * deleting anything, make sure the whole backup can be read. */
		struct verify_report rep = { .mismatch = report_unreadable };

		for (i = 0; i < b->ndisks; i++) {
			rep.data = b->disks[i].label;
			verify_tree(repo, b->disks[i].tree, NULL, &rep);
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
	if (overwrite && res->unallocated < res->required) {
		delete_old_disks(t, home, nd, 0, res);
		deleted = 1;
	}
	for (i = 0; i < b->ndisks; i++) {
		r = make_disk(repo, b, &b->disks[i], disks, nd[i].label, ext4, &nd[i].path, &res->stats);
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
	ret = 0;
	if (overwrite && !deleted)
		delete_old_disks(t, home, nd, b->ndisks, res);
	res->config = xstrdup(t->path);
	res->profile = pname;
	pname = NULL;
	res->disks = xcalloc(b->ndisks ? b->ndisks : 1, sizeof(*res->disks));
	res->ndisks = b->ndisks;
	for (i = 0; i < b->ndisks; i++) {
		res->disks[i].label = nd[i].label;
		res->disks[i].from = b->disks[i].label;
		res->disks[i].path = nd[i].path;
		res->disks[i].size = b->disks[i].size;
		nd[i].label = nd[i].path = NULL;
	}
out:
	for (i = 0; i < nmade; i++)
		if (nd[i].path && path_exists(nd[i].path) && remove_tree(nd[i].path) < 0)
			warning("cannot remove '%s': %s", nd[i].path, strerror(errno));
	if (made_disks)
		rmdir(disks);
	if (made_home)
		rmdir(home);
	if (ret && deleted)
		error("the old disks of '%s' were deleted (--overwrite) but the backup was not restored; "
		      "its machine file still names them: run the restore again", name);
	else if (ret && nmade)
		error("the new disks were removed; machine '%s' left as it was", name);
	repo_unlock(lock);
	for (i = 0; nd && i < b->ndisks; i++) {
		free(nd[i].label);
		free(nd[i].path);
		free(nd[i].mount);
	}
	free(nd);
	profile_release(&np);
	machine_free(t);
	free(pname);
	free(home);
	free(disks);
	return ret;
}

void recover_release(struct recover_result *res)
{
	size_t i;

	for (i = 0; i < res->ndisks; i++) {
		free(res->disks[i].label);
		free(res->disks[i].path);
	}
	free(res->disks);
	for (i = 0; i < res->nremoved; i++) {
		free(res->removed[i].label);
		free(res->removed[i].source);
	}
	free(res->removed);
	free_strv(res->removed_profiles, res->nremoved_profiles);
	free(res->config);
	free(res->profile);
	memset(res, 0, sizeof(*res));
}
