/*
 * Unit test of lib/timer.c: the crontab line and the systemd units of a
 * machine's window, the quoting of each for what reads it, the zone a
 * timer carries, the paths a job names, and the unit files written.
 */
#include "timer.h"
#include "unit.h"

static void expect_in(const char *text, const char *want)
{
	if (!strstr(text, want)) {
		fprintf(UNIT_ERR, "missing '%s' in:\n%s\n", want, text);
		failed = 1;
	}
}

int main(void)
{
	struct timer_job j;
	struct schedule s = { .window = 4, .weekday = 0 };
	struct strbuf cron = STRBUF_INIT, service = STRBUF_INIT, timer = STRBUF_INIT;
	unsigned minute, hour;
	char *conf, *p, *text;
	struct stat st;

	unit_setup("test_timer");

	/* The job names this binary, and the configuration made absolute. */
	conf = at("backup.conf");
	CHECK(chdir(base) == 0);
	CHECK(timer_job_init(&j, "backup.conf", NULL) == 0);
	CHECK(j.exe && strstr(j.exe, "test_timer") && j.config && !j.repo);
	p = realpath(conf, NULL);
	CHECK(p && j.config && !strcmp(j.config, p));
	free(p);
	timer_job_release(&j);
	put("bad\nname.conf", "");
	CHECK(timer_job_init(&j, "bad\nname.conf", NULL) == -1);
	timer_job_release(&j);
	CHECK(timer_job_init(&j, "missing.conf", NULL) == -1);
	timer_job_release(&j);

	/* cron: a fixed minute in the window's first 110 minutes. */
	setenv("TZ", "UTC", 1);
	memset(&j, 0, sizeof(j));
	j.exe = xstrdup("/usr/bin/backup");
	timer_cron(&cron, &j, "web", &s);
	expect_in(cron.buf, "# backup: machine web, window W4 (04:00-06:00 in the system's time zone)");
	p = strchr(cron.buf, '\n');
	CHECK(p && sscanf(p + 1, "%u %u * * * ", &minute, &hour) == 2);
	CHECK(hour * 60 + minute >= 4 * 60 && hour * 60 + minute < 4 * 60 + 110);
	expect_in(cron.buf, " * * * /usr/bin/backup run --wait 3600 web && /usr/bin/backup rotate --wait 3600 web\n");

	/* systemd: the service runs both, the timer spreads over the window. */
	CHECK(timer_systemd(&service, &timer, &j, "web", &s) == 0);
	expect_in(service.buf, "ExecStart=/usr/bin/backup run --wait 3600 web\nExecStart=/usr/bin/backup rotate --wait 3600 web\n");
	expect_in(timer.buf, "OnCalendar=*-*-* 04:00:00 UTC\nRandomizedDelaySec=6600\n");
	strbuf_reset(&timer);
	strbuf_reset(&service);
	setenv("TZ", "Europe/Paris", 1);
	CHECK(timer_systemd(&service, &timer, &j, "web", &s) == 0);
	expect_in(timer.buf, "OnCalendar=*-*-* 04:00:00 Europe/Paris\n");

	/* Quoting: cron's '%' and the shell's quotes; systemd's specifiers. */
	free(j.exe);
	j.exe = xstrdup("/opt/my backup/b%n");
	j.config = xstrdup("/etc/it's $HOME.conf");
	strbuf_reset(&cron);
	strbuf_reset(&service);
	strbuf_reset(&timer);
	timer_cron(&cron, &j, "web", &s);
	expect_in(cron.buf, "'/opt/my backup/b\\%n' --config '/etc/it'\\''s $HOME.conf' run");
	CHECK(timer_systemd(&service, &timer, &j, "web", &s) == 0);
	expect_in(service.buf, "ExecStart=\"/opt/my backup/b%%n\" --config \"/etc/it's $$HOME.conf\" run");
	free(j.exe);
	j.exe = xstrdup("/opt/a\"b/backup");
	strbuf_reset(&service);
	strbuf_reset(&timer);
	CHECK(timer_systemd(&service, &timer, &j, "web", &s) == -1);
	timer_job_release(&j);

	/* Unit files: made readable by all, in a folder made as needed. */
	p = at("units/sub");
	CHECK(timer_write_unit(p, "backup-run-web.timer", &cron) == 0);
	free(p);
	text = slurp("units/sub/backup-run-web.timer");
	CHECK(!strcmp(text, cron.buf));
	free(text);
	p = at("units/sub/backup-run-web.timer");
	CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0644);
	free(p);

	free(conf);
	strbuf_release(&cron);
	strbuf_release(&service);
	strbuf_release(&timer);
	return unit_finish();
}
