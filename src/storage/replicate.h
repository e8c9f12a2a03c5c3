/*
 * replicate.h -- a storage wrapper that keeps several copies of one repository, one per
 * target (a local directory and any of S3, Azure, GCS), in step (private).
 *
 * Every target holds the same repository (same config, same key slots), and every object
 * but `config` is named by the SHA-256 of its bytes, so "the same object" means the same
 * name on every target. The wrapper keeps the storage contract (storage.h) as seen by
 * its caller:
 *   put   goes to every target in parallel (one short-lived thread per extra target) and
 *         succeeds only when every target confirmed it. A target that fails makes the put
 *         fail with that target named; transient failures (unreachable, I/O, timeout:
 *         the retry wrapper inside each cloud target has already retried them) become
 *         NOVA_EBACKEND (BACKUP_001), other codes (no space, access denied, ...) are kept.
 *         When no target failed but one already held the object, the result is
 *         NOVA_EEXISTS (for hash-named objects callers treat that as success).
 *   get   reads from the first target and falls back to the next one when the object is
 *         missing there (NOVA_ENOTFOUND), the target is unreachable (transient codes) or
 *         refuses us (NOVA_EREFUSED), or the range lies past the object's end
 *         (NOVA_ECORRUPT: a truncated copy). A
 *         whole-object read of a hash-named object ("keys/", "index/", "snapshots/",
 *         "locks/", "data/") is verified against its name when there is another target
 *         to fall back to: a rotten copy is skipped. When every copy is rotten the first
 *         one's bytes are returned, so the caller reports the damage as it would for a
 *         single storage.
 *   stat  like get (first target, fall back on a missing object or an unreachable target).
 *   list  lists the first target; when it is unreachable or refuses us before the first
 *         name was delivered, the next target is listed instead.
 *   del   deletes from every target (in parallel); NOVA_ENOTFOUND only when no target had
 *         the object.
 * A get whose bytes the caller later finds damaged (a ranged read of a rotten pack) can be
 * retried on a chosen target with nova_storage_replicate_get_from.
 * Thread safety: as safe as the targets (every backend may be called from several threads).
 */
#ifndef NOVA_STORAGE_REPLICATE_H
#define NOVA_STORAGE_REPLICATE_H

#include "storage/storage.h"

#include <stddef.h>

#define NOVA_REPLICATE_MAX_TARGETS 8

/* Wraps count (1..NOVA_REPLICATE_MAX_TARGETS) targets; names[i] names target i in
 * messages (a location without secrets, e.g. "/srv/nova" or "s3:bucket"; copied). Takes
 * ownership of every target, also when it fails. The features are those every target
 * has. */
int nova_storage_replicate_new(nova_storage **out, nova_storage *const *targets,
                               const char *const *names, size_t count);

/* Number of targets of a replicating storage; 0 for any other storage. */
size_t nova_storage_replicate_count(const nova_storage *s);
/* Target i (borrowed) and its name; NULL when s is not a replicating storage or i is out
 * of range. */
nova_storage *nova_storage_replicate_target(nova_storage *s, size_t i);
const char *nova_storage_replicate_name(const nova_storage *s, size_t i);
/* Reads from target i only (no fallback); out is reset first, like nova_storage_get. */
int nova_storage_replicate_get_from(nova_storage *s, size_t i, const char *name,
                                    uint64_t offset, size_t length, nova_buf *out);

#endif
