/*
 * config.h -- the user's JSON configuration.
 *
 * Keys (all optional unless noted; unknown keys, wrong types and missing required
 * values are NOVA_ECONFIG errors naming the key):
 *   backup_dir, recovery_dir, integrity_dir     strings (directories)
 *   retention_days                              integer >= 0 (default 30)
 *   compression                                 "zstd[:level]", "lzma[:level]", "lz4", "none"
 *   log_file, log_level                         string, "error".."trace"
 *   storage.local_path                          string
 *   storage.connections                         integer 0..64: requests in flight to the
 *                                               storage at once (pack uploads of a backup,
 *                                               pack downloads of a restore); 0 = the
 *                                               backend's default: 2 for a local
 *                                               directory, 8 for a cloud
 *   storage.retry_deadline                      duration (default 60 s): how long a cloud
 *                                               request is retried after transient failures
 *                                               (5xx, throttling, dropped connections);
 *                                               0 = no retries
 *   storage.s3 {bucket (required), region, endpoint,
 *               credentials {aws_access_key_id, aws_secret_access_key} (both required)}
 *   storage.azure {container (required), connection_string, account, key, sas}
 *   storage.gcs {bucket (required), endpoint, credentials_file, hmac_access_id, hmac_secret}
 *   rpo_targets, rto_targets                    {name: duration}, a duration being a number
 *                                               of seconds or a string like "15m", "4h", "1d"
 *   monitor_files                               array of strings
 */
#ifndef NOVA_CONFIG_H
#define NOVA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nova_duration_target {
    char *name;
    uint64_t seconds;
} nova_duration_target;

typedef struct nova_s3_config {
    int present;
    char *bucket;
    char *region;
    char *endpoint;
    char *access_key_id;
    char *secret_access_key; /* secret: never logged */
} nova_s3_config;

typedef struct nova_azure_config {
    int present;
    char *container;
    char *connection_string; /* secret */
    char *account;
    char *key; /* secret */
    char *sas; /* secret */
} nova_azure_config;

typedef struct nova_gcs_config {
    int present;
    char *bucket;
    char *endpoint;
    char *credentials_file;
    char *hmac_access_id;
    char *hmac_secret; /* secret */
} nova_gcs_config;

typedef struct nova_config {
    char *backup_dir;
    char *recovery_dir;
    char *integrity_dir;
    int64_t retention_days;
    char *compression;
    char *log_file;
    char *log_level;
    struct {
        char *local_path;
        int64_t connections;             /* 0 = the backend's default */
        uint64_t retry_deadline_seconds; /* 0 = no retries */
        nova_s3_config s3;
        nova_azure_config azure;
        nova_gcs_config gcs;
    } storage;
    nova_duration_target *rpo_targets;
    size_t rpo_target_count;
    nova_duration_target *rto_targets;
    size_t rto_target_count;
    char **monitor_files;
    size_t monitor_file_count;
} nova_config;

#define NOVA_CONFIG_DEFAULT_RETENTION_DAYS 30
#define NOVA_CONFIG_DEFAULT_RETRY_DEADLINE 60
#define NOVA_CONFIG_MAX_RETRY_DEADLINE 86400
#define NOVA_CONFIG_MAX_CONNECTIONS 64

/* An empty configuration with the defaults. */
int nova_config_new_default(nova_config **out);
/* Parses a JSON document; origin names it in errors (a path or "<string>"). */
int nova_config_parse(nova_config **out, const char *json, size_t len, const char *origin);
int nova_config_load_file(nova_config **out, const char *path);
void nova_config_free(nova_config *config);

/* Parses "90", "90s", "15m", "4h", "2d", "1w" into seconds; NOVA_EINVALID otherwise. */
int nova_duration_parse(uint64_t *seconds, const char *text);

#ifdef __cplusplus
}
#endif
#endif
