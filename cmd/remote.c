#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "remote.h"
#include "usage.h"

static const char *const usage[] = {
	"backup remote add NAME URL",
	"backup remote list [--json]",
	"backup remote remove NAME",
	NULL
};

static int remote_add_cmd(struct ctx *ctx, const char *name, const char *url)
{
	enum remote_kind kind;
	char *canonical = NULL;
	struct strbuf sb = STRBUF_INIT;
	int ret;

	if (!remote_valid_name(name))
		return opt_usage_error(usage, "'%s' cannot name a remote: use letters, digits, '_', '.' and '-', "
				       "not first '.' or '-'", name), EXIT_USAGE;
	if (remote_parse_url(url, &kind, &canonical) < 0)
		return EXIT_USAGE;
	if (ctx_prepare(ctx) < 0) {
		free(canonical);
		return EXIT_ERROR;
	}
	ret = remote_add(ctx->repo, name, canonical);
	if (ret == 0) {
		if (ctx->json) {
			strbuf_addstr(&sb, "{\"name\":");
			strbuf_add_json(&sb, name);
			strbuf_addstr(&sb, ",\"url\":");
			strbuf_add_json(&sb, canonical);
			strbuf_addf(&sb, ",\"transport\":\"%s\"}", remote_kind_name(kind));
			print_json(&sb);
		} else if (!ctx->quiet) {
			printf("remote '%s' added: %s\n", name, canonical);
		}
	}
	strbuf_release(&sb);
	free(canonical);
	return ret < 0 ? EXIT_ERROR : EXIT_OK;
}

static int remote_list_cmd(struct ctx *ctx)
{
	struct remote **list = NULL;
	struct strbuf sb = STRBUF_INIT;
	size_t n = 0, i;

	if (ctx_prepare(ctx) < 0 || remote_list(ctx->repo, &list, &n) < 0)
		return EXIT_ERROR;
	strbuf_addch(&sb, '[');
	for (i = 0; i < n; i++) {
		if (ctx->json) {
			strbuf_addstr(&sb, i ? ",{\"name\":" : "{\"name\":");
			strbuf_add_json(&sb, list[i]->name);
			strbuf_addstr(&sb, ",\"url\":");
			strbuf_add_json(&sb, list[i]->url);
			strbuf_addf(&sb, ",\"transport\":\"%s\"", remote_kind_name(list[i]->kind));
			strbuf_addstr(&sb, ",\"ssh_command\":");
			if (list[i]->ssh_command)
				strbuf_add_json(&sb, list[i]->ssh_command);
			else
				strbuf_addstr(&sb, "null");
			strbuf_addch(&sb, '}');
		} else {
			printf("%s\t%s\n", list[i]->name, list[i]->url);
		}
	}
	strbuf_addch(&sb, ']');
	if (ctx->json)
		print_json(&sb);
	strbuf_release(&sb);
	remote_list_free(list, n);
	return EXIT_OK;
}

static int remote_remove_cmd(struct ctx *ctx, const char *name)
{
	struct strbuf sb = STRBUF_INIT;

	if (!remote_valid_name(name))
		return opt_usage_error(usage, "'%s' cannot name a remote", name), EXIT_USAGE;
	if (ctx_prepare(ctx) < 0 || remote_remove(ctx->repo, name) < 0)
		return EXIT_ERROR;
	if (ctx->json) {
		strbuf_addstr(&sb, "{\"name\":");
		strbuf_add_json(&sb, name);
		strbuf_addstr(&sb, ",\"removed\":true}");
		print_json(&sb);
	} else if (!ctx->quiet) {
		printf("remote '%s' removed; nothing on it was changed\n", name);
	}
	strbuf_release(&sb);
	return EXIT_OK;
}

int cmd_remote(int argc, const char **argv, struct ctx *ctx)
{
	const struct option_spec opts[] = {
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc == 0)
		return opt_usage_error(usage, "remote needs add, list or remove"), EXIT_USAGE;
	if (!strcmp(argv[0], "add")) {
		if (argc != 3)
			return opt_usage_error(usage, "remote add needs a NAME and a URL"), EXIT_USAGE;
		return remote_add_cmd(ctx, argv[1], argv[2]);
	}
	if (!strcmp(argv[0], "list")) {
		if (argc != 1)
			return opt_usage_error(usage, "remote list takes no operand"), EXIT_USAGE;
		return remote_list_cmd(ctx);
	}
	if (!strcmp(argv[0], "remove")) {
		if (argc != 2)
			return opt_usage_error(usage, "remote remove needs one NAME"), EXIT_USAGE;
		return remote_remove_cmd(ctx, argv[1]);
	}
	return opt_usage_error(usage, "'%s' is not a remote subcommand: use add, list or remove", argv[0]),
	       EXIT_USAGE;
}
