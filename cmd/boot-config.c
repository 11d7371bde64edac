#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "proc.h"
#include "profile.h"
#include "usage.h"

static const char *const usage[] = {
	"backup boot-config MACHINE [--list]",
	"backup boot-config MACHINE --boot PROFILE",
	"backup boot-config MACHINE --print PROFILE [--format fstab|nspawn|json]",
	NULL
};

/* Where the nspawn script loop-mounts the image files that are not root. */
#define NSPAWN_RUNDIR "/run/backup"

static int list_profiles(const struct machine *m, struct ctx *ctx)
{
	const struct profile *boot = machine_boot_profile(m);
	struct strbuf sb = STRBUF_INIT;
	size_t i;
	int j;

	if (ctx->json) {
		strbuf_addch(&sb, '[');
		for (i = 0; i < m->nprofiles; i++) {
			const struct profile *p = &m->profiles[i];

			strbuf_addstr(&sb, i ? ",{\"name\":" : "{\"name\":");
			strbuf_add_json(&sb, p->name);
			strbuf_addstr(&sb, ",\"root\":");
			if (p->root)
				strbuf_add_json(&sb, p->root);
			else
				strbuf_addstr(&sb, "null");
			strbuf_addstr(&sb, ",\"devices\":");
			profile_devices_json(&sb, p);
			strbuf_addf(&sb, ",\"boots\":%s}", p == boot ? "true" : "false");
		}
		strbuf_addch(&sb, ']');
		print_json(&sb);
		strbuf_release(&sb);
		return EXIT_OK;
	}
	if (!m->nprofiles) {
		if (!ctx->quiet)
			fprintf(stderr, "machine '%s' has no profile; add a [profile \"NAME\"] section to '%s'\n",
				m->name, m->path);
		return EXIT_OK;
	}
	printf("%-5s %-20s %-4s  %s\n", "BOOTS", "PROFILE", "ROOT", "DEVICES");
	for (i = 0; i < m->nprofiles; i++) {
		const struct profile *p = &m->profiles[i];

		strbuf_reset(&sb);
		for (j = 0; j < NDEVICES; j++)
			if (p->dev[j])
				strbuf_addf(&sb, "%ssd%c=%s", sb.len ? " " : "", 'a' + j, p->dev[j]);
		printf("%-5s %-20s %-4s  %s\n", p == boot ? "*" : "", p->name, p->root ? p->root : "-", sb.buf);
	}
	strbuf_release(&sb);
	return EXIT_OK;
}

/*
 * Runs the expanded bootCommand with /bin/sh -c; returns its exit status
 * (128 + the signal if one killed it), or -1 if it could not run. Under
 * --json its stdout goes to stderr, so that stdout stays one JSON document.
 */
static int run_boot_command(const char *cmd, const struct profile_layout *l, int json)
{
	char *env[4] = { xasprintf("BACKUP_MACHINE=%s", l->machine->name),
			 xasprintf("BACKUP_PROFILE=%s", l->profile->name),
			 xasprintf("BACKUP_ROOT=%s", l->root->source), NULL };
	int ret = proc_shell("bootCommand", cmd, (const char *const *)env, json);

	free(env[0]);
	free(env[1]);
	free(env[2]);
	return ret;
}

/*
 * Makes profile p the one that boots: everything it needs is checked first,
 * so that a refusal leaves the machine file as it was; then machine.boot is
 * recorded and the bootCommand, if any, runs.
 */
static int boot_profile(const struct machine *m, const struct profile *p, struct ctx *ctx)
{
	struct profile_layout *l = NULL;
	struct strbuf cmd = STRBUF_INIT, js = STRBUF_INIT;
	int ret = EXIT_ERROR, status = -1;

	if (profile_layout_new(&l, m, p) < 0 || profile_check_sources(l) < 0)
		goto out;
	if (m->boot_command && profile_expand_command(&cmd, m->boot_command, l) < 0)
		goto out;
	if ((!m->boot || strcmp(m->boot, p->name)) && profile_set_boot(m->path, p->name) < 0)
		goto out;
	if (!ctx->json && !ctx->quiet)
		printf("machine '%s' boots profile '%s' (root disk '%s')\n", m->name, p->name, l->root->label);
	if (m->boot_command) {
		status = run_boot_command(cmd.buf, l, ctx->json);
		if (status < 0)
			goto out;
	}
	if (ctx->json) {
		strbuf_addstr(&js, "{\"machine\":");
		strbuf_add_json(&js, m->name);
		strbuf_addstr(&js, ",\"profile\":");
		strbuf_add_json(&js, p->name);
		strbuf_addstr(&js, ",\"root_disk\":");
		strbuf_add_json(&js, l->root->label);
		strbuf_addstr(&js, ",\"boot_command\":");
		if (m->boot_command) {
			strbuf_add_json(&js, cmd.buf);
			strbuf_addf(&js, ",\"boot_command_status\":%d}", status);
		} else {
			strbuf_addstr(&js, "null,\"boot_command_status\":null}");
		}
		print_json(&js);
	}
	if (status > 0) {
		error("the bootCommand of '%s' failed (exit %d); profile '%s' is recorded as the one that boots",
		      m->name, status, p->name);
		goto out;
	}
	if (status == 0 && !ctx->json && !ctx->quiet)
		printf("bootCommand exited 0\n");
	ret = EXIT_OK;
out:
	strbuf_release(&cmd);
	strbuf_release(&js);
	profile_layout_free(l);
	return ret;
}

static int print_profile(const struct machine *m, const struct profile *p, const char *format)
{
	struct profile_layout *l = NULL;
	struct strbuf sb = STRBUF_INIT;
	char *rundir = NULL;

	if (profile_layout_new(&l, m, p) < 0)
		return EXIT_ERROR;
	if (!strcmp(format, "fstab")) {
		profile_fstab(&sb, l);
		fwrite(sb.buf, 1, sb.len, stdout);
	} else if (!strcmp(format, "nspawn")) {
		rundir = xasprintf("%s/%s", NSPAWN_RUNDIR, m->name);
		profile_nspawn(&sb, l, rundir);
		fwrite(sb.buf, 1, sb.len, stdout);
	} else {
		profile_json(&sb, l);
		print_json(&sb);
	}
	free(rundir);
	strbuf_release(&sb);
	profile_layout_free(l);
	return EXIT_OK;
}

static const struct profile *find_profile(const struct machine *m, const char *name)
{
	const struct profile *p = machine_profile(m, name);

	if (!p)
		error("machine '%s' has no profile '%s'; see 'backup boot-config %s --list'",
		      m->name, name, m->name);
	return p;
}

int cmd_boot_config(int argc, const char **argv, struct ctx *ctx)
{
	int list = 0, ret;
	const char *boot = NULL, *print = NULL, *format = NULL;
	const struct option_spec opts[] = {
		{ OPT_BOOL, 0, "list", &list, NULL, "list the profiles and the one that boots (the default)" },
		{ OPT_STRING, 0, "boot", &boot, "PROFILE", "make PROFILE the one that boots and run machine.bootCommand" },
		{ OPT_STRING, 0, "print", &print, "PROFILE", "print PROFILE as an fstab, a systemd-nspawn command or JSON" },
		{ OPT_STRING, 0, "format", &format, "FORMAT", "what --print prints: fstab (the default), nspawn or json" },
		{ OPT_END, 0, NULL, NULL, NULL, NULL }
	};
	struct machine *m = NULL;
	const struct profile *p;

	argc = opt_parse(argc, argv, opts, ctx->global, usage);
	if (argc < 0)
		return EXIT_USAGE;
	if (list + !!boot + !!print > 1)
		return opt_usage_error(usage, "--list, --boot and --print exclude each other"), EXIT_USAGE;
	if (format && !print)
		return opt_usage_error(usage, "--format goes with --print"), EXIT_USAGE;
	if (format && strcmp(format, "fstab") && strcmp(format, "nspawn") && strcmp(format, "json"))
		return opt_usage_error(usage, "--format takes fstab, nspawn or json, not '%s'", format), EXIT_USAGE;
	if (print && ctx->json) {
		if (format && strcmp(format, "json"))
			return opt_usage_error(usage, "--json prints JSON; it cannot go with --format %s", format),
			       EXIT_USAGE;
		format = "json";
	}
	if (argc != 1)
		return opt_usage_error(usage, "boot-config needs one machine"), EXIT_USAGE;
	if (ctx_prepare(ctx) < 0)
		return EXIT_ERROR;
	if (machine_load(&m, ctx->cfg, argv[0]) < 0)
		return EXIT_ERROR;
	if (boot || print) {
		p = find_profile(m, boot ? boot : print);
		if (!p)
			ret = EXIT_ERROR;
		else if (boot)
			ret = boot_profile(m, p, ctx);
		else
			ret = print_profile(m, p, format ? format : "fstab");
	} else {
		ret = list_profiles(m, ctx);
	}
	machine_free(m);
	return ret;
}
