#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "repo.h"
#include "strbuf.h"
#include "usage.h"

#define FORMAT_LINE "backup repository format %d\n"

int repo_init(const char *path)
{
	git_repository *git = NULL;
	git_repository_init_options opts;
	git_config *cfg = NULL;
	struct strbuf sb = STRBUF_INIT;
	char *p = NULL;
	int ret = -1, empty = dir_is_empty(path);
	struct stat st;

	if (empty == 0 || (empty < 0 && lstat(path, &st) == 0))
		return error("'%s' already exists and is not an empty folder; "
			     "choose another repository path", path);
	if (mkdir_p(path, 0700) < 0)
		return error("cannot create '%s': %s", path, strerror(errno));
	git_repository_init_options_init(&opts, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
	opts.description = "backup repository: see docs/FORMAT.md of backup";
	if (git_repository_init_ext(&git, path, &opts) < 0) {
		error_git("cannot create the repository");
		goto out;
	}
	if (git_repository_config(&cfg, git) < 0 ||
	    git_config_set_string(cfg, "core.logAllRefUpdates", "always") < 0 ||
	    git_config_set_int32(cfg, "gc.auto", 0) < 0 ||
	    git_config_set_bool(cfg, "receive.autogc", 0) < 0) {
		error_git("cannot configure the repository");
		goto out;
	}
	strbuf_addf(&sb, "%s/backup", path);
	p = xasprintf("%s/backup/dedup", path);
	if (mkdir(sb.buf, 0700) < 0 || mkdir(p, 0700) < 0) {
		error("cannot create '%s': %s", p, strerror(errno));
		goto out;
	}
	free(p);
	p = xasprintf("%s/backup/locks", path);
	if (mkdir(p, 0700) < 0) {
		error("cannot create '%s': %s", p, strerror(errno));
		goto out;
	}
	free(p);
	p = xasprintf("%s/backup/state", path);
	if (write_file_durable(p, "", 0, 0600) < 0)
		goto out;
	free(p);
	/* The format file comes last: a repository without it is not one yet. */
	p = xasprintf("%s/backup/format", path);
	strbuf_reset(&sb);
	strbuf_addf(&sb, FORMAT_LINE, REPO_FORMAT);
	if (write_file_durable(p, sb.buf, sb.len, 0600) < 0)
		goto out;
	ret = 0;
out:
	git_config_free(cfg);
	git_repository_free(git);
	strbuf_release(&sb);
	free(p);
	return ret;
}

/*
 * Repositories made before 0.1.1 say gc.auto=false, which stock git takes
 * for a number and refuses ("bad numeric config value") in every fetch
 * into the repository. 0 means the same to git: never repack on its own.
 * A repository that cannot be written keeps the old value.
 */
static void mend_config(git_repository *git)
{
	git_config *cfg = NULL;
	git_buf v = GIT_BUF_INIT;

	if (git_repository_config(&cfg, git) == 0 &&
	    git_config_get_string_buf(&v, cfg, "gc.auto") == 0 &&
	    strspn(v.ptr, "0123456789") != strlen(v.ptr))
		git_config_set_int32(cfg, "gc.auto", 0);
	git_buf_dispose(&v);
	git_config_free(cfg);
}

int repo_open(struct repo **out, const char *path)
{
	struct repo *r = NULL;
	struct strbuf sb = STRBUF_INIT;
	char *fmt = xasprintf("%s/backup/format", path);
	int version = 0, ret = -1;
	char want[64] = "";
	struct stat st;

	*out = NULL;
	if (stat(path, &st) < 0) {
		error("no repository at '%s'; create it with 'backup init' or name it with --repo", path);
		goto out;
	}
	if (strbuf_read_file(&sb, fmt) == 0 && sscanf(sb.buf, "backup repository format %d", &version) == 1)
		snprintf(want, sizeof(want), FORMAT_LINE, version);
	if (version < 1 || strcmp(sb.buf, want)) {
		error("'%s' is not a backup repository (no valid backup/format); "
		      "create one with 'backup init' or name the right one with --repo", path);
		goto out;
	}
	if (version > REPO_FORMAT) {
		error("repository '%s' has format %d, newer than this backup (%d); upgrade backup",
		      path, version, REPO_FORMAT);
		goto out;
	}
	r = xcalloc(1, sizeof(*r));
	r->path = xstrdup(path);
	if (git_repository_open_ext(&r->git, path, GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE, NULL) < 0) {
		error_git("cannot open the repository");
		goto out;
	}
	mend_config(r->git);
	{
		char host[256] = "localhost", *email;

		gethostname(host, sizeof(host) - 1);
		email = xasprintf("backup@%s", host);
		git_repository_set_ident(r->git, "backup", email);
		free(email);
	}
	if (git_repository_odb(&r->odb, r->git) < 0) {
		error_git("cannot open the object database");
		goto out;
	}
	r->pack_dir = xasprintf("%s/objects/pack", path);
	r->dedup_dir = xasprintf("%s/backup/dedup", path);
	r->lock_dir = xasprintf("%s/backup/locks", path);
	r->state_path = xasprintf("%s/backup/state", path);
	*out = r;
	r = NULL;
	ret = 0;
out:
	repo_free(r);
	strbuf_release(&sb);
	free(fmt);
	return ret;
}

void repo_free(struct repo *r)
{
	if (!r)
		return;
	git_odb_free(r->odb);
	git_repository_free(r->git);
	free(r->path);
	free(r->pack_dir);
	free(r->dedup_dir);
	free(r->lock_dir);
	free(r->state_path);
	free(r);
}

static git_config *open_state(struct repo *r)
{
	git_config *cfg = NULL;

	if (git_config_open_ondisk(&cfg, r->state_path) < 0) {
		error_git("cannot read the service state");
		return NULL;
	}
	return cfg;
}

char *repo_state_get(struct repo *r, const char *key)
{
	git_config *cfg = open_state(r);
	git_buf buf = GIT_BUF_INIT;
	char *v = NULL;

	if (cfg && git_config_get_string_buf(&buf, cfg, key) == 0)
		v = xstrdup(buf.ptr);
	git_buf_dispose(&buf);
	git_config_free(cfg);
	return v;
}

int repo_state_get_bool(struct repo *r, const char *key, int def)
{
	git_config *cfg = open_state(r);
	int v = def;

	if (cfg && git_config_get_bool(&v, cfg, key) < 0)
		v = def;
	git_config_free(cfg);
	return v;
}

/*
 * Changes the state file under its own lock (jobs of different machines
 * change it concurrently), which also makes a state.lock left by a killed
 * job safe to remove; then makes the change durable, which libgit2's config
 * writer does not.
 */
static int change_state(struct repo *r, const char *key, const char *value)
{
	char *stale = xasprintf("%s.lock", r->state_path);
	int lock = repo_lock(r, ".state", -1), ret = -1, err;
	git_config *cfg = NULL;

	if (lock < 0)
		goto out;
	unlink(stale);
	cfg = open_state(r);
	if (!cfg)
		goto out;
	err = value ? git_config_set_string(cfg, key, value) : git_config_delete_entry(cfg, key);
	if (err < 0 && !(err == GIT_ENOTFOUND && !value)) {
		error_git("cannot change the service state");
		goto out;
	}
	int fd = open(r->state_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0 || fsync_parent(r->state_path) < 0) {
		error("cannot sync '%s': %s", r->state_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	ret = 0;
out:
	git_config_free(cfg);
	repo_unlock(lock);
	free(stale);
	return ret;
}

int repo_state_set(struct repo *r, const char *key, const char *value)
{
	return change_state(r, key, value);
}

int repo_state_unset(struct repo *r, const char *key)
{
	return change_state(r, key, NULL);
}

static int lock_mode(struct repo *r, const char *name, long wait_seconds, int mode);

int repo_lock(struct repo *r, const char *name, long wait_seconds)
{
	return lock_mode(r, name, wait_seconds, LOCK_EX);
}

int repo_lock_shared(struct repo *r, long wait_seconds)
{
	return lock_mode(r, ".repo", wait_seconds, LOCK_SH);
}

int repo_lock_exclusive(struct repo *r, long wait_seconds)
{
	return lock_mode(r, ".repo", wait_seconds, LOCK_EX);
}

static int lock_mode(struct repo *r, const char *name, long wait_seconds, int mode)
{
	char *path = xasprintf("%s/%s.lock", r->lock_dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	struct timespec start, now;

	if (fd < 0) {
		int ret = error("cannot open the lock '%s': %s", path, strerror(errno));
		free(path);
		return ret;
	}
	free(path);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (flock(fd, mode | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int ret = error("cannot lock '%s': %s", name, strerror(errno));
			close(fd);
			return ret;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (wait_seconds >= 0 && now.tv_sec - start.tv_sec >= wait_seconds) {
			close(fd);
			return ERR_LOCKED;
		}
		usleep(100 * 1000);
	}
}

void repo_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
