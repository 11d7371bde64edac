#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "usage.h"

#define SAFE_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int proc_shell(const char *what, const char *cmd, const char *const *env, int stdout_to_stderr)
{
	static const char *const passed[] = { "HOME", "LANG", "LC_ALL", "TZ" };
	const char *envp[32];
	char *owned[8];
	size_t n = 0, no = 0, i;
	pid_t pid;
	int st;

	envp[n++] = SAFE_PATH;
	for (i = 0; i < sizeof(passed) / sizeof(*passed); i++) {
		const char *v = getenv(passed[i]);

		if (v)
			envp[n++] = owned[no++] = xasprintf("%s=%s", passed[i], v);
	}
	for (i = 0; env && env[i] && n < 31; i++)
		envp[n++] = env[i];
	envp[n] = NULL;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null >= 0)
			dup2(null, STDIN_FILENO);
		if (stdout_to_stderr)
			dup2(STDERR_FILENO, STDOUT_FILENO);
		execle("/bin/sh", "sh", "-c", cmd, (char *)NULL, (char *const *)envp);
		dprintf(STDERR_FILENO, "backup: cannot run /bin/sh: %s\n", strerror(errno));
		_exit(127);
	}
	for (i = 0; i < no; i++)
		free(owned[i]);
	if (pid < 0)
		return error("cannot run the %s: %s", what, strerror(errno));
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return error("cannot wait for the %s: %s", what, strerror(errno));
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}
