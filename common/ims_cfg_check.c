/*
 * ims_cfg_check: value checks for configuration fields (see ims_cfg_check.h).
 */
#include "ims_cfg_check.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

int ims_cfg_check_sip_uri(const char *value, char *why, size_t whylen)
{
    bool ok = false;
    su_home_t *home = su_home_new(sizeof(su_home_t));
    if (!home) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    url_t *u = value && *value && !strpbrk(value, " \t\r\n<>\"") ? url_make(home, value) : NULL;
    ok = u && (u->url_type == url_sip || u->url_type == url_sips) && u->url_host && *u->url_host;
    su_home_unref(home);
    if (!ok)
        snprintf(why, whylen, "not a sip: URI with a host (e.g. sip:icscf.ims.lab:5062)");
    return ok ? 0 : -1;
}

int ims_cfg_check_domain(const char *value, char *why, size_t whylen)
{
    if (value && *value && !strpbrk(value, " \t\r\n:;,@<>\"/"))
        return 0;
    snprintf(why, whylen, "not a domain name (e.g. ims.lab)");
    return -1;
}

int ims_cfg_check_line(const char *value, char *why, size_t whylen)
{
    if (value && *value && !strpbrk(value, "\r\n"))
        return 0;
    snprintf(why, whylen, "must be a non-empty single line");
    return -1;
}
