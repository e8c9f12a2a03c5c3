/*
 * handle.h -- what stands behind the public nova_repository handle (private; shared by
 * the components: backup, restore, catalog, maintenance, integrity).
 *
 * The chunk index is loaded on first use and kept: components that add data publish
 * their new entries into it (nova_repo_session does so when given it). Access to it is
 * serialised by index_lock while writers run; readers that run alone need no lock.
 */
#ifndef NOVA_API_HANDLE_H
#define NOVA_API_HANDLE_H

#include "nova/backup.h"
#include "repo/repository.h"

#include <pthread.h>

struct nova_repository {
    nova_repo *repo;
    char *location;
    unsigned threads; /* >= 1 */
    unsigned connections; /* >= 1: requests in flight to the storage (uploads, downloads) */
    nova_chunk_index *index; /* NULL until loaded */
    pthread_mutex_t index_lock;
};

struct nova_config;
/* Opens the storage named by a location (location.c lists the forms), completing cloud
 * locations from config (may be NULL) and the environment. create makes the directory,
 * bucket or container when missing. */
int nova_location_open_storage(nova_storage **out, const char *location,
                               const struct nova_config *config, int create);
/* True for a local directory location (no cloud scheme). */
int nova_location_is_local(const char *location);

/* The repository's chunk index, loading every index file on first use. Borrowed. */
int nova_repository_chunk_index(nova_repository *handle, nova_chunk_index **out);
/* Drops the cached index so the next use reloads it (after prune, for example). */
void nova_repository_forget_index(nova_repository *handle);

#endif
