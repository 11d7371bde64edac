#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "service.h"
#include "usage.h"

static const char *const usage[] = {
	"backup enable MACHINE",
	"backup enable --auto-enroll on|off",
	NULL
};

int cmd_enable(int argc, const char **argv, struct ctx *ctx)
{
	const char *auto_enroll = NULL;
	const struct option_spec opts[] = {
		{ OPT_STRING, 0, "auto-enroll", &auto_enroll, "on|off", "enrol machines defined from now on by themselves" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	struct machine *m = NULL;
	struct strbuf sb = STRBUF_INIT;
	int ret;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (auto_enroll) {
		int on = !strcmp(auto_enroll, "on");

		if (argc || (!on && strcmp(auto_enroll, "off")))
			return opt_usage_error(usage, "--auto-enroll takes on or off and no machine"), EXIT_USAGE;
		if (ctx_prepare(ctx) < 0)
			return EXIT_ERROR;
		if (service_set_auto_enroll(ctx->repo, ctx->cfg, on) < 0)
			return EXIT_ERROR;
		if (ctx->json) {
			strbuf_addf(&sb, "{\"auto_enroll\":%s}", on ? "true" : "false");
			print_json(&sb);
		} else if (!ctx->quiet) {
			printf("auto-enrolment %s: machines defined from now on are %s\n", on ? "on" : "off",
			       on ? "enrolled on first use" : "not enrolled until 'backup enable'");
		}
		strbuf_release(&sb);
		return EXIT_OK;
	}
	if (argc != 1)
		return opt_usage_error(usage, "enable needs one machine"), EXIT_USAGE;
	if (ctx_prepare(ctx) < 0)
		return EXIT_ERROR;
	if (machine_load(&m, ctx->cfg, argv[0]) < 0)
		return EXIT_ERROR;
	ret = service_enable(ctx->repo, m->name);
	if (ret == 0) {
		if (ctx->json) {
			strbuf_addstr(&sb, "{\"machine\":");
			strbuf_add_json(&sb, m->name);
			strbuf_addstr(&sb, ",\"enabled\":true}");
			print_json(&sb);
		} else if (!ctx->quiet) {
			printf("machine '%s' enrolled: automatic backups are on\n", m->name);
		}
	}
	strbuf_release(&sb);
	machine_free(m);
	return ret < 0 ? EXIT_ERROR : EXIT_OK;
}
