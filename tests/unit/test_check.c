/*
 * Unit test of check_repo(): a sound repository is sound with and without
 * reading the data; a damaged pack is found only by reading the data, and
 * the damaged blob is named with its backup and path; a damaged dedup
 * sidecar is counted apart.
 */
#include "check.h"
#include "unit.h"

struct seen {
	int n;
	char what[16], path[64], machine[16];
};

static void on_damaged(const char *hex, const char *what, const struct backup_info *b, const char *path,
		       void *data)
{
	struct seen *s = data;

	CHECK(strlen(hex) == 40);
	s->n++;
	snprintf(s->what, sizeof(s->what), "%s", what);
	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(s->machine, sizeof(s->machine), "%s", b->machine);
}

/* Appends a byte to every dedup sidecar. */
static void damage_sidecars(void)
{
	char *dir = at("repo/backup/dedup");
	char **names = NULL;
	size_t n = 0, i;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY), fd, k = 0;

	CHECK(dfd >= 0 && read_dir_names(dfd, &names, &n) == 0);
	for (i = 0; i < n; i++) {
		if (!strstr(names[i], ".sdx"))
			continue;
		fd = openat(dfd, names[i], O_WRONLY | O_APPEND);
		CHECK(fd >= 0 && write(fd, "x", 1) == 1);
		close(fd);
		k++;
	}
	CHECK(k > 0);
	free_strv(names, n);
	close(dfd);
	free(dir);
}

int main(void)
{
	struct check_report rep = { 0 };
	struct backup_info *b;
	struct seen seen = { 0 };

	unit_setup("test_check");
	b = backup_web();
	if (!b)
		return 1;
	backup_info_free(b);

	CHECK(check_repo(repo, &rep) == 0);
	CHECK(rep.packs > 0 && rep.damaged_packs == 0 && rep.backups == 1 && rep.objects >= 6);
	CHECK(rep.bytes == 0 && rep.damaged == 0 && rep.index_damaged == 0);
	memset(&rep, 0, sizeof(rep));
	rep.read_data = 1;
	CHECK(check_repo(repo, &rep) == 0);
	CHECK(rep.bytes >= 200000 && rep.damaged == 0);

	/* A flipped byte inside a blob: the object is still listed, so only
	 * reading the data finds it. */
	damage_packs();
	memset(&rep, 0, sizeof(rep));
	rep.damaged_object = on_damaged;
	rep.data = &seen;
	CHECK(check_repo(repo, &rep) == 0 && seen.n == 0);
	rep.read_data = 1;
	CHECK(check_repo(repo, &rep) == ERR_CORRUPT);
	CHECK(rep.damaged == 1 && rep.damaged_packs == 1 && seen.n == 1);
	CHECK(!strcmp(seen.what, "blob") && !strcmp(seen.path, "root:/var/log/big") && !strcmp(seen.machine, "web"));

	/* A sidecar that fails its checksum is index damage, not data damage. */
	damage_sidecars();
	memset(&rep, 0, sizeof(rep));
	CHECK(check_repo(repo, &rep) == ERR_CORRUPT);
	CHECK(rep.index_damaged > 0 && rep.damaged == 0 && rep.damaged_packs == 0);
	return unit_finish();
}
