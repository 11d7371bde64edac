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

/*
 * The service state ref is pushed so that a plain copy carries the
 * schedules and enrolments; a receiver keeps its own and refuses it (it
 * hides every ref but the key's slots). That refusal is no error: the
 * remote is remembered as one that keeps its state (remote.NAME.pushState
 * false), and the state is not offered to it again.
 */
static void state_refused(struct ctx *ctx, const struct remote *rm, const struct ref_update *u)
{
	git_config *cfg = NULL;
	char *key = xasprintf("remote.%s.pushState", rm->name);

	if (git_repository_config(&cfg, ctx->repo->git) == 0)
		git_config_set_bool(cfg, key, 0);
	git_config_free(cfg);
	free(key);
	if (!ctx->quiet && !ctx->json)
		warning("remote '%s' keeps its own service state (%s: %s); it is not pushed there again",
			rm->name, u->ref, u->reason ? u->reason : "refused");
}

/* Reports a push; returns its exit status. */
static int report(struct ctx *ctx, const struct remote *rm, const struct transfer_result *res,
		  struct strbuf *json)
{
	size_t i, pushed = 0, refused = 0;
	int keeps_state = 0, state_pushed = 0;
	char human[32];

	/* The state refused alone (a hidden ref, or slots taken in the same
	 * push) is a remote that keeps its own; refused with everything else
	 * it is one more refusal. */
	for (i = 0; i < res->nrefs; i++) {
		const struct ref_update *u = &res->refs[i];

		if (u->status == REF_UPDATED)
			keeps_state = 1;
		if (!strcmp(u->ref, REPO_STATE_REF) && u->status == REF_REFUSED && u->reason &&
		    strstr(u->reason, "hidden ref"))
			keeps_state = 1;
	}
	for (i = 0; i < res->nrefs; i++)
		if (res->refs[i].status == REF_REFUSED && (!keeps_state || strcmp(res->refs[i].ref, REPO_STATE_REF)))
			refused++;
	/* The remote's own words first: its hook says why. */
	if (refused && res->messages)
		fputs(res->messages, stderr);
	for (i = 0; i < res->nrefs; i++) {
		const struct ref_update *u = &res->refs[i];
		const char *machine, *slot;
		size_t mlen;

		ref_split(u->ref, &machine, &mlen, &slot);
		if (!strcmp(u->ref, REPO_STATE_REF) && (u->status != REF_REFUSED || keeps_state)) {
			if (u->status == REF_REFUSED)
				state_refused(ctx, rm, u);
			else if (u->status == REF_UPDATED)
				state_pushed = 1;
			continue;
		}
		if (u->status == REF_UPDATED && mlen)
			pushed++;
		if (u->status == REF_REFUSED)
			error("remote '%s' refused %s (%.*s %s): %s", rm->name, u->ref, (int)mlen, machine, slot,
			      u->reason ? u->reason : "no reason given");
		if (ctx->json || ctx->quiet)
			continue;
		if (u->status == REF_UPDATED || (u->status == REF_UPTODATE && ctx->verbose))
			printf("%.*s %s %.12s %s\n", (int)mlen, machine, slot, u->new_hex,
			       u->status == REF_UPDATED ? "pushed" : "up to date");
	}
	if (ctx->json) {
		struct strbuf doc = STRBUF_INIT;

		strbuf_addstr(&doc, "{\"remote\":");
		strbuf_add_json(&doc, rm->name);
		strbuf_addstr(&doc, ",\"url\":");
		strbuf_add_json(&doc, rm->url);
		strbuf_addstr(&doc, ",\"refs\":");
		transfer_refs_json(&doc, res, 1);
		strbuf_addf(&doc, ",\"pushed\":%zu,\"refused\":%zu,\"objects\":%llu,\"bytes\":%llu,"
			    "\"seconds\":%.3f}", pushed, refused, (unsigned long long)res->objects,
			    (unsigned long long)res->bytes, res->seconds);
		if (json)
			strbuf_add(json, doc.buf, doc.len);
		else
			print_json(&doc);
		strbuf_release(&doc);
	} else if (!ctx->quiet) {
		if (pushed)
			printf("pushed %zu slot%s to '%s': %llu objects, %s in %.1f s\n", pushed, pushed == 1 ? "" : "s",
			       rm->name, (unsigned long long)res->objects,
			       human_size(res->bytes, human, sizeof(human)), res->seconds);
		else if (!refused && state_pushed)
			printf("service state pushed to '%s'; its slots are up to date\n", rm->name);
		else if (!refused)
			printf("remote '%s' is up to date\n", rm->name);
	}
	return refused ? EXIT_ERROR : EXIT_OK;
}

/* 1 unless remote.NAME.pushState is false. */
static int push_state(struct ctx *ctx, const struct remote *rm)
{
	git_config *cfg = NULL;
	char *key = xasprintf("remote.%s.pushState", rm->name);
	int v = 1;

	if (git_repository_config(&cfg, ctx->repo->git) == 0 && git_config_get_bool(&v, cfg, key) < 0)
		v = 1;
	git_config_free(cfg);
	free(key);
	return v;
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

int push_to_remote(struct ctx *ctx, const char *name, const char *const *machines, size_t nmachines, long wait,
		   struct strbuf *json)
{
	struct remote *rm = NULL;
	struct transfer_result res = { 0 };
	char **refs = NULL, *def = NULL;
	size_t nrefs = 0, i;
	int lock = -1, ret = EXIT_ERROR, rc;

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
	/* The state goes with the slots, to git and S3 remotes alike. */
	if (nrefs && push_state(ctx, rm) && git_reference_name_to_id(&(git_oid){ 0 }, ctx->repo->git, REPO_STATE_REF) == 0) {
		refs = xrealloc(refs, (nrefs + 1) * sizeof(*refs));
		refs[nrefs++] = xstrdup(REPO_STATE_REF);
	}
	if (!nrefs && !ctx->json) {
		if (!ctx->quiet)
			printf("the repository has no backups; nothing to push\n");
		ret = EXIT_OK;
		goto out;
	}
	/* On S3, the push waits as long for a rotate of the bucket. */
	rm->push_wait = wait;
	rc = rm->ops->push(ctx->repo, rm, (const char *const *)refs, nrefs,
			   !ctx->quiet && !ctx->json && isatty(STDERR_FILENO), &res);
	if (rc == ERR_LOCKED)
		ret = EXIT_BUSY;
	if (rc < 0)
		goto out;
	ret = report(ctx, rm, &res, json);
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
		{ OPT_SECONDS, 0, "wait", &wait, "SECONDS", "wait this long for space reclamation (as long as it takes), and for a rotate of an S3 bucket (10 min), to end" },
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
	/* A format-1 repository is upgraded first, so the copy carries its state. */
	if (ctx_prepare(ctx) < 0 || repo_prepare_write(ctx->repo) < 0)
		return EXIT_ERROR;
	return push_to_remote(ctx, argc ? argv[0] : NULL, argc > 1 ? argv + 1 : NULL, argc > 1 ? argc - 1 : 0,
			      wait, NULL);
}
