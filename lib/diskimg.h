/*
 * diskimg.h — disk image files made from a folder.
 *
 * `backup restore --disk-format ext4` makes each disk an image file of the
 * disk's recorded size holding an ext4 file system, which mounts (`mount -o
 * loop`), boots (`systemd-nspawn --image`) and passes `e2fsck -fn`. The file
 * system is written by e2fsprogs' `mke2fs -d`, which copies a folder into
 * it: the disk is restored into a staging folder beside the image first,
 * with its exact metadata, and the staging folder is removed afterwards.
 *
 * mke2fs -d (e2fsprogs 1.47) carries owners, modes (set-id and sticky bits
 * too), symbolic links, device nodes, FIFOs, sockets, hard links, holes and
 * extended attributes in every namespace, the POSIX ACLs included. It
 * carries times to the second only, and nothing of the root folder but its
 * extended attributes: diskimg_make_ext4() sets the root folder's mode,
 * owner and times (with their nanoseconds) itself with debugfs. Change times
 * are the time the image was made, as in any restore. The image also holds
 * the lost+found folder every ext4 file system has.
 */
#ifndef DISKIMG_H
#define DISKIMG_H

#include <stdint.h>

#include "hash.h"
#include "repo.h"
#include "restore.h"

/* The smallest image mke2fs makes a usable ext4 file system in. */
#define DISKIMG_MIN_SIZE (1024 * 1024)

/*
 * Makes image, which must not exist, a sparse file of size bytes holding an
 * ext4 file system with the content of the folder staging, and syncs it.
 * inodes is the number of files, folders and other entries it must hold
 * (0 when unknown): when mke2fs's default would give fewer inodes than that
 * with some headroom, it is asked for more. Returns 0; ERR_NOSPACE, printing
 * nothing, when the content does not fit size bytes; or -1 after printing
 * the reason. On failure image is removed.
 */
int diskimg_make_ext4(const char *staging, const char *image, uint64_t size, uint64_t inodes);

/*
 * Restores a disk tree as the ext4 image file image of size bytes: the tree
 * is restored into a staging folder beside the image (".NAME.staging",
 * removed afterwards, also when left by an earlier crash) and then
 * diskimg_make_ext4() makes the image from it. The counts of what was
 * restored are added to stats. Returns 0; ERR_NOSPACE (nothing printed)
 * when the content does not fit size; ERR_PARTIAL when files could not be
 * restored (each was named on stderr and counted in stats->errors) and so no
 * image was made; or -1 after printing the reason. Nothing is left behind
 * on failure.
 */
int diskimg_restore_ext4(struct repo *r, const unsigned char tree[SHA1_LEN], const char *image,
			 uint64_t size, struct restore_stats *stats);

#endif
