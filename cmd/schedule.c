/*
 * schedule.c — backup schedule: a machine's window and weekly day, and the
 * systemd units or crontab line that start its automatic backup.
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

#include "cmd.h"
#include "fsutil.h"
#include "schedule.h"
#include "usage.h"

static const char *const usage[] = {
	"backup schedule MACHINE [--window Wn] [--day DAY]",
	"backup schedule MACHINE --print systemd|cron [--output DIR]",
	NULL
};

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
static char *zone_name(void)
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

/* What a scheduled job runs: this binary and the global options it was given. */
struct job {
	char *exe;
	char *config;	/* absolute, or NULL when the default applies */
	char *repo;	/* absolute, or NULL when the configuration names it */
};

static void job_release(struct job *j)
{
	free(j->exe);
	free(j->config);
	free(j->repo);
}

static int has_control_char(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/*
 * Fills j: the binary from /proc/self/exe, and --config and --repo when this
 * command got them from the command line or the environment, made absolute
 * so the job finds them from any working directory.
 */
static int job_init(struct job *j, struct ctx *ctx)
{
	const char *cfg = ctx->config_opt ? ctx->config_opt : getenv("BACKUP_CONFIG");
	const char *repo = ctx->repo_opt ? ctx->repo_opt : getenv("BACKUP_REPO");
	char buf[PATH_MAX];
	ssize_t n;

	memset(j, 0, sizeof(*j));
	n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		return error("cannot find this program's path in '/proc/self/exe': %s",
			     n < 0 ? strerror(errno) : "empty");
	buf[n] = '\0';
	j->exe = xstrdup(buf);
	if (cfg && *cfg && ctx->cfg->path) {
		j->config = realpath(ctx->cfg->path, NULL);
		if (!j->config)
			return error("cannot resolve the path of '%s': %s", ctx->cfg->path, strerror(errno));
	}
	if (repo && *repo) {
		j->repo = realpath(ctx->repo->path, NULL);
		if (!j->repo)
			return error("cannot resolve the path of '%s': %s", ctx->repo->path, strerror(errno));
	}
	if (has_control_char(j->exe) || (j->config && has_control_char(j->config)) ||
	    (j->repo && has_control_char(j->repo)))
		return error("cannot write a job for '%s': a path in it holds a control character; "
			     "move the program, configuration or repository", j->exe);
	return 0;
}

/* Adds "EXE [--config FILE] [--repo DIR] COMMAND MACHINE", quoted by add. */
static void add_command(struct strbuf *sb, const struct job *j, const char *command,
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
	strbuf_addf(sb, " %s --wait 3600 ", command);
	add(sb, machine, 0);
}

static void add_service(struct strbuf *sb, const struct job *j, const char *machine)
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

static void add_cron(struct strbuf *sb, const struct job *j, const char *machine, const struct schedule *s)
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

static int write_unit(const char *dir, const char *name, const struct strbuf *sb)
{
	char *path = xasprintf("%s/%s", dir, name);
	mode_t old;
	int ret;

	/* Unit files are read by everyone (systemd warns about others). */
	old = umask(022);
	ret = write_file_durable(path, sb->buf, sb->len, 0644);
	umask(old);
	free(path);
	return ret;
}

static int print_jobs(struct ctx *ctx, const char *machine, const struct schedule *s,
		      const char *what, const char *dir)
{
	struct job j;
	struct strbuf service = STRBUF_INIT, timer = STRBUF_INIT, sb = STRBUF_INIT;
	const char *tz = getenv("TZ");
	char *zone = NULL, *sname = NULL, *tname = NULL;
	mode_t old;
	int made, ret = -1;

	if (job_init(&j, ctx) < 0)
		goto out;
	if (tz && *tz == ':')
		tz++;
	if (!strcmp(what, "cron")) {
		if (!zone_is_system())
			warning("cron reads the hours in the system's time zone, not in TZ '%s'", tz);
		add_cron(&sb, &j, machine, s);
		fwrite(sb.buf, 1, sb.len, stdout);
		ret = 0;
		goto out;
	}
	/* systemd refuses these in ExecStart='s program, quoted or not. */
	if (strpbrk(j.exe, "'\"\\")) {
		error("cannot write a systemd unit that runs '%s': systemd refuses a quote or a backslash "
		      "in a program's path; install backup elsewhere or use --print cron", j.exe);
		goto out;
	}
	/* A timer carries TZ's zone, so it starts when this command says. */
	if (tz && *tz && zone_is_systemd_name(tz))
		zone = xstrdup(tz);
	else if (!zone_is_system())
		warning("the timer reads the hours in the system's time zone: TZ '%s' is not a zone name systemd knows",
			tz);
	sname = xasprintf("backup-run-%s.service", machine);
	tname = xasprintf("backup-run-%s.timer", machine);
	add_service(&service, &j, machine);
	add_timer(&timer, machine, s, zone);
	if (!dir) {
		printf("# file: %s\n", sname);
		fwrite(service.buf, 1, service.len, stdout);
		printf("# file: %s\n", tname);
		fwrite(timer.buf, 1, timer.len, stdout);
		ret = 0;
		goto out;
	}
	/* A folder we create for the units is as readable as they are. */
	old = umask(022);
	made = mkdir_p(dir, 0755);
	umask(old);
	if (made < 0) {
		error("cannot create the folder '%s': %s", dir, strerror(errno));
		goto out;
	}
	if (write_unit(dir, sname, &service) < 0 || write_unit(dir, tname, &timer) < 0)
		goto out;
	if (ctx->json) {
		strbuf_addstr(&sb, "{\"machine\":");
		strbuf_add_json(&sb, machine);
		strbuf_addstr(&sb, ",\"files\":[");
		strbuf_add_json(&sb, sname);
		strbuf_addch(&sb, ',');
		strbuf_add_json(&sb, tname);
		strbuf_addstr(&sb, "]}");
		print_json(&sb);
	} else if (!ctx->quiet) {
		printf("wrote %s/%s and %s/%s\n", dir, sname, dir, tname);
		printf("start it with: systemctl daemon-reload && systemctl enable --now %s\n", tname);
	}
	ret = 0;
out:
	job_release(&j);
	strbuf_release(&service);
	strbuf_release(&timer);
	strbuf_release(&sb);
	free(zone);
	free(sname);
	free(tname);
	return ret;
}

static void show(struct ctx *ctx, const char *machine, const struct schedule *s)
{
	char *zone = zone_name();
	const char *day = schedule_day_name(s->weekday);
	struct strbuf sb = STRBUF_INIT;

	if (ctx->json) {
		strbuf_addstr(&sb, "{\"machine\":");
		strbuf_add_json(&sb, machine);
		strbuf_addf(&sb, ",\"window\":\"W%d\",\"window_start\":\"%02d:00\",\"window_end\":\"%02d:00\"",
			    s->window, s->window, s->window + 2);
		strbuf_addf(&sb, ",\"window_default\":%s", s->window_set ? "false" : "true");
		strbuf_addf(&sb, ",\"day\":\"%s\",\"day_default\":%s,\"timezone\":", day,
			    s->day_set ? "false" : "true");
		strbuf_add_json(&sb, zone);
		strbuf_addch(&sb, '}');
		print_json(&sb);
	} else {
		printf("machine: %s\n", machine);
		printf("window:  W%d%s, %02d:00-%02d:00 local time (%s)\n", s->window,
		       s->window_set ? "" : " (default)", s->window, s->window + 2, zone);
		printf("day:     %s%s\n", day, s->day_set ? "" : " (default)");
	}
	strbuf_release(&sb);
	free(zone);
}

int cmd_schedule(int argc, const char **argv, struct ctx *ctx)
{
	const char *window = NULL, *day = NULL, *print = NULL, *output = NULL;
	const struct option_spec opts[] = {
		{ OPT_STRING, 0, "window", &window, "Wn", "the two-hour window: W0 (00:00-02:00), W2, ..., W22" },
		{ OPT_STRING, 0, "day", &day, "DAY", "the weekly day: monday ... sunday, or mon ... sun" },
		{ OPT_STRING, 0, "print", &print, "systemd|cron", "print systemd units or a crontab line" },
		{ OPT_STRING, 0, "output", &output, "DIR", "with --print systemd: write the units into DIR" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	struct machine *m = NULL;
	struct schedule s = { 0 };
	int ret = EXIT_ERROR;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc != 1)
		return opt_usage_error(usage, "schedule needs one machine"), EXIT_USAGE;
	if (window && schedule_parse_window(window, &s.window) < 0)
		return opt_usage_error(usage, "invalid window '%s'; use W0, W2, ..., W22 "
				       "(the two hours from that even hour)", window), EXIT_USAGE;
	if (day && schedule_parse_day(day, &s.weekday) < 0)
		return opt_usage_error(usage, "invalid day '%s'; use monday, tuesday, ..., sunday "
				       "or mon, tue, ..., sun", day), EXIT_USAGE;
	if (print && strcmp(print, "systemd") && strcmp(print, "cron"))
		return opt_usage_error(usage, "invalid --print '%s'; use systemd or cron", print), EXIT_USAGE;
	if (output && !*output)
		return opt_usage_error(usage, "--output needs a folder"), EXIT_USAGE;
	if (output && (!print || strcmp(print, "systemd")))
		return opt_usage_error(usage, "--output goes with --print systemd only"), EXIT_USAGE;
	if (print && !output && ctx->json)
		return opt_usage_error(usage, "--print writes units or a crontab line, not JSON; "
				       "drop --json or add --output DIR"), EXIT_USAGE;
	s.window_set = !!window;
	s.day_set = !!day;
	if (ctx_prepare(ctx) < 0)
		return EXIT_ERROR;
	if (machine_load(&m, ctx->cfg, argv[0]) < 0)
		return EXIT_ERROR;
	if ((window || day) && schedule_set(ctx->repo, m->name, &s) < 0)
		goto out;
	if (schedule_get(ctx->repo, m->name, &s) < 0)
		goto out;
	if (print) {
		if (print_jobs(ctx, m->name, &s, print, output) < 0)
			goto out;
	} else if (!(window || day) || ctx->json || !ctx->quiet) {
		show(ctx, m->name, &s);
	}
	ret = EXIT_OK;
out:
	machine_free(m);
	return ret;
}
