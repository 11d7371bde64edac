#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "hash.h"
#include "keys.h"
#include "strbuf.h"
#include "usage.h"

#define ENCRYPTION_HEAD "backup-encryption 1\ncipher aes-256-gcm\nsubkeys hkdf-sha256\ncheck "
/* The lock of key changes; a leading dot keeps it apart from machines'. */
#define KEYS_LOCK ".keys"

int repo_is_encrypted(const struct repo *r)
{
	return r->version == REPO_FORMAT_ENCRYPTED;
}

static void encryption_text(struct strbuf *out, const unsigned char check[CRYPTO_CHECK_LEN])
{
	char hex[2 * CRYPTO_CHECK_LEN + 1];

	hex_encode(hex, check, CRYPTO_CHECK_LEN);
	strbuf_addf(out, ENCRYPTION_HEAD "%s\n", hex);
}

static int parse_encryption(unsigned char check[CRYPTO_CHECK_LEN], const char *s, size_t len)
{
	size_t head = strlen(ENCRYPTION_HEAD), i;
	char want[2 * CRYPTO_CHECK_LEN + 1];

	if (len != head + 2 * CRYPTO_CHECK_LEN + 1 || memcmp(s, ENCRYPTION_HEAD, head) || s[len - 1] != '\n')
		return -1;
	for (i = 0; i < CRYPTO_CHECK_LEN; i++)
		if (sscanf(s + head + 2 * i, "%2hhx", &check[i]) != 1)
			return -1;
	/* Exactly as written: lower-case hex digits, nothing else. */
	hex_encode(want, check, CRYPTO_CHECK_LEN);
	return memcmp(want, s + head, 2 * CRYPTO_CHECK_LEN) ? -1 : 0;
}

/* Wraps k by pass with the default parameters into *text; id gets its id. */
static int wrap(struct strbuf *text, const struct crypto_keys *k, const struct passphrase *pass,
		char id[CRYPTO_KEYID_HEX + 1])
{
	struct scrypt_params params;
	struct crypto_key_info info;

	crypto_scrypt_defaults(&params);
	if (crypto_key_wrap(text, k, time(NULL), pass->buf, pass->len, &params) < 0)
		return -1;
	if (crypto_key_parse(&info, text->buf, text->len) < 0)
		return error("a key just wrapped does not parse");
	memcpy(id, info.id, sizeof(info.id));
	return 0;
}

static char *key_path(const char *id)
{
	return xasprintf("keys/%s", id);
}

void keys_entries_free(struct repo_state_entry *e, size_t nr)
{
	size_t i;

	for (i = 0; e && i < nr; i++) {
		free((char *)e[i].name);
		free((void *)e[i].data);
	}
	free(e);
}

int keys_new_entries(struct repo_state_entry **out, size_t *nr, const struct crypto_keys *k,
		     const struct passphrase *pass, char id[CRYPTO_KEYID_HEX + 1])
{
	struct strbuf enc = STRBUF_INIT, key = STRBUF_INIT;
	struct repo_state_entry *e;

	*out = NULL;
	*nr = 0;
	if (wrap(&key, k, pass, id) < 0) {
		strbuf_release(&key);
		return -1;
	}
	encryption_text(&enc, k->check);
	e = xcalloc(2, sizeof(*e));
	e[0].name = xstrdup("encryption");
	e[0].len = enc.len;
	e[0].data = strbuf_detach(&enc, NULL);
	e[1].name = key_path(id);
	e[1].len = key.len;
	e[1].data = strbuf_detach(&key, NULL);
	*out = e;
	*nr = 2;
	return 0;
}

void keyring_free(struct keyring *kr)
{
	size_t i;

	if (!kr)
		return;
	for (i = 0; i < kr->nr; i++)
		free(kr->keys[i].text);
	free(kr->keys);
	free(kr);
}

/* Appends the blob at path of tree to out; -1 when it is not a readable blob. */
static int read_blob(git_repository *git, const git_tree_entry *e, struct strbuf *out)
{
	git_blob *b = NULL;

	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB || git_blob_lookup(&b, git, git_tree_entry_id(e)) < 0)
		return -1;
	strbuf_add(out, git_blob_rawcontent(b), git_blob_rawsize(b));
	git_blob_free(b);
	return 0;
}

static int slot_cmp(const void *a, const void *b)
{
	const struct key_slot *x = a, *y = b;

	if (x->info.created != y->info.created)
		return x->info.created < y->info.created ? -1 : 1;
	return strcmp(x->info.id, y->info.id);
}

int keyring_read(struct keyring **out, struct repo *r)
{
	struct keyring *kr = NULL;
	struct strbuf sb = STRBUF_INIT;
	git_object *obj = NULL;
	git_tree *tree = NULL, *keys = NULL;
	git_tree_entry *e = NULL;
	size_t i, n;
	int ret = -1;

	*out = NULL;
	if (!repo_is_encrypted(r))
		return ERR_NOTFOUND;
	/* One snapshot of the tree: the keys and their check agree. */
	if (git_revparse_single(&obj, r->git, REPO_STATE_REF "^{tree}") < 0) {
		error_git("cannot read " REPO_STATE_REF);
		goto out;
	}
	tree = (git_tree *)obj;
	if (git_tree_entry_bypath(&e, tree, "encryption") < 0 || read_blob(r->git, e, &sb) < 0) {
		git_error_clear();
		error("repository '%s' is damaged: its state has no readable 'encryption'; "
		      "restore the repository from a copy", r->path);
		goto out;
	}
	kr = xcalloc(1, sizeof(*kr));
	if (parse_encryption(kr->check, sb.buf, sb.len) < 0) {
		error("repository '%s' is damaged or newer than this backup: its 'encryption' is not understood",
		      r->path);
		goto out;
	}
	git_tree_entry_free(e);
	e = NULL;
	if (git_tree_entry_bypath(&e, tree, "keys") < 0 || git_tree_entry_type(e) != GIT_OBJECT_TREE ||
	    git_tree_lookup(&keys, r->git, git_tree_entry_id(e)) < 0) {
		/* No key at all: only an exported key (--key-file) opens it. */
		git_error_clear();
		*out = kr;
		kr = NULL;
		ret = 0;
		goto out;
	}
	n = git_tree_entrycount(keys);
	kr->keys = xcalloc(n ? n : 1, sizeof(*kr->keys));
	for (i = 0; i < n; i++) {
		const git_tree_entry *ke = git_tree_entry_byindex(keys, i);
		struct key_slot *s = &kr->keys[kr->nr];
		const char *name = git_tree_entry_name(ke);

		strbuf_reset(&sb);
		if (read_blob(r->git, ke, &sb) < 0 || crypto_key_parse(&s->info, sb.buf, sb.len) < 0 ||
		    strcmp(s->info.id, name)) {
			warning("key '%s' of repository '%s' is damaged; ignored (remove it with 'backup key remove')",
				name, r->path);
			memset(&s->info, 0, sizeof(s->info));
			snprintf(s->info.id, sizeof(s->info.id), "%s", name);
			s->text = NULL;
			kr->nr++;
			continue;
		}
		s->len = sb.len;
		s->text = strbuf_detach(&sb, NULL);
		kr->nr++;
	}
	qsort(kr->keys, kr->nr, sizeof(*kr->keys), slot_cmp);
	*out = kr;
	kr = NULL;
	ret = 0;
out:
	git_tree_entry_free(e);
	git_tree_free(keys);
	git_object_free(obj);
	keyring_free(kr);
	strbuf_release(&sb);
	return ret;
}

/*
 * Reads a key file into buf, never into a buffer that grows: a realloc
 * would leave copies of the master key in freed memory.
 */
static int read_key_file(const char *key_file, char *buf, size_t max, size_t *len)
{
	int fd = open(key_file, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	*len = 0;
	if (fd < 0)
		return error("cannot read the key file '%s': %s", key_file, strerror(errno));
	while (*len < max && (n = read(fd, buf + *len, max - *len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error("cannot read the key file '%s': %s", key_file, strerror(errno));
			close(fd);
			return -1;
		}
		*len += n;
	}
	close(fd);
	if (*len == max)
		return error("'%s' is longer than any key 'backup key export' prints", key_file);
	return 0;
}

static int unlock_with_file(struct crypto_keys **out, const struct keyring *kr, struct repo *r,
			    const char *key_file)
{
	char buf[4096];
	size_t len = 0;
	struct crypto_keys *k = NULL;
	int err;

	if (read_key_file(key_file, buf, sizeof(buf), &len) < 0)
		goto fail;
	err = crypto_key_import(&k, buf, len);
	if (err == ERR_CORRUPT) {
		error("'%s' is not a key that 'backup key export' printed, or it is mistyped "
		      "(its key does not match its check line)", key_file);
		goto fail;
	}
	if (err < 0)
		goto fail;
	if (memcmp(k->check, kr->check, CRYPTO_CHECK_LEN)) {
		error("the key in '%s' is not the key of repository '%s'", key_file, r->path);
		goto fail;
	}
	crypto_wipe(buf, sizeof(buf));
	*out = k;
	return 0;
fail:
	crypto_keys_free(k);
	crypto_wipe(buf, sizeof(buf));
	return -1;
}

/*
 * An opening under way: what the thread tries (the keys, the passphrase)
 * and what it found. Only the thread writes the results, and only before
 * it ends; keys_unlock_finish() reads them after joining it.
 */
struct keys_unlocking {
	struct repo *repo;
	struct keyring *kr;
	struct passphrase pass;
	pthread_t thread;
	int threaded;
	/* Results: ret 0 with keys and opened, or -1 (one line printed by
	 * finish); per key slot, what unwrapping it gave (for the warnings). */
	int ret;
	int error_printed;	/* an error was printed where it happened */
	struct crypto_keys *keys;
	char opened[CRYPTO_KEYID_HEX + 1];
	int *slot_err;
	size_t tried;
};

/*
 * Tries the passphrase against every key whose check names the master key,
 * in order; the first that opens wins. Runs on its own thread: it prints
 * nothing (the results are reported by keys_unlock_finish()), and libcrypto
 * is safe to call from several threads (lib/crypto.h).
 */
static void *try_keys(void *arg)
{
	struct keys_unlocking *u = arg;
	struct keyring *kr = u->kr;
	size_t i;

	u->ret = -1;
	for (i = 0; i < kr->nr; i++) {
		const struct key_slot *s = &kr->keys[i];
		int err;

		if (!s->text || memcmp(s->info.check, kr->check, CRYPTO_CHECK_LEN))
			continue;
		u->tried++;
		err = crypto_key_unwrap(&u->keys, s->text, s->len, u->pass.buf, u->pass.len);
		u->slot_err[i] = err;
		if (err == 0) {
			memcpy(u->opened, s->info.id, sizeof(s->info.id));
			u->ret = 0;
			break;
		}
		if (err < 0 && err != ERR_CORRUPT) {
			/* libcrypto failed and said so; no other key is tried. */
			u->error_printed = 1;
			break;
		}
	}
	/* The passphrase is no longer needed: wiped as soon as possible. */
	passphrase_free(&u->pass);
	return NULL;
}

static void unlocking_free(struct keys_unlocking *u)
{
	passphrase_free(&u->pass);
	crypto_keys_free(u->keys);
	keyring_free(u->kr);
	free(u->slot_err);
	free(u);
}

int keys_unlock_start(struct keys_unlocking **out, struct repo *r, const char *key_file)
{
	struct keys_unlocking *u;
	char *prompt;
	size_t i;
	int err;

	*out = NULL;
	u = xcalloc(1, sizeof(*u));
	u->repo = r;
	err = keyring_read(&u->kr, r);
	if (err == ERR_NOTFOUND) {
		error("repository '%s' is not encrypted", r->path);
		goto fail;
	}
	if (err < 0)
		goto fail;
	if (key_file) {
		/* No KDF: nothing worth a thread. */
		if (unlock_with_file(&u->keys, u->kr, r, key_file) < 0)
			goto fail;
		*out = u;
		return 0;
	}
	if (!u->kr->nr) {
		error("repository '%s' has no key a passphrase opens; open it with --key-file", r->path);
		goto fail;
	}
	for (i = 0; i < u->kr->nr; i++) {
		const struct key_slot *s = &u->kr->keys[i];

		if (s->text && memcmp(s->info.check, u->kr->check, CRYPTO_CHECK_LEN))
			warning("key '%s' of repository '%s' wraps another master key than its 'encryption' names; ignored",
				s->info.id, r->path);
	}
	prompt = xasprintf("passphrase for repository '%s': ", r->path);
	err = passphrase_read(&u->pass, "BACKUP_PASSWORD", prompt, 0);
	free(prompt);
	if (err < 0)
		goto fail;
	u->slot_err = xcalloc(u->kr->nr, sizeof(*u->slot_err));
	if (pthread_create(&u->thread, NULL, try_keys, u) == 0)
		u->threaded = 1;
	else
		try_keys(u);
	*out = u;
	return 0;
fail:
	unlocking_free(u);
	return -1;
}

int keys_unlock_finish(struct keys_unlocking *u, struct crypto_keys **out, char opened[CRYPTO_KEYID_HEX + 1])
{
	size_t i;
	int ret;

	if (out)
		*out = NULL;
	if (opened)
		opened[0] = '\0';
	if (!u)
		return -1;
	if (u->threaded && pthread_join(u->thread, NULL))
		die("cannot join the thread that opens the key");
	if (!out) {
		/* Abandoned: the command failed before it needed the key. */
		unlocking_free(u);
		return 0;
	}
	for (i = 0; u->slot_err && i < u->kr->nr; i++)
		if (u->slot_err[i] == ERR_CORRUPT)
			warning("key '%s' of repository '%s' is damaged; ignored", u->kr->keys[i].info.id,
				u->repo->path);
	ret = u->ret;
	if (ret < 0 && !u->error_printed)
		error("wrong passphrase: it opens none of the %zu key%s of repository '%s'", u->tried,
		      u->tried == 1 ? "" : "s", u->repo->path);
	if (!ret) {
		*out = u->keys;
		u->keys = NULL;
		if (opened)
			memcpy(opened, u->opened, sizeof(u->opened));
	}
	unlocking_free(u);
	return ret < 0 ? -1 : 0;
}

int keys_unlock(struct crypto_keys **out, char opened[CRYPTO_KEYID_HEX + 1], struct repo *r,
		const char *key_file)
{
	struct keys_unlocking *u;

	*out = NULL;
	opened[0] = '\0';
	if (keys_unlock_start(&u, r, key_file) < 0)
		return -1;
	return keys_unlock_finish(u, out, opened);
}

/* Finds key id (a unique prefix) in kr; -1 after reporting. */
static int find_key(const struct keyring *kr, struct repo *r, const char *id)
{
	size_t i, len = strlen(id);
	int found = -1;

	for (i = 0; len && i < kr->nr; i++) {
		if (strncmp(kr->keys[i].info.id, id, len))
			continue;
		if (found >= 0)
			return error("key id '%s' is ambiguous in repository '%s'; give more of it", id, r->path);
		found = (int)i;
	}
	if (found < 0)
		return error("no key '%s' in repository '%s'; see 'backup key list'", id, r->path);
	return found;
}

int keys_add(struct repo *r, const struct crypto_keys *k, const struct passphrase *pass,
	     char id[CRYPTO_KEYID_HEX + 1])
{
	struct strbuf text = STRBUF_INIT;
	struct repo_state_entry e;
	char *path = NULL, *msg = NULL;
	int lock, ret = -1;

	if (wrap(&text, k, pass, id) < 0)
		goto out;
	lock = repo_lock(r, KEYS_LOCK, -1);
	if (lock < 0)
		goto out;
	path = key_path(id);
	msg = xasprintf("backup: key add %s", id);
	e = (struct repo_state_entry){ path, text.buf, text.len };
	ret = repo_state_update(r, &e, 1, msg);
	repo_unlock(lock);
out:
	strbuf_release(&text);
	free(path);
	free(msg);
	return ret;
}

int keys_remove(struct repo *r, const char *id, const char *keep, char removed[CRYPTO_KEYID_HEX + 1])
{
	struct keyring *kr = NULL;
	struct repo_state_entry e;
	char *path = NULL, *msg = NULL;
	size_t i, others = 0;
	int lock = repo_lock(r, KEYS_LOCK, -1), ret = -1, at;

	if (lock < 0)
		return -1;
	if (keyring_read(&kr, r) < 0)
		goto out;
	at = find_key(kr, r, id);
	if (at < 0)
		goto out;
	memcpy(removed, kr->keys[at].info.id, CRYPTO_KEYID_HEX + 1);
	if (keep && !strcmp(removed, keep)) {
		error("key '%s' is the one your passphrase opens: removing it would lock you out; "
		      "change its passphrase with 'backup key passwd', or remove it with another key's passphrase",
		      removed);
		goto out;
	}
	for (i = 0; i < kr->nr; i++)
		others += (int)i != at && kr->keys[i].text;
	if (!others) {
		error("key '%s' is the last key of repository '%s': nobody could open it; "
		      "add another key first", removed, r->path);
		goto out;
	}
	path = key_path(removed);
	msg = xasprintf("backup: key remove %s", removed);
	e = (struct repo_state_entry){ path, NULL, 0 };
	ret = repo_state_update(r, &e, 1, msg);
out:
	repo_unlock(lock);
	keyring_free(kr);
	free(path);
	free(msg);
	return ret;
}

int keys_replace(struct repo *r, const char *old, const struct crypto_keys *k,
		 const struct passphrase *pass, char id[CRYPTO_KEYID_HEX + 1])
{
	struct strbuf text = STRBUF_INIT;
	struct keyring *kr = NULL;
	struct repo_state_entry e[2];
	char *path = NULL, *old_path = NULL, *msg = NULL;
	int lock = -1, ret = -1;

	if (wrap(&text, k, pass, id) < 0)
		goto out;
	lock = repo_lock(r, KEYS_LOCK, -1);
	if (lock < 0)
		goto out;
	if (keyring_read(&kr, r) < 0 || find_key(kr, r, old) < 0)
		goto out;
	path = key_path(id);
	old_path = key_path(old);
	msg = xasprintf("backup: key passwd %s -> %s", old, id);
	/* Both in one commit: the old passphrase or the new one, never none. */
	e[0] = (struct repo_state_entry){ path, text.buf, text.len };
	e[1] = (struct repo_state_entry){ old_path, NULL, 0 };
	ret = repo_state_update(r, e, 2, msg);
out:
	if (lock >= 0)
		repo_unlock(lock);
	keyring_free(kr);
	strbuf_release(&text);
	free(path);
	free(old_path);
	free(msg);
	return ret;
}
