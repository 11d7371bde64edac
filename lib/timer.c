/*
 * timer.c — the systemd units and crontab line that start a machine's
 * automatic backup in its window (timer.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "timer.h"
#include "usage.h"

/*
 * systemd's RandomizedDelaySec: the timer fires at the window's start plus
 * up to this much, so a run starts at the latest 10 minutes before the
 * window ends, which leaves room for the timer's accuracy (AccuracySec=1min
 * by default) and a slow start. The crontab line's fixed start is drawn
 * from the same span.
 */
#define WINDOW_SPREAD_SECONDS (2 * 60 * 60 - 10 * 60)

#define ZONEINFO "/usr/share/zoneinfo/"

/* The time zone the hours are read in, for people: TZ, else the system's. */
char *timer_zone_name(void)
{
	const char *tz = getenv("TZ");
	char link[PATH_MAX], *p;
	ssize_t n;
	struct strbuf sb = STRBUF_INIT;
	time_t now = time(NULL);
	struct tm tm;

	if (tz && *tz == ':')
		tz++;
	if (tz && !*tz)
		return xstrdup("UTC");	/* glibc reads an empty TZ as UTC */
	if (tz)
		return xstrdup(!strncmp(tz, ZONEINFO, strlen(ZONEINFO)) ? tz + strlen(ZONEINFO) : tz);
	n = readlink("/etc/localtime", link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		p = strstr(link, "zoneinfo/");
		if (p && p[9])
			return xstrdup(p + 9);
	}
	if (strbuf_read_file(&sb, "/etc/timezone") == 0) {
		sb.buf[strcspn(sb.buf, "\n")] = '\0';
		if (*sb.buf)
			return strbuf_detach(&sb, NULL);
	}
	strbuf_release(&sb);
	localtime_r(&now, &tm);
	return xstrdup(tm.tm_zone ? tm.tm_zone : "UTC");
}

/*
 * 1 when TZ names a zone that systemd knows (a TZif file under
 * /usr/share/zoneinfo), which a timer's OnCalendar= may then carry.
 */
static int zone_is_systemd_name(const char *name)
{
	char *path, magic[4];
	FILE *f;
	int ok = 0;

	if (!*name || *name == '/' || strstr(name, ".."))
		return 0;
	path = xasprintf(ZONEINFO "%s", name);
	f = fopen(path, "re");
	if (f) {
		ok = fread(magic, 1, 4, f) == 4 && !memcmp(magic, "TZif", 4);
		fclose(f);
	}
	free(path);
	return ok;
}

/*
 * 1 when the local time of TZ is the system's local time (the one cron and
 * systemd read their hours in) at 13 instants over the next year, so that a
 * difference in daylight saving time shows; 1 too when TZ is not set.
 */
static int zone_is_system(void)
{
	const char *tz = getenv("TZ");
	char *saved;
	long off[13];
	time_t now = time(NULL);
	struct tm tm;
	int i, same = 1;

	if (!tz)
		return 1;
	saved = xstrdup(tz);
	for (i = 0; i < 13; i++) {
		time_t t = now + (time_t)i * 28 * 24 * 60 * 60;

		localtime_r(&t, &tm);
		off[i] = tm.tm_gmtoff;
	}
	unsetenv("TZ");
	tzset();
	for (i = 0; i < 13; i++) {
		time_t t = now + (time_t)i * 28 * 24 * 60 * 60;

		localtime_r(&t, &tm);
		if (off[i] != tm.tm_gmtoff)
			same = 0;
	}
	setenv("TZ", saved, 1);
	tzset();
	free(saved);
	return same;
}

/* A word that needs no quoting in a shell or a systemd command line. */
static int plain_word(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:+,=@-", *s))
			return 0;
	return 1;
}

/*
 * Adds s as one word of a systemd ExecStart= line: double quotes with C
 * escapes, and "%" doubled so that no specifier is expanded, and in an
 * argument (not in the program, which systemd takes as it is) "$" doubled
 * so that no environment variable is.
 */
static void add_systemd_word(struct strbuf *sb, const char *s, int program)
{
	if (plain_word(s)) {
		strbuf_addstr(sb, s);
		return;
	}
	strbuf_addch(sb, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			strbuf_addch(sb, '\\');
		else if (*s == '%' || (*s == '$' && !program))
			strbuf_addch(sb, *s);
		strbuf_addch(sb, *s);
	}
	strbuf_addch(sb, '"');
}

/*
 * Adds s as one word of a crontab command: single quotes for /bin/sh, and
 * "%" (which cron turns into a newline) and "\" (which cron unescapes)
 * escaped with a backslash.
 */
static void add_cron_word(struct strbuf *sb, const char *s, int program)
{
	(void)program;
	if (plain_word(s)) {
		strbuf_addstr(sb, s);
		return;
	}
	strbuf_addch(sb, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			strbuf_addstr(sb, "'\\''");
		else if (*s == '%' || *s == '\\')
			strbuf_addf(sb, "\\%c", *s);
		else
			strbuf_addch(sb, *s);
	}
	strbuf_addch(sb, '\'');
}

void timer_job_release(struct timer_job *j)
{
	free(j->exe);
	free(j->config);
	free(j->repo);
	free(j->push);
}

static int has_control_char(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

int timer_job_init(struct timer_job *j, const char *config, const char *repo)
{
	char buf[PATH_MAX];
	ssize_t n;

	memset(j, 0, sizeof(*j));
	n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		return error("cannot find this program's path in '/proc/self/exe': %s",
			     n < 0 ? strerror(errno) : "empty");
	buf[n] = '\0';
	j->exe = xstrdup(buf);
	if (config) {
		j->config = realpath(config, NULL);
		if (!j->config)
			return error("cannot resolve the path of '%s': %s", config, strerror(errno));
	}
	if (repo) {
		j->repo = realpath(repo, NULL);
		if (!j->repo)
			return error("cannot resolve the path of '%s': %s", repo, strerror(errno));
	}
	if (has_control_char(j->exe) || (j->config && has_control_char(j->config)) ||
	    (j->repo && has_control_char(j->repo)))
		return error("cannot write a job for '%s': a path in it holds a control character; "
			     "move the program, configuration or repository", j->exe);
	return 0;
}

/* Adds "EXE [--config FILE] [--repo DIR] COMMAND MACHINE", quoted by add. */
static void add_command(struct strbuf *sb, const struct timer_job *j, const char *command,
			const char *machine, void (*add)(struct strbuf *, const char *, int))
{
	add(sb, j->exe, 1);
	if (j->config) {
		strbuf_addstr(sb, " --config ");
		add(sb, j->config, 0);
	}
	if (j->repo) {
		strbuf_addstr(sb, " --repo ");
		add(sb, j->repo, 0);
	}
	/* A manual snapshot may hold the machine for a while: wait for it rather
	 * than lose the day's backup (the window is two hours). */
	strbuf_addf(sb, " %s --wait 3600", command);
	if (j->push && !strcmp(command, "run")) {
		strbuf_addstr(sb, " --push=");
		add(sb, j->push, 0);
	}
	/* No machine: a receiver's rotate of every machine it holds. */
	if (machine) {
		strbuf_addch(sb, ' ');
		add(sb, machine, 0);
	} else {
		strbuf_addstr(sb, " -q");
	}
}

static void add_service(struct strbuf *sb, const struct timer_job *j, const char *machine)
{
	strbuf_addf(sb, "# Written by 'backup schedule %s --print systemd'.\n", machine);
	strbuf_addf(sb, "[Unit]\nDescription=Automatic backup of machine %s\n", machine);
	strbuf_addstr(sb, "Documentation=man:backup-schedule(1) man:backup-run(1)\n\n");
	strbuf_addstr(sb, "[Service]\nType=oneshot\n");
	strbuf_addstr(sb, "ExecStart=");
	add_command(sb, j, "run", machine, add_systemd_word);
	strbuf_addstr(sb, "\nExecStart=");
	add_command(sb, j, "rotate", machine, add_systemd_word);
	strbuf_addstr(sb, "\nNice=10\nIOSchedulingClass=best-effort\nIOSchedulingPriority=7\n");
}

static void add_timer(struct strbuf *sb, const char *machine, const struct schedule *s, const char *zone)
{
	strbuf_addf(sb, "# Written by 'backup schedule %s --print systemd'.\n", machine);
	strbuf_addf(sb, "[Unit]\nDescription=Daily backup of machine %s in window W%d (%02d:00-%02d:00)\n",
		    machine, s->window, s->window, s->window + 2);
	strbuf_addstr(sb, "Documentation=man:backup-schedule(1)\n\n");
	strbuf_addf(sb, "[Timer]\nOnCalendar=*-*-* %02d:00:00%s%s\n", s->window, zone ? " " : "",
		    zone ? zone : "");
	strbuf_addf(sb, "RandomizedDelaySec=%d\nPersistent=true\n\n", WINDOW_SPREAD_SECONDS);
	strbuf_addstr(sb, "[Install]\nWantedBy=timers.target\n");
}

/* FNV-1a: a fixed, well-spread number from the machine's name. */
static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

static void add_cron_line(struct strbuf *sb, const struct timer_job *j, const char *machine, const struct schedule *s)
{
	unsigned offset = name_hash(machine) % (WINDOW_SPREAD_SECONDS / 60);
	unsigned hour = s->window + offset / 60, minute = offset % 60;

	strbuf_addf(sb, "# backup: machine %s, window W%d (%02d:00-%02d:00 in the system's time zone), "
		    "daily at %02u:%02u\n", machine, s->window, s->window, s->window + 2, hour, minute);
	strbuf_addf(sb, "%u %u * * * ", minute, hour);
	add_command(sb, j, "run", machine, add_cron_word);
	strbuf_addstr(sb, " && ");
	add_command(sb, j, "rotate", machine, add_cron_word);
	strbuf_addch(sb, '\n');
}

int timer_write_unit(const char *dir, const char *name, const struct strbuf *sb)
{
	char *path = xasprintf("%s/%s", dir, name);
	mode_t old;
	int ret;

	/* A folder we create for the units is as readable as they are. */
	old = umask(022);
	ret = mkdir_p(dir, 0755);
	umask(old);
	if (ret < 0) {
		error("cannot create the folder '%s': %s", dir, strerror(errno));
		goto out;
	}
	/* Unit files are read by everyone (systemd warns about others). */
	old = umask(022);
	ret = write_file_durable(path, sb->buf, sb->len, 0644);
	umask(old);
out:
	free(path);
	return ret;
}

/* TZ without a leading ':' (NULL when unset), for messages and timers. */
static const char *tz_value(void)
{
	const char *tz = getenv("TZ");

	return tz && *tz == ':' ? tz + 1 : tz;
}

void timer_cron(struct strbuf *sb, const struct timer_job *j, const char *machine, const struct schedule *s)
{
	if (!zone_is_system())
		warning("cron reads the hours in the system's time zone, not in TZ '%s'", tz_value());
	add_cron_line(sb, j, machine, s);
}

/*
 * What a machine's and a receiver's units share: systemd can run j's
 * program, and *zone is TZ's zone for OnCalendar= when systemd knows it
 * (the timer then starts when this command says), else NULL.
 */
static int systemd_zone(const struct timer_job *j, const char **zone)
{
	const char *tz = tz_value();

	*zone = NULL;
	/* systemd refuses these in ExecStart='s program, quoted or not. */
	if (strpbrk(j->exe, "'\"\\"))
		return error("cannot write a systemd unit that runs '%s': systemd refuses a quote or a backslash "
			     "in a program's path; install backup elsewhere or use --print cron", j->exe);
	if (tz && *tz && zone_is_systemd_name(tz))
		*zone = tz;
	else if (!zone_is_system())
		warning("the timer reads the hours in the system's time zone: TZ '%s' is not a zone name systemd knows",
			tz_value());
	return 0;
}

int timer_systemd(struct strbuf *service, struct strbuf *timer, const struct timer_job *j,
		  const char *machine, const struct schedule *s)
{
	const char *zone;

	if (systemd_zone(j, &zone) < 0)
		return -1;
	add_service(service, j, machine);
	add_timer(timer, machine, s, zone);
	return 0;
}

/* The receiver's jobs are named after its folder's hash: one per receiver. */
static char *receiver_unit(const struct timer_job *j, const char *ext)
{
	return xasprintf("backup-rotate-receiver-%08x.%s", (unsigned)name_hash(j->repo), ext);
}

char *timer_receiver_unit_name(const struct timer_job *j, int timer)
{
	return receiver_unit(j, timer ? "timer" : "service");
}

void timer_receiver_cron(struct strbuf *sb, const struct timer_job *j, int window)
{
	unsigned offset = name_hash(j->repo) % (WINDOW_SPREAD_SECONDS / 60);
	unsigned hour = window + offset / 60, minute = offset % 60;

	if (!zone_is_system())
		warning("cron reads the hours in the system's time zone, not in TZ '%s'", tz_value());
	strbuf_addf(sb, "# backup: the receiver's rotate, window W%d (%02d:00-%02d:00 in the system's time zone), "
		    "daily at %02u:%02u\n", window, window, window + 2, hour, minute);
	strbuf_addf(sb, "%u %u * * * ", minute, hour);
	add_command(sb, j, "rotate", NULL, add_cron_word);
	strbuf_addch(sb, '\n');
}

int timer_receiver_systemd(struct strbuf *service, struct strbuf *timer, const struct timer_job *j, int window)
{
	const char *zone;

	if (systemd_zone(j, &zone) < 0)
		return -1;
	strbuf_addstr(service, "# Written by 'backup schedule --receiver DIR --print systemd'.\n");
	/* Not the path in Description=: systemd would expand a '%' in it. */
	strbuf_addstr(service, "[Unit]\nDescription=Daily retention of a backup receiver\nDocumentation=man:backup-receiver(1) man:backup-rotate(1)\n\n");
	strbuf_addstr(service, "[Service]\nType=oneshot\nExecStart=");
	add_command(service, j, "rotate", NULL, add_systemd_word);
	strbuf_addstr(service, "\nNice=10\nIOSchedulingClass=best-effort\nIOSchedulingPriority=7\n");
	strbuf_addstr(timer, "# Written by 'backup schedule --receiver DIR --print systemd'.\n");
	strbuf_addf(timer, "[Unit]\nDescription=Daily retention of a backup receiver in window W%d (%02d:00-%02d:00)\n",
		    window, window, window + 2);
	strbuf_addstr(timer, "Documentation=man:backup-receiver(1)\n\n");
	strbuf_addf(timer, "[Timer]\nOnCalendar=*-*-* %02d:00:00%s%s\n", window, zone ? " " : "", zone ? zone : "");
	strbuf_addf(timer, "RandomizedDelaySec=%d\nPersistent=true\n\n", WINDOW_SPREAD_SECONDS);
	strbuf_addstr(timer, "[Install]\nWantedBy=timers.target\n");
	return 0;
}
