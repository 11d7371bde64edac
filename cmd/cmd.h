/*
 * cmd.h — what main prepares for a command, and the commands.
 *
 * Each command lives in cmd/NAME.c as cmd_NAME() with its usage lines and
 * its option table; main's table (cmd/main.c) lists each command once with
 * the flags that say what ctx_prepare() sets up for it.
 */
#ifndef CMD_H
#define CMD_H

#include "machine.h"
#include "opt.h"
#include "repo.h"
#include "strbuf.h"

enum {
	NEED_CONFIG = 1 << 0,	/* load the global configuration */
	NEED_REPO = 1 << 1,	/* open the repository (implies NEED_CONFIG) */
	/* Reads or writes backed-up data: an encrypted repository is opened
	 * with its key (--key-file or the passphrase) into ctx->repo->keys. */
	NEED_KEY = 1 << 2,
	/* With NEED_KEY: the command calls ctx_key() itself before it first
	 * needs the key, so that the passphrase's KDF runs meanwhile. */
	KEY_LATE = 1 << 3,
};

struct keys_unlocking;

struct ctx {
	int flags;				/* the command's NEED_* flags */
	const char *repo_opt;
	const char *config_opt;
	const char *key_file;			/* --key-file: an exported master key */
	int json;
	int quiet;
	int verbose;
	struct config *cfg;
	struct repo *repo;
	const struct option_spec *global;	/* for --help */
	struct keys_unlocking *unlocking;	/* KEY_LATE: the key being opened */
	int key_failed;				/* it did not open */
};

int cmd_init(int argc, const char **argv, struct ctx *ctx);
int cmd_enable(int argc, const char **argv, struct ctx *ctx);
int cmd_schedule(int argc, const char **argv, struct ctx *ctx);
int cmd_run(int argc, const char **argv, struct ctx *ctx);
int cmd_list(int argc, const char **argv, struct ctx *ctx);
int cmd_rotate(int argc, const char **argv, struct ctx *ctx);
int cmd_restore(int argc, const char **argv, struct ctx *ctx);
int cmd_boot_config(int argc, const char **argv, struct ctx *ctx);
int cmd_check(int argc, const char **argv, struct ctx *ctx);
int cmd_drill(int argc, const char **argv, struct ctx *ctx);
int cmd_cancel(int argc, const char **argv, struct ctx *ctx);
int cmd_remote(int argc, const char **argv, struct ctx *ctx);
int cmd_push(int argc, const char **argv, struct ctx *ctx);
int cmd_fetch(int argc, const char **argv, struct ctx *ctx);
int cmd_clone(int argc, const char **argv, struct ctx *ctx);
int cmd_upgrade(int argc, const char **argv, struct ctx *ctx);
int cmd_key(int argc, const char **argv, struct ctx *ctx);
int cmd_receiver(int argc, const char **argv, struct ctx *ctx);

/*
 * Prepares what the command's flags ask for (configuration, repository).
 * Commands call it once their arguments are parsed, so that a usage error
 * is reported as one whatever the state of the repository. Returns 0, or
 * -1 after printing the reason.
 */
int ctx_prepare(struct ctx *ctx);

/*
 * KEY_LATE: waits for the key ctx_prepare() started to open and sets
 * ctx->repo->keys; returns 0, or -1 after the line keys_unlock() would
 * print (a wrong passphrase). Without a key being opened (not encrypted,
 * or called before) it returns 0 at once. ctx_key_pending() says whether
 * one is being opened; main waits for it, quietly, when the command
 * returns without asking.
 */
int ctx_key(struct ctx *ctx);
int ctx_key_pending(const struct ctx *ctx);

struct gc_stats;
/* Reports what gc_reclaim() returned and counted, as text or into js (a
 * "reclaim" member); rotate and cancel both reclaim space. */
void print_reclaim(struct ctx *ctx, int result, int dry_run, const struct gc_stats *st, struct strbuf *js);

/* Says that another job holds machine name's lock, naming --wait, and
 * returns EXIT_BUSY. */
int machine_busy(const char *name);

/* The worse of two exit statuses of a command over several machines:
 * error, then no space, then busy, then push failed, then partial, then
 * success. */
int worse_status(int a, int b);

/*
 * Pushes the slots of machines (every machine with backups when none) to
 * remote name (the only remote when NULL), reporting as `backup push` does
 * (with --json, its document goes into json when that is not NULL);
 * returns its exit status.
 */
int push_to_remote(struct ctx *ctx, const char *name, const char *const *machines, size_t nmachines, long wait,
		   struct strbuf *json);

struct remote;
struct transfer_result;
/*
 * Reports a fetch (or a clone: what is "cloned") as text, or into json as
 * members of one object (json may already hold members: "{\"dir\":...");
 * returns the exit status: 1 when a ref was refused, 75 when a machine was
 * busy.
 */
int report_fetch(struct ctx *ctx, const struct remote *rm, const struct transfer_result *res,
		 const char *what, struct strbuf *json);

/* Prints sb (a JSON document) on stdout with a final newline. */
void print_json(struct strbuf *sb);
/* "now" as the wall clock gives it (faketime applies). */
struct timespec now_utc(void);

#endif
