/* libFuzzer target: a machine file (git-config syntax, through libgit2). */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <git2.h>

#include "machine.h"
#include "usage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct machine *m = NULL;
	FILE *f;

	if (!path[0]) {
		git_libgit2_init();
		snprintf(path, sizeof(path), "/tmp/fuzz-machine-%d.conf", (int)getpid());
		verbosity = -1;
	}
	f = fopen(path, "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	/* Errors are printed; silence them so the fuzzer's output stays readable. */
	FILE *saved = stderr;
	stderr = fopen("/dev/null", "w");
	if (machine_parse(&m, "fuzz", path) == 0) {
		char *out = NULL;
		if (asprintf(&out, "%s.out", path) > 0 && machine_write(m, out) == 0) {
			struct machine *m2 = NULL;
			if (machine_parse(&m2, "fuzz", out) != 0)
				__builtin_trap();
			machine_free(m2);
			unlink(out);
		}
		free(out);
	}
	fclose(stderr);
	stderr = saved;
	machine_free(m);
	unlink(path);
	return 0;
}
