/*
 * snapshot.h — backups as git commits, and the slots that name them.
 *
 * A backup is a commit with no parent (so that expiring one never keeps
 * another alive) whose tree has one subtree per disk, named by the disk's
 * label. Its message records, one "key value" line each, the machine, the
 * kind (automatic or snapshot), label, start and end, each disk's layout,
 * the profiles and the statistics (docs/FORMAT.md). Slots are the refs
 * refs/backups/MACHINE/SLOT; one backup may hold several.
 *
 * In an encrypted repository (the store's repository has keys) only the
 * machine, kind, start and end stay in the clear, what a receiver needs to
 * apply retention; every other field is sealed under the commit subkey,
 * bound to the commit's tree and clear fields. The root tree's names, the
 * disks' labels, are sealed as a folder's names are (lib/tree.h), with no
 * .meta (20 zero bytes) as their folder, and the commit names no host.
 * snapshot_read() opens it with r->keys; without them the backup reads as
 * `sealed`, each disk labelled by its stored name.
 */
#ifndef SNAPSHOT_H
#define SNAPSHOT_H

#include <stdint.h>
#include <time.h>

#include "hash.h"
#include "machine.h"
#include "repo.h"
#include "store.h"

#define SLOT_DAILY "daily"
#define SLOT_WEEKLY "weekly"
#define SLOT_BIWEEKLY "biweekly"
#define SLOT_SNAPSHOT "snapshot"

struct backup_disk {
	char *label;
	char *source;
	char *filesystem;
	uint64_t size;
	unsigned char tree[SHA1_LEN];
};

struct backup_info {
	unsigned char id[SHA1_LEN];
	char hex[2 * SHA1_LEN + 1];
	char *machine;
	char *kind;			/* "automatic" or "snapshot" */
	char *label;
	struct timespec start, end;
	struct backup_disk *disks;
	size_t ndisks;
	struct machine *layout;		/* disks and profiles as recorded */
	uint64_t files, bytes, files_read, bytes_read, bytes_stored;
	char **slots;
	size_t nslots;
	/*
	 * 1 when the backup's private fields are sealed (an encrypted
	 * repository's backup) and were read without the key: label is "",
	 * the statistics 0, and each disk has only its label and tree.
	 */
	int sealed;
};

/*
 * Writes the commit of a backup whose disks[i].tree are set, and flushes the
 * store so that the commit is durable; sets info->id.
 */
int snapshot_commit(struct store *s, struct backup_info *info);
/* Points refs/backups/MACHINE/SLOT at the backup (with a reflog entry).
 * The caller holds the machine's lock. */
int snapshot_set_slot(struct repo *r, const char *machine, const char *slot,
		      const unsigned char id[SHA1_LEN], const char *why);

/* Reads one backup; ERR_CORRUPT when its commit is not one of ours. */
int snapshot_read(struct repo *r, const unsigned char id[SHA1_LEN], struct backup_info **out);
void backup_info_free(struct backup_info *b);
/*
 * 1 when the backup id is one of an encrypted repository: its commit has
 * sealed fields or, with deep, the .meta of a disk's top folder is not a
 * bare zstd frame (a sealed blob); 0 when it is a plain backup, -1 when its
 * commit is unreadable or not a backup. Needs no key: it is how a
 * repository whose state says "not encrypted" finds that it holds
 * encrypted backups (a state replaced by whoever served it).
 */
int snapshot_sealed(struct repo *r, const unsigned char id[SHA1_LEN], int deep);
/* 1 when a ref under refs/backups/ names a backup with sealed fields,
 * *ref (the caller frees it) being the first; 0 when none; -1 on error. */
int snapshot_find_sealed(struct repo *r, char **ref);
/* Parses a backup's commit message alone (no disk trees); for tests. */
int snapshot_parse(const char *msg, struct backup_info **out);

/*
 * Every kept backup (those a slot or, on a receiver, a kept ref names; the
 * latter listed with the slot "kept"), newest first; machine may be NULL.
 * A slot naming a damaged backup is reported and skipped (counted in
 * *ndamaged when it is not NULL), one written by a newer version skipped
 * with a warning.
 */
int snapshot_list(struct repo *r, const char *machine, struct backup_info ***out, size_t *nr);
int snapshot_list_ext(struct repo *r, const char *machine, struct backup_info ***out, size_t *nr,
		      size_t *ndamaged);
void snapshot_list_free(struct backup_info **list, size_t nr);

/* Resolves SRC: MACHINE (its newest backup), MACHINE:SLOT, or an id prefix. */
int snapshot_resolve(struct repo *r, const char *src, struct backup_info **out);

/* The disk of a backup by label, or NULL. */
struct backup_disk *backup_disk(const struct backup_info *b, const char *label);

/* RFC 3339 UTC with seconds: "2026-11-28T16:00:00Z". buf holds 32 bytes. */
const char *format_time(const struct timespec *t, char *buf, size_t len);

#endif
