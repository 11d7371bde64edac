#include <stdio.h>

#include "cmd.h"
#include "usage.h"

static const char *const usage[] = { "backup init", NULL };

int cmd_init(int argc, const char **argv, struct ctx *ctx)
{
	const struct option_spec opts[] = { { OPT_END, 0, NULL, NULL, NULL, NULL } };
	struct strbuf sb = STRBUF_INIT;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc)
		return opt_usage_error(usage, "init takes no operand"), EXIT_USAGE;
	if (ctx_prepare(ctx) < 0)
		return EXIT_ERROR;
	if (repo_init(ctx->cfg->repo_path) < 0)
		return EXIT_ERROR;
	if (ctx->json) {
		strbuf_addstr(&sb, "{\"repository\":");
		strbuf_add_json(&sb, ctx->cfg->repo_path);
		strbuf_addstr(&sb, "}");
		print_json(&sb);
		strbuf_release(&sb);
	} else if (!ctx->quiet) {
		printf("initialized repository '%s'\n", ctx->cfg->repo_path);
	}
	return EXIT_OK;
}
