/*
 * dedup.h — the deduplication index: SHA-256 of a chunk's plaintext to the
 * git id of the blob that stores it.
 *
 * On disk the index is one sidecar per pack, backup/dedup/pack-HASH.sdx,
 * written only after its pack is durable, so it never names a blob that is
 * not in a pack; a missing or damaged sidecar only costs deduplication and
 * can be rebuilt from its pack. In memory all sidecars are merged into one
 * open-addressing hash table of 8-byte slots at a load factor of at most
 * 1/2 over 52-byte entries that never move: 68-84 bytes per chunk in the
 * repository, and growing the table copies only the slots.
 */
#ifndef DEDUP_H
#define DEDUP_H

#include <stddef.h>

#include "hash.h"

struct dedup_entry {
	unsigned char key[SHA256_LEN];
	unsigned char oid[SHA1_LEN];
};

struct dedup;

/*
 * Loads every sidecar in dir (which may not exist yet; NULL gives an empty
 * index) whose pack is still in pack_dir; damaged ones are skipped with a
 * warning. A sidecar whose pack was removed (by our space reclamation or by
 * a stock `git repack`) is ignored, so the index never names a blob that
 * is gone.
 */
int dedup_load(struct dedup **out, const char *dir, const char *pack_dir);
/*
 * The same sidecars the other way round, for verification: the key is the
 * blob id (zero-padded) and the value the first 20 bytes of its SHA-256.
 */
int dedup_load_reverse(struct dedup **out, const char *dir, const char *pack_dir);
void dedup_free(struct dedup *d);
size_t dedup_count(const struct dedup *d);

/* 1 and the blob id in oid when key is known, else 0. */
int dedup_lookup(const struct dedup *d, const unsigned char key[SHA256_LEN],
		 unsigned char oid[SHA1_LEN]);
void dedup_insert(struct dedup *d, const unsigned char key[SHA256_LEN],
		  const unsigned char oid[SHA1_LEN]);

/*
 * The same table as a set of object ids (keyed by the zero-padded id), for
 * the walks that must visit each object once: reclamation's mark, check.
 */
int dedup_has_oid(const struct dedup *d, const unsigned char oid[SHA1_LEN]);
void dedup_add_oid(struct dedup *d, const unsigned char oid[SHA1_LEN]);

/* Writes dir/PACKNAME.sdx durably from entries (sorted here). */
int dedup_write_sidecar(const char *dir, const char *packname,
			struct dedup_entry *entries, size_t nr);
/* Reads one sidecar; returns 0, or ERR_CORRUPT when its checksum fails. */
int dedup_read_sidecar(const char *path, struct dedup_entry **out, size_t *nr);

#endif
