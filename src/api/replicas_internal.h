/*
 * replicas_internal.h -- replication on opened storages (private to src/api; the public
 * calls in nova/replicas.h open locations and call these). Tests use them to put a fault
 * wrapper between Nova and a copy.
 *
 * Every storage here is borrowed: the caller opens and frees it. Names are locations
 * without secrets, used in messages and reports.
 */
#ifndef NOVA_API_REPLICAS_INTERNAL_H
#define NOVA_API_REPLICAS_INTERNAL_H

#include "nova/replicas.h"
#include "primitives/hash.h"
#include "repo/repository.h"
#include "storage/storage.h"

#include <stddef.h>

struct nova_config;

/* Every storage target the config names (nova_config_target_location order) behind one
 * replicating storage (storage/replicate.h); a single target is returned unwrapped.
 * create makes missing directories, buckets and containers (for init). Without create,
 * every target must hold the same repository (the same `config` bytes): a target with
 * none gives NOVA_ENO_REPO naming it (make it a replica with 'nova copy --to'), one with
 * another repository NOVA_EINVALID. No target at all is NOVA_ECONFIG. */
int nova_location_open_config_targets(nova_storage **out, const struct nova_config *config,
                                      int create);

typedef struct nova_replica_storage {
    nova_storage *storage;    /* borrowed; NULL when it could not be opened */
    const char *name;         /* for messages */
    int open_code;            /* storage NULL: why (a NOVA_E... code) */
    const char *open_message; /* storage NULL: the detail */
} nova_replica_storage;

/* nova_copy from an open repository to an open storage. ids (count id_count) are the
 * snapshots to copy; NULL = every snapshot of the source. With fill set, snapshots the
 * target already holds are walked too and get the packs and index files they lack
 * (what repair does). */
int nova_copy_to_storage(nova_repo *source, const char *source_name,
                         const nova_replica_storage *target, const nova_id *ids,
                         size_t id_count, int fill, const nova_copy_options *options,
                         nova_copy_result *result);

int nova_replicas_status_storages(const nova_replica_storage *copies, size_t count,
                                  const char *passphrase, const nova_replicas_options *options,
                                  nova_replicas_report **out);

int nova_replicas_repair_storages(const nova_replica_storage *target,
                                  const nova_replica_storage *sources, size_t source_count,
                                  const char *passphrase, const nova_replicas_options *options,
                                  nova_repair_result **out);

#endif
