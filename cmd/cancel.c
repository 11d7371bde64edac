#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "gc.h"
#include "service.h"
#include "snapshot.h"
#include "usage.h"

static const char *const usage[] = {
	"backup cancel [--yes] [--wait SECONDS] MACHINE",
	NULL
};

/* A machine is known when it has a machine file or backups (its file may
 * be gone already when it is cancelled). */
static int known_machine(struct ctx *ctx, const char *name)
{
	char *path = machine_path(ctx->cfg, name);
	struct backup_info **list = NULL;
	size_t n = 0;
	int known = access(path, F_OK) == 0;

	free(path);
	if (!known && snapshot_list(ctx->repo, name, &list, &n) == 0)
		known = n > 0;
	snapshot_list_free(list, n);
	return known;
}

/* Asks on the terminal; 1 for yes. */
static int confirm(const char *machine)
{
	char answer[16] = "";
	FILE *tty = fopen("/dev/tty", "r+");

	if (!tty)
		return 0;
	fprintf(tty, "Delete every backup of '%s', its snapshot too, and disable it for at least 24 hours? [y/N] ",
		machine);
	fflush(tty);
	if (!fgets(answer, sizeof(answer), tty))
		answer[0] = '\0';
	fclose(tty);
	return answer[0] == 'y' || answer[0] == 'Y';
}

int cmd_cancel(int argc, const char **argv, struct ctx *ctx)
{
	int yes = 0, r, ret;
	long wait = 0;
	const struct option_spec opts[] = {
		{ OPT_BOOL, 'y', "yes", &yes, NULL, "do not ask for confirmation" },
		{ OPT_SECONDS, 0, "wait", &wait, "SECONDS", "wait this long for a busy machine and the repository" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	struct strbuf js = STRBUF_INIT;
	struct gc_stats st;
	size_t nb = 0;
	char when[32];
	time_t now, until;
	struct tm tm;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc != 1 || !valid_name(argv[0]))
		return opt_usage_error(usage, "cancel needs one machine"), EXIT_USAGE;
	if (!yes && !(isatty(0) && confirm(argv[0]))) {
		if (isatty(0))
			return error("not cancelled"), EXIT_ERROR;
		return opt_usage_error(usage, "cancel deletes every backup of '%s': confirm with --yes", argv[0]),
		       EXIT_USAGE;
	}
	if (ctx_prepare(ctx) < 0 || repo_prepare_write(ctx->repo) < 0)
		return EXIT_ERROR;
	if (!known_machine(ctx, argv[0]))
		return error("unknown machine '%s': it has no machine file and no backups", argv[0]), EXIT_ERROR;
	now = now_utc().tv_sec;
	r = service_cancel(ctx->repo, argv[0], now, wait, &nb);
	if (r == ERR_LOCKED)
		return machine_busy(argv[0]);
	if (r < 0)
		return EXIT_ERROR;
	r = gc_reclaim(ctx->repo, wait, 0, NULL, 0, &st);
	until = now + CANCEL_WAIT_SECONDS;
	gmtime_r(&until, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ret = r < 0 && r != ERR_LOCKED ? EXIT_ERROR : EXIT_OK;
	if (ctx->json) {
		strbuf_addstr(&js, "{\"machine\":");
		strbuf_add_json(&js, argv[0]);
		strbuf_addf(&js, ",\"backups_deleted\":%zu,\"enable_from\":\"%s\",", nb, when);
		print_reclaim(ctx, r, 0, &st, &js);
		strbuf_addch(&js, '}');
		print_json(&js);
	} else if (!ctx->quiet) {
		printf("cancelled '%s': %zu backups deleted; it can be enabled again from %s\n", argv[0], nb, when);
		print_reclaim(ctx, r, 0, &st, NULL);
	}
	strbuf_release(&js);
	return ret;
}
