#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "fsutil.h"
#include "repo.h"
#include "strbuf.h"
#include "usage.h"

#define FORMAT_LINE "backup repository format %d\n"
/* Tries of a state change whose compare-and-swap another writer beat. */
#define STATE_TRIES 10

/* The version a format line states, or 0 when it is not exactly one. */
static int parse_format(const char *buf, size_t len)
{
	char copy[64], want[64];
	int v;

	if (!len || len >= sizeof(copy))
		return 0;
	memcpy(copy, buf, len);
	copy[len] = '\0';
	if (sscanf(copy, "backup repository format %d", &v) != 1 || v < 1)
		return 0;
	snprintf(want, sizeof(want), FORMAT_LINE, v);
	return strlen(want) == len && !memcmp(want, buf, len) ? v : 0;
}

/*
 * The commit the state ref names, and its tree. ERR_NOTFOUND when there is
 * no state ref, ERR_CORRUPT when it names nothing readable.
 */
static int state_tree(git_repository *git, git_oid *commit, git_tree **tree)
{
	git_commit *c = NULL;
	int err;

	*tree = NULL;
	err = git_reference_name_to_id(commit, git, REPO_STATE_REF);
	if (err == GIT_ENOTFOUND)
		return ERR_NOTFOUND;
	if (err < 0)
		return ERR_CORRUPT;
	err = git_commit_lookup(&c, git, commit) < 0 || git_commit_tree(tree, c) < 0 ? ERR_CORRUPT : 0;
	git_commit_free(c);
	return err;
}

/* Appends the blob at path in tree to out: 0, ERR_NOTFOUND or ERR_CORRUPT. */
static int tree_read(git_repository *git, git_tree *tree, const char *path, struct strbuf *out)
{
	git_tree_entry *e = NULL;
	git_blob *b = NULL;
	int err = git_tree_entry_bypath(&e, tree, path);

	if (err == GIT_ENOTFOUND)
		return ERR_NOTFOUND;
	if (err < 0 || git_tree_entry_type(e) != GIT_OBJECT_BLOB || git_blob_lookup(&b, git, git_tree_entry_id(e)) < 0) {
		git_tree_entry_free(e);
		return ERR_CORRUPT;
	}
	strbuf_add(out, git_blob_rawcontent(b), git_blob_rawsize(b));
	git_blob_free(b);
	git_tree_entry_free(e);
	return 0;
}

/*
 * 1 when a state tree whose format says "not encrypted" holds what only an
 * encrypted repository's has, `encryption` (an unknown `keys` is kept, as
 * any entry of a later version): its format line was lowered by whoever
 * served or edited it, and a run would write plaintext beside sealed data.
 */
static int lowered(git_tree *tree, int version)
{
	return version < REPO_FORMAT_ENCRYPTED && git_tree_entry_byname(tree, "encryption") != NULL;
}

int repo_state_format(struct repo *r, const git_oid *commit)
{
	struct strbuf sb = STRBUF_INIT;
	git_commit *c = NULL;
	git_tree *t = NULL;
	int v = 0;

	if (git_commit_lookup(&c, r->git, commit) == 0 && git_commit_tree(&t, c) == 0 &&
	    tree_read(r->git, t, "format", &sb) == 0)
		v = parse_format(sb.buf, sb.len);
	git_tree_free(t);
	git_commit_free(c);
	strbuf_release(&sb);
	return v;
}

void repo_set_version(struct repo *r, int version)
{
	char *email = repo_ident_email(version);

	r->version = version;
	git_repository_set_ident(r->git, "backup", email);
	free(email);
}

int repo_state_lowered(struct repo *r)
{
	struct strbuf sb = STRBUF_INIT;
	git_tree *t = NULL;
	git_oid id;
	int ret = 0;

	if (!state_tree(r->git, &id, &t) && !tree_read(r->git, t, "format", &sb))
		ret = lowered(t, parse_format(sb.buf, sb.len));
	git_tree_free(t);
	strbuf_release(&sb);
	return ret;
}

int repo_state_read(struct repo *r, const char *name, struct strbuf *out)
{
	git_oid id;
	git_tree *t = NULL;
	int err = state_tree(r->git, &id, &t);

	if (!err)
		err = tree_read(r->git, t, name, out);
	git_tree_free(t);
	return err;
}

/* Objects written by one state change, to be made durable together. */
struct written {
	git_oid *ids;
	size_t nr, alloc;
};

static void written_add(struct written *w, const git_oid *id)
{
	if (w->nr == w->alloc) {
		w->alloc = w->alloc ? 2 * w->alloc : 8;
		w->ids = xrealloc(w->ids, w->alloc * sizeof(*w->ids));
	}
	w->ids[w->nr++] = *id;
}

/*
 * libgit2 writes loose objects without fsyncing them or their folders: do
 * it before the ref names them. An object found in a pack instead (it was
 * there already) is as durable as the pack.
 */
static int sync_objects(struct repo *r, const struct written *w)
{
	char hex[GIT_OID_HEXSZ + 1], *path, *dir = xasprintf("%s/objects", r->path);
	size_t i;
	int ret = 0, fd;

	for (i = 0; i < w->nr && !ret; i++) {
		git_oid_tostr(hex, sizeof(hex), &w->ids[i]);
		path = xasprintf("%s/%.2s/%s", dir, hex, hex + 2);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && errno != ENOENT)
			ret = error("cannot open '%s': %s", path, strerror(errno));
		if (fd >= 0 && (fsync(fd) < 0 || fsync_parent(path) < 0))
			ret = error("cannot sync '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(path);
	}
	if (!ret && fsync_dir(dir) < 0)
		ret = error("cannot sync '%s': %s", dir, strerror(errno));
	free(dir);
	return ret;
}

/*
 * Writes the tree base (NULL: empty) with the n entries at paths set to
 * blobs (an entry is removed when its blob is NULL), every other entry
 * kept, into out. Returns the new tree's entry count, or -1 after
 * reporting.
 */
static int tree_put(git_repository *git, const git_oid *base, const char **paths, const git_oid **blobs,
		    size_t n, git_oid *out, struct written *w)
{
	git_tree *bt = NULL;
	git_treebuilder *tb = NULL;
	const char **subpaths = xcalloc(n, sizeof(*subpaths));
	const git_oid **subblobs = xcalloc(n, sizeof(*subblobs));
	size_t i, k, m;
	int ret = -1, err = 0;

	if ((base && git_tree_lookup(&bt, git, base) < 0) || git_treebuilder_new(&tb, git, bt) < 0)
		goto fail;
	for (i = 0; i < n && err >= 0; i++) {
		const char *slash = strchr(paths[i], '/');
		size_t len = slash ? (size_t)(slash - paths[i]) : strlen(paths[i]);
		char *name = xstrndup(paths[i], len);

		if (slash) {
			/* Every entry below this folder at once, the first time it comes. */
			for (k = 0; k < i && strncmp(paths[k], paths[i], len + 1); k++)
				;
			if (k == i) {
				const git_tree_entry *e = bt ? git_tree_entry_byname(bt, name) : NULL;
				const git_oid *sub = e && git_tree_entry_type(e) == GIT_OBJECT_TREE ? git_tree_entry_id(e) : NULL;
				git_oid id;
				int nr;

				for (k = i, m = 0; k < n; k++)
					if (!strncmp(paths[k], paths[i], len + 1)) {
						subpaths[m] = paths[k] + len + 1;
						subblobs[m++] = blobs[k];
					}
				nr = tree_put(git, sub, subpaths, subblobs, m, &id, w);
				if (nr < 0) {
					free(name);
					goto out;
				}
				if (nr)
					err = git_treebuilder_insert(NULL, tb, name, &id, GIT_FILEMODE_TREE);
				else if (git_treebuilder_get(tb, name))
					err = git_treebuilder_remove(tb, name);
			}
		} else if (blobs[i]) {
			err = git_treebuilder_insert(NULL, tb, name, blobs[i], GIT_FILEMODE_BLOB);
		} else if (git_treebuilder_get(tb, name)) {
			err = git_treebuilder_remove(tb, name);
		}
		free(name);
	}
	if (err < 0 || git_treebuilder_write(out, tb) < 0)
		goto fail;
	written_add(w, out);
	ret = (int)git_treebuilder_entrycount(tb);
	goto out;
fail:
	error_git("cannot write the state tree");
out:
	git_treebuilder_free(tb);
	git_tree_free(bt);
	free(subpaths);
	free(subblobs);
	return ret;
}

char *repo_ident_email(int version)
{
	char host[256] = "localhost";

	if (version < REPO_FORMAT_ENCRYPTED)
		gethostname(host, sizeof(host) - 1);
	return xasprintf("backup@%s", host);
}

static git_signature *signature(int version)
{
	char *email = repo_ident_email(version);
	git_signature *sig = NULL;

	if (git_signature_now(&sig, "backup", email) < 0)
		sig = NULL;
	free(email);
	return sig;
}

/*
 * Commits the state tree of commit old (NULL: an empty tree, and the ref
 * must not exist yet) with the entries changed, durably, and moves the
 * state ref to it if it still names old (compare-and-swap). Returns 0,
 * ERR_EXISTS (quietly) when another writer moved the ref first, -1 after
 * reporting. The caller holds the state lock.
 */
static int state_commit(struct repo *r, const git_oid *old, const struct repo_state_entry *e, size_t n,
			const char *msg)
{
	struct written w = { 0 };
	git_oid base, id, *ids = NULL;
	const char **paths = NULL;
	const git_oid **blobs = NULL;
	const git_oid *basep = NULL;
	git_commit *oc = NULL;
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	git_reference *ref = NULL;
	char *stale = NULL, *dir = NULL;
	size_t i;
	int ret = -1, err;

	if (old) {
		if (git_commit_lookup(&oc, r->git, old) < 0) {
			error_git("cannot read " REPO_STATE_REF);
			goto out;
		}
		base = *git_commit_tree_id(oc);
		basep = &base;
	}
	paths = xcalloc(n + 1, sizeof(*paths));
	blobs = xcalloc(n + 1, sizeof(*blobs));
	ids = xcalloc(n + 1, sizeof(*ids));
	for (i = 0; i < n; i++) {
		paths[i] = e[i].name;
		if (!e[i].data)
			continue;
		if (git_blob_create_from_buffer(&ids[i], r->git, e[i].data, e[i].len) < 0) {
			error_git("cannot write the service state");
			goto out;
		}
		written_add(&w, &ids[i]);
		blobs[i] = &ids[i];
	}
	if (tree_put(r->git, basep, paths, blobs, n, &base, &w) < 0)
		goto out;
	basep = &base;
	sig = signature(r->version);
	if (!sig || git_tree_lookup(&tree, r->git, basep) < 0 ||
	    git_commit_create(&id, r->git, NULL, sig, sig, NULL, msg, tree, 0, NULL) < 0) {
		error_git("cannot write the service state");
		goto out;
	}
	written_add(&w, &id);
	if (sync_objects(r, &w) < 0)
		goto out;
	/* We hold the state lock: a lock file of the ref is a killed writer's. */
	stale = xasprintf("%s/" REPO_STATE_REF ".lock", r->path);
	unlink(stale);
	err = git_reference_create_matching(&ref, r->git, REPO_STATE_REF, &id, old != NULL, old, msg);
	if (err == GIT_EMODIFIED || err == GIT_EEXISTS) {
		git_error_clear();
		ret = ERR_EXISTS;
		goto out;
	}
	if (err < 0) {
		error_git("cannot move " REPO_STATE_REF);
		goto out;
	}
	/* libgit2 syncs the ref and its folder, which may be new: sync refs/. */
	dir = xasprintf("%s/refs", r->path);
	if (fsync_dir(dir) < 0) {
		error("cannot sync '%s': %s", dir, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	git_reference_free(ref);
	git_signature_free(sig);
	git_tree_free(tree);
	git_commit_free(oc);
	free(w.ids);
	free(ids);
	free(paths);
	free(blobs);
	free(stale);
	free(dir);
	return ret;
}

static int init(const char *path, int version, int ident_version, const struct repo_state_entry *extra,
		size_t n);

int repo_init(const char *path)
{
	return init(path, REPO_FORMAT, REPO_FORMAT, NULL, 0);
}

int repo_init_for_clone(const char *path)
{
	return init(path, REPO_FORMAT, REPO_FORMAT_ENCRYPTED, NULL, 0);
}

int repo_init_with(const char *path, int version, const struct repo_state_entry *extra, size_t n)
{
	return init(path, version, version, extra, n);
}

/* ident_version: the format whose identity the first state commit takes. */
static int init(const char *path, int version, int ident_version, const struct repo_state_entry *extra,
		size_t n)
{
	git_repository *git = NULL;
	git_repository_init_options opts;
	git_config *cfg = NULL;
	struct strbuf sb = STRBUF_INIT;
	struct repo tmp = { 0 };
	struct repo_state_entry *e = xcalloc(2 + n, sizeof(*e));
	char *p = NULL, *email;
	int ret = -1, empty = dir_is_empty(path);
	struct stat st;

	if (empty == 0 || (empty < 0 && lstat(path, &st) == 0))
		return error("'%s' already exists and is not an empty folder; "
			     "choose another repository path", path);
	if (mkdir_p(path, 0700) < 0)
		return error("cannot create '%s': %s", path, strerror(errno));
	git_repository_init_options_init(&opts, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
	opts.description = "backup repository: see docs/FORMAT.md of backup";
	if (git_repository_init_ext(&git, path, &opts) < 0) {
		error_git("cannot create the repository");
		goto out;
	}
	if (git_repository_config(&cfg, git) < 0 ||
	    git_config_set_string(cfg, "core.logAllRefUpdates", "always") < 0 ||
	    git_config_set_int32(cfg, "gc.auto", 0) < 0 ||
	    git_config_set_bool(cfg, "receive.autogc", 0) < 0) {
		error_git("cannot configure the repository");
		goto out;
	}
	strbuf_addf(&sb, "%s/backup", path);
	p = xasprintf("%s/backup/dedup", path);
	if (mkdir(sb.buf, 0700) < 0 || mkdir(p, 0700) < 0) {
		error("cannot create '%s': %s", p, strerror(errno));
		goto out;
	}
	free(p);
	p = xasprintf("%s/backup/locks", path);
	if (mkdir(p, 0700) < 0) {
		error("cannot create '%s': %s", p, strerror(errno));
		goto out;
	}
	/* The state ref comes last: a repository without it is not one yet. */
	strbuf_reset(&sb);
	strbuf_addf(&sb, FORMAT_LINE, version);
	e[0] = (struct repo_state_entry){ "format", sb.buf, sb.len };
	e[1] = (struct repo_state_entry){ "state", "", 0 };
	if (n)
		memcpy(e + 2, extra, n * sizeof(*e));
	tmp.path = (char *)path;
	tmp.git = git;
	tmp.version = ident_version;
	/* The reflog's identity, as repo_open() sets it. */
	email = repo_ident_email(ident_version);
	git_repository_set_ident(git, "backup", email);
	free(email);
	if (state_commit(&tmp, NULL, e, 2 + n, "backup: init") < 0)
		goto out;
	ret = 0;
out:
	free(e);
	git_config_free(cfg);
	git_repository_free(git);
	strbuf_release(&sb);
	free(p);
	return ret;
}

/*
 * Repositories made before 0.1.1 say gc.auto=false, which stock git takes
 * for a number and refuses ("bad numeric config value") in every fetch
 * into the repository. 0 means the same to git: never repack on its own.
 * A repository that cannot be written keeps the old value.
 */
static void mend_config(git_repository *git)
{
	git_config *cfg = NULL;
	git_buf v = GIT_BUF_INIT;

	if (git_repository_config(&cfg, git) == 0 &&
	    git_config_get_string_buf(&v, cfg, "gc.auto") == 0 &&
	    strspn(v.ptr, "0123456789") != strlen(v.ptr))
		git_config_set_int32(cfg, "gc.auto", 0);
	git_buf_dispose(&v);
	git_config_free(cfg);
}

/* 1 when the repository has slots: a copy of one whose state git lost. */
static int has_slots(git_repository *git)
{
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	int found;

	if (git_reference_iterator_glob_new(&it, git, "refs/backups/*") < 0)
		return 0;
	found = git_reference_next(&ref, it) == 0;
	git_reference_free(ref);
	git_reference_iterator_free(it);
	git_error_clear();
	return found;
}

/*
 * A copy that git made has no backup/: make its folders. git did not carry
 * the configuration either: keep git from repacking or pruning on its own,
 * and keep the reflogs, as `backup init` does. Best effort: a read-only copy
 * still opens for the commands that only read.
 */
static void make_local_folders(struct repo *r)
{
	char *p = xasprintf("%s/backup", r->path);
	git_config *cfg = NULL;

	if (mkdir(p, 0700) == 0 && git_repository_config(&cfg, r->git) == 0) {
		git_config_set_string(cfg, "core.logAllRefUpdates", "always");
		git_config_set_int32(cfg, "gc.auto", 0);
		git_config_set_bool(cfg, "receive.autogc", 0);
	}
	git_config_free(cfg);
	git_error_clear();
	mkdir(r->dedup_dir, 0700);
	mkdir(r->lock_dir, 0700);
	free(p);
}

int repo_open(struct repo **out, const char *path)
{
	struct repo *r = NULL;
	struct strbuf sb = STRBUF_INIT;
	git_tree *tree = NULL;
	git_oid id;
	char *fmt = xasprintf("%s/backup/format", path);
	int version = 0, ret = -1, err;
	struct stat st;

	*out = NULL;
	if (stat(path, &st) < 0) {
		error("no repository at '%s'; create it with 'backup init' or name it with --repo", path);
		goto out;
	}
	r = xcalloc(1, sizeof(*r));
	r->path = xstrdup(path);
	r->pack_dir = xasprintf("%s/objects/pack", path);
	r->dedup_dir = xasprintf("%s/backup/dedup", path);
	r->lock_dir = xasprintf("%s/backup/locks", path);
	r->state_path = xasprintf("%s/backup/state", path);
	err = git_repository_open_ext(&r->git, path, GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE, NULL);
	if (err < 0) {
		git_error_clear();
		err = ERR_NOTFOUND;
	} else {
		err = state_tree(r->git, &id, &tree);
	}
	if (err == ERR_CORRUPT) {
		error("repository '%s' is damaged: %s names no readable commit; "
		      "restore the repository from a copy", path, REPO_STATE_REF);
		goto out;
	}
	if (!err) {
		/* Format 2 and later: the ref is the repository. */
		if (tree_read(r->git, tree, "format", &sb) == 0)
			version = parse_format(sb.buf, sb.len);
		if (version < 2) {
			error("repository '%s' is damaged: %s holds no valid format; "
			      "restore the repository from a copy", path, REPO_STATE_REF);
			goto out;
		}
		if (lowered(tree, version)) {
			error("repository '%s' is damaged: %s says format %d (not encrypted) but holds the "
			      "'encryption' entry of an encrypted one: its format was lowered; take the repository "
			      "from a copy you trust", path, REPO_STATE_REF, version);
			goto out;
		}
	} else if (strbuf_read_file(&sb, fmt) == 0) {
		/* Format 1 has no ref, and a format file that says 1. */
		version = parse_format(sb.buf, sb.len);
		if (version == 2 || version == REPO_FORMAT_ENCRYPTED)
			version = 0;
	}
	if (!version) {
		if (r->git && has_slots(r->git))
			error("'%s' is a copy of a format-1 repository: git did not copy its service state; "
			      "run 'backup upgrade' on the original, then copy it again", path);
		else
			error("'%s' is not a backup repository (no valid %s or backup/format); "
			      "create one with 'backup init' or name the right one with --repo", path, REPO_STATE_REF);
		goto out;
	}
	if (version > REPO_FORMAT_ENCRYPTED) {
		error("repository '%s' has format %d, newer than this backup (%d); upgrade backup",
		      path, version, REPO_FORMAT_ENCRYPTED);
		goto out;
	}
	r->version = version;
	mend_config(r->git);
	{
		char *email = repo_ident_email(version);

		git_repository_set_ident(r->git, "backup", email);
		free(email);
	}
	if (git_repository_odb(&r->odb, r->git) < 0) {
		error_git("cannot open the object database");
		goto out;
	}
	make_local_folders(r);
	*out = r;
	r = NULL;
	ret = 0;
out:
	git_tree_free(tree);
	repo_free(r);
	strbuf_release(&sb);
	free(fmt);
	return ret;
}

void repo_free(struct repo *r)
{
	if (!r)
		return;
	git_odb_free(r->odb);
	git_repository_free(r->git);
	free(r->path);
	free(r->pack_dir);
	free(r->dedup_dir);
	free(r->lock_dir);
	free(r->state_path);
	crypto_keys_free(r->keys);
	free(r);
}

/*
 * The service state's text: the state ref's, or backup/state's in format 1.
 * A format-1 repository being upgraded by another process meanwhile has
 * the ref before it loses the file, so the file missing sends us back to
 * the ref.
 */
static int state_text(struct repo *r, struct strbuf *out)
{
	int tries, err = 0;

	for (tries = 0; tries < 2; tries++) {
		err = repo_state_read(r, "state", out);
		if (err != ERR_NOTFOUND || r->version > 1)
			break;
		if (strbuf_read_file(out, r->state_path) == 0)
			return 0;
		if (errno != ENOENT)
			return error("cannot read '%s': %s", r->state_path, strerror(errno));
	}
	if (err == ERR_NOTFOUND && r->version == 1)
		return 0;
	if (err)
		return error("cannot read the service state: %s is missing or damaged; "
			     "run 'backup check'", REPO_STATE_REF);
	return 0;
}

/*
 * A git-config text as a libgit2 configuration: libgit2 parses only files,
 * so the text goes through a memory file, and the snapshot keeps it after.
 */
static git_config *config_from_text(const char *text, size_t len)
{
	git_config *cfg = NULL, *snap = NULL;
	char path[64];
	int fd = memfd_create("backup-state", MFD_CLOEXEC);

	if (fd < 0 || write_all(fd, text, len) < 0) {
		error("cannot read the service state: %s", strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (git_config_open_ondisk(&cfg, path) < 0 || git_config_snapshot(&snap, cfg) < 0)
		error_git("cannot read the service state");
out:
	git_config_free(cfg);
	if (fd >= 0)
		close(fd);
	return snap;
}

static git_config *open_state(struct repo *r)
{
	struct strbuf sb = STRBUF_INIT;
	git_config *cfg = NULL;

	if (state_text(r, &sb) == 0)
		cfg = config_from_text(sb.buf, sb.len);
	strbuf_release(&sb);
	return cfg;
}

char *repo_state_get(struct repo *r, const char *key)
{
	git_config *cfg = open_state(r);
	git_buf buf = GIT_BUF_INIT;
	char *v = NULL;

	if (cfg && git_config_get_string_buf(&buf, cfg, key) == 0)
		v = xstrdup(buf.ptr);
	git_buf_dispose(&buf);
	git_config_free(cfg);
	return v;
}

char *repo_state_text_get(const char *text, size_t len, const char *key)
{
	git_config *cfg = config_from_text(text, len);
	git_buf buf = GIT_BUF_INIT;
	char *v = NULL;

	if (cfg && git_config_get_string_buf(&buf, cfg, key) == 0)
		v = xstrdup(buf.ptr);
	git_error_clear();
	git_buf_dispose(&buf);
	git_config_free(cfg);
	return v;
}

int repo_state_get_bool(struct repo *r, const char *key, int def)
{
	git_config *cfg = open_state(r);
	int v = def;

	if (cfg && git_config_get_bool(&v, cfg, key) < 0)
		v = def;
	git_config_free(cfg);
	return v;
}

/*
 * Applies one change to a git-config text with libgit2's writer, on a
 * scratch file: the caller holds the state lock, so a scratch file found
 * there is a killed job's.
 */
static int edit_text(struct repo *r, struct strbuf *text, const char *key, const char *value)
{
	char *tmp = xasprintf("%s/backup/state.edit", r->path), *lock = xasprintf("%s.lock", tmp);
	git_config *cfg = NULL;
	int ret = -1, fd, err;

	unlink(lock);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, text->buf, text->len) < 0 || close(fd) < 0) {
		error("cannot write '%s': %s", tmp, strerror(errno));
		goto out;
	}
	if (git_config_open_ondisk(&cfg, tmp) < 0) {
		error_git("cannot read the service state");
		goto out;
	}
	err = value ? git_config_set_string(cfg, key, value) : git_config_delete_entry(cfg, key);
	if (err < 0 && !(err == GIT_ENOTFOUND && !value)) {
		error_git("cannot change the service state");
		goto out;
	}
	git_error_clear();
	strbuf_reset(text);
	if (strbuf_read_file(text, tmp) < 0) {
		error("cannot read '%s': %s", tmp, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	git_config_free(cfg);
	unlink(tmp);
	unlink(lock);
	free(tmp);
	free(lock);
	return ret;
}

/* Removes what format 1 kept in backup/ once the ref holds it. */
static void remove_format1_files(struct repo *r)
{
	char *fmt = xasprintf("%s/backup/format", r->path), *dir = xasprintf("%s/backup", r->path);
	int gone = unlink(fmt) == 0;

	gone |= unlink(r->state_path) == 0;
	if (gone)
		fsync_dir(dir);
	free(fmt);
	free(dir);
}

/* repo_upgrade() under the state lock. */
static int upgrade_locked(struct repo *r)
{
	struct strbuf text = STRBUF_INIT, line = STRBUF_INIT;
	struct repo_state_entry e[2];
	git_tree *t = NULL;
	git_oid id;
	int ret = -1, err = state_tree(r->git, &id, &t);

	git_tree_free(t);
	if (err == 0) {
		/* Already upgraded, perhaps by a job killed before it tidied up. */
		r->version = REPO_FORMAT;
		remove_format1_files(r);
		return 0;
	}
	if (err != ERR_NOTFOUND)
		return error("repository '%s' is damaged: %s names no readable commit; "
			     "restore the repository from a copy", r->path, REPO_STATE_REF);
	if (strbuf_read_file(&text, r->state_path) < 0 && errno != ENOENT) {
		error("cannot read '%s': %s", r->state_path, strerror(errno));
		goto out;
	}
	strbuf_addf(&line, FORMAT_LINE, REPO_FORMAT);
	e[0] = (struct repo_state_entry){ "format", line.buf, line.len };
	e[1] = (struct repo_state_entry){ "state", text.buf, text.len };
	/* The ref is the switch: durable before anything of format 1 goes. */
	err = state_commit(r, NULL, e, 2, "backup: upgrade to format 2");
	if (err < 0 && err != ERR_EXISTS)
		goto out;
	r->version = REPO_FORMAT;
	remove_format1_files(r);
	ret = err == ERR_EXISTS ? 0 : 1;
out:
	strbuf_release(&text);
	strbuf_release(&line);
	return ret;
}

int repo_upgrade(struct repo *r)
{
	int lock = repo_lock(r, ".state", -1), ret;

	if (lock < 0)
		return -1;
	ret = upgrade_locked(r);
	repo_unlock(lock);
	return ret;
}

/* Upgrades an older format before a write, under the state lock, saying so. */
static int upgrade_before_write(struct repo *r)
{
	int ret;

	if (r->version >= REPO_FORMAT)
		return 0;
	ret = upgrade_locked(r);
	if (ret > 0 && verbosity >= 0)
		fprintf(stderr, "backup: upgraded repository '%s' to format %d (see backup-upgrade(1))\n",
			r->path, REPO_FORMAT);
	return ret < 0 ? -1 : 0;
}

int repo_prepare_write(struct repo *r)
{
	int lock, ret;

	if (r->version >= REPO_FORMAT)
		return 0;
	lock = repo_lock(r, ".state", -1);
	if (lock < 0)
		return -1;
	ret = upgrade_before_write(r);
	repo_unlock(lock);
	return ret;
}

/*
 * Changes the state under its own lock (jobs of different machines change
 * it concurrently), upgrading format 1 first: reads the state commit, edits
 * its text, and commits it with a compare-and-swap of the ref, again if a
 * writer that does not take our lock (git itself) moved it meanwhile.
 */
static int change_state(struct repo *r, const char *key, const char *value)
{
	struct strbuf text = STRBUF_INIT, before = STRBUF_INIT;
	char *msg = value ? xasprintf("backup: set %s", key) : xasprintf("backup: unset %s", key);
	int lock = repo_lock(r, ".state", -1), ret = -1, tries, err;

	if (lock < 0)
		goto out;
	if (upgrade_before_write(r) < 0)
		goto out;
	for (tries = 0; tries < STATE_TRIES; tries++) {
		struct repo_state_entry e;
		git_tree *t = NULL;
		git_oid old;

		strbuf_reset(&text);
		err = state_tree(r->git, &old, &t);
		if (!err)
			err = tree_read(r->git, t, "state", &text);
		git_tree_free(t);
		if (err && err != ERR_NOTFOUND) {
			error("cannot read the service state: %s is damaged; run 'backup check'", REPO_STATE_REF);
			goto out;
		}
		strbuf_reset(&before);
		strbuf_add(&before, text.buf, text.len);
		if (edit_text(r, &text, key, value) < 0)
			goto out;
		if (text.len == before.len && !memcmp(text.buf, before.buf, text.len)) {
			ret = 0;
			goto out;
		}
		e = (struct repo_state_entry){ "state", text.buf, text.len };
		ret = state_commit(r, &old, &e, 1, msg);
		if (ret != ERR_EXISTS)
			goto out;
	}
	ret = error("cannot change the service state: %s keeps changing; try again", REPO_STATE_REF);
out:
	repo_unlock(lock);
	strbuf_release(&text);
	strbuf_release(&before);
	free(msg);
	return ret < 0 ? -1 : 0;
}

int repo_state_set(struct repo *r, const char *key, const char *value)
{
	return change_state(r, key, value);
}

int repo_state_unset(struct repo *r, const char *key)
{
	return change_state(r, key, NULL);
}

int repo_state_update(struct repo *r, const struct repo_state_entry *e, size_t n, const char *msg)
{
	int lock = repo_lock(r, ".state", -1), ret = -1, tries;

	if (lock < 0)
		return -1;
	if (upgrade_before_write(r) < 0)
		goto out;
	for (tries = 0; tries < STATE_TRIES; tries++) {
		git_tree *t = NULL;
		git_oid old;
		int err = state_tree(r->git, &old, &t);

		git_tree_free(t);
		if (err) {
			error("cannot read the service state: %s is damaged; run 'backup check'", REPO_STATE_REF);
			goto out;
		}
		ret = state_commit(r, &old, e, n, msg);
		if (ret != ERR_EXISTS)
			goto out;
	}
	ret = error("cannot change the service state: %s keeps changing; try again", REPO_STATE_REF);
out:
	repo_unlock(lock);
	return ret < 0 ? -1 : 0;
}

int repo_state_check(struct repo *r)
{
	struct strbuf sb = STRBUF_INIT;
	git_config *cfg = NULL;
	git_tree *t = NULL;
	git_oid id;
	int ret = -1, err, v;

	if (r->version == 1) {
		/* The format file was read on open; the state must parse. */
		cfg = open_state(r);
		ret = cfg ? 0 : -1;
		goto out;
	}
	err = state_tree(r->git, &id, &t);
	if (err) {
		error("damaged: %s names no readable commit", REPO_STATE_REF);
		goto out;
	}
	v = tree_read(r->git, t, "format", &sb) < 0 ? 0 : parse_format(sb.buf, sb.len);
	if (v < 2 || v > REPO_FORMAT_ENCRYPTED) {
		error("damaged: the format of %s cannot be read", REPO_STATE_REF);
		goto out;
	}
	if (lowered(t, v)) {
		error("damaged: %s says format %d (not encrypted) but holds the 'encryption' entry of an encrypted one: "
		      "its format was lowered", REPO_STATE_REF, v);
		goto out;
	}
	/* A clone takes the remote's state, and its format with it: an
	 * encrypted repository's clone is encrypted. */
	r->version = v;
	strbuf_reset(&sb);
	if (tree_read(r->git, t, "state", &sb) < 0) {
		error("damaged: the service state of %s cannot be read", REPO_STATE_REF);
		goto out;
	}
	cfg = config_from_text(sb.buf, sb.len);
	ret = cfg ? 0 : -1;
out:
	git_config_free(cfg);
	git_tree_free(t);
	strbuf_release(&sb);
	return ret;
}

static int lock_mode(struct repo *r, const char *name, long wait_seconds, int mode);

int repo_lock(struct repo *r, const char *name, long wait_seconds)
{
	return lock_mode(r, name, wait_seconds, LOCK_EX);
}

int repo_lock_shared(struct repo *r, long wait_seconds)
{
	return lock_mode(r, ".repo", wait_seconds, LOCK_SH);
}

int repo_lock_exclusive(struct repo *r, long wait_seconds)
{
	return lock_mode(r, ".repo", wait_seconds, LOCK_EX);
}

static int lock_mode(struct repo *r, const char *name, long wait_seconds, int mode)
{
	char *path = xasprintf("%s/%s.lock", r->lock_dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	struct timespec start, now;

	if (fd < 0) {
		int ret = error("cannot open the lock '%s': %s", path, strerror(errno));
		free(path);
		return ret;
	}
	free(path);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (flock(fd, mode | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int ret = error("cannot lock '%s': %s", name, strerror(errno));
			close(fd);
			return ret;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (wait_seconds >= 0 && now.tv_sec - start.tv_sec >= wait_seconds) {
			close(fd);
			return ERR_LOCKED;
		}
		usleep(100 * 1000);
	}
}

void repo_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
