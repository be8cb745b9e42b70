/* secrets.c — the warning for a configuration file that other users can
 * read and that holds secrets written in it (not taken from the environment
 * as ${NAME}): URL passwords, http.token, secret kafka properties, a hook's
 * secret and credential headers (names holding auth, token, key, secret or
 * cookie). Reads the file on its own (stat, then jansson); names every
 * secret found by its JSON path, never by value. Any failure to read the
 * file means no warning (the loader reports the file's errors). */
#include "config/config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

static bool literal(const char *value)
{
    return value && literal_text(value, value + strlen(value));
}

/* PATH.properties of o (kafka, a kafka hook) that hold secrets. */
static void kafka_secrets(Secrets *s, const json_t *o, const char *path)
{
    const char *key;
    json_t *v;
    char name[300];
    json_object_foreach(json_object_get(o, "properties"), key, v) {
        snprintf(name, sizeof name, "%s.properties.%s", path, key);
        if (secret_property(key) && literal(json_string_value(v)))
            name_secret(s, "%s", name);
    }
}

/* Header names that carry credentials (compared ignoring case). */
static bool secret_header(const char *name)
{
    return strcasestr(name, "auth") || strcasestr(name, "token") || strcasestr(name, "key") ||
           strcasestr(name, "secret") || strcasestr(name, "cookie");
}

/* One hook at path: its url's password, its secret, its credential
 * headers, its kafka properties. */
static void hook_secrets(Secrets *s, const json_t *h, const char *path)
{
    char name[300];
    if (literal_password(json_string_value(json_object_get(h, "url"))))
        name_secret(s, "the password of %s.url", path);
    snprintf(name, sizeof name, "%s.secret", path);
    if (literal(json_string_value(json_object_get(h, "secret"))))
        name_secret(s, "%s", name);
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(h, "headers"), key, v) {
        snprintf(name, sizeof name, "%s.headers.%s", path, key);
        if (secret_header(key) && literal(json_string_value(v)))
            name_secret(s, "%s", name);
    }
    kafka_secrets(s, h, path);
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
    static const char *const sections[] = {"redis", "amqp"};
    for (size_t i = 0; i < 2; i++) {
        const char *url = json_string_value(json_object_get(json_object_get(root, sections[i]), "url"));
        if (literal_password(url))
            name_secret(s, "the password of %s.url", sections[i]);
    }
    json_t *hooks = json_object_get(root, "hooks");
    if (json_is_object(hooks)) {
        hook_secrets(s, hooks, "hooks");
    } else {
        size_t i;
        json_t *h;
        json_array_foreach(hooks, i, h) {
            char at[32];
            snprintf(at, sizeof at, "hooks[%zu]", i);
            hook_secrets(s, h, at);
        }
    }
    const char *token = json_string_value(json_object_get(json_object_get(root, "http"), "token"));
    if (token && literal_text(token, token + strlen(token)))
        name_secret(s, "%s", "http.token");
    token = json_string_value(json_object_get(json_object_get(root, "http"), "write_token"));
    if (token && literal_text(token, token + strlen(token)))
        name_secret(s, "%s", "http.write_token");
    kafka_secrets(s, json_object_get(root, "kafka"), "kafka");
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

