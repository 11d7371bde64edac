/*
 * Unit test of gc_reclaim(), the space reclamation of rotate and cancel:
 * it defers (ERR_LOCKED, nothing touched) while another job holds the
 * repository, counts without deleting on a dry run, which only needs the
 * lock shared, treats the commits it is told to drop as gone, and then
 * frees what no slot needs while the kept backup still restores whole.
 */
#include "gc.h"
#include "restore.h"
#include "unit.h"

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
out:
	free(text);
	free(src);
	backup_info_free(old);
	backup_info_free(new);
	return unit_finish();
}
