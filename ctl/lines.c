/* lines.c — the JSON-lines input of apply and send (ctl.h): a file or
 * standard input read in blocks, line by line, binary-safe, with a
 * progress line on a terminal; each line parsed as an event, a bad one said
 * on standard error and counted. The reader owns its buffer and its file
 * (reader_close frees and closes them). One thread. */
#include "ctl/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A line's length (*line points into the reader, NUL-terminated), or one of
 * LINE_EOF, LINE_TOO_LONG (longer than EVENT_MAX_BYTES: skipped), LINE_ERROR. */
static long reader_line(LineReader *r, char **line)
{
    bool skipping = false;
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl || (r->eof && r->end > r->start)) {
            size_t len = (nl ? (size_t)(nl - r->buf) : r->end) - r->start;
            char *l = r->buf + r->start;
            r->start += len + (nl != NULL);
            if (len && l[len - 1] == '\r')
                len--;
            if (skipping || len > EVENT_MAX_BYTES)
                return LINE_TOO_LONG;
            l[len] = '\0';
            *line = l;
            return (long)len;
        }
        if (r->eof)
            return skipping ? LINE_TOO_LONG : LINE_EOF;
        if (r->end - r->start > EVENT_MAX_BYTES + 1) {
            skipping = true; /* too long already: keep reading to its end */
            r->start = r->end;
        }
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        ssize_t got = read(r->fd, r->buf + r->end, r->cap - 1 - r->end);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return LINE_ERROR;
        if (got == 0)
            r->eof = true;
        r->end += (size_t)got;
        r->offset += got;
    }
}

/* True when the next line can be read without waiting for input. */
bool reader_ready(const LineReader *r)
{
    if (r->eof || memchr(r->buf + r->start, '\n', r->end - r->start))
        return true;
    struct pollfd pfd = {r->fd, POLLIN, 0};
    return poll(&pfd, 1, 0) != 0;
}

/* Opens path ("-": standard input) for reading lines, with a progress line
 * counting `unit` on a terminal. False, message printed, when it cannot. */
bool reader_open(LineReader *r, const char *path, const char *unit, bool progress)
{
    struct stat st;
    *r = (LineReader){.path = path, .size = -1, .cap = 2 * (EVENT_MAX_BYTES + 2)};
    r->fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        fprintf(stderr, "relationctl: %s: %s\n", path, strerror(errno));
        return false;
    }
    if (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode))
        r->size = (long long)st.st_size - (long long)lseek(r->fd, 0, SEEK_CUR);
    r->buf = malloc(r->cap);
    if (!r->buf) {
        fprintf(stderr, "relationctl: out of memory\n");
        return false;
    }
    progress_start(&r->progress, unit);
    r->progress.on &= progress;
    return true;
}

void reader_close(LineReader *r)
{
    progress_clear(&r->progress);
    free(r->buf);
    if (r->fd > 0)
        close(r->fd);
}

/* A bad line said on standard error (above the progress line). */
static void bad_line(LineReader *r, long lineno, const char *why)
{
    progress_clear(&r->progress);
    fprintf(stderr, "line %ld: %s\n", lineno, why);
}

/* The next event of the input into ev (*line its text, the length
 * returned); a bad line is said (line N: reason), counted in *invalid and
 * skipped. LINE_EOF at the end, LINE_ERROR (said) when reading fails. */
long next_event(const Config *cfg, LineReader *r, Event *ev, char **line, long *invalid)
{
    char err[CONFIG_ERR_MAX];
    for (;;) {
        long len = reader_line(r, line);
        if (len == LINE_EOF)
            return len;
        if (len == LINE_ERROR) {
            progress_clear(&r->progress);
            fprintf(stderr, "relationctl: reading %s: %s\n", r->path, strerror(errno));
            return len;
        }
        r->lineno++;
        progress_update(&r->progress, r->lineno, progress_share(r->offset, r->size));
        if (len == LINE_TOO_LONG) {
            snprintf(err, sizeof err, "event larger than %d bytes", EVENT_MAX_BYTES);
            bad_line(r, r->lineno, err);
            ++*invalid;
        } else if (strspn(*line, " \t") == (size_t)len) {
            continue; /* blank line */
        } else if (!event_parse(cfg, *line, (size_t)len, ev, err, sizeof err)) {
            bad_line(r, r->lineno, err);
            ++*invalid;
        } else {
            return len;
        }
    }
}
