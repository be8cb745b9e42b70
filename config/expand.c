/* expand.c — ${NAME} in every string of the configuration document,
 * replaced by the environment variable NAME before any key is read. An unset
 * variable, an unterminated ${ or an empty or over-long name fails with the
 * JSON path of the string; no message shows the value (it may hold a
 * secret). Replaces the strings in place in the jansson tree (the caller's);
 * reads the environment, so not to be called while another thread sets it. */
#include "config/internal.h"
#include "lib/grow.h"

#include <stdlib.h>
#include <string.h>


static bool expand_string(Ctx *c, const char *path, const char *in, char **out)
{
    size_t cap = strlen(in) + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return fail(c, path, "out of memory");
    for (const char *p = in; *p;) {
        const char *add = p;
        size_t addlen = 1;
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            if (!end) {
                free(buf);
                /* The value is not shown: it may hold a secret. */
                return fail(c, path, "unterminated ${ at byte %zu of the value", (size_t)(p - in));
            }
            char name[128];
            size_t nlen = (size_t)(end - p - 2);
            if (nlen == 0 || nlen >= sizeof name) {
                free(buf);
                return fail(c, path, "bad variable name at byte %zu of the value", (size_t)(p - in));
            }
            memcpy(name, p + 2, nlen);
            name[nlen] = '\0';
            add = getenv(name);
            if (!add) {
                free(buf);
                return fail(c, path, "environment variable %s is not set", name);
            }
            addlen = strlen(add);
            p = end + 1;
        } else {
            p++;
        }
        if (!GROW_RESERVE(buf, cap, len + addlen + 1, 0)) {
            free(buf);
            return fail(c, path, "out of memory");
        }
        memcpy(buf + len, add, addlen);
        len += addlen;
    }
    buf[len] = '\0';
    *out = buf;
    return true;
}

bool expand_all(Ctx *c, json_t *node, const char *path)
{
    char sub[PATH_MAX_LEN];
    if (json_is_object(node)) {
        const char *key;
        json_t *v;
        json_object_foreach(node, key, v) {
            join(sub, sizeof sub, path, key);
            if (json_is_string(v)) {
                char *s;
                if (!expand_string(c, sub, json_string_value(v), &s))
                    return false;
                int rc = json_object_set_new(node, key, json_string(s));
                free(s);
                if (rc != 0)
                    return fail(c, sub, "out of memory");
            } else if (!expand_all(c, v, sub)) {
                return false;
            }
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v) {
            join_index(sub, sizeof sub, path, i);
            if (json_is_string(v)) {
                char *s;
                if (!expand_string(c, sub, json_string_value(v), &s))
                    return false;
                int rc = json_array_set_new(node, i, json_string(s));
                free(s);
                if (rc != 0)
                    return fail(c, sub, "out of memory");
            } else if (!expand_all(c, v, sub)) {
                return false;
            }
        }
    }
    return true;
}

