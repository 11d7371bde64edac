#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <git2.h>

#include "fsutil.h"
#include "machine.h"
#include "strbuf.h"
#include "usage.h"

static char *cfg_string(git_config *cfg, const char *key, const char *def)
{
	git_buf buf = GIT_BUF_INIT;
	char *v;

	if (cfg && git_config_get_string_buf(&buf, cfg, key) == 0) {
		v = xstrdup(buf.ptr);
		git_buf_dispose(&buf);
		return v;
	}
	return def ? xstrdup(def) : NULL;
}


void config_free(struct config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->repo_path);
	free(c->machines_dir);
	free(c->machines_root);
	free(c->push);
	free(c);
}

int valid_name(const char *name)
{
	const char *p;

	if (!*name || *name == '.' || *name == '-' || strlen(name) > 64)
		return 0;
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
			return 0;
	return 1;
}

char *machine_path(const struct config *c, const char *name)
{
	return xasprintf("%s/%s.conf", c->machines_dir, name);
}

struct disk *machine_disk(const struct machine *m, const char *label)
{
	size_t i;

	for (i = 0; i < m->ndisks; i++)
		if (!strcmp(m->disks[i].label, label))
			return &m->disks[i];
	return NULL;
}

struct profile *machine_profile(const struct machine *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nprofiles; i++)
		if (!strcmp(m->profiles[i].name, name))
			return &m->profiles[i];
	return NULL;
}

struct profile *machine_boot_profile(const struct machine *m)
{
	struct profile *p = m->boot ? machine_profile(m, m->boot) : NULL;

	if (!p && m->nprofiles)
		p = &m->profiles[0];
	return p;
}

const char *machine_root_disk(const struct machine *m)
{
	struct profile *p = machine_boot_profile(m);

	if (p && p->root && p->root[0] == 's' && p->root[1] == 'd' &&
	    p->root[2] >= 'a' && p->root[2] < 'a' + NDEVICES && !p->root[3] &&
	    p->dev[p->root[2] - 'a'])
		return p->dev[p->root[2] - 'a'];
	return m->ndisks == 1 ? m->disks[0].label : NULL;
}

static struct disk *get_disk(struct machine *m, const char *label)
{
	struct disk *d = machine_disk(m, label);

	if (d)
		return d;
	m->disks = xrealloc(m->disks, (m->ndisks + 1) * sizeof(*m->disks));
	d = &m->disks[m->ndisks++];
	memset(d, 0, sizeof(*d));
	d->label = xstrdup(label);
	return d;
}

static struct profile *get_profile(struct machine *m, const char *name)
{
	struct profile *p = machine_profile(m, name);

	if (p)
		return p;
	m->profiles = xrealloc(m->profiles, (m->nprofiles + 1) * sizeof(*m->profiles));
	p = &m->profiles[m->nprofiles++];
	memset(p, 0, sizeof(*p));
	p->name = xstrdup(name);
	return p;
}

int device_index(const char *dev)
{
	if (dev && dev[0] == 's' && dev[1] == 'd' && dev[2] >= 'a' && dev[2] < 'a' + NDEVICES && !dev[3])
		return dev[2] - 'a';
	return -1;
}

/* Splits "section.sub.key" into its parts; sub may be NULL. */
static void split_key(const char *name, char *section, size_t slen, char *sub, size_t sublen,
		      const char **key)
{
	const char *dot1 = strchr(name, '.'), *dot2 = strrchr(name, '.');

	snprintf(section, slen, "%.*s", (int)(dot1 - name), name);
	if (dot2 > dot1)
		snprintf(sub, sublen, "%.*s", (int)(dot2 - dot1 - 1), dot1 + 1);
	else
		sub[0] = '\0';
	*key = dot2 + 1;
}

/*
 * Where a key is set in a config file, "FILE:LINE", for messages: libgit2
 * does not say. A small scan of the file's sections and keys; the last
 * line that sets the key wins, as in git-config. Also notices a [disk]
 * section given twice, which git-config would merge silently.
 */
struct scan {
	char key[448];
	int line;
};

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s += 'a' - 'A';
}

static int scan_file(const char *path, struct scan **out, size_t *nr, char **dup)
{
	struct strbuf sb = STRBUF_INIT;
	char section[300] = "", *line, *next;
	struct scan *sc = NULL;
	char **headers = NULL;
	size_t n = 0, nh = 0, i;
	int lineno = 0;

	*out = NULL;
	*nr = 0;
	*dup = NULL;
	if (strbuf_read_file(&sb, path) < 0)
		return -1;
	for (line = sb.buf; line && *line; line = next) {
		char *p = line, *q;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '[' && (q = strchr(p, ']'))) {
			char name[128] = "", sub[128] = "";
			char *quote = memchr(p, '"', q - p);

			if (quote) {
				char *end = strrchr(quote + 1, '"');
				snprintf(name, sizeof(name), "%.*s", (int)(quote - p - 1), p + 1);
				while (*name && name[strlen(name) - 1] == ' ')
					name[strlen(name) - 1] = '\0';
				if (end && end > quote)
					snprintf(sub, sizeof(sub), "%.*s", (int)(end - quote - 1), quote + 1);
			} else {
				snprintf(name, sizeof(name), "%.*s", (int)(q - p - 1), p + 1);
			}
			lower(name);
			snprintf(section, sizeof(section), "%s%s%s", name, *sub ? "." : "", sub);
			/* Two sections of one disk would merge two disks into one;
			 * a profile may be given in parts. */
			if (*sub && !strcmp(name, "disk")) {
				for (i = 0; i < nh && !*dup; i++)
					if (!strcmp(headers[i], section))
						*dup = xasprintf("%s:%d: %s '%s' is defined twice; give each %s one section",
								 path, lineno, name, sub, name);
				headers = xrealloc(headers, (nh + 1) * sizeof(*headers));
				headers[nh++] = xstrdup(section);
			}
			continue;
		}
		if (!*section || *p == '#' || *p == ';' || !*p)
			continue;
		q = p;
		while (*q && *q != '=' && *q != ' ' && *q != '\t')
			q++;
		sc = xrealloc(sc, (n + 1) * sizeof(*sc));
		snprintf(sc[n].key, sizeof(sc[n].key), "%s.%.*s", section, (int)(q - p), p);
		/* Lower-case the key part only: subsections keep their case. */
		lower(sc[n].key + strlen(section));
		sc[n].line = lineno;
		n++;
	}
	free_strv(headers, nh);
	strbuf_release(&sb);
	*out = sc;
	*nr = n;
	return 0;
}

/* "FILE:LINE" of key in m's file (or "FILE" when not found); static buffer. */
static const char *where(const struct machine *m, const char *key)
{
	static char buf[4200];
	size_t i;
	int line = 0;

	for (i = 0; i < m->nscan; i++)
		if (!strcmp(m->scan[i].key, key))
			line = m->scan[i].line;
	if (line)
		snprintf(buf, sizeof(buf), "%s:%d", m->path, line);
	else
		snprintf(buf, sizeof(buf), "%s", m->path);
	return buf;
}

static int set_entry(struct machine *m, const git_config_entry *e)
{
	char section[32], sub[256];
	const char *key, *v = e->value ? e->value : "";

	if (!strchr(e->name, '.'))
		return error("%s: unknown key '%s'; see backup.conf(5)", where(m, e->name), e->name);
	split_key(e->name, section, sizeof(section), sub, sizeof(sub), &key);
	if (!strcmp(section, "machine") && !*sub) {
		if (!strcmp(key, "plan")) {
			if (parse_size(v, &m->plan) < 0)
				return error("%s: machine.plan '%s' is not a size; write it like 80G", where(m, e->name), v);
			return 0;
		}
		if (!strcmp(key, "boot")) {
			free(m->boot);
			m->boot = xstrdup(v);
			return 0;
		}
		if (!strcmp(key, "bootcommand")) {
			free(m->boot_command);
			m->boot_command = xstrdup(v);
			return 0;
		}
		if (!strcmp(key, "push")) {
			if (!valid_name(v))
				return error("%s: machine.push '%s' cannot name a remote", where(m, e->name), v);
			free(m->push);
			m->push = xstrdup(v);
			return 0;
		}
	} else if (!strcmp(section, "disk") && *sub) {
		struct disk *d;

		if (!valid_name(sub))
			return error("%s: disk label '%s' is not valid; use letters, digits, '_', '.', '-'", where(m, e->name), sub);
		d = get_disk(m, sub);
		if (!strcmp(key, "source")) {
			free(d->source);
			d->source = xstrdup(v);
			return 0;
		}
		if (!strcmp(key, "size")) {
			if (parse_size(v, &d->size) < 0)
				return error("%s: disk.%s.size '%s' is not a size; write it like 25G", where(m, e->name), sub, v);
			return 0;
		}
		if (!strcmp(key, "filesystem")) {
			free(d->filesystem);
			d->filesystem = xstrdup(v);
			return 0;
		}
		if (!strcmp(key, "mount")) {
			if (v[0] != '/')
				return error("%s: disk.%s.mount '%s' is not an absolute path", where(m, e->name), sub, v);
			free(d->mount);
			d->mount = xstrdup(v);
			return 0;
		}
	} else if (!strcmp(section, "profile") && *sub) {
		struct profile *p;
		int i;

		if (!valid_name(sub))
			return error("%s: profile name '%s' is not valid; use letters, digits, '_', '.', '-'", where(m, e->name), sub);
		p = get_profile(m, sub);
		if (!strcmp(key, "root")) {
			if (device_index(v) < 0)
				return error("%s: profile.%s.root '%s' is not a device sda..sdh", where(m, e->name), sub, v);
			free(p->root);
			p->root = xstrdup(v);
			return 0;
		}
		if ((i = device_index(key)) >= 0) {
			free(p->dev[i]);
			p->dev[i] = xstrdup(v);
			return 0;
		}
	} else if (!strcmp(section, "backup") && !*sub) {
		if (!strcmp(key, "exclude")) {
			m->excludes = xrealloc(m->excludes, (m->nexcludes + 1) * sizeof(char *));
			m->excludes[m->nexcludes++] = xstrdup(v);
			return 0;
		}
		if (!strcmp(key, "prehook")) {
			free(m->pre_hook);
			m->pre_hook = xstrdup(v);
			return 0;
		}
		if (!strcmp(key, "posthook")) {
			free(m->post_hook);
			m->post_hook = xstrdup(v);
			return 0;
		}
	}
	return error("%s: unknown key '%s'; see backup.conf(5)", where(m, e->name), e->name);
}

static int validate(struct machine *m)
{
	size_t i;
	int j;

	if (!m->ndisks)
		return error("%s: machine '%s' has no disk; add a [disk \"LABEL\"] section with a source", m->path, m->name);
	for (i = 0; i < m->ndisks; i++) {
		struct disk *d = &m->disks[i];

		if (!d->source)
			return error("%s: disk '%s' has no source; add 'source = PATH'", m->path, d->label);
		if (!d->filesystem)
			d->filesystem = xstrdup("ext4");
	}
	for (i = 0; i < m->nprofiles; i++) {
		struct profile *p = &m->profiles[i];

		for (j = 0; j < NDEVICES; j++)
			if (p->dev[j] && !machine_disk(m, p->dev[j]))
				return error("%s: profile '%s' assigns sd%c to disk '%s', which is not defined",
					     m->path, p->name, 'a' + j, p->dev[j]);
		if (p->root && !p->dev[device_index(p->root)])
			return error("%s: profile '%s' boots from %s, which has no disk", m->path, p->name, p->root);
	}
	if (m->boot && !machine_profile(m, m->boot))
		return error("%s: machine.boot names profile '%s', which is not defined", m->path, m->boot);
	return 0;
}

int machine_parse(struct machine **out, const char *name, const char *path)
{
	struct machine *m = xcalloc(1, sizeof(*m));
	git_config *cfg = NULL;
	git_config_iterator *it = NULL;
	git_config_entry *e;
	char *dup = NULL;
	int ret = -1, err;

	*out = NULL;
	m->name = xstrdup(name);
	m->path = xstrdup(path);
	if (scan_file(path, &m->scan, &m->nscan, &dup) == 0 && dup) {
		error("%s", dup);
		free(dup);
		goto out;
	}
	if (git_config_open_ondisk(&cfg, path) < 0) {
		error_git("malformed machine file");
		goto out;
	}
	if (git_config_iterator_new(&it, cfg) < 0) {
		error_git("cannot read the machine file");
		goto out;
	}
	while ((err = git_config_next(&e, it)) == 0)
		if (set_entry(m, e) < 0)
			goto out;
	if (err != GIT_ITEROVER) {
		error_git("cannot read the machine file");
		goto out;
	}
	if (validate(m) < 0)
		goto out;
	*out = m;
	m = NULL;
	ret = 0;
out:
	git_config_iterator_free(it);
	git_config_free(cfg);
	machine_free(m);
	return ret;
}

int machine_load(struct machine **out, const struct config *c, const char *name)
{
	char *path;
	struct stat st;
	int ret;

	*out = NULL;
	if (!valid_name(name))
		return error("'%s' is not a valid machine name", name);
	path = machine_path(c, name);
	if (stat(path, &st) < 0) {
		error("unknown machine '%s': no file '%s'; define it there (see backup.conf(5))", name, path);
		free(path);
		return ERR_NOTFOUND;
	}
	ret = machine_parse(out, name, path);
	free(path);
	return ret;
}

void profile_release(struct profile *p)
{
	int j;

	free(p->name);
	free(p->root);
	for (j = 0; j < NDEVICES; j++)
		free(p->dev[j]);
	memset(p, 0, sizeof(*p));
}

void machine_free(struct machine *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->ndisks; i++) {
		free(m->disks[i].label);
		free(m->disks[i].source);
		free(m->disks[i].filesystem);
		free(m->disks[i].mount);
	}
	for (i = 0; i < m->nprofiles; i++)
		profile_release(&m->profiles[i]);
	free_strv(m->excludes, m->nexcludes);
	free(m->disks);
	free(m->profiles);
	free(m->name);
	free(m->path);
	free(m->boot);
	free(m->boot_command);
	free(m->push);
	free(m->pre_hook);
	free(m->post_hook);
	free(m->scan);
	free(m);
}

/* A git-config value, quoted when it needs to be. */
static void add_value(struct strbuf *sb, const char *v)
{
	const char *p;

	strbuf_addch(sb, '"');
	for (p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			strbuf_addch(sb, '\\');
		if (*p == '\n') {
			strbuf_addstr(sb, "\\n");
			continue;
		}
		if (*p == '\t') {
			strbuf_addstr(sb, "\\t");
			continue;
		}
		strbuf_addch(sb, *p);
	}
	strbuf_addstr(sb, "\"\n");
}

int machine_write(const struct machine *m, const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;
	int j, ret;

	strbuf_addf(&sb, "# machine %s, written by backup\n[machine]\n", m->name);
	strbuf_addf(&sb, "\tplan = %llu\n", (unsigned long long)m->plan);
	if (m->boot) {
		strbuf_addstr(&sb, "\tboot = ");
		add_value(&sb, m->boot);
	}
	if (m->boot_command) {
		strbuf_addstr(&sb, "\tbootCommand = ");
		add_value(&sb, m->boot_command);
	}
	if (m->push) {
		strbuf_addstr(&sb, "\tpush = ");
		add_value(&sb, m->push);
	}
	for (i = 0; i < m->ndisks; i++) {
		const struct disk *d = &m->disks[i];

		strbuf_addf(&sb, "[disk \"%s\"]\n\tsource = ", d->label);
		add_value(&sb, d->source);
		strbuf_addf(&sb, "\tsize = %llu\n\tfilesystem = ", (unsigned long long)d->size);
		add_value(&sb, d->filesystem ? d->filesystem : "ext4");
		if (d->mount) {
			strbuf_addstr(&sb, "\tmount = ");
			add_value(&sb, d->mount);
		}
	}
	for (i = 0; i < m->nprofiles; i++) {
		const struct profile *p = &m->profiles[i];

		strbuf_addf(&sb, "[profile \"%s\"]\n", p->name);
		if (p->root)
			strbuf_addf(&sb, "\troot = %s\n", p->root);
		for (j = 0; j < NDEVICES; j++)
			if (p->dev[j])
				strbuf_addf(&sb, "\tsd%c = %s\n", 'a' + j, p->dev[j]);
	}
	if (m->nexcludes || m->pre_hook || m->post_hook)
		strbuf_addstr(&sb, "[backup]\n");
	for (i = 0; i < m->nexcludes; i++) {
		strbuf_addstr(&sb, "\texclude = ");
		add_value(&sb, m->excludes[i]);
	}
	if (m->pre_hook) {
		strbuf_addstr(&sb, "\tpreHook = ");
		add_value(&sb, m->pre_hook);
	}
	if (m->post_hook) {
		strbuf_addstr(&sb, "\tpostHook = ");
		add_value(&sb, m->post_hook);
	}
	ret = write_file_durable(path, sb.buf, sb.len, 0600);
	strbuf_release(&sb);
	return ret;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int machine_list(char ***out, size_t *nr, const struct config *c)
{
	DIR *d = opendir(c->machines_dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	*out = NULL;
	*nr = 0;
	if (!d)
		return errno == ENOENT ? 0 : error("cannot read '%s': %s", c->machines_dir, strerror(errno));
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char *name;

		if (len <= 5 || strcmp(de->d_name + len - 5, ".conf"))
			continue;
		name = xstrndup(de->d_name, len - 5);
		if (!valid_name(name)) {
			free(name);
			continue;
		}
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = name;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	*out = names;
	*nr = n;
	return 0;
}

/* The global file knows four keys; anything else is a mistake to name. */
static int check_global_keys(git_config *cfg, const char *path)
{
	static const char *const known[] = { "repository.path", "machines.dir", "machines.root",
					     "backup.autoenroll", "backup.push" };
	git_config_iterator *it = NULL;
	git_config_entry *e;
	int ret = 0, err;
	size_t i;

	if (git_config_iterator_new(&it, cfg) < 0)
		return error_git("cannot read the configuration");
	while (!ret && (err = git_config_next(&e, it)) == 0) {
		for (i = 0; i < sizeof(known) / sizeof(*known); i++)
			if (!strcmp(e->name, known[i]))
				break;
		if (i == sizeof(known) / sizeof(*known)) {
			struct scan *sc = NULL;
			size_t n = 0, k;
			char *dup = NULL;
			int line = 0;

			if (scan_file(path, &sc, &n, &dup) == 0)
				for (k = 0; k < n; k++)
					if (!strcmp(sc[k].key, e->name))
						line = sc[k].line;
			if (line)
				ret = error("%s:%d: unknown key '%s'; see backup.conf(5)", path, line, e->name);
			else
				ret = error("%s: unknown key '%s'; see backup.conf(5)", path, e->name);
			free(sc);
			free(dup);
		}
	}
	git_config_iterator_free(it);
	return ret;
}

int config_load(struct config **out, const char *path, int required, const char *repo)
{
	struct config *c = xcalloc(1, sizeof(*c));
	git_config *cfg = NULL;
	struct stat st;
	int ret = -1;

	*out = NULL;
	if (stat(path, &st) == 0) {
		if (git_config_open_ondisk(&cfg, path) < 0) {
			error_git("malformed configuration");
			goto out;
		}
		c->path = xstrdup(path);
		if (check_global_keys(cfg, path) < 0)
			goto out;
	} else if (required) {
		error("cannot read the configuration '%s': %s", path, strerror(errno));
		goto out;
	}
	c->repo_path = repo ? xstrdup(repo) : cfg_string(cfg, "repository.path", DEFAULT_REPO);
	c->machines_dir = cfg_string(cfg, "machines.dir", DEFAULT_MACHINES_DIR);
	c->machines_root = cfg_string(cfg, "machines.root", DEFAULT_MACHINES_ROOT);
	if (cfg && git_config_get_bool(&c->auto_enroll, cfg, "backup.autoenroll") < 0)
		c->auto_enroll = 0;
	c->push = cfg_string(cfg, "backup.push", NULL);
	if (c->push && !valid_name(c->push)) {
		error("%s: backup.push '%s' cannot name a remote", path, c->push);
		goto out;
	}
	*out = c;
	c = NULL;
	ret = 0;
out:
	git_config_free(cfg);
	config_free(c);
	return ret;
}
