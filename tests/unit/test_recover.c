/*
 * Unit test of lib/recover.c: a backup restored as a new machine (and a
 * half-made one cleared first), into an existing machine beside its disks,
 * and with overwrite; the space rule in each case, a busy machine, and
 * that a refused restore leaves the machine file as it was.
 */
#include <sys/file.h>

#include "recover.h"
#include "unit.h"

/* 1 if base/name holds text. */
static int holds(const char *name, const char *text)
{
	char *got = slurp(name);
	int r = !strcmp(got, text);

	free(got);
	return r;
}

/* Machine name as loaded now (NULL if it does not load). */
static struct machine *load(const char *name)
{
	struct machine *m = NULL;

	return machine_load(&m, cfg, name) < 0 ? NULL : m;
}

int main(void)
{
	struct backup_info *b = NULL;
	struct recover_result res;
	struct machine *m;
	char *text, *before;
	int fd, lock;

	unit_setup("test_recover");
	b = backup_web();
	if (!b)
		return 1;

	/* --new: the disks as folders under machines.root, then the file. */
	CHECK(recover_new(repo, cfg, b, "copy", 0, &res) == 0);
	CHECK(res.ndisks == 2 && res.stats.files == 3 && res.required == 200 << 20);
	CHECK(res.config && strstr(res.config, "/machines/copy.conf"));
	CHECK(holds("mroot/copy/disks/root/etc/hostname", "web\n"));
	CHECK(holds("mroot/copy/disks/data/www/index.html", "<p>hello</p>\n"));
	CHECK(!exists("mroot/copy/.restoring"));
	recover_release(&res);
	m = load("copy");
	CHECK(m && m->ndisks == 2 && m->nprofiles == 1);
	CHECK(m && strstr(m->disks[0].source, "/mroot/copy/disks/root") && strstr(m->disks[0].mount, "/src"));
	machine_free(m);

	/* A name that is taken, or not a name, is refused. */
	backup_info_free(b);
	CHECK(snapshot_resolve(repo, "web", &b) == 0);
	CHECK(recover_new(repo, cfg, b, "copy", 0, &res) == -1 && !res.config);
	recover_release(&res);
	CHECK(recover_new(repo, cfg, b, "../x", 0, &res) == -1);
	recover_release(&res);

	/* What a killed restore left (.restoring unlocked) is cleared; a
	 * folder that is something else is not. */
	put("mroot/ghost/.restoring", "");
	put("mroot/ghost/disks/root/junk", "x");
	CHECK(recover_new(repo, cfg, b, "ghost", 0, &res) == 0);
	CHECK(!exists("mroot/ghost/disks/root/junk") && exists("mroot/ghost/disks/root/etc/hostname"));
	recover_release(&res);
	backup_info_free(b);
	CHECK(snapshot_resolve(repo, "web", &b) == 0);
	put("mroot/other/keep", "mine");
	CHECK(recover_new(repo, cfg, b, "other", 0, &res) == -1);
	CHECK(holds("mroot/other/keep", "mine") && !exists("machines/other.conf"));
	recover_release(&res);

	/* --existing: new labels and a new profile beside what is there. */
	CHECK(recover_existing(repo, cfg, b, "copy", 0, 0, 0, &res) == 0);
	CHECK(res.ndisks == 2 && !strcmp(res.disks[0].label, "root-r1") && !strcmp(res.disks[1].label, "data-r1"));
	CHECK(res.profile && !strncmp(res.profile, "restore-", 8) && res.nremoved == 0);
	CHECK(res.unallocated == (uint64_t)(1024 - 200) << 20);
	CHECK(holds("mroot/copy/disks/root-r1/etc/hostname", "web\n"));
	recover_release(&res);
	m = load("copy");
	CHECK(m && m->ndisks == 4 && m->nprofiles == 2);
	CHECK(m && machine_profile(m, "default") && machine_disk(m, "root"));
	machine_free(m);

	/* Busy: another job holds the machine's lock. */
	lock = repo_lock(repo, "copy", 0);
	CHECK(lock >= 0);
	CHECK(recover_existing(repo, cfg, b, "copy", 0, 0, 0, &res) == ERR_LOCKED);
	recover_release(&res);
	repo_unlock(lock);

	/* The space rule: 200M do not fit beside 100M in a plan of 250M, nor
	 * with overwrite in a plan of 150M; the machine file stays as it was. */
	put("mroot/tight/disks/old/f", "old\n");
	text = xasprintf("# the tight machine\n[machine]\n\tplan = 150M\n"
			 "[disk \"old\"]\n\tsource = %s/mroot/tight/disks/old\n\tsize = 100M\n"
			 "[profile \"p\"]\n\troot = sda\n\tsda = old\n", base);
	define("tight", text);
	free(text);
	before = slurp("machines/tight.conf");
	CHECK(recover_existing(repo, cfg, b, "tight", 0, 0, 0, &res) == ERR_NOSPACE);
	recover_release(&res);
	CHECK(recover_existing(repo, cfg, b, "tight", 1, 0, 0, &res) == ERR_NOSPACE);
	recover_release(&res);
	CHECK(holds("machines/tight.conf", before) && holds("mroot/tight/disks/old/f", "old\n"));
	free(before);

	/* With a plan of 250M, overwrite fits once the old disk is gone: it
	 * is deleted first, and the file keeps its comment but no old key. */
	text = slurp("machines/tight.conf");
	memcpy(strstr(text, "150M"), "250M", 4);
	put("machines/tight.conf", text);
	free(text);
	CHECK(recover_existing(repo, cfg, b, "tight", 0, 0, 0, &res) == ERR_NOSPACE);
	recover_release(&res);
	CHECK(recover_existing(repo, cfg, b, "tight", 1, 0, 0, &res) == 0);
	CHECK(res.nremoved == 1 && res.removed[0].deleted && !strcmp(res.removed[0].label, "old"));
	CHECK(res.nremoved_profiles == 1 && !strcmp(res.removed_profiles[0], "p"));
	CHECK(!exists("mroot/tight/disks/old") && exists("mroot/tight/disks/root-r1/etc/hostname"));
	recover_release(&res);
	text = slurp("machines/tight.conf");
	CHECK(strstr(text, "# the tight machine") && !strstr(text, "\"old\"") && !strstr(text, "\"p\""));
	free(text);
	m = load("tight");
	CHECK(m && m->ndisks == 2 && m->nprofiles == 1);
	machine_free(m);

	/* Overwrite of a machine whose disks backup did not make: they are
	 * dropped from its file, and their data is left where it is. */
	CHECK(recover_existing(repo, cfg, b, "web", 1, 0, 0, &res) == 0);
	CHECK(res.nremoved == 2 && !res.removed[0].deleted && !res.removed[1].deleted);
	CHECK(holds("src/etc/hostname", "web\n"));
	recover_release(&res);

	/* A half-made machine is cleared only when no restore holds it. */
	put("mroot/busy/.restoring", "");
	text = at("mroot/busy/.restoring");
	fd = open(text, O_RDWR);
	free(text);
	CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0);
	CHECK(recover_new(repo, cfg, b, "busy", 0, &res) == -1 && exists("mroot/busy/.restoring"));
	recover_release(&res);
	close(fd);

	backup_info_free(b);
	return unit_finish();
}
