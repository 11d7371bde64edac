#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "crypto.h"
#include "keys.h"
#include "passphrase.h"
#include "receiver.h"
#include "usage.h"

static const char *const usage[] = { "backup init [--encrypt]", "backup init --receiver DIR", NULL };

/* An encrypted repository: the passphrase first, so that a missing one
 * creates nothing. */
static int init_encrypted(const char *path, char id[CRYPTO_KEYID_HEX + 1])
{
	struct passphrase pass = { NULL, 0 };
	struct crypto_keys *k = NULL;
	struct repo_state_entry *e = NULL;
	size_t n = 0;
	int ret = -1;

	if (passphrase_read(&pass, "BACKUP_PASSWORD", "passphrase for the new repository: ", 1) < 0)
		return -1;
	if (crypto_keys_new(&k) == 0 && keys_new_entries(&e, &n, k, &pass, id) == 0)
		ret = repo_init_with(path, REPO_FORMAT_ENCRYPTED, e, n);
	keys_entries_free(e, n);
	crypto_keys_free(k);
	passphrase_free(&pass);
	return ret;
}

/* backup init --receiver DIR: the repository an offsite host receives pushes in. */
static int init_receiver(struct ctx *ctx, const char *dir)
{
	char exe[PATH_MAX], *abs = NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct strbuf sb = STRBUF_INIT;
	int ret = EXIT_ERROR;

	if (n <= 0)
		return error("cannot find the path of backup itself: %s", strerror(errno)), EXIT_ERROR;
	exe[n] = '\0';
	if (receiver_init(dir, exe) < 0)
		goto out;
	abs = realpath(dir, NULL);
	if (ctx->json) {
		strbuf_addstr(&sb, "{\"repository\":");
		strbuf_add_json(&sb, abs ? abs : dir);
		strbuf_addstr(&sb, ",\"receiver\":true}");
		print_json(&sb);
	} else if (!ctx->quiet) {
		printf("initialized receiver '%s'\n", abs ? abs : dir);
		printf("authorize a client key with: backup receiver authorize %s --machine MACHINE KEYFILE\n",
		       abs ? abs : dir);
	}
	ret = EXIT_OK;
out:
	strbuf_release(&sb);
	free(abs);
	return ret;
}

int cmd_init(int argc, const char **argv, struct ctx *ctx)
{
	int encrypt = 0;
	const char *receiver = NULL;
	const struct option_spec opts[] = {
		{ OPT_BOOL, 0, "encrypt", &encrypt, NULL,
		  "encrypted at rest: data, names and labels, with a passphrase" },
		{ OPT_STRING, 0, "receiver", &receiver, "DIR", "make DIR an append-only receiver of pushes" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	struct strbuf sb = STRBUF_INIT;
	char id[CRYPTO_KEYID_HEX + 1] = "";

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc)
		return opt_usage_error(usage, "init takes no operand"), EXIT_USAGE;
	if (receiver && !*receiver)
		return opt_usage_error(usage, "--receiver needs a folder"), EXIT_USAGE;
	if (receiver && ctx->repo_opt)
		return opt_usage_error(usage, "--receiver names the repository; drop --repo"), EXIT_USAGE;
	if (receiver && encrypt)
		return opt_usage_error(usage, "a receiver keeps what clients push as they push it; "
				       "drop --encrypt"), EXIT_USAGE;
	if (receiver)
		return init_receiver(ctx, receiver);
	if (ctx_prepare(ctx) < 0)
		return EXIT_ERROR;
	if (encrypt ? init_encrypted(ctx->cfg->repo_path, id) < 0 : repo_init(ctx->cfg->repo_path) < 0)
		return EXIT_ERROR;
	if (ctx->json) {
		strbuf_addstr(&sb, "{\"repository\":");
		strbuf_add_json(&sb, ctx->cfg->repo_path);
		if (encrypt)
			strbuf_addf(&sb, ",\"encrypted\":true,\"key\":\"%s\"", id);
		strbuf_addstr(&sb, "}");
		print_json(&sb);
		strbuf_release(&sb);
	} else if (!ctx->quiet) {
		if (encrypt)
			printf("initialized encrypted repository '%s' with key %s\n", ctx->cfg->repo_path, id);
		else
			printf("initialized repository '%s'\n", ctx->cfg->repo_path);
	}
	return EXIT_OK;
}
