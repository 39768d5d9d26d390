/*
 * scscf_util: see scscf_util.h.
 */
#include "scscf_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ims_aka.h"

/* ---------- misc ---------- */

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
