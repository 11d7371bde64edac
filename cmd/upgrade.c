#include <stdio.h>

#include "cmd.h"
#include "usage.h"

static const char *const usage[] = { "backup upgrade", NULL };

int cmd_upgrade(int argc, const char **argv, struct ctx *ctx)
{
	const struct option_spec opts[] = { { OPT_END, 0, NULL, NULL, NULL, NULL } };
	struct strbuf sb = STRBUF_INIT;
	int from, ret;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc)
		return opt_usage_error(usage, "upgrade takes no operand"), EXIT_USAGE;
	if (ctx_prepare(ctx) < 0)
		return EXIT_ERROR;
	from = ctx->repo->version;
	ret = repo_upgrade(ctx->repo);
	if (ret < 0)
		return EXIT_ERROR;
	if (ctx->json) {
		strbuf_addstr(&sb, "{\"repository\":");
		strbuf_add_json(&sb, ctx->repo->path);
		strbuf_addf(&sb, ",\"from\":%d,\"format\":%d,\"upgraded\":%s}", from, ctx->repo->version,
			    ret ? "true" : "false");
		print_json(&sb);
		strbuf_release(&sb);
	} else if (!ctx->quiet) {
		if (ret)
			printf("upgraded repository '%s' from format %d to format %d\n", ctx->repo->path, from,
			       ctx->repo->version);
		else
			printf("repository '%s' is already format %d\n", ctx->repo->path, ctx->repo->version);
	}
	return EXIT_OK;
}
