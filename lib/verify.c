#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "fsutil.h"
#include "meta.h"
#include "packread.h"
#include "store.h"
#include "tree.h"
#include "usage.h"
#include "verify.h"

/* The restored file is read and compared in pieces of this size. */
#define PIECE ((size_t)1 << 20)

/* A regular file that has, or had, several names. */
struct link_rec {
	uint64_t bdev, bino;		/* the backup's (dev, ino); unique when it had one name */
	uint64_t rdev, rino, rnlink;	/* the restored file's */
	char *path;
};

struct verifier {
	struct repo *repo;
	struct packset *ps;		/* NULL: read through libgit2 */
	struct blob_reader br;
	struct verify_report *out;
	int readonly;			/* no folder: only read the backup */
	struct strbuf path;		/* of the entry examined, "" for the root */
	struct strbuf blob;		/* decoded blob */
	char *piece;			/* PIECE bytes of the restored file */
	struct link_rec *links;
	size_t nlinks, alloc_links;
	uint64_t unique;		/* keys for files of one name */
};

static int read_blob(struct verifier *v, const unsigned char *oid, struct strbuf *out)
{
	return v->ps ? packset_read_blob(v->ps, &v->br, oid, out) : store_read_blob(v->repo, oid, out);
}

static const char *shown(const struct verifier *v)
{
	return v->path.len ? v->path.buf : "/";
}

__attribute__((format(printf, 3, 4)))
static void report_at(struct verifier *v, const char *what, const char *fmt, ...)
{
	struct verify_mismatch m;
	char *detail;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&detail, fmt, ap) < 0)
		die("out of memory");
	va_end(ap);
	m.path = shown(v);
	m.what = what;
	m.detail = detail;
	v->out->mismatches++;
	if (!strcmp(what, "damaged"))
		v->out->damaged++;
	if (v->out->mismatch)
		v->out->mismatch(&m, v->out->data);
	free(detail);
}

static const char *type_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "folder";
	case S_IFLNK: return "symlink";
	case S_IFCHR: return "character device";
	case S_IFBLK: return "block device";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	}
	return "file of unknown type";
}

static const char *format_ns(char *buf, size_t len, const struct timespec *t)
{
	struct tm tm;
	time_t s = t->tv_sec;
	char day[40];

	if (!gmtime_r(&s, &tm) || !strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm))
		snprintf(day, sizeof(day), "%lld", (long long)t->tv_sec);
	snprintf(buf, len, "%s.%09ldZ", day, (long)t->tv_nsec);
	return buf;
}

static const char *hex(char buf[2 * SHA1_LEN + 1], const unsigned char *oid)
{
	hex_encode(buf, oid, SHA1_LEN);
	return buf;
}

/* ---- the backup's side ------------------------------------------------ */

/* Loads a folder of the backup: its tree and its records; reports damage. */
static int load_dir(struct verifier *v, const unsigned char oid[SHA1_LEN], git_tree **tree,
		    struct tree_names **tn, struct meta **m, size_t *n)
{
	struct strbuf sb = STRBUF_INIT;
	const git_tree_entry *te;
	char h[2 * SHA1_LEN + 1];
	git_oid id;
	int err;

	*tree = NULL;
	*tn = NULL;
	*m = NULL;
	*n = 0;
	memcpy(id.id, oid, SHA1_LEN);
	if (git_tree_lookup(tree, v->repo->git, &id) < 0) {
		report_at(v, "damaged", "the backup cannot read this folder: tree %s is missing or damaged",
			  hex(h, oid));
		return -1;
	}
	te = git_tree_entry_byname(*tree, META_NAME);
	err = te ? read_blob(v, git_tree_entry_id(te)->id, &sb) : ERR_NOTFOUND;
	if (!err)
		err = meta_decode(sb.buf, sb.len, m, n);
	strbuf_release(&sb);
	if (err) {
		report_at(v, "damaged", "the backup cannot read this folder: its metadata%s%s is %s",
			  te ? " blob " : "", te ? hex(h, git_tree_entry_id(te)->id) : "",
			  err == ERR_NOTFOUND ? "missing" : "damaged");
		git_tree_free(*tree);
		*tree = NULL;
		return -1;
	}
	if (tree_names_load(tn, v->repo->keys, *tree) < 0) {
		report_at(v, "damaged", "the backup cannot read this folder: tree %s has no metadata", hex(h, oid));
		meta_free_array(*m, *n);
		*m = NULL;
		*n = 0;
		git_tree_free(*tree);
		*tree = NULL;
		return -1;
	}
	return 0;
}

static const git_tree_entry *tree_entry(git_tree *t, const struct tree_names *tn, const char *name)
{
	return tree_names_find(tn, t, name);
}

/* Reads n bytes at most, retrying short reads; the count, or -1. */
static ssize_t read_full(int fd, char *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = read(fd, buf + done, n - done);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (!r)
			break;
		done += r;
	}
	return done;
}

/*
 * Compares the bytes of blob (at offset off of the file) with what fd gives
 * next; reports the first difference and returns -1 then.
 */
static int compare_piecewise(struct verifier *v, int fd, uint64_t off)
{
	size_t done = 0;

	while (done < v->blob.len) {
		size_t want = v->blob.len - done < PIECE ? v->blob.len - done : PIECE;
		ssize_t got = read_full(fd, v->piece, want);
		size_t i;

		if (got < 0) {
			report_at(v, "unreadable", "cannot read the folder's file: %s", strerror(errno));
			return -1;
		}
		for (i = 0; i < (size_t)got; i++)
			if (v->piece[i] != v->blob.buf[done + i]) {
				report_at(v, "content", "differs from byte %llu on",
					  (unsigned long long)(off + done + i));
				return -1;
			}
		if ((size_t)got < want) {
			report_at(v, "content", "the folder's file ends at byte %llu, the backup's goes on",
				  (unsigned long long)(off + done + got));
			return -1;
		}
		done += got;
	}
	return 0;
}

/*
 * Decodes every blob of a regular file (which checks them) and, with fd >= 0,
 * compares the restored file's bytes with them.
 */
static void check_content(struct verifier *v, int fd, const git_tree_entry *te, const struct meta *m)
{
	git_tree *chunks = NULL;
	char h[2 * SHA1_LEN + 1];
	uint64_t off = 0;
	size_t i, n = 1;
	int differs = fd < 0;

	if (!te) {
		report_at(v, "damaged", "the backup has no content for this file");
		return;
	}
	if (git_tree_entry_type(te) == GIT_OBJECT_TREE) {
		if (git_tree_lookup(&chunks, v->repo->git, git_tree_entry_id(te)) < 0) {
			report_at(v, "damaged", "the backup cannot read this file: its chunk list %s is missing or damaged",
				  hex(h, git_tree_entry_id(te)->id));
			return;
		}
		n = git_tree_entrycount(chunks);
	} else if (git_tree_entry_type(te) != GIT_OBJECT_BLOB) {
		report_at(v, "damaged", "the backup holds a %s for this file's content",
			  git_object_type2string(git_tree_entry_type(te)));
		return;
	}
	for (i = 0; i < n && !interrupted; i++) {
		const git_tree_entry *c = chunks ? git_tree_entry_byindex(chunks, i) : te;
		int err;

		if (git_tree_entry_type(c) != GIT_OBJECT_BLOB) {
			report_at(v, "damaged", "the backup cannot read this file: chunk %zu is not a blob", i);
			goto out;
		}
		strbuf_reset(&v->blob);
		err = read_blob(v, git_tree_entry_id(c)->id, &v->blob);
		if (err) {
			report_at(v, "damaged", "the backup cannot read this file: its data (blob %s) in the "
				  "repository is %s; run 'backup check --read-data'",
				  hex(h, git_tree_entry_id(c)->id), err == ERR_NOTFOUND ? "missing" : "damaged");
			goto out;
		}
		if (!differs && compare_piecewise(v, fd, off) < 0)
			differs = 1;
		off += v->blob.len;
	}
	if (interrupted) {
		goto out;
	} else if (off != m->size) {
		report_at(v, "damaged", "the backup's data holds %llu bytes, its record says %llu",
			  (unsigned long long)off, (unsigned long long)m->size);
	} else if (!differs) {
		char c;
		ssize_t got = read_full(fd, &c, 1);

		if (got < 0)
			report_at(v, "unreadable", "cannot read the folder's file: %s", strerror(errno));
		else if (got)
			report_at(v, "content", "the folder's file goes on after byte %llu, where the backup's ends",
				  (unsigned long long)off);
	}
out:
	git_tree_free(chunks);
}

/* ---- the folder's side ------------------------------------------------ */

struct xlist {
	struct xattr *x;
	size_t n;
};

static void xlist_release(struct xlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->x[i].name);
		free(l->x[i].value);
	}
	free(l->x);
}

/*
 * Reads the extended attributes of fd, or (fd < 0) of the entry at path
 * without following a symlink; -1 with errno on error.
 */
static int read_xattrs(int fd, const char *path, struct xlist *out)
{
	char *names = NULL, *p;
	ssize_t len;

	memset(out, 0, sizeof(*out));
	len = fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(path, NULL, 0);
	if (len <= 0)
		return len < 0 && errno != ENOTSUP ? -1 : 0;
	names = xmalloc(len + 1);
	len = fd >= 0 ? flistxattr(fd, names, len) : llistxattr(path, names, len);
	if (len < 0) {
		free(names);
		return -1;
	}
	for (p = names; p < names + len; p += strlen(p) + 1) {
		ssize_t vlen = fd >= 0 ? fgetxattr(fd, p, NULL, 0) : lgetxattr(path, p, NULL, 0);
		struct xattr *x;

		if (vlen < 0)
			continue;
		out->x = xrealloc(out->x, (out->n + 1) * sizeof(*out->x));
		x = &out->x[out->n++];
		x->name = xstrdup(p);
		x->value = xmalloc(vlen + 1);
		vlen = fd >= 0 ? fgetxattr(fd, p, x->value, vlen) : lgetxattr(path, p, x->value, vlen);
		x->len = vlen < 0 ? 0 : vlen;
	}
	free(names);
	return 0;
}

static void compare_xattrs(struct verifier *v, const struct meta *m, int fd, int dfd, const char *name)
{
	struct xlist have;
	char *path = NULL;
	size_t i, k;

	if (fd < 0)
		path = xasprintf("/proc/self/fd/%d/%s", dfd, name);
	if (read_xattrs(fd, path, &have) < 0) {
		if (m->nxattrs)
			report_at(v, "unreadable", "cannot read the folder's extended attributes: %s",
				  strerror(errno));
		free(path);
		return;
	}
	free(path);
	for (i = 0; i < m->nxattrs; i++) {
		const struct xattr *x = &m->xattrs[i];

		for (k = 0; k < have.n; k++)
			if (!strcmp(have.x[k].name, x->name))
				break;
		if (k == have.n)
			report_at(v, "xattr", "'%s' is missing", x->name);
		else if (have.x[k].len != x->len || memcmp(have.x[k].value, x->value, x->len))
			report_at(v, "xattr", "'%s' differs: the backup's has %zu bytes, the folder's %zu%s",
				  x->name, x->len, have.x[k].len,
				  have.x[k].len == x->len ? " of other values" : "");
	}
	for (k = 0; k < have.n; k++) {
		/* A security module labels what is created: not a difference. */
		if (!strcmp(have.x[k].name, "security.selinux"))
			continue;
		for (i = 0; i < m->nxattrs; i++)
			if (!strcmp(have.x[k].name, m->xattrs[i].name))
				break;
		if (i == m->nxattrs)
			report_at(v, "xattr", "'%s' is not in the backup", have.x[k].name);
	}
	xlist_release(&have);
}

/* The stat fields; fd >= 0 is the entry itself, else it is name in dfd. */
static void compare_meta(struct verifier *v, const struct meta *m, const struct stat *st, int fd,
			 int dfd, const char *name)
{
	char a[64], b[64];

	if (!S_ISLNK(m->mode) && (m->mode & 07777) != (st->st_mode & 07777))
		report_at(v, "mode", "the backup has %04o, the folder %04o", m->mode & 07777,
			  (unsigned)(st->st_mode & 07777));
	if (m->uid != st->st_uid)
		report_at(v, "uid", "the backup has %u, the folder %u", m->uid, (unsigned)st->st_uid);
	if (m->gid != st->st_gid)
		report_at(v, "gid", "the backup has %u, the folder %u", m->gid, (unsigned)st->st_gid);
	if (S_ISREG(m->mode) && m->size != (uint64_t)st->st_size)
		report_at(v, "size", "the backup has %llu bytes, the folder %llu", (unsigned long long)m->size,
			  (unsigned long long)st->st_size);
	if (m->mtime.tv_sec != st->st_mtim.tv_sec ||
	    (!v->out->whole_seconds && m->mtime.tv_nsec != st->st_mtim.tv_nsec))
		report_at(v, "mtime", "the backup has %s, the folder %s", format_ns(a, sizeof(a), &m->mtime),
			  format_ns(b, sizeof(b), &st->st_mtim));
	if ((S_ISCHR(m->mode) || S_ISBLK(m->mode)) && m->rdev != (uint64_t)st->st_rdev)
		report_at(v, "rdev", "the backup has %u,%u, the folder %u,%u", major(m->rdev), minor(m->rdev),
			  major(st->st_rdev), minor(st->st_rdev));
	compare_xattrs(v, m, fd, dfd, name);
}

/*
 * A file recorded sparse must have kept its holes: no more blocks than its
 * data extents, rounded out to whole blocks, plus a few for the file
 * system's own bookkeeping (extent trees, indirect blocks).
 */
static void check_sparse(struct verifier *v, const struct meta *m, const struct stat *st)
{
	uint64_t bs = st->st_blksize > 0 ? (uint64_t)st->st_blksize : 4096, data = 0, allowed = 0;
	uint64_t used = (uint64_t)st->st_blocks * 512;
	size_t i;

	if (!m->nextents || !m->size)
		return;
	for (i = 0; i < m->nextents; i++) {
		uint64_t s = m->extents[2 * i], len = m->extents[2 * i + 1];

		if (!len)
			continue;
		data += len;
		allowed += (s + len + bs - 1) / bs * bs - s / bs * bs;
	}
	allowed += bs * (4 + m->nextents / 64);
	if (used > allowed && used > data)
		report_at(v, "sparse", "the backup's file has holes (%llu bytes of data), "
			  "the folder's has %llu bytes allocated", (unsigned long long)data,
			  (unsigned long long)used);
}

static void add_link(struct verifier *v, const struct meta *m, const struct stat *st)
{
	struct link_rec *l;

	if (v->nlinks == v->alloc_links) {
		v->alloc_links = v->alloc_links ? 2 * v->alloc_links : 16;
		v->links = xrealloc(v->links, v->alloc_links * sizeof(*v->links));
	}
	l = &v->links[v->nlinks++];
	if (m->nlink > 1) {
		l->bdev = m->dev;
		l->bino = m->ino;
	} else {
		/* Restore links only names of a file that had several. */
		l->bdev = UINT64_MAX;
		l->bino = v->unique++;
	}
	l->rdev = st->st_dev;
	l->rino = st->st_ino;
	l->rnlink = st->st_nlink;
	l->path = xstrdup(shown(v));
}

static int by_backup(const void *pa, const void *pb)
{
	const struct link_rec *a = pa, *b = pb;

	if (a->bdev != b->bdev)
		return a->bdev < b->bdev ? -1 : 1;
	if (a->bino != b->bino)
		return a->bino < b->bino ? -1 : 1;
	return strcmp(a->path, b->path);
}

static int by_folder(const void *pa, const void *pb)
{
	const struct link_rec *a = pa, *b = pb;

	if (a->rdev != b->rdev)
		return a->rdev < b->rdev ? -1 : 1;
	if (a->rino != b->rino)
		return a->rino < b->rino ? -1 : 1;
	return strcmp(a->path, b->path);
}

/* Reports every hard-link group the folder does not have as the backup does. */
static void check_links(struct verifier *v)
{
	size_t i, j, k;

	if (!v->nlinks)
		return;
	qsort(v->links, v->nlinks, sizeof(*v->links), by_backup);
	for (i = 0; i < v->nlinks; i = j) {
		int split = 0;

		for (j = i + 1; j < v->nlinks && v->links[j].bdev == v->links[i].bdev &&
		     v->links[j].bino == v->links[i].bino; j++)
			;
		for (k = i + 1; k < j; k++)
			if (v->links[k].rdev != v->links[i].rdev || v->links[k].rino != v->links[i].rino) {
				strbuf_reset(&v->path);
				strbuf_addstr(&v->path, v->links[k].path);
				report_at(v, "hardlink", "the backup has it as one file with '%s', the folder as another",
					  v->links[i].path);
				split = 1;
			}
		if (!split && v->links[i].rnlink != j - i) {
			strbuf_reset(&v->path);
			strbuf_addstr(&v->path, v->links[i].path);
			report_at(v, "hardlink", "the backup has %zu names for this file, the folder %llu",
				  j - i, (unsigned long long)v->links[i].rnlink);
		}
	}
	qsort(v->links, v->nlinks, sizeof(*v->links), by_folder);
	for (i = 0; i < v->nlinks; i = j) {
		for (j = i + 1; j < v->nlinks && v->links[j].rdev == v->links[i].rdev &&
		     v->links[j].rino == v->links[i].rino; j++)
			;
		for (k = i + 1; k < j; k++)
			if (v->links[k].bdev != v->links[i].bdev || v->links[k].bino != v->links[i].bino) {
				strbuf_reset(&v->path);
				strbuf_addstr(&v->path, v->links[k].path);
				report_at(v, "hardlink", "the folder has it as one file with '%s', the backup as another",
					  v->links[i].path);
			}
	}
	strbuf_reset(&v->path);
}

/* ---- the walk ------------------------------------------------------------ */


static void verify_dir(struct verifier *v, int dfd, const unsigned char oid[SHA1_LEN]);

/* Opens a regular file of the folder for reading, without following symlinks. */
static int open_file(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);

	if (fd < 0 && errno == EPERM)
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

/*
 * Reads what the backup has for entry m of tree t without a counterpart in
 * the folder, so that damage inside it is named too.
 */
static void read_only(struct verifier *v, git_tree *t, const struct tree_names *tn, const struct meta *m)
{
	const git_tree_entry *te = tree_entry(t, tn, m->name);

	if (S_ISDIR(m->mode)) {
		if (!te || git_tree_entry_type(te) != GIT_OBJECT_TREE)
			report_at(v, "damaged", "the backup has no tree for this folder");
		else
			verify_dir(v, -1, git_tree_entry_id(te)->id);
	} else if (S_ISREG(m->mode)) {
		check_content(v, -1, te, m);
	}
}

/* Compares entry m of backup tree t with the same name in folder dfd. */
static void verify_entry(struct verifier *v, int dfd, git_tree *t, const struct tree_names *tn,
			 const struct meta *m, int present)
{
	const git_tree_entry *te = tree_entry(t, tn, m->name);
	struct stat st;

	if (S_ISREG(m->mode)) {
		v->out->files++;
		v->out->bytes += m->size;
	} else if (!S_ISDIR(m->mode)) {
		v->out->others++;
	}
	if (dfd < 0) {
		read_only(v, t, tn, m);
		return;
	}
	if (!present || fstatat(dfd, m->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		uint64_t damaged = v->out->damaged;

		if (present && errno != ENOENT) {
			report_at(v, "unreadable", "cannot examine the folder's entry: %s", strerror(errno));
			read_only(v, t, tn, m);
			return;
		}
		/* A file is missing because its data is damaged (restore leaves
		 * no such file behind): then the damage is what to report. */
		if (S_ISDIR(m->mode))
			report_at(v, "missing", "the backup has a folder here, the folder nothing");
		read_only(v, t, tn, m);
		if (!S_ISDIR(m->mode) && v->out->damaged == damaged)
			report_at(v, "missing", "the backup has a %s here, the folder nothing", type_name(m->mode));
		return;
	}
	if ((m->mode & S_IFMT) != (st.st_mode & S_IFMT)) {
		report_at(v, "type", "the backup has a %s, the folder a %s", type_name(m->mode),
			  type_name(st.st_mode));
		read_only(v, t, tn, m);
		return;
	}
	if (S_ISDIR(m->mode)) {
		int sub;

		if (!te || git_tree_entry_type(te) != GIT_OBJECT_TREE) {
			report_at(v, "damaged", "the backup has no tree for this folder");
			return;
		}
		sub = openat(dfd, m->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			report_at(v, "unreadable", "cannot open the folder's folder: %s", strerror(errno));
			verify_dir(v, -1, git_tree_entry_id(te)->id);
			return;
		}
		/* Its own record is its "." in its tree, compared there. */
		verify_dir(v, sub, git_tree_entry_id(te)->id);
		close(sub);
		return;
	}
	compare_meta(v, m, &st, -1, dfd, m->name);
	if (S_ISREG(m->mode)) {
		int fd = open_file(dfd, m->name);

		if (fd < 0)
			report_at(v, "unreadable", "cannot open the folder's file: %s", strerror(errno));
		check_content(v, fd, te, m);
		if (fd >= 0)
			close(fd);
		check_sparse(v, m, &st);
		if (m->nlink > 1 || st.st_nlink > 1)
			add_link(v, m, &st);
	} else if (S_ISLNK(m->mode)) {
		const char *want = m->link ? m->link : "";
		size_t len = (size_t)st.st_size + 1;
		char *target = xmalloc(len + 1);
		ssize_t n = readlinkat(dfd, m->name, target, len);

		if (n >= 0)
			target[n] = '\0';
		if (n < 0)
			report_at(v, "unreadable", "cannot read the folder's symlink: %s", strerror(errno));
		else if (strlen(target) != (size_t)n || strcmp(target, want))
			report_at(v, "symlink", "the backup points to '%s', the folder to '%s'", want, target);
		free(target);
	}
}

/* Compares backup folder oid with folder dfd (or, dfd < 0, only reads it). */
static void verify_dir(struct verifier *v, int dfd, const unsigned char oid[SHA1_LEN])
{
	git_tree *t;
	struct tree_names *tn;
	struct meta *m;
	char **names = NULL;
	size_t n, nnames = 0, i = 1, j = 0, plen = v->path.len;

	if (load_dir(v, oid, &t, &tn, &m, &n) < 0)
		return;
	v->out->dirs++;
	if (dfd >= 0) {
		struct stat st;

		if (fstat(dfd, &st) < 0) {
			report_at(v, "unreadable", "cannot examine the folder: %s", strerror(errno));
		} else {
			compare_meta(v, &m[0], &st, dfd, -1, NULL);
		}
		if (read_dir_names(dfd, &names, &nnames) < 0) {
			report_at(v, "unreadable", "cannot list the folder: %s", strerror(errno));
			dfd = -1;
		}
	}
	/* Both lists are in byte order: walk them together. */
	while ((i < n || j < nnames) && !interrupted) {
		int c = i == n ? 1 : j == nnames ? -1 : strcmp(m[i].name, names[j]);
		const char *name = c > 0 ? names[j] : m[i].name;

		strbuf_addch(&v->path, '/');
		strbuf_addstr(&v->path, name);
		if (c > 0) {
			struct stat st;

			if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				st.st_mode = 0;
			report_at(v, "unexpected", "the folder has a %s here, the backup nothing",
				  type_name(st.st_mode));
			j++;
		} else {
			verify_entry(v, dfd, t, tn, &m[i], c == 0);
			i++;
			if (c == 0)
				j++;
		}
		strbuf_setlen(&v->path, plen);
	}
	free_strv(names, nnames);
	meta_free_array(m, n);
	tree_names_free(tn);
	git_tree_free(t);
}

int verify_tree(struct repo *r, const unsigned char tree[SHA1_LEN], const char *dir,
		struct verify_report *out)
{
	struct verifier v = { .repo = r, .out = out, .readonly = !dir };
	uint64_t before = out->mismatches;
	size_t i;
	int fd = -1;

	strbuf_init(&v.path, 256);
	strbuf_init(&v.blob, 0);
	strbuf_init(&v.br.raw, 0);
	strbuf_init(&v.br.frame, 0);
	if (packset_open(&v.ps, r) < 0)
		v.ps = NULL;
	v.piece = xmalloc(PIECE);
	if (dir) {
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			report_at(&v, errno == ENOENT ? "missing" : "unreadable", "cannot open '%s': %s", dir,
				  strerror(errno));
	}
	verify_dir(&v, fd, tree);
	if (fd >= 0)
		close(fd);
	check_links(&v);
	for (i = 0; i < v.nlinks; i++)
		free(v.links[i].path);
	free(v.links);
	free(v.piece);
	packset_free(v.ps);
	blob_reader_release(&v.br);
	strbuf_release(&v.path);
	strbuf_release(&v.blob);
	return out->mismatches == before ? 0 : -1;
}
