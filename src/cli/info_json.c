/*
 * info_json.c -- one backup as JSON, with the field names of the issue and the user's
 * vocabulary; shared by `nova backup --json`, `nova list --json` and `nova show --json`
 * so scripts see one shape everywhere.
 */
#include "cli/cli.h"

#include "nova/backup.h"

#include <jansson.h>
#include <time.h>

void cli_format_time(int64_t ns, char *out, size_t size)
{
    time_t seconds = (time_t)(ns / 1000000000LL);
    struct tm tm;
    localtime_r(&seconds, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static json_t *iso_time(int64_t ns)
{
    char text[64];
    time_t seconds = (time_t)(ns / 1000000000LL);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(text);
}

json_t *cli_backup_info_json(const nova_backup_info *info)
{
    json_t *tags = json_object(), *paths = json_array();
    for (size_t i = 0; i < info->tag_count; i++)
        json_object_set_new(tags, info->tags[i].key, json_string(info->tags[i].value));
    for (size_t i = 0; i < info->path_count; i++)
        json_array_append_new(paths, json_string(info->paths[i]));
    return json_pack(
        "{s:s, s:s, s:o, s:s, s:o, s:o, s:f, s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:I}",
        "backup_id", info->backup_id, "strategy", nova_backup_strategy_name(info->strategy),
        "parent_backup_id",
        info->parent_backup_id[0] ? json_string(info->parent_backup_id) : json_null(), "status",
        nova_backup_status_name(info->status), "started_at", iso_time(info->started_ns),
        "finished_at", iso_time(info->finished_ns), "duration_seconds",
        (double)(info->finished_ns - info->started_ns) / 1e9, "host", info->host, "username",
        info->username, "tags", tags, "paths", paths, "files_new", (json_int_t)info->files_new,
        "files_changed", (json_int_t)info->files_changed, "files_unchanged",
        (json_int_t)info->files_unchanged, "bytes_read", (json_int_t)info->bytes_read,
        "original_size", (json_int_t)info->original_size, "compressed_size",
        (json_int_t)info->compressed_size, "bytes_added", (json_int_t)info->bytes_added,
        "errors", (json_int_t)info->errors);
}
