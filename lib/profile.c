#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "fsutil.h"
#include "profile.h"
#include "usage.h"

int disk_is_image(const struct disk *d)
{
	size_t len = strlen(d->source);

	return len > 4 && !strcmp(d->source + len - 4, ".img");
}

/*
 * The canonical spelling of an absolute mount point: no repeated or final
 * '/'. NULL when a component is "." or "..", which would let two spellings
 * name one place and defeat the duplicate and order checks.
 */
static char *normalize_target(const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	const char *p = path;

	while (*p) {
		const char *start, *end;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		start = p;
		while (*p && *p != '/')
			p++;
		end = p;
		if ((end - start == 1 && start[0] == '.') ||
		    (end - start == 2 && start[0] == '.' && start[1] == '.')) {
			strbuf_release(&sb);
			return NULL;
		}
		strbuf_addch(&sb, '/');
		strbuf_add(&sb, start, end - start);
	}
	if (!sb.len)
		strbuf_addch(&sb, '/');
	return strbuf_detach(&sb, NULL);
}

static size_t depth(const char *target)
{
	size_t n = 0;

	for (; *target; target++)
		if (*target == '/' && target[1])
			n++;
	return n;
}

/* Parents before children: fewer components first, then by name. */
static int cmp_mount(const void *a, const void *b)
{
	const struct profile_mount *x = a, *y = b;
	size_t dx = depth(x->target), dy = depth(y->target);

	if (dx != dy)
		return dx < dy ? -1 : 1;
	return strcmp(x->target, y->target);
}

int profile_layout_new(struct profile_layout **out, const struct machine *m,
		       const struct profile *p)
{
	struct profile_layout *l = xcalloc(1, sizeof(*l));
	int root = device_index(p->root), i;
	size_t j, k;

	*out = NULL;
	l->machine = m;
	l->profile = p;
	if (root < 0 || !p->dev[root]) {
		error("profile '%s' of machine '%s' has no root device; set profile.%s.root in '%s'",
		      p->name, m->name, p->name, m->path);
		goto fail;
	}
	l->root = machine_disk(m, p->dev[root]);
	if (!l->root) {
		/* machine_parse() refuses this; a layout is never built on it. */
		error("profile '%s' of machine '%s' assigns %s to disk '%s', which is not defined; define it in '%s'",
		      p->name, m->name, p->root, p->dev[root], m->path);
		goto fail;
	}
	l->mounts = xcalloc(NDEVICES, sizeof(*l->mounts));
	l->mounts[l->nmounts].device = root;
	l->mounts[l->nmounts].disk = l->root;
	l->mounts[l->nmounts++].target = xstrdup("/");
	for (i = 0; i < NDEVICES; i++) {
		const struct disk *d = p->dev[i] ? machine_disk(m, p->dev[i]) : NULL;
		struct profile_mount *pm;

		if (!d)
			continue;
		for (j = 0; j < l->nmounts; j++)
			if (l->mounts[j].disk == d)
				break;
		if (j < l->nmounts)
			continue;
		pm = &l->mounts[l->nmounts++];
		pm->device = i;
		pm->disk = d;
		if (d->mount) {
			pm->target = normalize_target(d->mount);
			if (!pm->target) {
				error("disk.%s.mount '%s' has a '.' or '..' component; write it as a plain absolute path in '%s'",
				      d->label, d->mount, m->path);
				goto fail;
			}
		} else {
			pm->target = xasprintf("/mnt/%s", d->label);
		}
		for (k = 0; k + 1 < l->nmounts; k++)
			if (!strcmp(l->mounts[k].target, pm->target)) {
				error("disks '%s' and '%s' of profile '%s' both mount at '%s'; set disk.%s.mount in '%s' to another folder",
				      l->mounts[k].disk->label, d->label, p->name, pm->target, d->label, m->path);
				goto fail;
			}
	}
	qsort(l->mounts, l->nmounts, sizeof(*l->mounts), cmp_mount);
	*out = l;
	return 0;
fail:
	profile_layout_free(l);
	return -1;
}

void profile_layout_free(struct profile_layout *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->nmounts; i++)
		free(l->mounts[i].target);
	free(l->mounts);
	free(l);
}

int profile_check_sources(const struct profile_layout *l)
{
	size_t i;

	for (i = 0; i < l->nmounts; i++) {
		const struct disk *d = l->mounts[i].disk;
		int image = disk_is_image(d);
		struct stat st;

		if (stat(d->source, &st) < 0)
			return error("disk '%s' of profile '%s' is missing: no %s '%s' on this host (%s); restore the disk or fix disk.%s.source in '%s'",
				     d->label, l->profile->name, image ? "image file" : "folder", d->source,
				     strerror(errno), d->label, l->machine->path);
		if (image ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode))
			return error("disk '%s' of profile '%s': '%s' is not %s; fix disk.%s.source in '%s'",
				     d->label, l->profile->name, d->source,
				     image ? "an image file" : "a folder", d->label, l->machine->path);
	}
	return 0;
}

/* An fstab field: the blanks and backslashes that would split or escape it, in octal. */
static void add_fstab_field(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\\')
			strbuf_addf(sb, "\\%03o", (unsigned char)*s);
		else
			strbuf_addch(sb, *s);
	}
}

void profile_fstab(struct strbuf *sb, const struct profile_layout *l)
{
	size_t i;

	strbuf_addf(sb, "# profile '%s' of machine '%s', written by backup boot-config\n",
		    l->profile->name, l->machine->name);
	for (i = 0; i < l->nmounts; i++) {
		const struct profile_mount *pm = &l->mounts[i];

		add_fstab_field(sb, pm->disk->source);
		strbuf_addch(sb, ' ');
		add_fstab_field(sb, pm->target);
		if (disk_is_image(pm->disk)) {
			strbuf_addch(sb, ' ');
			add_fstab_field(sb, pm->disk->filesystem);
			strbuf_addf(sb, " loop 0 %d\n", pm->disk == l->root ? 1 : 2);
		} else {
			strbuf_addstr(sb, " none bind 0 0\n");
		}
	}
}

/* Adds s as one shell word, in single quotes unless every byte is harmless. */
static void add_shell_word(struct strbuf *sb, const char *s)
{
	const char *p;

	for (p = s; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=@%+,-", *p))
			break;
	if (*s && !*p) {
		strbuf_addstr(sb, s);
		return;
	}
	strbuf_addch(sb, '\'');
	for (p = s; *p; p++) {
		if (*p == '\'')
			strbuf_addstr(sb, "'\\''");
		else
			strbuf_addch(sb, *p);
	}
	strbuf_addch(sb, '\'');
}

/* A path in a --bind value, where systemd-nspawn reads '\:' as a colon. */
static void add_bind_path(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		if (*s == ':' || *s == '\\')
			strbuf_addch(sb, '\\');
		strbuf_addch(sb, *s);
	}
}

void profile_nspawn(struct strbuf *sb, const struct profile_layout *l, const char *rundir)
{
	struct strbuf line = STRBUF_INIT, arg = STRBUF_INIT;
	size_t i;

	strbuf_addstr(&line, "systemd-nspawn --boot --machine=");
	add_shell_word(&line, l->machine->name);
	strbuf_addstr(&line, disk_is_image(l->root) ? " --image=" : " --directory=");
	add_shell_word(&line, l->root->source);
	for (i = 0; i < l->nmounts; i++) {
		const struct profile_mount *pm = &l->mounts[i];
		char *src;

		if (pm->disk == l->root)
			continue;
		if (disk_is_image(pm->disk)) {
			src = xasprintf("%s/%s", rundir, pm->disk->label);
			strbuf_addf(sb, "# disk '%s' is an image file, which systemd-nspawn cannot bind: loop-mount it first\n",
				    pm->disk->label);
			strbuf_addstr(sb, "mkdir -p ");
			add_shell_word(sb, src);
			strbuf_addstr(sb, " && mount -o loop -t ");
			add_shell_word(sb, pm->disk->filesystem);
			strbuf_addch(sb, ' ');
			add_shell_word(sb, pm->disk->source);
			strbuf_addch(sb, ' ');
			add_shell_word(sb, src);
			strbuf_addch(sb, '\n');
		} else {
			src = xstrdup(pm->disk->source);
		}
		strbuf_reset(&arg);
		add_bind_path(&arg, src);
		strbuf_addch(&arg, ':');
		add_bind_path(&arg, pm->target);
		strbuf_addstr(&line, " --bind=");
		add_shell_word(&line, arg.buf);
		free(src);
	}
	strbuf_addf(sb, "%s\n", line.buf);
	strbuf_release(&line);
	strbuf_release(&arg);
}

void profile_devices_json(struct strbuf *sb, const struct profile *p)
{
	int i, n = 0;

	strbuf_addch(sb, '{');
	for (i = 0; i < NDEVICES; i++) {
		if (!p->dev[i])
			continue;
		strbuf_addf(sb, "%s\"sd%c\":", n++ ? "," : "", 'a' + i);
		strbuf_add_json(sb, p->dev[i]);
	}
	strbuf_addch(sb, '}');
}

void profile_json(struct strbuf *sb, const struct profile_layout *l)
{
	const struct profile *boot = machine_boot_profile(l->machine);
	int i, n = 0;
	size_t j;

	strbuf_addstr(sb, "{\"machine\":");
	strbuf_add_json(sb, l->machine->name);
	strbuf_addstr(sb, ",\"profile\":");
	strbuf_add_json(sb, l->profile->name);
	strbuf_addstr(sb, ",\"root\":");
	strbuf_add_json(sb, l->profile->root);
	strbuf_addf(sb, ",\"boots\":%s,\"devices\":", boot == l->profile ? "true" : "false");
	profile_devices_json(sb, l->profile);
	strbuf_addstr(sb, ",\"disks\":[");
	/* In device order, as the profile assigns them. */
	for (i = 0; i < NDEVICES; i++) {
		const struct profile_mount *pm = NULL;

		for (j = 0; j < l->nmounts; j++)
			if (l->mounts[j].device == i)
				pm = &l->mounts[j];
		if (!pm)
			continue;
		strbuf_addf(sb, "%s{\"device\":\"sd%c\",\"label\":", n++ ? "," : "", 'a' + i);
		strbuf_add_json(sb, pm->disk->label);
		strbuf_addstr(sb, ",\"source\":");
		strbuf_add_json(sb, pm->disk->source);
		strbuf_addf(sb, ",\"type\":\"%s\",\"mount\":", disk_is_image(pm->disk) ? "image" : "folder");
		strbuf_add_json(sb, pm->target);
		strbuf_addf(sb, ",\"size\":%llu,\"filesystem\":", (unsigned long long)pm->disk->size);
		strbuf_add_json(sb, pm->disk->filesystem);
		strbuf_addch(sb, '}');
	}
	strbuf_addstr(sb, "]}");
}

int profile_expand_command(struct strbuf *sb, const char *tmpl, const struct profile_layout *l)
{
	const char *p;

	for (p = tmpl; *p; p++) {
		if (*p != '%') {
			strbuf_addch(sb, *p);
			continue;
		}
		switch (p[1]) {
		case 'r':
			add_shell_word(sb, l->root->source);
			break;
		case 'p':
			add_shell_word(sb, l->profile->name);
			break;
		case 'm':
			add_shell_word(sb, l->machine->name);
			break;
		case '%':
			strbuf_addch(sb, '%');
			break;
		default:
			return error("the bootCommand of machine '%s' has an unknown placeholder '%%%.1s'; use %%r, %%p, %%m, or %%%% for a '%%' (see backup.conf(5))",
				     l->machine->name, p + 1);
		}
		p++;
	}
	return 0;
}

int profile_set_boot(const char *path, const char *profile)
{
	git_config *cfg = NULL;
	struct stat before, after;
	int fd, ret = -1;

	if (stat(path, &before) < 0)
		return error("cannot read '%s': %s", path, strerror(errno));
	if (git_config_open_ondisk(&cfg, path) < 0 ||
	    git_config_set_string(cfg, "machine.boot", profile) < 0) {
		error_git("cannot set machine.boot");
		goto out;
	}
	/* libgit2 writes a new file and renames it into place: give it the old mode back. */
	if (stat(path, &after) < 0) {
		error("cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	if ((after.st_mode & 07777) != (before.st_mode & 07777) &&
	    chmod(path, before.st_mode & 07777) < 0) {
		error("cannot restore the mode of '%s': %s", path, strerror(errno));
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		error("cannot sync '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	if (fsync_parent(path) < 0) {
		error("cannot sync the directory of '%s': %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	git_config_free(cfg);
	return ret;
}
