/*
 * retention.h — which automatic backups keep which slots (the seed's rules).
 *
 * Among a machine's kept automatic backups and a time "now":
 *   daily     the newest one;
 *   weekly    the newest one taken on the machine's weekly day (in local
 *             time) that is less than 7 days old;
 *   biweekly  the previous weekly: the newest one taken on an earlier
 *             weekly day than the weekly one (any weekly day when there is
 *             no weekly), at most 14 days old. Windows move from week to
 *             week, so last week's backup may be a little under or over 7
 *             days old when this week's is taken; it is biweekly either way;
 * and none older than 14 days keeps any slot. One backup may hold several
 * slots; one that holds none is deleted. The rules are stateless: applied
 * after every run and by rotate at any later time (runs missed, a clock
 * that moved on), they give the same answer. The manual snapshot is not an
 * automatic backup and is untouched here.
 */
#ifndef RETENTION_H
#define RETENTION_H

#include <stddef.h>
#include <time.h>

#define RET_MAX_AGE (14 * 24 * 60 * 60)
#define RET_WEEK (7 * 24 * 60 * 60)

enum {
	SLOT_BIT_DAILY = 1,
	SLOT_BIT_WEEKLY = 2,
	SLOT_BIT_BIWEEKLY = 4,
};

struct ret_item {
	time_t created;
	unsigned slots;		/* out: SLOT_BIT_* */
};

/* Sets every item's slots for the given weekly day and time. */
void retention_apply(struct ret_item *items, size_t n, int weekly_day, time_t now);

/* The weekday of t in local time (TZ): 0 = Sunday. */
int local_weekday(time_t t);
/* A number for the local date of t: equal for the same day, larger later. */
long local_day(time_t t);

#endif
