#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <git2.h>

#include "chunker.h"
#include "fsutil.h"
#include "meta.h"
#include "packread.h"
#include "tree.h"
#include "usage.h"
#include "walk.h"

/* Chunk bytes queued for the workers at most: bounds memory. */
#define QUEUE_BYTES ((size_t)8 << 20)
/* The read buffer: the chunker sees up to CHUNK_MAX bytes ahead, and reads
 * come in pieces of about a MiB beyond that. */
#define READ_BUF (CHUNK_MAX + ((size_t)1 << 20))

enum kind { K_NONE, K_SKIP, K_CHUNKS, K_DIR, K_REUSE };

struct pdir;

struct entry {
	struct meta m;
	enum kind kind;
	unsigned char (*chunks)[SHA1_LEN];	/* K_CHUNKS: filled by workers */
	size_t nchunks;
	struct pdir *sub;			/* K_DIR */
	unsigned mode;				/* K_REUSE: MODE_BLOB or MODE_TREE */
	unsigned char oid[SHA1_LEN];		/* K_REUSE */
	struct scan *scan;			/* a folder handed to the scanner */
	/*
	 * Encrypted repository: the entry's sealed name in the previous
	 * backup, which opened, and the type and id it is bound to there.
	 * Sealing is deterministic, so when the folder's .meta and the
	 * entry's type and id are the same again, this is the name
	 * name_seal() would compute: build_tree() takes it as it is.
	 */
	char *psealed;
	unsigned pmode;
	unsigned char poid[SHA1_LEN];
};

/*
 * The scanner thread reads folders ahead of the walk: it opens a folder,
 * lists it and stats every entry, the system calls that are most of an
 * unchanged run, while the walking thread compares the folder before with
 * the previous backup. The walking thread hands it the subfolders of each
 * folder it has listed, first in line, in the order the walk will reach
 * them; a folder the scanner has not started yet the walking thread reads
 * itself. At most SCAN_AHEAD folders wait read and open, twice that when
 * the walk had to read a folder itself (the scanner then follows it).
 *
 * Started by walk_start(), the scanner reads the source before the walk
 * can begin (an encrypted repository's key is being opened): then up to
 * PRESCAN_AHEAD folders, and at most a quarter of the open files the
 * process may have (each folder read holds its descriptor, and one more
 * for its subfolders).
 */
#define SCAN_AHEAD 32
#define PRESCAN_AHEAD 4096

enum scan_state { S_QUEUED, S_RUNNING, S_DONE };

struct parent_fd {
	int fd;
	unsigned refs;		/* under the scanner lock */
};

struct scan {
	struct parent_fd *parent;
	const char *name;	/* the entry's, which outlives the scan */
	enum scan_state state;
	int urgent;		/* queued by the walking thread, which needs it next */
	int fd, err;		/* the folder opened, or errno */
	char *path;		/* for the exclusions */
	char **names;
	size_t n;
	struct stat *st;
	int *serr;		/* per entry: 0, or fstatat's errno */
	struct scan **child;	/* per entry: its scan, for the folders to enter */
	struct scan *prev, *next;
};

/* A directory whose tree waits for its chunks to be stored. */
struct pdir {
	struct entry *e;	/* e[0] is the directory itself, "." */
	size_t n;
	int pending;		/* chunks not yet stored; under the pool lock */
	int dequeued;		/* taken off the queue (built, or failed to) */
	int has_pmeta;		/* pmeta is the previous backup's .meta of it */
	unsigned char pmeta[SHA1_LEN];
	struct pdir *next;	/* the queue of directories, in post-order */
	unsigned char tree[SHA1_LEN];
};

struct job {
	void *data;
	size_t len;
	unsigned char *result;
	struct pdir *owner;
	struct job *next;
};

struct walker {
	const struct walk_opts *o;
	struct walk_stats *stats;
	dev_t dev;
	struct strbuf path;		/* the full path of what is being read */
	unsigned char *buf;		/* read buffer of READ_BUF bytes */

	pthread_mutex_t lock;
	pthread_cond_t work, space, done;
	struct job *head, *tail;
	size_t queued;
	int stop, failed;
	pthread_t *threads;
	int nthreads;

	struct pdir *dhead, *dtail;	/* directories waiting for their tree */
	struct timespec start, shown;	/* progress */

	struct packset *ps;		/* the previous backup's .meta blobs */
	struct blob_reader br;

	pthread_t scanner;
	pthread_mutex_t slock;
	pthread_cond_t scond;
	struct scan *shead;		/* waiting for the scanner, in order */
	size_t sready;			/* read and not yet taken */
	size_t sahead;			/* the bound on sready */
	int sstop;

	int fd;				/* the source, open */
	struct stat st;			/* and its lstat */
	struct scan *root_scan;		/* walk_start(): the source's own listing */
	struct walk_opts opts;		/* walk_start(): its options, kept */
};

/* ---- owner names ---------------------------------------------------- */

struct name_cache {
	uint32_t id;
	char *name;
};

static const char *cached_name(struct name_cache **cache, size_t *nr, uint32_t id, int group)
{
	size_t i;
	char buf[16384];
	const char *name = "";

	for (i = 0; i < *nr; i++)
		if ((*cache)[i].id == id)
			return (*cache)[i].name;
	if (group) {
		struct group g, *res = NULL;
		if (!getgrgid_r(id, &g, buf, sizeof(buf), &res) && res)
			name = res->gr_name;
	} else {
		struct passwd p, *res = NULL;
		if (!getpwuid_r(id, &p, buf, sizeof(buf), &res) && res)
			name = res->pw_name;
	}
	*cache = xrealloc(*cache, (*nr + 1) * sizeof(**cache));
	(*cache)[*nr].id = id;
	(*cache)[*nr].name = xstrdup(name);
	return (*cache)[(*nr)++].name;
}

static struct name_cache *users, *groups;
static size_t nusers, ngroups;

const char *uid_name(uint32_t uid)
{
	return cached_name(&users, &nusers, uid, 0);
}

const char *gid_name(uint32_t gid)
{
	return cached_name(&groups, &ngroups, gid, 1);
}

/* ---- the worker pool ------------------------------------------------- */

static void *worker(void *arg)
{
	struct walker *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct job *j;

		while (!w->head && !w->stop)
			pthread_cond_wait(&w->work, &w->lock);
		if (!w->head)
			break;
		j = w->head;
		w->head = j->next;
		if (!w->head)
			w->tail = NULL;
		pthread_mutex_unlock(&w->lock);

		int err = w->failed ? -1 : store_put_blob(w->o->store, j->data, j->len, j->result);

		pthread_mutex_lock(&w->lock);
		if (err < 0)
			w->failed = 1;
		w->queued -= j->len;
		j->owner->pending--;
		pthread_cond_broadcast(&w->done);
		pthread_cond_signal(&w->space);
		free(j->data);
		free(j);
	}
	pthread_mutex_unlock(&w->lock);
	store_thread_done();
	return NULL;
}

/* Hands a chunk (data is taken over) to the workers; blocks while the queue is full. */
static void submit(struct walker *w, void *data, size_t len, unsigned char *result, struct pdir *owner)
{
	struct job *j = xmalloc(sizeof(*j));

	j->data = data;
	j->len = len;
	j->result = result;
	j->owner = owner;
	j->next = NULL;
	pthread_mutex_lock(&w->lock);
	while (w->queued && w->queued + len > QUEUE_BYTES)
		pthread_cond_wait(&w->space, &w->lock);
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	w->queued += len;
	owner->pending++;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
}

/* ---- trees ------------------------------------------------------------ */

/* Frees the entries of d; its tree id stays. */
static void release_entries(struct pdir *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		meta_clear(&d->e[i].m);
		free(d->e[i].chunks);
		free(d->e[i].psealed);
	}
	free(d->e);
	d->e = NULL;
	d->n = 0;
}

/* Frees d and the subdirectories it still holds that left the queue (the
 * others are freed from the queue). */
static void free_pdir(struct pdir *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->e[i].kind == K_DIR && d->e[i].sub && d->e[i].sub->dequeued)
			free_pdir(d->e[i].sub);
	release_entries(d);
	free(d);
}

static int build_tree(struct walker *w, struct pdir *d)
{
	struct strbuf meta = STRBUF_INIT, tree = STRBUF_INIT, name = STRBUF_INIT;
	struct tree_entry *te = xcalloc(d->n + 1, sizeof(*te));
	const struct crypto_keys *keys = w->o->repo->keys;
	unsigned char meta_oid[SHA1_LEN];
	size_t i, nt = 0;
	int ret = -1;

	meta_header(&meta);
	for (i = 0; i < d->n; i++)
		if (d->e[i].kind != K_SKIP)
			meta_encode(&meta, &d->e[i].m);
	/* The .meta blob first: a sealed name is bound to its id. */
	if (store_put_meta_blob(w->o->store, meta.buf, meta.len, meta_oid) < 0)
		goto out;
	for (i = 1; i < d->n; i++) {
		struct entry *e = &d->e[i];
		struct tree_entry *t;

		if (e->kind == K_SKIP || e->kind == K_NONE)
			continue;
		t = &te[nt++];
		if (e->kind == K_REUSE) {
			t->mode = e->mode;
			memcpy(t->oid, e->oid, SHA1_LEN);
		} else if (e->kind == K_DIR) {
			t->mode = MODE_TREE;
			memcpy(t->oid, e->sub->tree, SHA1_LEN);
			free_pdir(e->sub);
			e->sub = NULL;
		} else if (e->nchunks == 1) {
			t->mode = MODE_BLOB;
			memcpy(t->oid, e->chunks[0], SHA1_LEN);
		} else {
			/* A chunked file: a tree of its chunks, in order. */
			struct tree_entry *ce = xcalloc(e->nchunks, sizeof(*ce));
			struct strbuf ct = STRBUF_INIT;
			size_t c;

			for (c = 0; c < e->nchunks; c++) {
				ce[c].name = xasprintf("%08zx", c);
				ce[c].mode = MODE_BLOB;
				memcpy(ce[c].oid, e->chunks[c], SHA1_LEN);
			}
			tree_encode(&ct, ce, e->nchunks);
			t->mode = MODE_TREE;
			ret = store_put_object(w->o->store, PACK_TREE, ct.buf, ct.len, t->oid);
			for (c = 0; c < e->nchunks; c++)
				free(ce[c].name);
			free(ce);
			strbuf_release(&ct);
			if (ret < 0)
				goto out;
			ret = -1;
		}
		if (keys && e->psealed && d->has_pmeta && !memcmp(meta_oid, d->pmeta, SHA1_LEN) &&
		    t->mode == e->pmode && !memcmp(t->oid, e->poid, SHA1_LEN)) {
			/* Bound to the same as before: sealed the same. */
			t->name = e->psealed;
			e->psealed = NULL;
			continue;
		}
		strbuf_reset(&name);
		if (!keys)
			name_escape(&name, e->m.name);
		else if (name_seal(&name, keys, meta_oid, t->mode, t->oid, e->m.name) < 0)
			goto out;
		t->name = xstrdup(name.buf);
	}
	te[nt].name = xstrdup(META_NAME);
	te[nt].mode = MODE_BLOB;
	memcpy(te[nt].oid, meta_oid, SHA1_LEN);
	nt++;
	tree_encode(&tree, te, nt);
	ret = store_put_object(w->o->store, PACK_TREE, tree.buf, tree.len, d->tree);
out:
	for (i = 0; i < nt; i++)
		free(te[i].name);
	free(te);
	strbuf_release(&meta);
	strbuf_release(&tree);
	strbuf_release(&name);
	return ret;
}

/* Builds the trees of the queued directories whose chunks are all stored;
 * with wait, waits for all of them. */
static int drain(struct walker *w, int wait)
{
	pthread_mutex_lock(&w->lock);
	while (w->dhead && !w->failed) {
		struct pdir *d = w->dhead;

		if (d->pending) {
			if (!wait)
				break;
			pthread_cond_wait(&w->done, &w->lock);
			continue;
		}
		w->dhead = d->next;
		if (!w->dhead)
			w->dtail = NULL;
		d->dequeued = 1;
		pthread_mutex_unlock(&w->lock);
		if (build_tree(w, d) < 0) {
			pthread_mutex_lock(&w->lock);
			w->failed = 1;
			break;
		}
		/* Only the tree id is needed from now on: memory follows the
		 * directories being read, not the directories read so far. */
		release_entries(d);
		pthread_mutex_lock(&w->lock);
	}
	int failed = w->failed;
	pthread_mutex_unlock(&w->lock);
	return failed ? -1 : 0;
}

static void enqueue_dir(struct walker *w, struct pdir *d)
{
	pthread_mutex_lock(&w->lock);
	d->next = NULL;
	if (w->dtail)
		w->dtail->next = d;
	else
		w->dhead = d;
	w->dtail = d;
	pthread_mutex_unlock(&w->lock);
}

/* ---- progress ---------------------------------------------------------- */

static double since(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) + (b->tv_nsec - a->tv_nsec) / 1e9;
}

/* At most four times a second: files, bytes, rate and, when the previous
 * backup's size is known, the time left. */
static void progress(struct walker *w, int last)
{
	const struct walk_stats *s = w->stats;
	struct timespec now;
	double t, rate;
	char eta[32] = "";

	if (!w->o->progress)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!last && since(&w->shown, &now) < 0.25)
		return;
	w->shown = now;
	t = since(&w->start, &now);
	rate = t > 0 ? s->bytes / t : 0;
	if (w->o->expected_bytes > s->bytes && rate > 0)
		snprintf(eta, sizeof(eta), ", ETA %.0fs", (w->o->expected_bytes - s->bytes) / rate);
	fprintf(stderr, "\r%llu files, %.1f MiB (%.1f MiB read), %.1f MiB/s%s\033[K%s",
		(unsigned long long)s->files, s->bytes / 1048576.0, s->bytes_read / 1048576.0,
		rate / 1048576.0, eta, last ? "\n" : "");
}

/* ---- the previous backup ----------------------------------------------- */

struct prev {
	git_tree *tree;
	struct tree_names *names;	/* encrypted repository: its opened names */
	struct meta *m;
	size_t n;
};

static void prev_load(struct walker *w, struct prev *p, const unsigned char *oid)
{
	const git_tree_entry *te;
	struct strbuf sb = STRBUF_INIT;
	git_oid id;

	memset(p, 0, sizeof(*p));
	if (!oid)
		return;
	memcpy(id.id, oid, SHA1_LEN);
	if (git_tree_lookup(&p->tree, w->o->repo->git, &id) < 0)
		return;
	te = git_tree_entry_byname(p->tree, META_NAME);
	if (!te || packset_read_blob(w->ps, &w->br, git_tree_entry_id(te)->id, &sb) < 0 ||
	    meta_decode(sb.buf, sb.len, &p->m, &p->n) < 0 ||
	    tree_names_load(&p->names, w->o->repo->keys, p->tree) < 0) {
		meta_free_array(p->m, p->n);
		p->m = NULL;
		p->n = 0;
		git_tree_free(p->tree);
		p->tree = NULL;
	}
	strbuf_release(&sb);
}

static void prev_free(struct prev *p)
{
	meta_free_array(p->m, p->n);
	tree_names_free(p->names);
	git_tree_free(p->tree);
}

static const struct meta *prev_find(const struct prev *p, const char *name)
{
	size_t lo = 1, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(p->m[mid].name, name);

		if (!c)
			return &p->m[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const git_tree_entry *prev_entry(const struct prev *p, const char *name)
{
	return p->tree ? tree_names_find(p->names, p->tree, name) : NULL;
}

/* ---- reading ------------------------------------------------------------- */

static void unreadable(struct walker *w, const char *what)
{
	struct walk_stats *s = w->stats;

	error("cannot read '%s': %s", w->path.buf, what);
	s->unreadable = xrealloc(s->unreadable, (s->nunreadable + 1) * sizeof(char *));
	s->unreadable[s->nunreadable++] = xstrdup(w->path.buf);
}

/* Reads the extended attributes (ACLs included) of fd, or of the path when fd < 0. */
static int read_xattrs(struct walker *w, int fd, struct meta *m)
{
	char *list = NULL, *p;
	ssize_t n = fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(w->path.buf, NULL, 0);

	if (n <= 0)
		return n < 0 && errno != ENOTSUP ? -1 : 0;
	list = xmalloc(n);
	n = fd >= 0 ? flistxattr(fd, list, n) : llistxattr(w->path.buf, list, n);
	if (n < 0) {
		free(list);
		return -1;
	}
	for (p = list; p < list + n; p += strlen(p) + 1) {
		ssize_t vlen = fd >= 0 ? fgetxattr(fd, p, NULL, 0) : lgetxattr(w->path.buf, p, NULL, 0);
		struct xattr *x;

		if (vlen < 0)
			continue;
		m->xattrs = xrealloc(m->xattrs, (m->nxattrs + 1) * sizeof(*m->xattrs));
		x = &m->xattrs[m->nxattrs++];
		x->name = xstrdup(p);
		x->value = xmalloc(vlen + 1);
		vlen = fd >= 0 ? fgetxattr(fd, p, x->value, vlen) : lgetxattr(w->path.buf, p, x->value, vlen);
		x->len = vlen < 0 ? 0 : vlen;
	}
	free(list);
	return 0;
}

/* The data extents of a sparse file, from SEEK_DATA/SEEK_HOLE. */
static void read_extents(int fd, struct meta *m)
{
	off_t pos = 0, end = m->size;

	while (pos < end) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;

		if (data < 0)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		m->extents = xrealloc(m->extents, 2 * (m->nextents + 1) * sizeof(*m->extents));
		m->extents[2 * m->nextents] = data;
		m->extents[2 * m->nextents + 1] = hole - data;
		m->nextents++;
		pos = hole;
	}
	if (!m->nextents) {
		/* All hole: one empty extent still marks the file sparse. */
		m->extents = xcalloc(2, sizeof(*m->extents));
		m->nextents = 1;
	}
	lseek(fd, 0, SEEK_SET);
}

/* Fills buf with len bytes of the file at off: zeros inside holes. */
static ssize_t read_at(int fd, const struct meta *m, unsigned char *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		uint64_t pos = off + done, next_data = m->size;
		size_t i, want = len - done;
		int in_data = !m->nextents;
		ssize_t n;

		for (i = 0; i < m->nextents && !in_data; i++) {
			uint64_t s = m->extents[2 * i], e = s + m->extents[2 * i + 1];
			if (pos >= s && pos < e) {
				in_data = 1;
				if (e - pos < want)
					want = e - pos;
			} else if (s > pos && s < next_data) {
				next_data = s;
			}
		}
		if (!in_data) {
			if (next_data - pos < want)
				want = next_data - pos;
			memset(buf + done, 0, want);
			done += want;
			continue;
		}
		n = pread(fd, buf + done, want, pos);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

static void read_file(struct walker *w, int dfd, struct entry *e, struct pdir *owner)
{
	int fd = openat(dfd, e->m.name, O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);
	uint64_t off = 0, size, max_chunks;
	size_t have = 0;
	struct stat st;

	if (fd < 0 && errno == EPERM)
		fd = openat(dfd, e->m.name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		unreadable(w, fd < 0 ? strerror(errno) : "it changed while being read");
		e->kind = K_SKIP;
		if (fd >= 0)
			close(fd);
		return;
	}
	meta_from_stat(&e->m, &st);
	if (read_xattrs(w, fd, &e->m) < 0)
		warning("cannot read the extended attributes of '%s': %s", w->path.buf, strerror(errno));
	if ((uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size)
		read_extents(fd, &e->m);
	size = e->m.size;
	max_chunks = size / CHUNK_MIN + 2;
	e->chunks = xcalloc(max_chunks, SHA1_LEN);
	e->kind = K_CHUNKS;

	if (size <= CHUNK_MIN) {
		unsigned char *data = xmalloc(size + 1);
		ssize_t n = read_at(fd, &e->m, data, size, 0);

		if (n < 0) {
			free(data);
			goto fail;
		}
		e->m.size = n;
		e->nchunks = 1;
		submit(w, data, n, e->chunks[0], owner);
		off = n;
		goto done;
	}
	for (;;) {
		size_t want = READ_BUF - have, cut;

		if (interrupted) {
			errno = EINTR;
			goto fail;
		}
		ssize_t n = 0;
		int eof;

		if (off + have < size) {
			if (want > size - off - have)
				want = size - off - have;
			n = read_at(fd, &e->m, w->buf + have, want, off + have);
			if (n < 0)
				goto fail;
			have += n;
		}
		eof = off + have >= size || n == 0;
		if (!have)
			break;
		if (!eof && have < CHUNK_MAX)
			continue;
		cut = chunker_cut(w->buf, have);
		if (e->nchunks == max_chunks)
			goto fail_changed;
		unsigned char *data = xmalloc(cut);
		memcpy(data, w->buf, cut);
		submit(w, data, cut, e->chunks[e->nchunks++], owner);
		memmove(w->buf, w->buf + cut, have - cut);
		have -= cut;
		off += cut;
		if (eof && !have)
			break;
	}
	if (!e->nchunks) {
		e->nchunks = 1;
		submit(w, xmalloc(1), 0, e->chunks[0], owner);
	}
	e->m.size = off;
done:
	w->stats->files_read++;
	w->stats->bytes_read += off;
	close(fd);
	return;
fail_changed:
	errno = EAGAIN;
fail:
	/* Chunks already handed out still land in chunks[]; the entry is dropped. */
	unreadable(w, strerror(errno));
	e->kind = K_SKIP;
	close(fd);
}

static int excluded_path(const struct walk_opts *o, const char *path)
{
	size_t i;

	for (i = 0; i < o->nexcludes; i++)
		if (!fnmatch(o->excludes[i], path, 0))
			return 1;
	return 0;
}

static int excluded(struct walker *w)
{
	return excluded_path(w->o, w->path.buf);
}


/* ---- the scanner ------------------------------------------------------ */

/* Opens a subfolder as the walk does: without updating its atime when allowed. */
static int open_dir_at(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);

	if (fd < 0 && errno == EPERM)
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

/* Lists the folder open at dfd and stats each entry; -1 with errno when it cannot be listed. */
static int list_and_stat(int dfd, char ***names, size_t *n, struct stat **st, int **serr)
{
	size_t i;

	if (read_dir_names(dfd, names, n) < 0)
		return -1;
	*st = xmalloc((*n + 1) * sizeof(**st));
	*serr = xcalloc(*n + 1, sizeof(**serr));
	for (i = 0; i < *n; i++)
		if (fstatat(dfd, (*names)[i], &(*st)[i], AT_SYMLINK_NOFOLLOW) < 0)
			(*serr)[i] = errno;
	return 0;
}

/* Under the scanner lock. */
static void parent_put(struct parent_fd *p)
{
	if (p && !--p->refs) {
		close(p->fd);
		free(p);
	}
}

static void scan_free(struct scan *sc)
{
	if (sc->fd >= 0)
		close(sc->fd);
	free_strv(sc->names, sc->n);
	free(sc->st);
	free(sc->serr);
	free(sc->child);
	free(sc->path);
	free(sc);
}

/* Under the scanner lock. */
static void scan_unlink(struct walker *w, struct scan *sc)
{
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		w->shead = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	sc->prev = sc->next = NULL;
}

static struct scan **scan_children(struct walker *w, int dfd, const char *path, char **names,
				   const struct stat *st, const int *serr, size_t n, int urgent);

static void *scanner(void *arg)
{
	struct walker *w = arg;

	pthread_mutex_lock(&w->slock);
	while (!w->sstop) {
		struct scan *sc = w->shead;

		/* Past the bound, only folders the walk reached on its own. */
		if (!sc || w->sready >= (sc->urgent ? 2 * w->sahead : w->sahead)) {
			pthread_cond_wait(&w->scond, &w->slock);
			continue;
		}
		scan_unlink(w, sc);
		sc->state = S_RUNNING;
		pthread_mutex_unlock(&w->slock);
		sc->fd = open_dir_at(sc->parent->fd, sc->name);
		if (sc->fd < 0 || list_and_stat(sc->fd, &sc->names, &sc->n, &sc->st, &sc->serr) < 0)
			sc->err = errno;
		else
			sc->child = scan_children(w, sc->fd, sc->path, sc->names, sc->st, sc->serr, sc->n, 0);
		pthread_mutex_lock(&w->slock);
		parent_put(sc->parent);
		sc->parent = NULL;
		sc->state = S_DONE;
		w->sready++;
		pthread_cond_broadcast(&w->scond);
	}
	pthread_mutex_unlock(&w->slock);
	return NULL;
}

/* Takes folder sc back from the scanner: read, or NULL when the walk must read it itself. */
static struct scan *scan_take(struct walker *w, struct scan *sc)
{
	pthread_mutex_lock(&w->slock);
	if (sc->state == S_QUEUED) {
		scan_unlink(w, sc);
		parent_put(sc->parent);
		pthread_mutex_unlock(&w->slock);
		scan_free(sc);
		return NULL;
	}
	while (sc->state != S_DONE)
		pthread_cond_wait(&w->scond, &w->slock);
	w->sready--;
	pthread_cond_broadcast(&w->scond);
	pthread_mutex_unlock(&w->slock);
	return sc;
}

/* Takes back a folder the walk will not enter, and the folders the scanner queued below it. */
static void scan_drop(struct walker *w, struct scan *sc)
{
	size_t i;

	sc = scan_take(w, sc);
	if (!sc)
		return;
	for (i = 0; sc->child && i < sc->n; i++)
		if (sc->child[i])
			scan_drop(w, sc->child[i]);
	scan_free(sc);
}

/*
 * Makes the scans of the subfolders the walk will enter, of the folder at
 * path open at dfd with entries names (lstat st, or serr), and puts them
 * first in the scanner's line, in order. Returns them per entry (NULL for
 * the others), or NULL when there is none. Either thread.
 */
static struct scan **scan_children(struct walker *w, int dfd, const char *path, char **names,
				   const struct stat *st, const int *serr, size_t n, int urgent)
{
	struct scan *first = NULL, *last = NULL, **child = NULL;
	struct parent_fd *p = NULL;
	struct strbuf sub = STRBUF_INIT;
	size_t i, plen;

	strbuf_addstr(&sub, path);
	if (sub.len && sub.buf[sub.len - 1] != '/')
		strbuf_addch(&sub, '/');
	plen = sub.len;
	for (i = 0; i < n; i++) {
		struct scan *sc;

		if (serr[i] || !S_ISDIR(st[i].st_mode) || st[i].st_dev != w->dev)
			continue;
		strbuf_setlen(&sub, plen);
		strbuf_addstr(&sub, names[i]);
		if (excluded_path(w->o, sub.buf))
			continue;
		if (!p) {
			p = xcalloc(1, sizeof(*p));
			p->fd = dup(dfd);
			if (p->fd < 0) {
				free(p);
				break;
			}
			child = xcalloc(n, sizeof(*child));
		}
		sc = xcalloc(1, sizeof(*sc));
		sc->parent = p;
		p->refs++;
		sc->name = names[i];
		sc->path = xstrdup(sub.buf);
		sc->fd = -1;
		sc->state = S_QUEUED;
		sc->urgent = urgent;
		sc->prev = last;
		if (last)
			last->next = sc;
		else
			first = sc;
		last = sc;
		child[i] = sc;
	}
	strbuf_release(&sub);
	if (!first)
		return child;
	pthread_mutex_lock(&w->slock);
	last->next = w->shead;
	if (w->shead)
		w->shead->prev = last;
	w->shead = first;
	pthread_cond_broadcast(&w->scond);
	pthread_mutex_unlock(&w->slock);
	return child;
}

static struct pdir *walk_dir(struct walker *w, int dfd, const struct stat *self,
			     const unsigned char *prev_oid, struct scan *sc);

/* Backs up entry e of folder d, whose lstat is st, or whose lstat failed with serr. */
/*
 * Whether st is the inode the previous backup recorded as pm, untouched
 * since: same inode number, mtime and ctime (any change of content,
 * target or attributes moves the ctime).
 */
static int same_inode(const struct meta *pm, const struct stat *st)
{
	return pm->ino == (uint64_t)st->st_ino &&
	       pm->mtime.tv_sec == st->st_mtim.tv_sec && pm->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       pm->ctime.tv_sec == st->st_ctim.tv_sec && pm->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static void walk_entry(struct walker *w, int dfd, struct pdir *d, struct entry *e,
		       const struct prev *prev, const struct stat *pst, int serr)
{
	const struct meta *pm = prev_find(prev, e->m.name);
	const git_tree_entry *pte = pm ? prev_entry(prev, e->m.name) : NULL;
	struct stat st;

	if (serr) {
		errno = serr;
		if (errno == ENOENT) {	/* gone since readdir */
			e->kind = K_SKIP;
			return;
		}
		unreadable(w, strerror(errno));
		e->kind = K_SKIP;
		return;
	}
	st = *pst;
	if (excluded(w)) {
		e->kind = K_SKIP;
		return;
	}
	if (pte && prev->names) {
		e->psealed = xstrdup(git_tree_entry_name(pte));
		e->pmode = git_tree_entry_type(pte) == GIT_OBJECT_TREE ? MODE_TREE : MODE_BLOB;
		memcpy(e->poid, git_tree_entry_id(pte)->id, SHA1_LEN);
	}
	meta_from_stat(&e->m, &st);
	e->m.uname = xstrdup(uid_name(st.st_uid));
	e->m.gname = xstrdup(gid_name(st.st_gid));

	if (S_ISREG(st.st_mode)) {
		w->stats->files++;
		if (pm && pte && S_ISREG(pm->mode) && pm->size == (uint64_t)st.st_size && same_inode(pm, &st)) {
			/* Unchanged: reuse content and attributes without opening it. */
			struct meta copy;

			meta_copy(&copy, pm);
			e->m.xattrs = copy.xattrs;
			e->m.nxattrs = copy.nxattrs;
			e->m.extents = copy.extents;
			e->m.nextents = copy.nextents;
			copy.xattrs = NULL;
			copy.nxattrs = 0;
			copy.extents = NULL;
			copy.nextents = 0;
			meta_clear(&copy);
			e->kind = K_REUSE;
			e->mode = git_tree_entry_filemode(pte) == GIT_FILEMODE_TREE ? MODE_TREE : MODE_BLOB;
			memcpy(e->oid, git_tree_entry_id(pte)->id, SHA1_LEN);
			w->stats->bytes += st.st_size;
			return;
		}
		read_file(w, dfd, e, d);
		if (e->kind != K_SKIP)
			w->stats->bytes += e->m.size;
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		struct scan *sc = e->scan ? scan_take(w, e->scan) : NULL;
		int sub = -1;

		e->scan = NULL;
		w->stats->dirs++;
		if (sc) {
			sub = sc->fd;
			sc->fd = -1;
			errno = sc->err;
		} else if (st.st_dev == w->dev) {
			sub = open_dir_at(dfd, e->m.name);
		}
		if (sub < 0 && st.st_dev == w->dev) {
			unreadable(w, strerror(errno));
			e->kind = K_SKIP;
			if (sc)
				scan_free(sc);
			return;
		}
		const unsigned char *poid = pte && git_tree_entry_filemode(pte) == GIT_FILEMODE_TREE &&
			pm && S_ISDIR(pm->mode) ? git_tree_entry_id(pte)->id : NULL;
		/* A mount point is kept as an empty directory: one file system per disk. */
		e->sub = walk_dir(w, sub, &st, st.st_dev == w->dev ? poid : NULL, sc);
		if (sub >= 0)
			close(sub);
		e->kind = e->sub ? K_DIR : K_SKIP;
		/* The directory's own record lives in its own .meta as ".". */
		return;
	}
	w->stats->others++;
	if (S_ISLNK(st.st_mode) && pm && S_ISLNK(pm->mode) && pm->link &&
	    strlen(pm->link) == (size_t)st.st_size && same_inode(pm, &st)) {
		/*
		 * Unchanged (a link's target cannot change without a new ctime):
		 * its target and attributes as before, without reading it, for
		 * reading a link updates its atime, which the next backup would
		 * store as a change of its folder.
		 */
		struct meta copy;

		meta_copy(&copy, pm);
		e->m.link = copy.link;
		e->m.xattrs = copy.xattrs;
		e->m.nxattrs = copy.nxattrs;
		copy.link = NULL;
		copy.xattrs = NULL;
		copy.nxattrs = 0;
		meta_clear(&copy);
		e->kind = K_NONE;
		return;
	}
	if (S_ISLNK(st.st_mode)) {
		/* The link may have changed since it was statted: a target that
		 * fills the buffer is read again with room for the longest. */
		size_t cap = st.st_size + 2;
		char *target = xmalloc(cap);
		ssize_t n = readlinkat(dfd, e->m.name, target, cap - 1);
		struct stat after;

		if (n >= (ssize_t)cap - 1 && cap < PATH_MAX + 2) {
			cap = PATH_MAX + 2;
			target = xrealloc(target, cap);
			n = readlinkat(dfd, e->m.name, target, cap - 1);
		}
		if (n < 0 || n >= (ssize_t)cap - 1) {
			free(target);
			unreadable(w, n < 0 ? strerror(errno) : "its target is too long");
			e->kind = K_SKIP;
			return;
		}
		target[n] = '\0';
		e->m.link = target;
		/* Reading it may have moved its atime (relatime): the atime
		 * stored is the one it has now, so the next backup, which does
		 * not read it again, finds it unchanged. */
		if (fstatat(dfd, e->m.name, &after, AT_SYMLINK_NOFOLLOW) == 0 && after.st_ino == st.st_ino &&
		    after.st_ctim.tv_sec == st.st_ctim.tv_sec && after.st_ctim.tv_nsec == st.st_ctim.tv_nsec)
			e->m.atime = after.st_atim;
	}
	if (read_xattrs(w, -1, &e->m) < 0 && errno != ENOENT)
		warning("cannot read the extended attributes of '%s': %s", w->path.buf, strerror(errno));
	e->kind = K_NONE;
}

/*
 * Reads the directory open at dfd (or, with dfd < 0, records only its own
 * metadata, for mount points) and queues its tree; returns it, or NULL.
 */
static struct pdir *walk_dir(struct walker *w, int dfd, const struct stat *self,
			     const unsigned char *prev_oid, struct scan *sc)
{
	struct pdir *d = xcalloc(1, sizeof(*d));
	struct prev prev;
	char **names = NULL;
	struct stat *st = NULL;
	int *serr = NULL, err = 0;
	struct scan **child = NULL;
	size_t n = 0, i, plen = w->path.len;

	if (sc) {
		/* Read by the scanner: its lists become ours. */
		err = sc->err;
		names = sc->names;
		n = sc->n;
		st = sc->st;
		serr = sc->serr;
		child = sc->child;
		sc->names = NULL;
		sc->n = 0;
		sc->st = NULL;
		sc->serr = NULL;
		sc->child = NULL;
		scan_free(sc);
	} else if (dfd >= 0 && list_and_stat(dfd, &names, &n, &st, &serr) < 0) {
		err = errno;
	} else if (n) {
		child = scan_children(w, dfd, w->path.buf, names, st, serr, n, 1);
	}
	prev_load(w, &prev, prev_oid);
	if (err) {
		unreadable(w, strerror(err));
		prev_free(&prev);
		free(names);
		free(st);
		free(serr);
		free(d);
		return NULL;
	}
	d->e = xcalloc(n + 1, sizeof(*d->e));
	d->n = n + 1;
	if (prev.names) {
		const git_tree_entry *pme = git_tree_entry_byname(prev.tree, META_NAME);

		d->has_pmeta = 1;
		memcpy(d->pmeta, git_tree_entry_id(pme)->id, SHA1_LEN);
	}
	d->e[0].m.name = xstrdup(".");
	meta_from_stat(&d->e[0].m, self);
	d->e[0].m.uname = xstrdup(uid_name(self->st_uid));
	d->e[0].m.gname = xstrdup(gid_name(self->st_gid));
	if (dfd >= 0 && read_xattrs(w, dfd, &d->e[0].m) < 0)
		warning("cannot read the extended attributes of '%s': %s", w->path.buf, strerror(errno));
	/* The entries own every name from now on, also those a failure skips. */
	for (i = 0; i < n; i++) {
		d->e[i + 1].m.name = names[i];
		d->e[i + 1].scan = child ? child[i] : NULL;
	}
	free(child);
	for (i = 0; i < n; i++) {
		struct entry *e = &d->e[i + 1];

		if (plen && w->path.buf[plen - 1] != '/')
			strbuf_addch(&w->path, '/');
		strbuf_addstr(&w->path, names[i]);
		walk_entry(w, dfd, d, e, &prev, &st[i], serr[i]);
		strbuf_setlen(&w->path, plen);
		progress(w, 0);
		if (w->failed)
			break;
		if (interrupted) {
			w->failed = 1;
			break;
		}
	}
	/* Folders the walk did not reach (it failed) go back from the scanner. */
	for (i = 1; i < d->n; i++)
		if (d->e[i].scan) {
			scan_drop(w, d->e[i].scan);
			d->e[i].scan = NULL;
		}
	free(names);
	free(st);
	free(serr);
	prev_free(&prev);
	enqueue_dir(w, d);
	drain(w, 0);
	return d;
}

/*
 * Opens the source of o and starts the scanner; quiet for walk_start(),
 * whose caller walks later and reports then. Returns 0, or -1 (after
 * reporting, unless quiet) with nothing left to free.
 */
static int walker_open(struct walker *w, const struct walk_opts *o, int quiet)
{
	int fd;

	w->o = o;
	w->fd = -1;
	strbuf_init(&w->path, 256);
	strbuf_addstr(&w->path, o->source);
	while (w->path.len > 1 && w->path.buf[w->path.len - 1] == '/')
		strbuf_setlen(&w->path, w->path.len - 1);
	fd = open(o->source, O_RDONLY | O_DIRECTORY | O_NOATIME | O_CLOEXEC);
	if (fd < 0 && errno == EPERM)
		fd = open(o->source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &w->st) < 0) {
		if (!quiet)
			error("cannot read the disk source '%s': %s; fix 'source' in the machine file",
			      o->source, strerror(errno));
		if (fd >= 0)
			close(fd);
		strbuf_release(&w->path);
		return -1;
	}
	w->fd = fd;
	w->dev = w->st.st_dev;
	w->sahead = SCAN_AHEAD;
	pthread_mutex_init(&w->slock, NULL);
	pthread_cond_init(&w->scond, NULL);
	if (pthread_create(&w->scanner, NULL, scanner, w))
		die("cannot start the scanner thread");
	return 0;
}

/* Walks the source open in w into tree: the workers, the walk, the drain. */
static int walker_run(struct walker *w, struct walk_stats *stats, unsigned char tree[SHA1_LEN])
{
	const struct walk_opts *o = w->o;
	struct pdir *root = NULL;
	struct scan *sc = NULL;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int i, ret = -1;

	w->stats = stats;
	if (o->prev_tree && packset_open(&w->ps, o->repo) < 0) {
		if (w->root_scan)
			scan_drop(w, w->root_scan);
		w->root_scan = NULL;
		return -1;
	}
	w->buf = xmalloc(READ_BUF);
	strbuf_init(&w->br.raw, 0);
	strbuf_init(&w->br.frame, 0);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->space, NULL);
	pthread_cond_init(&w->done, NULL);
	w->nthreads = o->threads > 0 ? o->threads : ncpu > 0 ? (int)ncpu : 1;
	w->threads = xcalloc(w->nthreads, sizeof(*w->threads));
	for (i = 0; i < w->nthreads; i++)
		if (pthread_create(&w->threads[i], NULL, worker, w))
			die("cannot start a worker thread");

	clock_gettime(CLOCK_MONOTONIC, &w->start);
	if (w->root_scan)
		sc = scan_take(w, w->root_scan);
	w->root_scan = NULL;
	root = walk_dir(w, w->fd, &w->st, o->prev_tree, sc);
	progress(w, 1);
	if (root && drain(w, 1) == 0) {
		memcpy(tree, root->tree, SHA1_LEN);
		ret = 0;
	}

	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_broadcast(&w->work);
	pthread_mutex_unlock(&w->lock);
	for (i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	/* On failure, directories may still be queued (the root among them:
	 * look before they are freed). */
	int root_out = root && root->dequeued;

	while (w->dhead) {
		struct pdir *d = w->dhead;
		w->dhead = d->next;
		free_pdir(d);
	}
	if (root_out)
		free_pdir(root);
	free(w->threads);
	free(w->buf);
	packset_free(w->ps);
	blob_reader_release(&w->br);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->space);
	pthread_cond_destroy(&w->done);
	return ret;
}

/* Stops the scanner, whose every folder was taken back, and closes the source. */
static void walker_close(struct walker *w)
{
	pthread_mutex_lock(&w->slock);
	w->sstop = 1;
	pthread_cond_broadcast(&w->scond);
	pthread_mutex_unlock(&w->slock);
	pthread_join(w->scanner, NULL);
	/* Every scan is taken back by the walk, also a failed one; none is left. */
	if (w->shead)
		die("internal error: folders left with the scanner");
	pthread_mutex_destroy(&w->slock);
	pthread_cond_destroy(&w->scond);
	close(w->fd);
	strbuf_release(&w->path);
}

int walk_disk(const struct walk_opts *o, struct walk_stats *stats, unsigned char tree[SHA1_LEN])
{
	struct walker w;
	int ret;

	memset(&w, 0, sizeof(w));
	if (walker_open(&w, o, 0) < 0)
		return -1;
	ret = walker_run(&w, stats, tree);
	walker_close(&w);
	return ret;
}

/* PRESCAN_AHEAD, within a quarter of the process's open files. */
static size_t prescan_ahead(void)
{
	struct rlimit rl;
	size_t n = PRESCAN_AHEAD;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 4 < n)
		n = rl.rlim_cur / 4;
	return n > SCAN_AHEAD ? n : SCAN_AHEAD;
}

struct walker *walk_start(const struct walk_opts *o)
{
	struct walker *w = xcalloc(1, sizeof(*w));
	struct parent_fd *p;
	struct scan *sc;

	w->opts = *o;
	if (walker_open(w, &w->opts, 1) < 0) {
		free(w);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->fd = dup(w->fd);
	if (p->fd < 0) {
		/* No prescan, then: the walk reads it all itself. */
		free(p);
		return w;
	}
	p->refs = 1;
	sc = xcalloc(1, sizeof(*sc));
	sc->parent = p;
	sc->name = ".";
	sc->path = xstrdup(w->path.buf);
	sc->fd = -1;
	sc->state = S_QUEUED;
	w->root_scan = sc;
	pthread_mutex_lock(&w->slock);
	w->sahead = prescan_ahead();
	w->shead = sc;
	pthread_cond_broadcast(&w->scond);
	pthread_mutex_unlock(&w->slock);
	return w;
}

int walk_finish(struct walker *w, const struct walk_opts *o, struct walk_stats *stats, unsigned char tree[SHA1_LEN])
{
	int ret;

	/* The scanner reads the source and the exclusions, kept as they
	 * were; what only the walk reads comes from o. */
	w->opts.repo = o->repo;
	w->opts.store = o->store;
	w->opts.prev_tree = o->prev_tree;
	w->opts.threads = o->threads;
	w->opts.progress = o->progress;
	w->opts.expected_bytes = o->expected_bytes;
	pthread_mutex_lock(&w->slock);
	w->sahead = SCAN_AHEAD;
	pthread_mutex_unlock(&w->slock);
	ret = walker_run(w, stats, tree);
	walker_close(w);
	free(w);
	return ret;
}

void walk_cancel(struct walker *w)
{
	if (!w)
		return;
	if (w->root_scan)
		scan_drop(w, w->root_scan);
	walker_close(w);
	free(w);
}

void walk_stats_release(struct walk_stats *s)
{
	free_strv(s->unreadable, s->nunreadable);
	memset(s, 0, sizeof(*s));
}
