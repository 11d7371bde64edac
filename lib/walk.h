/*
 * walk.h — reading a disk's source into a git tree of the repository.
 *
 * The walker stays on the source's file system, skips what the exclude
 * patterns match, and builds one tree per directory: the directory's
 * ".meta" blob (meta.h), a blob per regular file of one chunk, a tree of
 * chunk blobs ("00000000", "00000001", ...) per larger file, and a subtree
 * per directory. Metadata comes from fstatat() and the raw extended
 * attributes, which on Linux include the POSIX ACLs.
 *
 * A regular file whose size, mtime, ctime and inode equal those recorded in
 * the previous tree is not opened: its content and attributes are taken from
 * there (an attribute change moves ctime). Reading and chunking run on the
 * calling thread while worker threads hash, compress and store the chunks;
 * the queue between them is bounded, and a directory's tree is built as soon
 * as all of its chunks are stored, so memory stays bounded too.
 */
#ifndef WALK_H
#define WALK_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "repo.h"
#include "store.h"

struct walk_stats {
	uint64_t files, bytes;		/* regular files and their bytes */
	uint64_t dirs, others;
	uint64_t files_read, bytes_read; /* content actually read */
	char **unreadable;		/* paths that could not be read */
	size_t nunreadable;
};

struct walk_opts {
	struct repo *repo;
	struct store *store;
	const char *source;		/* the folder to read */
	char *const *excludes;		/* fnmatch patterns on full paths */
	size_t nexcludes;
	const unsigned char *prev_tree;	/* the same disk in the previous backup, or NULL */
	int threads;			/* workers; 0 = one per core */
	int progress;			/* print progress on stderr (a terminal) */
	uint64_t expected_bytes;	/* for the ETA: the previous backup's size */
};

/*
 * Reads the source into the store and sets tree to the disk's tree. Files
 * that cannot be read are named on stderr, listed in stats and left out;
 * the walk goes on. Returns 0, or -1 when the disk cannot be read at all or
 * the store fails (the caller then references nothing).
 */
int walk_disk(const struct walk_opts *o, struct walk_stats *stats, unsigned char tree[SHA1_LEN]);
void walk_stats_release(struct walk_stats *s);

/*
 * walk_disk() in two steps, for a caller that must wait for something
 * before it can walk (the key of an encrypted repository, which the
 * previous backup's tree and the store need): walk_start() opens the
 * source and has the scanner thread list and stat its folders meanwhile,
 * as far ahead as the open-file limit allows, reading no content and
 * needing no key. It uses o's source and exclusions, which must not change
 * until the end; it returns NULL, quietly, when the source cannot be
 * opened (walk_disk() will say why). walk_finish() then walks exactly as
 * walk_disk() with o's other fields (the store, the previous tree, ...),
 * taking what was read ahead; walk_cancel() gives it all up instead
 * (accepts NULL). Either frees w.
 */
struct walker;
struct walker *walk_start(const struct walk_opts *o);
int walk_finish(struct walker *w, const struct walk_opts *o, struct walk_stats *stats, unsigned char tree[SHA1_LEN]);
void walk_cancel(struct walker *w);

/* Name of uid/gid, "" when it has none; cached, single-threaded. */
const char *uid_name(uint32_t uid);
const char *gid_name(uint32_t gid);

#endif
