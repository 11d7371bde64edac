/*
 * drill.c — backup drill: the options, and the drill's report as text, as
 * JSON and as JUnit XML; lib/drill.c does the drill. The three reports
 * are the command's purpose (CI reads the JUnit file), hence the length.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "drill.h"
#include "fsutil.h"
#include "snapshot.h"
#include "usage.h"

static const char *const usage[] = {
	"backup drill MACHINE [SRC] [--disk-format dir|ext4] [--keep] [--junit FILE]",
	NULL
};

/* A name or detail for a terminal or a log: control bytes become \n, \xNN. */
static void add_text(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '\n')
			strbuf_addstr(sb, "\\n");
		else if (c == '\t')
			strbuf_addstr(sb, "\\t");
		else if (c < 0x20 || c == 0x7f)
			strbuf_addf(sb, "\\x%02x", c);
		else
			strbuf_addch(sb, c);
	}
}

/*
 * The progress callback: disk i's line and its problems (or the machine
 * file's, i == ndisks) as text on stdout, as each is done.
 */
static void print_progress(const struct drill *d, size_t i, size_t first, void *data)
{
	struct ctx *ctx = data;
	struct strbuf sb = STRBUF_INIT;

	if (ctx->json)
		return;
	if (i < d->ndisks && !ctx->quiet) {
		const struct drill_disk *dd = &d->disks[i];
		char h[16];

		printf("disk %s: %llu files, %s; restored in %.2f s, verified in %.2f s: %s\n", dd->label,
		       (unsigned long long)dd->vr.files, human_size(dd->vr.bytes, h, sizeof(h)),
		       dd->restore_s, dd->verify_s, dd->nproblems ? "MISMATCH" : "ok");
	}
	for (; first < d->nproblems; first++) {
		struct strbuf line = STRBUF_INIT;

		drill_problem_line(&line, &d->problems[first]);
		strbuf_reset(&sb);
		strbuf_addstr(&sb, "mismatch: ");
		add_text(&sb, line.buf);
		printf("%s\n", sb.buf);
		strbuf_release(&line);
	}
	strbuf_release(&sb);
	fflush(stdout);
}

static void json_counts(struct strbuf *js, uint64_t files, uint64_t bytes, uint64_t dirs, uint64_t others)
{
	strbuf_addf(js, "\"files\":%llu,\"bytes\":%llu,\"dirs\":%llu,\"others\":%llu",
		    (unsigned long long)files, (unsigned long long)bytes, (unsigned long long)dirs,
		    (unsigned long long)others);
}

static void print_json_report(const struct drill *d, const char *format, int ok)
{
	struct strbuf js = STRBUF_INIT;
	char when[32];
	size_t i;

	strbuf_addf(&js, "{\"ok\":%s,\"machine\":", ok ? "true" : "false");
	strbuf_add_json(&js, d->machine);
	strbuf_addf(&js, ",\"backup\":\"%s\",\"created\":\"%s\",\"slots\":[", d->b->hex,
		    format_time(&d->b->start, when, sizeof(when)));
	for (i = 0; i < d->b->nslots; i++) {
		if (i)
			strbuf_addch(&js, ',');
		strbuf_add_json(&js, d->b->slots[i]);
	}
	strbuf_addf(&js, "],\"disk_format\":\"%s\",\"mtime_precision\":\"%s\",\"scratch\":", format,
		    d->ext4 ? "second" : "nanosecond");
	strbuf_add_json(&js, d->scratch);
	strbuf_addf(&js, ",\"kept\":%s,\"restore_seconds\":%.3f,\"verify_seconds\":%.3f,"
		    "\"total_seconds\":%.3f,", d->kept ? "true" : "false", d->restore_s, d->verify_s,
		    d->restore_s + d->verify_s);
	json_counts(&js, d->files, d->bytes, d->dirs, d->others);
	strbuf_addf(&js, ",\"damaged\":%llu,\"mismatch_count\":%zu,\"disks\":[",
		    (unsigned long long)d->damaged, d->nproblems);
	for (i = 0; i < d->ndisks; i++) {
		const struct drill_disk *dd = &d->disks[i];

		strbuf_addstr(&js, i ? ",{\"label\":" : "{\"label\":");
		strbuf_add_json(&js, dd->label);
		strbuf_addstr(&js, ",\"path\":");
		strbuf_add_json(&js, dd->path);
		strbuf_addf(&js, ",\"ok\":%s,\"restore_ok\":%s,\"restore_seconds\":%.3f,\"verify_seconds\":%.3f,",
			    dd->nproblems ? "false" : "true", dd->restore_failed ? "false" : "true",
			    dd->restore_s, dd->verify_s);
		json_counts(&js, dd->vr.files, dd->vr.bytes, dd->vr.dirs, dd->vr.others);
		strbuf_addf(&js, ",\"restore_errors\":%llu,\"damaged\":%llu,\"mismatch_count\":%zu}",
			    (unsigned long long)dd->rs.errors, (unsigned long long)dd->vr.damaged, dd->nproblems);
	}
	strbuf_addstr(&js, "],\"mismatches\":[");
	for (i = 0; i < d->nproblems; i++) {
		const struct drill_problem *p = &d->problems[i];

		strbuf_addstr(&js, i ? ",{\"disk\":" : "{\"disk\":");
		if (p->disk)
			strbuf_add_json(&js, p->disk);
		else
			strbuf_addstr(&js, "null");
		strbuf_addstr(&js, ",\"path\":");
		strbuf_add_json(&js, p->path);
		strbuf_addstr(&js, ",\"what\":");
		strbuf_add_json(&js, p->what);
		strbuf_addstr(&js, ",\"detail\":");
		strbuf_add_json(&js, p->detail);
		strbuf_addch(&js, '}');
	}
	strbuf_addstr(&js, "]}");
	print_json(&js);
	strbuf_release(&js);
}

static void xml_property(struct strbuf *x, const char *name, const char *value)
{
	strbuf_addf(x, "      <property name=\"%s\" value=\"", name);
	strbuf_add_xml(x, value);
	strbuf_addstr(x, "\"/>\n");
}

/* One testcase: failing with the problems [from, from + n) when n or failed. */
static void xml_testcase(struct strbuf *x, const struct drill *d, const char *name, double secs,
			 size_t from, size_t n, const char *message)
{
	size_t i;

	strbuf_addstr(x, "    <testcase classname=\"backup.drill.");
	strbuf_add_xml(x, d->machine);
	strbuf_addstr(x, "\" name=\"");
	strbuf_add_xml(x, name);
	strbuf_addf(x, "\" time=\"%.3f\"", secs);
	if (!n) {
		strbuf_addstr(x, "/>\n");
		return;
	}
	strbuf_addstr(x, ">\n      <failure type=\"mismatch\" message=\"");
	strbuf_add_xml(x, message);
	strbuf_addstr(x, "\">");
	for (i = from; i < from + n; i++) {
		struct strbuf line = STRBUF_INIT;

		drill_problem_line(&line, &d->problems[i]);
		strbuf_add_xml(x, line.buf);
		strbuf_addstr(x, "&#10;");
		strbuf_release(&line);
	}
	strbuf_addstr(x, "</failure>\n    </testcase>\n");
}

static int write_junit(const struct drill *d, const char *format, const char *file)
{
	struct strbuf x = STRBUF_INIT, name = STRBUF_INIT, msg = STRBUF_INIT;
	char host[256] = "", stamp[32], num[32];
	size_t i, from = 0, tests = 0, failures = 0;
	struct timespec now = now_utc();
	struct tm tm;
	int ret;

	gethostname(host, sizeof(host) - 1);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	/* Two checks per disk (restore, verify) and the machine file. */
	tests = 2 * d->ndisks + 1;
	for (i = 0; i < d->ndisks; i++)
		failures += d->disks[i].restore_failed + !!(d->disks[i].nproblems - d->disks[i].restore_failed);
	failures += d->machine_file_failed;

	strbuf_addstr(&name, "backup drill ");
	strbuf_addstr(&name, d->machine);
	strbuf_addstr(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"");
	strbuf_add_xml(&x, name.buf);
	strbuf_addf(&x, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" time=\"%.3f\">\n", tests, failures,
		    d->restore_s + d->verify_s);
	strbuf_addstr(&x, "  <testsuite name=\"");
	strbuf_add_xml(&x, name.buf);
	strbuf_addf(&x, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"0\" time=\"%.3f\" "
		    "timestamp=\"%s\" hostname=\"", tests, failures, d->restore_s + d->verify_s, stamp);
	strbuf_add_xml(&x, host);
	strbuf_addstr(&x, "\">\n    <properties>\n");
	xml_property(&x, "machine", d->machine);
	xml_property(&x, "backup", d->b->hex);
	xml_property(&x, "disk_format", format);
	xml_property(&x, "scratch", d->scratch);
	xml_property(&x, "kept", d->kept ? "true" : "false");
	snprintf(num, sizeof(num), "%.3f", d->restore_s);
	xml_property(&x, "restore_seconds", num);
	snprintf(num, sizeof(num), "%.3f", d->verify_s);
	xml_property(&x, "verify_seconds", num);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)d->files);
	xml_property(&x, "files", num);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)d->bytes);
	xml_property(&x, "bytes", num);
	strbuf_addstr(&x, "    </properties>\n");
	for (i = 0; i < d->ndisks; i++) {
		const struct drill_disk *dd = &d->disks[i];
		size_t nverify = dd->nproblems - dd->restore_failed;

		strbuf_reset(&name);
		strbuf_addf(&name, "restore disk %s", dd->label);
		xml_testcase(&x, d, name.buf, dd->restore_s, from, dd->restore_failed,
			     "the restore of this disk stopped on an error");
		strbuf_reset(&name);
		strbuf_addf(&name, "verify disk %s", dd->label);
		strbuf_reset(&msg);
		strbuf_addf(&msg, "%zu mismatch%s", nverify, nverify == 1 ? "" : "es");
		xml_testcase(&x, d, name.buf, dd->verify_s, from + dd->restore_failed, nverify, msg.buf);
		from += dd->nproblems;
	}
	xml_testcase(&x, d, "machine file", 0, from, d->machine_file_failed ? d->nproblems - from : 0,
		     "the scratch machine's file is wrong");
	strbuf_addstr(&x, "  </testsuite>\n</testsuites>\n");
	/* A report for CI, not repository data: the user's umask decides. */
	ret = write_file_durable(file, x.buf, x.len, 0666);
	if (!ret && chmod(file, 0666 & ~user_umask) < 0)
		warning("cannot set the mode of '%s': %s", file, strerror(errno));
	strbuf_release(&x);
	strbuf_release(&name);
	strbuf_release(&msg);
	return ret;
}

int cmd_drill(int argc, const char **argv, struct ctx *ctx)
{
	const char *format = "dir", *junit = NULL;
	int keep = 0;
	const struct option_spec opts[] = {
		{ OPT_STRING, 0, "disk-format", &format, "dir|ext4", "restore the disks as folders (default) or ext4 images" },
		{ OPT_BOOL, 0, "keep", &keep, NULL, "keep the scratch machine and print where it is" },
		{ OPT_STRING, 0, "junit", &junit, "FILE", "also write the report as JUnit XML to FILE" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	struct drill d = { .progress = print_progress, .data = ctx };
	size_t i;
	int ret = EXIT_USAGE, lock = -1, ok;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		goto out;
	if (argc < 1 || argc > 2) {
		opt_usage_error(usage, "drill needs a MACHINE and at most one SRC");
		goto out;
	}
	if (!valid_name(argv[0])) {
		opt_usage_error(usage, "'%s' is not a machine name", argv[0]);
		goto out;
	}
	if (strcmp(format, "dir") && strcmp(format, "ext4")) {
		opt_usage_error(usage, "--disk-format is 'dir' or 'ext4', not '%s'", format);
		goto out;
	}
	d.machine = argv[0];
	d.ext4 = !strcmp(format, "ext4");
	d.keep = keep;
	ret = EXIT_ERROR;
	if (ctx_prepare(ctx) < 0)
		goto out;
	d.repo = ctx->repo;
	/* Stopped, a drill still unmounts and removes what it made. */
	catch_interrupts();
	/* Packs must not be reclaimed while they are read. */
	lock = repo_lock_shared(ctx->repo, -1);
	if (lock < 0 || snapshot_resolve(ctx->repo, argc == 2 ? argv[1] : argv[0], &d.b) < 0)
		goto out;
	if (strcmp(d.b->machine, d.machine)) {
		error("backup %s is of machine '%s', not '%s'; drill it as 'backup drill %s %s'", d.b->hex,
		      d.b->machine, d.machine, d.b->machine, d.b->hex);
		goto out;
	}
	if (drill_start(&d, ctx->cfg->machines_root) < 0)
		goto out;
	if (!ctx->json && !ctx->quiet) {
		char when[32];

		printf("drill of %s: backup %s (", d.machine, d.b->hex);
		for (i = 0; i < d.b->nslots; i++)
			printf("%s%s", i ? "," : "", d.b->slots[i]);
		printf("%s%s) as scratch machine '%s'\n", d.b->nslots ? ", " : "",
		       format_time(&d.b->start, when, sizeof(when)), d.scratch);
		if (d.ext4)
			printf("disks as ext4 images, which keep whole seconds: mtimes are compared to the second\n");
		fflush(stdout);
	}
	drill_run(&d);
	repo_unlock(lock);
	lock = -1;
	if (interrupted) {
		int left = keep || d.mounted;

		error("interrupted: the drill of '%s' did not finish%s%s%s", d.machine,
		      left ? "; the scratch machine is left in '" : "", left ? d.scratch : "", left ? "'" : "");
		ret = EXIT_INTERRUPTED;
		goto out;
	}

	ok = drill_finish(&d) == 0 && !d.nproblems;
	if (junit && write_junit(&d, format, junit) < 0)
		ok = 0;
	if (ctx->json) {
		print_json_report(&d, format, ok);
	} else {
		if (!ctx->quiet && !d.nproblems)
			printf("drill passed: %zu disk%s, %llu files, %llu bytes, every file matches the backup; "
			       "recovery %.2f s (restore %.2f s, verify %.2f s)\n", d.ndisks, d.ndisks == 1 ? "" : "s",
			       (unsigned long long)d.files, (unsigned long long)d.bytes, d.restore_s + d.verify_s,
			       d.restore_s, d.verify_s);
		else if (d.nproblems)
			printf("drill FAILED: %zu mismatch%s (%llu where the backup is damaged) in %llu files, "
			       "%llu bytes; recovery %.2f s (restore %.2f s, verify %.2f s)\n", d.nproblems,
			       d.nproblems == 1 ? "" : "es", (unsigned long long)d.damaged,
			       (unsigned long long)d.files, (unsigned long long)d.bytes, d.restore_s + d.verify_s,
			       d.restore_s, d.verify_s);
		if (d.kept && !ctx->quiet)
			printf("scratch machine kept in '%s'; remove it with: rm -rf '%s'\n", d.scratch, d.scratch);
	}
	ret = ok ? EXIT_OK : EXIT_ERROR;
out:
	repo_unlock(lock);
	drill_release(&d);
	backup_info_free(d.b);
	return ret;
}
