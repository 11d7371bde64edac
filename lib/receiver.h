/*
 * receiver.h — the append-only receiver: a repository on an offsite host
 * that clients push their slots to over SSH, with stock git on both ends.
 *
 * A receiver is a backup repository like any other (list, restore, check
 * and rotate work on it), made by receiver_init(), which sets git up to keep
 * every push as one checked pack and installs a pre-receive hook that runs
 * `backup receiver hook`. Each client key gets an authorized_keys line whose
 * forced command, `backup receiver serve`, runs stock git-receive-pack or
 * git-upload-pack on the receiver only, showing the key its own machines'
 * refs only, and tells the hook which machines the key may write.
 *
 * The hook lets a key create or move refs/backups/MACHINE/SLOT of its own
 * machines, to a backup of that machine of the right kind that is not older
 * than the one it replaces; it refuses deletes, rewinds, other machines'
 * refs and every other ref. The backup a slot leaves stays on the receiver
 * under refs/backups/MACHINE/kept/ID until the receiver's own retention
 * (receiver_plan) expires it.
 *
 * Dates on a receiver: a client could forge a backup's start date to make
 * it outlive or displace the others. The receiver dates each backup by its
 * start clamped to its arrival (the time its first ref entry was logged on
 * the receiver): never later than it arrived, never more than
 * RECEIVER_GRACE before.
 */
#ifndef RECEIVER_H
#define RECEIVER_H

#include <stddef.h>
#include <time.h>

#include <git2.h>

#include "repo.h"
#include "slots.h"

/* How long before its arrival a backup may have started (long backups,
 * a push retried later) and still be dated by its own start. */
#define RECEIVER_GRACE (12 * 60 * 60)
/* How long a push or fetch waits for a rotate to finish. */
#define RECEIVER_LOCK_WAIT 600
/* The git config key that makes a repository a receiver. */
#define RECEIVER_CONFIG_KEY "backup.receiver"

/*
 * Creates a receiver at path (refused where repo_init refuses): a
 * repository configured for pushes (one pack per push, objects checked,
 * no automatic gc, every ref update logged) with a pre-receive hook that
 * runs exe (an absolute path to backup) as `receiver hook`.
 */
int receiver_init(const char *path, const char *exe);

/* 1 when the repository is a receiver, 0 when not. */
int receiver_is(struct repo *r);

/* 1 when slot is a name a client may push: daily, weekly, biweekly, snapshot. */
int receiver_valid_slot(const char *slot);

/* One line of the pre-receive hook's input. */
struct receiver_update {
	git_oid old, new;
	char *ref;
};

/*
 * Checks each update against the rules above for a key that may write
 * machines[0..nm-1] (none: a key that may write nothing). Prints one
 * "refusing ..." line on stderr for each refused ref. With others_hidden
 * (serve hid every ref but refs/backups/M/ of the key's machines, so git
 * itself refuses to update them), such refs are left to git. Sets
 * verdicts[i] (when not NULL) to 0 allowed, 1 refused, 2 left to git.
 * Returns 0 when none is refused, 1 when some are, -1 on error.
 */
int receiver_check(struct repo *r, char *const *machines, size_t nm, int others_hidden,
		   const struct receiver_update *u, size_t n, time_t now, int *verdicts);

/*
 * For allowed updates about to happen: makes refs/backups/MACHINE/kept/ID
 * for each backup a slot leaves that no other slot of its machine keeps,
 * logged with the backup's arrival, so that it stays until the receiver's
 * retention expires it.
 */
int receiver_keep_replaced(struct repo *r, const struct receiver_update *u, size_t n, time_t now);

/*
 * The receiver's retention needs each machine's weekly day: a machine that
 * has none in the receiver's state gets the weekday (receiver's local time)
 * of the first backup pushed into its weekly slot, by the receiver's date
 * of it. backup schedule MACHINE --day DAY on the receiver changes it.
 */
int receiver_learn_weekly_day(struct repo *r, const struct receiver_update *u, size_t n, time_t now);

/* When each backup of one machine arrived: the oldest reflog entry naming
 * it among the machine's refs. */
struct arrivals;
int arrivals_read(struct repo *r, const char *machine, struct arrivals **out);
/* The arrival of id, or dflt when no entry names it. */
time_t arrivals_get(const struct arrivals *a, const unsigned char *id, time_t dflt);
void arrivals_free(struct arrivals *a);

/* The date the receiver gives a backup that started at start and arrived
 * at arrival: start, clamped to [arrival - RECEIVER_GRACE, arrival]. */
time_t receiver_date(time_t start, time_t arrival);

/*
 * The receiver's retention for one machine at now. A backup is kept when
 * the seed's rules (retention.h, with weekly_day) keep it by the receiver's
 * dates, when it is the machine's snapshot slot, or when a slot names it
 * and it is at most 14 days old; the others lose every ref. In the plan,
 * created is the receiver's date, before the refs a backup has (slot bits,
 * SLOT_BIT_KEPT) and after the same when kept, 0 when not.
 */
int receiver_plan(struct repo *r, const char *machine, int weekly_day, time_t now, struct slot_plan *out);
/* Deletes the refs of the backups the plan drops. The caller holds the
 * machine's lock and the repository's shared lock. */
int receiver_apply(struct repo *r, const struct slot_plan *p);

/*
 * The authorized_keys line for one client key: restrict, and a forced
 * command that runs exe as `receiver serve DIR --machine M...`. key is the
 * public key's line (TYPE BASE64 [COMMENT]). Returns NULL after printing
 * the reason when the key or a path cannot be used.
 */
char *receiver_key_line(const char *exe, const char *dir, char *const *machines, size_t nm,
			const char *key);

/*
 * Splits the command an SSH client asked for (SSH_ORIGINAL_COMMAND), as git
 * sends it: "git-receive-pack 'PATH'" (or git-upload-pack, or "git
 * receive-pack ..."). Sets *service to "receive-pack" or "upload-pack" and
 * *path to the unquoted path. Returns -1, printing nothing, for anything
 * else.
 */
int receiver_parse_command(const char *cmd, const char **service, char **path);

#endif
