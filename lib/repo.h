/*
 * repo.h — the repository: creating it, opening it, its service state.
 *
 * A repository is a bare git repository (stock git reads it). Everything
 * that defines it travels with git: the ref refs/backup/state names a
 * commit without parents whose tree holds the blob `format` (the format
 * version line, see docs/FORMAT.md) and the blob `state`, a git-config text
 * of the service state (which machines are enrolled, schedules, cancel
 * times, auto-enrolment) that only commands change. Entries of that tree
 * this version does not know are kept as they are by every change.
 *
 * The folder backup/, which git ignores, holds only what can be rebuilt or
 * means nothing once its owner is gone: backup/dedup/ (the dedup sidecars,
 * rebuilt from the packs when missing) and backup/locks/. repo_open()
 * creates them when they are missing, as in a copy made by `git clone`.
 *
 * Format 1 kept the version in backup/format and the state in backup/state;
 * such a repository is read as it is and upgraded to format 2 by
 * repo_upgrade(), which the commands that write call first.
 */
#ifndef REPO_H
#define REPO_H

#include <git2.h>
#include <stddef.h>

#include "strbuf.h"

#define REPO_FORMAT 2
/* Format 2 with encryption: the state tree also holds `encryption` and
 * `keys/` (lib/keys.h). A version of backup that does not know it refuses
 * it, rather than write plaintext into it. */
#define REPO_FORMAT_ENCRYPTED 3
#define REPO_STATE_REF "refs/backup/state"

struct crypto_keys;

struct repo {
	char *path;
	int version;		/* 1 or REPO_FORMAT, as found on disk */
	git_repository *git;
	git_odb *odb;
	char *pack_dir;		/* objects/pack */
	char *dedup_dir;	/* backup/dedup */
	char *lock_dir;		/* backup/locks */
	char *state_path;	/* backup/state: format 1 only */
	/*
	 * The keys of an encrypted repository once a command opened it
	 * (keys_unlock() of lib/keys.h), else NULL. With them every blob is
	 * sealed as it is written and opened as it is read (lib/store.h);
	 * repo_free() wipes them.
	 */
	struct crypto_keys *keys;
};

/* Creates a repository at path; refuses an existing non-empty folder. */
int repo_init(const char *path);
/* The same with format version and n more entries of the state tree
 * (lib/keys.h makes those of an encrypted repository). */
struct repo_state_entry;
int repo_init_with(const char *path, int version, const struct repo_state_entry *extra, size_t n);
/* A repository for `backup clone`, whose state the remote's replaces: as
 * repo_init(), but its first state commit and reflog entry name no host
 * (the clone may turn out encrypted). */
int repo_init_for_clone(const char *path);
/*
 * Opens the repository at path; refuses a missing, foreign or newer one,
 * and a copy of a format-1 repository (git did not carry its backup/),
 * naming the fix.
 */
int repo_open(struct repo **out, const char *path);
void repo_free(struct repo *r);

/*
 * Upgrades a format-1 repository to the current format, crash-safely: the
 * state ref is written and made durable first, and is the switch; only then
 * are backup/format and backup/state removed (a repository with both is of
 * the new format, and the leftovers go the next time). Returns 1 when it
 * upgraded, 0 when there was nothing to do, -1 after reporting an error.
 */
int repo_upgrade(struct repo *r);
/*
 * What a command that writes calls first: upgrades an older format, saying
 * so on stderr. Returns 0, or -1 after reporting.
 */
int repo_prepare_write(struct repo *r);

/* Service state: a git-config text. Values are NULL/default when unset. */
char *repo_state_get(struct repo *r, const char *key);
int repo_state_get_bool(struct repo *r, const char *key, int def);
/* The value of key in a service state's text (the blob `state` of a state
 * commit that is not this repository's, such as an S3 bucket's); NULL when
 * unset. */
char *repo_state_text_get(const char *text, size_t len, const char *key);
/* Each change is one durable commit of the state ref (format 1 is
 * upgraded first). */
int repo_state_set(struct repo *r, const char *key, const char *value);
int repo_state_unset(struct repo *r, const char *key);

/*
 * Reads entry name (a path such as "state" or "keys/ID") of the state
 * tree into out (appended). Returns 0, ERR_NOTFOUND when the repository or
 * the tree has no such entry, ERR_CORRUPT when the ref names something
 * unreadable.
 */
int repo_state_read(struct repo *r, const char *name, struct strbuf *out);

/*
 * One entry of a change of the state tree: name is a path ("keys/ID"
 * makes the folder keys), data the blob, or NULL to remove the entry.
 */
struct repo_state_entry {
	const char *name;
	const void *data;
	size_t len;
};
/*
 * Changes the given entries of the state tree, keeping every other one,
 * in one durable commit of the state ref with the reflog message msg;
 * holds the state lock meanwhile. Returns 0 or -1 after reporting.
 */
int repo_state_update(struct repo *r, const struct repo_state_entry *e, size_t n, const char *msg);

/*
 * Verifies the state ref for `backup check` and `backup clone`: a commit
 * whose tree holds a valid format line (2 or 3; r->version becomes it, as
 * a clone takes the remote's format) and a state that parses. Returns 0,
 * or -1 after reporting the damage.
 */
int repo_state_check(struct repo *r);
/*
 * 1 when the state tree says a format below 3 (not encrypted) but holds an
 * encrypted repository's `encryption` entry: a format lowered by whoever
 * served the state. repo_open() and repo_state_check() refuse it.
 */
int repo_state_lowered(struct repo *r);
/* The format a state commit's `format` line says, or 0 when none. */
int repo_state_format(struct repo *r, const git_oid *commit);
/*
 * The e-mail of every commit and reflog entry backup writes:
 * backup@HOSTNAME, but backup@localhost in an encrypted repository (format
 * 3), whose files must not say where it was made. The caller frees it.
 */
char *repo_ident_email(int version);
/* Sets r->version, and the reflog identity with it (a clone that takes an
 * encrypted repository's state). */
void repo_set_version(struct repo *r, int version);

/*
 * Takes the lock of one machine's jobs (flock; it dies with the process).
 * wait_seconds < 0 waits forever, 0 not at all. Returns the lock's fd, or
 * ERR_LOCKED when another job holds it past the wait, or -1 on error.
 */
int repo_lock(struct repo *r, const char *name, long wait_seconds);
void repo_unlock(int fd);

/*
 * The repository-wide lock between jobs that add objects or read them
 * (shared: run, restore, check) and space reclamation, which deletes packs
 * (exclusive). Same return values as repo_lock().
 */
int repo_lock_shared(struct repo *r, long wait_seconds);
int repo_lock_exclusive(struct repo *r, long wait_seconds);

#endif
