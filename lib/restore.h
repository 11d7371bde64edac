/*
 * restore.h — writing a backed-up tree back to a folder.
 *
 * Restore works below one target folder through directory file
 * descriptors: every name is created with openat()/mkdirat()/symlinkat()/
 * mknodat() relative to its parent's descriptor and opened with O_NOFOLLOW,
 * so nothing is ever written through a symlink, whether found in the target
 * or planted by the backup itself, and no name in a backup ("..", "/",
 * absolute paths) can reach outside the target. What is in the way is
 * replaced. Metadata is applied in the order that keeps it exact: owner,
 * then mode (chown clears set-id bits), then extended attributes and ACLs,
 * then times, and a directory's only after its contents. Sparse files get
 * their holes back; hard links are linked again.
 *
 * Every byte written was checked on the way: the blob's git hash and the
 * zstd frame's checksum (packread.h). A file whose data fails is not left
 * behind: it is named on stderr, removed, and counted in errors.
 *
 * The walking thread creates every name; worker threads (one per core, at
 * most four) decode and write the chunks of regular files, each at its
 * offset, and apply a file's metadata after its last chunk. Hard-linked
 * files are written by the walking thread, before their other names are
 * linked. Nothing is reported done before syncfs() of the target returns.
 */
#ifndef RESTORE_H
#define RESTORE_H

#include <stdint.h>

#include "hash.h"
#include "repo.h"

struct restore_stats {
	uint64_t files, bytes, dirs, others;
	uint64_t errors;	/* files that could not be restored */
};

/*
 * Restores a disk tree into target, which is created when missing (its
 * parent must exist); the disk root's metadata goes onto target itself.
 */
int restore_tree(struct repo *r, const unsigned char tree[SHA1_LEN], const char *target,
		 struct restore_stats *stats);

/*
 * Restores the file or folder at path (relative to the disk root, e.g.
 * "etc/hostname") into target_root/path, creating target_root and the
 * folders between as needed. ERR_NOTFOUND when the backup has no such path.
 */
int restore_path(struct repo *r, const unsigned char disk_tree[SHA1_LEN], const char *path,
		 const char *target_root, struct restore_stats *stats);

#endif
