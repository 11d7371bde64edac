/*
 * opt.h — command-line options from one table per command.
 *
 * A command lists its usage lines and its options once; opt_parse() parses
 * argv against that table plus the global table, answers --help (usage and
 * the options, on stdout, exit 0) and the hidden --list-opts (the long
 * option names, which the shell completions read), and leaves the operands in
 * argv. Options and operands may be mixed; "--" ends the options.
 */
#ifndef OPT_H
#define OPT_H

enum opt_type {
	OPT_END = 0,
	OPT_BOOL,	/* int *: set to 1 (--no-NAME is not offered) */
	OPT_STRING,	/* const char **: the last one given wins */
	OPT_LIST,	/* struct opt_list *: every one given, in order */
	OPT_INT,	/* long *: a decimal number */
	OPT_SECONDS,	/* long *: a decimal number of seconds, 0 or more */
	OPT_OPTSTRING,	/* const char **: "--NAME=VALUE" sets VALUE, "--NAME" alone sets "";
			 * the value is never taken from the next argument */
};

struct option_spec {
	enum opt_type type;
	int short_name;		/* 0 for none */
	const char *long_name;
	void *value;
	const char *argh;	/* the argument's name in --help, e.g. "SECONDS" */
	const char *help;
};

struct opt_list {
	int nr;
	const char **items;	/* point into argv; free items only */
};

void opt_list_free(struct opt_list *l);

/*
 * Parses argv[1..argc-1] (argv[0] is the command name) against opts and then
 * global. The operands are moved to argv[0..n-1] and n is returned; a usage
 * error prints one line and the usage and returns -1 (exit 2 for the caller).
 */
int opt_parse(int argc, const char **argv, const struct option_spec *opts,
	      const struct option_spec *global, const char *const *usage);

/* Prints the usage lines and the option tables to stdout or stderr. */
void opt_usage(const char *const *usage, const struct option_spec *opts,
	       const struct option_spec *global, int to_stderr);

/* Complains about a wrong operand count: prints the usage, returns -1. */
int opt_usage_error(const char *const *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
