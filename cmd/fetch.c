#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "fsutil.h"
#include "remote.h"
#include "usage.h"

static const char *const usage[] = {
	"backup fetch [--wait SECONDS] REMOTE",
	NULL
};

int report_fetch(struct ctx *ctx, const struct remote *rm, const struct transfer_result *res,
		 const char *what, struct strbuf *json)
{
	size_t i, fetched = 0, refused = 0, busy = 0, kept = 0;
	char human[32];

	for (i = 0; i < res->nrefs; i++) {
		const struct ref_update *u = &res->refs[i];
		const char *machine, *slot;
		size_t mlen;

		ref_split(u->ref, &machine, &mlen, &slot);
		if (!mlen)
			continue;
		switch (u->status) {
		case REF_UPDATED:
			fetched++;
			break;
		case REF_REFUSED:
			refused++;
			error("%s (%.*s %s) from remote '%s' not taken: %s", u->ref, (int)mlen, machine, slot, rm->name,
			      u->reason);
			break;
		case REF_BUSY:
			busy++;
			error("%s from remote '%s' not taken: %s; try again or pass --wait SECONDS", u->ref, rm->name,
			      u->reason);
			break;
		case REF_KEPT:
			kept++;
			break;
		case REF_UPTODATE:
			break;
		}
		if (ctx->json || ctx->quiet)
			continue;
		if (u->status == REF_UPDATED)
			printf("%.*s %s %.12s fetched\n", (int)mlen, machine, slot, u->new_hex);
		else if (u->status == REF_KEPT)
			printf("%.*s %s %.12s kept: %s than %.12s on '%s'\n", (int)mlen, machine, slot, u->old_hex,
			       "the backup here is as new or newer", u->new_hex, rm->name);
		else if (u->status == REF_UPTODATE && ctx->verbose)
			printf("%.*s %s %.12s up to date\n", (int)mlen, machine, slot, u->new_hex);
	}
	if (json) {
		strbuf_addstr(json, json->len ? ",\"remote\":" : "{\"remote\":");
		strbuf_add_json(json, rm->name);
		strbuf_addstr(json, ",\"url\":");
		strbuf_add_json(json, rm->url);
		strbuf_addstr(json, ",\"refs\":");
		transfer_refs_json(json, res, 0);
		strbuf_addf(json, ",\"fetched\":%zu,\"kept\":%zu,\"refused\":%zu,\"objects\":%llu,\"bytes\":%llu,"
			    "\"seconds\":%.3f}", fetched, kept, refused + busy, (unsigned long long)res->objects,
			    (unsigned long long)res->bytes, res->seconds);
		print_json(json);
	} else if (!ctx->quiet) {
		if (fetched)
			printf("%s %zu slot%s from '%s': %llu objects, %s in %.1f s\n", what, fetched,
			       fetched == 1 ? "" : "s", rm->name, (unsigned long long)res->objects,
			       human_size(res->bytes, human, sizeof(human)), res->seconds);
		else if (!refused && !busy)
			printf("up to date with remote '%s'\n", rm->name);
	}
	if (refused)
		return EXIT_ERROR;
	return busy ? EXIT_BUSY : EXIT_OK;
}

int cmd_fetch(int argc, const char **argv, struct ctx *ctx)
{
	long wait = 0;
	const struct option_spec opts[] = {
		{ OPT_SECONDS, 0, "wait", &wait, "SECONDS", "wait this long for busy machines and the repository" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	struct transfer_result res = { 0 };
	struct strbuf js = STRBUF_INIT;
	struct remote *rm = NULL;
	int ret = EXIT_ERROR;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc != 1)
		return opt_usage_error(usage, "fetch needs one REMOTE"), EXIT_USAGE;
	if (!remote_valid_name(argv[0]))
		return opt_usage_error(usage, "'%s' cannot name a remote", argv[0]), EXIT_USAGE;
	catch_interrupts();
	if (ctx_prepare(ctx) < 0 || repo_prepare_write(ctx->repo) < 0)
		return EXIT_ERROR;
	if (remote_open(&rm, ctx->repo, argv[0]) < 0)
		goto out;
	if (remote_fetch(ctx->repo, rm, !ctx->quiet && !ctx->json && isatty(STDERR_FILENO), 0, wait, &res) < 0)
		goto out;
	ret = report_fetch(ctx, rm, &res, "fetched", ctx->json ? &js : NULL);
out:
	strbuf_release(&js);
	transfer_result_release(&res);
	remote_free(rm);
	return ret;
}
