#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "fsutil.h"
#include "snapshot.h"
#include "usage.h"

static const char *const usage[] = { "backup list [MACHINE]", NULL };

static uint64_t space_required(const struct backup_info *b)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < b->ndisks; i++)
		sum += b->disks[i].size;
	return sum;
}

static double duration(const struct backup_info *b)
{
	return (b->end.tv_sec - b->start.tv_sec) + (b->end.tv_nsec - b->start.tv_nsec) / 1e9;
}

static void add_json(struct strbuf *js, const struct backup_info *b)
{
	char when[32];
	size_t i;

	strbuf_addf(js, "{\"id\":\"%s\",\"machine\":", b->hex);
	strbuf_add_json(js, b->machine);
	strbuf_addstr(js, ",\"slots\":[");
	for (i = 0; i < b->nslots; i++) {
		if (i)
			strbuf_addch(js, ',');
		strbuf_add_json(js, b->slots[i]);
	}
	strbuf_addf(js, "],\"kind\":\"%s\",\"created\":\"%s\",\"label\":", b->kind,
		    format_time(&b->start, when, sizeof(when)));
	strbuf_add_json(js, b->label);
	strbuf_addf(js, ",\"duration_seconds\":%.3f,\"disks\":[", duration(b));
	for (i = 0; i < b->ndisks; i++) {
		if (i)
			strbuf_addch(js, ',');
		strbuf_add_json(js, b->disks[i].label);
	}
	strbuf_addf(js, "],\"files\":%llu,\"size_bytes\":%llu,\"space_required_bytes\":%llu}",
		    (unsigned long long)b->files, (unsigned long long)b->bytes,
		    (unsigned long long)space_required(b));
}

int cmd_list(int argc, const char **argv, struct ctx *ctx)
{
	const struct option_spec opts[] = { { OPT_END, 0, NULL, NULL, NULL, NULL } };
	struct backup_info **list = NULL;
	struct strbuf js = STRBUF_INIT;
	size_t n = 0, i, j;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc > 1)
		return opt_usage_error(usage, "list takes at most one machine"), EXIT_USAGE;
	if (ctx_prepare(ctx) < 0)
		return EXIT_ERROR;
	if (argc == 1 && !valid_name(argv[0]))
		return error("'%s' is not a valid machine name", argv[0]), EXIT_ERROR;
	if (snapshot_list(ctx->repo, argc ? argv[0] : NULL, &list, &n) < 0)
		return EXIT_ERROR;
	if (ctx->json) {
		strbuf_addch(&js, '[');
		for (i = 0; i < n; i++) {
			if (i)
				strbuf_addch(&js, ',');
			add_json(&js, list[i]);
		}
		strbuf_addch(&js, ']');
		print_json(&js);
	} else if (n) {
		printf("%-10s %-18s %-12s %-20s %-9s %-16s %10s %10s  %s\n", "MACHINE", "SLOTS", "ID", "CREATED",
		       "DURATION", "DISKS", "SIZE", "REQUIRED", "LABEL");
		for (i = 0; i < n; i++) {
			const struct backup_info *b = list[i];
			char when[32], size[32], req[32], dur[32];

			strbuf_reset(&js);
			for (j = 0; j < b->nslots; j++)
				strbuf_addf(&js, "%s%s", j ? "," : "", b->slots[j]);
			printf("%-10s %-18s %-12.12s %-20s ", b->machine, js.buf, b->hex,
			       format_time(&b->start, when, sizeof(when)));
			snprintf(dur, sizeof(dur), "%.1fs", duration(b));
			strbuf_reset(&js);
			for (j = 0; j < b->ndisks; j++)
				strbuf_addf(&js, "%s%s", j ? "," : "", b->disks[j].label);
			printf("%-9s %-16s %10s %10s  %s\n", dur, js.buf, human_size(b->bytes, size, sizeof(size)),
			       human_size(space_required(b), req, sizeof(req)), b->label);
		}
	} else if (!ctx->quiet) {
		fprintf(stderr, "no backups%s%s\n", argc ? " of " : "", argc ? argv[0] : "");
	}
	strbuf_release(&js);
	snapshot_list_free(list, n);
	return EXIT_OK;
}
