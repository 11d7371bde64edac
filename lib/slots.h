/*
 * slots.h — applying the retention rules (retention.h) to a machine's
 * slot refs.
 *
 * slots_plan() reads the machine's kept backups and works out which slots
 * each keeps at a given time; slots_apply() moves the refs accordingly,
 * setting before deleting, and deletes the refs (and reflogs) of slots left
 * empty. A backup that loses every slot is then unreferenced, and space
 * reclamation (gc.h) removes its data. The caller holds the machine's lock.
 */
#ifndef SLOTS_H
#define SLOTS_H

#include <stddef.h>
#include <time.h>

#include "hash.h"
#include "repo.h"
#include "retention.h"

#define SLOT_BIT_SNAPSHOT 8
/*
 * Not a slot: refs/backups/MACHINE/kept/ID, which a receiver (receiver.h)
 * makes for a backup a push moved a slot away from. Anywhere else (a copy
 * of a receiver) rotate gives such a backup the slots the rules give it and
 * deletes the kept ref.
 */
#define SLOT_BIT_KEPT 16

struct slot_change {
	unsigned char id[SHA1_LEN];
	char hex[2 * SHA1_LEN + 1];
	time_t created;
	int automatic;
	unsigned before, after;		/* SLOT_BIT_* */
};

struct slot_plan {
	char *machine;
	struct slot_change *c;
	size_t n;
};

int slots_plan(struct repo *r, const char *machine, int weekly_day, time_t now, struct slot_plan *out);
/*
 * slots_plan() with another dating: date() gives each backup the time the
 * rules count it from (a receiver dates by arrival, receiver.h). Only
 * automatic backups take part in the rules; a snapshot keeps its slot.
 */
struct backup_info;
typedef time_t slot_date_fn(const struct backup_info *b, void *ctx);
int slots_plan_dated(struct repo *r, const char *machine, int weekly_day, time_t now,
		     slot_date_fn *date, void *ctx, struct slot_plan *out);
/*
 * The rules alone: sets each backup's after from its before, kind and
 * created, reading no ref (slots_plan_dated() fills p from the refs, then
 * calls it; rotate --remote fills p from a bucket's slot manifests).
 */
void slots_plan_rules(struct slot_plan *p, int weekly_day, time_t now);
/* The SLOT_BIT_* of a slot's name ("kept" included), or 0. */
unsigned slot_bit(const char *name);
int slots_apply(struct repo *r, const struct slot_plan *p);
void slot_plan_release(struct slot_plan *p);
/* "daily,weekly" for a mask; buf holds 48 bytes. */
const char *slot_names(unsigned mask, char *buf, size_t len);
/*
 * The rotation of one machine: plans its slots at now with the weekly day
 * of its schedule (schedule.h) and, unless dry_run, applies the plan. On a
 * receiver, the receiver's plan and apply (receiver.h). The
 * caller holds the machine's lock and the repository lock shared (refs
 * move only then). Returns 0 or -1; p->machine is set once the plan is
 * made, even when applying it failed. Release p with slot_plan_release()
 * either way.
 */
int slots_rotate(struct repo *r, const char *machine, time_t now, int dry_run, struct slot_plan *p);
/* Deletes every slot of a machine (cancel). */
int slots_delete_all(struct repo *r, const char *machine, size_t *nbackups);

#endif
