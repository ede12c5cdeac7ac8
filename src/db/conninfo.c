/*
 * conninfo.c — validation of PE_DATABASE_URL before anything connects, so a typo stops start-up
 * with a one-line message instead of surfacing later as "database unavailable".
 *
 * libpq's parser accepts some values it only rejects when connecting (a URI "postgresql://x:y:z"
 * parses with port "y:z"), so the options libpq reads as numbers are checked here too.
 */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "pe/db.h"

/* A comma-separated list of ports (multi-host conninfo), each 1..65535, or empty. */
static bool valid_ports(const char *v)
{
    while (*v) {
        size_t n = strcspn(v, ",");
        if (n == 0 || n > 5)
            return false;
        unsigned long port = 0;
        for (size_t i = 0; i < n; i++) {
            if (v[i] < '0' || v[i] > '9')
                return false;
            port = port * 10 + (unsigned long)(v[i] - '0');
        }
        if (port == 0 || port > 65535)
            return false;
        v += n;
        if (*v == ',')
            v++;
    }
    return true;
}

static bool valid_seconds(const char *v)
{
    if (*v == '\0' || strlen(v) > 9)
        return false;
    for (; *v; v++)
        if (*v < '0' || *v > '9')
            return false;
    return true;
}

int pe_db_conninfo_check(const char *conninfo, char *err, size_t errlen)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
    if (!opts) {
        size_t n = errmsg ? strcspn(errmsg, "\n") : 0;
        snprintf(err, errlen, "%.*s", (int)n, errmsg ? errmsg : "out of memory");
        PQfreemem(errmsg);
        return PE_EINVAL;
    }
    int rc = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "port") == 0 && !valid_ports(o->val)) {
            snprintf(err, errlen, "invalid port \"%.64s\"", o->val);
            rc = PE_EINVAL;
            break;
        }
        if (strcmp(o->keyword, "connect_timeout") == 0 && !valid_seconds(o->val)) {
            snprintf(err, errlen, "invalid connect_timeout \"%.64s\"", o->val);
            rc = PE_EINVAL;
            break;
        }
    }
    PQconninfoFree(opts);
    return rc;
}
