/* The resp_server's keyspace: see resp_db.h. */
#include "resp_db.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct resp_db_entry {
    uint32_t klen, vlen, vcap;
    char data[]; /* key, then room for vcap value bytes */
};

#define DB_MIN_CAP 16

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* A seeded multiply-xorshift hash over 8-byte words. */
static uint64_t hash_bytes(uint64_t seed, const char *p, size_t n)
{
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x9fb21c651e98df25ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0x9fb21c651e98df25ull;
    }
    return mix64(h);
}

int resp_db_init(resp_db *db)
{
    memset(db, 0, sizeof *db);
    db->slots = calloc(DB_MIN_CAP, sizeof *db->slots);
    if (!db->slots)
        return -ENOMEM;
    db->cap = DB_MIN_CAP;
    /* A per-table seed keeps a peer from choosing colliding keys. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    db->seed = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)db);
    return 0;
}

void resp_db_clear(resp_db *db)
{
    for (size_t i = 0; i < db->cap; i++) {
        free(db->slots[i].e);
        db->slots[i].e = NULL;
    }
    db->count = 0;
}

void resp_db_free(resp_db *db)
{
    if (!db->slots)
        return;
    resp_db_clear(db);
    free(db->slots);
    db->slots = NULL;
    db->cap = 0;
}

/* The slot holding key, or -1. */
static long find(const resp_db *db, uint64_t h, const char *key, size_t klen)
{
    size_t mask = db->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const resp_db_slot *s = &db->slots[i];
        if (!s->e)
            return -1;
        if (s->hash == h && s->e->klen == klen && memcmp(s->e->data, key, klen) == 0)
            return (long)i;
    }
}

const char *resp_db_get(const resp_db *db, const char *key, size_t klen, size_t *vlen)
{
    long i = find(db, hash_bytes(db->seed, key, klen), key, klen);
    if (i < 0)
        return NULL;
    const resp_db_entry *e = db->slots[i].e;
    *vlen = e->vlen;
    return e->data + e->klen;
}

static int grow(resp_db *db)
{
    size_t ncap = db->cap * 2;
    resp_db_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -ENOMEM;
    size_t mask = ncap - 1;
    for (size_t i = 0; i < db->cap; i++) {
        resp_db_slot s = db->slots[i];
        if (!s.e)
            continue;
        size_t j = s.hash & mask;
        while (ns[j].e)
            j = (j + 1) & mask;
        ns[j] = s;
    }
    free(db->slots);
    db->slots = ns;
    db->cap = ncap;
    return 0;
}

/* Value room: a little spare so small rewrites (INCR, same-size SET) reuse it. */
static size_t value_room(size_t vlen)
{
    size_t room = vlen < 24 ? 24 : vlen + vlen / 8;
    return room > RESP_DB_MAX_LEN ? vlen : room;
}

int resp_db_set(resp_db *db, const char *key, size_t klen, const char *val, size_t vlen)
{
    if (klen > RESP_DB_MAX_LEN || vlen > RESP_DB_MAX_LEN)
        return -E2BIG;
    uint64_t h = hash_bytes(db->seed, key, klen);
    long i = find(db, h, key, klen);
    if (i >= 0) {
        resp_db_entry *e = db->slots[i].e;
        if (vlen <= e->vcap && vlen + 64 >= e->vcap / 2) {
            memmove(e->data + e->klen, val, vlen);
            e->vlen = (uint32_t)vlen;
            return 0;
        }
        size_t room = value_room(vlen);
        resp_db_entry *ne = malloc(sizeof *ne + klen + room);
        if (!ne)
            return -ENOMEM;
        ne->klen = (uint32_t)klen;
        ne->vlen = (uint32_t)vlen;
        ne->vcap = (uint32_t)room;
        memcpy(ne->data, key, klen);
        memcpy(ne->data + klen, val, vlen);
        db->slots[i].e = ne;
        free(e);
        return 0;
    }
    if ((db->count + 1) * 4 > db->cap * 3) {
        int rc = grow(db);
        if (rc < 0)
            return rc;
    }
    size_t room = value_room(vlen);
    resp_db_entry *e = malloc(sizeof *e + klen + room);
    if (!e)
        return -ENOMEM;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->vcap = (uint32_t)room;
    memcpy(e->data, key, klen);
    memcpy(e->data + klen, val, vlen);
    size_t mask = db->cap - 1;
    size_t j = h & mask;
    while (db->slots[j].e)
        j = (j + 1) & mask;
    db->slots[j].hash = h;
    db->slots[j].e = e;
    db->count++;
    return 0;
}

int resp_db_del(resp_db *db, const char *key, size_t klen)
{
    long found = find(db, hash_bytes(db->seed, key, klen), key, klen);
    if (found < 0)
        return 0;
    size_t mask = db->cap - 1;
    size_t i = (size_t)found;
    free(db->slots[i].e);
    /* Backward shift: pull later members of the probe run into the hole
     * unless their home slot lies cyclically in (hole, j]. */
    for (size_t j = (i + 1) & mask; db->slots[j].e; j = (j + 1) & mask) {
        size_t home = db->slots[j].hash & mask;
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        db->slots[i] = db->slots[j];
        i = j;
    }
    db->slots[i].e = NULL;
    db->count--;
    return 1;
}
