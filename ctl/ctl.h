/* ctl.h — what relationctl's files share, private to ctl/: the exit
 * statuses, a command's table entry, the option parser, the arguments of
 * the reading commands, the fatal-error report (relationctl.c), each
 * family's commands (read.c, check.c, apply.c, broker.c) and the
 * JSON-lines input of apply and send (lines.c). A command returns its exit
 * status and has said on standard error why it is not 0; it frees what it
 * took. One thread: nothing here locks. */
#ifndef RELATIOND_CTL_H
#define RELATIOND_CTL_H

#include "config/config.h"
#include "ctl/progress.h"
#include "handlers/engine.h"
#include "handlers/event.h"

#include <stdbool.h>
#include <stddef.h>

enum { EXIT_FATAL = 1, EXIT_USAGE = 2, EXIT_INVALID_LINES = 3 };

/* The commands, with what each takes and does, and an example (--help). */
typedef struct Command Command;
typedef int (*CommandFn)(const Config *cfg, const Command *c, int argc, char **argv);
enum { READS_HOOKS = 1, READS_SOURCES = 2 }; /* beyond redis, engine and relations */
struct Command {
    const char *name, *args, *about, *example;
    CommandFn run;
    int reads;
};

/* The commands: c their table entry, argv the arguments after the
 * command's name; the exit status returned. */
/* read.c */
int cmd_stats(const Config *cfg, const Command *c, int argc, char **argv);
int cmd_edges(const Config *cfg, const Command *c, int argc, char **argv);
int cmd_segment(const Config *cfg, const Command *c, int argc, char **argv);
int cmd_render(const Config *cfg, const Command *c, int argc, char **argv);
/* check.c: verify and rebuild (c->name tells which) */
int cmd_check(const Config *cfg, const Command *c, int argc, char **argv);
/* check.c: every side converted from layout 1, then the layout key */
int cmd_migrate(const Config *cfg, const Command *c, int argc, char **argv);
/* check.c: the layout key (show, ack) */
int cmd_layout(const Config *cfg, const Command *c, int argc, char **argv);
/* apply.c */
int cmd_apply(const Config *cfg, const Command *c, int argc, char **argv);
/* broker.c */
int cmd_watch(const Config *cfg, const Command *c, int argc, char **argv);
int cmd_send(const Config *cfg, const Command *c, int argc, char **argv);
int cmd_redrive(const Config *cfg, const Command *c, int argc, char **argv);
/* hooks.c */
int cmd_hooks(const Config *cfg, const Command *c, int argc, char **argv);

/* A command's arguments: options (a flag, or one taking the next argument)
 * and positional arguments. "--" ends the options; an argument with one
 * leading '-' is positional (a profile "-1", "-" for standard input). */
typedef struct {
    const char *name;
    bool *flag;         /* set when present, or */
    const char **value; /* the argument after it */
} Opt;

/* argv parsed against opts (ending with a zeroed Opt; NULL: none): the
 * positional arguments into pos (minpos..maxpos of them, *npos set). False,
 * the usage error said, otherwise. */
bool parse_args(const Command *c, int argc, char **argv, const Opt *opts, char **pos,
                int minpos, int maxpos, int *npos);

/* An engine connected to Redis (engine_new) whose layout key names the
 * layout this build knows (handlers/layout.h); a writer (apply) also
 * writes the key when it is absent. NULL with err otherwise. */
Engine *ctl_engine(const Config *cfg, bool writer, char *err, size_t errlen);

/* A fatal error said, with a hint of what to do next where the message
 * tells (a server not running, a password refused). */
void fatal(const char *err);

/* After an empty answer: a word when the key prefix holds no data at all. */
void note_empty_prefix(Engine *e, const Config *cfg);

/* A relation of the configuration (NULL, message printed, when it is not). */
const RelationDef *relation_arg(const Config *cfg, const char *name);

/* direct or reverse (false, message printed, otherwise). */
bool side_arg(const char *name, Side *side);

/* A profile id of 1..EVENT_PROFILE_MAX bytes (false, message printed,
 * otherwise). */
bool profile_arg(const char *profile);

/* RELATION direct|reverse PROFILE: false (message printed) when one is not. */
bool side_args(const Config *cfg, char **argv, const RelationDef **out, Side *side);

/* Lines read from a file descriptor, binary-safe: a line is everything up
 * to a newline (a NUL is part of it, and makes the event invalid), without
 * a trailing CR. */
typedef struct {
    int fd;
    const char *path;
    char *buf;
    size_t cap, start, end;
    bool eof;
    long lineno;         /* lines handed out */
    long long offset;    /* bytes read */
    long long size;      /* of a regular file; -1 otherwise */
    Progress progress;   /* on a terminal: the share of the file read */
} LineReader;

enum { LINE_EOF = -1, LINE_TOO_LONG = -2, LINE_ERROR = -3 };

/* Opens path ("-": standard input) for reading lines, with a progress line
 * counting `unit` on a terminal (and progress). False, message printed,
 * when it cannot; reader_close all the same. */
bool reader_open(LineReader *r, const char *path, const char *unit, bool progress);

/* True when the next line can be read without waiting for input. */
bool reader_ready(const LineReader *r);

/* The progress line cleared, the buffer freed, the file closed. */
void reader_close(LineReader *r);

/* The next event of the input into ev (*line its text, the length
 * returned); a bad line is said (line N: reason), counted in *invalid and
 * skipped. LINE_EOF at the end, LINE_ERROR (said) when reading fails. */
long next_event(const Config *cfg, LineReader *r, Event *ev, char **line, long *invalid);

#endif
