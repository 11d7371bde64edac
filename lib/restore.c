#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <git2.h>

#include "fsutil.h"
#include "meta.h"
#include "restore.h"
#include "store.h"
#include "tree.h"
#include "usage.h"

struct link_seen {
	uint64_t dev, ino;
	char *path;		/* relative to the target root */
};

struct restorer {
	struct repo *repo;
	struct restore_stats *stats;
	int rootfd;			/* the target root */
	struct strbuf path;		/* relative path being restored */
	struct link_seen *links;
	size_t nlinks;
	int failed;			/* an error that stops the restore */
};

/* A directory of a backup: its tree and its records. */
struct bdir {
	git_tree *tree;
	struct meta *m;
	size_t n;
};

static int bdir_load(struct restorer *rs, struct bdir *d, const unsigned char oid[SHA1_LEN])
{
	struct strbuf sb = STRBUF_INIT;
	const git_tree_entry *te;
	git_oid id;
	int err;

	memset(d, 0, sizeof(*d));
	memcpy(id.id, oid, SHA1_LEN);
	if (git_tree_lookup(&d->tree, rs->repo->git, &id) < 0)
		return error("cannot read folder '%s' of the backup: tree %s is missing or damaged; "
			     "run 'backup check'", rs->path.len ? rs->path.buf : "/", git_oid_tostr_s(&id));
	te = git_tree_entry_byname(d->tree, META_NAME);
	err = te ? store_read_blob(rs->repo, git_tree_entry_id(te)->id, &sb) : ERR_NOTFOUND;
	if (!err)
		err = meta_decode(sb.buf, sb.len, &d->m, &d->n);
	strbuf_release(&sb);
	if (err) {
		git_tree_free(d->tree);
		d->tree = NULL;
		return error("cannot read folder '%s' of the backup: its metadata is missing or damaged; "
			     "run 'backup check'", rs->path.len ? rs->path.buf : "/");
	}
	return 0;
}

static void bdir_free(struct bdir *d)
{
	meta_free_array(d->m, d->n);
	git_tree_free(d->tree);
}

static const git_tree_entry *bdir_entry(const struct bdir *d, const char *name)
{
	struct strbuf sb = STRBUF_INIT;
	const git_tree_entry *te;

	name_escape(&sb, name);
	te = git_tree_entry_byname(d->tree, sb.buf);
	strbuf_release(&sb);
	return te;
}

static const char *shown(struct restorer *rs)
{
	return rs->path.len ? rs->path.buf : ".";
}

/* Sets extended attributes through the parent's descriptor, never following a symlink. */
static void set_xattrs(struct restorer *rs, int fd, int dfd, const char *name, const struct meta *m)
{
	size_t i;
	char proc[64];
	char *p = NULL;

	if (fd < 0) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d/", dfd);
		p = xasprintf("%s%s", proc, name);
	}
	for (i = 0; i < m->nxattrs; i++) {
		const struct xattr *x = &m->xattrs[i];
		int ret = fd >= 0 ? fsetxattr(fd, x->name, x->value, x->len, 0)
				  : lsetxattr(p, x->name, x->value, x->len, 0);

		if (ret < 0)
			warning("cannot set attribute '%s' on '%s': %s", x->name, shown(rs), strerror(errno));
	}
	free(p);
}

/* Owner, mode, xattrs, times: in that order. fd < 0 means "by name in dfd". */
static void apply_meta(struct restorer *rs, int fd, int dfd, const char *name, const struct meta *m)
{
	struct timespec ts[2] = { m->atime, m->mtime };
	int lnk = S_ISLNK(m->mode);

	if ((fd >= 0 ? fchown(fd, m->uid, m->gid) : fchownat(dfd, name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW)) < 0)
		warning("cannot set the owner of '%s': %s", shown(rs), strerror(errno));
	if (!lnk && (fd >= 0 ? fchmod(fd, m->mode & 07777) : fchmodat(dfd, name, m->mode & 07777, 0)) < 0)
		warning("cannot set the mode of '%s': %s", shown(rs), strerror(errno));
	if (m->nxattrs)
		set_xattrs(rs, fd, dfd, name, m);
	if ((fd >= 0 ? futimens(fd, ts) : utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW)) < 0)
		warning("cannot set the times of '%s': %s", shown(rs), strerror(errno));
}

/* Removes whatever is at name in dfd, so that it can be created anew. */
static int clear_name(struct restorer *rs, int dfd, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : error("cannot replace '%s': %s", shown(rs), strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		char *p = xasprintf("/proc/self/fd/%d/%s", dfd, name);
		int ret = remove_tree(p);
		free(p);
		if (ret < 0)
			return error("cannot replace folder '%s': %s", shown(rs), strerror(errno));
		return 0;
	}
	if (unlinkat(dfd, name, 0) < 0)
		return error("cannot replace '%s': %s", shown(rs), strerror(errno));
	return 0;
}

/* Writes the bytes of blob oid at off, keeping holes where the file had them. */
static int write_blob(struct restorer *rs, int fd, const unsigned char *oid, uint64_t *off,
		      const struct meta *m, struct strbuf *buf)
{
	int err;
	size_t i;

	strbuf_reset(buf);
	err = store_read_blob(rs->repo, oid, buf);
	if (err)
		return err;
	if (!m->nextents) {
		if (write_all(fd, buf->buf, buf->len) < 0)
			return -1;
	} else {
		for (i = 0; i < m->nextents; i++) {
			uint64_t s = m->extents[2 * i], e = s + m->extents[2 * i + 1];
			uint64_t a = s > *off ? s : *off, b = e < *off + buf->len ? e : *off + buf->len;

			if (a < b && pwrite(fd, buf->buf + (a - *off), b - a, a) != (ssize_t)(b - a))
				return -1;
		}
	}
	*off += buf->len;
	return 0;
}

static int write_content(struct restorer *rs, int fd, const git_tree_entry *te, const struct meta *m)
{
	struct strbuf buf = STRBUF_INIT;
	uint64_t off = 0;
	int err = 0;

	if (git_tree_entry_type(te) == GIT_OBJECT_BLOB) {
		err = write_blob(rs, fd, git_tree_entry_id(te)->id, &off, m, &buf);
	} else {
		git_tree *t = NULL;
		size_t i, n;

		if (git_tree_lookup(&t, rs->repo->git, git_tree_entry_id(te)) < 0) {
			err = ERR_CORRUPT;
		} else {
			n = git_tree_entrycount(t);
			for (i = 0; i < n && !err; i++) {
				const git_tree_entry *c = git_tree_entry_byindex(t, i);
				err = git_tree_entry_type(c) == GIT_OBJECT_BLOB ?
					write_blob(rs, fd, git_tree_entry_id(c)->id, &off, m, &buf) : ERR_CORRUPT;
			}
			git_tree_free(t);
		}
	}
	strbuf_release(&buf);
	if (err)
		return err;
	if (off != m->size)
		return ERR_CORRUPT;
	if (m->nextents && ftruncate(fd, m->size) < 0)
		return -1;
	return 0;
}

static int restore_file(struct restorer *rs, int dfd, const struct meta *m, const git_tree_entry *te)
{
	size_t i;
	int fd, err;

	if (m->nlink > 1)
		for (i = 0; i < rs->nlinks; i++)
			if (rs->links[i].dev == m->dev && rs->links[i].ino == m->ino) {
				if (clear_name(rs, dfd, m->name) < 0)
					return -1;
				if (linkat(rs->rootfd, rs->links[i].path, dfd, m->name, 0) == 0)
					return 0;
				break;	/* fall back to a copy */
			}
	if (!te)
		return error("cannot restore '%s': the backup has no content for it; run 'backup check'", shown(rs));
	if (clear_name(rs, dfd, m->name) < 0)
		return -1;
	fd = openat(dfd, m->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return error("cannot create '%s': %s", shown(rs), strerror(errno));
	err = write_content(rs, fd, te, m);
	if (err) {
		close(fd);
		unlinkat(dfd, m->name, 0);
		if (err == ERR_CORRUPT || err == ERR_NOTFOUND) {
			error("cannot restore '%s': its data in the repository is %s; run 'backup check --read-data'",
			      shown(rs), err == ERR_NOTFOUND ? "missing" : "damaged");
			rs->stats->errors++;
			return 0;
		}
		return error("cannot write '%s': %s", shown(rs), strerror(errno));
	}
	apply_meta(rs, fd, dfd, m->name, m);
	close(fd);
	rs->stats->files++;
	rs->stats->bytes += m->size;
	if (m->nlink > 1) {
		rs->links = xrealloc(rs->links, (rs->nlinks + 1) * sizeof(*rs->links));
		rs->links[rs->nlinks].dev = m->dev;
		rs->links[rs->nlinks].ino = m->ino;
		rs->links[rs->nlinks].path = xstrdup(rs->path.buf);
		rs->nlinks++;
	}
	return 0;
}

static int restore_dir(struct restorer *rs, int dfd, const unsigned char oid[SHA1_LEN]);

/* Restores one entry m of backup folder d into dfd. */
static int restore_entry(struct restorer *rs, int dfd, const struct bdir *d, const struct meta *m)
{
	const git_tree_entry *te = bdir_entry(d, m->name);
	mode_t type = m->mode & S_IFMT;

	if (!strcmp(m->name, ".") || !strcmp(m->name, "..") || strchr(m->name, '/'))
		return error("the backup holds a hostile name '%s' in '%s'; not restored", m->name, shown(rs));
	if (type == S_IFDIR) {
		struct stat st;
		int sub;

		if (!te || git_tree_entry_type(te) != GIT_OBJECT_TREE)
			return error("cannot restore folder '%s': the backup has no tree for it; run 'backup check'", shown(rs));
		if (fstatat(dfd, m->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
		    clear_name(rs, dfd, m->name) < 0)
			return -1;
		if (mkdirat(dfd, m->name, 0700) < 0 && errno != EEXIST)
			return error("cannot create folder '%s': %s", shown(rs), strerror(errno));
		sub = openat(dfd, m->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return error("cannot open folder '%s': %s", shown(rs), strerror(errno));
		int ret = restore_dir(rs, sub, git_tree_entry_id(te)->id);
		close(sub);
		return ret;
	}
	if (type == S_IFREG)
		return restore_file(rs, dfd, m, te);
	if (clear_name(rs, dfd, m->name) < 0)
		return -1;
	if (type == S_IFLNK) {
		if (symlinkat(m->link ? m->link : "", dfd, m->name) < 0)
			return error("cannot create symlink '%s': %s", shown(rs), strerror(errno));
	} else if (type == S_IFCHR || type == S_IFBLK || type == S_IFIFO || type == S_IFSOCK) {
		if (mknodat(dfd, m->name, type | 0600, m->rdev) < 0)
			return error("cannot create '%s': %s", shown(rs), strerror(errno));
	} else {
		return error("cannot restore '%s': unknown file type %o", shown(rs), type);
	}
	apply_meta(rs, -1, dfd, m->name, m);
	rs->stats->others++;
	return 0;
}

/* Restores backup folder oid into the open folder dfd, its own metadata last. */
static int restore_dir(struct restorer *rs, int dfd, const unsigned char oid[SHA1_LEN])
{
	struct bdir d;
	size_t i, plen = rs->path.len;
	int ret = 0;

	if (bdir_load(rs, &d, oid) < 0)
		return -1;
	for (i = 1; i < d.n && !ret; i++) {
		if (plen)
			strbuf_addch(&rs->path, '/');
		strbuf_addstr(&rs->path, d.m[i].name);
		ret = restore_entry(rs, dfd, &d, &d.m[i]);
		strbuf_setlen(&rs->path, plen);
	}
	if (!ret) {
		apply_meta(rs, dfd, -1, NULL, &d.m[0]);
		rs->stats->dirs++;
	}
	bdir_free(&d);
	return ret;
}

static void restorer_free(struct restorer *rs)
{
	size_t i;

	for (i = 0; i < rs->nlinks; i++)
		free(rs->links[i].path);
	free(rs->links);
	strbuf_release(&rs->path);
	if (rs->rootfd >= 0)
		close(rs->rootfd);
}

static int open_target(const char *target)
{
	int fd;

	if (mkdir(target, 0700) < 0 && errno != EEXIST)
		return error("cannot create '%s': %s", target, strerror(errno));
	fd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return error("cannot open '%s': %s", target, strerror(errno));
	return fd;
}

int restore_tree(struct repo *r, const unsigned char tree[SHA1_LEN], const char *target,
		 struct restore_stats *stats)
{
	struct restorer rs = { .repo = r, .stats = stats, .rootfd = -1 };
	int ret;

	strbuf_init(&rs.path, 256);
	rs.rootfd = open_target(target);
	if (rs.rootfd < 0) {
		restorer_free(&rs);
		return -1;
	}
	ret = restore_dir(&rs, rs.rootfd, tree);
	if (!ret && syncfs(rs.rootfd) < 0)
		ret = error("cannot sync '%s': %s", target, strerror(errno));
	restorer_free(&rs);
	return ret;
}

int restore_path(struct repo *r, const unsigned char disk_tree[SHA1_LEN], const char *path,
		 const char *target_root, struct restore_stats *stats)
{
	struct restorer rs = { .repo = r, .stats = stats, .rootfd = -1 };
	struct bdir d = { 0 };
	unsigned char cur[SHA1_LEN];
	char *copy = xstrdup(path), *save = NULL, *comp, *next;
	int dfd = -1, ret = -1;

	strbuf_init(&rs.path, 256);
	memcpy(cur, disk_tree, SHA1_LEN);
	if (mkdir_p(target_root, 0755) < 0) {
		error("cannot create '%s': %s", target_root, strerror(errno));
		goto out;
	}
	rs.rootfd = open_target(target_root);
	if (rs.rootfd < 0)
		goto out;
	dfd = dup(rs.rootfd);
	comp = strtok_r(copy, "/", &save);
	if (!comp) {
		/* The whole disk. */
		ret = restore_dir(&rs, dfd, cur);
		goto out;
	}
	for (; comp; comp = next) {
		const struct meta *m = NULL;
		size_t i;

		next = strtok_r(NULL, "/", &save);
		if (!strcmp(comp, ".") || !strcmp(comp, "..")) {
			error("path '%s' may not contain '.' or '..'", path);
			goto out;
		}
		if (bdir_load(&rs, &d, cur) < 0)
			goto out;
		for (i = 1; i < d.n; i++)
			if (!strcmp(d.m[i].name, comp))
				m = &d.m[i];
		if (rs.path.len)
			strbuf_addch(&rs.path, '/');
		strbuf_addstr(&rs.path, comp);
		if (!m) {
			ret = ERR_NOTFOUND;
			goto out;
		}
		if (!next) {
			ret = restore_entry(&rs, dfd, &d, m);
			goto out;
		}
		const git_tree_entry *te = bdir_entry(&d, comp);
		if (!S_ISDIR(m->mode) || !te || git_tree_entry_type(te) != GIT_OBJECT_TREE) {
			ret = ERR_NOTFOUND;
			goto out;
		}
		memcpy(cur, git_tree_entry_id(te)->id, SHA1_LEN);
		/* The folders on the way are made plain; only what was asked for gets
		 * its metadata. Anything else in their place (a symlink) is replaced. */
		struct stat st;
		if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
		    clear_name(&rs, dfd, comp) < 0)
			goto out;
		if (mkdirat(dfd, comp, 0755) < 0 && errno != EEXIST) {
			error("cannot create '%s': %s", rs.path.buf, strerror(errno));
			goto out;
		}
		int sub = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			error("cannot open '%s' in '%s': %s", rs.path.buf, target_root, strerror(errno));
			goto out;
		}
		close(dfd);
		dfd = sub;
		bdir_free(&d);
		memset(&d, 0, sizeof(d));
	}
out:
	if (ret == 0 && syncfs(rs.rootfd) < 0)
		ret = error("cannot sync '%s': %s", target_root, strerror(errno));
	bdir_free(&d);
	if (dfd >= 0)
		close(dfd);
	restorer_free(&rs);
	free(copy);
	return ret;
}
