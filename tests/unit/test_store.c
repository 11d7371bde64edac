/* Unit test of store_open()'s own guard: an encrypted repository opened
 * without its key gives no store, so that no caller that forgot the key can
 * write a plaintext blob into it (no command reaches the guard: each asks
 * for the key first). With the key, blobs go in sealed and come back. */
#include "keys.h"
#include "unit.h"

/* The number of files in base/name. */
static size_t count_files(const char *name)
{
	char *cmd = xasprintf("find '%s/%s' -type f | wc -l", base, name);
	FILE *f = popen(cmd, "r");
	size_t n = 0;

	if (!f || fscanf(f, "%zu", &n) != 1)
		n = (size_t)-1;
	if (f)
		pclose(f);
	free(cmd);
	return n;
}

int main(void)
{
	static const char data[] = "a chunk of a file that nobody may read without the key";
	struct passphrase pass = { xcalloc(PASSPHRASE_MAX + 2, 1), 13 };
	struct repo_state_entry *e = NULL;
	struct crypto_keys *k = NULL;
	struct repo *enc = NULL;
	struct store *s = NULL;
	struct strbuf sb = STRBUF_INIT;
	unsigned char oid[SHA1_LEN];
	char id[CRYPTO_KEYID_HEX + 1], *path, *log;
	size_t n = 0, packs;
	git_odb_object *o = NULL;
	git_oid goid;

	/* scrypt N=2^10: a fast test. */
	setenv("BACKUP_INSECURE_TEST_KDF", "1", 1);
	memcpy(pass.buf, "correct horse", 13);
	unit_setup("test_store");

	/* An unencrypted repository needs no key. */
	CHECK(store_open(&s, repo) == 0 && s);
	store_free(s);
	s = NULL;

	path = at("enc");
	CHECK(crypto_keys_new(&k) == 0);
	CHECK(keys_new_entries(&e, &n, k, &pass, id) == 0);
	CHECK(repo_init_with(path, REPO_FORMAT_ENCRYPTED, e, n) == 0);
	CHECK(repo_open(&enc, path) == 0 && enc && enc->version == REPO_FORMAT_ENCRYPTED && !enc->keys);
	packs = count_files("enc/objects/pack");

	/* Without the key: refused by the guard itself (not only by the
	 * dedup index's own refusal further on), and nothing written. */
	s = (struct store *)1;
	CHECK(store_open(&s, enc) < 0);
	CHECK(s == NULL);
	log = slurp("stderr.log");
	CHECK(strstr(log, "backup: repository '") && strstr(log, "/enc' is encrypted and was opened without its key\n"));
	free(log);
	CHECK(count_files("enc/objects/pack") == packs);
	CHECK(count_files("enc/backup/dedup") == 0);

	/* With it: a blob goes in sealed (its key, then format byte 1, not
	 * a zstd frame) and reads back. */
	enc->keys = k;
	k = NULL;
	CHECK(store_open(&s, enc) == 0 && s);
	CHECK(s && store_put_blob(s, data, sizeof(data), oid) == 0 && store_flush(s) == 0);
	store_free(s);
	store_thread_done();
	memcpy(goid.id, oid, SHA1_LEN);
	CHECK(git_odb_read(&o, enc->odb, &goid) == 0);
	CHECK(o && git_odb_object_size(o) > SHA256_LEN + 1 &&
	      ((const unsigned char *)git_odb_object_data(o))[SHA256_LEN] == 1 &&
	      !memmem(git_odb_object_data(o), git_odb_object_size(o), "nobody may read", 15));
	git_odb_object_free(o);
	CHECK(store_read_blob(enc, oid, &sb) == 0 && sb.len == sizeof(data) && !memcmp(sb.buf, data, sb.len));

	strbuf_release(&sb);
	keys_entries_free(e, n);
	passphrase_free(&pass);
	crypto_keys_free(k);
	repo_free(enc);
	free(path);
	return unit_finish();
}
