#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "proc.h"
#include "strbuf.h"
#include "usage.h"

/* In a child before exec: the limits backup was started with. */
static void child_limits(void)
{
	struct rlimit nofile;

	if (user_nofile && getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
		nofile.rlim_cur = user_nofile;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
}

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
		child_limits();
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

int proc_run(const char *const *argv, const char *input, struct strbuf *out)
{
	int in[2] = { -1, -1 }, res[2] = { -1, -1 }, st;
	char buf[4096];
	ssize_t n;
	pid_t pid;

	if (pipe2(res, O_CLOEXEC) < 0 || (input && pipe2(in, O_CLOEXEC) < 0)) {
		error("cannot run %s: %s", argv[0], strerror(errno));
		goto fail;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		error("cannot run %s: %s", argv[0], strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		static const char *const dirs[] = { "/usr/sbin/", "/sbin/" };
		size_t i;
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		dup2(input ? in[0] : null, STDIN_FILENO);
		dup2(res[1], STDOUT_FILENO);
		dup2(res[1], STDERR_FILENO);
		/* Its messages are matched in English. */
		setenv("LC_ALL", "C", 1);
		child_limits();
		execvp(argv[0], (char *const *)argv);
		for (i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
			char path[64];

			snprintf(path, sizeof(path), "%s%s", dirs[i], argv[0]);
			execv(path, (char *const *)argv);
		}
		dprintf(STDERR_FILENO, "%s", strerror(errno));
		_exit(127);
	}
	close(res[1]);
	res[1] = -1;
	if (input) {
		struct sigaction ign = { .sa_handler = SIG_IGN }, old;

		close(in[0]);
		in[0] = -1;
		/* A few lines of commands: far less than a pipe holds, so the
		 * tool's output cannot fill its pipe before they are written.
		 * A tool that exits first is told by its status, not SIGPIPE. */
		sigaction(SIGPIPE, &ign, &old);
		if (write_all(in[1], input, strlen(input)) < 0 && errno != EPIPE)
			warning("cannot write to %s: %s", argv[0], strerror(errno));
		sigaction(SIGPIPE, &old, NULL);
		close(in[1]);
		in[1] = -1;
	}
	while ((n = read(res[0], buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		strbuf_add(out, buf, n);
	}
	close(res[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return error("cannot wait for %s: %s", argv[0], strerror(errno));
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
fail:
	if (res[0] >= 0)
		close(res[0]);
	if (res[1] >= 0)
		close(res[1]);
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	return -1;
}
