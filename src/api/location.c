/*
 * location.c -- from a repository location to an opened storage backend.
 *
 *   DIR | local:DIR                          a local directory
 *   s3:[http(s)://ENDPOINT/]BUCKET[/PREFIX]  Amazon S3 or an S3-compatible store
 *   azure:CONTAINER[/PREFIX]                 Azure Blob Storage
 *   gcs:BUCKET[/PREFIX]                      Google Cloud Storage
 *   s3: | azure: | gcs:                      the bucket or container the config names
 *   targets:                                 every storage target of the config at once
 *                                            (replicated writes, reads with fallback)
 *
 * Each cloud backend parses its own location, completing it from the config's
 * storage.<cloud> keys and the cloud's usual environment variables; every cloud backend
 * is wrapped in the retry wrapper (transient failures, throttling).
 */
#include "api/handle.h"

#include "api/replicas_internal.h"
#include "common/err.h"
#include "nova/replicas.h"
#include "nova/config.h"
#include "storage/azure.h"
#include "storage/gcs.h"
#include "storage/s3.h"

#include <stdio.h>
#include <string.h>

/* Cloud targets retry transient failures (5xx, throttling, dropped connections) with
 * jittered backoff until the config's storage.retry_deadline (a minute by default), so a
 * backup rides out a short outage or a server restart; a dead endpoint is reported
 * (BACKUP_001) once that deadline has passed. Refused credentials are not transient and
 * are reported at once. The deadline, not a count, bounds the attempts. */
static void retry_policy(nova_retry_options *retry, const nova_config *config)
{
    uint64_t seconds = config ? config->storage.retry_deadline_seconds
                              : NOVA_CONFIG_DEFAULT_RETRY_DEADLINE;
    *retry = (nova_retry_options)NOVA_RETRY_OPTIONS_INIT;
    if (seconds == 0) {
        retry->max_attempts = 1;
    } else {
        retry->max_attempts = 1000;
        retry->deadline_ms = (unsigned)(seconds * 1000u);
    }
}

typedef int (*backend_open_fn)(nova_storage **out, const void *options);

typedef struct open_call {
    nova_storage **out;
    backend_open_fn open;
    const void *options;
} open_call;

static int open_attempt(void *payload)
{
    const open_call *call = payload;
    return call->open(call->out, call->options);
}

/* Opens a backend (its first request probes the endpoint, so opening is retried too)
 * and wraps it in the retry wrapper, both under the same policy. */
static int open_with_retry(nova_storage **out, const nova_config *config, backend_open_fn open,
                           const void *options)
{
    nova_retry_options retry;
    nova_storage *inner = NULL;
    open_call call = {&inner, open, options};

    retry_policy(&retry, config);
    NOVA_TRY(nova_retry_call(&retry, open_attempt, &call));
    return nova_storage_retry_wrap(out, inner, &retry);
}

static int azure_open(nova_storage **out, const void *o) { return nova_storage_azure_open(out, o); }
static int s3_open(nova_storage **out, const void *o) { return nova_storage_s3_open(out, o); }
static int gcs_open(nova_storage **out, const void *o) { return nova_storage_gcs_open(out, o); }

/* "s3:" alone (and the like) means "the bucket or container of the config". */
static int bare_scheme(const char *location)
{
    const char *colon = strchr(location, ':');
    return colon && colon[1] == '\0';
}

static int open_azure(nova_storage **out, const char *location, const nova_config *config,
                      int create)
{
    nova_azure_options o = NOVA_AZURE_OPTIONS_INIT;
    int rc = nova_azure_location_parse(&o, bare_scheme(location) ? NULL : location, config);
    o.create = create;
    if (rc == 0)
        rc = open_with_retry(out, config, azure_open, &o);
    nova_azure_options_clear(&o);
    return rc;
}

static int open_s3(nova_storage **out, const char *location, const nova_config *config,
                   int create)
{
    nova_s3_options o = NOVA_S3_OPTIONS_INIT;
    int rc = nova_s3_location_parse(&o, bare_scheme(location) ? NULL : location, config);
    o.create_bucket = create;
    if (rc == 0)
        rc = open_with_retry(out, config, s3_open, &o);
    nova_s3_options_clear(&o);
    return rc;
}

/* Buckets are made outside Nova (the emulator makes them on first use): create is unused. */
static int open_gcs(nova_storage **out, const char *location, const nova_config *config,
                    int create)
{
    nova_gcs_options o;
    char from_config[600];
    int rc;

    (void)create;
    if (bare_scheme(location)) {
        if (!config || !config->storage.gcs.bucket)
            return nova_fail(NOVA_ECONFIG, "location 'gcs:' needs storage.gcs.bucket in the config");
        snprintf(from_config, sizeof(from_config), "gcs:%s", config->storage.gcs.bucket);
        location = from_config;
    }
    rc = nova_gcs_location_parse(&o, location, config);
    if (rc == 0)
        rc = open_with_retry(out, config, gcs_open, &o);
    nova_gcs_options_clear(&o);
    return rc;
}

typedef struct backend_entry {
    const char *scheme; /* with the colon */
    int (*open)(nova_storage **out, const char *location, const nova_config *config,
                int create);
} backend_entry;

static const backend_entry backends[] = {
    {"azure:", open_azure},
    {"s3:", open_s3},
    {"gcs:", open_gcs},
};

int nova_location_is_local(const char *location)
{
    if (strcmp(location, NOVA_CONFIG_TARGETS_LOCATION) == 0)
        return 0;
    if (strncmp(location, "local:", 6) == 0)
        return 1;
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strncmp(location, backends[i].scheme, strlen(backends[i].scheme)) == 0)
            return 0;
    return !strstr(location, "://");
}

int nova_location_open_storage(nova_storage **out, const char *location,
                               const nova_config *config, int create)
{
    *out = NULL;
    if (!location || !location[0])
        return nova_fail(NOVA_ENO_REPO, "no repository location given");
    if (strcmp(location, NOVA_CONFIG_TARGETS_LOCATION) == 0)
        return nova_location_open_config_targets(out, config, create);
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strncmp(location, backends[i].scheme, strlen(backends[i].scheme)) == 0)
            return backends[i].open(out, location, config, create);
    if (!nova_location_is_local(location))
        return nova_fail(NOVA_EUNSUPPORTED, "repository location '%s': unknown kind (use a "
                         "directory, s3:, azure: or gcs:)", location);
    if (strncmp(location, "local:", 6) == 0)
        location += 6;
    return nova_storage_local_open(out, location, create);
}
