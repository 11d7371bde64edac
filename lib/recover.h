/*
 * recover.h — restoring a whole machine from a backup.
 *
 * recover_new() makes a new machine NAME out of a backup: its disks as
 * folders (or ext4 images) under machines.root/NAME/disks/, then its
 * machine file machines.dir/NAME.conf, the backup's layout pointing at
 * them. The machine file comes last, so that NAME is defined only once
 * every disk is whole; until then machines.root/NAME holds a locked
 * ".restoring" file, and a restore killed before the end leaves it
 * unlocked: the next recover_new() of NAME removes that folder.
 *
 * recover_existing() adds the backup's disks, under labels the machine
 * has not got (LABEL-r1, -r2, ...), and a profile "restore-ID" that boots
 * them, to an existing machine, whose file is edited in place (comments,
 * order and every other key stay) and replaced at once by rename. With
 * overwrite the machine's old disks and profiles go: those inside
 * machines.root/NAME are deleted, any other (a live machine's "/") only
 * dropped from the file. The space rule: the new disks must fit the
 * machine's plan beside its disks, or with overwrite the plan alone; when
 * they fit only once the old disks are gone, the whole backup is read
 * back first and the old disks are deleted before the new are made, else
 * after the new machine file is in place.
 *
 * Both print their failures on stderr (error()) and return 0, ERR_NOSPACE
 * (the backup does not fit, reason printed), ERR_LOCKED (existing only:
 * another job holds the machine's lock past wait seconds; nothing
 * printed), or -1. Either way the machine is as it was before unless the
 * failure message says otherwise. Nothing is printed on stdout: what was
 * made is in struct recover_result. The caller holds the repository lock
 * shared (packs must not be reclaimed while they are read).
 */
#ifndef RECOVER_H
#define RECOVER_H

#include <stdint.h>

#include "machine.h"
#include "repo.h"
#include "restore.h"
#include "snapshot.h"

/* A disk made from the backup. */
struct recover_disk {
	char *label;		/* its label in the machine restored into */
	const char *from;	/* its label in the backup */
	char *path;		/* the folder or image made */
	uint64_t size;
};

/* A disk that overwrite took out of the machine. */
struct recover_removed {
	char *label, *source;
	int deleted;		/* 0: left in place (not made by backup) or failed */
};

struct recover_result {
	char *config;			/* the machine file written */
	char *profile;			/* existing: the profile added */
	struct recover_disk *disks;
	size_t ndisks;
	uint64_t required;		/* the backup's disks' sizes */
	uint64_t unallocated;		/* existing: the plan less the old disks */
	struct recover_removed *removed;	/* overwrite: the old disks */
	size_t nremoved;
	char **removed_profiles;	/* overwrite: the old profiles */
	size_t nremoved_profiles;
	struct restore_stats stats;
};

/*
 * Restores backup b as the new machine name, its disks as ext4 images
 * when ext4, else as folders. b's layout is changed into the new
 * machine's. *res is set even on failure; free it with recover_release().
 */
int recover_new(struct repo *r, const struct config *c, struct backup_info *b, const char *name,
		int ext4, struct recover_result *res);

/*
 * Restores backup b into the existing machine name, waiting up to wait
 * seconds for its lock (the machine's other jobs wait for this one).
 */
int recover_existing(struct repo *r, const struct config *c, const struct backup_info *b,
		     const char *name, int overwrite, int ext4, long wait, struct recover_result *res);

void recover_release(struct recover_result *res);

#endif
