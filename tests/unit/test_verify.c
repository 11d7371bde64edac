/*
 * Unit test of verify_tree(): a folder restored from a backup matches it;
 * then each property is changed in turn in a fresh restore, and exactly that
 * difference must be reported, on exactly that path.
 */
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
#include "repo.h"
#include "restore.h"
#include "store.h"
#include "usage.h"
#include "verify.h"
#include "walk.h"

static int failed;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); failed = 1; } } while (0)

static char base[256], src[300], out[300];
static struct repo *repo;
static unsigned char tree[SHA1_LEN];
static int root;

/* The differences reported, as "path what" lines. */
static struct strbuf got = STRBUF_INIT;

static void collect(const struct verify_mismatch *m, void *data)
{
	(void)data;
	strbuf_addf(&got, "%s %s\n", m->path, m->what);
}

static char *at(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void put(const char *name, const char *data, size_t len)
{
	char *p = at(src, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0 && write_all(fd, data, len) == 0);
	close(fd);
	free(p);
}

static void set_mtime(const char *dir, const char *name, long sec, long nsec)
{
	char *p = at(dir, name);
	struct timespec ts[2] = { { sec, nsec }, { sec, nsec } };

	CHECK(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW) == 0);
	free(p);
}

/* Saved times of an entry of the restored folder and of its folder. */
struct saved {
	char *path, *parent;
	struct stat st, pst;
};

static void save(struct saved *s, const char *name)
{
	char *slash;

	s->path = at(out, name);
	s->parent = xstrdup(s->path);
	slash = strrchr(s->parent, '/');
	*slash = '\0';
	if (lstat(s->path, &s->st) < 0)
		memset(&s->st, 0, sizeof(s->st));
	CHECK(lstat(s->parent, &s->pst) == 0);
}

/* Puts the saved times back, so that only the intended property differs. */
static void restore_times(struct saved *s)
{
	struct timespec ts[2];

	if (s->st.st_mode) {
		ts[0] = s->st.st_atim;
		ts[1] = s->st.st_mtim;
		utimensat(AT_FDCWD, s->path, ts, AT_SYMLINK_NOFOLLOW);
	}
	ts[0] = s->pst.st_atim;
	ts[1] = s->pst.st_mtim;
	CHECK(utimensat(AT_FDCWD, s->parent, ts, 0) == 0);
	free(s->path);
	free(s->parent);
}

static void make_source(void)
{
	static char big[700000], sparse_data[] = "data in the middle";
	char *p;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7919 + i / 13);
	CHECK(mkdir(src, 0755) == 0);
	put("a", "hello\n", 6);
	put("m", "mode\n", 5);
	put("t", "time\n", 5);
	put("c", "content\n", 8);
	put("x", "attrs\n", 6);
	put("o", "owner\n", 6);
	put("hl", "linked\n", 7);
	put("big", big, sizeof(big));
	p = at(src, "x");
	CHECK(setxattr(p, "user.one", "1", 1, 0) == 0);
	CHECK(setxattr(p, "user.two", "22", 2, 0) == 0);
	free(p);
	p = at(src, "d");
	CHECK(mkdir(p, 0750) == 0);
	free(p);
	put("d/f", "in d\n", 5);
	{
		char *a = at(src, "hl"), *b = at(src, "d/h");
		CHECK(link(a, b) == 0);
		free(a);
		free(b);
	}
	p = at(src, "l");
	CHECK(symlink("a", p) == 0);
	free(p);
	p = at(src, "p");
	CHECK(mkfifo(p, 0640) == 0);
	free(p);
	if (root) {
		p = at(src, "dev");
		CHECK(mknod(p, S_IFCHR | 0600, makedev(1, 3)) == 0);
		free(p);
	}
	p = at(src, "sp");
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && ftruncate(fd, 8 << 20) == 0);
	CHECK(pwrite(fd, sparse_data, sizeof(sparse_data), 3 << 20) == (ssize_t)sizeof(sparse_data));
	close(fd);
	free(p);
	set_mtime(src, "t", 1000000000, 123456789);
	set_mtime(src, "l", 981173106, 5);
	set_mtime(src, "d", 1577836800, 500000000);
}

static int backup_source(void)
{
	struct walk_opts o = { 0 };
	struct walk_stats st = { 0 };
	struct store *s = NULL;
	char *path = at(base, "repo");
	int ret = -1;

	if (repo_init(path) < 0 || repo_open(&repo, path) < 0 || store_open(&s, repo) < 0)
		goto out;
	o.repo = repo;
	o.store = s;
	o.source = src;
	o.threads = 2;
	if (walk_disk(&o, &st, tree) < 0 || store_flush(s) < 0)
		goto out;
	ret = st.nunreadable ? -1 : 0;
out:
	walk_stats_release(&st);
	store_free(s);
	free(path);
	return ret;
}

/* A fresh restore into out. */
static void fresh(void)
{
	struct restore_stats st = { 0 };

	remove_tree(out);
	CHECK(restore_tree(repo, tree, out, &st) == 0);
	CHECK(st.errors == 0);
}

/* Verifies out and checks that exactly the lines of want were reported. */
static void expect(const char *why, const char *want)
{
	struct verify_report rep = { .mismatch = collect };
	uint64_t lines;
	int ret;

	strbuf_reset(&got);
	ret = verify_tree(repo, tree, out, &rep);
	if (strcmp(got.buf, want)) {
		fprintf(stderr, "%s: reported\n%s---- instead of\n%s----\n", why, got.buf, want);
		failed = 1;
	}
	CHECK(ret == (*want ? -1 : 0));
	for (lines = 0; *want; want++)
		lines += *want == '\n';
	CHECK(rep.mismatches == lines);
}

static void alter_byte(const char *name, off_t off)
{
	char *p = at(out, name), c;
	int fd = open(p, O_RDWR);

	CHECK(fd >= 0 && pread(fd, &c, 1, off) == 1);
	c ^= 0x20;
	CHECK(pwrite(fd, &c, 1, off) == 1);
	close(fd);
	free(p);
}

int main(void)
{
	struct saved s;
	const char *tmp = getenv("TMPDIR");
	char *p;

	root = geteuid() == 0;
	snprintf(base, sizeof(base), "%s/test_verify.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(src, sizeof(src), "%s/src", base);
	snprintf(out, sizeof(out), "%s/out", base);
	git_libgit2_init();
	make_source();
	if (backup_source() < 0) {
		fprintf(stderr, "cannot back up the test folder\n");
		failed = 1;
		goto out;
	}

	/* The backup alone reads; a faithful restore matches. */
	{
		struct verify_report rep = { .mismatch = collect };

		strbuf_reset(&got);
		CHECK(verify_tree(repo, tree, NULL, &rep) == 0);
		CHECK(rep.files == 11 && rep.mismatches == 0);
		CHECK(!got.len);
	}
	fresh();
	expect("faithful restore", "");

	fresh();
	save(&s, "m");
	p = at(out, "m");
	CHECK(chmod(p, 0600) == 0);
	free(p);
	restore_times(&s);
	expect("mode", "/m mode\n");

	fresh();
	set_mtime(out, "t", 1000000000, 123456788);
	expect("mtime nanoseconds", "/t mtime\n");

	fresh();
	save(&s, "big");
	alter_byte("big", 600000);
	restore_times(&s);
	expect("content", "/big content\n");

	fresh();
	save(&s, "c");
	{
		char *q = at(out, "c");
		int fd = open(q, O_WRONLY | O_APPEND);

		CHECK(fd >= 0 && write(fd, "+", 1) == 1);
		close(fd);
		free(q);
	}
	restore_times(&s);
	expect("size", "/c size\n/c content\n");

	fresh();
	save(&s, "x");
	p = at(out, "x");
	CHECK(removexattr(p, "user.one") == 0);
	CHECK(setxattr(p, "user.two", "23", 2, 0) == 0);
	CHECK(setxattr(p, "user.three", "3", 1, 0) == 0);
	free(p);
	restore_times(&s);
	expect("xattrs", "/x xattr\n/x xattr\n/x xattr\n");

	if (root) {
		fresh();
		save(&s, "o");
		p = at(out, "o");
		CHECK(chown(p, 4242, 4343) == 0);
		free(p);
		restore_times(&s);
		expect("owner", "/o uid\n/o gid\n");

		fresh();
		save(&s, "dev");
		p = at(out, "dev");
		CHECK(unlink(p) == 0 && mknod(p, S_IFCHR | 0600, makedev(1, 5)) == 0);
		free(p);
		restore_times(&s);
		expect("device numbers", "/dev rdev\n");
	}

	fresh();
	save(&s, "l");
	p = at(out, "l");
	CHECK(unlink(p) == 0 && symlink("elsewhere", p) == 0);
	free(p);
	restore_times(&s);
	expect("symlink target", "/l symlink\n");

	fresh();
	save(&s, "p");
	p = at(out, "p");
	CHECK(unlink(p) == 0);
	free(p);
	put("../out/p", "", 0);
	restore_times(&s);
	expect("type", "/p type\n");

	fresh();
	save(&s, "d/f");
	p = at(out, "d/f");
	CHECK(unlink(p) == 0);
	free(p);
	restore_times(&s);
	expect("missing", "/d/f missing\n");

	fresh();
	save(&s, "new");
	put("../out/new", "new\n", 4);
	restore_times(&s);
	expect("unexpected", "/new unexpected\n");

	/* d/h is copied instead of linked: same bytes, mode, times. */
	fresh();
	save(&s, "d/h");
	{
		char *h = at(out, "d/h"), *tmpf = at(out, "d/h.tmp");
		int fd = open(tmpf, O_WRONLY | O_CREAT | O_EXCL, 0644);

		CHECK(fd >= 0 && write(fd, "linked\n", 7) == 7);
		CHECK(fchown(fd, s.st.st_uid, s.st.st_gid) == 0 && fchmod(fd, s.st.st_mode & 07777) == 0);
		close(fd);
		CHECK(rename(tmpf, h) == 0);
		free(h);
		free(tmpf);
	}
	restore_times(&s);
	expect("hard link broken", "/hl hardlink\n");

	fresh();
	save(&s, "sp");
	{
		char *q = at(out, "sp");
		int fd = open(q, O_WRONLY);
		static char zeros[1 << 20];
		int i;

		/* Writes the holes' zeros for real: same bytes, no holes. */
		for (i = 0; i < 8; i++)
			if (i != 3)
				CHECK(pwrite(fd, zeros, sizeof(zeros), (off_t)i << 20) == (ssize_t)sizeof(zeros));
		CHECK(fsync(fd) == 0);
		close(fd);
		free(q);
	}
	restore_times(&s);
	expect("holes filled", "/sp sparse\n");

	/* The root folder is compared too. */
	fresh();
	CHECK(chmod(out, 0711) == 0);
	expect("root mode", "/ mode\n");

	/* A folder that is not there at all. */
	remove_tree(out);
	expect("nothing restored", "/ missing\n");
out:
	repo_free(repo);
	remove_tree(base);
	strbuf_release(&got);
	git_libgit2_shutdown();
	if (!failed)
		printf("ok verify (every property changed once is reported once)\n");
	return failed;
}
