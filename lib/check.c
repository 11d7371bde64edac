/*
 * check.c — verifying the repository (check.h): every pack and its
 * indexes, and every object that a kept backup reaches.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>

#include "check.h"
#include "dedup.h"
#include "meta.h"
#include "snapshot.h"
#include "store.h"
#include "tree.h"
#include "usage.h"

struct checker {
	struct repo *repo;
	struct check_report *rep;
	int read_data;
	struct dedup *seen;		/* objects verified good */
	struct dedup *bad;		/* objects found damaged */
	struct dedup *index;		/* blob -> SHA-256 prefix, from the sidecars */
	uint64_t index_bad;
	struct strbuf path;
	const struct backup_info *backup;
	uint64_t objects, bytes, damaged;
};

static void report(struct checker *c, const unsigned char *oid, const char *what)
{
	char hex[2 * SHA1_LEN + 1];
	size_t i;

	hex_encode(hex, oid, SHA1_LEN);
	c->damaged++;
	dedup_add_oid(c->bad, oid);
	fprintf(stderr, "backup: damaged: %s %s (%s) in backup %s of '%s' (",
		what, hex, c->path.len ? c->path.buf : "/", c->backup->hex, c->backup->machine);
	for (i = 0; i < c->backup->nslots; i++)
		fprintf(stderr, "%s%s", i ? "," : "", c->backup->slots[i]);
	fprintf(stderr, ")\n");
	if (c->rep->damaged_object)
		c->rep->damaged_object(hex, what, c->backup, c->path.len ? c->path.buf : "/", c->rep->data);
}

/* Returns 0 when the blob is good (read and decoded with --read-data). */
static int check_blob(struct checker *c, const unsigned char *oid, const char *what)
{
	git_oid id;
	int ok;

	if (dedup_has_oid(c->bad, oid)) {
		report(c, oid, what);
		return -1;
	}
	if (dedup_has_oid(c->seen, oid))
		return 0;
	memcpy(id.id, oid, SHA1_LEN);
	if (c->read_data) {
		struct strbuf sb = STRBUF_INIT;
		unsigned char key[SHA256_LEN] = { 0 }, want[SHA1_LEN], sum[SHA256_LEN];

		ok = store_read_blob(c->repo, oid, &sb) == 0;
		c->bytes += sb.len;
		memcpy(key, oid, SHA1_LEN);
		/* The dedup index must give the SHA-256 of exactly these bytes. */
		if (ok && dedup_lookup(c->index, key, want)) {
			store_key(c->repo, sb.buf, sb.len, sum);
			if (memcmp(sum, want, SHA1_LEN)) {
				char hex[2 * SHA1_LEN + 1];

				hex_encode(hex, oid, SHA1_LEN);
				error("damaged: the dedup index entry of blob %s names other bytes; "
				      "run 'backup check --repair-index'", hex);
				c->index_bad++;
			}
		}
		strbuf_release(&sb);
	} else {
		ok = git_odb_exists(c->repo->odb, &id);
	}
	c->objects++;
	if (!ok) {
		report(c, oid, what);
		return -1;
	}
	dedup_add_oid(c->seen, oid);
	return 0;
}

/*
 * Opens the tree oid into *t for a walk that has not seen it: 1, or 0
 * when it was seen already or is missing or damaged (then reported).
 */
static int open_tree(struct checker *c, const unsigned char *oid, git_tree **t)
{
	git_oid id;

	if (dedup_has_oid(c->seen, oid))
		return 0;
	memcpy(id.id, oid, SHA1_LEN);
	c->objects++;
	if (dedup_has_oid(c->bad, oid) || git_tree_lookup(t, c->repo->git, &id) < 0) {
		report(c, oid, "tree");
		return 0;
	}
	return 1;
}

/*
 * A tree of an encrypted repository checked without its key: its .meta
 * cannot be read, so every entry is checked by what git says it is, a
 * blob or a tree (a folder or a file's chunks).
 */
static void check_sealed_tree(struct checker *c, const unsigned char *oid)
{
	git_tree *t = NULL;
	size_t plen = c->path.len, i;

	if (!open_tree(c, oid, &t))
		return;
	for (i = 0; i < git_tree_entrycount(t); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);

		strbuf_addf(&c->path, "/%s", git_tree_entry_name(e));
		if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
			check_sealed_tree(c, git_tree_entry_id(e)->id);
		else
			check_blob(c, git_tree_entry_id(e)->id, !strcmp(git_tree_entry_name(e), META_NAME) ?
				   "metadata" : "blob");
		strbuf_setlen(&c->path, plen);
	}
	if (!dedup_has_oid(c->bad, oid))
		dedup_add_oid(c->seen, oid);
	git_tree_free(t);
}

static void check_dir(struct checker *c, const unsigned char *oid)
{
	git_tree *t = NULL;
	struct meta *m = NULL;
	struct strbuf sb = STRBUF_INIT;
	struct tree_names *names = NULL;
	size_t n = 0, i, plen = c->path.len;
	const git_tree_entry *te;

	if (!open_tree(c, oid, &t))
		return;
	te = git_tree_entry_byname(t, META_NAME);
	if (!te || store_read_blob(c->repo, git_tree_entry_id(te)->id, &sb) < 0 ||
	    meta_decode(sb.buf, sb.len, &m, &n) < 0 || tree_names_load(&names, c->repo->keys, t) < 0) {
		report(c, te ? git_tree_entry_id(te)->id : oid, "metadata");
		goto out;
	}
	c->objects++;
	for (i = 1; i < n; i++) {
		const git_tree_entry *e;

		e = tree_names_find(names, t, m[i].name);
		strbuf_addf(&c->path, "/%s", m[i].name);
		if (S_ISDIR(m[i].mode) || S_ISREG(m[i].mode)) {
			if (!e) {
				report(c, oid, "entry");
			} else if (S_ISDIR(m[i].mode)) {
				if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
					check_dir(c, git_tree_entry_id(e)->id);
				else
					report(c, git_tree_entry_id(e)->id, "tree");
			} else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB) {
				check_blob(c, git_tree_entry_id(e)->id, "blob");
			} else {
				git_tree *chunks = NULL;
				size_t k;

				if (git_tree_lookup(&chunks, c->repo->git, git_tree_entry_id(e)) < 0) {
					report(c, git_tree_entry_id(e)->id, "tree");
				} else {
					for (k = 0; k < git_tree_entrycount(chunks); k++)
						check_blob(c, git_tree_entry_id(git_tree_entry_byindex(chunks, k))->id, "blob");
					git_tree_free(chunks);
				}
			}
		}
		strbuf_setlen(&c->path, plen);
	}
	if (!dedup_has_oid(c->bad, oid))
		dedup_add_oid(c->seen, oid);
out:
	meta_free_array(m, n);
	tree_names_free(names);
	git_tree_free(t);
	strbuf_release(&sb);
}

/* Verifies each pack's trailer against its index, and with --read-data its whole checksum. */
static int check_packs(struct checker *c, int *npacks)
{
	DIR *d = opendir(c->repo->pack_dir);
	struct dirent *de;
	int bad = 0;

	*npacks = 0;
	if (!d)
		return error("cannot read '%s': %s", c->repo->pack_dir, strerror(errno));
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char *path;
		struct strbuf sb = STRBUF_INIT;
		unsigned char sum[SHA1_LEN];
		struct sha1_ctx ctx;

		if (len < 6 || strcmp(de->d_name + len - 4, ".idx"))
			continue;
		(*npacks)++;
		path = xasprintf("%s/%.*s.sdx", c->repo->dedup_dir, (int)(len - 4), de->d_name);
		{
			struct dedup_entry *e = NULL;
			size_t ne;
			int err = access(path, F_OK) < 0 ? ERR_NOTFOUND : dedup_read_sidecar(path, &e, &ne);

			/* A copy that git made has none: the next run builds them. */
			if (err == ERR_NOTFOUND)
				verbose("pack %.*s has no dedup index yet; the next 'backup run' builds it",
					(int)(len - 4), de->d_name);
			else if (err) {
				fprintf(stderr, "backup: damaged: the dedup index of pack %.*s fails its checksum; "
					"run 'backup check --repair-index'\n", (int)(len - 4), de->d_name);
				c->index_bad++;
			}
			free(e);
		}
		free(path);
		path = xasprintf("%s/%s", c->repo->pack_dir, de->d_name);
		if (strbuf_read_file(&sb, path) < 0 || sb.len < 8 + 1024 + 40) {
			fprintf(stderr, "backup: damaged: pack index %s cannot be read\n", de->d_name);
			bad++;
		} else {
			sha1_init(&ctx);
			sha1_update(&ctx, sb.buf, sb.len - SHA1_LEN);
			sha1_final(&ctx, sum);
			if (memcmp(sum, sb.buf + sb.len - SHA1_LEN, SHA1_LEN)) {
				fprintf(stderr, "backup: damaged: pack index %s fails its checksum\n", de->d_name);
				bad++;
			} else if (c->read_data) {
				unsigned char want[SHA1_LEN];
				struct strbuf pack = STRBUF_INIT;

				memcpy(want, sb.buf + sb.len - 2 * SHA1_LEN, SHA1_LEN);
				free(path);
				path = xasprintf("%s/%.*s.pack", c->repo->pack_dir, (int)(len - 4), de->d_name);
				if (strbuf_read_file(&pack, path) < 0 || pack.len < 32) {
					fprintf(stderr, "backup: damaged: pack %s cannot be read\n", path);
					bad++;
				} else {
					sha1_init(&ctx);
					sha1_update(&ctx, pack.buf, pack.len - SHA1_LEN);
					sha1_final(&ctx, sum);
					if (memcmp(sum, want, SHA1_LEN) || memcmp(sum, pack.buf + pack.len - SHA1_LEN, SHA1_LEN)) {
						fprintf(stderr, "backup: damaged: pack %s fails its checksum\n", path);
						bad++;
					}
				}
				strbuf_release(&pack);
			}
		}
		strbuf_release(&sb);
		free(path);
	}
	closedir(d);
	return bad;
}

int check_repo(struct repo *r, struct check_report *rep)
{
	struct checker c = { .repo = r, .rep = rep, .read_data = rep->read_data };
	struct backup_info **list = NULL;
	size_t n = 0, i, k, ndamaged = 0;

	dedup_load_reverse(&c.index, r->dedup_dir, r->pack_dir);
	dedup_load(&c.seen, NULL, NULL);
	dedup_load(&c.bad, NULL, NULL);
	strbuf_init(&c.path, 256);
	rep->damaged_packs = check_packs(&c, &rep->packs);
	if (rep->damaged_packs < 0)
		rep->damaged_packs = 1;
	rep->state_damaged = repo_state_check(r) < 0;
	if (snapshot_list_ext(r, NULL, &list, &n, &ndamaged) < 0) {
		rep->damaged_packs++;
		n = 0;
	}
	c.damaged += ndamaged;
	for (i = 0; i < n; i++) {
		c.backup = list[i];
		for (k = 0; k < list[i]->ndisks; k++) {
			strbuf_reset(&c.path);
			strbuf_addf(&c.path, "%s:", list[i]->disks[k].label);
			if ((r->version == REPO_FORMAT_ENCRYPTED || list[i]->sealed) && !r->keys)
				check_sealed_tree(&c, list[i]->disks[k].tree);
			else
				check_dir(&c, list[i]->disks[k].tree);
		}
	}
	rep->backups = n;
	rep->objects = c.objects;
	rep->bytes = c.bytes;
	rep->damaged = c.damaged;
	rep->index_damaged = c.index_bad;
	snapshot_list_free(list, n);
	dedup_free(c.seen);
	dedup_free(c.bad);
	dedup_free(c.index);
	strbuf_release(&c.path);
	return c.damaged || rep->damaged_packs || c.index_bad || rep->state_damaged ? ERR_CORRUPT : 0;
}
