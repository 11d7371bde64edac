#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "fsutil.h"
#include "remote.h"
#include "usage.h"

static const char *const usage[] = {
	"backup push [--wait SECONDS] [REMOTE [MACHINE...]]",
	NULL
};

/* Adds the slots of machine (every machine when NULL) to refs. */
static int collect_slots(struct repo *r, const char *machine, char ***refs, size_t *n)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	char *glob = machine ? xasprintf("refs/backups/%s/*", machine) : xstrdup("refs/backups/*/*");
	size_t before = *n;
	int err;

	if (git_reference_iterator_glob_new(&it, r->git, glob) < 0) {
		free(glob);
		return error_git("cannot list the slots");
	}
	while ((err = git_reference_next(&ref, it)) == 0) {
		const char *name = git_reference_name(ref), *sep = strchr(name + strlen("refs/backups/"), '/');

		/* Only refs/backups/MACHINE/SLOT, and only direct refs. */
		if (git_reference_type(ref) == GIT_REFERENCE_DIRECT && sep && !strchr(sep + 1, '/')) {
			*refs = xrealloc(*refs, (*n + 1) * sizeof(**refs));
			(*refs)[(*n)++] = xstrdup(name);
		}
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	free(glob);
	if (err != GIT_ITEROVER)
		return error_git("cannot list the slots");
	if (machine && *n == before)
		return error("machine '%s' has no backups in this repository; nothing to push", machine);
	return 0;
}

/* "web1 daily" from refs/backups/web1/daily. */
static void split_ref(const char *ref, const char **machine, size_t *mlen, const char **slot)
{
	*machine = ref + strlen("refs/backups/");
	*slot = strrchr(ref, '/') + 1;
	*mlen = *slot - 1 - *machine;
}

static void json_hex(struct strbuf *sb, const char *hex)
{
	if (*hex)
		strbuf_addf(sb, "\"%s\"", hex);
	else
		strbuf_addstr(sb, "null");
}

static const char *status_name(enum ref_status s)
{
	switch (s) {
	case REF_UPTODATE:
		return "up-to-date";
	case REF_UPDATED:
		return "pushed";
	case REF_REFUSED:
		return "refused";
	case REF_KEPT:
		return "kept";
	}
	return "?";
}

/* Reports a push; returns its exit status. */
static int report(struct ctx *ctx, const struct remote *rm, const struct transfer_result *res)
{
	struct strbuf js = STRBUF_INIT;
	size_t i, pushed = 0, refused = 0;
	char human[32];

	for (i = 0; i < res->nrefs; i++) {
		const struct ref_update *u = &res->refs[i];
		const char *machine, *slot;
		size_t mlen;

		split_ref(u->ref, &machine, &mlen, &slot);
		if (u->status == REF_UPDATED)
			pushed++;
		if (u->status == REF_REFUSED) {
			refused++;
			error("remote '%s' refused %s (%.*s %s): %s", rm->name, u->ref, (int)mlen, machine, slot,
			      u->reason ? u->reason : "no reason given");
		}
		if (ctx->json) {
			strbuf_addstr(&js, i ? ",{\"ref\":" : "{\"ref\":");
			strbuf_add_json(&js, u->ref);
			strbuf_addstr(&js, ",\"machine\":");
			{
				char *m = xstrndup(machine, mlen);
				strbuf_add_json(&js, m);
				free(m);
			}
			strbuf_addstr(&js, ",\"slot\":");
			strbuf_add_json(&js, slot);
			strbuf_addstr(&js, ",\"old\":");
			json_hex(&js, u->old_hex);
			strbuf_addstr(&js, ",\"new\":");
			json_hex(&js, u->new_hex);
			strbuf_addf(&js, ",\"status\":\"%s\",\"reason\":", status_name(u->status));
			if (u->status == REF_REFUSED && u->reason)
				strbuf_add_json(&js, u->reason);
			else
				strbuf_addstr(&js, "null");
			strbuf_addch(&js, '}');
		} else if (!ctx->quiet && (u->status == REF_UPDATED || (u->status == REF_UPTODATE && ctx->verbose))) {
			printf("%.*s %s %.12s %s\n", (int)mlen, machine, slot, u->new_hex,
			       u->status == REF_UPDATED ? "pushed" : "up to date");
		}
	}
	if (ctx->json) {
		struct strbuf doc = STRBUF_INIT;

		strbuf_addstr(&doc, "{\"remote\":");
		strbuf_add_json(&doc, rm->name);
		strbuf_addstr(&doc, ",\"url\":");
		strbuf_add_json(&doc, rm->url);
		strbuf_addf(&doc, ",\"refs\":[%s],\"pushed\":%zu,\"refused\":%zu,\"objects\":%llu,\"bytes\":%llu,"
			    "\"seconds\":%.3f}", js.buf, pushed, refused, (unsigned long long)res->objects,
			    (unsigned long long)res->bytes, res->seconds);
		print_json(&doc);
		strbuf_release(&doc);
	} else if (!ctx->quiet) {
		if (pushed)
			printf("pushed %zu slot%s to '%s': %llu objects, %s in %.1f s\n", pushed, pushed == 1 ? "" : "s",
			       rm->name, (unsigned long long)res->objects,
			       human_size(res->bytes, human, sizeof(human)), res->seconds);
		else if (!refused)
			printf("remote '%s' is up to date\n", rm->name);
	}
	strbuf_release(&js);
	return refused ? EXIT_ERROR : EXIT_OK;
}

/*
 * The remote a push goes to when none is named: the only remote there is.
 */
static char *default_remote(struct ctx *ctx)
{
	struct remote **list = NULL;
	size_t n = 0;
	char *name = NULL;

	if (remote_list(ctx->repo, &list, &n) < 0)
		return NULL;
	if (n == 1)
		name = xstrdup(list[0]->name);
	else if (!n)
		error("the repository has no remote; add one with 'backup remote add NAME URL'");
	else
		error("the repository has %zu remotes; name the one to push to (see 'backup remote list')", n);
	remote_list_free(list, n);
	return name;
}

int push_to_remote(struct ctx *ctx, const char *name, const char *const *machines, size_t nmachines, long wait)
{
	struct remote *rm = NULL;
	struct transfer_result res = { 0 };
	char **refs = NULL, *def = NULL;
	size_t nrefs = 0, i;
	int lock = -1, ret = EXIT_ERROR;

	if (!name) {
		name = def = default_remote(ctx);
		if (!name)
			goto out;
	}
	if (remote_open(&rm, ctx->repo, name) < 0)
		goto out;
	/* Space reclamation must not delete a pack git is reading. */
	lock = repo_lock_shared(ctx->repo, wait);
	if (lock == ERR_LOCKED) {
		error("the repository is busy reclaiming space; try again or pass --wait SECONDS");
		ret = EXIT_BUSY;
		goto out;
	}
	if (lock < 0)
		goto out;
	if (!nmachines && collect_slots(ctx->repo, NULL, &refs, &nrefs) < 0)
		goto out;
	for (i = 0; i < nmachines; i++)
		if (collect_slots(ctx->repo, machines[i], &refs, &nrefs) < 0)
			goto out;
	if (!nrefs && !ctx->json) {
		if (!ctx->quiet)
			printf("the repository has no backups; nothing to push\n");
		ret = EXIT_OK;
		goto out;
	}
	if (rm->ops->push(ctx->repo, rm, (const char *const *)refs, nrefs,
			  !ctx->quiet && !ctx->json && isatty(STDERR_FILENO), &res) < 0)
		goto out;
	ret = report(ctx, rm, &res);
out:
	repo_unlock(lock);
	transfer_result_release(&res);
	for (i = 0; i < nrefs; i++)
		free(refs[i]);
	free(refs);
	free(def);
	remote_free(rm);
	return ret;
}

int cmd_push(int argc, const char **argv, struct ctx *ctx)
{
	long wait = -1;
	const struct option_spec opts[] = {
		{ OPT_SECONDS, 0, "wait", &wait, "SECONDS", "wait this long for space reclamation to end (default: as long as it takes)" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	int i;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc >= 1 && !remote_valid_name(argv[0]))
		return opt_usage_error(usage, "'%s' cannot name a remote", argv[0]), EXIT_USAGE;
	for (i = 1; i < argc; i++)
		if (!valid_name(argv[i]))
			return opt_usage_error(usage, "'%s' cannot name a machine", argv[i]), EXIT_USAGE;
	if (ctx_prepare(ctx) < 0)
		return EXIT_ERROR;
	return push_to_remote(ctx, argc ? argv[0] : NULL, argc > 1 ? argv + 1 : NULL, argc > 1 ? argc - 1 : 0,
			      wait);
}
