/*
 * config.c -- loads the user's JSON configuration through one schema table.
 *
 * The schema lists every accepted key with its type and where it lands in nova_config;
 * validation walks the document against it, so a key unknown to the schema, a value of
 * the wrong type, or a missing required key is reported with its full dotted path.
 * Values are never echoed in messages: some keys hold secrets.
 */
#include "nova/config.h"

#include "common/err.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nova/log.h"

#define CONFIG_MAX_BYTES (4u * 1024u * 1024u)

typedef enum field_type {
    FIELD_STRING,
    FIELD_INTEGER,
    FIELD_OBJECT,      /* nested schema; `present` (an int) set when the object appears */
    FIELD_STRING_LIST, /* array of strings */
    FIELD_DURATIONS,   /* object of name -> duration */
    FIELD_DURATION,    /* one duration, stored as uint64_t seconds */
} field_type;

typedef struct field {
    const char *key;
    field_type type;
    bool required;
    size_t offset;                /* where the value goes in nova_config */
    size_t count_offset;          /* lists and maps: where the count goes */
    const struct field *children; /* objects: NULL-key terminated */
} field;

#define STR(k, member, req) {k, FIELD_STRING, req, offsetof(nova_config, member), 0, NULL}
#define END {NULL, FIELD_STRING, false, 0, 0, NULL}

static const field s3_credentials_fields[] = {
    STR("aws_access_key_id", storage.s3.access_key_id, true),
    STR("aws_secret_access_key", storage.s3.secret_access_key, true),
    END,
};

static const field s3_fields[] = {
    STR("bucket", storage.s3.bucket, true),
    STR("region", storage.s3.region, false),
    STR("endpoint", storage.s3.endpoint, false),
    {"credentials", FIELD_OBJECT, false, SIZE_MAX, 0, s3_credentials_fields},
    END,
};

static const field azure_fields[] = {
    STR("container", storage.azure.container, true),
    STR("connection_string", storage.azure.connection_string, false),
    STR("account", storage.azure.account, false),
    STR("key", storage.azure.key, false),
    STR("sas", storage.azure.sas, false),
    END,
};

static const field gcs_fields[] = {
    STR("bucket", storage.gcs.bucket, true),
    STR("endpoint", storage.gcs.endpoint, false),
    STR("credentials_file", storage.gcs.credentials_file, false),
    STR("hmac_access_id", storage.gcs.hmac_access_id, false),
    STR("hmac_secret", storage.gcs.hmac_secret, false),
    END,
};

static const field storage_fields[] = {
    STR("local_path", storage.local_path, false),
    {"connections", FIELD_INTEGER, false, offsetof(nova_config, storage.connections),
     0, NULL},
    {"retry_deadline", FIELD_DURATION, false, offsetof(nova_config, storage.retry_deadline_seconds),
     0, NULL},
    {"s3", FIELD_OBJECT, false, offsetof(nova_config, storage.s3.present), 0, s3_fields},
    {"azure", FIELD_OBJECT, false, offsetof(nova_config, storage.azure.present), 0, azure_fields},
    {"gcs", FIELD_OBJECT, false, offsetof(nova_config, storage.gcs.present), 0, gcs_fields},
    END,
};

static const field root_fields[] = {
    STR("backup_dir", backup_dir, false),
    STR("recovery_dir", recovery_dir, false),
    STR("integrity_dir", integrity_dir, false),
    {"retention_days", FIELD_INTEGER, false, offsetof(nova_config, retention_days), 0, NULL},
    STR("compression", compression, false),
    STR("log_file", log_file, false),
    STR("log_level", log_level, false),
    {"storage", FIELD_OBJECT, false, SIZE_MAX, 0, storage_fields},
    {"rpo_targets", FIELD_DURATIONS, false, offsetof(nova_config, rpo_targets),
     offsetof(nova_config, rpo_target_count), NULL},
    {"rto_targets", FIELD_DURATIONS, false, offsetof(nova_config, rto_targets),
     offsetof(nova_config, rto_target_count), NULL},
    {"monitor_files", FIELD_STRING_LIST, false, offsetof(nova_config, monitor_files),
     offsetof(nova_config, monitor_file_count), NULL},
    END,
};

typedef struct parse_ctx {
    nova_config *config;
    const char *origin;
} parse_ctx;

static void *slot(nova_config *config, size_t offset) { return (char *)config + offset; }

/* Formats a key path for messages; a path too long for the buffer ends in "...". */
static void format_path(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void format_path(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= size && size > 4)
        memcpy(out + size - 4, "...", 4);
}

static const char *json_type_name(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static int type_error(const parse_ctx *ctx, const char *path, const char *expected,
                      const json_t *value)
{
    return nova_fail(NOVA_ECONFIG, "config '%s': key '%s' must be %s, not %s", ctx->origin, path,
                     expected, json_type_name(value));
}

static int dup_string(char **out, const char *text)
{
    char *copy = strdup(text);
    if (!copy)
        return nova_fail(NOVA_ENOMEM, "unable to copy a configuration value");
    free(*out);
    *out = copy;
    return 0;
}

int nova_duration_parse(uint64_t *seconds, const char *text)
{
    char *end = NULL;
    unsigned long long value, unit = 1;

    if (!text || text[0] < '0' || text[0] > '9')
        return nova_fail(NOVA_EINVALID, "invalid duration '%s'", text ? text : "");
    errno = 0;
    value = strtoull(text, &end, 10);
    if (errno != 0)
        return nova_fail(NOVA_EINVALID, "duration '%s' is out of range", text);
    if (end[0] != '\0' && end[1] != '\0')
        return nova_fail(NOVA_EINVALID, "invalid duration '%s' (use e.g. 90s, 15m, 4h, 2d, 1w)",
                         text);
    switch (end[0]) {
    case '\0':
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    default:
        return nova_fail(NOVA_EINVALID, "invalid duration unit in '%s' (use s, m, h, d or w)",
                         text);
    }
    if (value > UINT64_MAX / unit)
        return nova_fail(NOVA_EINVALID, "duration '%s' is out of range", text);
    *seconds = (uint64_t)(value * unit);
    return 0;
}

static int parse_duration_value(const parse_ctx *ctx, const char *path, const json_t *value,
                                uint64_t *seconds)
{
    if (json_is_integer(value)) {
        if (json_integer_value(value) < 0)
            return nova_fail(NOVA_ECONFIG, "config '%s': key '%s' must not be negative",
                             ctx->origin, path);
        *seconds = (uint64_t)json_integer_value(value);
        return 0;
    }
    if (!json_is_string(value))
        return type_error(ctx, path, "a duration (seconds or a string like \"15m\")", value);
    if (nova_duration_parse(seconds, json_string_value(value)) < 0)
        return nova_fail(NOVA_ECONFIG, "config '%s': key '%s' is not a duration (use e.g. 900, "
                         "\"15m\", \"4h\", \"1d\")", ctx->origin, path);
    return 0;
}

static int parse_durations(const parse_ctx *ctx, const field *f, const char *path,
                           const json_t *value)
{
    nova_duration_target **targets = slot(ctx->config, f->offset);
    size_t *count = slot(ctx->config, f->count_offset);
    const char *name;
    json_t *item;
    char item_path[512];

    if (!json_is_object(value))
        return type_error(ctx, path, "an object of name: duration", value);
    *targets = calloc(json_object_size(value) + 1, sizeof(**targets));
    if (!*targets)
        return nova_fail(NOVA_ENOMEM, "unable to allocate %s", path);
    json_object_foreach((json_t *)(uintptr_t)value, name, item)
    {
        nova_duration_target *target = &(*targets)[*count];
        format_path(item_path, sizeof(item_path), "%s.%s", path, name);
        NOVA_TRY(parse_duration_value(ctx, item_path, item, &target->seconds));
        NOVA_TRY(dup_string(&target->name, name));
        (*count)++;
    }
    return 0;
}

static int parse_string_list(const parse_ctx *ctx, const field *f, const char *path,
                             const json_t *value)
{
    char ***list = slot(ctx->config, f->offset);
    size_t *count = slot(ctx->config, f->count_offset);
    char item_path[512];

    if (!json_is_array(value))
        return type_error(ctx, path, "an array of strings", value);
    *list = calloc(json_array_size(value) + 1, sizeof(**list));
    if (!*list)
        return nova_fail(NOVA_ENOMEM, "unable to allocate %s", path);
    for (size_t i = 0; i < json_array_size(value); i++) {
        const json_t *item = json_array_get(value, i);
        format_path(item_path, sizeof(item_path), "%s[%zu]", path, i);
        if (!json_is_string(item))
            return type_error(ctx, item_path, "a string", item);
        NOVA_TRY(dup_string(&(*list)[i], json_string_value(item)));
        (*count)++;
    }
    return 0;
}

static int parse_object(const parse_ctx *ctx, const field *fields, const char *prefix,
                        const json_t *object);

static int parse_field(const parse_ctx *ctx, const field *f, const char *path, const json_t *value)
{
    switch (f->type) {
    case FIELD_STRING:
        if (!json_is_string(value))
            return type_error(ctx, path, "a string", value);
        return dup_string(slot(ctx->config, f->offset), json_string_value(value));
    case FIELD_INTEGER:
        if (!json_is_integer(value))
            return type_error(ctx, path, "an integer", value);
        if (json_integer_value(value) < 0)
            return nova_fail(NOVA_ECONFIG, "config '%s': key '%s' must not be negative",
                             ctx->origin, path);
        *(int64_t *)slot(ctx->config, f->offset) = json_integer_value(value);
        return 0;
    case FIELD_OBJECT:
        if (!json_is_object(value))
            return type_error(ctx, path, "an object", value);
        if (f->offset != SIZE_MAX)
            *(int *)slot(ctx->config, f->offset) = 1;
        return parse_object(ctx, f->children, path, value);
    case FIELD_STRING_LIST:
        return parse_string_list(ctx, f, path, value);
    case FIELD_DURATIONS:
        return parse_durations(ctx, f, path, value);
    case FIELD_DURATION:
        return parse_duration_value(ctx, path, value, slot(ctx->config, f->offset));
    }
    return nova_fail(NOVA_EINTERNAL, "config schema has an unknown field type");
}

static void join_path(char *out, size_t size, const char *prefix, const char *key)
{
    if (prefix[0])
        format_path(out, size, "%s.%s", prefix, key);
    else
        format_path(out, size, "%s", key);
}

static int parse_object(const parse_ctx *ctx, const field *fields, const char *prefix,
                        const json_t *object)
{
    const char *key;
    json_t *value;
    char path[512];

    json_object_foreach((json_t *)(uintptr_t)object, key, value)
    {
        const field *f = fields;
        while (f->key && strcmp(f->key, key) != 0)
            f++;
        join_path(path, sizeof(path), prefix, key);
        if (!f->key)
            return nova_fail(NOVA_ECONFIG, "config '%s': unknown key '%s'", ctx->origin, path);
        NOVA_TRY(parse_field(ctx, f, path, value));
    }
    for (const field *f = fields; f->key; f++) {
        if (f->required && !json_object_get(object, f->key)) {
            join_path(path, sizeof(path), prefix, f->key);
            return nova_fail(NOVA_ECONFIG, "config '%s': missing required key '%s'", ctx->origin,
                             path);
        }
    }
    return 0;
}

/* Checks of a value's content. (compression is checked where it is used, by the codec
 * module, so that common/ depends on nothing above it.) */
static int validate_values(const parse_ctx *ctx)
{
    const nova_config *config = ctx->config;
    if (config->log_level && nova_log_level_parse(config->log_level) < 0)
        return nova_fail(NOVA_ECONFIG, "config '%s': key 'log_level' must be one of error, warn, "
                         "info, debug, trace or off", ctx->origin);
    if (config->retention_days > 36500)
        return nova_fail(NOVA_ECONFIG, "config '%s': key 'retention_days' is larger than 100 years",
                         ctx->origin);
    if (config->storage.connections > NOVA_CONFIG_MAX_CONNECTIONS)
        return nova_fail(NOVA_ECONFIG, "config '%s': key 'storage.connections' must be "
                         "0 (the backend's default) to %d", ctx->origin,
                         NOVA_CONFIG_MAX_CONNECTIONS);
    if (config->storage.retry_deadline_seconds > NOVA_CONFIG_MAX_RETRY_DEADLINE)
        return nova_fail(NOVA_ECONFIG, "config '%s': key 'storage.retry_deadline' is longer than "
                         "a day", ctx->origin);
    return 0;
}

int nova_config_new_default(nova_config **out)
{
    nova_config *config = calloc(1, sizeof(*config));
    *out = NULL;
    if (!config)
        return nova_fail(NOVA_ENOMEM, "unable to allocate a configuration");
    config->retention_days = NOVA_CONFIG_DEFAULT_RETENTION_DAYS;
    config->storage.retry_deadline_seconds = NOVA_CONFIG_DEFAULT_RETRY_DEADLINE;
    *out = config;
    return 0;
}

int nova_config_parse(nova_config **out, const char *json, size_t len, const char *origin)
{
    json_error_t jerr;
    json_t *root = NULL;
    nova_config *config = NULL;
    parse_ctx ctx;
    int rc;

    *out = NULL;
    if (len > CONFIG_MAX_BYTES)
        return nova_fail(NOVA_ECONFIG, "config '%s' is larger than %u bytes", origin,
                         CONFIG_MAX_BYTES);
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return nova_fail(NOVA_ECONFIG, "config '%s' line %d column %d: %s", origin, jerr.line,
                         jerr.column, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return nova_fail(NOVA_ECONFIG, "config '%s': the top level must be a JSON object", origin);
    }
    rc = nova_config_new_default(&config);
    if (rc < 0)
        goto out;
    ctx.config = config;
    ctx.origin = origin;
    rc = parse_object(&ctx, root_fields, "", root);
    if (rc == 0)
        rc = validate_values(&ctx);
out:
    json_decref(root);
    if (rc < 0) {
        nova_config_free(config);
        return rc;
    }
    *out = config;
    return 0;
}

int nova_config_load_file(nova_config **out, const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (!f)
        return nova_fail_errno(NOVA_ECONFIG, errno, "unable to open config '%s'", path);
    text = malloc(CONFIG_MAX_BYTES + 1);
    if (!text) {
        fclose(f);
        return nova_fail(NOVA_ENOMEM, "unable to read config '%s'", path);
    }
    len = fread(text, 1, CONFIG_MAX_BYTES + 1, f);
    if (ferror(f))
        rc = nova_fail(NOVA_ECONFIG, "unable to read config '%s'", path);
    else
        rc = nova_config_parse(out, text, len, path);
    fclose(f);
    free(text);
    return rc;
}

static void free_targets(nova_duration_target *targets, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(targets[i].name);
    free(targets);
}

static void free_strings_in(nova_config *config, const field *fields)
{
    for (const field *f = fields; f->key; f++) {
        if (f->type == FIELD_STRING)
            free(*(char **)slot(config, f->offset));
        else if (f->type == FIELD_OBJECT)
            free_strings_in(config, f->children);
    }
}

void nova_config_free(nova_config *config)
{
    if (!config)
        return;
    free_strings_in(config, root_fields);
    free_targets(config->rpo_targets, config->rpo_target_count);
    free_targets(config->rto_targets, config->rto_target_count);
    for (size_t i = 0; i < config->monitor_file_count; i++)
        free(config->monitor_files[i]);
    free(config->monitor_files);
    free(config);
}
