/* Unit test of the chunker: bounds, determinism, average, and shift resistance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunker.h"

static int failed;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); failed = 1; } } while (0)

static unsigned char *random_bytes(size_t n, unsigned seed)
{
	unsigned char *p = malloc(n);
	unsigned long long x = seed;
	size_t i;

	for (i = 0; i < n; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		p[i] = x >> 56;
	}
	return p;
}

/* Cuts p into chunks; stores up to max boundaries (end offsets) in cuts. */
static size_t cut_all(const unsigned char *p, size_t n, size_t *cuts, size_t max)
{
	size_t off = 0, nr = 0;

	while (off < n) {
		size_t len = chunker_cut(p + off, n - off);

		CHECK(len > 0);
		CHECK(len <= CHUNK_MAX);
		if (off + len < n)
			CHECK(len >= CHUNK_MIN);
		off += len;
		if (nr < max)
			cuts[nr++] = off;
	}
	return nr;
}

int main(void)
{
	size_t n = 64 << 20, i, nr, nr2, same = 0;
	unsigned char *p = random_bytes(n + 1, 42), *q;
	static size_t cuts[4096], cuts2[4096];

	/* Small inputs are one chunk. */
	CHECK(chunker_cut(p, 10) == 10);
	CHECK(chunker_cut(p, CHUNK_MIN) == CHUNK_MIN);

	nr = cut_all(p, n, cuts, 4096);
	CHECK(nr > n / CHUNK_AVG / 2 && nr < 2 * n / CHUNK_AVG);	/* chunks of about CHUNK_AVG */
	CHECK(cut_all(p, n, cuts2, 4096) == nr);
	CHECK(!memcmp(cuts, cuts2, nr * sizeof(*cuts)));

	/* One byte inserted at the front shifts every later cut by one. */
	q = malloc(n + 1);
	q[0] = 'x';
	memcpy(q + 1, p, n);
	nr2 = cut_all(q, n + 1, cuts2, 4096);
	for (i = 0; i < nr2; i++) {
		size_t j;
		for (j = 0; j < nr; j++)
			if (cuts2[i] == cuts[j] + 1)
				same++;
	}
	CHECK(same + 3 >= nr);

	/* Zeros never match the cut condition: chunks of CHUNK_MAX. */
	memset(q, 0, n);
	CHECK(chunker_cut(q, n) == CHUNK_MAX);

	free(p);
	free(q);
	if (!failed)
		printf("ok chunker (%zu chunks in 64 MiB)\n", nr);
	return failed;
}
