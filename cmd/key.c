#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "crypto.h"
#include "keys.h"
#include "passphrase.h"
#include "usage.h"

static const char *const usage[] = {
	"backup key list",
	"backup key add",
	"backup key remove ID",
	"backup key passwd",
	"backup key export",
	NULL
};

static void add_date(struct strbuf *sb, time_t t)
{
	char date[32];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	strbuf_addstr(sb, date);
}

static int key_list(struct ctx *ctx)
{
	struct strbuf sb = STRBUF_INIT;
	struct keyring *kr = NULL;
	size_t i;

	if (keyring_read(&kr, ctx->repo) < 0)
		return EXIT_ERROR;
	if (ctx->json)
		strbuf_addch(&sb, '[');
	else if (kr->nr)
		strbuf_addf(&sb, "%-16s  %-20s  %s\n", "ID", "CREATED", "KDF");
	for (i = 0; i < kr->nr; i++) {
		const struct key_slot *s = &kr->keys[i];

		if (ctx->json) {
			strbuf_addf(&sb, "%s{\"id\":\"%s\",", i ? "," : "", s->info.id);
			if (!s->text) {
				strbuf_addstr(&sb, "\"damaged\":true}");
				continue;
			}
			strbuf_addstr(&sb, "\"created\":\"");
			add_date(&sb, s->info.created);
			strbuf_addf(&sb, "\",\"kdf\":{\"name\":\"scrypt\",\"n\":%llu,\"r\":%u,\"p\":%u}}",
				    (unsigned long long)s->info.kdf.n, s->info.kdf.r, s->info.kdf.p);
		} else if (!s->text) {
			strbuf_addf(&sb, "%-16s  %-20s  %s\n", s->info.id, "-", "damaged");
		} else {
			strbuf_addf(&sb, "%-16s  ", s->info.id);
			add_date(&sb, s->info.created);
			strbuf_addf(&sb, "  scrypt N=%llu r=%u p=%u\n", (unsigned long long)s->info.kdf.n,
				    s->info.kdf.r, s->info.kdf.p);
		}
	}
	if (ctx->json) {
		strbuf_addch(&sb, ']');
		print_json(&sb);
	} else {
		fwrite(sb.buf, 1, sb.len, stdout);
	}
	strbuf_release(&sb);
	keyring_free(kr);
	return EXIT_OK;
}

/* The new passphrase of key add and key passwd. */
static int new_passphrase(struct passphrase *out)
{
	return passphrase_read(out, "BACKUP_NEW_PASSWORD", "new passphrase: ", 1);
}

/* Prints {"NAME":"ID"} or the sentence. */
static void done(struct ctx *ctx, const char *name, const char *id, const char *text)
{
	struct strbuf sb = STRBUF_INIT;

	if (ctx->json) {
		strbuf_addf(&sb, "{\"%s\":\"%s\"}", name, id);
		print_json(&sb);
		strbuf_release(&sb);
	} else if (!ctx->quiet) {
		printf("%s\n", text);
	}
}

int cmd_key(int argc, const char **argv, struct ctx *ctx)
{
	const struct option_spec opts[] = { { OPT_END, 0, NULL, NULL, NULL, NULL } };
	char opened[CRYPTO_KEYID_HEX + 1], id[CRYPTO_KEYID_HEX + 1];
	struct passphrase pass = { NULL, 0 };
	struct crypto_keys *k = NULL;
	struct strbuf sb = STRBUF_INIT;
	const char *sub;
	char *text = NULL;
	int ret = EXIT_ERROR;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (!argc)
		return opt_usage_error(usage, "key needs list, add, remove, passwd or export"), EXIT_USAGE;
	sub = argv[0];
	if (strcmp(sub, "list") && strcmp(sub, "add") && strcmp(sub, "remove") && strcmp(sub, "passwd") &&
	    strcmp(sub, "export"))
		return opt_usage_error(usage, "'%s' is not a key command", sub), EXIT_USAGE;
	if (argc != (strcmp(sub, "remove") ? 1 : 2))
		return opt_usage_error(usage, strcmp(sub, "remove") ? "key %s takes no operand"
								    : "key remove needs one key id", sub), EXIT_USAGE;
	if (!strcmp(sub, "passwd") && ctx->key_file)
		return opt_usage_error(usage, "key passwd changes the passphrase that opens the repository, "
				       "not --key-file; use key add"), EXIT_USAGE;
	if (ctx_prepare(ctx) < 0)
		return EXIT_ERROR;
	if (!repo_is_encrypted(ctx->repo)) {
		error("repository '%s' is not encrypted: it has no keys (see 'backup init --encrypt')",
		      ctx->repo->path);
		return EXIT_ERROR;
	}
	if (!strcmp(sub, "list"))
		return key_list(ctx);
	/* Every other subcommand proves it may: the key first. */
	if (keys_unlock(&k, opened, ctx->repo, ctx->key_file) < 0)
		goto out;
	if (!strcmp(sub, "export")) {
		crypto_key_export(&sb, k);
		if (ctx->json) {
			struct strbuf js = STRBUF_INIT;

			strbuf_addstr(&js, "{\"master_key\":");
			strbuf_add_json(&js, sb.buf);
			strbuf_addch(&js, '}');
			print_json(&js);
			crypto_wipe(js.buf, js.len);
			strbuf_release(&js);
		} else {
			fwrite(sb.buf, 1, sb.len, stdout);
		}
		warning("this is the master key of '%s': whoever holds it reads the repository; keep it offline",
			ctx->repo->path);
		ret = EXIT_OK;
	} else if (!strcmp(sub, "remove")) {
		if (keys_remove(ctx->repo, argv[1], opened, id) < 0)
			goto out;
		text = xasprintf("removed key %s", id);
		done(ctx, "removed", id, text);
		ret = EXIT_OK;
	} else {
		if (new_passphrase(&pass) < 0)
			goto out;
		if (!strcmp(sub, "add")) {
			if (keys_add(ctx->repo, k, &pass, id) < 0)
				goto out;
			text = xasprintf("added key %s", id);
			done(ctx, "added", id, text);
		} else {
			if (keys_replace(ctx->repo, opened, k, &pass, id) < 0)
				goto out;
			text = xasprintf("changed the passphrase: key %s is now key %s", opened, id);
			done(ctx, "key", id, text);
		}
		ret = EXIT_OK;
	}
out:
	crypto_wipe(sb.buf, sb.len);
	strbuf_release(&sb);
	passphrase_free(&pass);
	crypto_keys_free(k);
	free(text);
	return ret;
}
