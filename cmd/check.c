/*
 * check.c — backup check: the options and the report; lib/check.c checks.
 */
#include <stdio.h>

#include "check.h"
#include "cmd.h"
#include "snapshot.h"
#include "store.h"
#include "usage.h"

static const char *const usage[] = { "backup check [--read-data] [--repair-index]", NULL };

/* Adds a damaged object to the JSON list in data. */
static void add_damaged(const char *hex, const char *what, const struct backup_info *b, const char *path,
			void *data)
{
	struct strbuf *js = data;

	if (js->len)
		strbuf_addch(js, ',');
	strbuf_addf(js, "{\"object\":\"%s\",\"what\":\"%s\",\"backup\":\"%s\",\"machine\":", hex, what,
		    b->hex);
	strbuf_add_json(js, b->machine);
	strbuf_addstr(js, ",\"path\":");
	strbuf_add_json(js, path);
	strbuf_addch(js, '}');
}

int cmd_check(int argc, const char **argv, struct ctx *ctx)
{
	struct check_report rep = { 0 };
	int repair = 0;
	const struct option_spec opts[] = {
		{ OPT_BOOL, 0, "read-data", &rep.read_data, NULL, "decode every byte and verify its checksums" },
		{ OPT_BOOL, 0, "repair-index", &repair, NULL, "rebuild the dedup index from the packs first" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	struct strbuf js = STRBUF_INIT, damaged = STRBUF_INIT;
	int ret, lock;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc)
		return opt_usage_error(usage, "check takes no operand"), EXIT_USAGE;
	/* Without --read-data nothing is decoded: no key needed. */
	if (rep.read_data || repair)
		ctx->flags |= NEED_KEY;
	if (ctx_prepare(ctx) < 0)
		return EXIT_ERROR;
	lock = repo_lock_shared(ctx->repo, -1);
	if (lock < 0)
		return EXIT_ERROR;
	if (repair) {
		size_t np, nb;

		if (store_rebuild_index(ctx->repo, &np, &nb) < 0)
			return EXIT_ERROR;
		if (!ctx->quiet && !ctx->json)
			printf("rebuilt the dedup index: %zu packs, %zu blobs\n", np, nb);
	}
	if (ctx->json) {
		rep.damaged_object = add_damaged;
		rep.data = &damaged;
	}
	ret = check_repo(ctx->repo, &rep) < 0 ? EXIT_ERROR : EXIT_OK;
	if (ctx->json) {
		strbuf_addf(&js, "{\"ok\":%s,\"packs\":%d,\"damaged_packs\":%d,\"backups\":%zu,\"objects\":%llu,"
			    "\"bytes\":%llu,\"read_data\":%s,\"index_damaged\":%llu,\"state_ok\":%s,\"damaged\":[%s]}",
			    ret ? "false" : "true", rep.packs, rep.damaged_packs, rep.backups,
			    (unsigned long long)rep.objects, (unsigned long long)rep.bytes,
			    rep.read_data ? "true" : "false", (unsigned long long)rep.index_damaged,
			    rep.state_damaged ? "false" : "true", damaged.len ? damaged.buf : "");
		print_json(&js);
	} else if (!ctx->quiet || ret) {
		if (ret)
			fprintf(stderr, "backup: repository '%s' is damaged: %llu objects, %d packs; "
				"the backups named above are affected\n", ctx->repo->path,
				(unsigned long long)rep.damaged, rep.damaged_packs);
		else
			printf("repository '%s' is sound: %d packs, %zu backups, %llu objects%s\n",
			       ctx->repo->path, rep.packs, rep.backups, (unsigned long long)rep.objects,
			       rep.read_data ? ", every byte read" : "");
	}
	repo_unlock(lock);
	strbuf_release(&damaged);
	strbuf_release(&js);
	return ret;
}
