/*
 * Unit test of the state tree (repo.h): repo_state_update() adds, changes
 * and removes entries at any depth ("keys/ID", as the encryption keys
 * will be) in one commit of refs/backup/state, keeps every entry it was
 * not given, and a state change through repo_state_set() keeps them too;
 * repo_state_read() reads each back and tells a missing one.
 */
#include "unit.h"

static int read_is(const char *name, const char *want)
{
	struct strbuf sb = STRBUF_INIT;
	int ok = repo_state_read(repo, name, &sb) == 0 && sb.len == strlen(want) && !memcmp(sb.buf, want, sb.len);

	strbuf_release(&sb);
	return ok;
}

static int missing(const char *name)
{
	struct strbuf sb = STRBUF_INIT;
	int err = repo_state_read(repo, name, &sb);

	strbuf_release(&sb);
	return err == ERR_NOTFOUND;
}

/* The number of commits in the reflog of the state ref. */
static size_t reflog_len(void)
{
	git_reflog *log = NULL;
	size_t n = 0;

	if (git_reflog_read(&log, repo->git, REPO_STATE_REF) == 0)
		n = git_reflog_entrycount(log);
	git_reflog_free(log);
	return n;
}

int main(void)
{
	struct repo_state_entry add[] = {
		{ "keys/k1", "key one", 7 },
		{ "keys/k2", "key two", 7 },
		{ "other", "x", 1 },
	};
	struct repo_state_entry change[] = {
		{ "keys/k1", NULL, 0 },
		{ "keys/sub/k3", "deep", 4 },
	};
	struct repo_state_entry drop[] = {
		{ "keys/k2", NULL, 0 },
		{ "keys/sub/k3", NULL, 0 },
	};
	size_t n;
	char *v;

	unit_setup("test_state");
	CHECK(repo->version == REPO_FORMAT);
	CHECK(read_is("format", "backup repository format 2\n"));
	CHECK(read_is("state", ""));
	CHECK(missing("keys/k1"));

	n = reflog_len();
	CHECK(repo_state_update(repo, add, 3, "backup: test add") == 0);
	CHECK(reflog_len() == n + 1);
	CHECK(read_is("keys/k1", "key one") && read_is("keys/k2", "key two") && read_is("other", "x"));
	CHECK(read_is("format", "backup repository format 2\n"));

	/* A state change keeps the entries it does not know. */
	CHECK(repo_state_set(repo, "machine.web.enabled", "true") == 0);
	CHECK(read_is("keys/k2", "key two") && read_is("other", "x"));
	v = repo_state_get(repo, "machine.web.enabled");
	CHECK(v && !strcmp(v, "true"));
	free(v);
	CHECK(repo_state_get_bool(repo, "machine.web.enabled", 0) == 1);

	/* Removing one entry and adding one deeper, at once. */
	CHECK(repo_state_update(repo, change, 2, "backup: test change") == 0);
	CHECK(missing("keys/k1") && read_is("keys/k2", "key two") && read_is("keys/sub/k3", "deep"));

	/* A folder left empty goes. */
	CHECK(repo_state_update(repo, drop, 2, "backup: test drop") == 0);
	CHECK(missing("keys") && read_is("other", "x"));
	CHECK(repo_state_get_bool(repo, "machine.web.enabled", 0) == 1);

	/* Unsetting a key that is not there changes nothing, not even the ref. */
	n = reflog_len();
	CHECK(repo_state_unset(repo, "machine.nosuch.enabled") == 0);
	CHECK(reflog_len() == n);
	CHECK(repo_state_check(repo) == 0);
	return unit_finish();
}
