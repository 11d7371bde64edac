/*
 * drill.c — the disaster-recovery drill: restore a backup as a scratch
 * machine, verify every file of it against the backup, report, clean up.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "diskimg.h"
#include "fsutil.h"
#include "proc.h"
#include "restore.h"
#include "snapshot.h"
#include "usage.h"
#include "verify.h"

static const char *const usage[] = {
	"backup drill MACHINE [SRC] [--disk-format dir|ext4] [--keep] [--junit FILE]",
	NULL
};

struct problem {
	const char *disk;	/* a label, or NULL for the machine */
	char *path, *what, *detail;
};

struct drill_disk {
	const char *label;
	char *path;			/* the restored folder, or image */
	char *mnt;			/* ext4: where the image is mounted to be verified */
	struct restore_stats rs;
	struct verify_report vr;
	double restore_s, verify_s;
	int restore_failed;
	size_t nproblems;		/* of the drill's, this disk's */
};

struct drill {
	struct ctx *ctx;
	const char *machine;
	const char *format;
	int ext4;			/* --disk-format ext4 */
	int mounted;			/* an image could not be unmounted */
	struct backup_info *b;
	char *scratch;
	struct drill_disk *disks;
	size_t ndisks;
	struct problem *problems;
	size_t nproblems;
	const char *cur_disk;		/* the disk being verified */
	int machine_file_failed;
	double restore_s, verify_s;
	uint64_t files, bytes, dirs, others, damaged;
};

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

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
 * The length of the UTF-8 sequence at p that XML 1.0 allows as a
 * character, or 0: no overlong forms, surrogates, U+FFFE or U+FFFF.
 */
static int xml_char_len(const unsigned char *p)
{
	unsigned cp;
	int n, i;

	if (p[0] < 0x80)
		return p[0] >= 0x20 || p[0] == '\t' || p[0] == '\n' || p[0] == '\r';
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

/*
 * Text for XML, in an attribute or an element: markup characters as
 * entities, and bytes XML cannot carry (control bytes, bytes that are not
 * UTF-8: file names may hold any byte) written as the text \xNN.
 */
static void add_xml(struct strbuf *sb, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n;

		switch (*p) {
		case '&': strbuf_addstr(sb, "&amp;"); p++; continue;
		case '<': strbuf_addstr(sb, "&lt;"); p++; continue;
		case '>': strbuf_addstr(sb, "&gt;"); p++; continue;
		case '"': strbuf_addstr(sb, "&quot;"); p++; continue;
		case '\'': strbuf_addstr(sb, "&apos;"); p++; continue;
		case '\n': strbuf_addstr(sb, "&#10;"); p++; continue;
		case '\r': strbuf_addstr(sb, "&#13;"); p++; continue;
		case '\t': strbuf_addstr(sb, "&#9;"); p++; continue;
		}
		n = xml_char_len(p);
		if (!n) {
			strbuf_addf(sb, "\\x%02x", *p++);
			continue;
		}
		strbuf_add(sb, p, n);
		p += n;
	}
}

/* "LABEL:/path: what: detail", for text and JUnit. */
static void add_problem_line(struct strbuf *sb, const struct problem *p)
{
	if (p->disk) {
		strbuf_addstr(sb, p->disk);
		strbuf_addch(sb, ':');
	}
	strbuf_addstr(sb, p->path);
	strbuf_addf(sb, ": %s: %s", p->what, p->detail);
}

static void add_problem(struct drill *d, const char *disk, const char *path, const char *what,
			const char *detail)
{
	struct problem *p;

	d->problems = xrealloc(d->problems, (d->nproblems + 1) * sizeof(*d->problems));
	p = &d->problems[d->nproblems++];
	p->disk = disk;
	p->path = xstrdup(path);
	p->what = xstrdup(what);
	p->detail = xstrdup(detail);
}

static void on_mismatch(const struct verify_mismatch *m, void *data)
{
	struct drill *d = data;

	/* Every ext4 file system has one, made by mke2fs (diskimg.h). */
	if (d->ext4 && !strcmp(m->path, "/lost+found") && !strcmp(m->what, "unexpected"))
		return;
	add_problem(d, d->cur_disk, m->path, m->what, m->detail);
}

/* Prints the problems from index from on, as text, on stdout. */
static void print_problems(struct drill *d, size_t from)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	if (d->ctx->json)
		return;
	for (i = from; i < d->nproblems; i++) {
		struct strbuf line = STRBUF_INIT;

		add_problem_line(&line, &d->problems[i]);
		strbuf_reset(&sb);
		strbuf_addstr(&sb, "mismatch: ");
		add_text(&sb, line.buf);
		printf("%s\n", sb.buf);
		strbuf_release(&line);
	}
	strbuf_release(&sb);
	fflush(stdout);
}


/* out's text on one line, for a message. */
static const char *one_line(struct strbuf *out)
{
	char *p;

	while (out->len && (out->buf[out->len - 1] == '\n' || out->buf[out->len - 1] == ' '))
		strbuf_setlen(out, out->len - 1);
	for (p = out->buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return out->len ? out->buf : "no message";
}

/*
 * Restores disk i as an ext4 image, as restore --disk-format ext4 does;
 * returns 0 when the image was made.
 */
static int restore_ext4(struct drill *d, size_t i)
{
	struct drill_disk *dd = &d->disks[i];
	const struct backup_disk *bd = &d->b->disks[i];
	int r;

	dd->path = xasprintf("%s/disks/%s.img", d->scratch, bd->label);
	r = diskimg_restore_ext4(d->ctx->repo, bd->tree, dd->path, bd->size, &dd->rs);
	if (r == ERR_NOSPACE) {
		char *msg = xasprintf("the disk's content does not fit its recorded size, %llu bytes",
				      (unsigned long long)bd->size);

		add_problem(d, bd->label, "/", "restore", msg);
		free(msg);
	} else if (r == ERR_PARTIAL) {
		char *msg = xasprintf("%llu file%s could not be restored, so no image was made",
				      (unsigned long long)dd->rs.errors, dd->rs.errors == 1 ? "" : "s");

		add_problem(d, bd->label, "/", "restore", msg);
		free(msg);
	} else if (r < 0) {
		add_problem(d, bd->label, "/", "restore", "the image of this disk could not be made");
	}
	return r < 0 ? -1 : 0;
}

/*
 * Verifies an ext4 image through the kernel's ext4 (a read-only loop mount):
 * what a machine booting it would see. debugfs's rdump would do without
 * privileges, but it drops hard links, holes, FIFOs and nanoseconds, so it
 * cannot tell a faithful image from a damaged one.
 */
static void verify_ext4(struct drill *d, size_t i)
{
	struct drill_disk *dd = &d->disks[i];
	const struct backup_disk *bd = &d->b->disks[i];
	struct strbuf out = STRBUF_INIT;
	char *mnts = xasprintf("%s/mnt", d->scratch);
	const char *argv[] = { "mount", "-t", "ext4", "-o", "loop,ro,noload,nosuid,nodev,noexec",
			       dd->path, NULL, NULL };
	int r;

	dd->mnt = xasprintf("%s/%s", mnts, bd->label);
	argv[6] = dd->mnt;
	if ((mkdir(mnts, 0700) < 0 && errno != EEXIST) || mkdir(dd->mnt, 0700) < 0) {
		char *msg = xasprintf("cannot create '%s': %s", dd->mnt, strerror(errno));

		add_problem(d, bd->label, "/", "unreadable", msg);
		free(msg);
		goto out;
	}
	r = proc_run(argv, NULL, &out);
	if (r) {
		char *msg = xasprintf("cannot mount the image to verify it: %s; an ext4 drill needs "
				      "loop devices and the right to mount (root)",
				      r < 0 ? "see above" : one_line(&out));

		add_problem(d, bd->label, "/", "unreadable", msg);
		free(msg);
		goto out;
	}
	/* mke2fs -d keeps whole seconds only (diskimg.h). */
	dd->vr.whole_seconds = 1;
	verify_tree(d->ctx->repo, bd->tree, dd->mnt, &dd->vr);
	/* The loop device goes with the mount (mount sets it to autoclear). */
	if (umount2(dd->mnt, 0) < 0 && umount2(dd->mnt, MNT_DETACH) < 0) {
		char *msg = xasprintf("cannot unmount '%s': %s", dd->mnt, strerror(errno));

		add_problem(d, bd->label, "/", "unreadable", msg);
		free(msg);
		d->mounted = 1;
	}
out:
	strbuf_release(&out);
	free(mnts);
}

/* Restores and verifies disk i of the backup into the scratch machine. */
static void drill_disk(struct drill *d, size_t i)
{
	struct drill_disk *dd = &d->disks[i];
	const struct backup_disk *bd = &d->b->disks[i];
	struct timespec t0;
	size_t first = d->nproblems;

	dd->label = bd->label;
	dd->vr.mismatch = on_mismatch;
	dd->vr.data = d;
	d->cur_disk = bd->label;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (d->ext4) {
		dd->restore_failed = restore_ext4(d, i) < 0;
	} else {
		dd->path = xasprintf("%s/disks/%s", d->scratch, bd->label);
		if (restore_tree(d->ctx->repo, bd->tree, dd->path, &dd->rs) < 0) {
			/* What it could not restore is named by the verification below. */
			dd->restore_failed = 1;
			add_problem(d, bd->label, "/", "restore", "the restore of this disk stopped on an error");
		}
	}
	dd->restore_s = seconds_since(&t0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!d->ext4)
		verify_tree(d->ctx->repo, bd->tree, dd->path, &dd->vr);
	else if (dd->restore_failed)
		/* No image: name what in the backup cannot be read. */
		verify_tree(d->ctx->repo, bd->tree, NULL, &dd->vr);
	else
		verify_ext4(d, i);
	dd->verify_s = seconds_since(&t0);
	dd->nproblems = d->nproblems - first;

	d->restore_s += dd->restore_s;
	d->verify_s += dd->verify_s;
	d->files += dd->vr.files;
	d->bytes += dd->vr.bytes;
	d->dirs += dd->vr.dirs;
	d->others += dd->vr.others;
	d->damaged += dd->vr.damaged;
	if (interrupted)
		return;
	if (!d->ctx->json && !d->ctx->quiet) {
		char h[16];

		printf("disk %s: %llu files, %s; restored in %.2f s, verified in %.2f s: %s\n", bd->label,
		       (unsigned long long)dd->vr.files, human_size(dd->vr.bytes, h, sizeof(h)),
		       dd->restore_s, dd->verify_s, dd->nproblems ? "MISMATCH" : "ok");
		fflush(stdout);
	}
	print_problems(d, first);
}

/*
 * Writes the scratch machine's file beside its disks, as restore --new
 * writes one into machines.dir, and reads it back: the layout is part of
 * what a recovery needs.
 */
static void drill_machine_file(struct drill *d)
{
	struct machine *m = d->b->layout, *back = NULL;
	char *path = xasprintf("%s/%s.conf", d->scratch, d->machine);
	size_t first = d->nproblems, i;

	for (i = 0; i < m->ndisks && i < d->ndisks; i++) {
		if (!m->disks[i].mount && m->disks[i].source && m->disks[i].source[0] == '/')
			m->disks[i].mount = xstrdup(m->disks[i].source);
		free(m->disks[i].source);
		m->disks[i].source = xstrdup(d->disks[i].path);
	}
	if (machine_write(m, path) < 0)
		add_problem(d, NULL, path, "machine", "cannot write the scratch machine's file");
	else if (machine_parse(&back, d->machine, path) < 0)
		add_problem(d, NULL, path, "machine", "the scratch machine's file does not load");
	else if (back->ndisks != m->ndisks || back->nprofiles != m->nprofiles)
		add_problem(d, NULL, path, "machine", "the scratch machine's file lost disks or profiles");
	d->machine_file_failed = d->nproblems > first;
	print_problems(d, first);
	machine_free(back);
	free(path);
}

static void json_counts(struct strbuf *js, uint64_t files, uint64_t bytes, uint64_t dirs, uint64_t others)
{
	strbuf_addf(js, "\"files\":%llu,\"bytes\":%llu,\"dirs\":%llu,\"others\":%llu",
		    (unsigned long long)files, (unsigned long long)bytes, (unsigned long long)dirs,
		    (unsigned long long)others);
}

static void print_json_report(struct drill *d, int ok, int kept)
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
	strbuf_addf(&js, "],\"disk_format\":\"%s\",\"mtime_precision\":\"%s\",\"scratch\":", d->format,
		    d->ext4 ? "second" : "nanosecond");
	strbuf_add_json(&js, d->scratch);
	strbuf_addf(&js, ",\"kept\":%s,\"restore_seconds\":%.3f,\"verify_seconds\":%.3f,"
		    "\"total_seconds\":%.3f,", kept ? "true" : "false", d->restore_s, d->verify_s,
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
		const struct problem *p = &d->problems[i];

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
	add_xml(x, value);
	strbuf_addstr(x, "\"/>\n");
}

/* One testcase: failing with the problems [from, from + n) when n or failed. */
static void xml_testcase(struct strbuf *x, struct drill *d, const char *name, double secs,
			 size_t from, size_t n, const char *message)
{
	size_t i;

	strbuf_addstr(x, "    <testcase classname=\"backup.drill.");
	add_xml(x, d->machine);
	strbuf_addstr(x, "\" name=\"");
	add_xml(x, name);
	strbuf_addf(x, "\" time=\"%.3f\"", secs);
	if (!n) {
		strbuf_addstr(x, "/>\n");
		return;
	}
	strbuf_addstr(x, ">\n      <failure type=\"mismatch\" message=\"");
	add_xml(x, message);
	strbuf_addstr(x, "\">");
	for (i = from; i < from + n; i++) {
		struct strbuf line = STRBUF_INIT;

		add_problem_line(&line, &d->problems[i]);
		add_xml(x, line.buf);
		strbuf_addstr(x, "&#10;");
		strbuf_release(&line);
	}
	strbuf_addstr(x, "</failure>\n    </testcase>\n");
}

static int write_junit(struct drill *d, const char *file, int kept)
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
	add_xml(&x, name.buf);
	strbuf_addf(&x, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" time=\"%.3f\">\n", tests, failures,
		    d->restore_s + d->verify_s);
	strbuf_addstr(&x, "  <testsuite name=\"");
	add_xml(&x, name.buf);
	strbuf_addf(&x, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"0\" time=\"%.3f\" "
		    "timestamp=\"%s\" hostname=\"", tests, failures, d->restore_s + d->verify_s, stamp);
	add_xml(&x, host);
	strbuf_addstr(&x, "\">\n    <properties>\n");
	xml_property(&x, "machine", d->machine);
	xml_property(&x, "backup", d->b->hex);
	xml_property(&x, "disk_format", d->format);
	xml_property(&x, "scratch", d->scratch);
	xml_property(&x, "kept", kept ? "true" : "false");
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

/*
 * Removes the scratch machines of drills that were killed (SIGKILL, power
 * loss) before they could clean up: .drill-MACHINE-PID whose process is
 * gone. What is still mounted below one (an ext4 image) is detached first.
 */
static void clear_dead_drills(const char *root)
{
	DIR *dir = opendir(root);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		const char *dash = strrchr(de->d_name, '-');
		char *end, *path, line[4096];
		long pid;
		FILE *mounts;

		if (strncmp(de->d_name, ".drill-", 7) || !dash)
			continue;
		pid = strtol(dash + 1, &end, 10);
		if (*end || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		path = xasprintf("%s/%s", root, de->d_name);
		mounts = fopen("/proc/self/mounts", "r");
		while (mounts && fgets(line, sizeof(line), mounts)) {
			char dev[4096], mnt[4096];

			if (sscanf(line, "%4095s %4095s", dev, mnt) == 2 && !strncmp(mnt, path, strlen(path)) &&
			    mnt[strlen(path)] == '/')
				umount2(mnt, MNT_DETACH);
		}
		if (mounts)
			fclose(mounts);
		warning("removing '%s', left by a drill that was killed", path);
		remove_tree(path);
		free(path);
	}
	closedir(dir);
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
	struct drill d = { .ctx = ctx };
	struct stat sb;
	size_t i;
	int ret = EXIT_USAGE, lock = -1, made = 0, ok, kept = 0;

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
	d.format = format;
	d.ext4 = !strcmp(format, "ext4");
	ret = EXIT_ERROR;
	if (ctx_prepare(ctx) < 0)
		goto out;
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

	clear_dead_drills(ctx->cfg->machines_root);
	/* A name no machine can have (machine names never start with '.'). */
	d.scratch = xasprintf("%s/.drill-%s-%ld", ctx->cfg->machines_root, d.machine, (long)getpid());
	if (mkdir_p(ctx->cfg->machines_root, 0700) < 0) {
		error("cannot create '%s': %s", ctx->cfg->machines_root, strerror(errno));
		goto out;
	}
	if (stat(d.scratch, &sb) == 0 || mkdir(d.scratch, 0700) < 0) {
		error("cannot create the scratch machine '%s': %s", d.scratch,
		      errno ? strerror(errno) : "it exists");
		goto out;
	}
	made = 1;
	{
		char *disks = xasprintf("%s/disks", d.scratch);
		int r = mkdir(disks, 0700);

		if (r < 0)
			error("cannot create '%s': %s", disks, strerror(errno));
		free(disks);
		if (r < 0)
			goto out;
	}
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
	d.disks = xcalloc(d.b->ndisks, sizeof(*d.disks));
	d.ndisks = d.b->ndisks;
	for (i = 0; i < d.ndisks && !interrupted; i++)
		drill_disk(&d, i);
	if (!interrupted)
		drill_machine_file(&d);
	repo_unlock(lock);
	lock = -1;
	if (interrupted) {
		if (keep || d.mounted)
			made = 0;
		error("interrupted: the drill of '%s' did not finish%s%s%s", d.machine,
		      made ? "" : "; the scratch machine is left in '", made ? "" : d.scratch,
		      made ? "" : "'");
		ret = EXIT_INTERRUPTED;
		goto out;
	}

	ok = !d.nproblems;
	if (keep || d.mounted) {
		/* A mounted image is never removed from under its mount. */
		made = 0;
		kept = 1;
	} else if (remove_tree(d.scratch) < 0) {
		error("cannot remove the scratch machine '%s': %s", d.scratch, strerror(errno));
		made = 0;
		ok = 0;
	} else {
		made = 0;
	}
	if (junit && write_junit(&d, junit, kept) < 0)
		ok = 0;
	if (ctx->json) {
		print_json_report(&d, ok, kept);
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
		if (kept && !ctx->quiet)
			printf("scratch machine kept in '%s'; remove it with: rm -rf '%s'\n", d.scratch, d.scratch);
	}
	ret = ok ? EXIT_OK : EXIT_ERROR;
out:
	repo_unlock(lock);
	if (made)
		remove_tree(d.scratch);
	for (i = 0; i < d.ndisks; i++) {
		free(d.disks[i].path);
		free(d.disks[i].mnt);
	}
	free(d.disks);
	for (i = 0; i < d.nproblems; i++) {
		free(d.problems[i].path);
		free(d.problems[i].what);
		free(d.problems[i].detail);
	}
	free(d.problems);
	free(d.scratch);
	backup_info_free(d.b);
	return ret;
}
