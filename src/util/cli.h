/* The programs' command lines: a table of options, parsed by getopt_long,
 * and the help text made from the same table.
 *
 * A program describes each option once (long name, short letter, whether
 * it takes a value and the value's name, the help text, an id) and reads
 * its command line in order:
 *
 *   static const nrd_cli_option opts[] = {
 *       {"output", 'o', "PREFIX", "write PREFIX.summary.csv", OPT_OUTPUT},
 *       {"quiet", 'q', NULL, "no table on stdout", OPT_QUIET},
 *       {0}};
 *   nrd_cli cli;
 *   nrd_cli_begin(&cli, opts, argc, argv);
 *   const char *value;
 *   int id;
 *   while ((id = nrd_cli_next(&cli, &value)) > 0) ...;
 *   if (id == NRD_CLI_ERROR) ... cli.error ...;
 *   operands: argv[cli.first_operand .. argc - 1]
 *
 * Spellings accepted (getopt_long's): --name VALUE, --name=VALUE, an
 * unambiguous prefix of a long name, -x VALUE, -xVALUE, short options
 * bundled (-nv); options and operands in any order (operands keep theirs),
 * "--" ends the options.  Usage errors are one message for the program to
 * print, the same in every program: "unknown option '--x' (see --help)",
 * "option '--x' needs an argument (see --help)", "option '--x' takes no
 * value (see --help)", "option '--x' is ambiguous: --xa, --xb (see
 * --help)". */
#ifndef NRDIFF_CLI_H
#define NRDIFF_CLI_H

#include <getopt.h>
#include <stdio.h>

/* One option.  value: the value's name in the help ("PREFIX"), NULL for an
 * option without value.  help: its description, lines separated by '\n'
 * (the help indents them).  id: > 0, what nrd_cli_next returns for it. */
typedef struct {
  const char *name; /* long name, without "--"; NULL ends a table */
  char letter;      /* short option, or 0 */
  const char *value;
  const char *help;
  int id;
} nrd_cli_option;

enum {
  NRD_CLI_END = 0,    /* no more options */
  NRD_CLI_ERROR = -1, /* a usage error: the message is in error */
  NRD_CLI_MAX_OPTIONS = 32,
};

/* A parse in progress (getopt_long's state is global: one at a time). */
typedef struct {
  const nrd_cli_option *table;
  int argc;
  char **argv;
  int first_operand; /* after NRD_CLI_END: argv[first_operand ..] */
  char error[256];
  struct option longopts[NRD_CLI_MAX_OPTIONS + 1];
  char shortopts[2 + 2 * NRD_CLI_MAX_OPTIONS + 1];
} nrd_cli;

/* Start parsing argv (getopt_long may permute it: operands move after the
 * options, in their order). */
void nrd_cli_begin(nrd_cli *cli, const nrd_cli_option *table, int argc,
                   char **argv);

/* The next option on the command line: its id, *value its value (NULL for
 * an option without one); NRD_CLI_END after the last (the operands are
 * then argv[first_operand ..]); NRD_CLI_ERROR on a usage error. */
int nrd_cli_next(nrd_cli *cli, const char **value);

/* The table's options as help text: one "  -x, --name VALUE  help" entry
 * each, descriptions aligned in one column. */
void nrd_cli_print_help(FILE *out, const nrd_cli_option *table);

/* A value that is all of a decimal integer (0) or not (-1). */
int nrd_cli_long(const char *text, long *v);
/* A value that is all of a finite number (0) or not (-1). */
int nrd_cli_number(const char *text, double *v);

#endif
