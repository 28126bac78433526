/* proto_pb_test.c — StreamMigration through the capped protobuf-c arena:
 * exact wire bytes (extension fields 16/17), round trips, and hostile
 * messages that must fail inside BN_PB_ARENA_MAX instead of allocating. */
#include "harness.h"
#include "proto.h"

typedef Bftnet__Sm__StreamMigration sm_msg_t;

static sm_msg_t *sm_unpack_hex(const char *hex, pb_arena_t *arena) {
  size_t n;
  uint8_t *p = th_hex(hex, &n);
  pb_arena_init(arena);
  sm_msg_t *u = bftnet__sm__stream_migration__unpack(&arena->alloc, n, p);
  free(p);
  assert_true(arena->used <= BN_PB_ARENA_MAX);
  return u;
}

/* Packs m, checks the exact bytes, unpacks through a fresh arena and
 * returns the copy (valid while *arena lives). */
static sm_msg_t *sm_roundtrip(const sm_msg_t *m, const char *want_hex, pb_arena_t *arena) {
  uint8_t buf[256];
  size_t n = bftnet__sm__stream_migration__get_packed_size(m);
  assert_true(n <= sizeof(buf));
  assert_int_equal(bftnet__sm__stream_migration__pack(m, buf), n);
  size_t wn;
  uint8_t *want = th_hex(want_hex, &wn);
  assert_int_equal(n, wn);
  assert_memory_equal(buf, want, wn);
  free(want);
  sm_msg_t *u = sm_unpack_hex(want_hex, arena);
  assert_non_null(u);
  assert_true(arena->used > 0);
  return u;
}

static void test_pb_label(void **state) {
  (void)state;
  Bftnet__Sm__Label l = BFTNET__SM__LABEL__INIT;
  l.id = 7;
  l.has_incarnation = 1;
  l.incarnation = 0x1234567890abcdefull;
  sm_msg_t m = BFTNET__SM__STREAM_MIGRATION__INIT;
  m.type_case = BFTNET__SM__STREAM_MIGRATION__TYPE_LABEL;
  m.label = &l;
  pb_arena_t arena;
  /* 0a len { 08 07, field 16 varint: tag 80 01, value } */
  sm_msg_t *u = sm_roundtrip(&m, "0a0d08078001ef9baf8589cf959a12", &arena);
  assert_int_equal(u->type_case, BFTNET__SM__STREAM_MIGRATION__TYPE_LABEL);
  assert_int_equal(u->label->id, 7);
  assert_true(u->label->has_incarnation);
  assert_true(u->label->incarnation == 0x1234567890abcdefull);
  bftnet__sm__stream_migration__free_unpacked(u, &arena.alloc); /* a no-op */

  /* A spec-only peer's Label: no incarnation. */
  u = sm_unpack_hex("0a020802", &arena);
  assert_non_null(u);
  assert_int_equal(u->label->id, 2);
  assert_false(u->label->has_incarnation);
}

static void test_pb_migrate(void **state) {
  (void)state;
  Bftnet__Sm__Migrate mg = BFTNET__SM__MIGRATE__INIT;
  mg.id = 10;
  mg.from = 4;
  mg.has_incarnation = 1;
  mg.incarnation = 1;
  mg.has_read_offset = 1;
  mg.read_offset = 1000;
  sm_msg_t m = BFTNET__SM__STREAM_MIGRATION__INIT;
  m.type_case = BFTNET__SM__STREAM_MIGRATION__TYPE_MIGRATE;
  m.migrate = &mg;
  pb_arena_t arena;
  /* 12 len { 08 0a, 10 04, 80 01 01, 88 01 e8 07 } */
  sm_msg_t *u = sm_roundtrip(&m,
                             "120b080a1004800101"
                             "8801e807",
                             &arena);
  assert_int_equal(u->type_case, BFTNET__SM__STREAM_MIGRATION__TYPE_MIGRATE);
  assert_int_equal(u->migrate->id, 10);
  assert_int_equal(u->migrate->from, 4);
  assert_true(u->migrate->has_incarnation && u->migrate->incarnation == 1);
  assert_true(u->migrate->has_read_offset && u->migrate->read_offset == 1000);
}

static void test_pb_ack_migrate(void **state) {
  (void)state;
  Bftnet__Sm__AckMigrate ack = BFTNET__SM__ACK_MIGRATE__INIT;
  ack.has_deny_migrate = 1;
  ack.deny_migrate = 1;
  ack.has_incarnation = 1;
  ack.incarnation = 3;
  ack.has_read_offset = 1;
  ack.read_offset = UINT64_MAX;
  sm_msg_t m = BFTNET__SM__STREAM_MIGRATION__INIT;
  m.type_case = BFTNET__SM__STREAM_MIGRATION__TYPE_ACK_MIGRATE;
  m.ack_migrate = &ack;
  pb_arena_t arena;
  sm_msg_t *u = sm_roundtrip(&m,
                             "1a11"
                             "0801"
                             "800103"
                             "8801ffffffffffffffffff01",
                             &arena);
  assert_int_equal(u->type_case, BFTNET__SM__STREAM_MIGRATION__TYPE_ACK_MIGRATE);
  assert_true(u->ack_migrate->has_deny_migrate && u->ack_migrate->deny_migrate);
  assert_true(u->ack_migrate->incarnation == 3);
  assert_true(u->ack_migrate->read_offset == UINT64_MAX);

  /* The spec's bare AckMigrate (accept): no fields at all. */
  u = sm_unpack_hex("1a00", &arena);
  assert_non_null(u);
  assert_int_equal(u->type_case, BFTNET__SM__STREAM_MIGRATION__TYPE_ACK_MIGRATE);
  assert_false(u->ack_migrate->has_deny_migrate);
  assert_false(u->ack_migrate->has_read_offset);
}

static void test_pb_malformed(void **state) {
  (void)state;
  pb_arena_t arena;
  assert_null(sm_unpack_hex("0a00", &arena));       /* Label without its required id */
  assert_null(sm_unpack_hex("12020801", &arena));   /* Migrate without from */
  assert_null(sm_unpack_hex("0a05080780", &arena)); /* sub-message longer than input */
  assert_null(sm_unpack_hex("0a0308ffff", &arena)); /* truncated varint */
  assert_null(sm_unpack_hex("ff", &arena));
  /* Unknown fields (a newer peer) are skipped. */
  sm_msg_t *u = sm_unpack_hex("0a050802a00105"
                              "a00601",
                              &arena);
  assert_non_null(u);
  assert_int_equal(u->label->id, 2);
  /* An empty message has no type: valid protobuf, for the caller to refuse. */
  u = sm_unpack_hex("", &arena);
  assert_non_null(u);
  assert_int_equal(u->type_case, BFTNET__SM__STREAM_MIGRATION__TYPE__NOT_SET);
}

/* n entries of repeated string field 2 ("/x") inside NoiseExtensions (field 4). */
static uint8_t *noise_many_muxers(size_t count, size_t *len) {
  size_t inner = count * 4;
  uint8_t hdr[BN_UVARINT_MAX_BYTES];
  size_t h = uvarint_encode(hdr, inner);
  uint8_t *p = malloc(1 + h + inner);
  assert_non_null(p);
  p[0] = 0x22;
  memcpy(p + 1, hdr, h);
  for (size_t i = 0; i < count; i++)
    memcpy(p + 1 + h + 4 * i, "\x12\x02/x", 4);
  *len = 1 + h + inner;
  return p;
}

static void test_pb_arena_exhaustion(void **state) {
  (void)state;
  pb_arena_t arena;
  size_t n;
  /* A few entries fit. */
  uint8_t *p = noise_many_muxers(8, &n);
  pb_arena_init(&arena);
  Bftnet__Noise__NoiseHandshakePayload *pl =
      bftnet__noise__noise_handshake_payload__unpack(&arena.alloc, n, p);
  assert_non_null(pl);
  assert_int_equal(pl->extensions->n_stream_muxers, 8);
  assert_string_equal(pl->extensions->stream_muxers[7], "/x");
  free(p);

  /* 100000 entries need ~800 KB of pointers alone: refused, nothing allocated. */
  p = noise_many_muxers(100000, &n);
  pb_arena_init(&arena);
  pl = bftnet__noise__noise_handshake_payload__unpack(&arena.alloc, n, p);
  assert_null(pl);
  assert_true(arena.used <= BN_PB_ARENA_MAX);
  free(p);

  /* One bytes field larger than the arena. */
  size_t big = BN_PB_ARENA_MAX + 100;
  p = calloc(1, big + 8);
  assert_non_null(p);
  p[0] = 0x0a;
  size_t h = uvarint_encode(p + 1, big);
  pb_arena_init(&arena);
  pl = bftnet__noise__noise_handshake_payload__unpack(&arena.alloc, 1 + h + big, p);
  assert_null(pl);
  free(p);

  /* The arena is reusable after a failure. */
  pb_arena_t a2;
  sm_msg_t *u = sm_unpack_hex("0a020802", &a2);
  assert_non_null(u);
}

static void test_pb_arena_alloc(void **state) {
  (void)state;
  pb_arena_t a;
  pb_arena_init(&a);
  ProtobufCAllocator *al = &a.alloc;
  void *p1 = al->alloc(al->allocator_data, 1);
  void *p2 = al->alloc(al->allocator_data, 17);
  void *p3 = al->alloc(al->allocator_data, 0);
  assert_non_null(p1);
  assert_non_null(p2);
  assert_non_null(p3);
  assert_int_equal((uintptr_t)p1 % 16, 0);
  assert_int_equal((uintptr_t)p2 % 16, 0);
  assert_int_equal((uintptr_t)p3 % 16, 0);
  assert_true((uint8_t *)p2 >= (uint8_t *)p1 + 16);
  al->free(al->allocator_data, p2);
  assert_null(al->alloc(al->allocator_data, SIZE_MAX));
  assert_null(al->alloc(al->allocator_data, SIZE_MAX - 7));
  assert_null(al->alloc(al->allocator_data, BN_PB_ARENA_MAX));
  void *rest = al->alloc(al->allocator_data, BN_PB_ARENA_MAX - a.used);
  assert_non_null(rest);
  assert_int_equal(a.used, BN_PB_ARENA_MAX);
  assert_null(al->alloc(al->allocator_data, 1));
  pb_arena_init(&a);
  assert_int_equal(a.used, 0);
  assert_ptr_equal(al->alloc(al->allocator_data, 1), a.mem);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pb_label),
      cmocka_unit_test(test_pb_migrate),
      cmocka_unit_test(test_pb_ack_migrate),
      cmocka_unit_test(test_pb_malformed),
      cmocka_unit_test(test_pb_arena_exhaustion),
      cmocka_unit_test(test_pb_arena_alloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
