/* secrets.c — the warning for a configuration file that other users can
 * read and that holds secrets written in it (not taken from the environment
 * as ${NAME}). Reads the file on its own (stat, then jansson); names every
 * secret found by its JSON path, never by value. Any failure to read the
 * file means no warning (the loader reports the file's errors). */
#include "config/config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A secret written in the file: some of [s, end) is not ${NAME}. */
static bool literal_text(const char *s, const char *end)
{
    while (s < end) {
        const char *close = s[0] == '$' && s + 1 < end && s[1] == '{'
                                ? memchr(s + 2, '}', (size_t)(end - s - 2))
                                : NULL;
        if (!close)
            return true;
        s = close + 1;
    }
    return false;
}

/* A URL with a password written in it (not taken from the environment). */
static bool literal_password(const char *url)
{
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return false;
    p += 3;
    const char *end = p + strcspn(p, "/"), *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    const char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
    return colon && literal_text(colon + 1, at);
}

/* kafka.properties that hold secrets. */
static bool secret_property(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "sasl.jaas") ||
           strstr(key, "ssl.key.pem") || strstr(key, "oauthbearer.config");
}

#define SECRETS_NAMED 16

typedef struct {
    char names[SECRETS_NAMED][300];
    int n; /* may be more than SECRETS_NAMED: those are counted */
} Secrets;

static void name_secret(Secrets *s, const char *fmt, const char *name)
{
    if (s->n < SECRETS_NAMED)
        snprintf(s->names[s->n], sizeof s->names[s->n], fmt, name);
    s->n++;
}

bool config_secret_exposed(const char *path, char *what, size_t len)
{
    struct stat st;
    if (len == 0 || stat(path, &st) != 0 || !(st.st_mode & (S_IRGRP | S_IROTH)))
        return false;
    json_error_t e;
    json_t *root = json_load_file(path, 0, &e);
    if (!root)
        return false;
    Secrets *s = calloc(1, sizeof *s);
    if (!s) {
        json_decref(root);
        snprintf(what, len, "secrets (out of memory naming them; mode %04o)",
                 (unsigned)(st.st_mode & 07777));
        return true;
    }
    static const char *const sections[] = {"redis", "amqp", "hooks"};
    for (size_t i = 0; i < 3; i++) {
        const char *url = json_string_value(json_object_get(json_object_get(root, sections[i]), "url"));
        if (literal_password(url))
            name_secret(s, "the password of %s.url", sections[i]);
    }
    const char *token = json_string_value(json_object_get(json_object_get(root, "http"), "token"));
    if (token && literal_text(token, token + strlen(token)))
        name_secret(s, "%s", "http.token");
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(json_object_get(root, "kafka"), "properties"), key, v) {
        const char *value = json_string_value(v);
        if (secret_property(key) && value && literal_text(value, value + strlen(value)))
            name_secret(s, "kafka.properties.%s", key);
    }
    json_decref(root);
    /* "A", "A and B", "A, B and C", "A, ..., P and 3 more" */
    int named = s->n < SECRETS_NAMED ? s->n : SECRETS_NAMED;
    size_t used = 0;
    what[0] = '\0';
    for (int i = 0; i < named && used < len; i++) {
        const char *sep = i == 0 ? "" : i == s->n - 1 ? " and " : ", ";
        int w = snprintf(what + used, len - used, "%s%s", sep, s->names[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    if (s->n > named && used < len) {
        int w = snprintf(what + used, len - used, " and %d more", s->n - named);
        used += w > 0 ? (size_t)w : 0;
    }
    if (s->n && used < len)
        snprintf(what + used, len - used, " (mode %04o)", (unsigned)(st.st_mode & 07777));
    bool found = s->n > 0;
    free(s);
    return found;
}

