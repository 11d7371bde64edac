/*
 * profile.h — a configuration profile made concrete: which disk mounts where
 * when the profile boots, and the forms it can be printed in.
 *
 * A profile (machine.h) assigns disks to the devices sda..sdh and names one
 * device as root. profile_layout_new() resolves that against the machine's
 * disks: the root device's disk mounts at "/", every other assigned disk at
 * its disk.LABEL.mount, else at /mnt/LABEL, and the mounts are ordered so
 * that a parent comes before its children, as fstab(5) needs. From a layout
 * the profile can be checked against this host, printed as an fstab, as a
 * systemd-nspawn command line or as JSON, and recorded as the one that boots.
 *
 * A disk whose source ends in ".img" is an image file (what
 * `backup restore --disk-format ext4` makes); any other source is a folder.
 */
#ifndef PROFILE_H
#define PROFILE_H

#include "machine.h"
#include "strbuf.h"

/* 1 if the disk's source is an image file (it ends in ".img"). */
int disk_is_image(const struct disk *d);

/* One disk of a profile and where it mounts when the profile boots. */
struct profile_mount {
	int device;			/* 0..7 for sda..sdh */
	const struct disk *disk;	/* points into the machine */
	char *target;			/* "/" for the root disk */
};

struct profile_layout {
	const struct machine *machine;
	const struct profile *profile;
	const struct disk *root;	/* the root device's disk */
	struct profile_mount *mounts;	/* parents before children; root first */
	size_t nmounts;
};

/*
 * Resolves profile p of machine m. Fails, after printing what is wrong and
 * how to fix it, when the profile has no root device or when two disks would
 * mount at the same place. A disk assigned to more than one device mounts
 * once, for its first device. The layout points into m, which must outlive it.
 */
int profile_layout_new(struct profile_layout **out, const struct machine *m,
		       const struct profile *p);
void profile_layout_free(struct profile_layout *l);

/*
 * Checks that every disk of the layout is present on this host: a folder
 * source is a directory, an image source a regular file. Prints the first
 * one that is not, with the fix, and returns -1.
 */
int profile_check_sources(const struct profile_layout *l);

/*
 * Adds an fstab(5) for the layout: a folder disk is a bind mount
 * ("SOURCE TARGET none bind 0 0"), an image a loop mount
 * ("SOURCE TARGET FILESYSTEM loop 0 PASS", pass 1 for root, else 2).
 * Blanks and backslashes in paths are written as octal escapes.
 */
void profile_fstab(struct strbuf *sb, const struct profile_layout *l);

/*
 * Adds a shell script that boots the layout with systemd-nspawn: the root
 * disk as --directory (a folder) or --image (an image file), every other
 * folder disk bound at its target with --bind, and --machine=NAME. An image
 * file that is not the root cannot be given to systemd-nspawn as it is, so
 * the script first loop-mounts it under rundir/LABEL (rundir is typically
 * /run/backup/MACHINE) and binds that. Paths are quoted for the shell.
 */
void profile_nspawn(struct strbuf *sb, const struct profile_layout *l, const char *rundir);

/*
 * Adds the layout as one JSON object: machine, profile, root (the device),
 * boots (whether it is the profile that boots), devices (device -> label)
 * and disks (in device order: device, label, source, type, mount, size,
 * filesystem).
 */
void profile_json(struct strbuf *sb, const struct profile_layout *l);

/* Adds the devices of p as a JSON object, e.g. {"sda":"root","sdb":"data"}. */
void profile_devices_json(struct strbuf *sb, const struct profile *p);

/*
 * Expands a bootCommand for the layout into sb: %r is the root disk's
 * source, %p the profile, %m the machine and %% a single %. Each of %r, %p
 * and %m becomes one shell word, quoted when it needs to be. Any other %
 * sequence is an error (printed), so that a typo is found before anything
 * runs.
 */
int profile_expand_command(struct strbuf *sb, const char *tmpl, const struct profile_layout *l);

/*
 * Records profile as the one that boots: sets machine.boot in the machine
 * file at path with libgit2's config writer, which rewrites only that line
 * (comments, order and every other key stay), keeps the file's mode and
 * syncs it to disk. Returns 0, or -1 after printing the reason.
 */
int profile_set_boot(const char *path, const char *profile);

#endif
