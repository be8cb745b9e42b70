/* keys.h — the Redis key layout (README "Redis key layout"):
 * PREFIX{RELATION:S:PROFILE}:SUFFIX[ID], the profile and the id escaped by
 * one rule ('%', '{' and '}' percent-encoded, so that an id can neither end
 * the hash tag nor forge the key of another profile). The same routine
 * produces the hash tag's bytes for the key and for its cluster slot, so
 * the two cannot disagree.
 *
 * Ownership: the caller's buffers; nothing allocated here beyond their
 * growth. Threads: none of its own; pure functions of their arguments.
 * Failure: an allocation failure sets the buffer's oom flag (jsonbuf.h). */
#ifndef RELATIOND_KEYS_H
#define RELATIOND_KEYS_H

#include "config/config.h"
#include "lib/jsonbuf.h"

#include <stdbool.h>
#include <stddef.h>

/* A side's key, PREFIX{RELATION:S:PROFILE}:SUFFIX then id (escaped) when
 * not NULL, as one RESP bulk string. */
void key_write(JsonBuf *b, const Config *cfg, const RelationDef *rel, Side side,
               const char *profile, const char *suffix, const char *id);

/* The cluster slot of a side's keys: of its hash tag RELATION:S:PROFILE,
 * the profile escaped as in the keys. */
int key_slot(const RelationDef *rel, Side side, const char *profile);

/* The hash tag of a side (RELATION:S:PROFILE, escaped), appended to b. */
void key_tag(JsonBuf *b, const RelationDef *rel, Side side, const char *profile);

/* The profile of a side key PREFIX{REL:S:PROFILE}:SUFFIX (suffix "side",
 * or "seen" for layout 1's windows), unescaped, into out (cap bytes,
 * NUL-terminated); head is the length of PREFIX{REL:S:. False when the key
 * is not one, or the profile does not fit. */
bool key_side_profile(const char *key, size_t len, size_t head, const char *suffix, char *out,
                      size_t cap);

/* The event key of an event on a side (README "Redis key layout"): the
 * first 8 bytes of SHA-1(id NUL counterpart), the counterpart as seen from
 * the side. It names the event in the side's duplicate window and outbox. */
#define EVENT_KEY_LEN 8
void event_key(const char *id, const char *counterpart, unsigned char out[EVENT_KEY_LEN]);

/* s as a glob pattern (SCAN MATCH) matching it literally, appended to b. */
void key_glob_literal(JsonBuf *b, const char *s);

#endif
