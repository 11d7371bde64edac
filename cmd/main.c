/*
 * main.c — the multicall entry point: `backup COMMAND ...` and a link
 * `backup-COMMAND` run the same command (git's git.c, busybox's appletlib).
 */
#include <errno.h>
#include <libgen.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "cmd.h"
#include "keys.h"
#include "usage.h"

struct command {
	const char *name;
	int (*fn)(int argc, const char **argv, struct ctx *ctx);
	int flags;
	const char *summary;
};

static const struct command commands[] = {
	{ "init", cmd_init, NEED_CONFIG, "create the repository" },
	{ "enable", cmd_enable, NEED_REPO, "enrol a machine, or switch auto-enrolment" },
	{ "schedule", cmd_schedule, NEED_REPO, "set or show the backup window and weekly day" },
	{ "run", cmd_run, NEED_REPO | NEED_KEY | KEY_LATE, "take the automatic backup or a manual snapshot" },
	{ "list", cmd_list, NEED_REPO | NEED_KEY, "list every kept backup" },
	{ "rotate", cmd_rotate, NEED_REPO, "apply retention now and reclaim the space" },
	{ "restore", cmd_restore, NEED_REPO | NEED_KEY, "restore a backup to a new or an existing machine, or single paths" },
	{ "boot-config", cmd_boot_config, NEED_CONFIG, "list profiles, choose the one that boots, print one" },
	{ "check", cmd_check, NEED_REPO, "verify the repository" },
	{ "drill", cmd_drill, NEED_REPO | NEED_KEY, "restore to a scratch machine, verify every file, report, clean up" },
	{ "cancel", cmd_cancel, NEED_REPO, "delete every backup of a machine and disable it" },
	{ "remote", cmd_remote, NEED_REPO, "add, list or remove the remotes backups are pushed to" },
	{ "push", cmd_push, NEED_REPO, "send the backups to a remote: only what it lacks" },
	{ "fetch", cmd_fetch, NEED_REPO, "bring the repository up to date from a remote" },
	{ "clone", cmd_clone, NEED_CONFIG, "make a whole repository from a remote (a new host)" },
	{ "upgrade", cmd_upgrade, NEED_REPO, "upgrade the repository to the current format" },
	{ "key", cmd_key, NEED_REPO, "list, add, remove or change the passphrases of an encrypted repository, export its key" },
	{ "receiver", cmd_receiver, 0, "authorize client keys of an append-only receiver; serve them" },
	{ NULL, NULL, 0, NULL }
};

static const char *const main_usage[] = {
	"backup [--repo DIR] [--config FILE] [--key-file FILE] [--json] [-q | -v] COMMAND [ARGS]",
	"backup --list | --version | --help",
	NULL
};

static int version_flag;

void print_json(struct strbuf *sb)
{
	fwrite(sb->buf, 1, sb->len, stdout);
	fputc('\n', stdout);
}

int worse_status(int a, int b)
{
	static const int order[] = { EXIT_OK, EXIT_PARTIAL, EXIT_PUSH, EXIT_BUSY, EXIT_NOSPACE, EXIT_ERROR };
	int ra = 0, rb = 0, i;

	for (i = 0; i < 6; i++) {
		if (order[i] == a)
			ra = i;
		if (order[i] == b)
			rb = i;
	}
	return ra >= rb ? a : b;
}

int machine_busy(const char *name)
{
	error("machine '%s' is busy: another job holds its lock; try again or pass --wait SECONDS", name);
	return EXIT_BUSY;
}

struct timespec now_utc(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return t;
}

static const struct command *find(const char *name)
{
	const struct command *c;

	for (c = commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static void print_main_help(const struct option_spec *global)
{
	const struct command *c;

	opt_usage(main_usage, NULL, global, 0);
	printf("\ncommands:\n");
	for (c = commands; c->name; c++)
		printf("    %-10s %s\n", c->name, c->summary);
	printf("\nSee 'backup COMMAND --help' and backup(1).\n");
}

/* Takes the global options out of argv wherever they stand; returns the new argc. */
static int take_global(int argc, const char **argv, const struct option_spec *global)
{
	int i, n = 1;

	for (i = 1; i < argc; i++) {
		const struct option_spec *o;
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			while (i < argc)
				argv[n++] = argv[i++];
			break;
		}
		for (o = global; o->type != OPT_END; o++) {
			size_t len = strlen(o->long_name);

			if (a[0] == '-' && a[1] == '-' && !strncmp(a + 2, o->long_name, len) &&
			    (a[2 + len] == '\0' || (a[2 + len] == '=' && o->type != OPT_BOOL)))
				break;
			if (o->short_name && a[0] == '-' && a[1] == o->short_name && !a[2])
				break;
		}
		if (o->type == OPT_END) {
			argv[n++] = a;
			continue;
		}
		if (o->type == OPT_BOOL) {
			*(int *)o->value = 1;
		} else if (strchr(a, '=')) {
			*(const char **)o->value = strchr(a, '=') + 1;
		} else if (i + 1 < argc) {
			*(const char **)o->value = argv[++i];
		} else {
			fprintf(stderr, "backup: option '%s' needs a value\n", a);
			exit(EXIT_USAGE);
		}
	}
	argv[n] = NULL;
	return n;
}

int ctx_prepare(struct ctx *ctx)
{
	int flags = ctx->flags;
	const char *cfg = ctx->config_opt, *repo = ctx->repo_opt;
	int required = 1;

	if (!(flags & (NEED_CONFIG | NEED_REPO)))
		return 0;
	if (!cfg)
		cfg = getenv("BACKUP_CONFIG");
	if (!cfg || !*cfg) {
		cfg = DEFAULT_CONFIG;
		required = 0;
	}
	if (!repo)
		repo = getenv("BACKUP_REPO");
	if (repo && !*repo)
		repo = NULL;
	if (config_load(&ctx->cfg, cfg, required, repo) < 0)
		return -1;
	if (!(flags & NEED_REPO))
		return 0;
	if (repo_open(&ctx->repo, ctx->cfg->repo_path) < 0)
		return -1;
	/* Whoever holds a key expects an encrypted repository: one that is not
	 * was not made with that key (a copy whose state was replaced, or the
	 * wrong repository), and nothing is done in it. */
	if (ctx->key_file && !repo_is_encrypted(ctx->repo))
		return error("repository '%s' is not encrypted, so --key-file '%s' is not its key; "
			     "check that it is the repository you meant", ctx->repo->path, ctx->key_file);
	if ((flags & NEED_KEY) && repo_is_encrypted(ctx->repo)) {
		if (keys_unlock_start(&ctx->unlocking, ctx->repo, ctx->key_file) < 0)
			return -1;
		if (!(flags & KEY_LATE))
			return ctx_key(ctx);
	}
	return 0;
}

int ctx_key(struct ctx *ctx)
{
	char opened[CRYPTO_KEYID_HEX + 1];
	struct keys_unlocking *u = ctx->unlocking;

	if (ctx->key_failed)
		return -1;
	if (!u)
		return 0;
	ctx->unlocking = NULL;
	if (keys_unlock_finish(u, &ctx->repo->keys, opened) < 0) {
		ctx->key_failed = 1;
		return -1;
	}
	return 0;
}

int ctx_key_pending(const struct ctx *ctx)
{
	return ctx->unlocking != NULL;
}

int main(int argc, const char **argv)
{
	struct ctx ctx = { 0 };
	int list = 0, help = 0, ret;
	const struct option_spec global[] = {
		{ OPT_STRING, 0, "repo", &ctx.repo_opt, "DIR", "the repository (env BACKUP_REPO)" },
		{ OPT_STRING, 0, "config", &ctx.config_opt, "FILE", "the global configuration (env BACKUP_CONFIG)" },
		{ OPT_STRING, 0, "key-file", &ctx.key_file, "FILE", "open an encrypted repository with its exported key" },
		{ OPT_BOOL, 0, "json", &ctx.json, NULL, "print one JSON document on stdout" },
		{ OPT_BOOL, 'q', "quiet", &ctx.quiet, NULL, "print nothing on stderr but errors" },
		{ OPT_BOOL, 'v', "verbose", &ctx.verbose, NULL, "say more" },
		{ OPT_BOOL, 0, "version", &version_flag, NULL, "print the version" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	const struct command *cmd = NULL;

	crypto_init();
	/* Chunk buffers of a few MiB come and go all the time: keep them in the
	 * heap instead of paying an mmap, page faults and munmap for each. */
	mallopt(M_MMAP_THRESHOLD, 8 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	mallopt(M_ARENA_MAX, 4);
	/* Open folders (the walk and its scanner, one per level) and packs
	 * (one per pack read) grow with the tree and the repository: the
	 * usual soft limit of 1024 descriptors is not a limit of ours. */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		user_nofile = nofile.rlim_cur;
		nofile.rlim_cur = nofile.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
			user_nofile = 0;
	}
	/* A backup holds /etc/shadow: nothing we create may be readable by others. */
	user_umask = umask(077);
	ctx.global = global;
	if (!strncmp(name, "backup-", 7)) {
		cmd = find(name + 7);
		if (!cmd) {
			fprintf(stderr, "backup: '%s' is not a backup command; see 'backup --list'\n", name + 7);
			return EXIT_USAGE;
		}
	}
	argc = take_global(argc, argv, global);
	if (!cmd) {
		if (argc >= 2 && !strcmp(argv[1], "--list"))
			list = 1;
		else if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")))
			help = 1;
		if (list) {
			for (cmd = commands; cmd->name; cmd++)
				printf("%s\t%s\n", cmd->name, cmd->summary);
			return EXIT_OK;
		}
		if (version_flag) {
			printf("backup %s\n", BACKUP_VERSION);
			return EXIT_OK;
		}
		if (help || argc < 2) {
			print_main_help(global);
			return help ? EXIT_OK : EXIT_USAGE;
		}
		if (argv[1][0] == '-') {
			fprintf(stderr, "backup: unknown option '%s'\n", argv[1]);
			opt_usage(main_usage, NULL, NULL, 1);
			return EXIT_USAGE;
		}
		cmd = find(argv[1]);
		if (!cmd) {
			fprintf(stderr, "backup: '%s' is not a backup command; see 'backup --list'\n", argv[1]);
			return EXIT_USAGE;
		}
		argv++;
		argc--;
	}
	if (version_flag) {
		printf("backup %s\n", BACKUP_VERSION);
		return EXIT_OK;
	}
	if (ctx.quiet)
		verbosity = -1;
	else if (ctx.verbose)
		verbosity = 1;

	git_libgit2_init();
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
	/* Memory stays bounded: every object is read about once, so a big cache
	 * and wide pack windows (1 GiB mapped by default) only grow the RSS. */
	git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)8 << 20);
	git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE, (size_t)8 << 20);
	git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, (size_t)64 << 20);
	ctx.flags = cmd->flags;
	ret = cmd->fn(argc, argv, &ctx);
	/* A command that failed before it needed its key: the thread opening
	 * it is waited for, and what it holds wiped. */
	if (ctx.unlocking)
		keys_unlock_finish(ctx.unlocking, NULL, NULL);
	repo_free(ctx.repo);
	config_free(ctx.cfg);
	git_libgit2_shutdown();
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "backup: cannot write the output: %s\n", strerror(errno));
		return EXIT_ERROR;
	}
	return ret;
}
