/*
 * repo.h — the repository: creating it, opening it, its service state.
 *
 * A repository is a bare git repository (stock git reads it) plus a folder
 * backup/ that git ignores: backup/format (the format version, see
 * docs/FORMAT.md), backup/dedup/ (the dedup sidecars), backup/locks/ and
 * backup/state, a git-config file of the service state (which machines are
 * enrolled, schedules, cancel times, auto-enrolment) that only commands change.
 */
#ifndef REPO_H
#define REPO_H

#include <git2.h>

#define REPO_FORMAT 1

struct repo {
	char *path;
	git_repository *git;
	git_odb *odb;
	char *pack_dir;		/* objects/pack */
	char *dedup_dir;	/* backup/dedup */
	char *lock_dir;		/* backup/locks */
	char *state_path;	/* backup/state */
};

/* Creates a repository at path; refuses an existing non-empty folder. */
int repo_init(const char *path);
/* Opens the repository at path; refuses a missing, foreign or newer one. */
int repo_open(struct repo **out, const char *path);
void repo_free(struct repo *r);

/* Service state: a git-config file. Values are NULL/default when unset. */
char *repo_state_get(struct repo *r, const char *key);
int repo_state_get_bool(struct repo *r, const char *key, int def);
int repo_state_set(struct repo *r, const char *key, const char *value);
int repo_state_unset(struct repo *r, const char *key);

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
