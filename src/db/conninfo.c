/*
 * conninfo.c — validation of PE_DATABASE_URL before anything connects, so a typo stops start-up
 * with a one-line message instead of surfacing later as "database unavailable".
 */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "pe/db.h"

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
    PQconninfoFree(opts);
    return 0;
}
