/*
 * writer.c -- phases 2 and 3 of a restore, run by every worker: checking existing files
 * against their chunk ids, and writing chunks from pack windows into files.
 *
 * A file's descriptor is shared by the workers writing its chunks (pwrite at distinct
 * offsets needs no more); its stripe lock guards opening and closing it, and `users`
 * counts the workers holding it, so it is never closed under a write. A worker releases
 * the descriptor before it counts its occurrence done, so the worker that counts the last
 * one is alone with the file and finishes it. Beyond the open-file budget a descriptor is
 * closed between writes and reopened later (without O_CREAT, checking that the inode is
 * still the one this restore created).
 *
 * A chunk that fails to open (authentication, decompression or id check) is never
 * written: its files are marked failed, reported once each with the chunk and the pack,
 * and removed when their last occurrence is done.
 */
#include "restore/restore_internal.h"

#include "common/err.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsmeta/scan.h"

/* ------------------------------------------------------------------ worker state */

static void warn_metadata(const char *name, int code, const char *message, void *payload)
{
    (void)payload;
    nova_log_warn("restore: '%s': %s (%s)", name, message, nova_error_user_code(code));
}

int restore_worker_init(restore_worker *w, restore_ctx *ctx)
{
    const nova_fsmeta_apply_opts defaults = NOVA_FSMETA_APPLY_OPTS_INIT;
    int rc;

    memset(w, 0, sizeof(*w));
    w->ctx = ctx;
    w->salt_pack = RESTORE_NONE;
    w->apply = defaults;
    rc = nova_pack_reader_new(&w->pack, ctx->repo->keys.enc, ctx->repo->keys.id);
    if (rc == 0)
        rc = nova_hmac_new(&w->hmac, ctx->repo->keys.id, sizeof(ctx->repo->keys.id));
    if (rc == 0)
        rc = nova_fsmeta_ids_new(&w->ids);
    if (rc < 0) {
        restore_worker_free(w);
        return rc;
    }
    w->apply.ids = w->ids;
    w->apply.on_warning = warn_metadata;
    return 0;
}

void restore_worker_free(restore_worker *w)
{
    nova_pack_reader_free(w->pack);
    nova_hmac_free(w->hmac);
    nova_fsmeta_ids_free(w->ids);
    nova_buf_free(&w->stored);
    nova_buf_free(&w->plain);
    nova_pack_cache_clear(&w->trees);
    memset(w, 0, sizeof(*w));
}

/* ------------------------------------------------------------------ file descriptors */

static pthread_mutex_t *stripe(restore_ctx *ctx, uint32_t index)
{
    return &ctx->fd_locks[index % RESTORE_FD_STRIPES];
}

/* The name the file is written under: its own, or a temporary one when replacing. */
static const char *write_name(const restore_ctx *ctx, const restore_file *f,
                              char temp[RESTORE_TEMP_NAME_SIZE])
{
    if (f->state != RESTORE_FILE_REPLACE)
        return f->entry->name;
    restore_temp_name(ctx, f->temp_serial, temp);
    return temp;
}

/* 1 when creating the file with its final permission bits gives exactly them: no
 * setuid/setgid/sticky (those must follow the owner change), owner read and write (a
 * file closed early is reopened for writing), no attributes (an ACL rewrites the group
 * bits), nothing the umask or a default ACL would take away. Such files are born with
 * their final mode and the fchmod is skipped -- nobody can read them earlier than they
 * could read the finished file; the others start owner-only (0600). */
static int mode_at_creation(const restore_ctx *ctx, const restore_file *f)
{
    const nova_tree_entry *e = f->entry;
    return ctx->umask_known && (e->mode & 07000) == 0 && (e->mode & 0600) == 0600 &&
           (e->mode & ctx->umask) == 0 && e->xattr_count == 0 &&
           !ctx->dirs.items[f->dir].default_acl;
}

static mode_t creation_mode(const restore_ctx *ctx, const restore_file *f)
{
    return mode_at_creation(ctx, f) ? (mode_t)(f->entry->mode & 0777) : 0600;
}

/* 1 when a file this restore created already has the owner the entry asks for (as
 * nova_fsmeta_apply would resolve it), so the chown can be skipped. */
static int owner_at_creation(const restore_worker *w, const restore_file *f)
{
    const restore_ctx *ctx = w->ctx;
    const nova_tree_entry *e = f->entry;
    uint32_t uid = e->uid, gid = e->gid;

    if (!w->apply.numeric_ids && w->apply.ids) {
        if (e->user_name)
            nova_fsmeta_user_id(w->apply.ids, e->user_name, &uid);
        if (e->group_name)
            nova_fsmeta_group_id(w->apply.ids, e->group_name, &gid);
    }
    return uid == ctx->euid && gid == ctx->dirs.items[f->dir].file_gid;
}

/* A new direct file: its blocks reserved (fallocate, so aligned direct writes are
 * overwrites that may run side by side) and a second descriptor with O_DIRECT, opened
 * through /proc on the descriptor itself (the same inode, no name involved). Without
 * either, the file is written through the page cache like any other. */
static int open_direct(restore_file *f, int fd)
{
    char proc[48];

    if (fallocate(fd, 0, 0, (off_t)f->size) != 0 && (errno == ENOSPC || errno == EDQUOT)) {
        int err = errno;
        close(fd);
        return nova_fail_errno(NOVA_ENOSPACE, err, "no space to restore '%s' (%llu bytes)",
                               f->entry->name, (unsigned long long)f->size);
    }
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    f->dfd = open(proc, O_WRONLY | O_DIRECT | O_CLOEXEC | O_NOCTTY);
    return 0;
}

/* Opens (creating on first use) the file for writing. Stripe lock held. */
static int open_locked(restore_ctx *ctx, restore_file *f)
{
    char temp[RESTORE_TEMP_NAME_SIZE];
    const char *name;
    struct stat st;
    int dir_fd, fd;

    NOVA_TRY(restore_dir_get(&ctx->dirs, f->dir, &dir_fd));
    if (!f->created && f->state == RESTORE_FILE_REPLACE)
        f->temp_serial = atomic_fetch_add(&ctx->temp_serial, 1);
    name = write_name(ctx, f, temp);
    if (!f->created)
        fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    creation_mode(ctx, f));
    else
        fd = openat(dir_fd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    restore_dir_put(&ctx->dirs, f->dir);
    if (fd < 0)
        return nova_fail_errno(errno == EEXIST ? NOVA_EEXISTS : nova_error_from_errno(errno),
                               errno, "unable to %s '%s'", f->created ? "reopen" : "create",
                               f->entry->name);
    if (f->created && (fstat(fd, &st) != 0 || (uint64_t)st.st_dev != f->dev ||
                       (uint64_t)st.st_ino != f->ino || !S_ISREG(st.st_mode))) {
        close(fd);
        return nova_fail(NOVA_EEXISTS, "'%s' was replaced by something else during the restore",
                         f->entry->name);
    }
    if (!f->created && f->direct) {
        f->created = 1; /* so that a failure below removes it */
        NOVA_TRY(open_direct(f, fd));
    }
    f->created = 1;
    f->fd = fd;
    atomic_fetch_add(&ctx->open_files, 1);
    return 0;
}

int restore_file_acquire(restore_ctx *ctx, uint32_t index, int *fd, int *dfd)
{
    restore_file *f = &ctx->files[index];
    int rc = 0;

    pthread_mutex_lock(stripe(ctx, index));
    if (f->fd < 0)
        rc = open_locked(ctx, f);
    if (rc == 0) {
        f->users++;
        *fd = f->fd;
        if (dfd)
            *dfd = f->dfd;
    }
    pthread_mutex_unlock(stripe(ctx, index));
    return rc;
}

static void close_locked(restore_ctx *ctx, restore_file *f)
{
    if (f->dfd >= 0) {
        close(f->dfd);
        f->dfd = -1;
    }
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
        atomic_fetch_sub(&ctx->open_files, 1);
    }
}

void restore_file_release(restore_ctx *ctx, uint32_t index)
{
    restore_file *f = &ctx->files[index];

    pthread_mutex_lock(stripe(ctx, index));
    f->users--;
    if (f->users == 0 && f->dfd < 0 && atomic_load(&f->remaining) > 1 &&
        atomic_load(&ctx->open_files) >= ctx->file_budget) {
        struct stat st;
        /* Remember which file this is, to recognise it when reopening. */
        if (fstat(f->fd, &st) == 0) {
            f->dev = (uint64_t)st.st_dev;
            f->ino = (uint64_t)st.st_ino;
            close_locked(ctx, f);
        }
    }
    pthread_mutex_unlock(stripe(ctx, index));
}

/* ------------------------------------------------------------------ finishing files */

/* Removes a file that could not be completed (closing it first). */
static void discard(restore_ctx *ctx, uint32_t index)
{
    restore_file *f = &ctx->files[index];
    char temp[RESTORE_TEMP_NAME_SIZE];
    int dir_fd;

    if (f->direct)
        restore_edges_flush(ctx, index, 1);
    pthread_mutex_lock(stripe(ctx, index));
    close_locked(ctx, f);
    if (f->created && restore_dir_get(&ctx->dirs, f->dir, &dir_fd) == 0) {
        unlinkat(dir_fd, write_name(ctx, f, temp), 0);
        restore_dir_put(&ctx->dirs, f->dir);
    }
    f->created = 0;
    pthread_mutex_unlock(stripe(ctx, index));
}

/* Marks the file failed; the first failure is reported (the thread's last error). */
void restore_file_fail(restore_ctx *ctx, uint32_t index, int code)
{
    restore_file *f = &ctx->files[index];
    if (atomic_exchange(&f->failed, 1) == 0)
        restore_report_at(ctx, f->dir, f->entry->name, code);
    if (code == NOVA_ENOSPACE)
        restore_stop(ctx, code);
}

static int complete(restore_worker *w, uint32_t index)
{
    restore_ctx *ctx = w->ctx;
    restore_file *f = &ctx->files[index];
    const nova_tree_entry *e = f->entry;
    char temp[RESTORE_TEMP_NAME_SIZE];
    int fd = -1, dir_fd, rc;

    if (f->direct)
        NOVA_TRY(restore_edges_flush(ctx, index, 0));
    NOVA_TRY(restore_file_acquire(ctx, index, &fd, NULL));
    rc = restore_dir_get(&ctx->dirs, f->dir, &dir_fd);
    if (rc == 0 && (e->flags & NOVA_TREE_ENTRY_SPARSE))
        rc = nova_fsmeta_finish_sparse(fd, f->size, e->name);
    /* Metadata that cannot be applied is reported, but the content is right: keep it. */
    if (rc == 0) {
        nova_fsmeta_apply_opts apply = w->apply;
        if (owner_at_creation(w, f))
            apply.what &= ~NOVA_FSMETA_APPLY_OWNER;
        if (mode_at_creation(ctx, f))
            apply.what &= ~NOVA_FSMETA_APPLY_MODE;
        if (nova_fsmeta_apply(dir_fd, fd, e, &apply) < 0)
            restore_report_at(ctx, f->dir, e->name, nova_error_last()->code);
    }
    if (rc == 0 && f->state == RESTORE_FILE_REPLACE &&
        renameat(dir_fd, write_name(ctx, f, temp), dir_fd, e->name) != 0)
        rc = nova_fail_errno(nova_error_from_errno(errno), errno, "unable to rename the restored "
                             "'%s' into place", e->name);
    if (dir_fd >= 0)
        restore_dir_put(&ctx->dirs, f->dir);
    pthread_mutex_lock(stripe(ctx, index));
    f->users--;
    if (rc == 0) {
        close_locked(ctx, f);
        f->created = 0; /* in place: nothing left to clean up */
    }
    pthread_mutex_unlock(stripe(ctx, index));
    return rc;
}

void restore_file_finish(restore_worker *w, uint32_t index)
{
    restore_ctx *ctx = w->ctx;
    restore_file *f = &ctx->files[index];
    int rc;

    if (f->state != RESTORE_FILE_NEW && f->state != RESTORE_FILE_REPLACE)
        return;
    if (!atomic_load(&f->failed)) {
        rc = complete(w, index);
        if (rc < 0)
            restore_file_fail(ctx, index, rc);
        else
            atomic_fetch_add(&ctx->files_restored, 1);
    }
    if (atomic_load(&f->failed))
        discard(ctx, index);
    atomic_fetch_add(&ctx->files_done, 1);
}

void restore_cleanup_incomplete(restore_ctx *ctx)
{
    for (size_t i = 0; i < ctx->file_count; i++) {
        restore_file *f = &ctx->files[i];
        if ((f->state == RESTORE_FILE_NEW || f->state == RESTORE_FILE_REPLACE) && f->created)
            discard(ctx, (uint32_t)i);
    }
}

/* ------------------------------------------------------------------ phase 2: check */

static int read_full(int fd, uint8_t *out, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = read(fd, out + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        done += (size_t)n;
    }
    return 1;
}

/* 1 when the open file holds exactly the chunks of e, 0 when not, negative when a chunk
 * is missing from the index (the file cannot be restored at all). */
static int content_matches(restore_worker *w, int fd, const restore_file *f)
{
    const nova_tree_entry *e = f->entry;
    uint64_t total = 0;
    struct stat st;

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != e->size ||
        nova_fsmeta_timespec_ns(&st.st_mtim) != e->mtime_ns)
        return 0;
    for (uint64_t c = 0; c < e->chunk_count; c++) {
        nova_chunk_location loc;
        nova_id id;
        if (restore_lookup(w->ctx, &e->chunks[c], &loc) != 1) {
            char hex[NOVA_ID_HEX_LEN + 1], path[4096];
            nova_id_to_hex(&e->chunks[c], hex);
            restore_path(w->ctx, f->dir, e->name, path, sizeof(path));
            return nova_fail(NOVA_ECORRUPT, "unable to restore '%s': its chunk %.16s is in no "
                             "index", path, hex);
        }
        NOVA_TRY(nova_buf_resize(&w->plain, loc.raw_length));
        if (!read_full(fd, w->plain.data, loc.raw_length))
            return 0;
        NOVA_TRY(nova_hmac_compute(w->hmac, &id, w->plain.data, loc.raw_length));
        if (!nova_id_equal(&id, &e->chunks[c]))
            return 0;
        total += loc.raw_length;
    }
    return total == (uint64_t)st.st_size;
}

static void check_one(restore_worker *w, uint32_t index)
{
    restore_ctx *ctx = w->ctx;
    restore_file *f = &ctx->files[index];
    int dir_fd, fd, rc = 0;

    f->state = RESTORE_FILE_REPLACE;
    if (restore_dir_get(&ctx->dirs, f->dir, &dir_fd) < 0) {
        f->state = RESTORE_FILE_FAILED;
        restore_report_at(ctx, f->dir, f->entry->name, nova_error_last()->code);
        return;
    }
    fd = openat(dir_fd, f->entry->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd >= 0) {
        rc = content_matches(w, fd, f);
        if (rc == 1) {
            f->state = RESTORE_FILE_UNCHANGED;
            if (nova_fsmeta_apply(dir_fd, fd, f->entry, &w->apply) < 0)
                restore_report_at(ctx, f->dir, f->entry->name, nova_error_last()->code);
            else
                atomic_fetch_add(&ctx->files_unchanged, 1);
            atomic_fetch_add(&ctx->files_done, 1);
            atomic_fetch_add(&ctx->bytes_done, f->entry->size);
        } else if (rc < 0) {
            f->state = RESTORE_FILE_FAILED;
            restore_report_at(ctx, f->dir, f->entry->name, rc);
        }
        close(fd);
    }
    restore_dir_put(&ctx->dirs, f->dir);
}

void restore_check_jobs(restore_worker *w)
{
    restore_ctx *ctx = w->ctx;
    for (;;) {
        size_t job = atomic_fetch_add(&ctx->next_job, 1);
        if (job >= ctx->check_count || atomic_load(&ctx->stop))
            return;
        check_one(w, ctx->checks[job]);
    }
}

/* ------------------------------------------------------------------ phase 3: write */

void restore_chunk_done(restore_worker *w, uint32_t index)
{
    restore_file *f = &w->ctx->files[index];
    if (atomic_fetch_sub(&f->remaining, 1) == 1)
        restore_file_finish(w, index);
}

/* Fails every occurrence in [first, end): message names the chunk, the pack and the file. */
static void fail_occurrences(restore_worker *w, size_t first, size_t end, int code,
                             const char *pack_name)
{
    restore_ctx *ctx = w->ctx;
    char cause[NOVA_ERROR_MESSAGE_MAX];

    snprintf(cause, sizeof(cause), "%s", nova_error_last()->message);
    for (size_t i = first; i < end; i++) {
        const restore_occ *o = &ctx->occs[i];
        restore_file *f = &ctx->files[o->file];
        if (!atomic_load(&f->failed)) {
            char hex[NOVA_ID_HEX_LEN + 1], path[4096];
            nova_id_to_hex(&f->entry->chunks[o->chunk], hex);
            restore_path(ctx, f->dir, f->entry->name, path, sizeof(path));
            if (strstr(cause, pack_name))
                nova_fail(code, "unable to restore '%s': chunk %.16s: %s", path, hex, cause);
            else
                nova_fail(code, "unable to restore '%s': chunk %.16s in pack '%s': %s", path, hex,
                          pack_name, cause);
            restore_file_fail(ctx, o->file, code);
        }
        atomic_fetch_add(&ctx->bytes_done, o->raw_length);
        restore_chunk_done(w, o->file);
    }
}

int restore_buffered_write(restore_ctx *ctx, uint32_t index, const uint8_t *data, size_t len,
                           uint64_t offset)
{
    restore_file *f = &ctx->files[index];
    int fd = -1, rc;

    NOVA_TRY(restore_file_acquire(ctx, index, &fd, NULL));
    if (f->entry->flags & NOVA_TREE_ENTRY_SPARSE)
        rc = nova_fsmeta_write_sparse(fd, offset, data, len, f->entry->name);
    else
        rc = nova_fsmeta_write_at(fd, offset, data, len, f->entry->name);
    restore_file_release(ctx, index);
    return rc;
}

static void write_occurrence(restore_worker *w, const restore_occ *o, const uint8_t *data)
{
    restore_ctx *ctx = w->ctx;
    restore_file *f = &ctx->files[o->file];
    int rc = 1;

    atomic_fetch_add(&ctx->bytes_done, o->raw_length);
    if (atomic_load(&f->failed)) {
        restore_chunk_done(w, o->file);
        return;
    }
    if (f->direct)
        rc = restore_stage_add(w, o, data);
    if (rc == 0) { /* staged: counted done by the I/O thread once written */
        atomic_fetch_add(&ctx->bytes_written, o->raw_length);
        return;
    }
    rc = restore_buffered_write(ctx, o->file, data, o->raw_length, o->file_offset);
    if (rc < 0)
        restore_file_fail(ctx, o->file, rc);
    else
        atomic_fetch_add(&ctx->bytes_written, o->raw_length);
    restore_chunk_done(w, o->file);
}

/* The salt of a pack, from its trailer (cached for the last pack seen). */
/* Copies the salt of `pack` into out when some worker learned it; 1 then, else 0. */
static int shared_salt(restore_ctx *ctx, uint32_t pack, uint8_t out[NOVA_SALT_LEN])
{
    int known = 0;
    pthread_mutex_lock(&ctx->salt_lock);
    if (pack < ctx->salt_cap && ctx->salts[pack].known) {
        memcpy(out, ctx->salts[pack].salt, NOVA_SALT_LEN);
        known = 1;
    }
    pthread_mutex_unlock(&ctx->salt_lock);
    return known;
}

/* Shares a learned salt with the other workers (best effort: out of memory only means
 * another worker fetches the trailer again). */
static void share_salt(restore_ctx *ctx, uint32_t pack, const uint8_t salt[NOVA_SALT_LEN])
{
    pthread_mutex_lock(&ctx->salt_lock);
    if (pack >= ctx->salt_cap) {
        size_t cap = ctx->salt_cap ? ctx->salt_cap : 256;
        restore_salt *grown;
        while (cap <= pack)
            cap *= 2;
        grown = realloc(ctx->salts, cap * sizeof(*grown));
        if (grown) {
            memset(grown + ctx->salt_cap, 0, (cap - ctx->salt_cap) * sizeof(*grown));
            ctx->salts = grown;
            ctx->salt_cap = cap;
        }
    }
    if (pack < ctx->salt_cap) {
        memcpy(ctx->salts[pack].salt, salt, NOVA_SALT_LEN);
        ctx->salts[pack].known = 1;
    }
    pthread_mutex_unlock(&ctx->salt_lock);
}

static int pack_salt(restore_worker *w, uint32_t pack, const char *name)
{
    nova_object_info info;
    nova_pack_trailer trailer;
    nova_storage *storage = w->ctx->repo->storage;
    uint64_t start;

    if (w->salt_pack == pack)
        return 0;
    if (shared_salt(w->ctx, pack, w->salt)) {
        w->salt_pack = pack;
        return 0;
    }
    NOVA_TRY(nova_storage_stat(storage, name, &info));
    start = info.size > NOVA_PACK_TRAILER_LEN ? info.size - NOVA_PACK_TRAILER_LEN : 0;
    NOVA_TRY(nova_storage_get(storage, name, start, (size_t)(info.size - start), &w->stored));
    NOVA_TRY(nova_pack_trailer_parse(&trailer, info.size, w->stored.data, w->stored.len, name));
    memcpy(w->salt, trailer.salt, NOVA_SALT_LEN);
    w->salt_pack = pack;
    share_salt(w->ctx, pack, w->salt);
    return 0;
}

static int fetch_window(restore_worker *w, const restore_window *win, const char *name)
{
    int rc = pack_salt(w, w->ctx->occs[win->first].pack, name);
    if (rc == 0)
        rc = nova_storage_get(w->ctx->repo->storage, name, win->start, (size_t)win->length,
                              &w->stored);
    if (rc == 0 && w->stored.len != win->length)
        rc = nova_fail(NOVA_ECORRUPT, "pack '%s' is shorter than the index says", name);
    if (rc == NOVA_ENOTFOUND)
        rc = nova_fail(NOVA_ECORRUPT, "pack '%s' is missing", name);
    return rc;
}

/* The stored bytes of the blob at loc, and its pack's salt: from the tree-pack cache,
 * or with a ranged get when the pack is too large to hold whole. */
static int fetch_blob(restore_worker *w, const nova_chunk_location *loc, const char *name,
                      const uint8_t **stored, const uint8_t **salt)
{
    nova_storage *storage = w->ctx->repo->storage;
    int held = nova_pack_cache_slice(&w->trees, storage, loc->pack, name, loc->offset,
                                     loc->length, stored, salt);
    if (held != 0)
        return held < 0 ? held : 0;
    NOVA_TRY(pack_salt(w, loc->pack, name));
    NOVA_TRY(nova_storage_get(storage, name, loc->offset, loc->length, &w->stored));
    if (w->stored.len != loc->length)
        return nova_fail(NOVA_ECORRUPT, "pack '%s' is shorter than the index says", name);
    *stored = w->stored.data;
    *salt = w->salt;
    return 0;
}

int restore_read_blob(restore_worker *w, const nova_id *id, nova_blob_type type, nova_buf *out,
                      const char *what)
{
    restore_ctx *ctx = w->ctx;
    char name[NOVA_PACK_NAME_LEN + 1], hex[NOVA_ID_HEX_LEN + 1];
    nova_chunk_location loc;
    nova_pack_entry entry;
    const nova_id *pack_id = NULL;
    const uint8_t *stored = NULL, *salt = NULL;
    int found, rc;

    pthread_mutex_lock(&ctx->handle->index_lock);
    found = nova_chunk_index_lookup(ctx->index, id, &loc);
    if (found == 1 && (pack_id = nova_chunk_index_pack_id(ctx->index, loc.pack)) != NULL)
        nova_pack_storage_name(name, pack_id);
    pthread_mutex_unlock(&ctx->handle->index_lock);
    nova_id_to_hex(id, hex);
    if (found != 1 || !pack_id)
        return nova_fail(NOVA_ECORRUPT, "%s %.16s of '%s' is in no index",
                         type == NOVA_BLOB_TREE ? "tree" : "chunk", hex, what);
    if (loc.type != type)
        return nova_fail(NOVA_ECORRUPT, "blob %.16s of '%s' is not a %s", hex, what,
                         type == NOVA_BLOB_TREE ? "tree" : "data chunk");
    rc = fetch_blob(w, &loc, name, &stored, &salt);
    if (rc == NOVA_ENOTFOUND)
        return nova_fail(NOVA_ECORRUPT, "%s %.16s of '%s': pack '%s' is missing",
                         type == NOVA_BLOB_TREE ? "tree" : "chunk", hex, what, name);
    if (rc < 0)
        return rc;
    entry.id = *id;
    entry.offset = loc.offset;
    entry.length = loc.length;
    entry.raw_length = loc.raw_length;
    entry.type = loc.type;
    return nova_pack_reader_open_blob(w->pack, out, salt, &entry, stored, loc.length, name);
}

static void write_window(restore_worker *w, const restore_window *win)
{
    restore_ctx *ctx = w->ctx;
    char name[NOVA_PACK_NAME_LEN + 1];
    int rc;

    nova_pack_storage_name(name, &win->pack_id);
    rc = fetch_window(w, win, name);
    if (rc < 0) {
        if (rc == NOVA_ENOMEM)
            restore_stop(ctx, rc);
        fail_occurrences(w, win->first, win->end, rc, name);
        return;
    }
    for (size_t i = win->first; i < win->end;) {
        const restore_occ *o = &ctx->occs[i];
        const nova_id *id = &ctx->files[o->file].entry->chunks[o->chunk];
        nova_pack_entry entry;
        size_t j = i + 1;

        /* Every occurrence of this blob: same place, same id. */
        while (j < win->end && ctx->occs[j].offset == o->offset &&
               ctx->occs[j].length == o->length &&
               nova_id_equal(&ctx->files[ctx->occs[j].file].entry->chunks[ctx->occs[j].chunk], id))
            j++;
        entry.id = *id;
        entry.offset = o->offset;
        entry.length = o->length;
        entry.raw_length = o->raw_length;
        entry.type = NOVA_BLOB_DATA;
        rc = nova_pack_reader_open_blob(w->pack, &w->plain, w->salt, &entry,
                                        w->stored.data + (o->offset - win->start), o->length, name);
        if (rc < 0) {
            fail_occurrences(w, i, j, rc, name);
        } else {
            for (size_t k = i; k < j; k++)
                write_occurrence(w, &ctx->occs[k], w->plain.data);
        }
        i = j;
    }
    restore_stage_submit(w);
}

void restore_write_jobs(restore_worker *w)
{
    restore_ctx *ctx = w->ctx;
    for (;;) {
        size_t job = atomic_fetch_add(&ctx->next_job, 1);
        if (job >= ctx->window_count || atomic_load(&ctx->stop))
            return;
        write_window(w, &ctx->windows[job]);
    }
}
