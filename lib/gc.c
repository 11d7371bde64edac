#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "dedup.h"
#include "fsutil.h"
#include "gc.h"
#include "pack.h"
#include "packidx.h"
#include "store.h"
#include "usage.h"

#define GC_PACK_MAX ((size_t)48 << 20)

static int mark_tree(struct repo *r, struct dedup *live, const git_oid *id)
{
	git_tree *t = NULL;
	size_t i, n;
	int ret = 0;

	if (dedup_has_oid(live, id->id))
		return 0;
	if (git_tree_lookup(&t, r->git, id) < 0)
		return error("tree %s of a kept backup cannot be read; run 'backup check'", git_oid_tostr_s(id));
	dedup_add_oid(live, id->id);
	n = git_tree_entrycount(t);
	for (i = 0; i < n && !ret; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);

		if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
			ret = mark_tree(r, live, git_tree_entry_id(e));
		else
			dedup_add_oid(live, git_tree_entry_id(e)->id);
	}
	git_tree_free(t);
	return ret;
}

int gc_mark_backup(struct repo *r, struct dedup *live, const git_oid *id)
{
	git_commit *c = NULL;
	int ret;

	if (dedup_has_oid(live, id->id))
		return 0;
	if (git_commit_lookup(&c, r->git, id) < 0)
		return error("backup %s cannot be read; run 'backup check'", git_oid_tostr_s(id));
	dedup_add_oid(live, id->id);
	ret = mark_tree(r, live, git_commit_tree_id(c));
	git_commit_free(c);
	return ret;
}

/* Marks everything every ref reaches; a ref to something unreadable stops reclamation. */
static int mark(struct repo *r, struct dedup *live, struct dedup *drop)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	int ret = 0, err;

	if (git_reference_iterator_new(&it, r->git) < 0)
		return error_git("cannot list the refs");
	while (!ret && (err = git_reference_next(&ref, it)) == 0) {
		git_reference *res = NULL;
		git_commit *c = NULL;

		if (git_reference_resolve(&res, ref) == 0 && git_reference_target(res) &&
		    !dedup_has_oid(drop, git_reference_target(res)->id)) {
			const git_oid *id = git_reference_target(res);

			if (git_commit_lookup(&c, r->git, id) < 0) {
				ret = error("ref '%s' names an unreadable commit; run 'backup check' before reclaiming space",
					    git_reference_name(ref));
			} else {
				dedup_add_oid(live, id->id);
				ret = mark_tree(r, live, git_commit_tree_id(c));
			}
		}
		git_commit_free(c);
		git_reference_free(res);
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	return ret;
}

/*
 * Rewrites each reflog to the entries whose commit lives, oldest first, so
 * that every entry's "old" id is again the entry before it (git fsck checks
 * both ids of every entry). Counts the entries dropped in *dropped; returns
 * -1 when a reflog cannot be rewritten: nothing may be deleted then, or the
 * reflog would name missing objects.
 */
static int prune_reflogs(struct repo *r, struct dedup *live, int dry_run, size_t *dropped)
{
	git_strarray refs = { 0 };
	size_t i;
	int ret = 0;

	*dropped = 0;
	if (git_reference_list(&refs, r->git) < 0)
		return error_git("cannot list the refs");
	for (i = 0; i < refs.count; i++) {
		git_reflog *log = NULL;
		git_oid zero = { { 0 } };
		size_t n, k, m = 0;
		int broken = 0;
		git_oid *ids;
		git_signature **sigs;
		char **msgs;

		if (git_reflog_read(&log, r->git, refs.strings[i]) < 0)
			continue;
		n = git_reflog_entrycount(log);
		ids = xcalloc(n + 1, sizeof(*ids));
		sigs = xcalloc(n + 1, sizeof(*sigs));
		msgs = xcalloc(n + 1, sizeof(*msgs));
		/* Index 0 is the newest entry. A reflog that starts mid-history
		 * (a copy that git made keeps no reflogs) is rewritten too: its
		 * first entry's old id may be a commit that dies now. */
		for (k = n; k-- > 0;) {
			const git_reflog_entry *e = git_reflog_entry_byindex(log, k);
			const char *msg = git_reflog_entry_message(e);

			if (!dedup_has_oid(live, git_reflog_entry_id_new(e)->id))
				continue;
			if (!git_oid_equal(git_reflog_entry_id_old(e), m ? &ids[m - 1] : &zero))
				broken = 1;
			ids[m] = *git_reflog_entry_id_new(e);
			git_signature_dup(&sigs[m], git_reflog_entry_committer(e));
			msgs[m] = xstrdup(msg ? msg : "");
			m++;
		}
		*dropped += n - m;
		if (!dry_run && (m < n || broken)) {
			while (git_reflog_entrycount(log))
				git_reflog_drop(log, 0, 0);
			for (k = 0; k < m; k++)
				git_reflog_append(log, &ids[k], sigs[k], msgs[k]);
			if (git_reflog_write(log) < 0)
				ret = error_git("cannot rewrite a reflog; no space was reclaimed");
		}
		for (k = 0; k < m; k++) {
			git_signature_free(sigs[k]);
			free(msgs[k]);
		}
		free(ids);
		free(sigs);
		free(msgs);
		git_reflog_free(log);
		if (ret)
			break;
	}
	git_strarray_dispose(&refs);
	return ret;
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

struct rewriter {
	struct repo *repo;
	struct pack_writer *pw;
	struct dedup_entry *side;
	size_t nside, aside;
	struct dedup *copied;	/* what is in the new packs already */
};

static int rewriter_flush(struct rewriter *w)
{
	char *name = NULL;
	int ret = pack_writer_flush(w->pw, &name);

	if (!ret && name)
		ret = dedup_write_sidecar(w->repo->dedup_dir, name, w->side, w->nside);
	w->nside = 0;
	free(name);
	return ret;
}

static int cmp_offset(const void *a, const void *b, void *arg)
{
	const uint64_t *off = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return off[x] < off[y] ? -1 : off[x] > off[y];
}

static int cmp_side_oid(const void *key, const void *elem)
{
	return memcmp(key, ((const struct dedup_entry *)elem)->oid, SHA1_LEN);
}

static int cmp_side(const void *a, const void *b)
{
	return memcmp(((const struct dedup_entry *)a)->oid, ((const struct dedup_entry *)b)->oid, SHA1_LEN);
}

int gc_copy_live(struct pack_writer *pw, git_odb *odb, const char *pack_path, const struct packidx *idx,
		 struct dedup *live, struct dedup *copied, int (*moved)(const unsigned char *oid, void *arg),
		 void *arg)
{
	size_t *order = xcalloc(idx->nr + 1, sizeof(*order)), i, k;
	int fd = open(pack_path, O_RDONLY | O_CLOEXEC), ret = 0;
	uint64_t end;
	struct strbuf raw = STRBUF_INIT;

	if (fd < 0) {
		free(order);
		return error("cannot read '%s': %s", pack_path, strerror(errno));
	}
	end = file_size(pack_path) - SHA1_LEN;
	for (i = 0; i < idx->nr; i++)
		order[i] = i;
	qsort_r(order, idx->nr, sizeof(*order), cmp_offset, idx->offset);
	for (k = 0; k < idx->nr && !ret; k++) {
		size_t i = order[k];
		const unsigned char *oid = idx->oids + i * SHA1_LEN;
		uint64_t start = idx->offset[i], stop = k + 1 < idx->nr ? idx->offset[order[k + 1]] : end;
		int type;

		if (!dedup_has_oid(live, oid) || (copied && dedup_has_oid(copied, oid)))
			continue;
		if (stop <= start || stop - start > ((uint64_t)1 << 32)) {
			ret = error("pack '%s' is damaged near object %zu; run 'backup check --read-data'", pack_path, i);
			break;
		}
		strbuf_reset(&raw);
		strbuf_grow(&raw, stop - start);
		if (pread(fd, raw.buf, stop - start, start) != (ssize_t)(stop - start)) {
			ret = error("cannot read '%s': %s", pack_path, strerror(errno));
			break;
		}
		strbuf_setlen(&raw, stop - start);
		type = (raw.buf[0] >> 4) & 7;
		if (type == 6 || type == 7) {
			/* A delta (a pack stock git wrote): store the whole object instead. */
			git_odb_object *obj = NULL;
			git_oid id;

			memcpy(id.id, oid, SHA1_LEN);
			if (git_odb_read(&obj, odb, &id) < 0) {
				ret = error_git("cannot read an object to move");
				break;
			}
			enum pack_type t = git_odb_object_type(obj) == GIT_OBJECT_BLOB ? PACK_BLOB :
					   git_odb_object_type(obj) == GIT_OBJECT_TREE ? PACK_TREE : PACK_COMMIT;
			if (pack_writer_add(pw, t, oid, git_odb_object_data(obj), git_odb_object_size(obj)) < 0)
				ret = -1;
			git_odb_object_free(obj);
		} else if (pack_writer_add_raw(pw, oid, raw.buf, raw.len, idx->crc[i]) < 0) {
			ret = -1;
		}
		if (!ret && copied)
			dedup_add_oid(copied, oid);
		if (!ret && moved)
			ret = moved(oid, arg);
	}
	strbuf_release(&raw);
	close(fd);
	free(order);
	return ret;
}

struct copy_side {
	struct rewriter *w;
	const struct dedup_entry *side;
	size_t nside;
};

/* An object moved: its dedup entry moves with it (side is sorted by blob id). */
static int moved_side(const unsigned char *oid, void *arg)
{
	struct copy_side *cs = arg;
	struct rewriter *w = cs->w;
	const struct dedup_entry *se = cs->nside ? bsearch(oid, cs->side, cs->nside, sizeof(*cs->side),
							   cmp_side_oid) : NULL;

	if (se) {
		if (w->nside == w->aside) {
			w->aside = w->aside ? 2 * w->aside : 1024;
			w->side = xrealloc(w->side, w->aside * sizeof(*w->side));
		}
		w->side[w->nside++] = *se;
	}
	return pack_writer_full(w->pw) ? rewriter_flush(w) : 0;
}

/* Copies the live objects of one pack into the rewriter. */
static int copy_live(struct rewriter *w, const char *pack_path, const struct packidx *idx,
		     struct dedup *live, const struct dedup_entry *side, size_t nside)
{
	struct copy_side cs = { w, side, nside };

	return gc_copy_live(w->pw, w->repo->odb, pack_path, idx, live, w->copied, moved_side, &cs);
}

/* The packed bytes of a pack's dead objects. */
uint64_t gc_dead_bytes(const struct packidx *idx, struct dedup *live, uint64_t pack_size)
{
	size_t *order = xcalloc(idx->nr + 1, sizeof(*order)), k;
	uint64_t sum = 0;

	for (k = 0; k < idx->nr; k++)
		order[k] = k;
	qsort_r(order, idx->nr, sizeof(*order), cmp_offset, idx->offset);
	for (k = 0; k < idx->nr; k++) {
		size_t i = order[k];
		uint64_t stop = k + 1 < idx->nr ? idx->offset[order[k + 1]] : pack_size - SHA1_LEN;

		if (!dedup_has_oid(live, idx->oids + i * SHA1_LEN) && stop > idx->offset[i])
			sum += stop - idx->offset[i];
	}
	free(order);
	return sum;
}

/* A pack to delete once the new packs are durable: its name, pack-HASH. */
struct old_pack {
	char *name;
};

/* Removes the ref and reflog locks that killed jobs left under dir: with the
 * repository held exclusively, no live job can hold one. */
static void remove_stale_locks(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char *p;

		if (de->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR)
			remove_stale_locks(p);
		else if (len > 5 && !strcmp(de->d_name + len - 5, ".lock"))
			unlink(p);
		free(p);
	}
	closedir(d);
}

/* Removes what a killed job left: temporary files (no job runs now) and orphans. */
static void remove_leftovers(struct repo *r, int dry_run)
{
	DIR *d = opendir(r->pack_dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char *path = xasprintf("%s/%s", r->pack_dir, de->d_name), *idx;
		int orphan = 0;

		if (!strncmp(de->d_name, "tmp_", 4)) {
			orphan = 1;
		} else if (len > 5 && !strcmp(de->d_name + len - 5, ".pack")) {
			idx = xasprintf("%s/%.*s.idx", r->pack_dir, (int)(len - 5), de->d_name);
			orphan = access(idx, F_OK) < 0;
			free(idx);
		}
		if (orphan && !dry_run)
			unlink(path);
		free(path);
	}
	closedir(d);
}

/*
 * git's commit-graph, which a stock `git gc` writes, lists commits by id: a
 * cache git rebuilds, but git fsck fails once it names a commit that is
 * gone. It goes, durably, before any pack does.
 */
static void drop_commit_graph(struct repo *r)
{
	char *info = xasprintf("%s/objects/info", r->path);
	char *graph = xasprintf("%s/commit-graph", info);
	char *chain = xasprintf("%s/commit-graphs/commit-graph-chain", info);
	int gone = unlink(graph) == 0;

	gone |= unlink(chain) == 0;
	if (gone)
		fsync_dir(info);
	free(info);
	free(graph);
	free(chain);
}

int gc_run(struct repo *r, int dry_run, const unsigned char (*drop)[SHA1_LEN], size_t ndrop,
	   struct gc_stats *st)
{
	struct dedup *live = NULL, *dropset = NULL;
	struct rewriter w = { .repo = r };
	struct old_pack *old = NULL;
	size_t nold = 0, i;
	DIR *d = NULL;
	struct dirent *de;
	int ret = -1;

	memset(st, 0, sizeof(*st));
	dedup_load(&live, NULL, NULL);
	dedup_load(&dropset, NULL, NULL);
	dedup_load(&w.copied, NULL, NULL);
	for (i = 0; i < ndrop; i++)
		dedup_add_oid(dropset, drop[i]);
	if (mark(r, live, dropset) < 0)
		goto out;
	if (!dry_run) {
		char *p = xasprintf("%s/refs", r->path);

		remove_stale_locks(p);
		free(p);
		p = xasprintf("%s/logs", r->path);
		remove_stale_locks(p);
		free(p);
	}
	if (prune_reflogs(r, live, dry_run, &st->reflog_dropped) < 0)
		goto out;
	remove_leftovers(r, dry_run);
	if (pack_writer_new(&w.pw, r->pack_dir, GC_PACK_MAX) < 0)
		goto out;
	d = opendir(r->pack_dir);
	if (!d) {
		error("cannot read '%s': %s", r->pack_dir, strerror(errno));
		goto out;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name), k, nlive = 0;
		char *idx_path, *pack_path, *sdx_path;
		struct packidx idx;
		struct dedup_entry *side = NULL;
		size_t nside = 0;
		uint64_t size;

		if (len < 10 || strncmp(de->d_name, "pack-", 5) || strcmp(de->d_name + len - 4, ".idx"))
			continue;
		idx_path = xasprintf("%s/%s", r->pack_dir, de->d_name);
		pack_path = xasprintf("%s/%.*s.pack", r->pack_dir, (int)(len - 4), de->d_name);
		sdx_path = xasprintf("%s/%.*s.sdx", r->dedup_dir, (int)(len - 4), de->d_name);
		size = file_size(idx_path) + file_size(pack_path) + file_size(sdx_path);
		st->packs_before++;
		st->bytes_before += size;
		if (packidx_read(&idx, idx_path) < 0) {
			error("pack index '%s' is damaged; run 'backup check' before reclaiming space", idx_path);
			free(idx_path);
			free(pack_path);
			free(sdx_path);
			goto out;
		}
		for (k = 0; k < idx.nr; k++)
			if (dedup_has_oid(live, idx.oids + k * SHA1_LEN))
				nlive++;
		st->live_objects += nlive;
		st->dead_objects += idx.nr - nlive;
		if (nlive && nlive < idx.nr)
			st->dead_bytes += gc_dead_bytes(&idx, live, file_size(pack_path));
		if (nlive == idx.nr) {
			st->packs_after++;
			st->bytes_after += size;
		} else {
			if (nlive) {
				st->packs_rewritten++;
				dedup_read_sidecar(sdx_path, &side, &nside);
				if (nside)
					qsort(side, nside, sizeof(*side), cmp_side);
				if (!dry_run && copy_live(&w, pack_path, &idx, live, side, nside) < 0) {
					free(side);
					packidx_release(&idx);
					free(idx_path);
					free(pack_path);
					free(sdx_path);
					goto out;
				}
				free(side);
			} else {
				st->packs_deleted++;
			}
			if (!nlive)
				st->dead_bytes += size;
			old = xrealloc(old, (nold + 1) * sizeof(*old));
			old[nold].name = xstrndup(de->d_name, len - 4);
			nold++;
		}
		packidx_release(&idx);
		free(idx_path);
		free(pack_path);
		free(sdx_path);
	}
	if (dry_run) {
		ret = 0;
		goto out;
	}
	/* The new packs and sidecars are durable before any old pack goes. */
	if (rewriter_flush(&w) < 0)
		goto out;
	if (nold)
		drop_commit_graph(r);
	for (i = 0; i < nold; i++) {
		char *p = xasprintf("%s/%s.idx", r->pack_dir, old[i].name);

		/* The index goes first: a pack without one is invisible, the
		 * reverse would be a broken repository. */
		if (unlink(p) < 0 && errno != ENOENT) {
			warning("cannot remove '%s': %s; its space comes back next time", p, strerror(errno));
			free(p);
			continue;
		}
		free(p);
		p = xasprintf("%s/%s.pack", r->pack_dir, old[i].name);
		unlink(p);
		free(p);
		p = xasprintf("%s/%s.sdx", r->dedup_dir, old[i].name);
		unlink(p);
		free(p);
	}
	fsync_dir(r->pack_dir);
	fsync_dir(r->dedup_dir);
	git_odb_refresh(r->odb);
	/* Count what is there now. */
	st->packs_after = 0;
	st->bytes_after = 0;
	closedir(d);
	d = opendir(r->pack_dir);
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char *p;

		if (len < 10 || strncmp(de->d_name, "pack-", 5) || strcmp(de->d_name + len - 4, ".idx"))
			continue;
		st->packs_after++;
		p = xasprintf("%s/%s", r->pack_dir, de->d_name);
		st->bytes_after += file_size(p);
		free(p);
		p = xasprintf("%s/%.*s.pack", r->pack_dir, (int)(len - 4), de->d_name);
		st->bytes_after += file_size(p);
		free(p);
		p = xasprintf("%s/%.*s.sdx", r->dedup_dir, (int)(len - 4), de->d_name);
		st->bytes_after += file_size(p);
		free(p);
	}
	ret = 0;
out:
	if (d)
		closedir(d);
	for (i = 0; i < nold; i++)
		free(old[i].name);
	free(old);
	free(w.side);
	pack_writer_free(w.pw);
	dedup_free(w.copied);
	dedup_free(live);
	dedup_free(dropset);
	return ret;
}

int gc_reclaim(struct repo *r, long wait, int dry_run, const unsigned char (*drop)[SHA1_LEN],
	       size_t ndrop, struct gc_stats *st)
{
	int lock = dry_run ? repo_lock_shared(r, wait) : repo_lock_exclusive(r, wait);
	int ret;

	memset(st, 0, sizeof(*st));
	if (lock < 0)
		return lock == ERR_LOCKED ? ERR_LOCKED : -1;
	ret = gc_run(r, dry_run, drop, ndrop, st);
	repo_unlock(lock);
	return ret;
}
