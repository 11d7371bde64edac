/*
 * keys.h — the keys of an encrypted repository, kept in its state tree.
 *
 * An encrypted repository has format 3 (docs/FORMAT.md): its state tree
 * (lib/repo.h) holds, beside `format` and `state`, the blob `encryption`,
 * which names the scheme and the public check value of the master key, and
 * one blob `keys/ID` per passphrase: the master key wrapped by it
 * (lib/crypto.h). Nothing secret is stored in the clear. git carries all
 * of it, so a clone opens with the same passphrases.
 *
 * Each change of the keys is one durable state commit, so that a crash or
 * a full disk leaves the keys of before or those of after, never none.
 * Changes hold the repository's lock `keys` from reading the keys to the
 * commit: two of them never remove the last key between them.
 */
#ifndef KEYS_H
#define KEYS_H

#include "crypto.h"
#include "passphrase.h"
#include "repo.h"

struct key_slot {
	struct crypto_key_info info;
	char *text;		/* the wrapped key, as stored */
	size_t len;
};

struct keyring {
	unsigned char check[CRYPTO_CHECK_LEN];	/* from `encryption` */
	struct key_slot *keys;			/* sorted by creation, then id */
	size_t nr;
};

/* 1 when the repository is encrypted. */
int repo_is_encrypted(const struct repo *r);

/*
 * The entries of the state tree of a new encrypted repository: the master
 * key k wrapped by pass. The caller gives them to repo_init_with() with
 * REPO_FORMAT_ENCRYPTED, and frees them with keys_entries_free(); id gets
 * the new key's id.
 */
int keys_new_entries(struct repo_state_entry **out, size_t *nr, const struct crypto_keys *k,
		     const struct passphrase *pass, char id[CRYPTO_KEYID_HEX + 1]);
void keys_entries_free(struct repo_state_entry *e, size_t nr);

/*
 * Reads the keys of repository r. Returns 0, ERR_NOTFOUND (quietly) when r
 * is not encrypted, -1 after reporting a damaged `encryption` or key.
 */
int keyring_read(struct keyring **out, struct repo *r);
void keyring_free(struct keyring *kr);

/*
 * Opens the master key of r into *out: with key_file (a `backup key export`)
 * when it is not NULL, else with the passphrase from BACKUP_PASSWORD_FILE,
 * BACKUP_PASSWORD_COMMAND or the terminal, tried against every key. *opened
 * gets the id of the key the passphrase opened ("" with a key file).
 * Returns 0, or -1 after one line: a wrong passphrase, a key file that is not
 * this repository's, no passphrase to be had.
 */
int keys_unlock(struct crypto_keys **out, char opened[CRYPTO_KEYID_HEX + 1], struct repo *r,
		const char *key_file);

/*
 * keys_unlock() in two steps, so that the passphrase's KDF (scrypt, about
 * 0.2 s of CPU and 64 MiB) runs on a thread of its own while the caller
 * does work that needs no key, such as reading the source of a backup.
 * keys_unlock_start() does on the calling thread everything that may ask or
 * fail at once: it reads the keys and the passphrase (a terminal prompt is
 * never on another thread), reporting errors as keys_unlock() does; then it
 * starts the thread that tries the passphrase (with --key-file nothing is
 * left to do). keys_unlock_finish() waits for it and reports its outcome,
 * the wrong passphrase's line included, exactly as keys_unlock(); with out
 * NULL it only waits, prints nothing and forgets the keys (a command that
 * failed before it needed them). It frees u in every case and
 * must be called once for every u started: the passphrase is wiped by the
 * thread as soon as it is done with it, the keys not handed out on finish.
 */
struct keys_unlocking;
int keys_unlock_start(struct keys_unlocking **out, struct repo *r, const char *key_file);
int keys_unlock_finish(struct keys_unlocking *u, struct crypto_keys **out, char opened[CRYPTO_KEYID_HEX + 1]);

/* Adds a key: master key k wrapped by pass; id gets its id. */
int keys_add(struct repo *r, const struct crypto_keys *k, const struct passphrase *pass,
	     char id[CRYPTO_KEYID_HEX + 1]);
/*
 * Removes key id (a unique prefix is enough), refusing the last one and
 * the one named by keep (the key in use; may be ""). removed gets the full
 * id.
 */
int keys_remove(struct repo *r, const char *id, const char *keep, char removed[CRYPTO_KEYID_HEX + 1]);
/* Replaces key old with master key k wrapped by pass, in one commit; id
 * gets the new key's id. */
int keys_replace(struct repo *r, const char *old, const struct crypto_keys *k,
		 const struct passphrase *pass, char id[CRYPTO_KEYID_HEX + 1]);

#endif
