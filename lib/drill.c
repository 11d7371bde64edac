/*
 * drill.c — the disaster-recovery drill (drill.h): restore a backup as a
 * scratch machine, verify every file of it against the backup, clean up.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diskimg.h"
#include "drill.h"
#include "fsutil.h"
#include "machine.h"
#include "proc.h"
#include "usage.h"

void drill_problem_line(struct strbuf *sb, const struct drill_problem *p)
{
	if (p->disk) {
		strbuf_addstr(sb, p->disk);
		strbuf_addch(sb, ':');
	}
	strbuf_addstr(sb, p->path);
	strbuf_addf(sb, ": %s: %s", p->what, p->detail);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void add_problem(struct drill *d, const char *disk, const char *path, const char *what,
			const char *detail)
{
	struct drill_problem *p;

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
	r = diskimg_restore_ext4(d->repo, bd->tree, dd->path, bd->size, &dd->rs);
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
	verify_tree(d->repo, bd->tree, dd->mnt, &dd->vr);
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
		if (restore_tree(d->repo, bd->tree, dd->path, &dd->rs) < 0) {
			/* What it could not restore is named by the verification below. */
			dd->restore_failed = 1;
			add_problem(d, bd->label, "/", "restore", "the restore of this disk stopped on an error");
		}
	}
	dd->restore_s = seconds_since(&t0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!d->ext4)
		verify_tree(d->repo, bd->tree, dd->path, &dd->vr);
	else if (dd->restore_failed)
		/* No image: name what in the backup cannot be read. */
		verify_tree(d->repo, bd->tree, NULL, &dd->vr);
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
	if (!interrupted && d->progress)
		d->progress(d, i, first, d->data);
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
	if (d->progress)
		d->progress(d, d->ndisks, first, d->data);
	machine_free(back);
	free(path);
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

int drill_start(struct drill *d, const char *root)
{
	struct stat sb;
	char *disks;
	int r;

	clear_dead_drills(root);
	/* A name no machine can have (machine names never start with '.'). */
	d->scratch = xasprintf("%s/.drill-%s-%ld", root, d->machine, (long)getpid());
	if (mkdir_p(root, 0700) < 0)
		return error("cannot create '%s': %s", root, strerror(errno));
	if (stat(d->scratch, &sb) == 0 || mkdir(d->scratch, 0700) < 0)
		return error("cannot create the scratch machine '%s': %s", d->scratch,
			     errno ? strerror(errno) : "it exists");
	d->made = 1;
	disks = xasprintf("%s/disks", d->scratch);
	r = mkdir(disks, 0700);
	if (r < 0)
		error("cannot create '%s': %s", disks, strerror(errno));
	free(disks);
	return r < 0 ? -1 : 0;
}

void drill_run(struct drill *d)
{
	size_t i;

	d->disks = xcalloc(d->b->ndisks ? d->b->ndisks : 1, sizeof(*d->disks));
	d->ndisks = d->b->ndisks;
	for (i = 0; i < d->ndisks && !interrupted; i++)
		drill_disk(d, i);
	if (!interrupted)
		drill_machine_file(d);
}

int drill_finish(struct drill *d)
{
	if (!d->made)
		return 0;
	d->made = 0;
	if (d->keep || d->mounted) {
		d->kept = 1;
		return 0;
	}
	if (remove_tree(d->scratch) < 0)
		return error("cannot remove the scratch machine '%s': %s", d->scratch, strerror(errno));
	return 0;
}

void drill_release(struct drill *d)
{
	size_t i;

	if (d->made && !d->keep && !d->mounted)
		remove_tree(d->scratch);
	for (i = 0; i < d->ndisks; i++) {
		free(d->disks[i].path);
		free(d->disks[i].mnt);
	}
	free(d->disks);
	for (i = 0; i < d->nproblems; i++) {
		free(d->problems[i].path);
		free(d->problems[i].what);
		free(d->problems[i].detail);
	}
	free(d->problems);
	free(d->scratch);
	d->disks = NULL;
	d->problems = NULL;
	d->scratch = NULL;
	d->ndisks = d->nproblems = 0;
}
