/*
 * s3probe — drives lib/s3.c from the shell for tests/90-s3.bats. A test
 * tool, never installed.
 *
 * usage: s3probe [--endpoint URL] [--region R] [--bucket B] [--vhost|--path]
 *                [--retries N] [--backoff-ms N] [--stall SECONDS]
 *                [--max-keys N] [--stats] [--verbose] COMMAND ARGS...
 *
 *   mb [--lock]                  create the bucket (with Object Lock)
 *   rb                           delete the (empty) bucket
 *   put KEY FILE [--create-only] [--lock MODE SECONDS] [--unsigned]
 *                                prints the new version id (or "-")
 *   get KEY FILE [OFF LEN]       FILE "-" writes to stdout
 *   head KEY                     prints "SIZE ETAG VERSION LOCKMODE LOCKUNTIL"
 *   rm KEY [VERSION]
 *   ls [PREFIX]                  prints "KEY SIZE" lines
 *   retain KEY VERSION MODE SECONDS
 *   mpu-put KEY FILE PARTSIZE [--stop-after N]
 *                                a multipart upload of FILE; with
 *                                --stop-after, exits after N parts as if
 *                                interrupted, printing the upload id
 *   mpu-resume KEY FILE PARTSIZE finds the upload of KEY in progress, sends
 *                                the parts it lacks, completes it; prints
 *                                how many parts it sent
 *   mpu-ls [PREFIX]              prints "KEY UPLOADID" lines
 *   mpu-parts KEY UPLOADID       prints "NUMBER SIZE" lines
 *   mpu-abort KEY UPLOADID
 *   fetch REPO REMOTE            the S3 transport's fetch into repository
 *                                REPO from its remote REMOTE; prints
 *                                "REF OLD NEW STATUS" lines (OLD "-" when
 *                                the slot is not here), changes no ref
 *
 * The endpoint defaults to $S3_ENDPOINT, the bucket to $S3_BUCKET, the
 * credentials come as the AWS tools take them (lib/s3cred.c). A failure
 * prints the library's one message on stderr and the name of its code on
 * stdout, and exits with the code's absolute value.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "remote.h"
#include "repo.h"
#include "s3.h"
#include "s3cred.h"
#include "strbuf.h"
#include "usage.h"

static const char *code_name(int ret)
{
	switch (ret) {
	case ERR_NOTFOUND:
		return "ERR_NOTFOUND";
	case ERR_EXISTS:
		return "ERR_EXISTS";
	case ERR_CORRUPT:
		return "ERR_CORRUPT";
	case S3_ERR_DENIED:
		return "S3_ERR_DENIED";
	case S3_ERR_NOBUCKET:
		return "S3_ERR_NOBUCKET";
	case S3_ERR_SKEW:
		return "S3_ERR_SKEW";
	case S3_ERR_UNAVAILABLE:
		return "S3_ERR_UNAVAILABLE";
	case S3_ERR_LOCKED:
		return "S3_ERR_LOCKED";
	default:
		return "ERR_GENERIC";
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: s3probe [options] mb|rb|put|get|head|rm|ls|retain|"
			"mpu-put|mpu-resume|mpu-ls|mpu-abort ARGS...\n");
	exit(2);
}

static int open_in(const char *path, uint64_t *size)
{
	struct stat st;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st))
		die("cannot open '%s': %s", path, strerror(errno));
	*size = st.st_size;
	return fd;
}

static int print_object(const struct s3_object *o, void *data)
{
	(void)data;
	printf("%s %" PRIu64 "\n", o->key, o->size);
	return 0;
}

static int print_upload(const struct s3_upload *u, void *data)
{
	(void)data;
	printf("%s %s\n", u->key, u->upload_id);
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

static void parts_free(struct parts *ps)
{
	int i;

	for (i = 0; i < ps->nr; i++)
		free(ps->p[i].etag);
	free(ps->p);
}

static int collect_part(const struct s3_part *p, void *data)
{
	parts_add(data, p->number, p->etag, p->size);
	return 0;
}

struct find {
	const char *key;
	char *id;
};

static int find_upload(const struct s3_upload *u, void *data)
{
	struct find *f = data;

	if (!strcmp(u->key, f->key) && !f->id)
		f->id = xstrdup(u->upload_id);
	return 0;
}

static int part_cmp(const void *a, const void *b)
{
	return ((const struct s3_part *)a)->number - ((const struct s3_part *)b)->number;
}

/* Sends the parts of FILE that have is missing, then completes; stops
 * after stop_after parts sent when it is positive. */
static int mpu_send(struct s3 *s3, const char *key, const char *id, int fd, uint64_t size,
		    uint64_t part_size, struct parts *have, int stop_after, int *sent)
{
	int number, nr = (int)((size + part_size - 1) / part_size), ret = 0, i;

	if (!nr)
		nr = 1;
	*sent = 0;
	for (number = 1; number <= nr; number++) {
		uint64_t off = (uint64_t)(number - 1) * part_size;
		uint64_t len = size - off < part_size ? size - off : part_size;
		char *etag;
		int found = 0;

		for (i = 0; i < have->nr; i++)
			if (have->p[i].number == number && have->p[i].size == len)
				found = 1;
		if (found)
			continue;
		if (stop_after > 0 && *sent == stop_after)
			return 1;
		ret = s3_mpu_put_part(s3, key, id, number, fd, off, len, &etag);
		if (ret)
			return ret;
		parts_add(have, number, etag, len);
		free(etag);
		(*sent)++;
	}
	qsort(have->p, have->nr, sizeof(*have->p), part_cmp);
	return 0;
}

int main(int argc, char **argv)
{
	struct s3_options opt = { 0 };
	struct s3_cred *cred = NULL;
	struct s3 *s3 = NULL;
	const char *cmd;
	int i, stats = 0, ret = 0;

	opt.endpoint = getenv("S3_ENDPOINT");
	opt.bucket = getenv("S3_BUCKET");
	opt.region = getenv("S3_REGION");
	for (i = 1; i < argc && !strncmp(argv[i], "--", 2); i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--vhost"))
			opt.addressing = S3_ADDR_VHOST;
		else if (!strcmp(a, "--path"))
			opt.addressing = S3_ADDR_PATH;
		else if (!strcmp(a, "--stats"))
			stats = 1;
		else if (!strcmp(a, "--verbose"))
			verbosity = 1;
		else if (i + 1 >= argc)
			usage();
		else if (!strcmp(a, "--endpoint"))
			opt.endpoint = argv[++i];
		else if (!strcmp(a, "--region"))
			opt.region = argv[++i];
		else if (!strcmp(a, "--bucket"))
			opt.bucket = argv[++i];
		else if (!strcmp(a, "--retries"))
			opt.retries = atoi(argv[++i]);
		else if (!strcmp(a, "--backoff-ms"))
			opt.backoff_ms = atoi(argv[++i]);
		else if (!strcmp(a, "--stall"))
			opt.stall_seconds = atol(argv[++i]);
		else if (!strcmp(a, "--max-keys"))
			opt.max_keys = atoi(argv[++i]);
		else
			usage();
	}
	if (i >= argc)
		usage();
	cmd = argv[i++];
	argc -= i;
	argv += i;
	if (!strcmp(cmd, "fetch") && argc == 2) {
		struct transfer_result res = { 0 };
		struct remote *rm = NULL;
		struct repo *r = NULL;
		size_t k;

		git_libgit2_init();
		ret = repo_open(&r, argv[0]);
		if (!ret)
			ret = remote_open(&rm, r, argv[1]);
		if (!ret)
			ret = rm->ops->fetch(r, rm, 0, &res);
		for (k = 0; !ret && k < res.nrefs; k++)
			printf("%s %s %s %s\n", res.refs[k].ref,
			       res.refs[k].old_hex[0] ? res.refs[k].old_hex : "-", res.refs[k].new_hex,
			       res.refs[k].status == REF_UPTODATE ? "up-to-date" : "updated");
		if (!ret && stats)
			fprintf(stderr, "objects %" PRIu64 " bytes %" PRIu64 "\n", res.objects, res.bytes);
		transfer_result_release(&res);
		remote_free(rm);
		repo_free(r);
		git_libgit2_shutdown();
		return ret ? 1 : 0;
	}
	if (s3cred_load(&cred) || s3_open(&s3, &opt, cred)) {
		s3cred_free(cred);
		return 1;
	}
	if (!strcmp(cmd, "mb")) {
		ret = s3_create_bucket(s3, argc > 0 && !strcmp(argv[0], "--lock"));
	} else if (!strcmp(cmd, "rb")) {
		ret = s3_delete_bucket(s3);
	} else if (!strcmp(cmd, "put") && argc >= 2) {
		struct s3_put_options po = { 0 };
		struct s3_object o;
		uint64_t size;
		int fd = open_in(argv[1], &size), j;

		for (j = 2; j < argc; j++) {
			if (!strcmp(argv[j], "--create-only"))
				po.create_only = 1;
			else if (!strcmp(argv[j], "--unsigned"))
				po.unsigned_payload = 1;
			else if (!strcmp(argv[j], "--lock") && j + 2 < argc) {
				po.lock_mode = argv[j + 1];
				po.lock_until = time(NULL) + atol(argv[j + 2]);
				j += 2;
			} else
				usage();
		}
		ret = s3_put_fd(s3, argv[0], fd, 0, size, &po, &o);
		if (!ret)
			printf("%s\n", o.version_id ? o.version_id : "-");
		s3_object_release(&o);
		close(fd);
	} else if (!strcmp(cmd, "get") && (argc == 2 || argc == 4)) {
		int fd = strcmp(argv[1], "-") ? open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644) : 1;

		if (fd < 0)
			die("cannot create '%s': %s", argv[1], strerror(errno));
		ret = s3_get_fd(s3, argv[0], argc == 4 ? strtoull(argv[2], NULL, 10) : 0,
				argc == 4 ? strtoull(argv[3], NULL, 10) : 0, fd, NULL);
		if (fd != 1)
			close(fd);
	} else if (!strcmp(cmd, "head") && argc == 1) {
		struct s3_object o;

		ret = s3_head(s3, argv[0], &o);
		if (!ret)
			printf("%" PRIu64 " %s %s %s %lld\n", o.size, o.etag ? o.etag : "-",
			       o.version_id ? o.version_id : "-", o.lock_mode ? o.lock_mode : "-",
			       o.lock_mode ? (long long)o.lock_until : 0LL);
		s3_object_release(&o);
	} else if (!strcmp(cmd, "rm") && (argc == 1 || argc == 2)) {
		ret = s3_delete(s3, argv[0], argc == 2 ? argv[1] : NULL);
	} else if (!strcmp(cmd, "ls") && argc <= 1) {
		ret = s3_list(s3, argc ? argv[0] : "", print_object, NULL);
	} else if (!strcmp(cmd, "retain") && argc == 4) {
		ret = s3_put_retention(s3, argv[0], argv[1], argv[2], time(NULL) + atol(argv[3]));
	} else if ((!strcmp(cmd, "mpu-put") || !strcmp(cmd, "mpu-resume")) && argc >= 3) {
		struct parts have = { 0 };
		struct find f = { argv[0], NULL };
		uint64_t size, part_size = strtoull(argv[2], NULL, 10);
		int fd = open_in(argv[1], &size), stop_after = 0, sent = 0;

		if (argc == 5 && !strcmp(argv[3], "--stop-after"))
			stop_after = atoi(argv[4]);
		if (!strcmp(cmd, "mpu-resume")) {
			ret = s3_mpu_list(s3, argv[0], find_upload, &f);
			if (!ret && !f.id)
				ret = ERR_NOTFOUND;
			if (!ret)
				ret = s3_mpu_parts(s3, argv[0], f.id, collect_part, &have);
		} else {
			ret = s3_mpu_create(s3, argv[0], NULL, &f.id);
		}
		if (!ret)
			ret = mpu_send(s3, argv[0], f.id, fd, size, part_size, &have, stop_after, &sent);
		if (ret == 1) {
			printf("%s\n", f.id);
			ret = 0;
		} else if (!ret) {
			ret = s3_mpu_complete(s3, argv[0], f.id, have.p, have.nr, NULL, NULL);
			if (!ret)
				printf("%d\n", sent);
		}
		free(f.id);
		parts_free(&have);
		close(fd);
	} else if (!strcmp(cmd, "mpu-ls") && argc <= 1) {
		ret = s3_mpu_list(s3, argc ? argv[0] : "", print_upload, NULL);
	} else if (!strcmp(cmd, "mpu-parts") && argc == 2) {
		struct parts have = { 0 };

		ret = s3_mpu_parts(s3, argv[0], argv[1], collect_part, &have);
		for (i = 0; !ret && i < have.nr; i++)
			printf("%d %" PRIu64 "\n", have.p[i].number, have.p[i].size);
		parts_free(&have);
	} else if (!strcmp(cmd, "mpu-abort") && argc == 2) {
		ret = s3_mpu_abort(s3, argv[0], argv[1]);
	} else {
		usage();
	}
	if (stats) {
		struct s3_stats st;

		s3_stats(s3, &st);
		fprintf(stderr, "requests %" PRIu64 " retries %" PRIu64 " up %" PRIu64 " down %" PRIu64 "\n",
			st.requests, st.retries, st.bytes_up, st.bytes_down);
	}
	s3_free(s3);
	s3cred_free(cred);
	if (ret) {
		printf("%s\n", code_name(ret));
		return ret < 0 ? -ret : 1;
	}
	return fflush(stdout) ? 1 : 0;
}
