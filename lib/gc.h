/*
 * gc.h — space reclamation: removing what no kept backup needs.
 *
 * Live objects are those reachable from any ref (every slot of every
 * machine); the walk reads trees only, never file data, so its cost grows
 * with the live metadata. Reflog entries naming commits that are no longer
 * live are dropped (stock git would otherwise keep dead data alive, and git
 * fsck would complain once it is gone). Then each pack is kept as it is
 * when all its objects live, deleted when none does, and otherwise its live
 * objects are copied, byte for byte and without recompression, into new
 * packs. The new packs and their dedup sidecars are durable before any old
 * pack is deleted, so a crash at any instant leaves every kept backup whole
 * (at worst with some dead data or duplicates left for the next run).
 *
 * The caller holds the repository lock exclusively: no job adds or reads
 * objects or moves a ref meanwhile (every job that does holds it shared), so
 * ref and reflog locks found then were left by killed jobs and are removed.
 */
#ifndef GC_H
#define GC_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "repo.h"

struct gc_stats {
	size_t packs_before, packs_after;
	size_t packs_deleted, packs_rewritten;
	uint64_t bytes_before, bytes_after;	/* packs, indexes and sidecars */
	uint64_t live_objects, dead_objects;
	uint64_t dead_bytes;			/* packed bytes of dead objects */
	size_t reflog_dropped;
};

/*
 * Adds the backup whose commit is id, and every tree and blob its tree
 * reaches, to live (a dedup table used as a set of object ids), reading
 * commits and trees only: the mark of reclamation, for the S3 push too.
 * Returns 0, or -1 after naming what cannot be read.
 */
struct dedup;
int gc_mark_backup(struct repo *r, struct dedup *live, const git_oid *id);

/*
 * Appends to pw, in the order of the pack at pack_path (whose index is
 * idx), each of its objects that live holds: byte for byte, without
 * recompression, except an object stored as a delta (a pack stock git
 * wrote), which is read whole through odb and stored whole. After each,
 * moved (unless NULL) is called with its id; it may flush pw, and a
 * non-zero return stops the copy with it. Unless copied is NULL, an object
 * it holds is skipped, and each object copied is added to it: two packs
 * may hold one object (two hosts' runs, a rewrite uploaded later), and a
 * pack index must not list one id twice, so a caller copying several
 * packs passes one set for all of them. Returns 0, or -1 after
 * reporting. Space reclamation moves live objects with it, and so does the
 * repack of an S3 remote (transport_s3.c).
 */
struct pack_writer;
struct packidx;
int gc_copy_live(struct pack_writer *pw, git_odb *odb, const char *pack_path, const struct packidx *idx,
		 struct dedup *live, struct dedup *copied, int (*moved)(const unsigned char *oid, void *arg),
		 void *arg);

/* The bytes that a pack of pack_size bytes, with index idx, spends on the
 * objects live lacks (entries only: header and trailer not counted). */
uint64_t gc_dead_bytes(const struct packidx *idx, struct dedup *live, uint64_t pack_size);

/*
 * With dry_run, only counts: nothing is changed. Refs naming one of the
 * ndrop commits in drop are treated as gone (what rotate --dry-run plans to
 * delete).
 */
int gc_run(struct repo *r, int dry_run, const unsigned char (*drop)[SHA1_LEN], size_t ndrop,
	   struct gc_stats *st);

/*
 * gc_run() for a caller that holds no lock, such as rotate and cancel:
 * takes the repository lock first (exclusive; shared for a dry run, which
 * deletes nothing), waiting up to wait seconds, and releases it after.
 * Returns 0, ERR_LOCKED (printing nothing) when other jobs used the
 * repository all that time, so that reclamation is deferred to a later
 * call, or -1 after printing the reason. *st is zeroed first.
 */
int gc_reclaim(struct repo *r, long wait, int dry_run, const unsigned char (*drop)[SHA1_LEN],
	       size_t ndrop, struct gc_stats *st);

#endif
