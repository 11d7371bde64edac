#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "keys.h"
#include "proc.h"
#include "schedule.h"
#include "service.h"
#include "slots.h"
#include "snapshot.h"
#include "store.h"
#include "usage.h"
#include "walk.h"

static const char *const usage[] = {
	"backup run [--wait SECONDS] [--push[=REMOTE]] MACHINE...",
	"backup run [--wait SECONDS] [--push[=REMOTE]] --all",
	"backup run [--wait SECONDS] [--push[=REMOTE]] --snapshot [--label TEXT] MACHINE",
	NULL
};

struct run_opts {
	int all, snapshot;
	const char *label;
	const char *push;	/* --push: "" for the default remote, else its name */
	long wait;
};

/* Runs a hook (proc.h: a minimal environment plus BACKUP_*); returns its exit status. */
static int run_hook(const char *what, const char *cmd, const char *machine, const char *kind, int status)
{
	char *env[4] = { xasprintf("BACKUP_MACHINE=%s", machine), xasprintf("BACKUP_KIND=%s", kind),
			 status >= 0 ? xasprintf("BACKUP_STATUS=%d", status) : NULL, NULL };
	int ret = proc_shell(what, cmd, (const char *const *)env, 0);

	free(env[0]);
	free(env[1]);
	free(env[2]);
	return ret;
}

static void add_json_result(struct strbuf *js, const struct backup_info *b, const char *slot,
			    const struct walk_stats *ws)
{
	char when[32];
	size_t i;

	if (js->len > 1)
		strbuf_addch(js, ',');
	strbuf_addf(js, "{\"id\":\"%s\",\"machine\":", b->hex);
	strbuf_add_json(js, b->machine);
	strbuf_addf(js, ",\"slots\":[\"%s\"],\"created\":\"%s\",\"label\":", slot,
		    format_time(&b->start, when, sizeof(when)));
	strbuf_add_json(js, b->label);
	strbuf_addf(js, ",\"duration_seconds\":%.3f,\"files\":%llu,\"bytes\":%llu,"
		    "\"files_read\":%llu,\"bytes_read\":%llu,\"bytes_stored\":%llu,\"unreadable\":[",
		    (b->end.tv_sec - b->start.tv_sec) + (b->end.tv_nsec - b->start.tv_nsec) / 1e9,
		    (unsigned long long)b->files, (unsigned long long)b->bytes,
		    (unsigned long long)b->files_read, (unsigned long long)b->bytes_read,
		    (unsigned long long)b->bytes_stored);
	for (i = 0; i < ws->nunreadable; i++) {
		if (i)
			strbuf_addch(js, ',');
		strbuf_add_json(js, ws->unreadable[i]);
	}
	strbuf_addstr(js, "]}");
}

static int apply_retention(struct ctx *ctx, const char *machine, time_t now)
{
	struct slot_plan plan;
	int ret = slots_rotate(ctx->repo, machine, now, 0, &plan);

	slot_plan_release(&plan);
	return ret;
}

/* Backs up one machine; returns an exit status. */
static int run_machine(struct ctx *ctx, const char *name, const struct run_opts *o, struct strbuf *js)
{
	struct machine *m = NULL;
	struct backup_info b = { 0 }, **prev = NULL;
	struct store *store = NULL;
	struct walk_stats ws = { 0 };
	struct store_stats ss;
	const char *kind = o->snapshot ? "snapshot" : "automatic";
	const char *slot = o->snapshot ? SLOT_SNAPSHOT : SLOT_DAILY;
	struct walker *ahead = NULL;
	size_t nprev = 0, i;
	int lock = -1, repo_lock_fd = -1, ret = EXIT_ERROR, hook, err;

	if (machine_load(&m, ctx->cfg, name) < 0)
		goto out;
	if (!service_check_enrolled(ctx->repo, m->name)) {
		error("machine '%s' is not enrolled in the backup service; run 'backup enable %s' first",
		      m->name, m->name);
		goto out;
	}
	/*
	 * An encrypted repository's key may still be opening (KEY_LATE).
	 * Without a preHook, the first disk's folders are listed and statted
	 * meanwhile (walk_start()), which needs no key; the key is waited for
	 * before anything else. A wrong passphrase still stops the run here,
	 * having taken no lock, run no hook and written nothing.
	 */
	if (!m->pre_hook && m->ndisks && ctx_key_pending(ctx)) {
		struct walk_opts pre = {
			.source = m->disks[0].source, .excludes = m->excludes, .nexcludes = m->nexcludes,
		};

		b.start = now_utc();
		ahead = walk_start(&pre);
	}
	if (ctx_key(ctx) < 0)
		goto out;
	/*
	 * What was read ahead must not be older than a wait for a lock (the
	 * backup starts after it): when a lock is busy, it is dropped and the
	 * walk reads the source after the wait.
	 */
	lock = repo_lock(ctx->repo, m->name, ahead ? 0 : o->wait);
	if (lock == ERR_LOCKED && ahead && o->wait) {
		walk_cancel(ahead);
		ahead = NULL;
		lock = repo_lock(ctx->repo, m->name, o->wait);
	}
	if (lock == ERR_LOCKED) {
		ret = machine_busy(m->name);
		goto out;
	}
	if (lock < 0)
		goto out;
	/* Space reclamation must not delete what this run deduplicates against. */
	repo_lock_fd = repo_lock_shared(ctx->repo, ahead ? 0 : -1);
	if (repo_lock_fd == ERR_LOCKED && ahead) {
		walk_cancel(ahead);
		ahead = NULL;
		repo_lock_fd = repo_lock_shared(ctx->repo, -1);
	}
	if (repo_lock_fd < 0)
		goto out;
	if (m->pre_hook) {
		hook = run_hook("preHook", m->pre_hook, m->name, kind, -1);
		if (hook) {
			error("the preHook of '%s' failed (exit %d); no backup taken", m->name, hook);
			goto out;
		}
	}
	if (!ahead)
		b.start = now_utc();
	b.machine = m->name;
	b.kind = (char *)kind;
	b.label = (char *)(o->label ? o->label : "");
	b.layout = m;
	b.disks = xcalloc(m->ndisks, sizeof(*b.disks));
	b.ndisks = m->ndisks;
	if (snapshot_list(ctx->repo, m->name, &prev, &nprev) < 0 || store_open(&store, ctx->repo) < 0)
		goto out_hook;
	for (i = 0; i < m->ndisks; i++) {
		struct backup_disk *pd = nprev ? backup_disk(prev[0], m->disks[i].label) : NULL;
		struct walk_opts wo = {
			.repo = ctx->repo, .store = store, .source = m->disks[i].source,
			.excludes = m->excludes, .nexcludes = m->nexcludes,
			.prev_tree = pd ? pd->tree : NULL,
			.progress = !ctx->quiet && !ctx->json && isatty(2),
			.expected_bytes = nprev ? prev[0]->bytes : 0,
		};

		b.disks[i].label = m->disks[i].label;
		b.disks[i].source = m->disks[i].source;
		b.disks[i].filesystem = m->disks[i].filesystem;
		b.disks[i].size = m->disks[i].size;
		verbose("reading disk '%s' of '%s' from '%s'", m->disks[i].label, m->name, m->disks[i].source);
		if (i == 0 && ahead) {
			err = walk_finish(ahead, &wo, &ws, b.disks[i].tree);
			ahead = NULL;
		} else {
			err = walk_disk(&wo, &ws, b.disks[i].tree);
		}
		if (err < 0 || interrupted)
			goto out_hook;
	}
	if (interrupted)
		goto out_hook;
	b.end = now_utc();
	store_get_stats(store, &ss);
	b.files = ws.files;
	b.bytes = ws.bytes;
	b.files_read = ws.files_read;
	b.bytes_read = ws.bytes_read;
	b.bytes_stored = ss.bytes_new;
	/* The commit and every object under it are durable before the slot moves. */
	if (snapshot_commit(store, &b) < 0 ||
	    snapshot_set_slot(ctx->repo, m->name, slot, b.id,
			      o->snapshot ? "backup: manual snapshot" : "backup: automatic backup") < 0)
		goto out_hook;
	/* The new backup is daily (weekly too on the weekly day); what falls out of every slot goes. */
	if (!o->snapshot && apply_retention(ctx, m->name, b.start.tv_sec) < 0)
		goto out_hook;
	ret = ws.nunreadable ? EXIT_PARTIAL : EXIT_OK;
	if (js)
		add_json_result(js, &b, slot, &ws);
	else if (!ctx->quiet)
		printf("%s %s %s: %llu files, %llu bytes, %llu read, %llu stored%s\n",
		       m->name, slot, b.hex, (unsigned long long)b.files, (unsigned long long)b.bytes,
		       (unsigned long long)b.bytes_read, (unsigned long long)b.bytes_stored,
		       ws.nunreadable ? " (some files could not be read)" : "");
out_hook:
	if (m->post_hook) {
		hook = run_hook("postHook", m->post_hook, m->name, kind, ret);
		if (hook)
			warning("the postHook of '%s' failed (exit %d)", m->name, hook);
	}
out:
	walk_cancel(ahead);
	repo_unlock(repo_lock_fd);
	repo_unlock(lock);
	store_free(store);
	snapshot_list_free(prev, nprev);
	walk_stats_release(&ws);
	free(b.disks);
	machine_free(m);
	return ret;
}

/* The remote machine name pushes to: --push=REMOTE, machine.push,
 * backup.push; "" for the only remote (a bare --push); NULL for none. */
static char *push_remote(struct ctx *ctx, const struct run_opts *o, const char *name)
{
	struct machine *m = NULL;
	char *r = NULL;

	if (o->push && *o->push)
		return xstrdup(o->push);
	if (machine_load(&m, ctx->cfg, name) == 0 && m->push)
		r = xstrdup(m->push);
	machine_free(m);
	if (!r && ctx->cfg->push)
		r = xstrdup(ctx->cfg->push);
	if (!r && o->push)
		r = xstrdup("");
	return r;
}

/*
 * After the backups: pushes the machines backed up, grouped by the remote
 * each goes to. A push that fails never touches the backups taken: it
 * gives EXIT_PUSH. Sets *wanted when some machine was to be pushed.
 */
static int push_after(struct ctx *ctx, const struct run_opts *o, const char *const *done, size_t ndone,
		      struct strbuf *json, int *wanted)
{
	char **remotes = xcalloc(ndone + 1, sizeof(*remotes));
	const char **group = xcalloc(ndone + 1, sizeof(*group));
	size_t i, j, k, before;
	int ret = EXIT_OK;

	for (i = 0; i < ndone; i++)
		remotes[i] = push_remote(ctx, o, done[i]);
	for (i = 0; i < ndone; i++) {
		size_t ng = 0;
		int r;

		if (!remotes[i])
			continue;
		for (j = 0; j < i; j++)
			if (remotes[j] && !strcmp(remotes[j], remotes[i]))
				break;
		if (j < i)
			continue;
		for (k = i; k < ndone; k++)
			if (remotes[k] && !strcmp(remotes[k], remotes[i]))
				group[ng++] = done[k];
		if (json && *wanted)
			strbuf_addch(json, ',');
		*wanted = 1;
		before = json ? json->len : 0;
		r = push_to_remote(ctx, *remotes[i] ? remotes[i] : NULL, group, ng, -1, json);
		/* A push that reached nothing still has its entry. */
		if (json && json->len == before) {
			strbuf_addstr(json, "{\"remote\":");
			if (*remotes[i])
				strbuf_add_json(json, remotes[i]);
			else
				strbuf_addstr(json, "null");
			strbuf_addstr(json, ",\"failed\":true}");
		}
		if (r != EXIT_OK) {
			error("backed up, but the push%s%s%s failed; the backups are kept here and the next push sends them",
			      *remotes[i] ? " to '" : "", remotes[i], *remotes[i] ? "'" : "");
			ret = EXIT_PUSH;
		}
	}
	for (i = 0; i < ndone; i++)
		free(remotes[i]);
	free(remotes);
	free(group);
	return ret;
}

/*
 * A repository whose state says it is not encrypted while its slots name
 * encrypted backups had its state replaced or lost (a copy of a remote that
 * served another state): a run would write plaintext beside them. Returns
 * 0, or -1 after refusing.
 */
static int refuse_lowered(struct repo *r)
{
	char *ref = NULL;
	int found;

	if (repo_is_encrypted(r))
		return 0;
	found = snapshot_find_sealed(r, &ref);
	if (found > 0)
		error("repository '%s' says it is not encrypted (format %d), yet %s names an encrypted backup: "
		      "its state was replaced or lost; no backup taken (take the repository from a copy you trust)",
		      r->path, r->version, ref);
	free(ref);
	return found ? -1 : 0;
}

int cmd_run(int argc, const char **argv, struct ctx *ctx)
{
	struct run_opts o = { .wait = 0 };
	const struct option_spec opts[] = {
		{ OPT_BOOL, 0, "all", &o.all, NULL, "every enrolled machine" },
		{ OPT_BOOL, 0, "snapshot", &o.snapshot, NULL, "take the manual snapshot (replaces the previous one)" },
		{ OPT_STRING, 0, "label", &o.label, "TEXT", "the snapshot's label" },
		{ OPT_SECONDS, 0, "wait", &o.wait, "SECONDS", "wait this long for a busy machine (default: fail at once)" },
		{ OPT_OPTSTRING, 0, "push", &o.push, "REMOTE", "then push the backups taken (default: machine.push, backup.push, the only remote)" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	struct strbuf js = STRBUF_INIT;
	char **names = NULL, **done = NULL;
	size_t n = 0, ndone = 0, i;
	int ret = EXIT_OK;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	catch_interrupts();
	if (o.all ? argc > 0 : argc == 0)
		return opt_usage_error(usage, "name machines or --all, not both nor neither"), EXIT_USAGE;
	if (o.snapshot && (o.all || argc != 1))
		return opt_usage_error(usage, "a snapshot is of one machine"), EXIT_USAGE;
	if (o.label && !o.snapshot)
		return opt_usage_error(usage, "--label goes with --snapshot"), EXIT_USAGE;
	if (o.push && *o.push && !valid_name(o.push))
		return opt_usage_error(usage, "'%s' cannot name a remote", o.push), EXIT_USAGE;
	if (ctx_prepare(ctx) < 0 || repo_prepare_write(ctx->repo) < 0 || refuse_lowered(ctx->repo) < 0)
		return EXIT_ERROR;
	if (o.all) {
		if (machine_list(&names, &n, ctx->cfg) < 0)
			return EXIT_ERROR;
	} else {
		names = xcalloc(argc, sizeof(*names));
		for (i = 0; i < (size_t)argc; i++)
			names[n++] = xstrdup(argv[i]);
	}
	strbuf_addch(&js, '[');
	for (i = 0; i < n && !interrupted; i++) {
		int r;

		if (o.all && !service_check_enrolled(ctx->repo, names[i]))
			continue;
		r = run_machine(ctx, names[i], &o, ctx->json ? &js : NULL);
		ret = worse_status(ret, r);
		/* A key that did not open stops the whole run, as it did before
		 * any machine when it was opened first. */
		if (ctx_key(ctx) < 0) {
			strbuf_release(&js);
			free_strv(names, n);
			free_strv(done, ndone);
			return EXIT_ERROR;
		}
		if (r == EXIT_OK || r == EXIT_PARTIAL) {
			done = xrealloc(done, (ndone + 1) * sizeof(*done));
			done[ndone++] = xstrdup(names[i]);
		}
	}
	strbuf_addch(&js, ']');
	if (interrupted) {
		error("interrupted: no backup was taken of the machine being read; every earlier backup is intact");
		ret = EXIT_INTERRUPTED;
	} else {
		struct strbuf pj = STRBUF_INIT;
		int wanted = 0, p = push_after(ctx, &o, (const char *const *)done, ndone, ctx->json ? &pj : NULL, &wanted);

		ret = worse_status(ret, p);
		if (ctx->json && wanted) {
			/* With a push, one object: the backups and the pushes. */
			struct strbuf doc = STRBUF_INIT;

			strbuf_addf(&doc, "{\"backups\":%s,\"pushes\":[%s]}", js.buf, pj.buf);
			strbuf_release(&js);
			js = doc;
		}
		strbuf_release(&pj);
	}
	if (ctx->json)
		print_json(&js);
	strbuf_release(&js);
	free_strv(names, n);
	free_strv(done, ndone);
	return ret;
}
