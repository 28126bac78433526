/* fuzz_pb_migration.c — StreamMigration unpacked through pb_arena: never
 * beyond BN_PB_ARENA_MAX, and whatever unpacks re-packs to a fixed point. */
#include <stdlib.h>

#include "proto.h"

#define FZ_CHECK(c) ((c) ? (void)0 : abort()) /* a violated property */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *fz_pack(const Bftnet__Sm__StreamMigration *m, size_t *n) {
  *n = bftnet__sm__stream_migration__get_packed_size(m);
  uint8_t *p = malloc(*n ? *n : 1);
  FZ_CHECK(p);
  FZ_CHECK(bftnet__sm__stream_migration__pack(m, p) == *n);
  return p;
}

static void fz_check_case(const Bftnet__Sm__StreamMigration *m) {
  switch (m->type_case) {
  case BFTNET__SM__STREAM_MIGRATION__TYPE__NOT_SET:
    break;
  case BFTNET__SM__STREAM_MIGRATION__TYPE_LABEL:
    FZ_CHECK(m->label);
    break;
  case BFTNET__SM__STREAM_MIGRATION__TYPE_MIGRATE:
    FZ_CHECK(m->migrate);
    break;
  case BFTNET__SM__STREAM_MIGRATION__TYPE_ACK_MIGRATE:
    FZ_CHECK(m->ack_migrate);
    break;
  case BFTNET__SM__STREAM_MIGRATION__TYPE_CONFIRM_START:
    FZ_CHECK(m->confirm_start);
    break;
  case BFTNET__SM__STREAM_MIGRATION__TYPE_CONFIRM:
    FZ_CHECK(m->confirm);
    break;
  default:
    abort();
  }
}

/* protobuf-c 1.4.1 rejects field number 0 in a one-byte tag but keeps it as
 * an unknown field when the tag is spelled with more bytes (80 00); it then
 * re-packs it as 00, which it rejects. Harmless (unknown fields are ignored),
 * so such messages are exempt from the fixed-point property only. */
static bool fz_has_tag0(const ProtobufCMessage *m) {
  for (unsigned i = 0; i < m->n_unknown_fields; i++)
    if (m->unknown_fields[i].tag == 0) return true;
  return false;
}

static const ProtobufCMessage *fz_inner(const Bftnet__Sm__StreamMigration *m) {
  switch (m->type_case) {
  case BFTNET__SM__STREAM_MIGRATION__TYPE_LABEL:
    return &m->label->base;
  case BFTNET__SM__STREAM_MIGRATION__TYPE_MIGRATE:
    return &m->migrate->base;
  case BFTNET__SM__STREAM_MIGRATION__TYPE_ACK_MIGRATE:
    return &m->ack_migrate->base;
  case BFTNET__SM__STREAM_MIGRATION__TYPE_CONFIRM_START:
    return &m->confirm_start->base;
  case BFTNET__SM__STREAM_MIGRATION__TYPE_CONFIRM:
    return &m->confirm->base;
  default:
    return NULL;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pb_arena_t *a = malloc(sizeof(*a));
  FZ_CHECK(a);
  pb_arena_init(a);
  Bftnet__Sm__StreamMigration *m = bftnet__sm__stream_migration__unpack(&a->alloc, size, data);
  FZ_CHECK(a->used <= BN_PB_ARENA_MAX);
  if (m) fz_check_case(m);
  const ProtobufCMessage *inner = m ? fz_inner(m) : NULL;
  if (m && !fz_has_tag0(&m->base) && !(inner && fz_has_tag0(inner))) {
    size_t n1;
    uint8_t *p1 = fz_pack(m, &n1);
    pb_arena_t *b = malloc(sizeof(*b));
    FZ_CHECK(b);
    pb_arena_init(b);
    Bftnet__Sm__StreamMigration *m2 = bftnet__sm__stream_migration__unpack(&b->alloc, n1, p1);
    FZ_CHECK(m2 && m2->type_case == m->type_case);
    size_t n2;
    uint8_t *p2 = fz_pack(m2, &n2);
    FZ_CHECK(n1 == n2 && memcmp(p1, p2, n1) == 0);
    bftnet__sm__stream_migration__free_unpacked(m2, &b->alloc);
    free(p1);
    free(p2);
    free(b);
    bftnet__sm__stream_migration__free_unpacked(m, &a->alloc);
  }
  free(a);
  return 0;
}
