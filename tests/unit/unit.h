/*
 * unit.h — what the unit tests of the machine-level operations share: a
 * check macro, a scratch folder, and a repository with machines backed up
 * into it, made through the library as `backup run` makes them.
 *
 * Included by one test file each (every test is one program), so that
 * everything here is static.
 */
#ifndef UNIT_H
#define UNIT_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "fsutil.h"
#include "machine.h"
#include "repo.h"
#include "snapshot.h"
#include "store.h"
#include "usage.h"
#include "walk.h"

static int failed;
/* The test's own stderr: the library's messages go to base/stderr.log. */
static FILE *unit_err;
#define UNIT_ERR (unit_err ? unit_err : stderr)
#define CHECK(c) do { if (!(c)) { fprintf(UNIT_ERR, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); failed = 1; } } while (0)

/* The scratch folder of the test, and what lives in it. */
static char base[256];
static struct config *cfg;
static struct repo *repo;

/* base/name; the caller frees it. */
static inline char *at(const char *name)
{
	return xasprintf("%s/%s", base, name);
}

/* Writes data to base/name, making the folders on the way. */
static inline void put(const char *name, const char *data)
{
	char *p = at(name), *slash = strrchr(p, '/');
	int fd;

	*slash = '\0';
	CHECK(mkdir_p(p, 0700) == 0);
	*slash = '/';
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write_all(fd, data, strlen(data)) == 0);
	if (fd >= 0)
		close(fd);
	free(p);
}

/* The text of base/name ("" when it cannot be read); the caller frees it. */
static inline char *slurp(const char *name)
{
	struct strbuf sb = STRBUF_INIT;
	char *p = at(name);

	if (strbuf_read_file(&sb, p) < 0)
		strbuf_addstr(&sb, "");
	free(p);
	return strbuf_detach(&sb, NULL);
}

static inline int exists(const char *name)
{
	char *p = at(name);
	struct stat st;
	int r = lstat(p, &st) == 0;

	free(p);
	return r;
}

/*
 * Makes the scratch folder (under $TMPDIR), a global configuration naming
 * base/repo, base/machines and base/mroot, and the repository, and opens it.
 */
static inline void unit_setup(const char *name)
{
	const char *tmp = getenv("TMPDIR");
	char *conf, *text, *rp;
	int fd;

	setenv("TZ", "UTC", 1);
	snprintf(base, sizeof(base), "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		exit(1);
	}
	/* The failures the tests provoke are reported on stderr by design:
	 * keep them in a log beside the test's files, shown if it fails. */
	text = at("stderr.log");
	fd = open(text, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	free(text);
	if (fd < 0 || !(unit_err = fdopen(dup(2), "w")) || dup2(fd, 2) < 0) {
		perror("stderr.log");
		exit(1);
	}
	close(fd);
	setvbuf(unit_err, NULL, _IONBF, 0);
	git_libgit2_init();
	text = xasprintf("[repository]\n\tpath = %s/repo\n[machines]\n\tdir = %s/machines\n\troot = %s/mroot\n",
			 base, base, base);
	put("backup.conf", text);
	conf = at("backup.conf");
	rp = at("repo");
	if (config_load(&cfg, conf, 1, NULL) < 0 || repo_init(rp) < 0 || repo_open(&repo, rp) < 0) {
		fprintf(UNIT_ERR, "cannot make the test repository in '%s'\n", base);
		exit(1);
	}
	free(text);
	free(conf);
	free(rp);
}

/* Removes the scratch folder; returns the test's exit status. */
static inline int unit_finish(void)
{
	repo_free(repo);
	config_free(cfg);
	git_libgit2_shutdown();
	if (!failed)
		remove_tree(base);
	else
		fprintf(UNIT_ERR, "left '%s' for a look; the library's messages are in stderr.log there\n", base);
	return failed;
}

/* Defines machine name in base/machines with the given text. */
static inline void define(const char *name, const char *text)
{
	char *p = xasprintf("machines/%s.conf", name);

	put(p, text);
	free(p);
}

/*
 * Backs up machine name as `backup run` does, into slot; sets *out (the
 * caller frees it with backup_info_free()) to the backup as read back.
 */
static inline int backup_machine(const char *name, const char *slot, struct backup_info **out)
{
	struct machine *m = NULL;
	struct backup_info b = { 0 };
	struct store *s = NULL;
	size_t i;
	int ret = -1;

	*out = NULL;
	if (machine_load(&m, cfg, name) < 0 || store_open(&s, repo) < 0)
		goto out;
	clock_gettime(CLOCK_REALTIME, &b.start);
	b.machine = m->name;
	b.kind = "automatic";
	b.label = "";
	b.layout = m;
	b.ndisks = m->ndisks;
	b.disks = xcalloc(m->ndisks, sizeof(*b.disks));
	for (i = 0; i < m->ndisks; i++) {
		struct walk_opts o = { .repo = repo, .store = s, .source = m->disks[i].source, .threads = 2 };
		struct walk_stats ws = { 0 };
		int r;

		b.disks[i].label = m->disks[i].label;
		b.disks[i].source = m->disks[i].source;
		b.disks[i].filesystem = m->disks[i].filesystem;
		b.disks[i].size = m->disks[i].size;
		r = walk_disk(&o, &ws, b.disks[i].tree);
		walk_stats_release(&ws);
		if (r < 0)
			goto out;
	}
	b.end = b.start;
	if (snapshot_commit(s, &b) < 0 || snapshot_set_slot(repo, name, slot, b.id, "unit test") < 0 ||
	    snapshot_read(repo, b.id, out) < 0)
		goto out;
	ret = 0;
out:
	store_free(s);
	free(b.disks);
	machine_free(m);
	return ret;
}

/* Flips a byte in the middle of the largest pack (where noise() lands). */
static inline void damage_packs(void)
{
	char *dir = at("repo/objects/pack");
	char **names = NULL;
	size_t n = 0, i, big = 0;
	off_t most = -1;
	struct stat st;
	char c;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY), fd;

	CHECK(dfd >= 0 && read_dir_names(dfd, &names, &n) == 0);
	for (i = 0; i < n; i++)
		if (strstr(names[i], ".pack") && fstatat(dfd, names[i], &st, 0) == 0 && st.st_size > most) {
			most = st.st_size;
			big = i;
		}
	CHECK(most > 100000);
	fd = most > 0 ? openat(dfd, names[big], O_RDWR) : -1;
	CHECK(fd >= 0 && pread(fd, &c, 1, most / 2) == 1);
	c ^= 0x55;
	CHECK(pwrite(fd, &c, 1, most / 2) == 1);
	close(fd);
	free_strv(names, n);
	close(dfd);
	free(dir);
}

/* n bytes of hex digits that compress poorly. */
static inline char *noise(size_t n)
{
	char *s = xmalloc(n + 1);
	uint64_t x = 88172645463325252ull;
	size_t i;

	for (i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		s[i] = "0123456789abcdef"[x & 15];
	}
	s[n] = '\0';
	return s;
}

/*
 * Defines machine web (plan 1G) with disks root (base/src: etc/hostname
 * "web\n" and var/log/big, 200000 bytes of noise()) and data (base/data:
 * www/index.html "<p>hello</p>\n") of 100M each, booting profile
 * "default", and backs it up into its daily slot; returns the backup, or
 * NULL after saying why.
 */
static inline struct backup_info *backup_web(void)
{
	char *big = noise(200000), *text = xasprintf("[machine]\n\tplan = 1G\n"
			       "[disk \"root\"]\n\tsource = %s/src\n\tsize = 100M\n"
			       "[disk \"data\"]\n\tsource = %s/data\n\tsize = 100M\n"
			       "[profile \"default\"]\n\troot = sda\n\tsda = root\n\tsdb = data\n",
			       base, base);
	struct backup_info *b = NULL;

	put("src/etc/hostname", "web\n");
	put("src/var/log/big", big);
	put("data/www/index.html", "<p>hello</p>\n");
	define("web", text);
	free(text);
	free(big);
	if (backup_machine("web", "daily", &b) < 0)
		fprintf(UNIT_ERR, "cannot back up the test machine; see stderr.log in %s\n", base);
	return b;
}

#endif
