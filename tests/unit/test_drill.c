/*
 * Unit test of lib/drill.c: a drill of a sound backup finds nothing and
 * removes its scratch machine (or keeps it when asked), reporting each disk
 * and the machine file through its callback; a drill of a damaged backup
 * names the damage; the scratch machines of killed drills are cleared.
 * And the XML escaping of the JUnit report (strbuf_add_xml()).
 */
#include <signal.h>

#include "drill.h"
#include "unit.h"

static size_t calls[8];

static void progress(const struct drill *d, size_t i, size_t first, void *data)
{
	(void)d;
	(void)first;
	(void)data;
	if (i < 8)
		calls[i]++;
}

/* A drill of web's newest backup; the caller releases it. */
static void drill(struct drill *d, struct backup_info *b, int keep)
{
	memset(d, 0, sizeof(*d));
	memset(calls, 0, sizeof(calls));
	d->repo = repo;
	d->machine = "web";
	d->b = b;
	d->keep = keep;
	d->progress = progress;
	CHECK(drill_start(d, cfg->machines_root) == 0);
	drill_run(d);
	CHECK(drill_finish(d) == 0);
}

static void check_xml(const char *in, const char *want)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_add_xml(&sb, in);
	if (strcmp(sb.buf, want)) {
		fprintf(UNIT_ERR, "strbuf_add_xml: '%s' instead of '%s'\n", sb.buf, want);
		failed = 1;
	}
	strbuf_release(&sb);
}

int main(void)
{
	struct backup_info *b = NULL;
	struct strbuf line = STRBUF_INIT;
	struct drill d;
	char *text, *scratch;
	struct stat st;

	check_xml("a<b>&\"'", "a&lt;b&gt;&amp;&quot;&apos;");
	check_xml("l\n\tr\r", "l&#10;&#9;r&#13;");
	check_xml("caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac");
	check_xml("\x01\xff\xc0\x80\xed\xa0\x80", "\\x01\\xff\\xc0\\x80\\xed\\xa0\\x80");

	unit_setup("test_drill");
	b = backup_web();
	if (!b)
		return 1;

	/* A killed drill's scratch machine (its process is gone) is cleared;
	 * one whose process lives is not. */
	put("mroot/.drill-web-2147483646/disks/root/f", "x");
	text = xasprintf("mroot/.drill-web-%ld/f", (long)getppid());
	put(text, "x");
	drill(&d, b, 0);
	CHECK(!exists("mroot/.drill-web-2147483646") && exists(text));
	free(text);

	/* Sound: every disk verified, no problem, and the scratch is gone. */
	CHECK(d.nproblems == 0 && d.ndisks == 2 && !d.kept);
	CHECK(d.files == 3 && d.disks[0].vr.files == 2 && d.disks[1].vr.files == 1);
	CHECK(calls[0] == 1 && calls[1] == 1 && calls[2] == 1);
	CHECK(d.scratch && stat(d.scratch, &st) < 0);
	drill_release(&d);

	/* Kept: the scratch machine stays, with its file and disks. */
	drill(&d, b, 1);
	CHECK(d.nproblems == 0 && d.kept);
	scratch = xasprintf("%s/web.conf", d.scratch);
	CHECK(stat(scratch, &st) == 0);
	free(scratch);
	scratch = xstrdup(d.scratch);
	drill_release(&d);
	CHECK(stat(scratch, &st) == 0 && remove_tree(scratch) == 0);
	free(scratch);

	/* Damaged: the drill names what it could not restore. */
	damage_packs();
	backup_info_free(b);
	b = NULL;
	CHECK(snapshot_resolve(repo, "web", &b) == 0);
	if (b) {
		drill(&d, b, 0);
		CHECK(d.nproblems > 0 && d.disks[0].nproblems + d.disks[1].nproblems == d.nproblems);
		drill_problem_line(&line, &d.problems[0]);
		CHECK(!strncmp(line.buf, "root:/var/log/big: ", 19));
		CHECK(d.disks[0].restore_failed == 0 && d.disks[1].nproblems == 0);
		CHECK(d.scratch && stat(d.scratch, &st) < 0);
		drill_release(&d);
	}
	strbuf_release(&line);
	backup_info_free(b);
	return unit_finish();
}
