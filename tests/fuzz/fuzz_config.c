/* libFuzzer target: the global configuration (git-config syntax, through libgit2). */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <git2.h>

#include "machine.h"
#include "usage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct config *c = NULL;
	FILE *f, *saved;

	if (!path[0]) {
		git_libgit2_init();
		snprintf(path, sizeof(path), "/tmp/fuzz-config-%d.conf", (int)getpid());
	}
	f = fopen(path, "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	saved = stderr;
	stderr = fopen("/dev/null", "w");
	if (config_load(&c, path, 1, NULL) == 0 && (!c->repo_path || !c->machines_dir || !c->machines_root))
		__builtin_trap();
	config_free(c);
	unlink(path);
	fclose(stderr);
	stderr = saved;
	return 0;
}
