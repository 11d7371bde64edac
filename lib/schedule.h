/*
 * schedule.h — a machine's backup window and weekly day.
 *
 * The window is the two-hour time of day in which automatic backups start,
 * named after its start hour: W0 is 00:00-02:00, W2 is 02:00-04:00, and so
 * on up to W22, 22:00-24:00. The weekly day is the day on which an
 * automatic backup becomes the machine's weekly one. Both are service
 * state, kept in the repository's service state (refs/backup/state, see
 * repo.h) as machine.NAME.window ("W4") and machine.NAME.day ("sunday"). They are stored as names, not as
 * instants, so they do not depend on the time zone: the hours are read in
 * local time by whatever acts on them (cron, a systemd timer, rotate).
 * A machine that has none is in W0 and its weekly day is Sunday.
 */
#ifndef SCHEDULE_H
#define SCHEDULE_H

#include "repo.h"

#define SCHEDULE_DEFAULT_WINDOW 0
#define SCHEDULE_DEFAULT_WEEKDAY 0	/* Sunday */

struct schedule {
	int window;	/* start hour: 0, 2, ..., 22 */
	int weekday;	/* 0 = Sunday ... 6 = Saturday */
	int window_set, day_set;	/* 1 when stored, 0 when a default */
};

/*
 * The machine's schedule from the service state; defaults W0 and Sunday.
 * Returns 0, or -1 after printing the reason when the state holds a value
 * that is not a window or a day.
 */
int schedule_get(struct repo *r, const char *machine, struct schedule *out);
/* The same from a service state's text (repo_state_text_get()): an S3
 * bucket's, which retention on the bucket follows. */
int schedule_get_text(const char *text, size_t len, const char *machine, struct schedule *out);

/*
 * Stores the fields of s that are marked set (window_set, day_set) and
 * leaves the others as they are in the state. Returns 0, or -1 after
 * printing the reason (a value out of range, an unwritable state).
 */
int schedule_set(struct repo *r, const char *machine, const struct schedule *s);

/* "W4" (or "w4") -> 4; returns -1 if s is not one of W0, W2, ..., W22. */
int schedule_parse_window(const char *s, int *hour);
/* "Sunday", "sunday" or "sun" -> 0, ..., "sat" -> 6; -1 if invalid. */
int schedule_parse_day(const char *s, int *weekday);
/* 0 -> "sunday" ... 6 -> "saturday"; NULL when out of range. */
const char *schedule_day_name(int weekday);

#endif
