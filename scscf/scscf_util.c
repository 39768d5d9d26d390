/*
 * scscf_util: see scscf_util.h.
 */
#include "scscf_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ims_aka.h"

/* ---------- string builder ---------- */

static bool reserve(scscf_buf *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void scscf_buf_append(scscf_buf *b, const char *s, size_t len)
{
    if (!reserve(b, len))
        return;
    memcpy(b->s + b->len, s, len);
    b->len += len;
    b->s[b->len] = '\0';
}

void scscf_buf_printf(scscf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void scscf_buf_xml(scscf_buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': scscf_buf_append(b, "&amp;", 5); break;
        case '<': scscf_buf_append(b, "&lt;", 4); break;
        case '>': scscf_buf_append(b, "&gt;", 4); break;
        case '"': scscf_buf_append(b, "&quot;", 6); break;
        case '\'': scscf_buf_append(b, "&apos;", 6); break;
        default: scscf_buf_append(b, s, 1); break;
        }
    }
}

char *scscf_buf_take(scscf_buf *b)
{
    char *s = NULL;
    if (b->failed)
        free(b->s);
    else
        s = b->s ? b->s : strdup("");
    memset(b, 0, sizeof(*b));
    return s;
}

void scscf_buf_free(scscf_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof(*b));
}

/* ---------- misc ---------- */

void scscf_token(char *out, size_t n)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint8_t raw[64];
    if (n > sizeof(raw))
        n = sizeof(raw);
    if (ims_random(raw, n))
        memset(raw, 0, n);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[raw[i] % 36];
    out[n] = '\0';
}

char *scscf_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

const char *scscf_param(const char *const *params, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; params && params[i]; i++) {
        const char *p = params[i];
        if (strncasecmp(p, name, nl) != 0)
            continue;
        const char *v = p + nl;
        while (*v == ' ' || *v == '\t')
            v++;
        if (*v != '=')
            continue;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t o = 0;
        if (*v == '"') {
            v++;
            for (; *v && *v != '"'; v++) {
                if (*v == '\\' && v[1])
                    v++;
                if (o + 1 >= len)
                    return NULL;
                buf[o++] = *v;
            }
        } else {
            for (; *v && *v != ' ' && *v != '\t'; v++) {
                if (o + 1 >= len)
                    return NULL;
                buf[o++] = *v;
            }
        }
        buf[o] = '\0';
        return buf;
    }
    return NULL;
}
