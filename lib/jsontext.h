/* jsontext.h — a value's text inside a JSON document, for what jansson keeps
 * only in a lossy form: a number's decimal as written (jansson has a double).
 *
 * Contract: the text must be a document jansson has accepted (valid JSON);
 * the functions then find what jansson found. On any other text they never
 * read outside p..end and return NULL/false where the text is not as
 * expected. p may be NULL (what a previous step did not find): then NULL
 * or false, so that steps chain. Pure functions over borrowed text: no allocation, any thread.
 *
 * Layering: lib/, the lowest layer (libc only), so that both the
 * configuration (config/config.c: threshold values) and the events
 * (handlers/event.c: float weights) use this one reader, as they use
 * lib/fixed.h, the rounding of such a text. */
#ifndef RELATIOND_JSONTEXT_H
#define RELATIOND_JSONTEXT_H

#include <stdbool.h>
#include <stddef.h>

/* p past JSON whitespace (space, tab, LF, CR). */
const char *jsontext_skip_ws(const char *p, const char *end);

/* The value of the member name of the object at p (leading whitespace
 * skipped), or NULL when p holds no object or the object has no such member.
 * Keys are compared escapes decoded (\u0061, \/ ...); name is ASCII without
 * NUL. A name present more than once: the last one, as jansson keeps it when
 * it does not reject duplicates. Nested values and strings that look like
 * the name are skipped. */
const char *jsontext_member(const char *p, const char *end, const char *name);

/* The element i (from 0) of the array at p (leading whitespace skipped), or
 * NULL when p holds no array or the array is shorter. */
const char *jsontext_element(const char *p, const char *end, size_t i);

/* The text of the number at p: *s, *n bytes (a JSON number literal when the
 * document is valid). False when p holds no number. */
bool jsontext_number(const char *p, const char *end, const char **s, size_t *n)
    __attribute__((warn_unused_result));

#endif
