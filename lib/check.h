/*
 * check.h — verifying the repository.
 *
 * check_repo() checks every pack index's checksum and that its pack has a
 * readable dedup sidecar, then walks every kept backup (each slot of each
 * machine), folder by folder, and checks that each object it reaches is
 * there: a folder's tree and its metadata, each file's blob or chunks. With
 * read_data it also reads and decodes every byte (the blob's git hash and
 * the zstd frame's checksum), checks the whole checksum of each pack, and
 * that the dedup index gives the SHA-256 of exactly those bytes (in an
 * encrypted repository: their MAC, and every blob must pass its tag).
 *
 * An encrypted repository needs its keys (r->keys) for read_data; without
 * them its .meta records cannot be read, and the walk checks each tree's
 * entries as git types them (blobs exist, trees are walked), naming paths
 * by their stored names.
 *
 * Each damaged object is named once per backup that reaches it, on stderr,
 * with the backup, its slots and the path within it ("backup: damaged:
 * ..."), and passed to the damaged_object callback. The caller holds the
 * repository lock shared.
 */
#ifndef CHECK_H
#define CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "repo.h"

struct backup_info;

struct check_report {
	/* Set by the caller. */
	int read_data;
	/* Called, when not NULL, for each damaged object reached from a
	 * backup: its id in hex, "blob", "tree", "metadata" or "entry", and
	 * the path within the backup ("LABEL:/etc/hostname"). */
	void (*damaged_object)(const char *hex, const char *what, const struct backup_info *b,
			       const char *path, void *data);
	void *data;

	/* Set by check_repo(). */
	int packs, damaged_packs;
	size_t backups;
	uint64_t objects, bytes;	/* objects checked; bytes read (read_data) */
	uint64_t damaged;		/* damaged objects, and unreadable backups */
	uint64_t index_damaged;		/* dedup index entries or sidecars that are wrong */
	int state_damaged;		/* refs/backup/state does not read (repo_state_check) */
};

/* Returns 0 when the repository is sound, ERR_CORRUPT when something is damaged. */
int check_repo(struct repo *r, struct check_report *rep);

#endif
