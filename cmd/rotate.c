#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "fsutil.h"
#include "gc.h"
#include "remote.h"
#include "slots.h"
#include "snapshot.h"
#include "usage.h"

static const char *const usage[] = {
	"backup rotate [--dry-run] [--wait SECONDS] [MACHINE...]",
	"backup rotate --remote REMOTE [--dry-run] [MACHINE...]",
	NULL
};

/* Every machine that has a slot, from refs/backups/MACHINE/SLOT. */
static int machines_with_backups(struct repo *r, char ***out, size_t *nr)
{
	struct backup_info **list = NULL;
	size_t n = 0, i, j, k = 0;
	char **names;

	if (snapshot_list(r, NULL, &list, &n) < 0)
		return -1;
	names = xcalloc(n + 1, sizeof(*names));
	for (i = 0; i < n; i++) {
		for (j = 0; j < k; j++)
			if (!strcmp(names[j], list[i]->machine))
				break;
		if (j == k)
			names[k++] = xstrdup(list[i]->machine);
	}
	snapshot_list_free(list, n);
	*out = names;
	*nr = k;
	return 0;
}

static void add_plan_json(struct strbuf *js, const struct slot_plan *p)
{
	char when[32], names[64];
	size_t i;
	int first;

	strbuf_addstr(js, "{\"machine\":");
	strbuf_add_json(js, p->machine);
	strbuf_addstr(js, ",\"keep\":[");
	for (i = 0, first = 1; i < p->n; i++) {
		const struct slot_change *c = &p->c[i];
		struct timespec t = { c->created, 0 };

		if (!c->after)
			continue;
		strbuf_addf(js, "%s{\"id\":\"%s\",\"created\":\"%s\",\"slots\":[", first ? "" : ",", c->hex,
			    format_time(&t, when, sizeof(when)));
		slot_names(c->after, names, sizeof(names));
		for (char *s = strtok(names, ","), *sep = ""; s; s = strtok(NULL, ","), sep = ",")
			strbuf_addf(js, "%s\"%s\"", sep, s);
		strbuf_addstr(js, "]}");
		first = 0;
	}
	strbuf_addstr(js, "],\"delete\":[");
	for (i = 0, first = 1; i < p->n; i++) {
		const struct slot_change *c = &p->c[i];
		struct timespec t = { c->created, 0 };

		if (c->after)
			continue;
		strbuf_addf(js, "%s{\"id\":\"%s\",\"created\":\"%s\"}", first ? "" : ",", c->hex,
			    format_time(&t, when, sizeof(when)));
		first = 0;
	}
	strbuf_addstr(js, "]}");
}

static void print_plan(const struct slot_plan *p, int dry_run, time_t now)
{
	char when[32], names[64];
	size_t i;

	for (i = 0; i < p->n; i++) {
		const struct slot_change *c = &p->c[i];
		struct timespec t = { c->created, 0 };

		printf("%s: %s %.12s %s  %s (%.1f days old)\n", p->machine,
		       c->after ? "keep  " : dry_run ? "would delete" : "delete",
		       c->hex, format_time(&t, when, sizeof(when)),
		       slot_names(c->after ? c->after : c->before, names, sizeof(names)),
		       (now - c->created) / 86400.0);
	}
}

void print_reclaim(struct ctx *ctx, int result, int dry_run, const struct gc_stats *st, struct strbuf *js)
{
	char b[32];
	uint64_t freed = dry_run ? st->dead_bytes :
			 st->bytes_before > st->bytes_after ? st->bytes_before - st->bytes_after : 0;

	if (js) {
		strbuf_addf(js, "\"reclaim\":{\"dry_run\":%s,\"deferred\":%s,\"bytes\":%llu,\"packs_before\":%zu,"
			    "\"packs_after\":%zu,\"packs_deleted\":%zu,\"packs_rewritten\":%zu,\"dead_objects\":%llu,"
			    "\"live_objects\":%llu}",
			    dry_run ? "true" : "false", result == ERR_LOCKED ? "true" : "false", (unsigned long long)freed,
			    st->packs_before, dry_run ? st->packs_before - st->packs_deleted : st->packs_after,
			    st->packs_deleted, st->packs_rewritten, (unsigned long long)st->dead_objects,
			    (unsigned long long)st->live_objects);
		return;
	}
	if (ctx->quiet)
		return;
	if (result == ERR_LOCKED)
		printf("space reclamation deferred: another job is using the repository; the next rotate does it\n");
	else if (result == 0)
		printf("%s %s: %zu packs deleted, %zu rewritten, %llu dead objects\n",
		       dry_run ? "would reclaim" : "reclaimed", human_size(freed, b, sizeof(b)),
		       st->packs_deleted, st->packs_rewritten, (unsigned long long)st->dead_objects);
}

/* Retention on an S3 remote: the plans, then what went and what stayed. */
static int rotate_remote(struct ctx *ctx, const char *name, const char *const *machines, size_t n, int dry_run)
{
	struct remote *rm = NULL;
	struct remote_rotate rr;
	struct strbuf js = STRBUF_INIT;
	time_t now = now_utc().tv_sec;
	char when[32], b[32];
	size_t i;
	int ret = EXIT_ERROR, rc;

	memset(&rr, 0, sizeof(rr));
	if (remote_open(&rm, ctx->repo, name) < 0)
		goto out;
	if (rm->kind != REMOTE_S3) {
		error("remote '%s' is not on S3; rotate --remote applies the rules to an S3 bucket "
		      "(a git remote keeps what it is pushed; a receiver rotates itself)", name);
		goto out;
	}
	rc = transport_s3_rotate(ctx->repo, rm, machines, n, now, dry_run, &rr);
	if (rc == ERR_LOCKED)
		ret = EXIT_BUSY;
	if (rc < 0)
		goto out;
	if (rr.locked_until) {
		struct timespec t = { rr.locked_until, 0 };

		format_time(&t, when, sizeof(when));
	}
	if (ctx->json) {
		strbuf_addstr(&js, "{\"remote\":");
		strbuf_add_json(&js, rm->name);
		strbuf_addstr(&js, ",\"machines\":[");
		for (i = 0; i < rr.nplans; i++) {
			if (i)
				strbuf_addch(&js, ',');
			add_plan_json(&js, &rr.plans[i]);
		}
		strbuf_addf(&js, "],\"dry_run\":%s,\"slots_moved\":%zu,\"manifests_deleted\":%zu,"
			    "\"packs_deleted\":%zu,\"bytes\":%llu,\"locked\":%zu,\"locked_until\":",
			    dry_run ? "true" : "false", rr.manifests_written, rr.manifests_deleted, rr.packs_deleted,
			    (unsigned long long)rr.bytes_deleted, rr.locked);
		if (rr.locked_until)
			strbuf_add_json(&js, when);
		else
			strbuf_addstr(&js, "null");
		strbuf_addf(&js, ",\"young_packs\":%zu,\"unjudged\":%zu,\"packs_repacked\":%zu,\"packs_written\":%zu,"
			    "\"bytes_fetched\":%llu}", rr.young, rr.unjudged, rr.packs_repacked, rr.packs_written,
			    (unsigned long long)rr.bytes_fetched);
		print_json(&js);
	} else if (!ctx->quiet) {
		for (i = 0; i < rr.nplans; i++)
			print_plan(&rr.plans[i], dry_run, now);
		if (dry_run) {
			printf("remote '%s': nothing changed (dry run)\n", rm->name);
		} else {
			printf("remote '%s': %zu manifests and %zu packs deleted (%s), %zu slots moved\n",
			       rm->name, rr.manifests_deleted, rr.packs_deleted,
			       human_size(rr.bytes_deleted, b, sizeof(b)), rr.manifests_written);
			if (rr.packs_repacked)
				printf("remote '%s': %zu packs partly needed repacked into %zu\n", rm->name,
				       rr.packs_repacked, rr.packs_written);
			if (rr.locked)
				printf("remote '%s': %zu objects left: Object Lock keeps them until %s at the latest\n",
				       rm->name, rr.locked, rr.locked_until ? when : "a date the server did not say");
			if (rr.young)
				printf("remote '%s': %zu packs no manifest names left: younger than a day, "
				       "a push may still be sending them\n", rm->name, rr.young);
		}
	}
	ret = EXIT_OK;
out:
	strbuf_release(&js);
	remote_rotate_release(&rr);
	remote_free(rm);
	return ret;
}

int cmd_rotate(int argc, const char **argv, struct ctx *ctx)
{
	int dry_run = 0;
	long wait = 0;
	const char *remote = NULL;
	const struct option_spec opts[] = {
		{ OPT_BOOL, 'n', "dry-run", &dry_run, NULL, "print the plan and what would be reclaimed; change nothing" },
		{ OPT_SECONDS, 0, "wait", &wait, "SECONDS", "wait this long for busy machines and the repository" },
		{ OPT_STRING, 0, "remote", &remote, "REMOTE", "apply the rules to this S3 remote's bucket instead" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	struct strbuf js = STRBUF_INIT;
	char **names = NULL;
	size_t n = 0, i, ndrop = 0;
	unsigned char (*drop)[SHA1_LEN] = NULL;
	struct gc_stats st;
	time_t now;
	int ret = EXIT_OK, r;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	for (i = 0; i < (size_t)argc; i++)
		if (!valid_name(argv[i]))
			return opt_usage_error(usage, "'%s' is not a valid machine name", argv[i]), EXIT_USAGE;
	if (remote && !remote_valid_name(remote))
		return opt_usage_error(usage, "'%s' cannot name a remote", remote), EXIT_USAGE;
	if (remote)
		return ctx_prepare(ctx) < 0 ? EXIT_ERROR : rotate_remote(ctx, remote, argv, argc, dry_run);
	if (ctx_prepare(ctx) < 0 || (!dry_run && repo_prepare_write(ctx->repo) < 0))
		return EXIT_ERROR;
	now = now_utc().tv_sec;
	if (argc) {
		names = xcalloc(argc, sizeof(*names));
		for (i = 0; i < (size_t)argc; i++)
			names[n++] = xstrdup(argv[i]);
	} else if (machines_with_backups(ctx->repo, &names, &n) < 0) {
		return EXIT_ERROR;
	}
	strbuf_addstr(&js, "{\"machines\":[");
	for (i = 0; i < n; i++) {
		struct slot_plan plan = { 0 };
		int lock = repo_lock(ctx->repo, names[i], wait), shared;

		if (lock == ERR_LOCKED) {
			ret = worse_status(ret, machine_busy(names[i]));
			continue;
		}
		/* Refs move only with the repository held shared: never during a reclamation. */
		shared = lock < 0 ? -1 : repo_lock_shared(ctx->repo, -1);
		r = shared < 0 ? -1 : slots_rotate(ctx->repo, names[i], now, dry_run, &plan);
		repo_unlock(shared);
		repo_unlock(lock);
		if (r < 0)
			ret = worse_status(ret, EXIT_ERROR);
		if (!plan.machine)
			continue;
		for (size_t k = 0; k < plan.n; k++)
			if (!plan.c[k].after) {
				drop = xrealloc(drop, (ndrop + 1) * sizeof(*drop));
				memcpy(drop[ndrop++], plan.c[k].id, SHA1_LEN);
			}
		if (ctx->json) {
			if (i)
				strbuf_addch(&js, ',');
			add_plan_json(&js, &plan);
		} else if (!ctx->quiet) {
			print_plan(&plan, dry_run, now);
		}
		slot_plan_release(&plan);
	}
	strbuf_addstr(&js, "],");
	r = gc_reclaim(ctx->repo, wait, dry_run, (const unsigned char (*)[SHA1_LEN])drop, ndrop, &st);
	if (r < 0 && r != ERR_LOCKED)
		ret = worse_status(ret, EXIT_ERROR);
	print_reclaim(ctx, r, dry_run, &st, ctx->json ? &js : NULL);
	strbuf_addch(&js, '}');
	if (ctx->json)
		print_json(&js);
	strbuf_release(&js);
	free_strv(names, n);
	free(drop);
	return ret;
}
