/*
 * timer.h — the jobs that start a machine's automatic backup in its window:
 * a systemd service and timer, or a crontab line.
 *
 * Each job runs `backup run --wait 3600 MACHINE` (with --push=REMOTE when
 * the machine is pushed after its backup) and then `backup rotate` of it, with this very binary and the --config and --repo it was told
 * of. The systemd timer fires at the window's start plus a random delay of
 * up to 110 minutes (RandomizedDelaySec), in TZ's zone when systemd knows
 * it; the crontab line starts at a fixed minute of the same span drawn
 * from the machine's name, in the system's zone (cron knows no other).
 * Every word is quoted for what reads it: systemd's ExecStart= or /bin/sh
 * under cron. A zone that the job cannot honour is warned about.
 */
#ifndef TIMER_H
#define TIMER_H

#include "schedule.h"
#include "strbuf.h"

/* What a scheduled job runs: this binary and the global options it was given. */
struct timer_job {
	char *exe;
	char *config;	/* absolute, or NULL when the default applies */
	char *repo;	/* absolute, or NULL when the configuration names it */
	char *push;	/* the remote `run` pushes to (--push=REMOTE), or NULL */
};

/*
 * Fills j: the binary from /proc/self/exe, and config and repo (NULL when
 * the job should not name them) made absolute. Returns 0, or -1 after
 * printing why (a path that cannot be resolved, or holds a control
 * character). Release j either way.
 */
int timer_job_init(struct timer_job *j, const char *config, const char *repo);
void timer_job_release(struct timer_job *j);

/* Adds the crontab line, with a comment line before it. */
void timer_cron(struct strbuf *sb, const struct timer_job *j, const char *machine, const struct schedule *s);

/*
 * Adds the text of backup-run-MACHINE.service to service and of
 * backup-run-MACHINE.timer to timer. Returns -1 after printing why when
 * systemd could not run the binary from where it is.
 */
int timer_systemd(struct strbuf *service, struct strbuf *timer, const struct timer_job *j,
		  const char *machine, const struct schedule *s);

/*
 * A receiver's job (receiver.h): `backup --repo DIR rotate --wait 3600 -q`
 * once a day, in the window starting at hour window, j->repo being the
 * receiver; the units are backup-rotate-receiver-HASH.service and .timer
 * (timer_receiver_unit_name, free the name), HASH from the receiver's path.
 */
void timer_receiver_cron(struct strbuf *sb, const struct timer_job *j, int window);
int timer_receiver_systemd(struct strbuf *service, struct strbuf *timer, const struct timer_job *j, int window);
char *timer_receiver_unit_name(const struct timer_job *j, int timer);

/* Writes sb as the unit dir/name (mode 0644), making dir as needed. */
int timer_write_unit(const char *dir, const char *name, const struct strbuf *sb);

/* The time zone the hours are read in, for people: TZ, else the system's. */
char *timer_zone_name(void);

#endif
