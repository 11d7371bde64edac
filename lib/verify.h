/*
 * verify.h — checking a restored folder against the disk tree it came from.
 *
 * verify_tree() walks a disk tree of the repository and the folder it was
 * restored into side by side, and compares every entry: its type, mode,
 * owner and group (the numbers), size, mtime to the nanosecond, symlink
 * target, device numbers, extended attributes (POSIX ACLs included, byte
 * for byte), whether a sparse file kept its holes, which names are one
 * file (hard links), and the content of every regular file, read back from
 * the folder and compared byte for byte with the blobs decoded from the
 * repository (each blob is checked against its git hash and its zstd
 * checksum on the way, see store.h). Names in the folder that the backup
 * does not have are differences too. Access times are not compared (reading
 * changes them), nor ctime, which no restore can set.
 *
 * With no folder, verify_tree() only reads: every tree, .meta record and
 * blob of the disk is decoded and checked, and what cannot be read is
 * reported. That answers "is this backup readable?" before anything is
 * replaced by it.
 *
 * Nothing is printed: each difference goes to the report's callback, in
 * the order of the walk (a folder's entries in byte order of their names).
 * The walk stops early when interrupted is set (usage.h); the caller, who
 * installed the handler, then knows the report is incomplete.
 */
#ifndef VERIFY_H
#define VERIFY_H

#include <stdint.h>

#include "hash.h"
#include "repo.h"

/*
 * One difference. what is one word that says which property differs:
 *
 *   missing     in the backup, not in the folder
 *   unexpected  in the folder, not in the backup
 *   type        a different kind of file (then nothing else is compared)
 *   mode        permission bits, set-id and sticky bits
 *   uid, gid    the numeric owner or group
 *   size        a regular file's size
 *   mtime       the modification time, nanoseconds included
 *   content     the bytes of a regular file
 *   symlink     a symbolic link's target
 *   rdev        a device's major and minor numbers
 *   xattr       an extended attribute (or ACL) missing, extra or different
 *   hardlink    names that were one file are not, or the other way round
 *   sparse      a sparse file lost its holes
 *   damaged     the backup's own data for the entry cannot be read: a tree,
 *               a .meta record or a blob is missing or fails its checksums
 *   unreadable  the folder's entry cannot be examined (stat, open, read)
 *
 * path is the entry's path from the disk root with a leading '/' ("/" is
 * the root itself) and its names as stored, any byte but '/' and NUL.
 * detail says, for people, what the backup has and what the folder has.
 */
struct verify_mismatch {
	const char *path;
	const char *what;
	const char *detail;
};

struct verify_report {
	/* Entries of the backup examined; these are added to, never reset. */
	uint64_t files, bytes, dirs, others;
	uint64_t mismatches;	/* differences reported, damaged ones included */
	uint64_t damaged;	/* of which "damaged": the backup is at fault */
	/* Called once per difference; may be NULL. */
	void (*mismatch)(const struct verify_mismatch *m, void *data);
	void *data;
	/*
	 * Set by the caller: compare times to the second only, for a folder
	 * that cannot hold more (an ext4 image made by mke2fs -d, diskimg.h).
	 */
	int whole_seconds;
};

/*
 * Compares the folder dir with the disk tree tree (as restore_tree() would
 * have restored it), or with dir NULL only reads the tree and all its data.
 * The caller holds repo_lock_shared(). Returns 0 when nothing differs and
 * every byte of the backup could be read, -1 otherwise; the differences are
 * counted in out and passed to its callback, and nothing is printed.
 */
int verify_tree(struct repo *r, const unsigned char tree[SHA1_LEN], const char *dir,
		struct verify_report *out);

#endif
