/*
 * machine.h — the global configuration and machine files.
 *
 * Both are git-config files read with libgit2 (backup.conf(5)). A machine
 * NAME is defined by MACHINES_DIR/NAME.conf: its plan (the storage it may
 * allocate), its disks (label, source folder, allocated size, filesystem),
 * its configuration profiles (root device and sda..sdh -> disk label) and
 * what a backup of it does (exclude patterns, hooks).
 */
#ifndef MACHINE_H
#define MACHINE_H

#include <stdint.h>
#include <stddef.h>

#define DEFAULT_CONFIG "/etc/backup/backup.conf"
#define DEFAULT_REPO "/var/lib/backup/repo"
#define DEFAULT_MACHINES_DIR "/etc/backup/machines"
#define DEFAULT_MACHINES_ROOT "/var/lib/backup/machines"
#define NDEVICES 8	/* sda .. sdh */

struct config {
	char *path;		/* the file read, NULL when there was none */
	char *repo_path;
	char *machines_dir;
	char *machines_root;
	int auto_enroll;
	char *push;		/* backup.push: the remote `backup run` pushes to, or NULL */
};

/*
 * Reads the global configuration from path; a missing file is an error only
 * when required (the user named it). repo overrides repository.path.
 */
int config_load(struct config **out, const char *path, int required, const char *repo);
void config_free(struct config *c);

struct scan;

struct disk {
	char *label;
	char *source;
	uint64_t size;
	char *filesystem;
	char *mount;		/* where it mounts when its profile boots, or NULL */
};

struct profile {
	char *name;
	char *root;			/* "sda" .. "sdh" */
	char *dev[NDEVICES];		/* disk label per device, or NULL */
};

struct machine {
	char *name;
	char *path;
	uint64_t plan;
	char *boot;			/* the profile that boots, or NULL */
	char *boot_command;
	char *push;		/* machine.push: the remote `backup run` pushes to, or NULL */
	struct disk *disks;
	size_t ndisks;
	struct profile *profiles;
	size_t nprofiles;
	char **excludes;
	size_t nexcludes;
	char *pre_hook;
	char *post_hook;
	struct scan *scan;		/* where each key is set, for messages */
	size_t nscan;
};

/* 1 if name may name a machine, a disk or a profile: [A-Za-z0-9_.-], not
 * starting with '.' or '-', at most 64 bytes. */
int valid_name(const char *name);

/* The file of machine name (caller frees). */
char *machine_path(const struct config *c, const char *name);
/* Loads and validates a machine; ERR_NOTFOUND (after printing) if undefined. */
int machine_load(struct machine **out, const struct config *c, const char *name);
/* Parses a machine from a file (used by machine_load). */
int machine_parse(struct machine **out, const char *name, const char *path);
void machine_free(struct machine *m);
/* Frees what a profile holds and zeroes it (not p itself). */
void profile_release(struct profile *p);
/* Writes m to path durably, in the syntax machine_parse() reads. */
int machine_write(const struct machine *m, const char *path);

struct disk *machine_disk(const struct machine *m, const char *label);
struct profile *machine_profile(const struct machine *m, const char *name);
/* The profile that boots: m->boot, else the only or the first profile. */
struct profile *machine_boot_profile(const struct machine *m);
/* The root disk's label: the booting profile's root device, else the only disk. */
const char *machine_root_disk(const struct machine *m);

/* "sda" .. "sdh" -> 0 .. 7; -1 for anything else (NULL included). */
int device_index(const char *dev);

/* Lists the machine names defined in the machines folder, sorted. */
int machine_list(char ***out, size_t *nr, const struct config *c);

#endif
