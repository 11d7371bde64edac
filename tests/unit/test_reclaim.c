/*
 * Unit test of what rotate and cancel do through the library. gc_reclaim()
 * defers (ERR_LOCKED, nothing touched) while another job holds the
 * repository, counts without deleting on a dry run, which only needs the
 * lock shared, treats the commits it is told to drop as gone, and then
 * frees what no slot needs while the kept backup still restores whole.
 * slots_rotate() plans without moving a ref on a dry run and applies the
 * same plan otherwise. service_cancel() waits for a busy machine, then
 * disables it, deletes its slots, and leaves its data to gc_reclaim().
 */
#include <time.h>

#include "gc.h"
#include "restore.h"
#include "service.h"
#include "slots.h"
#include "unit.h"

/* The number of kept backups of machine. */
static size_t kept(const char *machine)
{
	struct backup_info **list = NULL;
	size_t n = 0;

	CHECK(snapshot_list(repo, machine, &list, &n) == 0);
	snapshot_list_free(list, n);
	return n;
}

/* Text of about 300 KiB that differs with seed, so that each backup adds data. */
static char *content(unsigned seed)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned i;

	for (i = 0; i < 20000; i++)
		strbuf_addf(&sb, "line %u of version %u\n", i * 2654435761u, seed);
	return strbuf_detach(&sb, NULL);
}

int main(void)
{
	struct backup_info *old = NULL, *new = NULL;
	struct restore_stats rs = { 0 };
	struct gc_stats st;
	char *text, *src, *got, *out;
	int held;

	unit_setup("test_reclaim");
	src = at("src");
	text = xasprintf("[machine]\n\tplan = 1G\n[disk \"root\"]\n\tsource = %s\n\tsize = 100M\n", src);
	define("web", text);
	free(text);
	text = content(1);
	put("src/a", text);
	free(text);
	CHECK(backup_machine("web", "daily", &old) == 0);
	text = content(2);
	put("src/a", text);
	CHECK(backup_machine("web", "daily", &new) == 0);
	if (!old || !new)
		goto out;

	/* Another job reads the repository: reclamation waits for a later call. */
	held = repo_lock_shared(repo, 0);
	CHECK(held >= 0);
	memset(&st, 0xff, sizeof(st));
	CHECK(gc_reclaim(repo, 0, 0, NULL, 0, &st) == ERR_LOCKED);
	CHECK(st.packs_before == 0 && st.dead_objects == 0);

	/* A dry run shares the lock with it, counts, and deletes nothing. */
	CHECK(gc_reclaim(repo, 0, 1, NULL, 0, &st) == 0);
	CHECK(st.dead_objects > 0 && st.live_objects > 0 && st.dead_bytes > 0);
	CHECK(st.packs_before > 0);

	/* Told to drop the kept backup too, it finds nothing live. */
	CHECK(gc_reclaim(repo, 0, 1, (const unsigned char (*)[SHA1_LEN])new->id, 1, &st) == 0);
	CHECK(st.live_objects == 0 && st.dead_objects > 0);
	repo_unlock(held);

	/* Alone, it reclaims: the old backup's data goes, the new one stays. */
	CHECK(gc_reclaim(repo, 0, 0, NULL, 0, &st) == 0);
	CHECK(st.dead_objects > 0 && st.packs_deleted + st.packs_rewritten > 0);
	CHECK(st.bytes_after < st.bytes_before);
	CHECK(gc_reclaim(repo, 0, 1, NULL, 0, &st) == 0);
	CHECK(st.dead_objects == 0 && st.live_objects > 0);

	out = at("out");
	CHECK(restore_tree(repo, new->disks[0].tree, out, &rs) == 0 && rs.errors == 0);
	got = slurp("out/a");
	CHECK(!strcmp(got, text));
	free(got);
	free(out);

	/* Rotation a month on: the dry run plans and moves nothing, the real
	 * one leaves exactly the backups its plan keeps. */
	{
		struct slot_plan plan;
		time_t later = time(NULL) + 30 * 24 * 60 * 60;
		size_t k, keep = 0;

		CHECK(slots_rotate(repo, "web", later, 1, &plan) == 0);
		CHECK(plan.machine && plan.n == 1 && kept("web") == 1);
		for (k = 0; k < plan.n; k++)
			keep += plan.c[k].after != 0;
		slot_plan_release(&plan);
		CHECK(slots_rotate(repo, "web", later, 0, &plan) == 0);
		slot_plan_release(&plan);
		CHECK(kept("web") == keep);
	}

	/* Cancel: refused while the machine is busy, then every slot goes,
	 * enable is refused for a day, and reclamation frees the data. */
	{
		size_t nb = 99;
		int lock = repo_lock(repo, "web", 0);

		CHECK(lock >= 0);
		CHECK(service_cancel(repo, "web", time(NULL), 0, &nb) == ERR_LOCKED && nb == 0);
		repo_unlock(lock);
		backup_info_free(old);
		CHECK(backup_machine("web", "daily", &old) == 0);
		CHECK(kept("web") == 1);
		CHECK(service_enable(repo, "web") == 0 && service_is_enabled(repo, "web"));
		CHECK(service_cancel(repo, "web", time(NULL), 0, &nb) == 0 && nb == 1);
		CHECK(kept("web") == 0 && !service_is_enabled(repo, "web"));
		CHECK(service_cancel_until(repo, "web") > time(NULL) + 23 * 60 * 60);
		CHECK(service_enable(repo, "web") < 0);
		CHECK(gc_reclaim(repo, 0, 0, NULL, 0, &st) == 0 && st.live_objects == 0);
	}
out:
	free(text);
	free(src);
	backup_info_free(old);
	backup_info_free(new);
	return unit_finish();
}
