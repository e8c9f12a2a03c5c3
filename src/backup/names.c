/*
 * names.c -- the user's names for strategies and statuses, in both directions.
 */
#include "nova/backup.h"

#include "common/err.h"

#include <strings.h>

static const char *const strategy_names[] = {"FULL", "INCREMENTAL", "DIFFERENTIAL"};
static const char *const status_names[] = {"completed", "partial", "failed"};

const char *nova_backup_strategy_name(nova_backup_strategy strategy)
{
    return (unsigned)strategy < 3 ? strategy_names[strategy] : "UNKNOWN";
}

int nova_backup_strategy_parse(const char *text, nova_backup_strategy *out)
{
    for (int i = 0; i < 3; i++) {
        if (text && strcasecmp(text, strategy_names[i]) == 0) {
            *out = (nova_backup_strategy)i;
            return 0;
        }
    }
    return nova_fail(NOVA_EINVALID, "unknown strategy '%s' (use full, incremental or "
                     "differential)", text ? text : "");
}

const char *nova_backup_status_name(nova_backup_status status)
{
    return (unsigned)status < 3 ? status_names[status] : "unknown";
}

int nova_backup_status_parse(const char *text, nova_backup_status *out)
{
    for (int i = 0; i < 3; i++) {
        if (text && strcasecmp(text, status_names[i]) == 0) {
            *out = (nova_backup_status)i;
            return 0;
        }
    }
    return nova_fail(NOVA_EINVALID, "unknown status '%s' (use completed, partial or failed)",
                     text ? text : "");
}
