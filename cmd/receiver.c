/*
 * receiver.c — backup receiver: the keys of an append-only receiver
 * (authorize), the forced command those keys run (serve) and the
 * pre-receive hook it relies on (hook). See lib/receiver.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "fsutil.h"
#include "receiver.h"
#include "usage.h"

static const char *const usage[] = {
	"backup receiver authorize DIR --machine M... [--append FILE] KEYFILE",
	"backup receiver serve DIR --machine M...",
	"backup receiver hook",
	NULL
};

extern char **environ;

#define MACHINES_ENV "BACKUP_RECEIVER_MACHINES"
/* Set by serve: every ref but the machines' own is hidden from git's client. */
#define HIDDEN_ENV "BACKUP_RECEIVER_HIDDEN"

/* The absolute path of this binary, for the hook and the forced command. */
static char *self_path(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0) {
		error("cannot find the path of backup itself: %s", strerror(errno));
		return NULL;
	}
	buf[n] = '\0';
	return xstrdup(buf);
}

/* Opens DIR and makes sure it is a receiver. */
static int open_receiver(const char *dir, struct repo **out)
{
	if (repo_open(out, dir) < 0)
		return -1;
	if (!receiver_is(*out)) {
		repo_free(*out);
		*out = NULL;
		return error("'%s' is not a receiver; make one with 'backup init --receiver DIR'", dir);
	}
	return 0;
}

static int check_machines(const struct opt_list *m)
{
	int i;

	for (i = 0; i < m->nr; i++)
		if (!valid_name(m->items[i]))
			return opt_usage_error(usage, "'%s' is not a valid machine name", m->items[i]);
	return 0;
}

static int authorize(struct ctx *ctx, const char *dir, const struct opt_list *machines, const char *append,
		     const char *keyfile)
{
	struct strbuf key = STRBUF_INIT;
	struct repo *r = NULL;
	char *exe = NULL, *line = NULL, *abs = realpath(dir, NULL);
	int ret = EXIT_ERROR;

	if (!abs) {
		error("no receiver at '%s': %s; make one with 'backup init --receiver DIR'", dir, strerror(errno));
		goto out;
	}
	if (open_receiver(abs, &r) < 0)
		goto out;
	if (strbuf_read_file(&key, keyfile) < 0) {
		error("cannot read the key file '%s': %s", keyfile, strerror(errno));
		goto out;
	}
	exe = self_path();
	if (!exe)
		goto out;
	line = receiver_key_line(exe, abs, (char *const *)machines->items, machines->nr, key.buf);
	if (!line)
		goto out;
	if (!append) {
		printf("%s\n", line);
	} else {
		int fd = open(append, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		char *text = xasprintf("%s\n", line);

		if (fd < 0 || write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
			error("cannot append to '%s': %s", append, strerror(errno));
			free(text);
			if (fd >= 0)
				close(fd);
			goto out;
		}
		free(text);
		close(fd);
		if (!ctx->quiet)
			printf("appended the key '%s' to '%s'\n", keyfile, append);
	}
	ret = EXIT_OK;
out:
	repo_free(r);
	strbuf_release(&key);
	free(exe);
	free(line);
	free(abs);
	return ret;
}

/* Unsets every GIT_* variable: the client must not steer git (GIT_DIR,
 * GIT_NAMESPACE, GIT_CONFIG_COUNT...), and nothing else of ours may leak. */
static void scrub_environment(void)
{
	char **names = NULL, **e;
	size_t n = 0, i;

	for (e = environ; *e; e++)
		if (!strncmp(*e, "GIT_", 4) || !strncmp(*e, "BACKUP_RECEIVER_", 16)) {
			names = xrealloc(names, (n + 1) * sizeof(*names));
			names[n++] = xstrndup(*e, strcspn(*e, "="));
		}
	for (i = 0; i < n; i++) {
		unsetenv(names[i]);
		free(names[i]);
	}
	free(names);
}

/* A lock that git and its hooks inherit and hold until the last of them exits. */
static int keep_across_exec(int fd)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags < 0 || fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0)
		return error("cannot keep a lock: %s", strerror(errno));
	return 0;
}

static int lock_or_say(int fd, const char *what, int *busy)
{
	if (fd == ERR_LOCKED) {
		*busy = 1;
		return error("the receiver is busy (%s held for %d s); try again later", what, RECEIVER_LOCK_WAIT);
	}
	return fd;
}

static int serve(const char *dir, const struct opt_list *machines)
{
	const char *cmd = getenv("SSH_ORIGINAL_COMMAND"), *service = NULL, *home = getenv("HOME");
	char *path = NULL, *want = NULL, *asked = NULL, *expanded = NULL;
	struct strbuf list = STRBUF_INIT;
	struct repo *r = NULL;
	const char **args = NULL;
	char **hide = NULL;
	size_t na = 0;
	int i, fd, busy = 0;

	if (!machines->nr) {
		error("this key may write no machine's backups (its authorized_keys line names no --machine); "
		      "refused");
		goto fail;
	}
	if (!cmd || !*cmd) {
		error("this key may only push backups to '%s' or fetch them with git; "
		      "interactive logins are refused", dir);
		goto fail;
	}
	if (receiver_parse_command(cmd, &service, &path) < 0) {
		error("refusing the command '%s': this key may only run git-receive-pack or git-upload-pack "
		      "on '%s'", cmd, dir);
		goto fail;
	}
	if (!strncmp(path, "~/", 2) && home)
		expanded = xasprintf("%s/%s", home, path + 2);
	want = realpath(dir, NULL);
	asked = realpath(expanded ? expanded : path, NULL);
	if (!want || !asked || strcmp(want, asked)) {
		error("refusing '%s': this key may use only the repository '%s'", path, dir);
		goto fail;
	}
	if (open_receiver(want, &r) < 0)
		goto fail;
	/* Held while git runs: a rotate on the receiver never reclaims what a
	 * push is writing, nor moves a ref the hook has just checked. */
	fd = lock_or_say(repo_lock_shared(r, RECEIVER_LOCK_WAIT), "the repository", &busy);
	if (fd < 0 || keep_across_exec(fd) < 0)
		goto fail;
	for (i = 0; i < machines->nr && !strcmp(service, "receive-pack"); i++) {
		fd = lock_or_say(repo_lock(r, machines->items[i], RECEIVER_LOCK_WAIT), machines->items[i], &busy);
		if (fd < 0 || keep_across_exec(fd) < 0)
			goto fail;
	}
	scrub_environment();
	args = xcalloc(2 * machines->nr + 10, sizeof(*args));
	hide = xcalloc(machines->nr, sizeof(*hide));
	args[na++] = "git";
	/* A fetch or clone sends objects as they are stored, without a
	 * delta search (zstd blobs, whole trees: it finds next to nothing
	 * and costs the receiver's CPU on every clone). */
	args[na++] = "-c";
	args[na++] = "pack.window=0";
	/* The key sees (and may name) its own machines' refs only. */
	args[na++] = "-c";
	args[na++] = "transfer.hideRefs=refs";
	for (i = 0; i < machines->nr; i++) {
		args[na++] = "-c";
		args[na++] = hide[i] = xasprintf("transfer.hideRefs=!refs/backups/%s", machines->items[i]);
		strbuf_addf(&list, "%s%s", i ? " " : "", machines->items[i]);
	}
	args[na++] = service;
	args[na++] = want;
	args[na] = NULL;
	if (setenv(MACHINES_ENV, list.buf, 1) < 0 || setenv(HIDDEN_ENV, "1", 1) < 0) {
		error("cannot set the environment: %s", strerror(errno));
		goto fail;
	}
	fflush(stdout);
	execvp("git", (char *const *)args);
	error("cannot run git %s: %s", service, strerror(errno));
fail:
	repo_free(r);
	strbuf_release(&list);
	free(path);
	free(want);
	free(asked);
	free(expanded);
	free(args);
	for (i = 0; hide && i < machines->nr; i++)
		free(hide[i]);
	free(hide);
	return busy ? EXIT_BUSY : EXIT_ERROR;
}

/* The machines serve passed on: none when unset or not made of names. */
static size_t hook_machines(char ***out)
{
	const char *env = getenv(MACHINES_ENV);
	char *copy, *tok, *save = NULL, **m = NULL;
	size_t n = 0;

	*out = NULL;
	if (!env)
		return 0;
	copy = xstrdup(env);
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (!valid_name(tok)) {
			while (n)
				free(m[--n]);
			break;
		}
		m = xrealloc(m, (n + 1) * sizeof(*m));
		m[n++] = xstrdup(tok);
	}
	free(copy);
	*out = m;
	return n;
}

static int hook(void)
{
	const char *quarantine = getenv("GIT_QUARANTINE_PATH"), *gitdir = getenv("GIT_DIR");
	struct receiver_update *u = NULL;
	struct repo *r = NULL;
	char **machines = NULL, *dir = realpath(gitdir ? gitdir : ".", NULL), line[1024];
	size_t nm = hook_machines(&machines), n = 0, i, k;
	int ret = EXIT_ERROR, c, *verdicts = NULL;

	if (!dir) {
		error("cannot find the receiver: %s", strerror(errno));
		goto out;
	}
	if (open_receiver(dir, &r) < 0)
		goto out;
	/* The pushed objects wait in a quarantine until the hook accepts them. */
	if (quarantine && git_odb_add_disk_alternate(r->odb, quarantine) < 0) {
		error_git("cannot read the pushed objects");
		goto out;
	}
	while (fgets(line, sizeof(line), stdin)) {
		char old[GIT_OID_HEXSZ + 1], new[GIT_OID_HEXSZ + 1], ref[900];

		if (sscanf(line, "%40s %40s %899s", old, new, ref) != 3) {
			error("cannot read the hook's input '%s'", line);
			goto out;
		}
		u = xrealloc(u, (n + 1) * sizeof(*u));
		if (git_oid_fromstr(&u[n].old, old) < 0 || git_oid_fromstr(&u[n].new, new) < 0) {
			error("cannot read the hook's input '%s'", line);
			goto out;
		}
		u[n++].ref = xstrdup(ref);
	}
	verdicts = xcalloc(n + 1, sizeof(*verdicts));
	c = receiver_check(r, machines, nm, getenv(HIDDEN_ENV) != NULL, u, n, now_utc().tv_sec, verdicts);
	if (c != 0)
		goto out;
	/* What git refuses (hidden refs) is no update of ours. */
	for (i = 0, k = 0; i < n; i++)
		if (verdicts[i] == 0)
			u[k++] = u[i];
		else
			free(u[i].ref);
	n = k;
	if (receiver_keep_replaced(r, u, n, now_utc().tv_sec) < 0 ||
	    receiver_learn_weekly_day(r, u, n, now_utc().tv_sec) < 0)
		goto out;
	ret = EXIT_OK;
out:
	for (i = 0; i < n; i++)
		free(u[i].ref);
	free(u);
	free(verdicts);
	for (i = 0; i < nm; i++)
		free(machines[i]);
	free(machines);
	free(dir);
	repo_free(r);
	return ret;
}

int cmd_receiver(int argc, const char **argv, struct ctx *ctx)
{
	struct opt_list machines = { 0 };
	const char *append = NULL;
	const struct option_spec opts[] = {
		{ OPT_LIST, 0, "machine", &machines, "M", "a machine the key may write (repeatable)" },
		{ OPT_STRING, 0, "append", &append, "FILE", "authorize: append the line to FILE (authorized_keys)" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	int ret = EXIT_USAGE;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		goto out;
	if (argc < 1) {
		opt_usage_error(usage, "receiver needs authorize, serve or hook");
		goto out;
	}
	if (check_machines(&machines) < 0)
		goto out;
	if (!strcmp(argv[0], "authorize")) {
		if (argc != 3) {
			opt_usage_error(usage, "authorize needs a receiver and a key file");
			goto out;
		}
		if (!machines.nr) {
			opt_usage_error(usage, "authorize needs --machine M: the machines the key may write");
			goto out;
		}
		ret = authorize(ctx, argv[1], &machines, append, argv[2]);
	} else if (!strcmp(argv[0], "serve")) {
		if (argc != 2 || append) {
			opt_usage_error(usage, "serve takes a receiver and --machine only");
			goto out;
		}
		ret = serve(argv[1], &machines);
	} else if (!strcmp(argv[0], "hook")) {
		if (argc != 1 || append || machines.nr) {
			opt_usage_error(usage, "hook takes nothing: git runs it");
			goto out;
		}
		ret = hook();
	} else {
		opt_usage_error(usage, "unknown receiver command '%s'; use authorize, serve or hook", argv[0]);
	}
out:
	opt_list_free(&machines);
	return ret;
}
