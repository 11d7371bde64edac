/* libFuzzer target: tree name escaping, both ways, and sealed names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;

	memcpy(s, data, size);
	s[size] = '\0';
	/* Any stored name: decoding never crashes; a valid one re-encodes to itself. */
	if (name_unescape(&a, s) == 0) {
		name_escape(&b, a.buf);
		if (strcmp(b.buf, s))
			__builtin_trap();
	}
	/* Any real name (no '/', not empty): round trip, and no name git fsck refuses. */
	if (*s && !strchr(s, '/')) {
		strbuf_reset(&a);
		strbuf_reset(&b);
		name_escape(&a, s);
		if (name_unescape(&b, a.buf) != 0 || strcmp(b.buf, s) || a.buf[0] == '.' || strchr(a.buf, '\\'))
			__builtin_trap();
	}
	/* Any stored name of an encrypted repository: it opens or not, never
	 * crashes; what opens is a name that seals back to it. */
	{
		static struct crypto_keys *k;
		static const unsigned char ctx[SHA1_LEN], oid[SHA1_LEN];
		unsigned char master[CRYPTO_KEY_LEN] = { 7 };

		if (!k && crypto_keys_from_master(&k, master) < 0)
			__builtin_trap();
		strbuf_reset(&a);
		strbuf_reset(&b);
		if (name_unseal(&a, k, ctx, MODE_BLOB, oid, s) == 0 &&
		    (name_seal(&b, k, ctx, MODE_BLOB, oid, a.buf) < 0 || strcmp(b.buf, s)))
			__builtin_trap();
	}
	strbuf_release(&a);
	strbuf_release(&b);
	free(s);
	return 0;
}
