#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine.h"
#include "keys.h"
#include "remote.h"
#include "snapshot.h"
#include "strbuf.h"
#include "usage.h"

/* A remote's name follows the rules of a machine's: a plain word. */
int remote_valid_name(const char *name)
{
	return valid_name(name);
}

const char *remote_kind_name(enum remote_kind kind)
{
	switch (kind) {
	case REMOTE_PATH:
		return "path";
	case REMOTE_SSH:
		return "ssh";
	case REMOTE_S3:
		return "s3";
	}
	return "?";
}

/* A host or user name as ssh takes it: no option, no space, no control byte. */
static int valid_host_part(const char *s, size_t len)
{
	size_t i;

	if (!len || s[0] == '-')
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f || s[i] == '/' || s[i] == '\\' ||
		    s[i] == '\'' || s[i] == '"')
			return 0;
	return 1;
}

/* Checks [user@]host out of s[0..len): 1 when good. */
static int valid_userhost(const char *s, size_t len)
{
	const char *at = memchr(s, '@', len);

	if (at && !valid_host_part(s, at - s))
		return 0;
	if (at) {
		len -= at + 1 - s;
		s = at + 1;
	}
	return valid_host_part(s, len);
}

int remote_parse_url(const char *url, enum remote_kind *kind, char **canonical)
{
	const char *p, *slash, *colon;

	*canonical = NULL;
	for (p = url; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			return error("remote URL '%s' holds a control character", url);
	if (!*url)
		return error("the remote URL is empty; give a path, ssh://[user@]host[:port]/path or user@host:path");
	if (!strncmp(url, "s3://", 5)) {
		if (transport_s3_check_url(url) < 0)
			return -1;
		*kind = REMOTE_S3;
		*canonical = xstrdup(url);
		return 0;
	}
	if (!strncmp(url, "ssh://", 6)) {
		const char *auth = url + 6, *port;
		size_t len;

		slash = strchr(auth, '/');
		if (!slash || !slash[1])
			return error("remote URL '%s' has no path; write ssh://[user@]host[:port]/path", url);
		len = slash - auth;
		port = memchr(auth, ':', len);
		if (port) {
			char *end;
			long n = strtol(port + 1, &end, 10);

			if (end != slash || port + 1 == slash || n < 1 || n > 65535)
				return error("remote URL '%s' has a bad port; write ssh://[user@]host[:port]/path", url);
			len = port - auth;
		}
		if (!valid_userhost(auth, len))
			return error("remote URL '%s' has a bad user or host; write ssh://[user@]host[:port]/path", url);
		*kind = REMOTE_SSH;
		*canonical = xstrdup(url);
		return 0;
	}
	if (!strncmp(url, "file://", 7)) {
		if (url[7] != '/' || !url[8])
			return error("remote URL '%s' is not a file:// URL of an absolute path", url);
		*kind = REMOTE_PATH;
		*canonical = xstrdup(url + 7);
		return 0;
	}
	if (strstr(url, "://"))
		return error("remote URL '%s' uses a transport backup does not support; "
			     "give a path, ssh://[user@]host[:port]/path or user@host:path", url);
	/* As git reads it: a colon before any slash makes it scp-like SSH. */
	colon = strchr(url, ':');
	slash = strchr(url, '/');
	if (colon && (!slash || colon < slash) && url[0] != '.') {
		if (!colon[1])
			return error("remote URL '%s' has no path; write user@host:path", url);
		if (!valid_userhost(url, colon - url))
			return error("remote URL '%s' has a bad user or host; write user@host:path", url);
		*kind = REMOTE_SSH;
		*canonical = xstrdup(url);
		return 0;
	}
	if (url[0] == '-')
		return error("remote path '%s' starts with '-'; write it as ./%s", url, url);
	*kind = REMOTE_PATH;
	if (url[0] == '/') {
		*canonical = xstrdup(url);
	} else {
		char *cwd = getcwd(NULL, 0);

		if (!cwd)
			return error("cannot find the current folder: %s", strerror(errno));
		*canonical = xasprintf("%s/%s", cwd, url);
		free(cwd);
	}
	return 0;
}

/* The kind a URL names, as remote_parse_url() would tell it, without checking it. */
static enum remote_kind kind_of(const char *url)
{
	const char *colon = strchr(url, ':'), *slash = strchr(url, '/');

	if (!strncmp(url, "s3://", 5))
		return REMOTE_S3;
	if (!strncmp(url, "ssh://", 6) || (colon && !strstr(url, "://") && (!slash || colon < slash) && url[0] != '.'))
		return REMOTE_SSH;
	return REMOTE_PATH;
}

static int open_config(struct repo *r, git_config **cfg)
{
	git_config *all = NULL;
	int ret;

	/* The repository's own file only: a remote is the repository's. */
	if (git_repository_config(&all, r->git) < 0)
		return error_git("cannot read the repository's config");
	ret = git_config_open_level(cfg, all, GIT_CONFIG_LEVEL_LOCAL);
	git_config_free(all);
	if (ret < 0)
		return error_git("cannot read the repository's config");
	return 0;
}

static char *config_string(git_config *cfg, const char *key)
{
	git_buf buf = GIT_BUF_INIT;
	char *v = NULL;

	if (git_config_get_string_buf(&buf, cfg, key) == 0)
		v = xstrdup(buf.ptr);
	git_buf_dispose(&buf);
	return v;
}

int remote_add(struct repo *r, const char *name, const char *url)
{
	git_config *cfg = NULL;
	char *key = xasprintf("remote.%s.url", name), *old = NULL;
	int ret = -1;

	if (open_config(r, &cfg) < 0)
		goto out;
	old = config_string(cfg, key);
	if (old) {
		ret = ERR_EXISTS;
		error("remote '%s' already exists (%s); remove it first with 'backup remote remove %s'",
		      name, old, name);
		goto out;
	}
	free(key);
	key = xasprintf("remote.%s.push", name);
	if (git_config_set_string(cfg, key, "+refs/backups/*:refs/backups/*") < 0) {
		error_git("cannot add the remote");
		goto out;
	}
	/* The URL last: a remote without it is not listed, so a failure
	 * in between leaves no half remote. */
	free(key);
	key = xasprintf("remote.%s.url", name);
	if (git_config_set_string(cfg, key, url) < 0) {
		error_git("cannot add the remote");
		goto out;
	}
	ret = 0;
out:
	git_config_free(cfg);
	free(key);
	free(old);
	return ret;
}

struct collect {
	const char *prefix;
	size_t plen;
	char **keys;
	size_t n;
};

static int collect_key(const git_config_entry *e, void *payload)
{
	struct collect *c = payload;

	if (!strncasecmp(e->name, c->prefix, c->plen)) {
		c->keys = xrealloc(c->keys, (c->n + 1) * sizeof(*c->keys));
		c->keys[c->n++] = xstrdup(e->name);
	}
	return 0;
}

int remote_remove(struct repo *r, const char *name)
{
	git_config *cfg = NULL;
	char *key = xasprintf("remote.%s.url", name), *url = NULL;
	struct collect c = { 0 };
	int ret = -1;
	size_t i;

	if (open_config(r, &cfg) < 0)
		goto out;
	url = config_string(cfg, key);
	if (!url) {
		ret = ERR_NOTFOUND;
		error("no remote '%s'; see 'backup remote list'", name);
		goto out;
	}
	free(key);
	key = xasprintf("remote.%s.", name);
	c.prefix = key;
	c.plen = strlen(key);
	if (git_config_foreach(cfg, collect_key, &c) < 0) {
		error_git("cannot read the repository's config");
		goto out;
	}
	/* The URL first, so an interrupted removal leaves no listed remote. */
	for (i = 0; i < c.n; i++) {
		if (strcasecmp(c.keys[i] + c.plen, "url"))
			continue;
		if (git_config_delete_multivar(cfg, c.keys[i], ".*") < 0 && git_error_last() &&
		    git_error_last()->klass != GIT_ERROR_NONE) {
			error_git("cannot remove the remote");
			goto out;
		}
	}
	for (i = 0; i < c.n; i++) {
		if (!strcasecmp(c.keys[i] + c.plen, "url"))
			continue;
		git_config_delete_multivar(cfg, c.keys[i], ".*");
	}
	ret = 0;
out:
	for (i = 0; i < c.n; i++)
		free(c.keys[i]);
	free(c.keys);
	git_config_free(cfg);
	free(key);
	free(url);
	return ret;
}

static int cmp_remote(const void *a, const void *b)
{
	return strcmp((*(struct remote *const *)a)->name, (*(struct remote *const *)b)->name);
}

static struct remote *load(git_config *cfg, const char *name)
{
	char *key = xasprintf("remote.%s.url", name);
	struct remote *rm = NULL;
	char *url = config_string(cfg, key);

	if (url) {
		rm = xcalloc(1, sizeof(*rm));
		rm->name = xstrdup(name);
		rm->url = url;
		free(key);
		key = xasprintf("remote.%s.sshCommand", name);
		rm->ssh_command = config_string(cfg, key);
	}
	free(key);
	return rm;
}

int remote_list(struct repo *r, struct remote ***out, size_t *nr)
{
	git_config *cfg = NULL;
	struct collect c = { .prefix = "remote.", .plen = 7 };
	struct remote **list = NULL;
	size_t n = 0, i, j;
	int ret = -1;

	*out = NULL;
	*nr = 0;
	if (open_config(r, &cfg) < 0)
		return -1;
	if (git_config_foreach(cfg, collect_key, &c) < 0) {
		error_git("cannot read the repository's config");
		goto out;
	}
	for (i = 0; i < c.n; i++) {
		char *dot = strrchr(c.keys[i], '.');
		struct remote *rm;

		if (strcasecmp(dot, ".url"))
			continue;
		*dot = '\0';
		for (j = 0; j < n; j++)
			if (!strcmp(list[j]->name, c.keys[i] + 7))
				break;
		if (j < n)
			continue;
		rm = load(cfg, c.keys[i] + 7);
		if (!rm)
			continue;
		rm->kind = kind_of(rm->url);
		list = xrealloc(list, (n + 1) * sizeof(*list));
		list[n++] = rm;
	}
	if (n)
		qsort(list, n, sizeof(*list), cmp_remote);
	*out = list;
	*nr = n;
	list = NULL;
	ret = 0;
out:
	for (i = 0; i < c.n; i++)
		free(c.keys[i]);
	free(c.keys);
	git_config_free(cfg);
	return ret;
}

void remote_list_free(struct remote **list, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++)
		remote_free(list[i]);
	free(list);
}

int remote_open(struct remote **out, struct repo *r, const char *name)
{
	git_config *cfg = NULL;
	struct remote *rm;
	char *canonical = NULL;

	*out = NULL;
	if (open_config(r, &cfg) < 0)
		return -1;
	rm = load(cfg, name);
	git_config_free(cfg);
	if (!rm) {
		error("no remote '%s'; add it with 'backup remote add %s URL' (see 'backup remote list')",
		      name, name);
		return ERR_NOTFOUND;
	}
	if (remote_parse_url(rm->url, &rm->kind, &canonical) < 0) {
		remote_free(rm);
		return -1;
	}
	free(canonical);
	switch (rm->kind) {
	case REMOTE_PATH:
	case REMOTE_SSH:
		rm->ops = &transport_git;
		break;
	case REMOTE_S3:
		rm->ops = &transport_s3;
		break;
	}
	*out = rm;
	return 0;
}

void remote_free(struct remote *rm)
{
	if (!rm)
		return;
	free(rm->name);
	free(rm->url);
	free(rm->ssh_command);
	free(rm);
}

const char *ref_status_name(enum ref_status s, int push)
{
	switch (s) {
	case REF_UPTODATE:
		return "up-to-date";
	case REF_UPDATED:
		return push ? "pushed" : "fetched";
	case REF_REFUSED:
		return "refused";
	case REF_KEPT:
		return "kept";
	case REF_BUSY:
		return "busy";
	}
	return "?";
}

void ref_split(const char *ref, const char **machine, size_t *mlen, const char **slot)
{
	const char *m = ref + strlen("refs/backups/"), *s = strrchr(ref, '/');

	if (strncmp(ref, "refs/backups/", 13) || !s || s < m) {
		*machine = "";
		*mlen = 0;
		*slot = ref;
		return;
	}
	*machine = m;
	*mlen = s - m;
	*slot = s + 1;
}

static void json_hex(struct strbuf *sb, const char *hex)
{
	if (*hex)
		strbuf_addf(sb, "\"%s\"", hex);
	else
		strbuf_addstr(sb, "null");
}

void transfer_refs_json(struct strbuf *sb, const struct transfer_result *res, int push)
{
	size_t i;

	strbuf_addch(sb, '[');
	for (i = 0; i < res->nrefs; i++) {
		const struct ref_update *u = &res->refs[i];
		const char *machine, *slot;
		size_t mlen;
		char *m;

		ref_split(u->ref, &machine, &mlen, &slot);
		m = xstrndup(machine, mlen);
		strbuf_addstr(sb, i ? ",{\"ref\":" : "{\"ref\":");
		strbuf_add_json(sb, u->ref);
		strbuf_addstr(sb, ",\"machine\":");
		if (mlen)
			strbuf_add_json(sb, m);
		else
			strbuf_addstr(sb, "null");
		strbuf_addstr(sb, ",\"slot\":");
		if (mlen)
			strbuf_add_json(sb, slot);
		else
			strbuf_addstr(sb, "null");
		strbuf_addstr(sb, ",\"old\":");
		json_hex(sb, u->old_hex);
		strbuf_addstr(sb, ",\"new\":");
		json_hex(sb, u->new_hex);
		strbuf_addf(sb, ",\"status\":\"%s\",\"reason\":", ref_status_name(u->status, push));
		if (u->reason && u->status != REF_UPDATED && u->status != REF_UPTODATE)
			strbuf_add_json(sb, u->reason);
		else
			strbuf_addstr(sb, "null");
		strbuf_addch(sb, '}');
		free(m);
	}
	strbuf_addch(sb, ']');
}

void transfer_result_release(struct transfer_result *res)
{
	size_t i;

	for (i = 0; i < res->nrefs; i++) {
		free(res->refs[i].ref);
		free(res->refs[i].reason);
	}
	free(res->refs);
	free(res->messages);
	memset(res, 0, sizeof(*res));
}

static int newer(const struct backup_info *a, const struct backup_info *b)
{
	if (a->start.tv_sec != b->start.tv_sec)
		return a->start.tv_sec > b->start.tv_sec;
	return a->start.tv_nsec > b->start.tv_nsec;
}

static void refuse(struct ref_update *u, enum ref_status st, char *reason)
{
	u->status = st;
	free(u->reason);
	u->reason = reason;
}

/* Applies one fetched slot ref; the repository is held shared. */
static int take_slot(struct repo *r, const struct remote *rm, struct ref_update *u, long wait)
{
	const char *m = u->ref + strlen("refs/backups/");
	const char *slot = strchr(m, '/') + 1;
	char *machine = xstrndup(m, slot - 1 - m), *why;
	struct backup_info *theirs = NULL, *ours = NULL;
	git_oid id, local;
	int lock = -1, ret = 0, err;

	git_oid_fromstr(&id, u->new_hex);
	/* Never an encrypted backup into a plain repository (nothing here could
	 * read it, and a run would write plaintext beside it), nor a plain one
	 * into an encrypted repository. */
	err = snapshot_sealed(r, id.id, 1);
	if (err >= 0 && err != repo_is_encrypted(r)) {
		refuse(u, REF_REFUSED, xasprintf(err ? "%s is an encrypted backup, and this repository is not encrypted"
					       : "%s is a backup of an unencrypted repository, and this one is encrypted",
					       u->new_hex));
		goto out;
	}
	err = snapshot_read(r, id.id, &theirs);
	if (err < 0) {
		refuse(u, REF_REFUSED, xasprintf(err == ERR_NEWER ? "%s is a backup of a newer version of backup"
					       : "%s is not a readable backup", u->new_hex));
		goto out;
	}
	if (strcmp(theirs->machine, machine)) {
		refuse(u, REF_REFUSED, xasprintf("%s is a backup of machine '%s', not of '%s'", u->new_hex,
					       theirs->machine, machine));
		goto out;
	}
	if (!strcmp(slot, SLOT_SNAPSHOT) != !strcmp(theirs->kind, "snapshot")) {
		refuse(u, REF_REFUSED, xasprintf("%s is %s backup, which the %s slot does not hold", u->new_hex,
					       !strcmp(theirs->kind, "snapshot") ? "a manual" : "an automatic", slot));
		goto out;
	}
	lock = repo_lock(r, machine, wait);
	if (lock == ERR_LOCKED) {
		refuse(u, REF_BUSY, xasprintf("machine '%s' is busy: another job holds its lock", machine));
		lock = -1;
		goto out;
	}
	if (lock < 0) {
		ret = -1;
		goto out;
	}
	if (git_reference_name_to_id(&local, r->git, u->ref) == 0) {
		git_oid_tostr(u->old_hex, sizeof(u->old_hex), &local);
		if (git_oid_equal(&local, &id)) {
			refuse(u, REF_UPTODATE, NULL);
			goto out;
		}
		if (snapshot_read(r, local.id, &ours) == 0 && !newer(theirs, ours)) {
			refuse(u, REF_KEPT, xstrdup("the backup here is as new or newer"));
			goto out;
		}
	}
	why = xasprintf("backup: fetch from %s", rm->name);
	if (snapshot_set_slot(r, machine, slot, id.id, why) < 0)
		ret = -1;
	free(why);
out:
	repo_unlock(lock);
	backup_info_free(theirs);
	backup_info_free(ours);
	free(machine);
	return ret;
}

/* Clone: the remote's state replaces the fresh one of the new repository. */
static int take_state(struct repo *r, const struct remote *rm, struct ref_update *u)
{
	git_reference *ref = NULL;
	git_commit *c = NULL;
	git_oid id;
	int ret = -1;

	git_oid_fromstr(&id, u->new_hex);
	if (git_commit_lookup(&c, r->git, &id) < 0 || git_commit_parentcount(c)) {
		error("the remote's %s (%s) is not a service state; it was not taken", REPO_STATE_REF, u->new_hex);
		goto out;
	}
	/* The clone takes the state's format: from its first reflog entry,
	 * an encrypted one's name no host. */
	if (repo_state_format(r, &id) == REPO_FORMAT_ENCRYPTED)
		repo_set_version(r, REPO_FORMAT_ENCRYPTED);
	if (git_reference_create(&ref, r->git, REPO_STATE_REF, &id, 1, "backup: clone") < 0) {
		error_git("cannot set the service state");
		goto out;
	}
	if (repo_state_lowered(r)) {
		error("not cloned: the service state of remote '%s' says its repository is not encrypted but holds "
		      "the 'encryption' entry of an encrypted one: its format was lowered; clone from a copy you trust",
		      rm->name);
		goto out;
	}
	if (repo_state_check(r) < 0)
		goto out;
	ret = 0;
out:
	git_reference_free(ref);
	git_commit_free(c);
	return ret;
}

/*
 * A clone whose state says "not encrypted", or that got no state, must hold
 * no encrypted backup: else whoever serves the remote replaced or dropped
 * the state of an encrypted repository, and the clone's first run would
 * write plaintext. state: 1 when the remote's state was taken.
 */
static int clone_check_plain(struct repo *r, const struct remote *rm, const struct transfer_result *res,
			     int state)
{
	size_t i;

	if (repo_is_encrypted(r))
		return 0;
	for (i = 0; i < res->nrefs; i++) {
		const struct ref_update *u = &res->refs[i];
		git_oid id;

		if (u->status != REF_UPDATED || !strcmp(u->ref, REPO_STATE_REF) ||
		    git_oid_fromstr(&id, u->new_hex) < 0 || snapshot_sealed(r, id.id, 1) != 1)
			continue;
		return error("not cloned: %s on remote '%s' is an encrypted backup, but the remote's service state %s: "
			     "it was replaced or lost; clone from a copy you trust", u->ref, rm->name,
			     state ? "says the repository is not encrypted" : "is missing");
	}
	return 0;
}

int remote_fetch(struct repo *r, const struct remote *rm, int progress, int clone, long wait,
		 struct transfer_result *res)
{
	int lock = repo_lock_shared(r, wait), ret = -1;
	size_t i, k;

	memset(res, 0, sizeof(*res));
	if (lock == ERR_LOCKED)
		return error("the repository is busy reclaiming space; try again or pass --wait SECONDS");
	if (lock < 0)
		return -1;
	if (rm->ops->fetch(r, rm, progress, res) < 0)
		goto out;
	if (clone) {
		/* The state first: it says whether the slots may be encrypted. */
		int state = 0;

		for (i = 0; i < res->nrefs; i++) {
			struct ref_update *u = &res->refs[i];

			if (u->status != REF_UPDATED || strcmp(u->ref, REPO_STATE_REF))
				continue;
			if (take_state(r, rm, u) < 0)
				goto out;
			state = 1;
		}
		if (clone_check_plain(r, rm, res, state) < 0)
			goto out;
	}
	/* A fetch never takes the remote's state: nor its format, which
	 * therefore never goes down from encrypted. */
	for (i = 0; i < res->nrefs; i++) {
		struct ref_update *u = &res->refs[i];

		if (u->status != REF_UPDATED || !strcmp(u->ref, REPO_STATE_REF))
			continue;
		if (take_slot(r, rm, u, wait) < 0)
			goto out;
	}
	/* A fetch keeps the local state: it is not one of the refs taken. */
	for (i = k = 0; i < res->nrefs; i++) {
		if (!strcmp(res->refs[i].ref, REPO_STATE_REF) && !clone) {
			free(res->refs[i].ref);
			free(res->refs[i].reason);
			continue;
		}
		res->refs[k++] = res->refs[i];
	}
	res->nrefs = k;
	ret = 0;
out:
	repo_unlock(lock);
	return ret;
}
