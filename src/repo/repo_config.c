/*
 * repo_config.c -- encodes, decodes and stores the plaintext repository config.
 *
 * Invariants: the encoder only writes configs that pass nova_repo_config_check, and the
 * decoder accepts exactly the bytes the encoder can produce: fixed length, valid
 * checksum, zero reserved bytes, every field in range. The version is read before the
 * checksum so that a repository written by a newer nova is reported as NOVA_EVERSION
 * rather than as damage.
 */
#include "repo/repo_config.h"

#include "common/bytes.h"
#include "common/err.h"
#include "primitives/crypto.h"
#include "primitives/hash.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define CONFIG_MAGIC "NVRC"
#define CONFIG_BODY_LEN (NOVA_REPO_CONFIG_LEN - NOVA_ID_LEN)

/* Level ranges per codec (codec.h): zstd 1..19, lzma 0..9, none and lz4 level 0. */
static int codec_spec_valid(const nova_codec_spec *codec)
{
    switch (codec->id) {
    case NOVA_CODEC_NONE:
    case NOVA_CODEC_LZ4:
        return codec->level == 0;
    case NOVA_CODEC_ZSTD:
        return codec->level >= 1 && codec->level <= 19;
    case NOVA_CODEC_LZMA:
        return codec->level >= 0 && codec->level <= 9;
    }
    return 0;
}

int nova_repo_config_check(const nova_repo_config *config)
{
    if (!config)
        return nova_fail(NOVA_EINVALID, "repository config: missing");
    if (config->version != NOVA_REPO_CONFIG_VERSION)
        return nova_fail(NOVA_EINVALID, "repository config field 'version': %u is not %u",
                         (unsigned)config->version, (unsigned)NOVA_REPO_CONFIG_VERSION);
    if (config->created_ns <= 0)
        return nova_fail(NOVA_EINVALID, "repository config field 'created': %lld is not positive",
                         (long long)config->created_ns);
    NOVA_TRY(nova_chunker_params_check(&config->chunker));
    if (!codec_spec_valid(&config->codec))
        return nova_fail(NOVA_EINVALID, "repository config field 'codec': id %d level %d invalid",
                         (int)config->codec.id, config->codec.level);
    if (config->pack_target_size < NOVA_PACK_TARGET_MIN ||
        config->pack_target_size > NOVA_PACK_TARGET_MAX)
        return nova_fail(NOVA_EINVALID,
                         "repository config field 'pack_target_size': %llu outside %u..%u",
                         (unsigned long long)config->pack_target_size, NOVA_PACK_TARGET_MIN,
                         NOVA_PACK_TARGET_MAX);
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int nova_repo_config_init(nova_repo_config *out)
{
    const nova_chunker_params chunker = NOVA_CHUNKER_PARAMS_DEFAULT;

    memset(out, 0, sizeof(*out));
    out->version = NOVA_REPO_CONFIG_VERSION;
    NOVA_TRY(nova_random_bytes(out->repo_id, sizeof(out->repo_id)));
    out->created_ns = now_ns();
    out->chunker = chunker;
    out->codec.id = NOVA_CODEC_ZSTD;
    out->codec.level = 3;
    out->pack_target_size = NOVA_PACK_TARGET_DEFAULT;
    return 0;
}

int nova_repo_config_encode(nova_buf *out, const nova_repo_config *config)
{
    nova_id checksum;
    uint8_t *p;

    nova_buf_reset(out);
    NOVA_TRY(nova_repo_config_check(config));
    NOVA_TRY(nova_buf_resize(out, NOVA_REPO_CONFIG_LEN));
    p = out->data;
    memcpy(p, CONFIG_MAGIC, 4);
    nova_put_le32(p + 4, config->version);
    memcpy(p + 8, config->repo_id, NOVA_REPO_ID_LEN);
    nova_put_le64(p + 40, (uint64_t)config->created_ns);
    nova_put_le32(p + 48, config->chunker.min_size);
    nova_put_le32(p + 52, config->chunker.avg_size);
    nova_put_le32(p + 56, config->chunker.max_size);
    p[60] = (uint8_t)config->codec.id;
    p[61] = (uint8_t)config->codec.level;
    nova_put_le16(p + 62, 0);
    nova_put_le64(p + 64, config->pack_target_size);
    int rc = nova_sha256(&checksum, p, CONFIG_BODY_LEN);
    if (rc < 0) {
        nova_buf_reset(out);
        return rc;
    }
    memcpy(p + CONFIG_BODY_LEN, checksum.bytes, NOVA_ID_LEN);
    return 0;
}

/* Magic, version and length, in the order that gives the most useful error. */
static int check_frame(const uint8_t *data, size_t len)
{
    uint32_t version;

    if (len < 8)
        return nova_fail(NOVA_ECORRUPT, "repository config: truncated (%zu bytes)", len);
    if (memcmp(data, CONFIG_MAGIC, 4) != 0)
        return nova_fail(NOVA_ECORRUPT, "repository config: wrong magic (not a nova repository)");
    version = nova_get_le32(data + 4);
    if (version > NOVA_REPO_CONFIG_VERSION)
        return nova_fail(NOVA_EVERSION, "repository config: format version %u is newer than %u",
                         (unsigned)version, (unsigned)NOVA_REPO_CONFIG_VERSION);
    if (version != NOVA_REPO_CONFIG_VERSION)
        return nova_fail(NOVA_ECORRUPT, "repository config: invalid format version %u",
                         (unsigned)version);
    if (len != NOVA_REPO_CONFIG_LEN)
        return nova_fail(NOVA_ECORRUPT, "repository config: %zu bytes, expected %u", len,
                         (unsigned)NOVA_REPO_CONFIG_LEN);
    return 0;
}

int nova_repo_config_decode(nova_repo_config *out, const void *data, size_t len)
{
    nova_repo_config config;
    nova_id checksum;
    nova_reader r = nova_reader_make(data, len);
    uint64_t created, reserved;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!data && len > 0)
        return nova_fail(NOVA_EINVALID, "repository config: missing data");
    NOVA_TRY(check_frame(data, len));
    NOVA_TRY(nova_sha256(&checksum, data, CONFIG_BODY_LEN));
    if (!nova_ct_equal(checksum.bytes, (const uint8_t *)data + CONFIG_BODY_LEN, NOVA_ID_LEN))
        return nova_fail(NOVA_ECORRUPT, "repository config: checksum mismatch");

    memset(&config, 0, sizeof(config));
    nova_read_bytes(&r, 4); /* magic, checked */
    config.version = nova_read_le32(&r);
    nova_read_copy(&r, config.repo_id, NOVA_REPO_ID_LEN);
    created = nova_read_le64(&r);
    config.chunker.min_size = nova_read_le32(&r);
    config.chunker.avg_size = nova_read_le32(&r);
    config.chunker.max_size = nova_read_le32(&r);
    config.codec.id = (nova_codec_id)nova_read_u8(&r);
    config.codec.level = nova_read_u8(&r);
    reserved = nova_read_le16(&r);
    config.pack_target_size = nova_read_le64(&r);
    nova_read_bytes(&r, NOVA_ID_LEN); /* checksum, checked */
    if (r.failed || r.left != 0)
        return nova_fail(NOVA_ECORRUPT, "repository config: malformed layout");
    if (reserved != 0)
        return nova_fail(NOVA_ECORRUPT, "repository config: reserved bytes are not zero");
    if (created > (uint64_t)INT64_MAX)
        return nova_fail(NOVA_ECORRUPT, "repository config: creation time out of range");
    config.created_ns = (int64_t)created;
    rc = nova_repo_config_check(&config);
    if (rc == NOVA_EINVALID) {
        char why[NOVA_ERROR_MESSAGE_MAX];
        snprintf(why, sizeof(why), "%s", nova_error_last()->message);
        return nova_fail(NOVA_ECORRUPT, "repository config: %s", why);
    }
    if (rc < 0)
        return rc;
    *out = config;
    return 0;
}

int nova_repo_config_write(nova_storage *storage, const nova_repo_config *config)
{
    nova_buf bytes = NOVA_BUF_INIT;
    int rc;

    rc = nova_repo_config_encode(&bytes, config);
    if (rc == 0)
        rc = nova_storage_put(storage, NOVA_REPO_CONFIG_NAME, bytes.data, bytes.len);
    nova_buf_free(&bytes);
    return rc;
}

int nova_repo_config_read(nova_repo_config *out, nova_storage *storage)
{
    nova_buf bytes = NOVA_BUF_INIT;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = nova_storage_get(storage, NOVA_REPO_CONFIG_NAME, 0, NOVA_STORAGE_WHOLE, &bytes);
    if (rc == NOVA_ENOTFOUND)
        rc = nova_fail(NOVA_ENO_REPO, "repository config 'config' not found");
    if (rc == 0)
        rc = nova_repo_config_decode(out, bytes.data, bytes.len);
    nova_buf_free(&bytes);
    return rc;
}
