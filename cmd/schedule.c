/*
 * schedule.c — backup schedule: a machine's window and weekly day, and the
 * systemd units or crontab line (lib/timer.c) that start its automatic
 * backup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "receiver.h"
#include "schedule.h"
#include "timer.h"
#include "usage.h"

static const char *const usage[] = {
	"backup schedule MACHINE [--window Wn] [--day DAY]",
	"backup schedule MACHINE --print systemd|cron [--output DIR]",
	"backup schedule --receiver DIR --print systemd|cron [--window Wn] [--output DIR]",
	NULL
};

/* Says which unit files were written to dir: text, or JSON naming the owner
 * as {"KEY": VALUE, "files": [...]}. */
static void report_units(struct ctx *ctx, const char *key, const char *value, const char *dir,
			 const char *sname, const char *tname)
{
	struct strbuf sb = STRBUF_INIT;

	if (ctx->json) {
		strbuf_addf(&sb, "{\"%s\":", key);
		strbuf_add_json(&sb, value);
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
	strbuf_release(&sb);
}

/* Prints the two units, or writes them into dir and says so. */
static int emit_units(struct ctx *ctx, const char *key, const char *value, const char *dir,
		      const char *sname, const struct strbuf *service, const char *tname,
		      const struct strbuf *timer)
{
	if (!dir) {
		printf("# file: %s\n", sname);
		fwrite(service->buf, 1, service->len, stdout);
		printf("# file: %s\n", tname);
		fwrite(timer->buf, 1, timer->len, stdout);
		return 0;
	}
	if (timer_write_unit(dir, sname, service) < 0 || timer_write_unit(dir, tname, timer) < 0)
		return -1;
	report_units(ctx, key, value, dir, sname, tname);
	return 0;
}

/* Prints a job's crontab line or its two systemd units (or writes the units
 * into dir): the backup job of machine with schedule s, or, when machine is
 * NULL, the receiver's daily rotate in window. */
static int emit_job(struct ctx *ctx, struct timer_job *j, const char *machine, const struct schedule *s,
		    int window, const char *what, const char *dir)
{
	struct strbuf service = STRBUF_INIT, timer = STRBUF_INIT, sb = STRBUF_INIT;
	char *sname = NULL, *tname = NULL;
	int ret = -1;

	if (!strcmp(what, "cron")) {
		if (machine)
			timer_cron(&sb, j, machine, s);
		else
			timer_receiver_cron(&sb, j, window);
		fwrite(sb.buf, 1, sb.len, stdout);
		ret = 0;
		goto out;
	}
	if ((machine ? timer_systemd(&service, &timer, j, machine, s)
		     : timer_receiver_systemd(&service, &timer, j, window)) < 0)
		goto out;
	sname = machine ? xasprintf("backup-run-%s.service", machine) : timer_receiver_unit_name(j, 0);
	tname = machine ? xasprintf("backup-run-%s.timer", machine) : timer_receiver_unit_name(j, 1);
	ret = emit_units(ctx, machine ? "machine" : "receiver", machine ? machine : ctx->repo->path, dir,
			 sname, &service, tname, &timer);
out:
	strbuf_release(&service);
	strbuf_release(&timer);
	strbuf_release(&sb);
	free(sname);
	free(tname);
	return ret;
}

static int print_jobs(struct ctx *ctx, const char *machine, const char *push, const struct schedule *s,
		      const char *what, const char *dir)
{
	const char *cfg = ctx->config_opt ? ctx->config_opt : getenv("BACKUP_CONFIG");
	const char *repo = ctx->repo_opt ? ctx->repo_opt : getenv("BACKUP_REPO");
	struct timer_job j;
	int ret = -1;

	/* The job names the configuration and repository this command was
	 * told of, so that it finds them from any working directory. */
	if (timer_job_init(&j, cfg && *cfg ? ctx->cfg->path : NULL, repo && *repo ? ctx->repo->path : NULL) < 0)
		goto out;
	/* One job backs up and keeps the offsite copy (machine.push, backup.push). */
	if (push)
		j.push = xstrdup(push);
	ret = emit_job(ctx, &j, machine, s, 0, what, dir);
out:
	timer_job_release(&j);
	return ret;
}

/* The receiver's own job: its daily rotate (backup-receiver(1)). */
static int print_receiver_job(struct ctx *ctx, int window, const char *what, const char *dir)
{
	struct timer_job j;
	int ret = -1;

	if (timer_job_init(&j, NULL, ctx->repo->path) == 0)
		ret = emit_job(ctx, &j, NULL, NULL, window, what, dir);
	timer_job_release(&j);
	return ret;
}

static void show(struct ctx *ctx, const char *machine, const struct schedule *s)
{
	char *zone = timer_zone_name();
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
	const char *window = NULL, *day = NULL, *print = NULL, *output = NULL, *receiver = NULL;
	const struct option_spec opts[] = {
		{ OPT_STRING, 0, "receiver", &receiver, "DIR", "with --print: the daily rotate of the receiver DIR" },
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
	if (receiver && (argc || day || !print || ctx->repo_opt || !*receiver))
		return opt_usage_error(usage, "--receiver DIR takes --print, --window and --output only, "
				       "and no machine"), EXIT_USAGE;
	if (argc != 1 && !receiver)
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
	if (receiver)
		ctx->repo_opt = receiver;
	if (ctx_prepare(ctx) < 0)
		return EXIT_ERROR;
	if (receiver) {
		if (!receiver_is(ctx->repo))
			return error("'%s' is not a receiver; make one with 'backup init --receiver DIR'",
				     receiver), EXIT_ERROR;
		/* By default after the nightly pushes of clients in the first windows. */
		return print_receiver_job(ctx, window ? s.window : 4, print, output) < 0 ? EXIT_ERROR : EXIT_OK;
	}
	/* A receiver keeps other hosts' machines: their files are not here. */
	if (receiver_is(ctx->repo) && print)
		return error("'%s' is a receiver: it runs no machine's backups, only its own rotate; "
			     "print that with 'backup schedule --receiver DIR --print %s'",
			     ctx->repo->path, print), EXIT_ERROR;
	if (receiver_is(ctx->repo) && valid_name(argv[0])) {
		m = xcalloc(1, sizeof(*m));
		m->name = xstrdup(argv[0]);
	} else if (machine_load(&m, ctx->cfg, argv[0]) < 0) {
		return EXIT_ERROR;
	}
	if ((window || day) && schedule_set(ctx->repo, m->name, &s) < 0)
		goto out;
	if (schedule_get(ctx->repo, m->name, &s) < 0)
		goto out;
	if (print) {
		if (print_jobs(ctx, m->name, m->push ? m->push : ctx->cfg->push, &s, print, output) < 0)
			goto out;
	} else if (!(window || day) || ctx->json || !ctx->quiet) {
		show(ctx, m->name, &s);
	}
	ret = EXIT_OK;
out:
	machine_free(m);
	return ret;
}
