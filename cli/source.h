/* ferry, the command line: what runs, a commit or a snapshot of a folder,
 * chosen the same way by every command that creates work (ferry run,
 * ferry pipeline run), and the snapshot's upload. */
#ifndef FERRY_CLI_SOURCE_H
#define FERRY_CLI_SOURCE_H

#include "cli.h"
#include "worktree.h"

#include "stepfile.h"

/* What the command line asked for. */
typedef struct ferry_cli_code {
    const char *dir;     /* the folder: --adhoc DIR, default "." */
    const char *commit;  /* --commit REF, or NULL */
    const char *project; /* --project NAME, or NULL */
    int adhoc;           /* --adhoc given */
} ferry_cli_code;

/* What was chosen. */
typedef struct ferry_cli_source {
    ferry_worktree *wt; /* DIR's git working copy, or NULL */
    const char *ref;    /* what "commit" sends; NULL: ad hoc */
    char local[41];     /* the commit's sha in wt; "" when wt does not know it */
    char *project;      /* the project the work goes to */
    char *repository;   /* the project's repository (as ferryd shows it), or NULL */
    int head;           /* ref is wt's HEAD, chosen by the working copy's remote */
} ferry_cli_source;

/* 1 when path is a folder. */
int ferry_cli_is_dir(const char *path);
/* The getopt_long() values of the options that choose the code, spelt
 * alike by every command that takes them:
 *   {"adhoc", optional_argument, NULL, FERRY_CLI_OPT_ADHOC},
 *   {"commit", required_argument, NULL, FERRY_CLI_OPT_COMMIT}, */
#define FERRY_CLI_OPT_ADHOC 'a'
#define FERRY_CLI_OPT_COMMIT 0x400
/* One of them (c, and `arg` its value, or NULL) into code: 1 when c is
 * one, else 0. Called from a getopt_long() loop over argc/argv: a value of
 * --adhoc may stand apart ("--adhoc DIR") only when it cannot be an
 * operand, for it names an existing folder; optind then moves past it. */
int ferry_cli_code_option(ferry_cli_code *code, int c, const char *arg, int argc, char **argv);
/* After parsing: --commit and --adhoc exclude each other, --commit is not
 * empty, DIR is a folder. A usage error of `cmd` ("run") is printed;
 * returns FERRY_EXIT_OK or FERRY_EXIT_USAGE. */
int ferry_cli_code_check(const char *cmd, const ferry_cli_code *code);

/* Which it is, and in which project: --commit REF; else HEAD of DIR's
 * working copy when a remote of it is a ferryd project's repository
 * (unless --adhoc); else ad hoc. The project: --project, else
 * $FERRY_PROJECT, else the linked project, else DIR's name. Zero *src
 * before; free it with ferry_cli_source_free() in any case. Returns an
 * exit status, the failure printed. */
int ferry_cli_source_choose(const ferry_cli *cli, const ferry_cli_code *code,
                            ferry_cli_source *src);
void ferry_cli_source_free(ferry_cli_source *src);

/* DIR's ferry.yaml (or valohai.yaml), errors printed. Returns an exit status. */
int ferry_cli_load_stepfile(const char *dir, ferry_stepfile **sf);
/* The step file of what runs, as ferryd will read it: the commit's when
 * the working copy has the commit, DIR's when ad hoc. *sf is NULL (and
 * FERRY_EXIT_OK returned) for a commit only ferryd has. */
int ferry_cli_source_stepfile(const ferry_cli_source *src, const char *dir, ferry_stepfile **sf);
/* How messages name that file: "valohai.yaml", or "5d6e7f8:valohai.yaml". */
void ferry_cli_source_file_name(const ferry_cli_source *src, const ferry_stepfile *sf, char *buf,
                                size_t cap);

/* Everything checked: say what a HEAD run leaves out, and for an ad-hoc
 * run pack DIR and upload it unless ferryd has it; sha (65 bytes)
 * receives its sha256, "" for a commit. Returns an exit status. */
int ferry_cli_source_send(const ferry_cli *cli, const ferry_cli_code *code,
                          const ferry_cli_source *src, char *sha);
/* "commit": REF or "snapshot": SHA into a creation body. */
void ferry_cli_source_set_code(const ferry_cli_source *src, const char *sha, json_t *body);
/* POST body to path (/v1/executions, /v1/pipelines); *out the created
 * object. A HEAD ferryd's repository lacks is said as "push it, or run
 * with --adhoc" (FERRY_EXIT_NOT_PUSHED). Returns an exit status. */
int ferry_cli_source_create(const ferry_cli *cli, const ferry_cli_source *src, const char *path,
                            json_t *body, json_t **out);

#endif
