#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include "packread.h"
#include "restore.h"
#include "store.h"
#include "tree.h"
#include "usage.h"

struct link_seen {
	uint64_t dev, ino;
	char *path;		/* relative to the target root */
};

/*
 * Regular files are written by worker threads, one chunk at a time, while
 * the walking thread creates the names (so every folder's entries exist
 * before its own metadata is applied) and queues the chunks: decoding
 * (SHA-1, zstd) and the kernel's writes of one chunk overlap those of the
 * others on every core.
 */
#define MAX_WORKERS 4
#define ERR_GIVEN_UP 1		/* a file's chunks skipped after another failed */
#define QUEUE_LEN 64

/* A folder's records, shared by the files of it still being written. */
struct mset {
	struct meta *m;
	size_t n;
	unsigned refs;
};

/* A regular file whose chunks the workers write. */
struct wfile {
	struct mset *ms;
	const struct meta *m;
	char *path;		/* relative to the target root */
	int fd;
	unsigned pending;	/* chunks not written yet */
	uint64_t bytes;		/* plaintext bytes written */
	int err;		/* ERR_CORRUPT, ERR_NOTFOUND, or -1 with werrno */
	int werrno;
};

struct job {
	struct wfile *f;
	uint64_t off;
	unsigned char oid[SHA1_LEN];
};

struct restorer {
	struct repo *repo;
	struct restore_stats *stats;
	int rootfd;			/* the target root */
	struct strbuf path;		/* relative path being restored */
	struct link_seen *links;
	size_t nlinks;
	struct packset *ps;
	struct blob_reader br;		/* the walking thread's */

	pthread_mutex_t lock;		/* the rest, and stats */
	pthread_cond_t more, room, done;
	struct job queue[QUEUE_LEN];
	size_t head, queued, busy;
	pthread_t workers[MAX_WORKERS];
	int nworkers;
	int stop;
	int failed;			/* a write failed: the restore stops */
};

/* A folder of a backup: its tree and its records. */
struct bdir {
	git_tree *tree;
	struct tree_names *names;	/* encrypted repository: its opened names */
	struct mset *ms;
	struct meta *m;		/* ms->m */
	size_t n;
};

static void mset_put(struct mset *ms)
{
	if (ms && !--ms->refs) {
		meta_free_array(ms->m, ms->n);
		free(ms);
	}
}

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
	d->ms = xcalloc(1, sizeof(*d->ms));
	d->ms->refs = 1;
	te = git_tree_entry_byname(d->tree, META_NAME);
	err = te ? packset_read_blob(rs->ps, &rs->br, git_tree_entry_id(te)->id, &sb) : ERR_NOTFOUND;
	if (!err)
		err = meta_decode(sb.buf, sb.len, &d->ms->m, &d->ms->n);
	if (!err && tree_names_load(&d->names, rs->repo->keys, d->tree) < 0) {
		meta_free_array(d->ms->m, d->ms->n);
		err = ERR_CORRUPT;
	}
	strbuf_release(&sb);
	if (err) {
		git_tree_free(d->tree);
		free(d->ms);
		memset(d, 0, sizeof(*d));
		return error("cannot read folder '%s' of the backup: its metadata is missing or damaged; "
			     "run 'backup check'", rs->path.len ? rs->path.buf : "/");
	}
	d->m = d->ms->m;
	d->n = d->ms->n;
	return 0;
}

/* The files of d still being written keep its records until they are done. */
static void bdir_free(struct restorer *rs, struct bdir *d)
{
	pthread_mutex_lock(&rs->lock);
	mset_put(d->ms);
	pthread_mutex_unlock(&rs->lock);
	tree_names_free(d->names);
	git_tree_free(d->tree);
	memset(d, 0, sizeof(*d));
}

static const git_tree_entry *bdir_entry(const struct bdir *d, const char *name)
{
	return tree_names_find(d->names, d->tree, name);
}

static const char *shown(const char *path)
{
	return *path ? path : ".";
}

/* The entry of the record at rs->path is not in folder d's tree. */
static int no_entry(struct restorer *rs, const struct bdir *d)
{
	if (tree_names_bad(d->names))
		return error("cannot restore '%s': an entry of its folder in the backup fails its authentication "
			     "(altered, moved or swapped); run 'backup check --read-data'", shown(rs->path.buf));
	return error("cannot restore '%s': the backup has no content for it; run 'backup check'", shown(rs->path.buf));
}

/* Sets extended attributes through the parent's descriptor, never following a symlink. */
static void set_xattrs(const char *path, int fd, int dfd, const char *name, const struct meta *m)
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
			warning("cannot set attribute '%s' on '%s': %s", x->name, shown(path), strerror(errno));
	}
	free(p);
}

/*
 * Owner, mode, xattrs, times: in that order. fd < 0 means "by name in dfd".
 * path names the file in warnings.
 */
static void apply_meta(const char *path, int fd, int dfd, const char *name, const struct meta *m)
{
	struct timespec ts[2] = { m->atime, m->mtime };
	int lnk = S_ISLNK(m->mode);

	if ((fd >= 0 ? fchown(fd, m->uid, m->gid) : fchownat(dfd, name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW)) < 0)
		warning("cannot set the owner of '%s': %s", shown(path), strerror(errno));
	if (!lnk && (fd >= 0 ? fchmod(fd, m->mode & 07777) : fchmodat(dfd, name, m->mode & 07777, 0)) < 0)
		warning("cannot set the mode of '%s': %s", shown(path), strerror(errno));
	if (m->nxattrs)
		set_xattrs(path, fd, dfd, name, m);
	if ((fd >= 0 ? futimens(fd, ts) : utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW)) < 0)
		warning("cannot set the times of '%s': %s", shown(path), strerror(errno));
}

/* Removes whatever is at name in dfd, so that it can be created anew. */
static int clear_name(struct restorer *rs, int dfd, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : error("cannot replace '%s': %s", shown(rs->path.buf), strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		char *p = xasprintf("/proc/self/fd/%d/%s", dfd, name);
		int ret = remove_tree(p);
		free(p);
		if (ret < 0)
			return error("cannot replace folder '%s': %s", shown(rs->path.buf), strerror(errno));
		return 0;
	}
	if (unlinkat(dfd, name, 0) < 0)
		return error("cannot replace '%s': %s", shown(rs->path.buf), strerror(errno));
	return 0;
}

/*
 * Removes the file at path below the root, through folders only, never a
 * symlink, and gives its folder back the times of record dir (the folder's
 * own metadata may have been applied already).
 */
static int unlink_beneath(int rootfd, const char *path, const struct meta *dir)
{
	char *copy = xstrdup(path), *slash = strrchr(copy, '/');
	int dfd = dup(rootfd), ret = -1;
	char *comp, *save = NULL;

	if (slash) {
		*slash = 0;
		for (comp = strtok_r(copy, "/", &save); comp && dfd >= 0; comp = strtok_r(NULL, "/", &save)) {
			int sub = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			close(dfd);
			dfd = sub;
		}
	}
	if (dfd >= 0) {
		struct timespec ts[2] = { dir->atime, dir->mtime };

		struct stat st;
		const char *base = slash ? slash + 1 : copy;

		ret = unlinkat(dfd, base, 0);
		/* The folder's own mode may be applied already, without write permission. */
		if (ret < 0 && errno == EACCES && fstat(dfd, &st) == 0 && fchmod(dfd, st.st_mode | 0300) == 0) {
			ret = unlinkat(dfd, base, 0);
			fchmod(dfd, st.st_mode & 07777);
		}
		if (!ret && futimens(dfd, ts) < 0)
			warning("cannot set the times of the folder of '%s': %s", path, strerror(errno));
		close(dfd);
	}
	free(copy);
	return ret;
}

/* Writes one chunk's bytes at off, keeping holes where the file had them. */
static int put_chunk(int fd, const struct strbuf *buf, uint64_t off, const struct meta *m)
{
	size_t i;

	if (!m->nextents)
		return pwrite_all(fd, buf->buf, buf->len, off);
	for (i = 0; i < m->nextents; i++) {
		uint64_t s = m->extents[2 * i], e = s + m->extents[2 * i + 1];
		uint64_t a = s > off ? s : off, b = e < off + buf->len ? e : off + buf->len;

		if (a < b && pwrite_all(fd, buf->buf + (a - off), b - a, a) < 0)
			return -1;
	}
	return 0;
}

/* The last bytes of a file are written: its size, holes and metadata. Any thread. */
static void file_done(struct restorer *rs, struct wfile *f)
{
	if (!f->err && f->bytes != f->m->size)
		f->err = ERR_CORRUPT;
	if (!f->err && f->m->nextents && ftruncate(f->fd, f->m->size) < 0) {
		f->err = -1;
		f->werrno = errno;
	}
	if (!f->err)
		apply_meta(f->path, f->fd, -1, NULL, f->m);
	else if (ftruncate(f->fd, 0) < 0 || unlink_beneath(rs->rootfd, f->path, &f->ms->m[0]) < 0)
		warning("cannot remove the part of '%s' written", f->path);
	close(f->fd);
	pthread_mutex_lock(&rs->lock);
	if (!f->err) {
		rs->stats->files++;
		rs->stats->bytes += f->m->size;
	} else if (f->err == ERR_GIVEN_UP) {
		/* Another file's write failed: that one is reported. */
	} else if (f->err == ERR_CORRUPT || f->err == ERR_NOTFOUND) {
		error("cannot restore '%s': its data in the repository is %s; run 'backup check --read-data'",
		      f->path, f->err == ERR_NOTFOUND ? "missing" : "damaged");
		rs->stats->errors++;
	} else if (!rs->failed) {
		error("cannot write '%s': %s", f->path, strerror(f->werrno));
		__atomic_store_n(&rs->failed, 1, __ATOMIC_RELAXED);
	}
	mset_put(f->ms);
	pthread_mutex_unlock(&rs->lock);
	free(f->path);
	free(f);
}

static void *worker(void *arg)
{
	struct restorer *rs = arg;
	struct blob_reader br = BLOB_READER_INIT;
	struct strbuf buf = STRBUF_INIT;

	pthread_mutex_lock(&rs->lock);
	for (;;) {
		struct job j;
		int err = 0, werrno = 0, last;

		while (!rs->queued && !rs->stop)
			pthread_cond_wait(&rs->more, &rs->lock);
		if (!rs->queued)
			break;
		j = rs->queue[rs->head];
		rs->head = (rs->head + 1) % QUEUE_LEN;
		rs->queued--;
		rs->busy++;
		pthread_cond_signal(&rs->room);
		if (rs->failed || j.f->err) {
			/* Nothing more is written: the file is given up. */
			if (!j.f->err)
				j.f->err = ERR_GIVEN_UP;
		} else {
			pthread_mutex_unlock(&rs->lock);
			strbuf_reset(&buf);
			err = packset_read_blob(rs->ps, &br, j.oid, &buf);
			if (!err && put_chunk(j.f->fd, &buf, j.off, j.f->m) < 0) {
				err = -1;
				werrno = errno;
			}
			pthread_mutex_lock(&rs->lock);
			if (err && !j.f->err) {
				j.f->err = err;
				j.f->werrno = werrno;
			}
			if (!err)
				j.f->bytes += buf.len;
		}
		last = !--j.f->pending;
		if (last) {
			pthread_mutex_unlock(&rs->lock);
			file_done(rs, j.f);
			pthread_mutex_lock(&rs->lock);
		}
		rs->busy--;
		if (!rs->queued && !rs->busy)
			pthread_cond_broadcast(&rs->done);
	}
	pthread_mutex_unlock(&rs->lock);
	strbuf_release(&buf);
	blob_reader_release(&br);
	return NULL;
}

static void enqueue(struct restorer *rs, struct wfile *f, const unsigned char *oid, uint64_t off)
{
	struct job *j;

	pthread_mutex_lock(&rs->lock);
	while (rs->queued == QUEUE_LEN)
		pthread_cond_wait(&rs->room, &rs->lock);
	j = &rs->queue[(rs->head + rs->queued) % QUEUE_LEN];
	j->f = f;
	j->off = off;
	memcpy(j->oid, oid, SHA1_LEN);
	rs->queued++;
	pthread_cond_signal(&rs->more);
	pthread_mutex_unlock(&rs->lock);
}

/* Waits until every queued chunk is written and every file finished. */
static void drain(struct restorer *rs)
{
	pthread_mutex_lock(&rs->lock);
	while (rs->queued || rs->busy)
		pthread_cond_wait(&rs->done, &rs->lock);
	pthread_mutex_unlock(&rs->lock);
}

static void start_workers(struct restorer *rs)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int want = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;

	pthread_mutex_init(&rs->lock, NULL);
	pthread_cond_init(&rs->more, NULL);
	pthread_cond_init(&rs->room, NULL);
	pthread_cond_init(&rs->done, NULL);
	while (rs->nworkers < want && pthread_create(&rs->workers[rs->nworkers], NULL, worker, rs) == 0)
		rs->nworkers++;
}

static void stop_workers(struct restorer *rs)
{
	int i;

	pthread_mutex_lock(&rs->lock);
	rs->stop = 1;
	pthread_cond_broadcast(&rs->more);
	pthread_mutex_unlock(&rs->lock);
	for (i = 0; i < rs->nworkers; i++)
		pthread_join(rs->workers[i], NULL);
	pthread_cond_destroy(&rs->more);
	pthread_cond_destroy(&rs->room);
	pthread_cond_destroy(&rs->done);
	pthread_mutex_destroy(&rs->lock);
}

/*
 * The chunks of a file's content entry te: te alone when it is a blob (*t
 * is NULL then), else the entries of the tree it names (*t, which the
 * caller frees). Returns their number, or ERR_CORRUPT.
 */
static int content_chunks(struct restorer *rs, const git_tree_entry *te, git_tree **t, size_t *n)
{
	*t = NULL;
	*n = 1;
	if (git_tree_entry_type(te) == GIT_OBJECT_BLOB)
		return 0;
	if (git_tree_lookup(t, rs->repo->git, git_tree_entry_id(te)) < 0)
		return ERR_CORRUPT;
	*n = git_tree_entrycount(*t);
	return 0;
}

/* The id of chunk i of content_chunks(), or NULL when it is not a blob. */
static const unsigned char *chunk_id(git_tree *t, const git_tree_entry *te, size_t i)
{
	const git_tree_entry *c = t ? git_tree_entry_byindex(t, i) : te;

	return git_tree_entry_type(c) == GIT_OBJECT_BLOB ? git_tree_entry_id(c)->id : NULL;
}

/* Writes a file's content in this thread: hard-linked files, and when no worker runs. */
static int write_content(struct restorer *rs, int fd, const git_tree_entry *te, const struct meta *m)
{
	struct strbuf buf = STRBUF_INIT;
	uint64_t off = 0;
	git_tree *t;
	size_t i, n;
	int err = 0;

	if (content_chunks(rs, te, &t, &n) < 0)
		return ERR_CORRUPT;
	for (i = 0; i < n && !err; i++) {
		const unsigned char *id = chunk_id(t, te, i);

		strbuf_reset(&buf);
		err = !id ? ERR_CORRUPT : packset_read_blob(rs->ps, &rs->br, id, &buf);
		if (!err && put_chunk(fd, &buf, off, m) < 0)
			err = -1;
		off += buf.len;
	}
	git_tree_free(t);
	strbuf_release(&buf);
	if (!err && off != m->size)
		err = ERR_CORRUPT;
	if (!err && m->nextents && ftruncate(fd, m->size) < 0)
		err = -1;
	return err;
}

/*
 * Hands the chunks of file fd to the workers, which finish it. Their
 * offsets come from the chunks' frame headers. Returns 0, or the error
 * that keeps the file from being queued (nothing queued then).
 */
static int queue_content(struct restorer *rs, struct mset *ms, int fd, const git_tree_entry *te,
			 const struct meta *m)
{
	struct wfile *f;
	git_tree *t;
	uint64_t *off;
	size_t i, n;
	int err = 0;

	if (content_chunks(rs, te, &t, &n) < 0)
		return ERR_CORRUPT;
	off = xcalloc(n + 1, sizeof(*off));
	for (i = 0; i < n && !err; i++) {
		const unsigned char *id = chunk_id(t, te, i);
		uint64_t size = 0;

		err = !id ? ERR_CORRUPT : i + 1 == n ? 0 : packset_blob_size(rs->ps, &rs->br, id, &size);
		off[i + 1] = off[i] + size;
	}
	if (!err && (!n || off[n - 1] > m->size))
		err = ERR_CORRUPT;
	if (!err) {
		f = xcalloc(1, sizeof(*f));
		f->ms = ms;
		f->m = m;
		f->path = xstrdup(rs->path.buf);
		f->fd = fd;
		f->pending = n;
		pthread_mutex_lock(&rs->lock);
		ms->refs++;
		pthread_mutex_unlock(&rs->lock);
		for (i = 0; i < n; i++)
			enqueue(rs, f, chunk_id(t, te, i), off[i]);
	}
	free(off);
	git_tree_free(t);
	return err;
}

static int restore_file(struct restorer *rs, int dfd, const struct bdir *d, const struct meta *m,
			const git_tree_entry *te)
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
		return no_entry(rs, d);
	if (clear_name(rs, dfd, m->name) < 0)
		return -1;
	fd = openat(dfd, m->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return error("cannot create '%s': %s", shown(rs->path.buf), strerror(errno));
	/* Hard-linked files are written here, so that a damaged one is not linked again. */
	if (rs->nworkers && m->size && m->nlink <= 1) {
		err = queue_content(rs, d->ms, fd, te, m);
		if (!err)
			return 0;
	} else {
		err = write_content(rs, fd, te, m);
	}
	if (err) {
		close(fd);
		unlinkat(dfd, m->name, 0);
		if (err == ERR_CORRUPT || err == ERR_NOTFOUND) {
			error("cannot restore '%s': its data in the repository is %s; run 'backup check --read-data'",
			      shown(rs->path.buf), err == ERR_NOTFOUND ? "missing" : "damaged");
			pthread_mutex_lock(&rs->lock);
			rs->stats->errors++;
			pthread_mutex_unlock(&rs->lock);
			return 0;
		}
		return error("cannot write '%s': %s", shown(rs->path.buf), strerror(errno));
	}
	apply_meta(rs->path.buf, fd, dfd, m->name, m);
	close(fd);
	pthread_mutex_lock(&rs->lock);
	rs->stats->files++;
	rs->stats->bytes += m->size;
	pthread_mutex_unlock(&rs->lock);
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
		return error("the backup holds a hostile name '%s' in '%s'; not restored", m->name, shown(rs->path.buf));
	if (type == S_IFDIR) {
		struct stat st;
		int sub;

		if (!te && tree_names_bad(d->names))
			return no_entry(rs, d);
		if (!te || git_tree_entry_type(te) != GIT_OBJECT_TREE)
			return error("cannot restore folder '%s': the backup has no tree for it; run 'backup check'", shown(rs->path.buf));
		if (fstatat(dfd, m->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
		    clear_name(rs, dfd, m->name) < 0)
			return -1;
		if (mkdirat(dfd, m->name, 0700) < 0 && errno != EEXIST)
			return error("cannot create folder '%s': %s", shown(rs->path.buf), strerror(errno));
		sub = openat(dfd, m->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return error("cannot open folder '%s': %s", shown(rs->path.buf), strerror(errno));
		int ret = restore_dir(rs, sub, git_tree_entry_id(te)->id);
		close(sub);
		return ret;
	}
	if (type == S_IFREG)
		return restore_file(rs, dfd, d, m, te);
	if (clear_name(rs, dfd, m->name) < 0)
		return -1;
	if (type == S_IFLNK) {
		if (symlinkat(m->link ? m->link : "", dfd, m->name) < 0)
			return error("cannot create symlink '%s': %s", shown(rs->path.buf), strerror(errno));
	} else if (type == S_IFCHR || type == S_IFBLK || type == S_IFIFO || type == S_IFSOCK) {
		if (mknodat(dfd, m->name, type | 0600, m->rdev) < 0)
			return error("cannot create '%s': %s", shown(rs->path.buf), strerror(errno));
	} else {
		return error("cannot restore '%s': unknown file type %o", shown(rs->path.buf), type);
	}
	apply_meta(rs->path.buf, -1, dfd, m->name, m);
	rs->stats->others++;
	return 0;
}

/*
 * Restores backup folder oid into the open folder dfd, its own metadata
 * last: every name in it exists by then (the workers only write into files
 * already created, which does not touch the folder's times).
 */
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
		if (!ret && __atomic_load_n(&rs->failed, __ATOMIC_RELAXED))
			ret = -1;
	}
	if (!ret) {
		apply_meta(rs->path.buf, dfd, -1, NULL, &d.m[0]);
		rs->stats->dirs++;
	}
	bdir_free(rs, &d);
	return ret;
}

static int restorer_init(struct restorer *rs, struct repo *r, struct restore_stats *stats)
{
	memset(rs, 0, sizeof(*rs));
	rs->repo = r;
	rs->stats = stats;
	rs->rootfd = -1;
	strbuf_init(&rs->path, 256);
	strbuf_init(&rs->br.raw, 0);
	strbuf_init(&rs->br.frame, 0);
	start_workers(rs);
	return packset_open(&rs->ps, r);
}

/* Finishes the workers' files; returns ret, or -1 when a write of theirs failed. */
static int restorer_free(struct restorer *rs, int ret)
{
	size_t i;

	drain(rs);
	if (rs->failed)
		ret = -1;
	stop_workers(rs);
	for (i = 0; i < rs->nlinks; i++)
		free(rs->links[i].path);
	free(rs->links);
	strbuf_release(&rs->path);
	blob_reader_release(&rs->br);
	packset_free(rs->ps);
	if (rs->rootfd >= 0)
		close(rs->rootfd);
	return ret;
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
	struct restorer rs;
	int ret = restorer_init(&rs, r, stats);

	if (!ret)
		rs.rootfd = open_target(target);
	if (rs.rootfd < 0)
		return restorer_free(&rs, -1);
	ret = restore_dir(&rs, rs.rootfd, tree);
	drain(&rs);
	if (!ret && !rs.failed && syncfs(rs.rootfd) < 0)
		ret = error("cannot sync '%s': %s", target, strerror(errno));
	return restorer_free(&rs, ret);
}

int restore_path(struct repo *r, const unsigned char disk_tree[SHA1_LEN], const char *path,
		 const char *target_root, struct restore_stats *stats)
{
	struct restorer rs;
	struct bdir d = { 0 };
	unsigned char cur[SHA1_LEN];
	char *copy = xstrdup(path), *save = NULL, *comp, *next;
	int dfd = -1, ret = -1;

	memcpy(cur, disk_tree, SHA1_LEN);
	if (restorer_init(&rs, r, stats) < 0)
		goto out;
	if (mkdir_p(target_root, 0755) < 0) {
		error("cannot create '%s': %s", target_root, strerror(errno));
		goto out;
	}
	rs.rootfd = open_target(target_root);
	if (rs.rootfd < 0)
		goto out;
	dfd = dup(rs.rootfd);
	if (dfd < 0) {
		error("cannot open '%s': %s", target_root, strerror(errno));
		goto out;
	}
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
		if (S_ISDIR(m->mode) && !te && tree_names_bad(d.names)) {
			no_entry(&rs, &d);
			goto out;
		}
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
		bdir_free(&rs, &d);
	}
out:
	drain(&rs);
	if (ret == 0 && !rs.failed && syncfs(rs.rootfd) < 0)
		ret = error("cannot sync '%s': %s", target_root, strerror(errno));
	bdir_free(&rs, &d);
	if (dfd >= 0)
		close(dfd);
	free(copy);
	return restorer_free(&rs, ret);
}
