/*
 * drill.h — the disaster-recovery drill: a backup restored as a scratch
 * machine and every file of it verified against the backup.
 *
 * The scratch machine is machines.root/.drill-MACHINE-PID (no machine name
 * starts with '.'); drill_start() first removes those of drills that were
 * killed before they could clean up. Each disk is restored as restore
 * --new restores it, as a folder or an ext4 image, then verified: a folder
 * directly, an image through the kernel's ext4 (a read-only loop mount,
 * which needs root), where mtimes are compared to the second as mke2fs -d
 * keeps them. Last, the scratch machine's file is written beside its disks
 * and read back. Every difference found is a struct drill_problem; nothing
 * is printed on stdout, and the caller hears of each disk through the
 * progress callback as it is done, so that a long drill reports as it goes.
 *
 * The caller holds the repository lock shared from drill_start() to the
 * end of drill_run(), and may install catch_interrupts(): a drill stops
 * between disks once interrupted is set, and still unmounts and removes
 * what it made.
 */
#ifndef DRILL_H
#define DRILL_H

#include <stddef.h>
#include <stdint.h>

#include "repo.h"
#include "restore.h"
#include "snapshot.h"
#include "strbuf.h"
#include "verify.h"

/* A difference: path (in the backup's disk, or the machine file) and what. */
struct drill_problem {
	const char *disk;	/* a label, or NULL for the machine file */
	char *path, *what, *detail;
};

struct drill_disk {
	const char *label;
	char *path;			/* the restored folder, or image */
	char *mnt;			/* ext4: where the image was mounted to be verified */
	struct restore_stats rs;
	struct verify_report vr;
	double restore_s, verify_s;
	int restore_failed;
	size_t nproblems;		/* of the drill's, this disk's */
};

struct drill {
	/* Set by the caller. */
	struct repo *repo;
	const char *machine;
	struct backup_info *b;		/* a backup of machine */
	int ext4;			/* disks as ext4 images, not folders */
	int keep;			/* leave the scratch machine in place */
	/*
	 * Called, when not NULL, after disk i is restored and verified, and
	 * with i == ndisks after the machine file, with the problems it added
	 * from index first on.
	 */
	void (*progress)(const struct drill *d, size_t i, size_t first, void *data);
	void *data;

	/* Set by the drill. */
	char *scratch;			/* the scratch machine's folder */
	int made;			/* scratch exists and is the drill's to remove */
	int mounted;			/* an image could not be unmounted */
	int kept;			/* scratch was left in place (keep or mounted) */
	struct drill_disk *disks;
	size_t ndisks;
	struct drill_problem *problems;
	size_t nproblems;
	int machine_file_failed;
	double restore_s, verify_s;
	uint64_t files, bytes, dirs, others, damaged;
	const char *cur_disk;		/* the disk being verified */
};

/*
 * Clears dead drills under root (machines.root) and makes the scratch
 * machine with its disks folder. Returns 0, or -1 after printing why.
 */
int drill_start(struct drill *d, const char *root);

/* Restores and verifies every disk, then the machine file. */
void drill_run(struct drill *d);

/*
 * Removes the scratch machine, or keeps it (d->kept) with d->keep or when
 * an image could not be unmounted: a mounted image is never removed from
 * under its mount. Returns 0, or -1 after printing why it stays.
 */
int drill_finish(struct drill *d);

/* Frees what the drill holds; the scratch machine goes unless kept. */
void drill_release(struct drill *d);

/* "LABEL:/path: what: detail", for reports. */
void drill_problem_line(struct strbuf *sb, const struct drill_problem *p);

#endif
