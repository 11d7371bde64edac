#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "machine.h"
#include "receiver.h"
#include "retention.h"
#include "schedule.h"
#include "snapshot.h"
#include "strbuf.h"
#include "usage.h"

#define PREFIX "refs/backups/"

static const char *const client_slots[] = { SLOT_DAILY, SLOT_WEEKLY, SLOT_BIWEEKLY, SLOT_SNAPSHOT };

int receiver_valid_slot(const char *slot)
{
	size_t i;

	for (i = 0; i < sizeof(client_slots) / sizeof(client_slots[0]); i++)
		if (!strcmp(slot, client_slots[i]))
			return 1;
	return 0;
}

/* The hook as a shell script: exe quoted for sh, which it must be safe in. */
static int write_hook(const char *path, const char *exe)
{
	char *hooks = xasprintf("%s/hooks", path), *file = xasprintf("%s/pre-receive", hooks);
	struct strbuf sb = STRBUF_INIT;
	int ret = -1;

	if (strpbrk(exe, "'\n")) {
		error("cannot write the hook: the path of backup '%s' holds a quote or a newline", exe);
		goto out;
	}
	if (mkdir(hooks, 0700) < 0 && errno != EEXIST) {
		error("cannot create '%s': %s", hooks, strerror(errno));
		goto out;
	}
	strbuf_addf(&sb, "#!/bin/sh\n"
		    "# The receiver's gate, written by 'backup init --receiver' (backup-receiver(1)):\n"
		    "# a key may create and move only its own machines' slots, never delete or rewind.\n"
		    "exec '%s' receiver hook\n", exe);
	ret = write_file_durable(file, sb.buf, sb.len, 0700);
out:
	strbuf_release(&sb);
	free(hooks);
	free(file);
	return ret;
}

int receiver_init(const char *path, const char *exe)
{
	static const struct {
		const char *key, *value;
	} settings[] = {
		{ RECEIVER_CONFIG_KEY, "true" },
		/* Every push is kept as the pack it came in (pitfall 2 of MEASURED.md). */
		{ "receive.unpackLimit", "1" },
		/* Incoming objects are checked; our escaped names never hold ".git",
		 * but a stored name of that kind is data, not an attack on us. */
		{ "receive.fsckObjects", "true" },
		{ "receive.fsck.hasDotgit", "ignore" },
		/* Only guard refs/heads/ (measured): the hook guards the rest. */
		{ "receive.denyDeletes", "true" },
		{ "receive.denyNonFastForwards", "true" },
		{ "receive.autogc", "false" },
		{ "gc.auto", "0" },
		{ "core.logAllRefUpdates", "always" },
		/* Only advertised refs may be fetched: a key sees its own machines. */
		{ "uploadpack.allowTipSHA1InWant", "false" },
		{ "uploadpack.allowReachableSHA1InWant", "false" },
		{ "uploadpack.allowAnySHA1InWant", "false" },
	};
	git_repository *git = NULL;
	git_config *cfg = NULL;
	size_t i;
	int ret = -1;

	if (exe[0] != '/')
		return error("cannot write the hook: '%s' is not an absolute path to backup", exe);
	if (repo_init(path) < 0)
		return -1;
	if (git_repository_open(&git, path) < 0 || git_repository_config(&cfg, git) < 0) {
		error_git("cannot configure the receiver");
		goto out;
	}
	for (i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		if (git_config_set_string(cfg, settings[i].key, settings[i].value) < 0) {
			error_git("cannot configure the receiver");
			goto out;
		}
	{
		char *conf = xasprintf("%s/config", path);
		int fd = open(conf, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || fsync(fd) < 0) {
			error("cannot sync '%s': %s", conf, strerror(errno));
			if (fd >= 0)
				close(fd);
			free(conf);
			goto out;
		}
		close(fd);
		free(conf);
	}
	ret = write_hook(path, exe);
out:
	git_config_free(cfg);
	git_repository_free(git);
	return ret;
}

int receiver_is(struct repo *r)
{
	git_config *cfg = NULL;
	int v = 0;

	if (git_repository_config_snapshot(&cfg, r->git) == 0 &&
	    git_config_get_bool(&v, cfg, RECEIVER_CONFIG_KEY) < 0)
		v = 0;
	git_config_free(cfg);
	return v;
}

time_t receiver_date(time_t start, time_t arrival)
{
	if (start > arrival)
		return arrival;
	if (start < arrival - RECEIVER_GRACE)
		return arrival - RECEIVER_GRACE;
	return start;
}

struct arrival {
	unsigned char id[SHA1_LEN];
	time_t when;
};

struct arrivals {
	struct arrival *a;
	size_t n;
};

static void arrival_note(struct arrivals *a, const unsigned char *id, time_t when)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (!memcmp(a->a[i].id, id, SHA1_LEN)) {
			if (when < a->a[i].when)
				a->a[i].when = when;
			return;
		}
	a->a = xrealloc(a->a, (a->n + 1) * sizeof(*a->a));
	memcpy(a->a[a->n].id, id, SHA1_LEN);
	a->a[a->n++].when = when;
}

int arrivals_read(struct repo *r, const char *machine, struct arrivals **out)
{
	struct arrivals *a = xcalloc(1, sizeof(*a));
	git_reference_iterator *it = NULL;
	git_reference *ref;
	char *glob = xasprintf(PREFIX "%s/*", machine);
	int err;

	*out = NULL;
	if (git_reference_iterator_glob_new(&it, r->git, glob) < 0) {
		free(glob);
		arrivals_free(a);
		return error_git("cannot list the refs");
	}
	free(glob);
	while ((err = git_reference_next(&ref, it)) == 0) {
		git_reflog *log = NULL;
		size_t k, n;

		if (git_reflog_read(&log, r->git, git_reference_name(ref)) == 0) {
			n = git_reflog_entrycount(log);
			for (k = 0; k < n; k++) {
				const git_reflog_entry *e = git_reflog_entry_byindex(log, k);

				arrival_note(a, git_reflog_entry_id_new(e)->id,
					     git_reflog_entry_committer(e)->when.time);
			}
		}
		git_reflog_free(log);
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	if (err != GIT_ITEROVER) {
		arrivals_free(a);
		return error_git("cannot list the refs");
	}
	*out = a;
	return 0;
}

time_t arrivals_get(const struct arrivals *a, const unsigned char *id, time_t dflt)
{
	size_t i;

	for (i = 0; a && i < a->n; i++)
		if (!memcmp(a->a[i].id, id, SHA1_LEN))
			return a->a[i].when;
	return dflt;
}

void arrivals_free(struct arrivals *a)
{
	if (!a)
		return;
	free(a->a);
	free(a);
}

/* Splits refs/backups/MACHINE/SLOT; returns 0 and the parts, or -1. */
static int split_ref(const char *ref, char **machine, const char **slot)
{
	const char *m, *s;

	*machine = NULL;
	if (strncmp(ref, PREFIX, strlen(PREFIX)))
		return -1;
	m = ref + strlen(PREFIX);
	s = strchr(m, '/');
	if (!s)
		return -1;
	*machine = xstrndup(m, s - m);
	*slot = s + 1;
	if (!valid_name(*machine)) {
		free(*machine);
		*machine = NULL;
		return -1;
	}
	return 0;
}

static const char *short_id(const git_oid *id, char *buf)
{
	git_oid_tostr(buf, 13, id);
	return buf;
}

static const char *date_str(time_t t, char *buf, size_t len)
{
	struct timespec ts = { t, 0 };

	return format_time(&ts, buf, len);
}

/* Checks one update; prints the refusal and returns 1, or returns 0 or -1. */
static int check_one(struct repo *r, char *const *machines, size_t nm, int others_hidden,
		     const struct receiver_update *u, time_t now)
{
	struct backup_info *nb = NULL, *ob = NULL;
	struct arrivals *arr = NULL;
	git_commit *c = NULL;
	char *machine = NULL, *list = NULL, a[16], b[16], da[32], db[32];
	const char *slot = NULL;
	struct strbuf sb = STRBUF_INIT;
	size_t i;
	int ret = 1, allowed = 0;

	if (!nm) {
		error("refusing '%s': this key may write no machine's backups "
		      "(its authorized_keys line names no --machine)", u->ref);
		goto out;
	}
	for (i = 0; i < nm; i++) {
		char *prefix = xasprintf(PREFIX "%s/", machines[i]);

		allowed |= !strncmp(u->ref, prefix, strlen(prefix));
		free(prefix);
		strbuf_addf(&sb, "%s%s", i ? ", " : "", machines[i]);
	}
	list = strbuf_detach(&sb, NULL);
	/* Refs serve hid from the key: git itself refuses to update them. */
	if (!allowed && others_hidden) {
		ret = 2;
		goto out;
	}
	allowed = 0;
	if (split_ref(u->ref, &machine, &slot) < 0 || !receiver_valid_slot(slot)) {
		error("refusing '%s': not a backup slot; a key may write only refs/backups/MACHINE/SLOT "
		      "(SLOT daily, weekly, biweekly or snapshot) of %s", u->ref, list);
		goto out;
	}
	for (i = 0; i < nm; i++)
		allowed |= !strcmp(machines[i], machine);
	if (!allowed) {
		error("refusing '%s': this key may write only the backups of %s", u->ref, list);
		goto out;
	}
	if (git_oid_is_zero(&u->new)) {
		error("refusing to delete '%s': the receiver is append-only; its own rotate expires backups",
		      u->ref);
		goto out;
	}
	if (git_commit_lookup(&c, r->git, &u->new) < 0 || git_commit_parentcount(c) != 0 ||
	    snapshot_read(r, u->new.id, &nb) < 0) {
		error("refusing '%s': %s is not a backup", u->ref, short_id(&u->new, a));
		goto out;
	}
	if (strcmp(nb->machine, machine)) {
		error("refusing '%s': backup %s is one of machine '%s'", u->ref, short_id(&u->new, a), nb->machine);
		goto out;
	}
	if (!strcmp(slot, SLOT_SNAPSHOT) != !strcmp(nb->kind, "snapshot")) {
		error("refusing '%s': backup %s is %s", u->ref, short_id(&u->new, a),
		      strcmp(nb->kind, "snapshot") ? "an automatic backup, not a snapshot" :
						     "a manual snapshot, not an automatic backup");
		goto out;
	}
	if (!git_oid_is_zero(&u->old) && snapshot_read(r, u->old.id, &ob) == 0) {
		time_t tn, to;

		if (arrivals_read(r, machine, &arr) < 0) {
			ret = -1;
			goto out;
		}
		tn = receiver_date(nb->start.tv_sec, arrivals_get(arr, u->new.id, now));
		to = receiver_date(ob->start.tv_sec, arrivals_get(arr, u->old.id, now));
		/* Within one second, the backups' own starts to the nanosecond. */
		if (tn < to || (tn == to && nb->start.tv_sec == ob->start.tv_sec &&
				nb->start.tv_nsec < ob->start.tv_nsec)) {
			error("refusing to rewind '%s': backup %s (%s) is older than %s (%s), which it would replace",
			      u->ref, short_id(&u->new, a), date_str(tn, da, sizeof(da)),
			      short_id(&u->old, b), date_str(to, db, sizeof(db)));
			goto out;
		}
	}
	ret = 0;
out:
	arrivals_free(arr);
	backup_info_free(nb);
	backup_info_free(ob);
	git_commit_free(c);
	strbuf_release(&sb);
	free(machine);
	free(list);
	return ret;
}

int receiver_check(struct repo *r, char *const *machines, size_t nm, int others_hidden,
		   const struct receiver_update *u, size_t n, time_t now, int *verdicts)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < n; i++) {
		int one = check_one(r, machines, nm, others_hidden, &u[i], now);

		if (one < 0)
			return -1;
		if (verdicts)
			verdicts[i] = one;
		if (one == 1)
			ret = 1;
	}
	return ret;
}

/* 1 when a slot of the machine other than those the updates move names id. */
static int held_elsewhere(struct repo *r, const char *machine, const git_oid *id,
			  const struct receiver_update *u, size_t n)
{
	const char *const *s;
	size_t i;
	int held = 0;

	for (s = client_slots; !held && s < client_slots + 4; s++) {
		char *name = xasprintf(PREFIX "%s/%s", machine, *s);
		git_oid target;
		int moved = 0;

		for (i = 0; i < n; i++)
			if (!strcmp(u[i].ref, name)) {
				moved = 1;
				held = git_oid_equal(&u[i].new, id);
			}
		if (!moved && git_reference_name_to_id(&target, r->git, name) == 0)
			held = git_oid_equal(&target, id);
		free(name);
	}
	return held;
}

/* Makes the kept ref, its one reflog entry dated when the backup arrived. */
static int make_kept(struct repo *r, const char *machine, const git_oid *id, time_t arrival)
{
	char hex[GIT_OID_HEXSZ + 1], host[256] = "localhost";
	char *name, *email = NULL;
	git_reference *ref = NULL;
	git_reflog *log = NULL;
	git_signature *sig = NULL;
	int ret = 0;

	git_oid_tostr(hex, sizeof(hex), id);
	name = xasprintf(PREFIX "%s/kept/%s", machine, hex);
	if (git_reference_lookup(&ref, r->git, name) == 0)
		goto out;
	gethostname(host, sizeof(host) - 1);
	email = xasprintf("backup@%s", host);
	if (git_reference_create(&ref, r->git, name, id, 0, "backup: receiver kept") < 0 ||
	    git_signature_new(&sig, "backup", email, arrival, 0) < 0 ||
	    git_reflog_read(&log, r->git, name) < 0) {
		ret = error_git("cannot keep a replaced backup");
		goto out;
	}
	while (git_reflog_entrycount(log))
		git_reflog_drop(log, 0, 0);
	if (git_reflog_append(log, id, sig, "backup: receiver kept; dated by its arrival") < 0 ||
	    git_reflog_write(log) < 0)
		ret = error_git("cannot log a replaced backup");
out:
	git_reflog_free(log);
	git_signature_free(sig);
	git_reference_free(ref);
	free(email);
	free(name);
	return ret;
}

int receiver_keep_replaced(struct repo *r, const struct receiver_update *u, size_t n, time_t now)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < n && !ret; i++) {
		struct arrivals *arr = NULL;
		char *machine = NULL;
		const char *slot;

		if (git_oid_is_zero(&u[i].old) || split_ref(u[i].ref, &machine, &slot) < 0)
			continue;
		if (!held_elsewhere(r, machine, &u[i].old, u, n)) {
			ret = arrivals_read(r, machine, &arr);
			if (!ret)
				ret = make_kept(r, machine, &u[i].old, arrivals_get(arr, u[i].old.id, now));
		}
		arrivals_free(arr);
		free(machine);
	}
	return ret;
}

int receiver_learn_weekly_day(struct repo *r, const struct receiver_update *u, size_t n, time_t now)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < n && !ret; i++) {
		struct backup_info *b = NULL;
		struct arrivals *arr = NULL;
		struct schedule s;
		char *machine = NULL;
		const char *slot;

		if (git_oid_is_zero(&u[i].new) || split_ref(u[i].ref, &machine, &slot) < 0 ||
		    strcmp(slot, SLOT_WEEKLY)) {
			free(machine);
			continue;
		}
		if (schedule_get(r, machine, &s) == 0 && !s.day_set && snapshot_read(r, u[i].new.id, &b) == 0 &&
		    (ret = arrivals_read(r, machine, &arr)) == 0) {
			s.weekday = local_weekday(receiver_date(b->start.tv_sec, arrivals_get(arr, u[i].new.id, now)));
			s.day_set = 1;
			s.window_set = 0;
			ret = schedule_set(r, machine, &s);
		}
		arrivals_free(arr);
		backup_info_free(b);
		free(machine);
	}
	return ret;
}

struct dating {
	struct arrivals *arr;
	time_t now;
};

/* A backup no entry dates arrived, as far as we know, now. */
static time_t by_arrival(const struct backup_info *b, void *ctx)
{
	struct dating *d = ctx;

	return receiver_date(b->start.tv_sec, arrivals_get(d->arr, b->id, d->now));
}

int receiver_plan(struct repo *r, const char *machine, int weekly_day, time_t now, struct slot_plan *out)
{
	struct dating d = { NULL, now };
	size_t i;

	memset(out, 0, sizeof(*out));
	if (arrivals_read(r, machine, &d.arr) < 0)
		return -1;
	if (slots_plan_dated(r, machine, weekly_day, now, by_arrival, &d, out) < 0) {
		arrivals_free(d.arr);
		return -1;
	}
	/*
	 * The receiver moves no slot: a backup keeps its refs while the
	 * rules give it a slot, or while a slot of it is younger than the
	 * rules' oldest; otherwise all of them go.
	 */
	for (i = 0; i < out->n; i++) {
		struct slot_change *c = &out->c[i];
		int keep = c->after ||
			   ((c->before & (SLOT_BIT_DAILY | SLOT_BIT_WEEKLY | SLOT_BIT_BIWEEKLY)) &&
			    now - c->created <= RET_MAX_AGE);

		c->after = keep ? c->before : 0;
	}
	arrivals_free(d.arr);
	return 0;
}

/* Deletes name (and its reflog) when it still names id. */
static int delete_if(struct repo *r, const char *name, const unsigned char *id)
{
	git_reference *ref = NULL;
	int err = git_reference_lookup(&ref, r->git, name);

	if (err == GIT_ENOTFOUND)
		return 0;
	if (err < 0)
		return error_git("cannot read a ref");
	if (git_reference_target(ref) && !memcmp(git_reference_target(ref)->id, id, SHA1_LEN)) {
		if (git_reference_delete(ref) < 0) {
			git_reference_free(ref);
			return error_git("cannot delete an expired backup's ref");
		}
		git_reflog_delete(r->git, name);
	}
	git_reference_free(ref);
	return 0;
}

int receiver_apply(struct repo *r, const struct slot_plan *p)
{
	size_t i, s;
	int ret = 0;

	for (i = 0; i < p->n && !ret; i++) {
		const struct slot_change *c = &p->c[i];
		char *name;

		if (c->after)
			continue;
		for (s = 0; s < 4 && !ret; s++) {
			name = xasprintf(PREFIX "%s/%s", p->machine, client_slots[s]);
			ret = delete_if(r, name, c->id);
			free(name);
		}
		if (ret)
			break;
		name = xasprintf(PREFIX "%s/kept/%s", p->machine, c->hex);
		ret = delete_if(r, name, c->id);
		free(name);
	}
	return ret;
}

/* Characters that may stand in the forced command unquoted by us. */
static int safe_path(const char *p)
{
	return !strpbrk(p, "'\"\\\n\r");
}

char *receiver_key_line(const char *exe, const char *dir, char *const *machines, size_t nm,
			const char *key)
{
	struct strbuf sb = STRBUF_INIT;
	const char *p = key, *type_end, *b64, *b64_end;
	size_t i;

	while (*p == ' ' || *p == '\t')
		p++;
	if (strstr(key, "PRIVATE KEY")) {
		error("the key file holds a private key; give the client's public key (the .pub file)");
		return NULL;
	}
	type_end = p + strcspn(p, " \t\n");
	if (!(!strncmp(p, "ssh-", 4) || !strncmp(p, "ecdsa-", 6) || !strncmp(p, "sk-", 3)) || !*type_end) {
		error("the key file does not hold an OpenSSH public key line (TYPE BASE64 [COMMENT]); "
		      "give the client's .pub file");
		return NULL;
	}
	b64 = type_end + strspn(type_end, " \t");
	b64_end = b64 + strcspn(b64, " \t\n");
	if (b64_end == b64 || strspn(b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
				      (size_t)(b64_end - b64)) {
		error("the key file does not hold an OpenSSH public key line (TYPE BASE64 [COMMENT]); "
		      "give the client's .pub file");
		return NULL;
	}
	if (!safe_path(exe) || !safe_path(dir)) {
		error("cannot write a forced command for '%s': the path holds a quote, a backslash or a newline",
		      safe_path(exe) ? dir : exe);
		return NULL;
	}
	/* sshd runs the command with the user's shell: single quotes keep the paths whole. */
	strbuf_addf(&sb, "restrict,command=\"'%s' receiver serve '%s'", exe, dir);
	for (i = 0; i < nm; i++)
		strbuf_addf(&sb, " --machine %s", machines[i]);
	strbuf_addstr(&sb, "\" ");
	strbuf_add(&sb, p, type_end - p);
	strbuf_addch(&sb, ' ');
	strbuf_add(&sb, b64, b64_end - b64);
	/* The comment, kept to tell keys apart, without a line break. */
	p = b64_end + strspn(b64_end, " \t");
	if (*p && *p != '\n') {
		strbuf_addch(&sb, ' ');
		strbuf_add(&sb, p, strcspn(p, "\r\n"));
	}
	return strbuf_detach(&sb, NULL);
}

/* git's sq_dequote: 'a'\''b' -> a'b; NULL when s is not quoted that way. */
static char *sq_dequote(const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	if (*s != '\'')
		return NULL;
	for (;;) {
		s++;
		while (*s && *s != '\'')
			strbuf_addch(&sb, *s++);
		if (!*s)
			goto bad;
		s++;		/* the closing quote */
		if (!*s)
			return strbuf_detach(&sb, NULL);
		if (s[0] == '\\' && (s[1] == '\'' || s[1] == '!') && s[2] == '\'') {
			strbuf_addch(&sb, s[1]);
			s += 2;
			continue;
		}
		goto bad;
	}
bad:
	strbuf_release(&sb);
	return NULL;
}

int receiver_parse_command(const char *cmd, const char **service, char **path)
{
	static const char *const services[] = { "receive-pack", "upload-pack" };
	size_t i;

	*path = NULL;
	*service = NULL;
	for (i = 0; i < 2; i++) {
		size_t len = strlen(services[i]);
		const char *p = NULL;

		if (!strncmp(cmd, "git-", 4) && !strncmp(cmd + 4, services[i], len) && cmd[4 + len] == ' ')
			p = cmd + 5 + len;
		else if (!strncmp(cmd, "git ", 4) && !strncmp(cmd + 4, services[i], len) && cmd[4 + len] == ' ')
			p = cmd + 5 + len;
		if (!p)
			continue;
		*path = sq_dequote(p);
		if (!*path || !**path) {
			free(*path);
			*path = NULL;
			return -1;
		}
		*service = services[i];
		return 0;
	}
	return -1;
}
