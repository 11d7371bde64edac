#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "receiver.h"
#include "schedule.h"
#include "slots.h"
#include "snapshot.h"
#include "usage.h"

static const struct {
	unsigned bit;
	const char *name;
} slot_table[] = {
	{ SLOT_BIT_DAILY, SLOT_DAILY },
	{ SLOT_BIT_WEEKLY, SLOT_WEEKLY },
	{ SLOT_BIT_BIWEEKLY, SLOT_BIWEEKLY },
	{ SLOT_BIT_SNAPSHOT, SLOT_SNAPSHOT },
};
#define NSLOTS (sizeof(slot_table) / sizeof(slot_table[0]))

const char *slot_names(unsigned mask, char *buf, size_t len)
{
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < NSLOTS; i++)
		if (mask & slot_table[i].bit)
			n += snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? "," : "", slot_table[i].name);
	if (mask & SLOT_BIT_KEPT)
		snprintf(buf + n, n < len ? len - n : 0, "%skept", n ? "," : "");
	return buf;
}

unsigned slot_bit(const char *name)
{
	size_t i;

	for (i = 0; i < NSLOTS; i++)
		if (!strcmp(slot_table[i].name, name))
			return slot_table[i].bit;
	return !strcmp(name, "kept") ? SLOT_BIT_KEPT : 0;
}

/* The client's dating: a backup counts from its start. */
static time_t by_start(const struct backup_info *b, void *ctx)
{
	(void)ctx;
	return b->start.tv_sec;
}

void slots_plan_rules(struct slot_plan *p, int weekly_day, time_t now)
{
	struct ret_item *items = xcalloc(p->n + 1, sizeof(*items));
	size_t i, j, na = 0;

	for (i = 0; i < p->n; i++) {
		p->c[i].after = p->c[i].before & SLOT_BIT_SNAPSHOT;
		if (p->c[i].automatic)
			items[na++].created = p->c[i].created;
	}
	retention_apply(items, na, weekly_day, now);
	for (i = 0, j = 0; i < p->n; i++)
		if (p->c[i].automatic)
			p->c[i].after |= items[j++].slots;
	free(items);
}

int slots_plan_dated(struct repo *r, const char *machine, int weekly_day, time_t now,
		     slot_date_fn *date, void *ctx, struct slot_plan *out)
{
	struct backup_info **list = NULL;
	size_t n = 0, i, j;

	memset(out, 0, sizeof(*out));
	if (snapshot_list(r, machine, &list, &n) < 0)
		return -1;
	out->machine = xstrdup(machine);
	out->c = xcalloc(n + 1, sizeof(*out->c));
	out->n = n;
	for (i = 0; i < n; i++) {
		struct slot_change *c = &out->c[i];

		memcpy(c->id, list[i]->id, SHA1_LEN);
		memcpy(c->hex, list[i]->hex, sizeof(c->hex));
		c->created = date(list[i], ctx);
		c->automatic = !strcmp(list[i]->kind, "automatic");
		for (j = 0; j < list[i]->nslots; j++)
			c->before |= slot_bit(list[i]->slots[j]);
	}
	slots_plan_rules(out, weekly_day, now);
	snapshot_list_free(list, n);
	return 0;
}

int slots_plan(struct repo *r, const char *machine, int weekly_day, time_t now, struct slot_plan *out)
{
	return slots_plan_dated(r, machine, weekly_day, now, by_start, NULL, out);
}

static int delete_ref(struct repo *r, const char *name)
{
	git_reference *ref = NULL;
	int err = git_reference_lookup(&ref, r->git, name);

	if (err == GIT_ENOTFOUND)
		return 0;
	if (err < 0 || git_reference_delete(ref) < 0) {
		git_reference_free(ref);
		return error_git("cannot delete a slot");
	}
	git_reference_free(ref);
	git_reflog_delete(r->git, name);
	return 0;
}

int slots_apply(struct repo *r, const struct slot_plan *p)
{
	size_t s, i;
	int ret = 0;

	/* Set every slot that has a holder first, then delete the empty ones. */
	for (s = 0; s < NSLOTS && !ret; s++) {
		for (i = 0; i < p->n; i++) {
			const struct slot_change *c = &p->c[i];

			if ((c->after & slot_table[s].bit) && !(c->before & slot_table[s].bit)) {
				ret = snapshot_set_slot(r, p->machine, slot_table[s].name, c->id, "backup: rotate");
				break;
			}
		}
	}
	for (s = 0; s < NSLOTS && !ret; s++) {
		int held = 0, was = 0;
		char *name;

		for (i = 0; i < p->n; i++) {
			held |= !!(p->c[i].after & slot_table[s].bit);
			was |= !!(p->c[i].before & slot_table[s].bit);
		}
		if (held || !was)
			continue;
		name = xasprintf("refs/backups/%s/%s", p->machine, slot_table[s].name);
		ret = delete_ref(r, name);
		free(name);
	}
	/* Kept refs (from a receiver) are not slots: the backups got theirs above. */
	for (i = 0; i < p->n && !ret; i++) {
		char *name;

		if (!(p->c[i].before & SLOT_BIT_KEPT))
			continue;
		name = xasprintf("refs/backups/%s/kept/%s", p->machine, p->c[i].hex);
		ret = delete_ref(r, name);
		free(name);
	}
	return ret;
}

int slots_rotate(struct repo *r, const char *machine, time_t now, int dry_run, struct slot_plan *p)
{
	struct schedule sched;

	memset(p, 0, sizeof(*p));
	if (schedule_get(r, machine, &sched) < 0)
		return -1;
	/* A receiver keeps what the rules keep by its own dates, and moves no slot. */
	if (receiver_is(r)) {
		if (receiver_plan(r, machine, sched.weekday, now, p) < 0)
			return -1;
		return dry_run ? 0 : receiver_apply(r, p);
	}
	if (slots_plan(r, machine, sched.weekday, now, p) < 0)
		return -1;
	return dry_run ? 0 : slots_apply(r, p);
}

void slot_plan_release(struct slot_plan *p)
{
	free(p->machine);
	free(p->c);
	memset(p, 0, sizeof(*p));
}

int slots_delete_all(struct repo *r, const char *machine, size_t *nbackups)
{
	struct backup_info **list = NULL;
	size_t n = 0, s;
	int ret = 0;

	*nbackups = 0;
	if (snapshot_list(r, machine, &list, &n) < 0)
		return -1;
	*nbackups = n;
	snapshot_list_free(list, n);
	for (s = 0; s < NSLOTS && !ret; s++) {
		char *name = xasprintf("refs/backups/%s/%s", machine, slot_table[s].name);

		ret = delete_ref(r, name);
		free(name);
	}
	return ret;
}
