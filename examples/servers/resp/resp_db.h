/* The resp_server's keyspace: an in-memory hash table of binary-safe byte
 * strings (keys and values), open addressing with linear probing and
 * backward-shift deletion, grown by rehashing at 3/4 load.
 *
 * A stored key and its value share one allocation with some spare room for
 * the value, so overwriting a value of about the same size (SET, INCR)
 * allocates nothing. Not thread-safe: callers sharing a table between
 * threads hold their own lock.
 */
#ifndef RESP_DB_H
#define RESP_DB_H

#include <stddef.h>
#include <stdint.h>

typedef struct resp_db_entry resp_db_entry;

typedef struct resp_db_slot {
    uint64_t hash;
    resp_db_entry *e; /* NULL: empty */
} resp_db_slot;

typedef struct resp_db {
    resp_db_slot *slots;
    size_t cap; /* power of two */
    size_t count;
    uint64_t seed;
} resp_db;

/* Key and value lengths are below 4 GiB. */
#define RESP_DB_MAX_LEN ((size_t)0xfffffff0u)

/* An empty table. Returns 0 or -ENOMEM. */
int resp_db_init(resp_db *db);

/* Free every entry and the table. */
void resp_db_free(resp_db *db);

/* The value stored under key, or NULL. *vlen gets its length. The pointer is
 * valid until the next change of the table. */
const char *resp_db_get(const resp_db *db, const char *key, size_t klen, size_t *vlen);

/* Store value under key (replacing any old value). Returns 0, -ENOMEM, or
 * -E2BIG (a length over RESP_DB_MAX_LEN). */
int resp_db_set(resp_db *db, const char *key, size_t klen, const char *val, size_t vlen);

/* Remove key. Returns 1 if it was there, 0 if not. */
int resp_db_del(resp_db *db, const char *key, size_t klen);

/* Drop every key (the table keeps its size). */
void resp_db_clear(resp_db *db);

#endif
