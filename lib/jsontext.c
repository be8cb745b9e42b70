/* jsontext.c — a value's text inside a JSON document (jsontext.h).
 *
 * A small reader that walks the text token by token, trusting that jansson
 * has validated it (so a number ends where its characters end, and strings
 * end at the first unescaped quote); every step is bounded by end all the
 * same. */
#include "lib/jsontext.h"

const char *jsontext_skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* After the string at p (its opening quote). */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end && *p != '"'; p++)
        if (*p == '\\' && p + 1 < end)
            p++;
    return p < end ? p + 1 : end;
}

/* After the value at p (any depth). */
static const char *skip_value(const char *p, const char *end)
{
    int depth = 0;
    do {
        p = jsontext_skip_ws(p, end);
        if (p >= end)
            return end;
        if (*p == '"')
            p = skip_string(p, end);
        else if (*p == '{' || *p == '[')
            depth++, p++;
        else if (*p == '}' || *p == ']')
            depth--, p++;
        else if (*p == ',' || *p == ':')
            p++;
        else /* a number or a word */
            while (p < end && *p != ',' && *p != ':' && *p != ']' && *p != '}' && *p != ' ' &&
                   *p != '\t' && *p != '\n' && *p != '\r')
                p++;
    } while (depth > 0);
    return p;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - 'A' + 10;
}

/* Whether the string at p (its opening quote), escapes decoded, is name
 * (ASCII: an escape of anything else cannot match). */
static bool string_is(const char *p, const char *end, const char *name)
{
    for (p++; p < end && *p != '"'; name++) {
        int c = (unsigned char)*p++;
        if (c == '\\') {
            if (p >= end)
                return false;
            switch (c = *p++) {
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u':
                if (end - p < 4)
                    return false;
                c = hex_digit(p[0]) << 12 | hex_digit(p[1]) << 8 | hex_digit(p[2]) << 4 |
                    hex_digit(p[3]);
                p += 4;
                break;
            }
        }
        if (c == 0 || c != (unsigned char)*name)
            return false;
    }
    return *name == '\0';
}

/* Inside the object or array (open: '{' or '[') at p, at its first token;
 * NULL when p is NULL or holds no such value. */
static const char *enter(const char *p, const char *end, char open)
{
    if (!p)
        return NULL;
    p = jsontext_skip_ws(p, end);
    if (p >= end || *p != open)
        return NULL;
    return jsontext_skip_ws(p + 1, end);
}

const char *jsontext_member(const char *p, const char *end, const char *name)
{
    const char *found = NULL;
    if (!(p = enter(p, end, '{')))
        return NULL;
    while (p < end && *p == '"') {
        bool hit = string_is(p, end, name);
        p = jsontext_skip_ws(skip_string(p, end), end);
        if (p >= end || *p != ':')
            return NULL;
        p = jsontext_skip_ws(p + 1, end);
        if (hit)
            found = p;
        p = jsontext_skip_ws(skip_value(p, end), end);
        if (p < end && *p == ',')
            p = jsontext_skip_ws(p + 1, end);
        else
            break;
    }
    return p < end && *p == '}' ? found : NULL;
}

const char *jsontext_element(const char *p, const char *end, size_t i)
{
    if (!(p = enter(p, end, '[')) || p >= end || *p == ']')
        return NULL;
    for (size_t k = 0; k < i; k++) {
        p = jsontext_skip_ws(skip_value(p, end), end);
        if (p >= end || *p != ',')
            return NULL;
        p = jsontext_skip_ws(p + 1, end);
    }
    return p < end ? p : NULL;
}

bool jsontext_number(const char *p, const char *end, const char **s, size_t *n)
{
    if (!p)
        return false;
    p = jsontext_skip_ws(p, end);
    if (p >= end || !(*p == '-' || (*p >= '0' && *p <= '9')))
        return false;
    const char *e = p;
    while (e < end && ((*e >= '0' && *e <= '9') || *e == '-' || *e == '+' || *e == '.' ||
                       *e == 'e' || *e == 'E'))
        e++;
    *s = p;
    *n = (size_t)(e - p);
    return true;
}
