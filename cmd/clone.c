#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "fsutil.h"
#include "remote.h"
#include "usage.h"

static const char *const usage[] = {
	"backup clone [--name REMOTE] [--endpoint URL] [--region REGION] URL [DIR]",
	NULL
};

/*
 * Makes the repository in a temporary folder beside dir and renames it
 * into place at the end: a clone cut short leaves only that folder
 * (".NAME.clone-XXXXXX"), which no command takes for a repository. The
 * clone holds an flock on the folder while it runs (a lock that dies with
 * its process), taken before it writes anything in it; the next clone into
 * the same parent removes the folders of that name whose lock it can take
 * and that are not empty: those a killed clone left.
 */
static void remove_stale_clones(const char *parent, const char *name)
{
	char *prefix = xasprintf(".%s.clone-", name);
	DIR *d = opendir(parent);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char *path;
		int fd;

		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		path = xasprintf("%s/%s", parent, de->d_name);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && dir_is_empty(path) == 0) {
			if (remove_tree(path) == 0)
				warning("removed '%s', which a clone that was killed left", path);
			else
				warning("cannot remove '%s', which a clone that was killed left: %s", path,
					strerror(errno));
		}
		if (fd >= 0)
			close(fd);
		free(path);
	}
	if (d)
		closedir(d);
	free(prefix);
}

/* Sets remote.NAME.key in the new repository's config. */
static int set_remote_key(struct repo *r, const char *name, const char *key, const char *value)
{
	git_config *cfg = NULL;
	char *k = xasprintf("remote.%s.%s", name, key);
	int ret = 0;

	if (git_repository_config(&cfg, r->git) < 0 || git_config_set_string(cfg, k, value) < 0)
		ret = error_git("cannot write the remote's config");
	git_config_free(cfg);
	free(k);
	return ret;
}

/* An S3 remote's endpoint and region, as given (NULL: not given). */
struct s3_where {
	const char *endpoint;
	const char *region;
};

static int clone_into(struct ctx *ctx, const char *url, const char *dir, const char *name,
		      const struct s3_where *s3)
{
	struct transfer_result res = { 0 };
	struct strbuf js = STRBUF_INIT;
	struct remote *rm = NULL;
	struct repo *r = NULL;
	char *copy = xstrdup(dir), *base = xstrdup(dir), *parent, *tmp = NULL;
	int ret = EXIT_ERROR, empty = dir_is_empty(dir), lockfd = -1;
	size_t i;
	struct stat st;

	parent = dirname(copy);
	if (empty == 0 || (empty < 0 && lstat(dir, &st) == 0)) {
		error("'%s' already exists and is not an empty folder; clone into another one", dir);
		goto out;
	}
	if (mkdir_p(parent, 0700) < 0) {
		error("cannot create '%s': %s", parent, strerror(errno));
		goto out;
	}
	remove_stale_clones(parent, basename(base));
	tmp = xasprintf("%s/.%s.clone-XXXXXX", parent, basename(base));
	if (!mkdtemp(tmp)) {
		error("cannot create a folder beside '%s': %s", dir, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	/* Ours while we run: no other clone takes it for a leftover. */
	lockfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lockfd < 0 || flock(lockfd, LOCK_EX) < 0) {
		error("cannot lock '%s': %s", tmp, strerror(errno));
		goto out;
	}
	/* Where an S3 service is goes into the clone's config (never a secret). */
	if (repo_init_for_clone(tmp) < 0 || repo_open(&r, tmp) < 0 || remote_add(r, name, url) < 0 ||
	    (s3->endpoint && set_remote_key(r, name, "endpoint", s3->endpoint) < 0) ||
	    (s3->region && set_remote_key(r, name, "region", s3->region) < 0) ||
	    remote_open(&rm, r, name) < 0)
		goto out;
	if (remote_fetch(r, rm, !ctx->quiet && !ctx->json && isatty(STDERR_FILENO), 1, -1, &res) < 0)
		goto out;
	if (interrupted)
		goto out;
	for (i = 0; i < res.nrefs && strcmp(res.refs[i].ref, REPO_STATE_REF); i++)
		;
	if (i == res.nrefs && !ctx->quiet)
		warning("the remote has no service state (%s: a copy of a format-1 repository, or a receiver); "
			"enrol the machines again with 'backup enable'", REPO_STATE_REF);
	/* What a slot names and the folder itself are durable before the rename. */
	if (fsync_dir(tmp) < 0 || rename(tmp, dir) < 0 || fsync_parent(dir) < 0) {
		error("cannot move the clone to '%s': %s", dir, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	if (ctx->json) {
		strbuf_addstr(&js, "{\"dir\":");
		strbuf_add_json(&js, dir);
	}
	ret = report_fetch(ctx, rm, &res, "cloned", ctx->json ? &js : NULL);
	if (!ctx->quiet && !ctx->json)
		printf("repository '%s' made from %s; its remote '%s' names it\n", dir, url, name);
out:
	if (tmp)
		remove_tree(tmp);
	if (interrupted) {
		error("interrupted: no repository was made at '%s'", dir);
		ret = EXIT_INTERRUPTED;
	}
	if (lockfd >= 0)
		close(lockfd);
	strbuf_release(&js);
	transfer_result_release(&res);
	remote_free(rm);
	repo_free(r);
	free(tmp);
	free(copy);
	free(base);
	return ret;
}

int cmd_clone(int argc, const char **argv, struct ctx *ctx)
{
	const char *name = "origin";
	struct s3_where s3 = { NULL, NULL };
	const struct option_spec opts[] = {
		{ OPT_STRING, 0, "name", &name, "REMOTE", "the remote's name in the new repository (default origin)" },
		{ OPT_STRING, 0, "endpoint", &s3.endpoint, "URL", "an s3:// URL's service (remote.NAME.endpoint; default AWS)" },
		{ OPT_STRING, 0, "region", &s3.region, "REGION", "an s3:// URL's region (remote.NAME.region; default us-east-1)" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	enum remote_kind kind;
	char *url = NULL;
	int ret;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc < 1 || argc > 2)
		return opt_usage_error(usage, "clone needs a URL and at most a folder"), EXIT_USAGE;
	if (!remote_valid_name(name))
		return opt_usage_error(usage, "'%s' cannot name a remote", name), EXIT_USAGE;
	if (remote_parse_url(argv[0], &kind, &url) < 0)
		return EXIT_USAGE;
	if (kind != REMOTE_S3 && (s3.endpoint || s3.region)) {
		free(url);
		return opt_usage_error(usage, "--endpoint and --region are for s3:// URLs only"), EXIT_USAGE;
	}
	if (s3.endpoint && strncmp(s3.endpoint, "http://", 7) && strncmp(s3.endpoint, "https://", 8)) {
		free(url);
		return opt_usage_error(usage, "'%s' is not an S3 endpoint; write it http://HOST[:PORT] or "
				       "https://HOST[:PORT]", s3.endpoint), EXIT_USAGE;
	}
	/* A user or password would be written into the clone's config: not
	 * echoed here either, it may be a secret. */
	if (s3.endpoint) {
		const char *host = strstr(s3.endpoint, "://") + 3;

		if (memchr(host, '@', strcspn(host, "/?#"))) {
			free(url);
			return opt_usage_error(usage, "an S3 endpoint takes no user or password (credentials come "
					       "from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE); "
					       "write it http://HOST[:PORT] or https://HOST[:PORT]"), EXIT_USAGE;
		}
	}
	catch_interrupts();
	if (argc < 2 && ctx_prepare(ctx) < 0) {
		free(url);
		return EXIT_ERROR;
	}
	ret = clone_into(ctx, url, argc == 2 ? argv[1] : ctx->cfg->repo_path, name, &s3);
	free(url);
	return ret;
}
