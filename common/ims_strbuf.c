/*
 * ims_strbuf: see ims_strbuf.h.
 */
#include "ims_strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for `more` bytes and the NUL; doubles so that n appends cost O(n) copies. */
static bool reserve(ims_strbuf *b, size_t more)
{
    if (b->failed)
        return false;
    if (more >= SIZE_MAX / 2 - b->len) {
        b->failed = true;
        return false;
    }
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

void ims_strbuf_append(ims_strbuf *b, const void *data, size_t len)
{
    if (!reserve(b, len))
        return;
    if (len)
        memcpy(b->s + b->len, data, len);
    b->len += len;
    b->s[b->len] = '\0';
}

void ims_strbuf_printf(ims_strbuf *b, const char *fmt, ...)
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

void ims_strbuf_xml(ims_strbuf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': ims_strbuf_append(b, "&amp;", 5); break;
        case '<': ims_strbuf_append(b, "&lt;", 4); break;
        case '>': ims_strbuf_append(b, "&gt;", 4); break;
        case '"': ims_strbuf_append(b, "&quot;", 6); break;
        case '\'': ims_strbuf_append(b, "&apos;", 6); break;
        default: ims_strbuf_append(b, s, 1); break;
        }
    }
}

int ims_strbuf_read(ims_strbuf *b, FILE *f)
{
    for (;;) {
        /* Read straight into the buffer, 64 KiB at a time at least. */
        if (!reserve(b, 65536))
            return -1;
        size_t r = fread(b->s + b->len, 1, b->cap - b->len - 1, f);
        b->len += r;
        b->s[b->len] = '\0';
        if (r == 0)
            return ferror(f) ? -1 : 0;
    }
}

char *ims_strbuf_take(ims_strbuf *b)
{
    char *s = NULL;
    if (b->failed)
        free(b->s);
    else
        s = b->s ? b->s : strdup("");
    memset(b, 0, sizeof(*b));
    return s;
}

void ims_strbuf_free(ims_strbuf *b)
{
    free(b->s);
    memset(b, 0, sizeof(*b));
}

void ims_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
