/*
 * transport_s3.c — remotes in S3 object storage (remote.h), through the
 * S3 client of s3.c.
 *
 * A remote s3://BUCKET[/PREFIX] holds, under PREFIX/:
 *
 *   objects/pack/pack-H.pack   a pack of the repository, as it is here
 *   objects/pack/pack-H.idx    its index, written after the pack
 *   slots/MACHINE/SLOT/TIME-COMMIT
 *                              a slot manifest, written after the packs
 *                              it names
 *   state/TIME-COMMIT          a service state manifest (refs/backup/state),
 *                              written after the pack that holds it
 *   locks/KIND-HOST-PID-TIME   a push or rotate under way (see "Bucket locks")
 *
 * Every object is written once and never changed (If-None-Match: *), so
 * two hosts pushing at once cannot overwrite each other, and with Object
 * Lock nothing needs rewriting. When two pushes race for the same key, the
 * one refused with 412 treats it as done: a pack's key names its content,
 * so what is there is what it would have written, and a manifest's key
 * names its commit. The write order is the local repository's: packs, then
 * their indexes, then the manifests that name their objects, so a reader
 * that sees a manifest finds every object it needs. A slot's value is its
 * newest manifest (TIME is the push's UTC time to the microsecond,
 * yyyymmddThhmmss.uuuuuuZ, so the newest sorts last); a push whose commit
 * is the newest manifest's already has nothing to write for that slot. A
 * manifest is text:
 *
 *   backup slot 1               ("backup state 1" for the state)
 *   ref refs/backups/MACHINE/SLOT
 *   commit HEX
 *   pushed 2026-12-07T15:40:00Z
 *   created 1796636400          (a slot: the backup's start, Unix time)
 *   kind automatic              (a slot: automatic or snapshot)
 *   pack pack-H                 (one line per pack its objects are in)
 *
 * A push sends only the objects of the slots it moves (the walk of the
 * backups' trees, as space reclamation marks them) that the bucket lacks,
 * learnt from the bucket's pack indexes (see push_objects()), so a pack
 * that a rotation of the bucket rewrote does not come back; a pack
 * interrupted half-way is resumed from its multipart upload. The service
 * state's objects are loose here: the
 * push packs them into a small pack of their own (libgit2's pack builder)
 * and sends it before the state manifest. Of two hosts pushing their state
 * to one bucket, the newer manifest is the bucket's state.
 *
 * A fetch reads it back: every complete pack the repository lacks, over
 * up to three connections at once (each pack streamed to a temporary file,
 * so memory does not grow with the packs), each verified against its index
 * before it is renamed into place (pack, then index, as a backup writes
 * them, one pack at a time), then each slot's newest manifest and the
 * newest state manifest, whose commits must be in those packs. It moves no
 * ref: the caller does.
 *
 * The remote's keys: remote.NAME.endpoint (URL of the S3 service; AWS when
 * unset), remote.NAME.region (default us-east-1), remote.NAME.addressing
 * ("path" or "virtual"; path-style on other endpoints than AWS's), and
 * remote.NAME.objectLock (a boolean: every object written gets a
 * COMPLIANCE retention of OBJECT_LOCK_DAYS, and the packs a push needs that
 * are there already have theirs extended by as much, so a stolen key cannot
 * delete what a kept backup needs). Credentials come from the environment
 * or the AWS files (s3cred.h), never from the repository.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "dedup.h"
#include "fsutil.h"
#include "gc.h"
#include "hash.h"
#include "pack.h"
#include "packidx.h"
#include "remote.h"
#include "s3.h"
#include "s3cred.h"
#include "schedule.h"
#include "slots.h"
#include "snapshot.h"
#include "strbuf.h"
#include "usage.h"

/* The seed keeps a backup at most 14 days; one more for the push itself. */
#define OBJECT_LOCK_DAYS 15
/* Packs above this go up in parts of this size. */
#define PART_SIZE ((uint64_t)64 << 20)

struct ts3 {
	struct s3 *s3;
	struct s3_cred *cred;
	char *bucket;
	char *prefix;		/* "" or "some/prefix/" */
	int object_lock;
	time_t lock_until;
	uint64_t part_size;
	long kill_after_parts;	/* tests: die like a power cut after so many parts */
	long parts_sent;
	long kill_after_packs;	/* tests: a fetch dies after so many packs */
	long packs_fetched;
	const char *rendezvous;	/* tests: DIR:N, see rendezvous() */
	long lock_seconds;	/* tests: locks this long from each request */
};

/* When what is written now may be deleted. */
static time_t lock_date(const struct ts3 *t)
{
	return t->lock_seconds > 0 ? time(NULL) + t->lock_seconds : t->lock_until;
}

/* Splits s3://BUCKET[/PREFIX] into bucket and prefix ("" or ending '/'). */
static int parse_s3_url(const char *url, char **bucket, char **prefix)
{
	const char *b = url + strlen("s3://"), *slash = strchr(b, '/');
	struct strbuf p = STRBUF_INIT;
	const char *s;

	*bucket = slash ? xstrndup(b, slash - b) : xstrdup(b);
	s = slash ? slash + 1 : "";
	for (; *s; s++) {
		/* Keys stay in [A-Za-z0-9/._-]: no '+' or space to encode. */
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '/' || *s == '.' || *s == '_' || *s == '-'))
			goto bad;
		if (*s == '/' && (!p.len || p.buf[p.len - 1] == '/'))
			continue;
		strbuf_addch(&p, *s);
	}
	if (p.len && p.buf[p.len - 1] != '/')
		strbuf_addch(&p, '/');
	if (strstr(p.buf, "../") == p.buf || strstr(p.buf, "/../") || strstr(p.buf, "./") == p.buf ||
	    strstr(p.buf, "/./"))
		goto bad;
	*prefix = strbuf_detach(&p, NULL);
	return 0;
bad:
	strbuf_release(&p);
	free(*bucket);
	*bucket = NULL;
	return error("remote URL '%s' has a prefix S3 keys should not hold; use letters, digits, '/', '.', '_' and '-'",
		     url);
}

int transport_s3_check_url(const char *url)
{
	char *bucket = NULL, *prefix = NULL;
	size_t i, n;
	int ret;

	if (parse_s3_url(url, &bucket, &prefix) < 0)
		return -1;
	n = strlen(bucket);
	for (i = 0; i < n; i++)
		if (!((bucket[i] >= 'a' && bucket[i] <= 'z') || (bucket[i] >= '0' && bucket[i] <= '9') ||
		      bucket[i] == '.' || bucket[i] == '-'))
			break;
	ret = n < 3 || n > 63 || i < n || bucket[0] == '.' || bucket[0] == '-' ? error(
		"remote URL '%s' does not name an S3 bucket; write s3://BUCKET[/PREFIX], BUCKET being 3 to 63 "
		"of a-z, 0-9, '.' and '-'", url) : 0;
	free(bucket);
	free(prefix);
	return ret;
}

static char *config_get(git_config *cfg, const char *name, const char *key)
{
	git_buf buf = GIT_BUF_INIT;
	char *k = xasprintf("remote.%s.%s", name, key), *v = NULL;

	if (cfg && git_config_get_string_buf(&buf, cfg, k) == 0)
		v = xstrdup(buf.ptr);
	git_buf_dispose(&buf);
	free(k);
	return v;
}

static void ts3_close(struct ts3 *t)
{
	s3_free(t->s3);
	s3cred_free(t->cred);
	free(t->bucket);
	free(t->prefix);
}

static int ts3_open(struct ts3 *t, struct repo *r, const struct remote *rm)
{
	struct s3_options opt = { 0 };
	git_config *cfg = NULL;
	char *endpoint = NULL, *region = NULL, *addressing = NULL, *k;
	int ret = -1, lock = 0, rc;

	memset(t, 0, sizeof(*t));
	if (parse_s3_url(rm->url, &t->bucket, &t->prefix) < 0)
		return -1;
	if (git_repository_config(&cfg, r->git) < 0)
		return error_git("cannot read the repository's config");
	endpoint = config_get(cfg, rm->name, "endpoint");
	region = config_get(cfg, rm->name, "region");
	addressing = config_get(cfg, rm->name, "addressing");
	k = xasprintf("remote.%s.objectLock", rm->name);
	rc = git_config_get_bool(&lock, cfg, k);
	free(k);
	if (rc < 0 && rc != GIT_ENOTFOUND) {
		error("remote.%s.objectLock is not a boolean; set it to true or false", rm->name);
		goto out;
	}
	t->object_lock = lock > 0;
	/* The tests make parts small, to stop a push between two of them. */
	t->part_size = PART_SIZE;
	if (getenv("BACKUP_TEST_S3_PART_SIZE")) {
		uint64_t v = strtoull(getenv("BACKUP_TEST_S3_PART_SIZE"), NULL, 10);

		if (v >= (5 << 20))
			t->part_size = v;
	}
	/* And stop a push at a known part, however fast the server is. */
	if (getenv("BACKUP_TEST_S3_KILL_AFTER_PARTS"))
		t->kill_after_parts = strtol(getenv("BACKUP_TEST_S3_KILL_AFTER_PARTS"), NULL, 10);
	if (getenv("BACKUP_TEST_S3_KILL_AFTER_PACKS"))
		t->kill_after_packs = strtol(getenv("BACKUP_TEST_S3_KILL_AFTER_PACKS"), NULL, 10);
	t->rendezvous = getenv("BACKUP_TEST_S3_RENDEZVOUS");
	t->lock_until = time(NULL) + OBJECT_LOCK_DAYS * 86400L;
	/* Tests: locks that end within the test, for retention to find ended. */
	if (getenv("BACKUP_TEST_S3_LOCK_SECONDS"))
		t->lock_seconds = strtol(getenv("BACKUP_TEST_S3_LOCK_SECONDS"), NULL, 10);
	if (addressing && !strcmp(addressing, "path")) {
		opt.addressing = S3_ADDR_PATH;
	} else if (addressing && !strcmp(addressing, "virtual")) {
		opt.addressing = S3_ADDR_VHOST;
	} else if (addressing) {
		error("remote.%s.addressing is '%s'; set it to path or virtual", rm->name, addressing);
		goto out;
	}
	opt.endpoint = endpoint;
	opt.region = region;
	opt.bucket = t->bucket;
	if (s3cred_load(&t->cred) < 0 || s3_open(&t->s3, &opt, t->cred) < 0)
		goto out;
	ret = 0;
out:
	git_config_free(cfg);
	free(endpoint);
	free(region);
	free(addressing);
	if (ret)
		ts3_close(t);
	return ret;
}

static void put_options(const struct ts3 *t, struct s3_put_options *po)
{
	memset(po, 0, sizeof(*po));
	po->create_only = 1;
	if (t->object_lock) {
		po->lock_mode = "COMPLIANCE";
		po->lock_until = lock_date(t);
	}
}

/* The keys under a prefix, the prefix cut, with their sizes, sorted. */
struct name {
	char *name;
	uint64_t size;
	time_t mtime;
};

struct names {
	struct name *v;
	size_t nr, alloc;
	size_t skip;		/* the prefix's length */
};

static int add_name(const struct s3_object *o, void *data)
{
	struct names *n = data;

	if (n->nr == n->alloc) {
		n->alloc = n->alloc ? 2 * n->alloc : 64;
		n->v = xrealloc(n->v, n->alloc * sizeof(*n->v));
	}
	n->v[n->nr].name = xstrdup(o->key + n->skip);
	n->v[n->nr].size = o->size;
	n->v[n->nr].mtime = o->mtime;
	n->nr++;
	return 0;
}

static void names_release(struct names *n)
{
	size_t i;

	for (i = 0; i < n->nr; i++)
		free(n->v[i].name);
	free(n->v);
	memset(n, 0, sizeof(*n));
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct name *)a)->name, ((const struct name *)b)->name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int names_has(const struct names *n, const char *name)
{
	struct name want = { (char *)name, 0, 0 };

	return n->nr && bsearch(&want, n->v, n->nr, sizeof(*n->v), cmp_name) != NULL;
}

/* Whether pack name ("pack-H") and its index are in the listing have. */
static int pack_there(const struct names *have, const char *name)
{
	char *pack = xasprintf("%s.pack", name), *idx = xasprintf("%s.idx", name);
	int ret = names_has(have, pack) && names_has(have, idx);

	free(pack);
	free(idx);
	return ret;
}

/*
 * The length of the stem "pack-H" when f names a pack file ("pack-H.pack",
 * in this folder), else 0.
 */
static size_t pack_stem(const char *f)
{
	size_t len = strlen(f);

	if (len < 10 || strncmp(f, "pack-", 5) || strcmp(f + len - 5, ".pack") || strchr(f, '/'))
		return 0;
	return len - 5;
}

/* The index of this repository's pack name ("pack-H"), or -1 said. */
static int local_index(struct repo *r, const char *name, struct packidx *idx)
{
	char *path = xasprintf("%s/%s.idx", r->pack_dir, name);
	int rc = packidx_read(idx, path);

	if (rc < 0)
		error("cannot read the pack index '%s'; run 'backup check'", path);
	free(path);
	return rc < 0 ? -1 : 0;
}

static int list_names(struct ts3 *t, const char *sub, struct names *out)
{
	char *p = xasprintf("%s%s", t->prefix, sub);
	int ret;

	memset(out, 0, sizeof(*out));
	out->skip = strlen(p);
	ret = s3_list(t->s3, p, add_name, out);
	free(p);
	/* S3 lists in byte order already; other servers may not. */
	if (!ret && out->nr > 1)
		qsort(out->v, out->nr, sizeof(*out->v), cmp_name);
	return ret;
}

struct find_upload {
	const char *key;
	char *id;
};

static int on_upload(const struct s3_upload *u, void *data)
{
	struct find_upload *f = data;

	if (!strcmp(u->key, f->key) && !f->id)
		f->id = xstrdup(u->upload_id);
	return 0;
}

struct parts {
	struct s3_part *p;
	int nr, alloc;
};

static void parts_add(struct parts *ps, int number, const char *etag, uint64_t size)
{
	if (ps->nr == ps->alloc) {
		ps->alloc = ps->alloc ? 2 * ps->alloc : 16;
		ps->p = xrealloc(ps->p, ps->alloc * sizeof(*ps->p));
	}
	ps->p[ps->nr].number = number;
	ps->p[ps->nr].etag = xstrdup(etag);
	ps->p[ps->nr].size = size;
	ps->nr++;
}

static int on_part(const struct s3_part *p, void *data)
{
	parts_add(data, p->number, p->etag, p->size);
	return 0;
}

static void parts_release(struct parts *ps)
{
	int i;

	for (i = 0; i < ps->nr; i++)
		free(ps->p[i].etag);
	free(ps->p);
	memset(ps, 0, sizeof(*ps));
}

static int cmp_part(const void *a, const void *b)
{
	return ((const struct s3_part *)a)->number - ((const struct s3_part *)b)->number;
}

/* 1 when key is on the bucket with size bytes, 0 when not, or an error. */
static int key_there(struct ts3 *t, const char *key, uint64_t size)
{
	struct s3_object o = { 0 };
	int rc = s3_head(t->s3, key, &o);

	if (!rc)
		rc = o.size == size;
	else if (rc == ERR_NOTFOUND)
		rc = 0;
	s3_object_release(&o);
	return rc;
}

/*
 * A large file in parts: resumes the upload an interrupted push left for
 * the same key (the key names its content, so its parts are good), sending
 * only the parts it lacks, then completes it.
 */
static int put_multipart(struct ts3 *t, const char *key, int fd, uint64_t size)
{
	struct find_upload f = { key, NULL };
	struct parts have = { 0 };
	struct s3_put_options po;
	int nr = (int)((size + t->part_size - 1) / t->part_size), number, i, ret, rc;

	put_options(t, &po);
	ret = s3_mpu_list(t->s3, key, on_upload, &f);
	if (!ret && f.id) {
		verbose("resuming the upload of '%s'", s3_name(t->s3, key));
		ret = s3_mpu_parts(t->s3, key, f.id, on_part, &have);
		if (ret == ERR_NOTFOUND) {
			free(f.id);
			f.id = NULL;
			parts_release(&have);
			ret = 0;
		}
	}
	if (!ret && !f.id)
		ret = s3_mpu_create(t->s3, key, &po, &f.id);
	for (number = 1; !ret && number <= nr; number++) {
		uint64_t off = (uint64_t)(number - 1) * t->part_size;
		uint64_t len = size - off < t->part_size ? size - off : t->part_size;
		char *etag = NULL;
		int found = 0;

		for (i = 0; i < have.nr; i++) {
			if (have.p[i].number != number)
				continue;
			/* A part of another size is sent again, replacing it. */
			if (have.p[i].size == len)
				found = 1;
			else
				have.p[i].number = -1;
		}
		if (found)
			continue;
		if (interrupted) {
			ret = error("interrupted");
			break;
		}
		ret = s3_mpu_put_part(t->s3, key, f.id, number, fd, off, len, &etag);
		if (!ret)
			parts_add(&have, number, etag, len);
		free(etag);
		if (!ret && ++t->parts_sent == t->kill_after_parts)
			raise(SIGKILL);
	}
	/*
	 * Another host pushing the same pack may have completed it first
	 * (Ceph ignores If-None-Match on a completion, so look): the key
	 * names the content, so that is as good as ours.
	 */
	if ((!ret || ret == ERR_NOTFOUND) && (rc = key_there(t, key, size)) != 0) {
		if (rc > 0) {
			if (!ret)
				s3_mpu_abort(t->s3, key, f.id);
			free(f.id);
			parts_release(&have);
			return 0;
		}
		ret = rc;
	}
	if (ret == ERR_NOTFOUND)
		ret = error("the upload of '%s' vanished: another push ended it; push again", s3_name(t->s3, key));
	if (!ret) {
		struct parts use = { 0 };

		qsort(have.p, have.nr, sizeof(*have.p), cmp_part);
		for (i = 0; i < have.nr; i++)
			if (have.p[i].number >= 1 && have.p[i].number <= nr)
				parts_add(&use, have.p[i].number, have.p[i].etag, have.p[i].size);
		ret = s3_mpu_complete(t->s3, key, f.id, use.p, use.nr, &po, NULL);
		parts_release(&use);
		if (ret == ERR_NOTFOUND && key_there(t, key, size) > 0)
			ret = 0;
		else if (ret == ERR_NOTFOUND)
			ret = error("the upload of '%s' vanished: another push ended it; push again", s3_name(t->s3, key));
	}
	free(f.id);
	parts_release(&have);
	return ret;
}

/* Sends one file of the pack folder as key, create-only. */
static int put_file(struct ts3 *t, const char *path, const char *key)
{
	struct s3_put_options po;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = error("cannot read '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	put_options(t, &po);
	if ((uint64_t)st.st_size > t->part_size)
		ret = put_multipart(t, key, fd, st.st_size);
	else
		ret = s3_put_fd(t->s3, key, fd, 0, st.st_size, &po, NULL);
	close(fd);
	/* The name is the content's: what is there is what we would send. */
	if (ret == ERR_EXISTS)
		ret = 0;
	return ret;
}

/* The local packs with their index: "pack-H" names, sorted. */
static int local_packs(struct repo *r, char ***out, size_t *nr)
{
	char **names = NULL, **packs = NULL;
	size_t n = 0, i, k = 0;
	int dfd = open(r->pack_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*out = NULL;
	*nr = 0;
	if (dfd < 0 || read_dir_names(dfd, &names, &n) < 0) {
		int e = errno;

		if (dfd >= 0)
			close(dfd);
		return error("cannot list '%s': %s", r->pack_dir, strerror(e));
	}
	close(dfd);
	packs = xcalloc(n + 1, sizeof(*packs));
	for (i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		char *idx;
		struct stat st;

		if (len < 10 || strncmp(names[i], "pack-", 5) || strcmp(names[i] + len - 5, ".pack"))
			continue;
		/* A pack without its index is one a killed job left. */
		idx = xasprintf("%s/%.*s.idx", r->pack_dir, (int)(len - 5), names[i]);
		if (!stat(idx, &st))
			packs[k++] = xstrndup(names[i], len - 5);
		free(idx);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	qsort(packs, k, sizeof(*packs), cmp_str);
	*out = packs;
	*nr = k;
	return 0;
}

/* Whether name ends in "-" and 40 lower-case hex digits. */
static int ends_in_commit(const char *name)
{
	const char *dash = strrchr(name, '-');

	return dash && strlen(dash + 1) == 40 && strspn(dash + 1, "0123456789abcdef") == 40;
}

/* The commit of the newest manifest under dir ("MACHINE/SLOT" in the
 * listing of slots/, or "" in that of state/), into hex ("" when none). */
static void newest_commit(const struct names *list, const char *dir, char hex[41])
{
	size_t len = strlen(dir), i;

	hex[0] = '\0';
	for (i = 0; i < list->nr; i++) {
		const char *n = list->v[i].name;

		if (len && (strncmp(n, dir, len) || n[len] != '/'))
			continue;
		n += len ? len + 1 : 0;
		if (!strchr(n, '/') && ends_in_commit(n))
			memcpy(hex, n + strlen(n) - 40, 41);
	}
}

/*
 * Tests: BACKUP_TEST_S3_RENDEZVOUS=DIR:N makes a push wait, once it has
 * listed the bucket and before it writes anything, until N pushes have come
 * that far (each adds a file to DIR), so that they race for the same keys
 * however the scheduler runs them. It gives up after a minute.
 */
static void rendezvous(const struct ts3 *t)
{
	const char *colon = t->rendezvous ? strrchr(t->rendezvous, ':') : NULL;
	char *dir, *mine;
	long want, tries;
	int fd;

	if (!colon)
		return;
	dir = xstrndup(t->rendezvous, colon - t->rendezvous);
	want = strtol(colon + 1, NULL, 10);
	mine = xasprintf("%s/%ld", dir, (long)getpid());
	fd = open(mine, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	for (tries = 0; tries < 3000; tries++) {
		DIR *d = opendir(dir);
		struct dirent *e;
		long n = 0;

		while (d && (e = readdir(d)))
			n += e->d_name[0] != '.';
		if (d)
			closedir(d);
		if (n >= want)
			break;
		usleep(20000);
	}
	free(mine);
	free(dir);
}

/*
 * Sends pack name (and its index) from folder dir when the bucket lacks
 * either, counting its objects when the pack was new; with Object Lock, a
 * pack the bucket has already gets its lock extended, as the new backup
 * that needs it must outlive it.
 */
static int send_pack(struct ts3 *t, const struct names *have, const char *dir, const char *name, int progress,
		     struct transfer_result *res)
{
	char *pack = xasprintf("%s.pack", name), *idx = xasprintf("%s.idx", name);
	char *path = xasprintf("%s/%s", dir, pack), *key = xasprintf("%sobjects/pack/%s", t->prefix, pack);
	int missing_pack = !names_has(have, pack), missing_idx = !names_has(have, idx), rc = 0;

	if (missing_pack || missing_idx) {
		struct packidx pi;

		if (progress)
			fprintf(stderr, "sending %s\n", name);
		if (missing_pack)
			rc = put_file(t, path, key);
		if (!rc) {
			free(path);
			free(key);
			path = xasprintf("%s/%s", dir, idx);
			key = xasprintf("%sobjects/pack/%s", t->prefix, idx);
			rc = put_file(t, path, key);
		}
		if (!rc && missing_pack && packidx_read(&pi, path) == 0) {
			res->objects += pi.nr;
			packidx_release(&pi);
		}
	} else if (t->object_lock) {
		rc = s3_put_retention(t->s3, key, NULL, "COMPLIANCE", lock_date(t));
		if (!rc) {
			free(key);
			key = xasprintf("%sobjects/pack/%s", t->prefix, idx);
			rc = s3_put_retention(t->s3, key, NULL, "COMPLIANCE", lock_date(t));
		}
		/* A lock already longer than ours. */
		if (rc == S3_ERR_LOCKED)
			rc = 0;
	}
	free(pack);
	free(idx);
	free(path);
	free(key);
	return rc;
}

/*
 * Removes the folders PREFIX* in tmp that a killed command left: each
 * command holds an flock on its folder, taken before it writes in it (an
 * flock dies with its process, whatever its pid becomes), so a folder not
 * empty whose lock can be taken is a leftover. With min_age, a folder must
 * also be that many seconds old: those of earlier versions, which held no
 * lock.
 */
static void remove_stale_dirs(const char *tmp, const char *prefix, const char *what, long min_age)
{
	DIR *d = opendir(tmp);
	struct dirent *de;
	struct stat st;

	while (d && (de = readdir(d))) {
		char *path;
		int fd;

		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		path = xasprintf("%s/%s", tmp, de->d_name);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && dir_is_empty(path) == 0 &&
		    (!min_age || (fstat(fd, &st) == 0 && time(NULL) - st.st_mtime >= min_age)) &&
		    remove_tree(path) == 0)
			verbose("removed '%s', which a %s that was killed left", path, what);
		if (fd >= 0)
			close(fd);
		free(path);
	}
	if (d)
		closedir(d);
}

/*
 * A push's temporary folder, TMPDIR/backup-push-XXXXXX: the service
 * state's pack, and the packs of objects the bucket lacks that are cut
 * from local packs (see push_objects()). The push holds an flock on it
 * from before it writes there until it removes it at the end.
 */
struct push_tmp {
	char *dir;
	int fd;
};

static int push_tmp_get(struct push_tmp *pt)
{
	const char *tmp = getenv("TMPDIR");

	if (pt->dir)
		return 0;
	pt->dir = xasprintf("%s/backup-push-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(pt->dir)) {
		int ret = error("cannot create a temporary folder '%s': %s", pt->dir, strerror(errno));

		free(pt->dir);
		pt->dir = NULL;
		return ret;
	}
	pt->fd = open(pt->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pt->fd < 0 || flock(pt->fd, LOCK_EX) < 0)
		return error("cannot lock '%s': %s", pt->dir, strerror(errno));
	return 0;
}

static void push_tmp_release(struct push_tmp *pt)
{
	if (pt->dir)
		remove_tree(pt->dir);
	if (pt->dir && pt->fd >= 0)
		close(pt->fd);
	free(pt->dir);
	pt->dir = NULL;
	pt->fd = -1;
}

/*
 * The index of the bucket's pack name ("pack-H"), for the push to learn
 * which objects the bucket holds: the repository's own when it has that
 * pack (a pack's name is its content's), else the copy kept in the cache
 * folder REPO/backup/cache/s3-REMOTE/ (checked: its checksum, and the pack
 * it names must be H), else the bucket's, which is then kept there. The
 * cache may be deleted at any time; a file in it that fails its check is
 * read again from the bucket.
 */
static int bucket_index(struct ts3 *t, struct repo *r, const char *cache, char **local, size_t nlocal,
			const char *name, struct packidx *idx)
{
	struct strbuf raw = STRBUF_INIT;
	char sum[2 * SHA1_LEN + 1], *path, *key, *tmp;
	int fd, rc;

	if (nlocal && bsearch(&name, local, nlocal, sizeof(*local), cmp_str))
		return local_index(r, name, idx);
	path = xasprintf("%s/%s.idx", cache, name);
	if (packidx_read(idx, path) == 0) {
		hex_encode(sum, idx->pack_sum, SHA1_LEN);
		if (!strcmp(sum, name + 5)) {
			free(path);
			return 0;
		}
		packidx_release(idx);
	}
	unlink(path);
	key = xasprintf("%sobjects/pack/%s.idx", t->prefix, name);
	verbose("reading the index of %s from the bucket", name);
	rc = s3_get_buf(t->s3, key, 0, 0, &raw);
	if (rc == ERR_NOTFOUND)
		rc = error("'%s' vanished from the bucket", s3_name(t->s3, key));
	else if (!rc && packidx_parse(idx, raw.buf, raw.len) < 0)
		rc = error("'%s' is not a valid pack index", s3_name(t->s3, key));
	if (!rc) {
		/* Kept only when it is the index of the pack it is named after. */
		hex_encode(sum, idx->pack_sum, SHA1_LEN);
		tmp = xasprintf("%s/tmp_idx_XXXXXX", cache);
		if (!strcmp(sum, name + 5) && mkdir_p(cache, 0700) == 0 && (fd = mkstemp(tmp)) >= 0) {
			if (write_all(fd, raw.buf, raw.len) < 0 || close(fd) < 0 || rename(tmp, path) < 0)
				unlink(tmp);
		}
		free(tmp);
	}
	strbuf_release(&raw);
	free(key);
	free(path);
	return rc;
}

/* Removes from the cache the indexes of packs no longer on the bucket. */
static void bucket_index_prune(const char *cache, const struct names *have)
{
	char **names = NULL;
	size_t n = 0, i;
	int dfd = open(cache, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return;
	if (read_dir_names(dfd, &names, &n) == 0) {
		for (i = 0; i < n; i++) {
			size_t len = strlen(names[i]);

			if ((!strncmp(names[i], "pack-", 5) && len > 4 && !strcmp(names[i] + len - 4, ".idx") &&
			     !names_has(have, names[i])) || !strncmp(names[i], "tmp_idx_", 8))
				unlinkat(dfd, names[i], 0);
			free(names[i]);
		}
		free(names);
	}
	close(dfd);
}

/*
 * What a push sends, by the objects the pushed backups need, not by the
 * names of the packs: a pack the bucket's rotation rewrote (its live
 * objects copied into a new pack, the old one deleted) is gone from the
 * bucket by name, but its objects are there.
 */
struct push_objects {
	struct ts3 *t;
	struct repo *r;
	struct dedup *live;	/* what the pushed backups reach */
	struct dedup *there;	/* of the objects of local packs the bucket
				 * lacks by name: those it holds, or that this
				 * push has sent */
	char **names;		/* the packs the manifests name */
	size_t nnames;
	struct push_tmp *tmp;
	struct pack_writer *pw;	/* a pack of objects the bucket lacks */
	int progress;
	struct transfer_result *res;
};

static void push_objects_name(struct push_objects *po, const char *name)
{
	po->names = xrealloc(po->names, (po->nnames + 1) * sizeof(*po->names));
	po->names[po->nnames++] = xstrdup(name);
}

/* Sends the pack the writer holds (then its index), and removes it here:
 * the temporary folder holds one such pack at a time. */
static int push_objects_flush(struct push_objects *po)
{
	size_t count = pack_writer_count(po->pw);
	char *name = NULL, *path, *key;
	int rc = pack_writer_flush(po->pw, &name);

	if (rc || !name)
		return rc;
	if (po->progress)
		fprintf(stderr, "sending %s (%zu objects the bucket lacks)\n", name, count);
	path = xasprintf("%s/%s.pack", po->tmp->dir, name);
	key = xasprintf("%sobjects/pack/%s.pack", po->t->prefix, name);
	rc = put_file(po->t, path, key);
	unlink(path);
	free(path);
	free(key);
	path = xasprintf("%s/%s.idx", po->tmp->dir, name);
	key = xasprintf("%sobjects/pack/%s.idx", po->t->prefix, name);
	if (!rc)
		rc = put_file(po->t, path, key);
	unlink(path);
	free(path);
	free(key);
	if (!rc) {
		po->res->objects += count;
		push_objects_name(po, name);
	}
	free(name);
	return rc;
}

static int push_objects_moved(const unsigned char *oid, void *arg)
{
	struct push_objects *po = arg;

	(void)oid;
	if (interrupted)
		return error("interrupted; the packs sent stay, the next push continues");
	return pack_writer_full(po->pw) ? push_objects_flush(po) : 0;
}

/* Packs of objects cut from local packs are flushed at this size. */
#define PUSH_PACK_MAX ((size_t)48 << 20)

/*
 * Sends every object the n backups ids reach that the bucket (listing
 * have) lacks, and sets po->names to the packs their manifests name: the
 * bucket's packs that hold one of those objects, and the packs sent.
 *
 * 1. The walk of space reclamation (gc.h) marks what the backups reach.
 * 2. Of the local packs the bucket lacks by name, the objects they reach
 *    are the candidates.
 * 3. Each of the bucket's pack indexes, one at a time (bucket_index()),
 *    says which candidates are there, and whether that pack holds an
 *    object the backups reach (then the manifests name it).
 * 4. Each local pack the bucket lacks by name: when every object in it is
 *    needed and those the bucket has take at most 5% of its bytes (a new
 *    backup's pack, as a rule: a run may write a tree or a record again
 *    that an older pack holds), it goes whole, under the name it has here,
 *    so that its index is read from this repository next time; otherwise
 *    the objects missing there alone are copied byte for byte into a new
 *    pack of at most PUSH_PACK_MAX, which goes up when full and is then
 *    removed here (a pack that rotate --remote rewrote keeps its dead
 *    objects out of the bucket that way).
 */
static int push_objects(struct push_objects *po, const char *cache, char **packs, size_t npacks,
			const struct names *have, const git_oid *ids, size_t n)
{
	struct ts3 *t = po->t;
	struct repo *r = po->r;
	struct dedup *cand = NULL;
	struct packidx idx;
	size_t i, k;
	int ret = -1;

	dedup_load(&po->live, NULL, NULL);
	dedup_load(&po->there, NULL, NULL);
	dedup_load(&cand, NULL, NULL);
	for (i = 0; i < n; i++)
		if (gc_mark_backup(r, po->live, &ids[i]) < 0)
			goto out;
	for (i = 0; i < npacks; i++) {
		if (pack_there(have, packs[i]))
			continue;
		if (local_index(r, packs[i], &idx) < 0)
			goto out;
		for (k = 0; k < idx.nr; k++)
			if (dedup_has_oid(po->live, idx.oids + k * SHA1_LEN))
				dedup_add_oid(cand, idx.oids + k * SHA1_LEN);
		packidx_release(&idx);
	}
	for (i = 0; i < have->nr; i++) {
		const char *f = have->v[i].name;
		size_t len = pack_stem(f);
		char *name;
		int named = 0;

		if (!len)
			continue;
		name = xstrndup(f, len);
		if (!pack_there(have, name)) {
			free(name);
			continue;
		}
		if (bucket_index(t, r, cache, packs, npacks, name, &idx) < 0) {
			free(name);
			goto out;
		}
		for (k = 0; k < idx.nr; k++) {
			const unsigned char *oid = idx.oids + k * SHA1_LEN;

			if (!named && dedup_has_oid(po->live, oid))
				named = 1;
			if (dedup_has_oid(cand, oid))
				dedup_add_oid(po->there, oid);
		}
		packidx_release(&idx);
		if (named) {
			push_objects_name(po, name);
			/* With Object Lock, the new backups must outlive it. */
			if (t->object_lock && send_pack(t, have, r->pack_dir, name, 0, po->res) < 0) {
				free(name);
				goto out;
			}
		}
		free(name);
	}
	bucket_index_prune(cache, have);
	for (i = 0; i < npacks; i++) {
		char *path;
		size_t missing = 0, needed = 0;
		struct stat st;
		int rc = 0, whole = 0;

		if (pack_there(have, packs[i]))
			continue;
		if (local_index(r, packs[i], &idx) < 0)
			goto out;
		for (k = 0; k < idx.nr; k++) {
			needed += dedup_has_oid(po->live, idx.oids + k * SHA1_LEN);
			missing += dedup_has_oid(po->live, idx.oids + k * SHA1_LEN) &&
				   !dedup_has_oid(po->there, idx.oids + k * SHA1_LEN);
		}
		path = xasprintf("%s/%s.pack", r->pack_dir, packs[i]);
		if (missing && needed == idx.nr && stat(path, &st) == 0 && (uint64_t)st.st_size > 12 + SHA1_LEN) {
			/* The bytes of its objects the bucket holds already. */
			uint64_t entries = st.st_size - 12 - SHA1_LEN;
			uint64_t there = entries - gc_dead_bytes(&idx, po->there, st.st_size);

			whole = there * 20 <= entries;
		}
		free(path);
		if (whole) {
			for (k = 0; k < idx.nr; k++)
				dedup_add_oid(po->there, idx.oids + k * SHA1_LEN);
			rc = send_pack(t, have, r->pack_dir, packs[i], po->progress, po->res);
			if (!rc)
				push_objects_name(po, packs[i]);
		} else if (missing) {
			verbose("%zu of the %zu objects of %s are not on the bucket: they go in a pack of their own",
				missing, idx.nr, packs[i]);
			path = xasprintf("%s/%s.pack", r->pack_dir, packs[i]);
			rc = push_tmp_get(po->tmp);
			if (!rc && !po->pw)
				rc = pack_writer_new(&po->pw, po->tmp->dir, PUSH_PACK_MAX);
			if (!rc)
				rc = gc_copy_live(po->pw, r->odb, path, &idx, po->live, po->there, push_objects_moved,
						  po);
			free(path);
		}
		packidx_release(&idx);
		if (rc < 0)
			goto out;
		if (interrupted) {
			error("interrupted; the packs sent stay, the next push continues");
			goto out;
		}
	}
	if (po->pw && push_objects_flush(po) < 0)
		goto out;
	qsort(po->names, po->nnames, sizeof(*po->names), cmp_str);
	ret = 0;
out:
	dedup_free(cand);
	return ret;
}

static void push_objects_release(struct push_objects *po)
{
	free_strv(po->names, po->nnames);
	pack_writer_free(po->pw);
	dedup_free(po->live);
	dedup_free(po->there);
}

/*
 * The service state's objects (its commit, tree and blobs, loose objects
 * here) packed by libgit2 into the push's temporary folder, the pack named
 * *name ("pack-H").
 */
static int state_pack(struct repo *r, const git_oid *id, struct push_tmp *pt, char **name)
{
	git_packbuilder *pb = NULL;
	int ret = -1;

	*name = NULL;
	if (push_tmp_get(pt) < 0)
		return -1;
	if (git_packbuilder_new(&pb, r->git) < 0 || !git_packbuilder_set_threads(pb, 1) ||
	    git_packbuilder_insert_commit(pb, id) < 0 ||
	    git_packbuilder_write(pb, pt->dir, 0, NULL, NULL) < 0) {
		error_git("cannot pack the service state");
		goto out;
	}
	*name = xasprintf("pack-%s", git_packbuilder_name(pb));
	ret = 0;
out:
	git_packbuilder_free(pb);
	return ret;
}

/* Writes a manifest, create-only: 0, or 1 when its key was there already
 * (the same commit pushed in the same microsecond: nothing to do). */
static int put_manifest(struct ts3 *t, const char *key, const struct strbuf *text)
{
	struct s3_put_options po;
	int rc;

	put_options(t, &po);
	rc = s3_put_buf(t->s3, key, text->buf, text->len, &po, NULL);
	return rc == ERR_EXISTS ? 1 : rc;
}

/* Sends the state commit of u as a pack of its own, then its manifest. */
static int push_state(struct ts3 *t, struct repo *r, const struct names *have, struct ref_update *u,
		      const char *stamp, const char *pushed, struct push_tmp *pt, int progress,
		      struct transfer_result *res)
{
	struct strbuf text = STRBUF_INIT;
	char *name = NULL, *key;
	git_oid id;
	int rc;

	git_oid_fromstr(&id, u->new_hex);
	rc = state_pack(r, &id, pt, &name);
	/* Tests: killed like a power cut with its temporary folder full. */
	if (!rc && getenv("BACKUP_TEST_S3_KILL_STATE_PACK"))
		raise(SIGKILL);
	if (!rc)
		rc = send_pack(t, have, pt->dir, name, progress, res);
	if (!rc) {
		strbuf_addf(&text, "backup state 1\nref %s\ncommit %s\npushed %s\npack %s\n", REPO_STATE_REF,
			    u->new_hex, pushed, name);
		key = xasprintf("%sstate/%s-%s", t->prefix, stamp, u->new_hex);
		rc = put_manifest(t, key, &text);
		free(key);
		u->status = rc == 1 ? REF_UPTODATE : REF_UPDATED;
		if (rc == 1)
			rc = 0;
	}
	free(name);
	strbuf_release(&text);
	return rc;
}

/*
 * Bucket locks: a push and a rotate of one bucket each hold a lock object
 * under locks/ while they run, so that a rotate never deletes a pack a
 * push has seen there and is about to name in a manifest.
 *
 *   locks/push-HOST-PID-UNIXTIME     a push, from before it lists the
 *                                    bucket until it has written its last
 *                                    manifest (or failed)
 *   locks/rotate-HOST-PID-UNIXTIME   a rotate, from before it lists the
 *                                    bucket until its last deletion
 *
 * Each is written create-only, without retention (the body says host, pid
 * and time), and is deleted when its command ends; a killed command leaves
 * its lock, which is stale after LOCK_STALE_PUSH or LOCK_STALE_ROTATE (its
 * age is from UNIXTIME, the writer's clock) and then ignored. A rotate
 * that, once its lock is there, finds a push's or another rotate's that
 * is not stale deletes its own and nothing else (busy; a rotate's this
 * host wrote whose process is gone is deleted instead); a push that finds a rotate's waits for
 * it to go. S3 lists a new object at once, so of a push and a rotate that
 * start together at least one sees the other's lock; when each sees the
 * other, the rotate backs off and the push proceeds.
 */
#define LOCK_STALE_PUSH 86400
#define LOCK_STALE_ROTATE 3600
/* How long a push waits for a rotate when not told (--wait). */
#define LOCK_WAIT_DEFAULT 600

struct bucket_lock {
	char kind[8];		/* "push" or "rotate" */
	char host[256];
	long pid;
	time_t since;
};

/* Parses "KIND-HOST-PID-UNIXTIME"; -1 when name is no lock. */
static int lock_parse(const char *name, struct bucket_lock *l)
{
	const char *k = strchr(name, '-'), *t = strrchr(name, '-'), *p;
	char *end;

	memset(l, 0, sizeof(*l));
	if (!k || t <= k || strchr(name, '/'))
		return -1;
	for (p = t - 1; p > k && *p != '-'; p--)
		;
	if (p <= k || (size_t)(k - name) >= sizeof(l->kind) || (size_t)(p - k - 1) >= sizeof(l->host))
		return -1;
	memcpy(l->kind, name, k - name);
	memcpy(l->host, k + 1, p - k - 1);
	l->pid = strtol(p + 1, &end, 10);
	if (end != t)
		return -1;
	l->since = (time_t)strtoll(t + 1, &end, 10);
	return *end || end == t + 1 ? -1 : 0;
}

/* The age after which a lock of kind is stale. */
static long lock_stale_age(const char *kind)
{
	return strcmp(kind, "push") ? LOCK_STALE_ROTATE : LOCK_STALE_PUSH;
}

static void lock_time(time_t when, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&when, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
}

/* This host's name as a lock's key spells it. */
static void lock_host(char host[256])
{
	char *c;

	memset(host, 0, 256);
	if (gethostname(host, 255) < 0 || !*host)
		strcpy(host, "unknown");
	for (c = host; *c; c++)
		if (*c == '/' || *c == '-' || (unsigned char)*c <= ' ' || (unsigned char)*c >= 127)
			*c = '_';
}

/* Writes this command's lock of kind; its key into *key. */
static int lock_put(struct ts3 *t, const char *kind, char **key)
{
	struct s3_put_options po;
	struct strbuf body = STRBUF_INIT;
	char host[256];
	time_t now = time(NULL);
	int rc;

	lock_host(host);
	/* Create-only, and no retention: it is deleted when the command ends. */
	memset(&po, 0, sizeof(po));
	po.create_only = 1;
	strbuf_addf(&body, "host %s\npid %ld\ntime %lld\n", host, (long)getpid(), (long long)now);
	*key = xasprintf("%slocks/%s-%s-%ld-%lld", t->prefix, kind, host, (long)getpid(), (long long)now);
	rc = s3_put_buf(t->s3, *key, body.buf, body.len, &po, NULL);
	strbuf_release(&body);
	if (rc < 0) {
		free(*key);
		*key = NULL;
		return rc == ERR_EXISTS ? error("cannot write the lock of this %s: it is there already", kind) : -1;
	}
	return 0;
}

/* Deletes a lock (the version itself, on a versioned bucket); frees key. */
static void lock_delete(struct ts3 *t, char *key)
{
	struct s3_object o = { 0 };

	if (!key)
		return;
	if (s3_head(t->s3, key, &o) == 0 && s3_delete(t->s3, key, o.version_id) < 0)
		warning("cannot delete the lock %s; it is ignored once stale", s3_name(t->s3, key));
	s3_object_release(&o);
	free(key);
}

/*
 * Finds a lock of kind that is not stale, into *found: 1,
 * or 0 when there is none. Stale ones are reported once (stale_seen), and
 * with remove deleted.
 */
static int lock_find(struct ts3 *t, const char *kind, int remove, int *stale_seen,
		     struct bucket_lock *found)
{
	struct names locks = { 0 };
	time_t now = time(NULL);
	size_t i;
	int ret = 0;

	if (list_names(t, "locks/", &locks) < 0)
		return -1;
	for (i = 0; i < locks.nr && !ret; i++) {
		struct bucket_lock l;
		char *key = xasprintf("%slocks/%s", t->prefix, locks.v[i].name), when[32];

		if (lock_parse(locks.v[i].name, &l) < 0 || strcmp(l.kind, kind)) {
			free(key);
			continue;
		}
		if (now - l.since < lock_stale_age(kind)) {
			*found = l;
			ret = 1;
		} else if (!*stale_seen) {
			lock_time(l.since, when, sizeof(when));
			warning("the %s lock %s (host %s, since %s) is stale (older than %ld s); it is ignored%s",
				kind, s3_name(t->s3, key), l.host, when, lock_stale_age(kind), remove ? " and deleted" : "");
			*stale_seen = 1;
		}
		if (!ret && remove)
			lock_delete(t, key);
		else
			free(key);
	}
	names_release(&locks);
	return ret;
}

/*
 * A push's lock: written, then a rotate's lock waited for up to wait
 * seconds (< 0: LOCK_WAIT_DEFAULT). 0 with *key set, ERR_LOCKED (printed)
 * when the rotate is still there, or -1.
 */
static int push_lock(struct ts3 *t, const char *remote, long wait, char **key)
{
	struct bucket_lock l;
	struct timespec t0, now;
	long poll = 5;
	int stale = 0, rc;
	char when[32];

	/* Tests: a bound of a few seconds, whatever --wait says. */
	if (getenv("BACKUP_TEST_S3_LOCK_WAIT"))
		wait = strtol(getenv("BACKUP_TEST_S3_LOCK_WAIT"), NULL, 10);
	if (wait < 0)
		wait = LOCK_WAIT_DEFAULT;
	if (lock_put(t, "push", key) < 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((rc = lock_find(t, "rotate", 0, &stale, &l)) == 1) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= wait || interrupted)
			break;
		lock_time(l.since, when, sizeof(when));
		verbose("remote '%s': waiting for the rotate from %s (since %s) to end", remote, l.host, when);
		sleep(poll < wait - (now.tv_sec - t0.tv_sec) ? poll : wait - (now.tv_sec - t0.tv_sec));
	}
	if (rc == 0)
		return 0;
	lock_delete(t, *key);
	*key = NULL;
	if (rc < 0)
		return -1;
	if (interrupted)
		return error("interrupted while waiting for a rotate of remote '%s' to end; nothing was sent", remote);
	lock_time(l.since, when, sizeof(when));
	error("remote '%s' is busy: a rotate from %s has been deleting there since %s; "
	      "push again when it has ended, or pass --wait SECONDS", remote, l.host, when);
	return ERR_LOCKED;
}

/*
 * Another rotate's lock than own (this one's key) that is not stale, into
 * *found: 1, or 0 when there is none, or -1. A lock this host wrote whose
 * process is gone (a killed rotate: its pid runs no more, or is ours) is
 * deleted with a warning, as two rotations of one host never overlap.
 */
static int rotate_other(struct ts3 *t, const char *own, struct bucket_lock *found)
{
	struct names locks = { 0 };
	time_t now = time(NULL);
	char host[256];
	size_t i;
	int ret = 0;

	lock_host(host);
	if (list_names(t, "locks/", &locks) < 0)
		return -1;
	for (i = 0; i < locks.nr && !ret; i++) {
		struct bucket_lock l;
		char *key = xasprintf("%slocks/%s", t->prefix, locks.v[i].name);

		if (!strcmp(key, own) || lock_parse(locks.v[i].name, &l) < 0 || strcmp(l.kind, "rotate") ||
		    now - l.since >= LOCK_STALE_ROTATE) {
			free(key);
		} else if (!strcmp(l.host, host) && l.pid > 0 &&
			   (l.pid == (long)getpid() || (kill((pid_t)l.pid, 0) < 0 && errno == ESRCH))) {
			warning("the rotate lock %s (host %s, pid %ld) was left by a process that is gone; "
				"it is ignored and deleted", s3_name(t->s3, key), l.host, l.pid);
			lock_delete(t, key);
		} else {
			*found = l;
			ret = 1;
			free(key);
		}
	}
	names_release(&locks);
	return ret;
}

/*
 * A rotate's lock: written, then 0 with *key set when no push and no
 * other rotate holds one, or ERR_LOCKED (printed; the lock deleted
 * again), or -1. Two rotates that start together may each see the
 * other's lock: both back off.
 */
static int rotate_lock(struct ts3 *t, const char *remote, char **key)
{
	struct bucket_lock l;
	int stale = 0, rc, other = 0;
	char when[32];

	if (lock_put(t, "rotate", key) < 0)
		return -1;
	rc = lock_find(t, "push", 1, &stale, &l);
	if (rc == 0) {
		rc = rotate_other(t, *key, &l);
		other = 1;
	}
	if (rc == 0)
		return 0;
	lock_delete(t, *key);
	*key = NULL;
	if (rc < 0)
		return -1;
	lock_time(l.since, when, sizeof(when));
	error("remote '%s' is busy: %s from %s has been running since %s (lock locks/%s-%s-%ld-%lld); "
	      "nothing was deleted; rotate again when it has ended", remote, other ? "another rotate" : "a push",
	      l.host, when, l.kind, l.host, l.pid, (long long)l.since);
	return ERR_LOCKED;
}

/*
 * A rotation holds its lock for a bounded time: a push takes a rotate's
 * lock for stale after LOCK_STALE_ROTATE and goes on beside it, and a
 * push may have begun since the rotation looked (a push waits for a
 * rotate's lock only when it sees one). So before each phase that writes
 * or deletes, rotate_may_go_on() is asked: 0 when the rotation may go on;
 * ERR_LOCKED (printed) when it must stop, deleting nothing more (each
 * phase leaves the bucket valid), because it has held its lock for
 * ROTATE_BUDGET or more, or because a push now holds a lock that is not
 * stale; or -1.
 *
 * Tests: BACKUP_TEST_S3_ROTATE_BUDGET=SECONDS instead of ROTATE_BUDGET;
 * BACKUP_TEST_S3_ROTATE_PAUSE=DIR makes the rotation, before its first
 * write, create DIR/paused and wait (a minute at most) for DIR/go.
 */
#define ROTATE_BUDGET (LOCK_STALE_ROTATE / 2)

static int rotate_may_go_on(struct ts3 *t, const char *remote, time_t since)
{
	long budget = ROTATE_BUDGET;
	struct bucket_lock l;
	int stale = 1, rc;
	char when[32];

	if (getenv("BACKUP_TEST_S3_ROTATE_BUDGET"))
		budget = strtol(getenv("BACKUP_TEST_S3_ROTATE_BUDGET"), NULL, 10);
	if ((long)(time(NULL) - since) >= budget) {
		error("remote '%s': this rotate has held the bucket for %lld s, near the %d s after which a push "
		      "takes its lock for stale; it stops here, the bucket whole; rotate again to go on",
		      remote, (long long)(time(NULL) - since), LOCK_STALE_ROTATE);
		return ERR_LOCKED;
	}
	rc = lock_find(t, "push", 0, &stale, &l);
	if (rc <= 0)
		return rc;
	lock_time(l.since, when, sizeof(when));
	error("remote '%s' is busy: a push from %s has been running since %s (lock locks/%s-%s-%ld-%lld); "
	      "this rotate stops here, deleting nothing more; rotate again when it has ended",
	      remote, l.host, when, l.kind, l.host, l.pid, (long long)l.since);
	return ERR_LOCKED;
}

static void rotate_pause(void)
{
	const char *dir = getenv("BACKUP_TEST_S3_ROTATE_PAUSE");
	char *paused, *go;
	int tries, fd;

	if (!dir)
		return;
	paused = xasprintf("%s/paused", dir);
	go = xasprintf("%s/go", dir);
	fd = open(paused, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	for (tries = 0; tries < 3000 && access(go, F_OK) < 0; tries++)
		usleep(20000);
	free(paused);
	free(go);
}

static int ts3_push(struct repo *r, const struct remote *rm, const char *const *refs, size_t nrefs,
		    int progress, struct transfer_result *res)
{
	struct ts3 t;
	struct names have = { 0 }, slots = { 0 }, states = { 0 };
	struct strbuf manifest = STRBUF_INIT;
	struct timespec t0, t1;
	char **packs = NULL, *cache = NULL;
	const char *tmpdir;
	size_t npacks = 0, nwant = 0, i, j;
	git_oid *want = NULL;
	struct push_tmp tmp = { NULL, -1 };
	struct push_objects po = { 0 };
	char stamp[48], pushed[32];
	struct timespec wall;
	time_t now;
	struct tm tm;
	char *lock = NULL;
	int ret = -1, rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(res, 0, sizeof(*res));
	if (ts3_open(&t, r, rm) < 0)
		return -1;
	po.t = &t;
	po.r = r;
	po.tmp = &tmp;
	po.progress = progress;
	po.res = res;
	/* Microseconds: two pushes within one second still sort in order. */
	clock_gettime(CLOCK_REALTIME, &wall);
	now = wall.tv_sec;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	snprintf(stamp + strlen(stamp), sizeof(stamp) - strlen(stamp), ".%06ldZ", wall.tv_nsec / 1000);
	strftime(pushed, sizeof(pushed), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (local_packs(r, &packs, &npacks) < 0)
		goto out;
	/* What killed pushes left: their folders (before this version's, an
	 * unlocked backup-state-XXXXXX, which a push held for seconds). */
	tmpdir = getenv("TMPDIR");
	tmpdir = tmpdir && *tmpdir ? tmpdir : "/tmp";
	remove_stale_dirs(tmpdir, "backup-push-", "push", 0);
	remove_stale_dirs(tmpdir, "backup-state-", "push", 3600);
	/* Our lock before the listing: a rotate that starts now keeps every
	 * pack it lists; one that runs already is waited for. */
	rc = push_lock(&t, rm->name, rm->push_wait, &lock);
	if (rc < 0) {
		ret = rc;
		goto out;
	}
	if (list_names(&t, "objects/pack/", &have) < 0 || list_names(&t, "slots/", &slots) < 0 ||
	    list_names(&t, "state/", &states) < 0)
		goto out;
	rendezvous(&t);

	/* 1. What each ref has there: a ref whose value is the newest
	 * manifest's is up to date. */
	res->refs = xcalloc(nrefs ? nrefs : 1, sizeof(*res->refs));
	want = xcalloc(nrefs ? nrefs : 1, sizeof(*want));
	for (i = 0; i < nrefs; i++) {
		struct ref_update *u = &res->refs[res->nrefs];
		const char *ms = refs[i] + strlen("refs/backups/");
		int state = !strcmp(refs[i], REPO_STATE_REF);
		git_oid oid;

		if (!state && (strncmp(refs[i], "refs/backups/", 13) || !strchr(ms, '/')))
			continue;
		if (git_reference_name_to_id(&oid, r->git, refs[i]) < 0) {
			error_git(state ? "cannot read the service state" : "cannot read a slot");
			goto out;
		}
		res->nrefs++;
		u->ref = xstrdup(refs[i]);
		git_oid_tostr(u->new_hex, sizeof(u->new_hex), &oid);
		newest_commit(state ? &states : &slots, state ? "" : ms, u->old_hex);
		if (!strcmp(u->old_hex, u->new_hex)) {
			u->status = REF_UPTODATE;
			continue;
		}
		u->status = REF_REFUSED;	/* until its manifest is written */
		if (!state)
			want[nwant++] = oid;
	}

	/* 2. The objects those backups need that the bucket lacks, each pack
	 * before its index. */
	if (nwant) {
		cache = xasprintf("%s/backup/cache/s3-%s", r->path, rm->name);
		if (push_objects(&po, cache, packs, npacks, &have, want, nwant) < 0)
			goto out;
	}

	/* 3. The slots, last: every object they name is there now. */
	for (i = 0; i < res->nrefs; i++) {
		struct ref_update *u = &res->refs[i];
		struct backup_info *b = NULL;
		git_oid oid;
		char *key;

		if (u->status != REF_REFUSED || !strcmp(u->ref, REPO_STATE_REF))
			continue;
		git_oid_fromstr(&oid, u->new_hex);
		if (snapshot_read(r, oid.id, &b) < 0) {
			error("%s names %s, which is not a readable backup; run 'backup check'", u->ref, u->new_hex);
			goto out;
		}
		strbuf_reset(&manifest);
		strbuf_addf(&manifest, "backup slot 1\nref %s\ncommit %s\npushed %s\ncreated %lld\nkind %s\n",
			    u->ref, u->new_hex, pushed, (long long)b->start.tv_sec, b->kind);
		backup_info_free(b);
		for (j = 0; j < po.nnames; j++)
			strbuf_addf(&manifest, "pack %s\n", po.names[j]);
		key = xasprintf("%sslots/%s/%s-%s", t.prefix, u->ref + strlen("refs/backups/"), stamp, u->new_hex);
		rc = put_manifest(&t, key, &manifest);
		free(key);
		if (rc < 0)
			goto out;
		u->status = rc ? REF_UPTODATE : REF_UPDATED;
	}

	/* 4. The service state, in a pack of its own. */
	for (i = 0; i < res->nrefs; i++)
		if (res->refs[i].status == REF_REFUSED && !strcmp(res->refs[i].ref, REPO_STATE_REF) &&
		    push_state(&t, r, &have, &res->refs[i], stamp, pushed, &tmp, progress, res) < 0)
			goto out;
	ret = 0;
out:
	if (t.s3) {
		struct s3_stats st;

		/* Bytes sent, retries and resumed uploads counted as they went. */
		s3_stats(t.s3, &st);
		res->bytes = st.bytes_up;
	}
	lock_delete(&t, lock);
	if (ret) {
		for (i = 0; i < res->nrefs; i++) {
			free(res->refs[i].ref);
			free(res->refs[i].reason);
		}
		free(res->refs);
		res->refs = NULL;
		res->nrefs = 0;
	}
	for (i = 0; i < npacks; i++)
		free(packs[i]);
	free(packs);
	free(want);
	free(cache);
	push_objects_release(&po);
	push_tmp_release(&tmp);
	names_release(&have);
	names_release(&slots);
	names_release(&states);
	strbuf_release(&manifest);
	ts3_close(&t);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	res->seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	return ret;
}

/* Whether the pack at fd (size bytes) ends in the SHA-1 of what precedes
 * it, and that is sum. */
static int pack_intact(int fd, uint64_t size, const unsigned char sum[SHA1_LEN])
{
	unsigned char trailer[SHA1_LEN], got[SHA1_LEN];
	struct sha1_ctx c;
	size_t bufsize = 1 << 20;
	char *buf;
	uint64_t off = 0, left;

	if (size < 12 + SHA1_LEN || pread(fd, trailer, SHA1_LEN, size - SHA1_LEN) != SHA1_LEN ||
	    memcmp(trailer, sum, SHA1_LEN))
		return 0;
	buf = xmalloc(bufsize);
	sha1_init(&c);
	for (left = size - SHA1_LEN; left;) {
		ssize_t n = pread(fd, buf, left < bufsize ? left : bufsize, off);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		sha1_update(&c, buf, n);
		off += n;
		left -= n;
	}
	sha1_final(&c, got);
	free(buf);
	return !left && !memcmp(got, trailer, SHA1_LEN);
}

/* Downloads key with client s3 into a new temporary file of the pack
 * folder, fsynced; sets *tmp (the caller removes or renames it). */
static int get_tmp(struct s3 *s3, struct repo *r, const char *key, const char *kind,
		   char **tmp, int *fdp)
{
	int fd, ret;

	*tmp = xasprintf("%s/tmp_%s_XXXXXX", r->pack_dir, kind);
	fd = mkstemp(*tmp);
	if (fd < 0) {
		ret = error("cannot create a file in '%s': %s", r->pack_dir, strerror(errno));
		free(*tmp);
		*tmp = NULL;
		return ret;
	}
	ret = s3_get_fd(s3, key, 0, 0, fd, NULL);
	if (!ret && (fchmod(fd, 0400) < 0 || fsync(fd) < 0))
		ret = error("cannot write '%s': %s", *tmp, strerror(errno));
	if (ret == ERR_NOTFOUND)
		ret = error("'%s' vanished from the bucket during the fetch", s3_name(s3, key));
	if (ret) {
		close(fd);
		unlink(*tmp);
		free(*tmp);
		*tmp = NULL;
		return ret;
	}
	*fdp = fd;
	return 0;
}

/*
 * The packs a fetch receives, shared by its download streams: each takes
 * the next name, downloads and verifies it with its own client, then puts
 * it in place holding the lock, so that packs land one at a time (and a
 * test's kill after N packs finds exactly N in place).
 */
#define FETCH_STREAMS 3

struct fetch_queue {
	struct ts3 *t;
	struct repo *r;
	char **names;
	size_t n, next;
	int progress;
	int failed;
	pthread_mutex_t lock;
	struct transfer_result *res;
	/* Tests (BACKUP_TEST_S3_FETCH_BARRIER): each stream, its first pack
	 * received and verified, waits until every stream has one (or a
	 * minute), so that a kill after one pack finds the others received
	 * and not yet in place. */
	int barrier;
	size_t streams, arrived;
	pthread_cond_t cond;
};

struct fetch_stream {
	struct fetch_queue *q;
	struct s3 *s3;
	pthread_t thread;
	int waited;
};

static void fetch_barrier(struct fetch_queue *q)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	pthread_mutex_lock(&q->lock);
	q->arrived++;
	pthread_cond_broadcast(&q->cond);
	while (q->arrived < q->streams && !q->failed)
		if (pthread_cond_timedwait(&q->cond, &q->lock, &until))
			break;
	pthread_mutex_unlock(&q->lock);
}

/*
 * Brings pack name (and its index) from the bucket, in the local write
 * order: both downloaded and fsynced under temporary names, the index's
 * checksum and structure and the pack's checksum verified against each
 * other, then the pack renamed into place, then its index.
 */
static int fetch_pack(struct fetch_stream *fs, const char *name)
{
	struct fetch_queue *q = fs->q;
	struct s3 *s3 = fs->s3;
	struct ts3 *t = q->t;
	struct repo *r = q->r;
	char *pkey = xasprintf("%sobjects/pack/%s.pack", t->prefix, name);
	char *ikey = xasprintf("%sobjects/pack/%s.idx", t->prefix, name);
	char *ptmp = NULL, *itmp = NULL, *pfinal = NULL, *ifinal = NULL;
	struct packidx idx;
	int pfd = -1, ifd = -1, have_idx = 0, ret;
	struct stat st;

	memset(&idx, 0, sizeof(idx));
	ret = get_tmp(s3, r, pkey, "pack", &ptmp, &pfd);
	if (!ret)
		ret = get_tmp(s3, r, ikey, "idx", &itmp, &ifd);
	if (ret)
		goto out;
	if (packidx_read(&idx, itmp) < 0) {
		ret = error("'%s' is not a valid pack index", s3_name(s3, ikey));
		goto out;
	}
	have_idx = 1;
	if (fstat(pfd, &st) < 0 || !pack_intact(pfd, st.st_size, idx.pack_sum)) {
		ret = error("'%s' does not match its index, or is damaged", s3_name(s3, pkey));
		goto out;
	}
	if (q->barrier && !fs->waited) {
		fs->waited = 1;
		fetch_barrier(q);
	}
	pfinal = xasprintf("%s/%s.pack", r->pack_dir, name);
	ifinal = xasprintf("%s/%s.idx", r->pack_dir, name);
	pthread_mutex_lock(&q->lock);
	if (rename(ptmp, pfinal) < 0 || fsync_dir(r->pack_dir) < 0 || rename(itmp, ifinal) < 0 ||
	    fsync_dir(r->pack_dir) < 0) {
		ret = error("cannot put '%s' in '%s': %s", name, r->pack_dir, strerror(errno));
		pthread_mutex_unlock(&q->lock);
		goto out;
	}
	free(ptmp);
	free(itmp);
	ptmp = itmp = NULL;
	q->res->objects += idx.nr;
	q->res->bytes += st.st_size;
	if (++t->packs_fetched == t->kill_after_packs)
		raise(SIGKILL);
	pthread_mutex_unlock(&q->lock);
out:
	if (have_idx)
		packidx_release(&idx);
	if (pfd >= 0)
		close(pfd);
	if (ifd >= 0)
		close(ifd);
	if (ptmp)
		unlink(ptmp);
	if (itmp)
		unlink(itmp);
	free(ptmp);
	free(itmp);
	free(pfinal);
	free(ifinal);
	free(pkey);
	free(ikey);
	return ret;
}

/* One download stream: packs from the queue until it is empty, one fails
 * or an interrupt comes. */
static void *fetch_stream_run(void *arg)
{
	struct fetch_stream *fs = arg;
	struct fetch_queue *q = fs->q;

	for (;;) {
		const char *name = NULL;

		pthread_mutex_lock(&q->lock);
		if (!q->failed && !interrupted && q->next < q->n)
			name = q->names[q->next++];
		pthread_mutex_unlock(&q->lock);
		if (!name)
			break;
		if (q->progress)
			fprintf(stderr, "receiving %s\n", name);
		if (fetch_pack(fs, name) < 0) {
			pthread_mutex_lock(&q->lock);
			q->failed = 1;
			pthread_cond_broadcast(&q->cond);
			pthread_mutex_unlock(&q->lock);
			break;
		}
	}
	return NULL;
}

/* The number of download streams: FETCH_STREAMS, or for measurements
 * BACKUP_TEST_S3_STREAMS (1 to 8). */
static size_t fetch_streams(void)
{
	const char *e = getenv("BACKUP_TEST_S3_STREAMS");
	long v = e ? strtol(e, NULL, 10) : 0;

	return v >= 1 && v <= 8 ? (size_t)v : FETCH_STREAMS;
}

/*
 * Receives the packs names[0..n) over up to fetch_streams() connections
 * at once (each a client of its own; this thread drives the first with
 * t's). Memory stays bounded: every pack streams to its file. Returns 0,
 * or -1 once every stream has stopped, after the first failure's message.
 */
static int fetch_packs(struct ts3 *t, struct repo *r, char **names, size_t n, int progress,
		       struct transfer_result *res)
{
	struct fetch_queue q = { .t = t, .r = r, .names = names, .n = n, .progress = progress, .res = res };
	struct fetch_stream fs[8];
	size_t want = fetch_streams(), k, started = 1;
	sigset_t all, old;

	if (!n)
		return 0;
	if (want > n)
		want = n;
	q.barrier = getenv("BACKUP_TEST_S3_FETCH_BARRIER") != NULL;
	q.streams = want;
	pthread_mutex_init(&q.lock, NULL);
	pthread_cond_init(&q.cond, NULL);
	fs[0] = (struct fetch_stream){ .q = &q, .s3 = t->s3 };
	/* Signals stay with this thread: the streams only see the flag. */
	/* The workers take no signal meant for the process, but a fault
	 * of their own still kills it. */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (k = 1; k < want; k++) {
		fs[k] = (struct fetch_stream){ .q = &q };
		if (s3_dup(&fs[k].s3, t->s3) < 0)
			break;
		if (pthread_create(&fs[k].thread, NULL, fetch_stream_run, &fs[k])) {
			s3_free(fs[k].s3);
			break;
		}
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_lock(&q.lock);
	q.streams = started;
	pthread_cond_broadcast(&q.cond);
	pthread_mutex_unlock(&q.lock);
	fetch_stream_run(&fs[0]);
	for (k = 1; k < started; k++) {
		pthread_join(fs[k].thread, NULL);
		s3_free(fs[k].s3);
	}
	pthread_mutex_destroy(&q.lock);
	pthread_cond_destroy(&q.cond);
	if (q.failed)
		return -1;
	if (interrupted)
		return error("interrupted; the packs received stay, the next fetch continues");
	return 0;
}

/* A name as a machine's or a slot's: [A-Za-z0-9_.-], not first '.'. */
static int plain_name(const char *s, size_t len)
{
	size_t i;

	if (!len || s[0] == '.')
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return 0;
	return 1;
}

/* Whether a key under slots/ is MACHINE/SLOT/TIME-COMMIT with plain names:
 * the bucket is not trusted to name refs. */
static int slot_key(const char *n)
{
	const char *s1 = strchr(n, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	const char *dash = s2 ? strrchr(s2, '-') : NULL;

	return s2 && !strchr(s2 + 1, '/') && plain_name(n, s1 - n) &&
	       plain_name(s1 + 1, s2 - s1 - 1) && dash && strlen(dash + 1) == 40;
}

/* The commit a manifest names, checked against the key it is under. */
static int read_manifest(struct ts3 *t, const char *key, const char *ref, char hex[41])
{
	struct strbuf sb = STRBUF_INIT;
	char *want = xasprintf("ref %s\n", ref);
	const char *c, *head = strcmp(ref, REPO_STATE_REF) ? "backup slot 1\n" : "backup state 1\n";
	int ret = s3_get_buf(t->s3, key, 0, 0, &sb);

	if (!ret) {
		c = strstr(sb.buf, "\ncommit ");
		if (strncmp(sb.buf, head, strlen(head)) || !strstr(sb.buf, want) || !c ||
		    strspn(c + 8, "0123456789abcdef") != 40 || c[48] != '\n' ||
		    memcmp(c + 8, key + strlen(key) - 40, 40))
			ret = error("'%s' is not a slot manifest", s3_name(t->s3, key));
		else
			memcpy(hex, c + 8, 40), hex[40] = '\0';
	}
	free(want);
	strbuf_release(&sb);
	return ret;
}

/* One manifest, as read. */
struct manifest {
	char hex[41];
	time_t created;		/* 0 when not given */
	char kind[16];
	char **packs;
	size_t npacks;
};

static void manifest_release(struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->npacks; i++)
		free(m->packs[i]);
	free(m->packs);
	memset(m, 0, sizeof(*m));
}

/* Reads the manifest at key (of ref) with its created, kind and packs. */
static int manifest_get(struct ts3 *t, const char *key, const char *ref, struct manifest *m)
{
	struct strbuf sb = STRBUF_INIT;
	char *line, *save = NULL;
	int ret;

	memset(m, 0, sizeof(*m));
	ret = read_manifest(t, key, ref, m->hex);
	if (!ret)
		ret = s3_get_buf(t->s3, key, 0, 0, &sb);
	if (ret) {
		strbuf_release(&sb);
		return ret == ERR_NOTFOUND ? error("'%s' vanished from the bucket", s3_name(t->s3, key)) : ret;
	}
	for (line = strtok_r(sb.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "created ", 8))
			m->created = (time_t)strtoll(line + 8, NULL, 10);
		else if (!strncmp(line, "kind ", 5))
			snprintf(m->kind, sizeof(m->kind), "%s", line + 5);
		else if (!strncmp(line, "pack pack-", 10) && !strchr(line + 5, '/')) {
			m->packs = xrealloc(m->packs, (m->npacks + 1) * sizeof(*m->packs));
			m->packs[m->npacks++] = xstrdup(line + 5);
		}
	}
	strbuf_release(&sb);
	return 0;
}

static int ts3_fetch(struct repo *r, const struct remote *rm, int progress, struct transfer_result *res)
{
	struct ts3 t;
	struct names have = { 0 }, slots = { 0 }, states = { 0 };
	struct timespec t0, t1;
	struct manifest m;
	char **packs = NULL, **want = NULL;
	size_t npacks = 0, nwant = 0, i, j;
	int ret = -1, added = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(res, 0, sizeof(*res));
	if (ts3_open(&t, r, rm) < 0)
		return -1;
	if (local_packs(r, &packs, &npacks) < 0 ||
	    list_names(&t, "objects/pack/", &have) < 0 || list_names(&t, "slots/", &slots) < 0 ||
	    list_names(&t, "state/", &states) < 0)
		goto out;
	/* 1. Every complete pack (its index is there) this repository lacks. */
	for (i = 0; i < have.nr; i++) {
		const char *n = have.v[i].name;
		size_t len = pack_stem(n);
		char *name, *idx;

		if (!len)
			continue;
		name = xstrndup(n, len);
		idx = xasprintf("%s.idx", name);
		for (j = 0; j < npacks && strcmp(packs[j], name); j++)
			;
		if (j == npacks && names_has(&have, idx)) {
			want = xrealloc(want, (nwant + 1) * sizeof(*want));
			want[nwant++] = name;
			name = NULL;
		}
		free(name);
		free(idx);
	}
	if (fetch_packs(&t, r, want, nwant, progress, res) < 0)
		goto out;
	added = nwant > 0;
	if (added && git_odb_refresh(r->odb) < 0) {
		error_git("cannot read the new packs");
		goto out;
	}
	/* 2. Each slot's newest manifest (the last of its slot in key order),
	 * then the newest state manifest. */
	res->refs = xcalloc(slots.nr + 2, sizeof(*res->refs));
	for (i = 0; i <= slots.nr; i++) {
		const char *n = i < slots.nr ? slots.v[i].name : NULL, *last = n ? strrchr(n, '/') : NULL;
		struct ref_update *u;
		git_oid oid;
		char *key;

		if (!n) {
			/* The state: TIME-COMMIT, the last of them. */
			for (j = states.nr; j > 0 && (strchr(states.v[j - 1].name, '/') ||
						       !ends_in_commit(states.v[j - 1].name)); j--)
				;
			if (!j)
				break;
			u = &res->refs[res->nrefs++];
			u->ref = xstrdup(REPO_STATE_REF);
			key = xasprintf("%sstate/%s", t.prefix, states.v[j - 1].name);
		} else {
			/* MACHINE/SLOT/TIME-COMMIT, and the last of its slot. */
			if (!slot_key(n) || (i + 1 < slots.nr && !strncmp(slots.v[i + 1].name, n, last - n + 1)))
				continue;
			u = &res->refs[res->nrefs++];
			u->ref = xasprintf("refs/backups/%.*s", (int)(last - n), n);
			key = xasprintf("%sslots/%s", t.prefix, n);
		}
		ret = n ? manifest_get(&t, key, u->ref, &m) : read_manifest(&t, key, u->ref, u->new_hex);
		free(key);
		if (ret)
			goto out;
		ret = -1;
		if (n) {
			/* A slot whose packs are not all there is not taken: its
			 * objects would be missing here. */
			memcpy(u->new_hex, m.hex, sizeof(u->new_hex));
			for (j = 0; j < m.npacks && pack_there(&have, m.packs[j]); j++)
				;
			if (j < m.npacks) {
				u->status = REF_REFUSED;
				u->reason = xasprintf("its manifest slots/%s names %s, which is not on the bucket "
						      "(with its index); the slot is skipped", n, m.packs[j]);
				manifest_release(&m);
				continue;
			}
			manifest_release(&m);
		}
		if (git_oid_fromstr(&oid, u->new_hex) < 0 || !git_odb_exists(r->odb, &oid)) {
			error("remote '%s' names %s for %s, which none of its packs holds", rm->name,
			      u->new_hex, u->ref);
			goto out;
		}
		if (git_reference_name_to_id(&oid, r->git, u->ref) == 0)
			git_oid_tostr(u->old_hex, sizeof(u->old_hex), &oid);
		u->status = strcmp(u->old_hex, u->new_hex) ? REF_UPDATED : REF_UPTODATE;
	}
	ret = 0;
out:
	for (i = 0; i < npacks; i++)
		free(packs[i]);
	free(packs);
	for (i = 0; i < nwant; i++)
		free(want[i]);
	free(want);
	names_release(&have);
	names_release(&slots);
	names_release(&states);
	ts3_close(&t);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	res->seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	return ret;
}

/*
 * Retention on the bucket (rotate --remote).
 *
 * The bucket's kept backups are the commits of each slot's newest manifest.
 * The seed's rules (slots_plan_rules()) judge them by the created and kind
 * lines of those manifests, with the weekly day of the machine's schedule
 * in the bucket's newest service state (none without one: weekly and
 * biweekly then stay as they are); a slot the rules move gets a new manifest, then every manifest no
 * slot value is goes, oldest first within its slot, stopping at the first
 * one that cannot go (so that a slot never falls back to an older value),
 * and of the state manifests every one but the newest. The packs that no
 * remaining manifest names then go, each index before its pack (a fetch
 * takes a pack only with its index). A pack younger than PACK_GRACE stays:
 * a push may have sent it and not yet written the manifest that names it.
 * A pack that a remaining manifest names but that holds dead objects is
 * repacked first (see repack()).
 * On a bucket with Object Lock a deletion removes the version itself, which
 * the server refuses while it is locked: that object stays, and is counted.
 */
#define PACK_GRACE 86400

/*
 * Deletes key for good: on a bucket with versions (Object Lock) the
 * version itself, not a delete marker that would hide a kept object.
 * Returns 0 (size bytes more in *bytes), 1 when Object Lock kept it
 * (counted in out), or an error.
 */
static int delete_for_good(struct ts3 *t, const char *key, struct remote_rotate *out)
{
	struct s3_object o = { 0 };
	int rc = s3_head(t->s3, key, &o);

	if (rc == ERR_NOTFOUND)
		return 0;
	if (!rc)
		rc = s3_delete(t->s3, key, o.version_id);
	if (rc == S3_ERR_LOCKED) {
		out->locked++;
		if (o.lock_until > out->locked_until)
			out->locked_until = o.lock_until;
		rc = 1;
	} else if (!rc) {
		out->bytes_deleted += o.size;
	}
	s3_object_release(&o);
	return rc;
}

/* A slot's manifests on the bucket: names[first..first+n) of slots/. */
struct slot_group {
	char *machine, *slot;
	size_t first, n;
	unsigned bit;
	struct manifest newest;
	ssize_t holder;		/* its plan entry, or -1 */
	int moved;		/* the rules give it another value */
};

static int want_machine(const char *m, const char *const *machines, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(machines[i], m))
			return 1;
	return !n;
}

/* Adds a plan (or finds the machine's). */
static struct slot_plan *plan_of(struct remote_rotate *out, const char *machine)
{
	size_t i;

	for (i = 0; i < out->nplans; i++)
		if (!strcmp(out->plans[i].machine, machine))
			return &out->plans[i];
	out->plans = xrealloc(out->plans, (out->nplans + 1) * sizeof(*out->plans));
	memset(&out->plans[out->nplans], 0, sizeof(*out->plans));
	out->plans[out->nplans].machine = xstrdup(machine);
	return &out->plans[out->nplans++];
}

static int cmp_change(const void *a, const void *b)
{
	const struct slot_change *x = a, *y = b;

	return x->created < y->created ? 1 : x->created > y->created ? -1 : 0;
}

static int live_add(struct names *live, const struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->npacks; i++) {
		struct s3_object o = { 0 };

		o.key = m->packs[i];
		add_name(&o, live);
	}
	return 0;
}

/*
 * The bucket's objects, as retention reads them: the repository's own, and
 * packs of the bucket brought when needed (verified against their indexes)
 * into a temporary folder TMPDIR/backup-rotate-XXXXXX/pack/, removed at the
 * end. A host that pushed to the bucket has most of them already; a new one
 * downloads the packs that hold what it reads (the state, the commits and
 * trees of the kept backups) and the packs it repacks.
 */
struct bpack {
	char *name;		/* pack-H */
	uint64_t size;		/* of its .pack on the bucket */
	time_t mtime;
	int loaded;		/* idx read */
	char *path;		/* of its .pack here, once here */
	struct strbuf raw;	/* its index's bytes, when read from the bucket */
	struct packidx idx;
	int named, blocked, repack;	/* see repack() */
	size_t nlive;
	uint64_t dead;
};

struct bucket_odb {
	struct ts3 *t;
	struct repo *r;
	char *dir;
	int lockfd;		/* an flock on dir while we run */
	git_odb *odb;
	git_repository *git;
	struct bpack *p;
	size_t np;
};

static void bodb_close(struct bucket_odb *b)
{
	size_t i;

	for (i = 0; i < b->np; i++) {
		free(b->p[i].name);
		free(b->p[i].path);
		strbuf_release(&b->p[i].raw);
		if (b->p[i].loaded)
			packidx_release(&b->p[i].idx);
	}
	free(b->p);
	git_repository_free(b->git);
	git_odb_free(b->odb);
	if (b->dir)
		remove_tree(b->dir);
	if (b->lockfd >= 0)
		close(b->lockfd);
	free(b->dir);
	memset(b, 0, sizeof(*b));
	b->lockfd = -1;
}

/* The packs of the listing objs (objects/pack/) that have their index. */
static int bodb_open(struct bucket_odb *b, struct ts3 *t, struct repo *r, const struct names *objs)
{
	const char *tmp = getenv("TMPDIR");
	char *objects = xstrndup(r->pack_dir, strlen(r->pack_dir) - strlen("/pack")), *sub;
	size_t i;
	int ret = -1;

	memset(b, 0, sizeof(*b));
	b->lockfd = -1;
	b->t = t;
	b->r = r;
	for (i = 0; i < objs->nr; i++) {
		const char *n = objs->v[i].name, *dot = strrchr(n, '.');
		char *idx;

		if (strncmp(n, "pack-", 5) || !dot || strchr(n, '/') || strcmp(dot, ".pack"))
			continue;
		idx = xasprintf("%.*s.idx", (int)(dot - n), n);
		if (names_has(objs, idx)) {
			b->p = xrealloc(b->p, (b->np + 1) * sizeof(*b->p));
			memset(&b->p[b->np], 0, sizeof(*b->p));
			b->p[b->np].name = xstrndup(n, dot - n);
			b->p[b->np].size = objs->v[i].size;
			b->p[b->np].mtime = objs->v[i].mtime;
			strbuf_init(&b->p[b->np].raw, 0);
			b->np++;
		}
		free(idx);
	}
	tmp = tmp && *tmp ? tmp : "/tmp";
	remove_stale_dirs(tmp, "backup-rotate-", "rotation", 0);
	b->dir = xasprintf("%s/backup-rotate-XXXXXX", tmp);
	if (!mkdtemp(b->dir)) {
		error("cannot create a temporary folder '%s': %s", b->dir, strerror(errno));
		free(b->dir);
		b->dir = NULL;
		goto out;
	}
	b->lockfd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->lockfd < 0 || flock(b->lockfd, LOCK_EX) < 0) {
		error("cannot lock '%s': %s", b->dir, strerror(errno));
		goto out;
	}
	sub = xasprintf("%s/pack", b->dir);
	if (mkdir(sub, 0700) < 0) {
		error("cannot create '%s': %s", sub, strerror(errno));
		free(sub);
		goto out;
	}
	free(sub);
	if (git_odb_new(&b->odb) < 0 || git_odb_add_disk_alternate(b->odb, objects) < 0 ||
	    git_odb_add_disk_alternate(b->odb, b->dir) < 0 || git_repository_wrap_odb(&b->git, b->odb) < 0) {
		error_git("cannot read the repository's objects");
		goto out;
	}
	ret = 0;
out:
	free(objects);
	return ret;
}

static struct bpack *bodb_find(struct bucket_odb *b, const char *name)
{
	size_t i;

	for (i = 0; i < b->np; i++)
		if (!strcmp(b->p[i].name, name))
			return &b->p[i];
	return NULL;
}

/* Reads the index of p: the repository's copy when it has the pack (the
 * name is the content's), else the bucket's. */
static int bpack_load(struct bucket_odb *b, struct bpack *p)
{
	char *path, *key;
	struct stat st;
	int rc;

	if (p->loaded)
		return 0;
	path = xasprintf("%s/%s.pack", b->r->pack_dir, p->name);
	if (!stat(path, &st)) {
		char *idx = xasprintf("%s/%s.idx", b->r->pack_dir, p->name);

		rc = packidx_read(&p->idx, idx);
		free(idx);
		if (!rc) {
			p->path = path;
			p->loaded = 1;
			return 0;
		}
	}
	free(path);
	key = xasprintf("%sobjects/pack/%s.idx", b->t->prefix, p->name);
	rc = s3_get_buf(b->t->s3, key, 0, 0, &p->raw);
	if (!rc && packidx_parse(&p->idx, p->raw.buf, p->raw.len) < 0)
		rc = error("'%s' is not a valid pack index", s3_name(b->t->s3, key));
	else if (rc == ERR_NOTFOUND)
		rc = error("'%s' vanished from the bucket", s3_name(b->t->s3, key));
	free(key);
	if (!rc)
		p->loaded = 1;
	return rc;
}

/* Brings pack p here (with its index), verified, unless it is here. */
static int bpack_fetch(struct bucket_odb *b, struct bpack *p)
{
	char *key = xasprintf("%sobjects/pack/%s.pack", b->t->prefix, p->name);
	char *tmp = xasprintf("%s/pack/tmp_pack_XXXXXX", b->dir), *dst = NULL, *idx = NULL;
	struct stat st;
	int fd = -1, ret;

	ret = bpack_load(b, p);
	if (ret || p->path)
		goto out;
	fd = mkstemp(tmp);
	if (fd < 0) {
		ret = error("cannot create a file in '%s': %s", b->dir, strerror(errno));
		goto out;
	}
	ret = s3_get_fd(b->t->s3, key, 0, 0, fd, NULL);
	if (ret == ERR_NOTFOUND)
		ret = error("'%s' vanished from the bucket", s3_name(b->t->s3, key));
	if (!ret && (fstat(fd, &st) < 0 || !pack_intact(fd, st.st_size, p->idx.pack_sum)))
		ret = error("'%s' does not match its index, or is damaged", s3_name(b->t->s3, key));
	if (ret)
		goto out;
	dst = xasprintf("%s/pack/%s.pack", b->dir, p->name);
	idx = xasprintf("%s/pack/%s.idx", b->dir, p->name);
	if (rename(tmp, dst) < 0 || write_file_durable(idx, p->raw.buf, p->raw.len, 0400) < 0) {
		ret = error("cannot write '%s': %s", dst, strerror(errno));
		goto out;
	}
	p->path = dst;
	dst = NULL;
	if (git_odb_refresh(b->odb) < 0)
		ret = error_git("cannot read the packs brought from the bucket");
out:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	free(dst);
	free(idx);
	free(key);
	return ret;
}

/* Makes object id readable: 0, or -1 after naming it. */
static int bodb_need(struct bucket_odb *b, const git_oid *id)
{
	size_t i;

	if (git_odb_exists(b->odb, id))
		return 0;
	for (i = 0; i < b->np; i++) {
		if (bpack_load(b, &b->p[i]) < 0)
			return -1;
		if (packidx_find(&b->p[i].idx, id->id) < 0)
			continue;
		if (bpack_fetch(b, &b->p[i]) < 0)
			return -1;
		if (git_odb_exists(b->odb, id))
			return 0;
	}
	return error("object %s is in no pack on the bucket; the bucket is damaged", git_oid_tostr_s(id));
}

static int bmark_tree(struct bucket_odb *b, struct dedup *live, const git_oid *id)
{
	git_tree *tr = NULL;
	size_t i, n;
	int ret = 0;

	if (dedup_has_oid(live, id->id))
		return 0;
	if (bodb_need(b, id) < 0)
		return -1;
	if (git_tree_lookup(&tr, b->git, id) < 0)
		return error("tree %s of a kept backup on the bucket cannot be read", git_oid_tostr_s(id));
	dedup_add_oid(live, id->id);
	n = git_tree_entrycount(tr);
	for (i = 0; i < n && !ret; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tr, i);

		if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
			ret = bmark_tree(b, live, git_tree_entry_id(e));
		else
			dedup_add_oid(live, git_tree_entry_id(e)->id);
	}
	git_tree_free(tr);
	return ret;
}

/* Adds commit hex and all it reaches to live, reading commits and trees. */
static int bmark(struct bucket_odb *b, struct dedup *live, const char *hex)
{
	git_commit *c = NULL;
	git_oid id;
	int ret;

	if (git_oid_fromstr(&id, hex) < 0)
		return error("'%s' is no commit", hex);
	if (dedup_has_oid(live, id.id))
		return 0;
	if (bodb_need(b, &id) < 0)
		return -1;
	if (git_commit_lookup(&c, b->git, &id) < 0)
		return error("backup %s on the bucket cannot be read", hex);
	dedup_add_oid(live, id.id);
	ret = bmark_tree(b, live, git_commit_tree_id(c));
	git_commit_free(c);
	return ret;
}

/* The text of the service state whose commit is hex (its blob `state`). */
static int bodb_state_text(struct bucket_odb *b, const char *hex, struct strbuf *out)
{
	git_commit *c = NULL;
	git_tree *tr = NULL;
	git_blob *blob = NULL;
	const git_tree_entry *e;
	git_oid id;
	int ret = -1;

	if (git_oid_fromstr(&id, hex) < 0 || bodb_need(b, &id) < 0)
		return -1;
	if (git_commit_lookup(&c, b->git, &id) < 0 || bodb_need(b, git_commit_tree_id(c)) < 0 ||
	    git_tree_lookup(&tr, b->git, git_commit_tree_id(c)) < 0 || !(e = git_tree_entry_byname(tr, "state")) ||
	    bodb_need(b, git_tree_entry_id(e)) < 0 || git_blob_lookup(&blob, b->git, git_tree_entry_id(e)) < 0) {
		error("the service state %s on the bucket cannot be read", hex);
		goto out;
	}
	strbuf_add(out, git_blob_rawcontent(blob), git_blob_rawsize(blob));
	ret = 0;
out:
	git_blob_free(blob);
	git_tree_free(tr);
	git_commit_free(c);
	return ret;
}

/*
 * Repacking (the last step of retention on the bucket). A manifest names
 * whole packs, and a pack holds what one run wrote, so once a backup has
 * expired a pack may hold objects no kept backup needs beside ones a kept
 * backup does. Such a pack is rewritten when at least REPACK_DEAD_PERCENT
 * of its bytes are dead (restic's prune --max-unused plays that part): its
 * live objects are copied, byte for byte, into new packs (with the other
 * such packs'), which go up with their indexes; then each slot's manifest
 * that names an old pack gets a new one naming the new packs instead (its
 * other lines as they were), the old manifest goes, and the old packs go
 * with every other pack no manifest names. A crash at any step leaves every
 * manifest with all its packs on the bucket: old and new packs both hold
 * the live objects until the last manifest naming an old one is gone. A
 * pack is left whole when a state manifest or a manifest that is not its
 * slot's value names it, when it or a manifest naming it is locked, and
 * when it is younger than PACK_GRACE.
 */
#define REPACK_DEAD_PERCENT 20
#define REPACK_PACK_MAX ((size_t)48 << 20)

/* A manifest on the bucket, as the repack and the last deletions read it. */
struct rman {
	char *key;		/* the whole key */
	char *ref;
	int state;
	int only;		/* the only manifest of its slot: it may be replaced */
	struct manifest m;
};

static void rmans_release(struct rman *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].ref);
		manifest_release(&v[i].m);
	}
	free(v);
}

/* Lists slots/ and state/ and reads every manifest there. */
static int read_rmans(struct ts3 *t, struct rman **out, size_t *nr)
{
	struct names slots = { 0 }, states = { 0 };
	struct rman *v = NULL;
	size_t n = 0, i;
	int ret = -1;

	*out = NULL;
	*nr = 0;
	if (list_names(t, "slots/", &slots) < 0 || list_names(t, "state/", &states) < 0)
		goto out;
	for (i = 0; i < slots.nr + states.nr; i++) {
		int st = i >= slots.nr;
		const char *name = st ? states.v[i - slots.nr].name : slots.v[i].name, *last = strrchr(name, '/');
		struct rman *x;

		if (st ? strchr(name, '/') || !ends_in_commit(name) : !slot_key(name))
			continue;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		x = &v[n++];
		memset(x, 0, sizeof(*x));
		x->state = st;
		x->key = xasprintf("%s%s/%s", t->prefix, st ? "state" : "slots", name);
		x->ref = st ? xstrdup(REPO_STATE_REF) : xasprintf("refs/backups/%.*s", (int)(last - name), name);
		/* The only one of its slot: neither neighbour shares its folder. */
		x->only = !st && !(i > 0 && !strncmp(slots.v[i - 1].name, name, last - name + 1)) &&
			  !(i + 1 < slots.nr && !strncmp(slots.v[i + 1].name, name, last - name + 1));
		if (manifest_get(t, x->key, x->ref, &x->m) < 0)
			goto out;
	}
	ret = 0;
out:
	names_release(&slots);
	names_release(&states);
	if (ret)
		rmans_release(v, n);
	else
		*out = v, *nr = n;
	return ret;
}

static int rman_names(const struct rman *x, const char *pack)
{
	size_t i;

	for (i = 0; i < x->m.npacks; i++)
		if (!strcmp(x->m.packs[i], pack))
			return 1;
	return 0;
}

/* Whether manifest x names a pack this repack rewrites. */
static int rman_names_repacked(const struct rman *x, const struct bucket_odb *b)
{
	size_t j;

	for (j = 0; j < b->np; j++)
		if (b->p[j].repack && rman_names(x, b->p[j].name))
			return 1;
	return 0;
}

struct repack_out {
	struct ts3 *t;
	struct pack_writer *pw;
	const char *dir;	/* where the writer puts its packs */
	char **names;
	size_t n;
};

static int repack_check(const char *dir, const char *name);

/*
 * Makes the objects waiting in the writer a pack, reads it back as a fetch
 * will, sends it (then its index) and removes it here: the temporary
 * folder holds one new pack at a time, at most REPACK_PACK_MAX.
 */
static int repack_flush(struct repack_out *o)
{
	char *name = NULL, *path, *key;
	int ret = pack_writer_flush(o->pw, &name);

	if (ret || !name)
		return ret;
	ret = repack_check(o->dir, name);
	path = xasprintf("%s/%s.pack", o->dir, name);
	key = xasprintf("%sobjects/pack/%s.pack", o->t->prefix, name);
	if (!ret)
		ret = put_file(o->t, path, key);
	unlink(path);
	free(path);
	free(key);
	path = xasprintf("%s/%s.idx", o->dir, name);
	key = xasprintf("%sobjects/pack/%s.idx", o->t->prefix, name);
	if (!ret)
		ret = put_file(o->t, path, key);
	unlink(path);
	free(path);
	free(key);
	if (!ret) {
		o->names = xrealloc(o->names, (o->n + 1) * sizeof(*o->names));
		o->names[o->n++] = name;
	} else {
		free(name);
	}
	return ret;
}

static int repack_moved(const unsigned char *oid, void *arg)
{
	struct repack_out *o = arg;

	(void)oid;
	return pack_writer_full(o->pw) ? repack_flush(o) : 0;
}

static int cmp_offset_of(const void *a, const void *b, void *arg)
{
	const uint64_t *off = arg;
	uint64_t x = off[*(const size_t *)a], y = off[*(const size_t *)b];

	return x < y ? -1 : x > y;
}

/* A ranged read of the repack gets at most this many bytes at once. */
#define REPACK_RANGE_MAX ((uint64_t)8 << 20)

/*
 * Copies the live objects of the bucket's pack p into the writer without
 * downloading the pack: ranged GETs of runs of live objects that lie side
 * by side (each at most REPACK_RANGE_MAX, or one object), every object
 * checked against the CRC-32 its index gives (the index passed its
 * checksum) and copied byte for byte, as gc_copy_live() does from a file.
 * Returns 0, 1 when an object is a delta (a pack stock git wrote, whose
 * objects must be read whole: the caller downloads the pack; what was
 * copied is in copied), or -1 after saying why.
 */
static int repack_ranges(struct ts3 *t, struct bpack *p, struct dedup *live, struct dedup *copied,
			 struct repack_out *o)
{
	size_t *order = xcalloc(p->idx.nr + 1, sizeof(*order)), k, first, last;
	uint64_t end = p->size > SHA1_LEN ? p->size - SHA1_LEN : 0;
	char *key = xasprintf("%sobjects/pack/%s.pack", t->prefix, p->name);
	struct strbuf raw = STRBUF_INIT;
	int ret = 0;

	if (p->size < 12 + SHA1_LEN)
		ret = error("'%s' is too short to be a pack", s3_name(t->s3, key));
	for (k = 0; k < p->idx.nr; k++)
		order[k] = k;
	qsort_r(order, p->idx.nr, sizeof(*order), cmp_offset_of, p->idx.offset);
#define STOP(k) ((k) + 1 < p->idx.nr ? p->idx.offset[order[(k) + 1]] : end)
#define WANTED(k) (dedup_has_oid(live, p->idx.oids + order[k] * SHA1_LEN) && \
		   !dedup_has_oid(copied, p->idx.oids + order[k] * SHA1_LEN))
	for (first = 0; first < p->idx.nr && !ret; first = last) {
		uint64_t start, stop, at;

		if (!WANTED(first)) {
			last = first + 1;
			continue;
		}
		/* The run: the next live objects, while they are side by side. */
		for (last = first + 1; last < p->idx.nr && WANTED(last) &&
		     STOP(last) - p->idx.offset[order[first]] <= REPACK_RANGE_MAX; last++)
			;
		start = p->idx.offset[order[first]];
		stop = STOP(last - 1);
		if (stop <= start || stop > end || stop - start > ((uint64_t)1 << 32)) {
			ret = error("the index of '%s' gives impossible offsets; the pack is damaged",
				    s3_name(t->s3, key));
			break;
		}
		strbuf_reset(&raw);
		ret = s3_get_buf(t->s3, key, start, stop - start, &raw);
		if (ret == ERR_NOTFOUND)
			ret = error("'%s' vanished from the bucket", s3_name(t->s3, key));
		if (!ret && raw.len != stop - start)
			ret = error("'%s' ended early: %zu bytes of %llu at offset %llu", s3_name(t->s3, key),
				    raw.len, (unsigned long long)(stop - start), (unsigned long long)start);
		for (k = first, at = 0; k < last && !ret; k++) {
			size_t i = order[k];
			uint64_t len = STOP(k) - p->idx.offset[i];
			const unsigned char *b = (const unsigned char *)raw.buf + at;
			int type = (b[0] >> 4) & 7;

			if (type == 6 || type == 7) {
				ret = 1;
				break;
			}
			if ((uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), b, len) != p->idx.crc[i]) {
				ret = error("object %zu of '%s' does not match its index's CRC; the pack is damaged", i,
					    s3_name(t->s3, key));
				break;
			}
			ret = pack_writer_add_raw(o->pw, p->idx.oids + i * SHA1_LEN, b, len, p->idx.crc[i]);
			if (!ret) {
				dedup_add_oid(copied, p->idx.oids + i * SHA1_LEN);
				ret = repack_moved(p->idx.oids + i * SHA1_LEN, o);
			}
			at += len;
		}
	}
#undef STOP
#undef WANTED
	strbuf_release(&raw);
	free(key);
	free(order);
	return ret;
}

/* Tests: BACKUP_TEST_S3_KILL_REPACK=N dies like a power cut at step N. */
static void repack_kill_point(int step)
{
	const char *v = getenv("BACKUP_TEST_S3_KILL_REPACK");

	if (v && atoi(v) == step)
		raise(SIGKILL);
}

/* 1 when key is locked at now, 0 when not, or an error. */
static int key_locked(struct ts3 *t, const char *key, time_t now)
{
	struct s3_object o = { 0 };
	int rc = s3_head(t->s3, key, &o);

	if (!rc)
		rc = o.lock_until > now;
	else if (rc == ERR_NOTFOUND)
		rc = 0;
	s3_object_release(&o);
	return rc;
}

/* Reads a new pack of the repack back as a fetch will: its index parses
 * (ids strictly increasing) and the pack ends in the sum it names. */
static int repack_check(const char *dir, const char *name)
{
	struct packidx idx;
	char *ipath = xasprintf("%s/%s.idx", dir, name), *ppath = xasprintf("%s/%s.pack", dir, name);
	struct stat st;
	int fd, ret = -1;

	memset(&idx, 0, sizeof(idx));
	if (packidx_read(&idx, ipath) < 0) {
		error("the repack wrote an index that does not read back ('%s'); the repack is "
		      "abandoned before that pack went up, no manifest changed", ipath);
		goto out;
	}
	fd = open(ppath, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !pack_intact(fd, (uint64_t)st.st_size, idx.pack_sum))
		error("the repack wrote a pack that does not read back ('%s'); the repack is "
		      "abandoned before that pack went up, no manifest changed", ppath);
	else
		ret = 0;
	if (fd >= 0)
		close(fd);
	packidx_release(&idx);
out:
	free(ipath);
	free(ppath);
	return ret;
}

static int repack(struct ts3 *t, struct bucket_odb *b, time_t now, long grace, const char *remote, time_t since,
		  struct remote_rotate *out)
{
	struct rman *v = NULL;
	struct dedup *live = NULL, *copied = NULL;
	struct repack_out o = { 0 };
	struct strbuf text = STRBUF_INIT;
	char stamp[48], pushed[32], *outdir = NULL;
	struct timespec wall;
	struct tm tm;
	size_t nv = 0, i, j, nrepack = 0;
	int ret = -1, rc, written = 0;

	if (read_rmans(t, &v, &nv) < 0)
		return -1;
	/* 1. What every manifest's backup (or state) reaches is live. */
	dedup_load(&live, NULL, NULL);
	for (i = 0; i < nv; i++) {
		if (bmark(b, live, v[i].m.hex) < 0) {
			/* What is live is not known: nothing is rewritten, and
			 * the deletions by name (the next step) still run. */
			warning("the backup that '%s' names cannot be read from the bucket or here; no pack is "
				"repacked this time", s3_name(t->s3, v[i].key));
			ret = 0;
			goto out;
		}
		for (j = 0; j < v[i].m.npacks; j++) {
			struct bpack *p = bodb_find(b, v[i].m.packs[j]);

			if (!p)
				continue;
			p->named = 1;
			if (v[i].state || !v[i].only)
				p->blocked = 1;
		}
	}
	/* 2. The packs worth rewriting, and free to go afterwards. */
	for (i = 0; i < b->np; i++) {
		struct bpack *p = &b->p[i];
		char *key;

		if (!p->named || p->blocked || p->mtime <= 0 || now - p->mtime < grace)
			continue;
		if (bpack_load(b, p) < 0)
			goto out;
		for (j = 0, p->nlive = 0; j < p->idx.nr; j++)
			p->nlive += dedup_has_oid(live, p->idx.oids + j * SHA1_LEN);
		p->dead = gc_dead_bytes(&p->idx, live, p->size);
		if (p->nlive && p->dead * 100 < (uint64_t)REPACK_DEAD_PERCENT * p->size)
			continue;
		key = xasprintf("%sobjects/pack/%s.pack", t->prefix, p->name);
		rc = key_locked(t, key, now);
		free(key);
		if (rc < 0)
			goto out;
		p->repack = !rc;
	}
	/* A manifest that cannot go keeps its packs as they are. */
	for (i = 0; i < nv; i++) {
		if (!rman_names_repacked(&v[i], b))
			continue;
		rc = key_locked(t, v[i].key, now);
		if (rc < 0)
			goto out;
		for (j = 0; rc && j < b->np; j++)
			if (rman_names(&v[i], b->p[j].name))
				b->p[j].repack = 0;
	}
	for (i = 0; i < b->np; i++)
		nrepack += b->p[i].repack;
	if (!nrepack) {
		ret = 0;
		goto out;
	}

	/* 3. The new packs, durable here, then on the bucket with their
	 * indexes (each before its index). */
	outdir = xasprintf("%s/out", b->dir);
	if (mkdir(outdir, 0700) < 0) {
		error("cannot create '%s': %s", outdir, strerror(errno));
		goto out;
	}
	o.t = t;
	o.dir = outdir;
	if (pack_writer_new(&o.pw, outdir, REPACK_PACK_MAX) < 0)
		goto out;
	/* Two packs may hold one object (two hosts' runs, the empty blob):
	 * it is copied once, or the new index would list it twice. */
	dedup_load(&copied, NULL, NULL);
	for (i = 0; i < b->np; i++) {
		struct bpack *p = &b->p[i];

		if (!p->repack || !p->nlive)
			continue;
		verbose("repacking %s: %zu of its %zu objects are still needed", p->name, p->nlive, p->idx.nr);
		/* A pack here is read here; one on the bucket alone, by ranges
		 * (whole only when it holds deltas). */
		rc = p->path ? 1 : repack_ranges(t, p, live, copied, &o);
		if (rc == 1 && !p->path)
			verbose("%s holds deltas: it is read whole", p->name);
		if (rc == 1 && (bpack_fetch(b, p) < 0 ||
				gc_copy_live(o.pw, b->odb, p->path, &p->idx, live, copied, repack_moved, &o) < 0))
			goto out;
		if (rc < 0)
			goto out;
	}
	/* The last new pack: each went up (then its index) as it filled. */
	if (repack_flush(&o) < 0)
		goto out;
	repack_kill_point(1);

	/* 4. A new manifest for each slot that names an old pack; then the
	 * old manifest goes. */
	rc = rotate_may_go_on(t, remote, since);
	if (rc < 0) {
		ret = rc;
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &wall);
	gmtime_r(&wall.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	snprintf(stamp + strlen(stamp), sizeof(stamp) - strlen(stamp), ".%06ldZ", wall.tv_nsec / 1000);
	strftime(pushed, sizeof(pushed), "%Y-%m-%dT%H:%M:%SZ", &tm);
	for (i = 0; i < nv; i++) {
		struct manifest *m = &v[i].m;
		const char *last = strrchr(v[i].key, '/');
		char *key;

		if (!rman_names_repacked(&v[i], b))
			continue;
		strbuf_reset(&text);
		strbuf_addf(&text, "backup slot 1\nref %s\ncommit %s\npushed %s\n", v[i].ref, m->hex, pushed);
		if (m->created)
			strbuf_addf(&text, "created %lld\n", (long long)m->created);
		if (*m->kind)
			strbuf_addf(&text, "kind %s\n", m->kind);
		for (j = 0; j < m->npacks; j++) {
			struct bpack *p = bodb_find(b, m->packs[j]);

			if (!p || !p->repack)
				strbuf_addf(&text, "pack %s\n", m->packs[j]);
		}
		for (j = 0; j < o.n; j++)
			strbuf_addf(&text, "pack %s\n", o.names[j]);
		key = xasprintf("%.*s/%s-%s", (int)(last - v[i].key), v[i].key, stamp, m->hex);
		rc = !strcmp(key, v[i].key) ? 1 : put_manifest(t, key, &text);
		if (rc == 1)
			error("cannot write the manifest '%s': it is there already", s3_name(t->s3, key));
		free(key);
		if (rc)
			goto out;
		if (!written++)
			repack_kill_point(2);
	}
	rc = rotate_may_go_on(t, remote, since);
	if (rc < 0) {
		ret = rc;
		goto out;
	}
	for (i = 0; i < nv; i++) {
		if (!rman_names_repacked(&v[i], b))
			continue;
		rc = delete_for_good(t, v[i].key, out);
		if (rc < 0)
			goto out;
		out->manifests_deleted += !rc;
	}
	repack_kill_point(3);
	out->packs_repacked = nrepack;
	out->packs_written = o.n;
	ret = 0;
out:
	if (outdir)
		remove_tree(outdir);
	free(outdir);
	for (i = 0; i < o.n; i++)
		free(o.names[i]);
	free(o.names);
	pack_writer_free(o.pw);
	strbuf_release(&text);
	dedup_free(copied);
	dedup_free(live);
	rmans_release(v, nv);
	return ret;
}

/* Whether a service state's text lists machine: it has its day, or says
 * whether it is enrolled (the host that pushed it schedules it). */
static int state_lists(const struct strbuf *text, const char *machine)
{
	char *kd = xasprintf("machine.%s.day", machine), *ke = xasprintf("machine.%s.enabled", machine);
	char *d = repo_state_text_get(text->buf, text->len, kd), *e = repo_state_text_get(text->buf, text->len, ke);
	int ret = d || e;

	free(kd);
	free(ke);
	free(d);
	free(e);
	return ret;
}

/*
 * The schedule of machine by the newest state on the bucket that lists it
 * (newest, of commit newest_hex, is the bucket's newest state, which the
 * host that pushed last wrote: in a prefix two hosts share it may not list
 * the other's machines, whose older states still may): 1 with *sched set,
 * 0 when no state there lists it, or -1.
 */
static int bucket_schedule(struct bucket_odb *b, const struct names *states, const char *newest_hex,
			   const struct strbuf *newest, const char *machine, struct schedule *sched)
{
	struct strbuf text = STRBUF_INIT;
	size_t i;
	int ret = 0;

	if (state_lists(newest, machine))
		return schedule_get_text(newest->buf, newest->len, machine, sched) < 0 ? -1 : 1;
	for (i = states->nr; i-- > 0 && !ret;) {
		const char *n = states->v[i].name;

		if (strchr(n, '/') || !ends_in_commit(n) || !strcmp(n + strlen(n) - 40, newest_hex))
			continue;
		strbuf_reset(&text);
		if (bodb_state_text(b, n + strlen(n) - 40, &text) < 0)
			break;	/* said; the machine's day stays unknown */
		if (state_lists(&text, machine))
			ret = schedule_get_text(text.buf, text.len, machine, sched) < 0 ? -1 : 1;
	}
	strbuf_release(&text);
	return ret;
}

int transport_s3_rotate(struct repo *r, const struct remote *rm, const char *const *machines,
			size_t nmachines, time_t now, int dry_run, struct remote_rotate *out)
{
	struct ts3 t;
	struct names slots = { 0 }, states = { 0 }, objs = { 0 }, live = { 0 };
	struct slot_group *g = NULL;
	struct bucket_odb b = { .lockfd = -1 };
	struct strbuf state = STRBUF_INIT;
	struct rman *rms = NULL;
	size_t ng = 0, nrms = 0, i, j, k, newest;
	char stamp[48], pushed[32], state_hex[41];
	struct timespec wall;
	struct tm tm;
	long grace = PACK_GRACE;
	char *lock = NULL;
	time_t since = time(NULL);
	int ret = -1, rc, have_state = 0, warned = 0;

	memset(out, 0, sizeof(*out));
	if (ts3_open(&t, r, rm) < 0)
		return -1;
	if (getenv("BACKUP_TEST_S3_GRACE_SECONDS"))
		grace = strtol(getenv("BACKUP_TEST_S3_GRACE_SECONDS"), NULL, 10);
	clock_gettime(CLOCK_REALTIME, &wall);
	gmtime_r(&wall.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	snprintf(stamp + strlen(stamp), sizeof(stamp) - strlen(stamp), ".%06ldZ", wall.tv_nsec / 1000);
	strftime(pushed, sizeof(pushed), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* Our lock before the listing; a push under way has listed the packs
	 * it will name, so while one runs nothing goes (a dry run deletes
	 * nothing and takes none). */
	if (!dry_run) {
		rc = rotate_lock(&t, rm->name, &lock);
		if (rc < 0) {
			ret = rc;
			goto out;
		}
	}
	if (list_names(&t, "slots/", &slots) < 0 || list_names(&t, "state/", &states) < 0 ||
	    list_names(&t, "objects/pack/", &objs) < 0 || bodb_open(&b, &t, r, &objs) < 0)
		goto out;
	/* The weekly days are the bucket's: those of its newest state, which
	 * the host that pushed last wrote, whatever this host's say. */
	newest_commit(&states, "", state_hex);
	if (*state_hex) {
		if (bodb_state_text(&b, state_hex, &state) < 0)
			goto out;
		have_state = 1;
	}

	/* 1. The slots and their newest manifests; each machine's plan. */
	for (i = 0; i < slots.nr; i = j) {
		const char *n = slots.v[i].name, *s1 = strchr(n, '/'), *s2;
		struct slot_group *sg;

		for (j = i + 1; j < slots.nr && slot_key(n) && !strncmp(slots.v[j].name, n, strrchr(n, '/') - n + 1);
		     j++)
			;
		if (!slot_key(n))
			continue;
		s2 = strchr(s1 + 1, '/');
		g = xrealloc(g, (ng + 1) * sizeof(*g));
		sg = &g[ng++];
		memset(sg, 0, sizeof(*sg));
		sg->machine = xstrndup(n, s1 - n);
		sg->slot = xstrndup(s1 + 1, s2 - s1 - 1);
		sg->first = i;
		sg->n = j - i;
		sg->bit = slot_bit(sg->slot);
		sg->holder = -1;
	}
	for (i = 0; i < ng; i++) {
		struct slot_group *sg = &g[i];
		char *key, *ref;

		if (!want_machine(sg->machine, machines, nmachines) || !sg->bit || sg->bit == SLOT_BIT_KEPT)
			continue;
		key = xasprintf("%sslots/%s", t.prefix, slots.v[sg->first + sg->n - 1].name);
		ref = xasprintf("refs/backups/%s/%s", sg->machine, sg->slot);
		rc = manifest_get(&t, key, ref, &sg->newest);
		free(key);
		free(ref);
		if (rc)
			goto out;
		if (!sg->newest.created || !*sg->newest.kind) {
			/* Written before manifests said: the commit may be here. */
			struct backup_info *b = NULL;
			git_oid id;

			if (git_oid_fromstr(&id, sg->newest.hex) == 0 && git_odb_exists(r->odb, &id) &&
			    snapshot_read(r, id.id, &b) == 0) {
				sg->newest.created = b->start.tv_sec;
				snprintf(sg->newest.kind, sizeof(sg->newest.kind), "%s", b->kind);
			}
			backup_info_free(b);
		}
	}
	for (i = 0; i < ng; i++) {
		struct slot_plan *p;
		git_oid oid;

		if (!*g[i].newest.hex)
			continue;
		p = plan_of(out, g[i].machine);
		for (k = 0; k < p->n && strcmp(p->c[k].hex, g[i].newest.hex); k++)
			;
		if (k == p->n) {
			p->c = xrealloc(p->c, (p->n + 1) * sizeof(*p->c));
			memset(&p->c[k], 0, sizeof(p->c[k]));
			memcpy(p->c[k].hex, g[i].newest.hex, sizeof(p->c[k].hex));
			git_oid_fromstr(&oid, g[i].newest.hex);
			memcpy(p->c[k].id, oid.id, SHA1_LEN);
			p->c[k].created = g[i].newest.created;
			p->c[k].automatic = !strcmp(g[i].newest.kind, "automatic");
			p->n++;
		}
		p->c[k].before |= g[i].bit;
	}
	for (i = 0; i < out->nplans; i++) {
		struct slot_plan *p = &out->plans[i];
		struct schedule sched;

		for (k = 0; k < p->n && p->c[k].created; k++)
			;
		if (k < p->n) {
			/* A backup the rules cannot judge: the machine stays as it is. */
			warning("remote '%s': machine '%s' is kept as it is: a slot manifest of %.12s says neither "
				"when nor what kind, and this repository lacks the backup", rm->name, p->machine,
				p->c[k].hex);
			for (k = 0; k < p->n; k++)
				p->c[k].after = p->c[k].before;
			out->unjudged++;
			continue;
		}
		qsort(p->c, p->n, sizeof(*p->c), cmp_change);
		if (have_state) {
			rc = bucket_schedule(&b, &states, state_hex, &state, p->machine, &sched);
			if (rc < 0)
				goto out;
			if (rc) {
				slots_plan_rules(p, sched.weekday, now);
				continue;
			}
			/* Another host's machine, whose states are gone: as with
			 * no state at all, but for this machine alone. */
			warning("remote '%s': no service state on it lists machine '%s' (another host pushed the "
				"newest), so its weekly day is unknown: its weekly and biweekly slots stay as they "
				"are; push the state from the host that schedules it", rm->name, p->machine);
		} else if (!warned++) {
			/* No state on the bucket: no weekly day to judge by, so
			 * no guess; weekly and biweekly stay as they are (but
			 * never past the 14 days), daily follows the rules. */
			warning("remote '%s' holds no service state (state/ is empty), so the machines' weekly days "
				"are unknown: weekly and biweekly slots stay as they are; push the state from the "
				"host that schedules them", rm->name);
		}
		slots_plan_rules(p, -1, now);
		for (k = 0; k < p->n; k++)
			if (now - p->c[k].created <= RET_MAX_AGE)
				p->c[k].after |= p->c[k].before & (SLOT_BIT_WEEKLY | SLOT_BIT_BIWEEKLY);
	}
	for (i = 0; i < ng; i++) {
		struct slot_plan *p;

		if (!*g[i].newest.hex)
			continue;
		p = plan_of(out, g[i].machine);
		for (k = 0; k < p->n; k++)
			if (p->c[k].after & g[i].bit)
				g[i].holder = k;
		g[i].moved = g[i].holder >= 0 && strcmp(p->c[g[i].holder].hex, g[i].newest.hex);
	}
	if (dry_run) {
		ret = 0;
		goto out;
	}

	/*
	 * 2. A slot the rules give to another backup (or a slot the bucket
	 * has no manifest of yet, as biweekly) gets a manifest of its new
	 * value, naming the packs that value's manifest names.
	 */
	rotate_pause();
	if ((rc = rotate_may_go_on(&t, rm->name, since)) < 0) {
		ret = rc;
		goto out;
	}
	for (i = 0; i < out->nplans; i++) {
		struct slot_plan *p = &out->plans[i];

		for (k = 0; k < p->n; k++) {
			const struct slot_change *c = &p->c[k];
			const struct manifest *src = NULL;
			unsigned bit;

			for (j = 0; j < ng && !src; j++)
				if (!strcmp(g[j].machine, p->machine) && !strcmp(g[j].newest.hex, c->hex))
					src = &g[j].newest;
			for (bit = SLOT_BIT_DAILY; bit <= SLOT_BIT_SNAPSHOT; bit <<= 1) {
				struct strbuf text = STRBUF_INIT;
				char name[48], *key;
				size_t x;

				if (!(c->after & bit) || (c->before & bit) || !src)
					continue;
				slot_names(bit, name, sizeof(name));
				strbuf_addf(&text, "backup slot 1\nref refs/backups/%s/%s\ncommit %s\npushed %s\n"
					    "created %lld\nkind %s\n", p->machine, name, c->hex, pushed,
					    (long long)c->created, src->kind);
				for (x = 0; x < src->npacks; x++)
					strbuf_addf(&text, "pack %s\n", src->packs[x]);
				key = xasprintf("%sslots/%s/%s/%s-%s", t.prefix, p->machine, name, stamp, c->hex);
				rc = put_manifest(&t, key, &text);
				free(key);
				strbuf_release(&text);
				if (rc < 0)
					goto out;
				out->manifests_written++;
			}
		}
	}

	/* 3. Every manifest that is no slot's value, oldest first in each
	 * slot, stopping at one that cannot go; then the old states. */
	if ((rc = rotate_may_go_on(&t, rm->name, since)) < 0) {
		ret = rc;
		goto out;
	}
	for (i = 0; i < ng; i++) {
		struct slot_group *sg = &g[i];
		size_t del = sg->holder < 0 || sg->moved ? sg->n : sg->n - 1;

		if (!want_machine(sg->machine, machines, nmachines) || !*sg->newest.hex)
			continue;
		for (k = 0; k < del; k++) {
			char *key = xasprintf("%sslots/%s", t.prefix, slots.v[sg->first + k].name);

			rc = delete_for_good(&t, key, out);
			free(key);
			if (rc < 0)
				goto out;
			if (rc)
				break;
			slots.v[sg->first + k].size = UINT64_MAX;	/* gone */
			out->manifests_deleted++;
		}
	}
	/* Only state manifests go, and never the newest: a stray key that
	 * sorts after it must not make it look old. */
	for (newest = states.nr; newest > 0 && (strchr(states.v[newest - 1].name, '/') ||
						!ends_in_commit(states.v[newest - 1].name)); newest--)
		;
	for (i = 0; i + 1 < newest; i++) {
		char *key;

		if (strchr(states.v[i].name, '/') || !ends_in_commit(states.v[i].name))
			continue;
		key = xasprintf("%sstate/%s", t.prefix, states.v[i].name);
		rc = delete_for_good(&t, key, out);
		free(key);
		if (rc < 0)
			goto out;
		if (rc)
			break;
		states.v[i].size = UINT64_MAX;
		out->manifests_deleted++;
	}

	/* 4. The packs partly dead are repacked (see repack()). */
	if ((rc = repack(&t, &b, wall.tv_sec, grace, rm->name, since, out)) < 0) {
		ret = rc;
		goto out;
	}

	/* 5. The packs the manifests that stay name, then the others go. */
	if (read_rmans(&t, &rms, &nrms) < 0)
		goto out;
	for (i = 0; i < nrms; i++)
		live_add(&live, &rms[i].m);
	qsort(live.v, live.nr, sizeof(*live.v), cmp_name);
	names_release(&objs);
	if ((rc = rotate_may_go_on(&t, rm->name, since)) < 0) {
		ret = rc;
		goto out;
	}
	if (list_names(&t, "objects/pack/", &objs) < 0)
		goto out;
	for (i = 0; i < objs.nr; i++) {
		const char *n = objs.v[i].name, *dot = strrchr(n, '.');
		char *base, *key;

		if (strncmp(n, "pack-", 5) || !dot || strchr(n, '/') || strcmp(dot, ".pack"))
			continue;
		base = xstrndup(n, dot - n);
		if (names_has(&live, base)) {
			free(base);
			continue;
		}
		/* A pack the listing gives no date is as young as can be. */
		if (objs.v[i].mtime <= 0 || wall.tv_sec - objs.v[i].mtime < grace) {
			out->young++;
			free(base);
			continue;
		}
		key = xasprintf("%sobjects/pack/%s.idx", t.prefix, base);
		rc = delete_for_good(&t, key, out);
		free(key);
		if (!rc) {
			key = xasprintf("%sobjects/pack/%s", t.prefix, n);
			rc = delete_for_good(&t, key, out);
			free(key);
		}
		free(base);
		if (rc < 0)
			goto out;
		out->packs_deleted += !rc;
	}
	ret = 0;
out:
	if (t.s3) {
		struct s3_stats st;

		s3_stats(t.s3, &st);
		out->bytes_fetched = st.bytes_down;
	}
	for (i = 0; i < ng; i++) {
		free(g[i].machine);
		free(g[i].slot);
		manifest_release(&g[i].newest);
	}
	free(g);
	rmans_release(rms, nrms);
	bodb_close(&b);
	strbuf_release(&state);
	names_release(&slots);
	names_release(&states);
	names_release(&objs);
	names_release(&live);
	lock_delete(&t, lock);
	ts3_close(&t);
	return ret;
}

void remote_rotate_release(struct remote_rotate *rr)
{
	size_t i;

	for (i = 0; i < rr->nplans; i++)
		slot_plan_release(&rr->plans[i]);
	free(rr->plans);
	memset(rr, 0, sizeof(*rr));
}

const struct transport_ops transport_s3 = {
	.name = "s3",
	.push = ts3_push,
	.fetch = ts3_fetch,
};
