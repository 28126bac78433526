/* codec.c — StreamMigration messages (PROTOCOL.md §11.1) and the ID /
 * leader rules (§11.3, §11.4). Pure: no I/O. */
#include <sodium.h>

#include "mig_core.h"

/* ------------------------------------------------------- IDs and roles */

bool mig_self_is_lower(const peerid_t *self, const peerid_t *peer) {
  return peerid_cmp(self, peer) < 0;
}

bool mig_self_is_leader(const peerid_t *self, const peerid_t *peer) {
  bool lower = mig_self_is_lower(self, peer);
  const peerid_t *lo = lower ? self : peer, *hi = lower ? peer : self;
  crypto_hash_sha256_state st;
  uint8_t h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, lo->bytes, lo->len);
  crypto_hash_sha256_update(&st, hi->bytes, hi->len);
  crypto_hash_sha256_final(&st, h);
  bool lower_leads = (h[sizeof(h) - 1] & 1u) == 0;
  return lower_leads == lower;
}

/* -------------------------------------------------------------- codec */

int mig_msg_encode(const mig_msg_t *m, bn_buf_t *out) {
  Bftnet__Sm__StreamMigration sm = BFTNET__SM__STREAM_MIGRATION__INIT;
  Bftnet__Sm__Label l = BFTNET__SM__LABEL__INIT;
  Bftnet__Sm__Migrate mg = BFTNET__SM__MIGRATE__INIT;
  Bftnet__Sm__AckMigrate ak = BFTNET__SM__ACK_MIGRATE__INIT;
  Bftnet__Sm__ConfirmStart cs = BFTNET__SM__CONFIRM_START__INIT;
  Bftnet__Sm__Confirm cf = BFTNET__SM__CONFIRM__INIT;
  switch (m->type) {
  case MIG_MSG_LABEL:
    l.id = m->id;
    l.has_incarnation = m->has_incarnation;
    l.incarnation = m->incarnation;
    l.has_max_message_size = m->max_message_size != 0;
    l.max_message_size = m->max_message_size;
    sm.type_case = BFTNET__SM__STREAM_MIGRATION__TYPE_LABEL;
    sm.label = &l;
    break;
  case MIG_MSG_MIGRATE:
    mg.id = m->id;
    mg.from = m->from;
    mg.has_incarnation = m->has_incarnation;
    mg.incarnation = m->incarnation;
    mg.has_read_offset = m->has_read_offset;
    mg.read_offset = m->read_offset;
    mg.has_max_message_size = m->max_message_size != 0;
    mg.max_message_size = m->max_message_size;
    sm.type_case = BFTNET__SM__STREAM_MIGRATION__TYPE_MIGRATE;
    sm.migrate = &mg;
    break;
  case MIG_MSG_ACK:
    ak.has_deny_migrate = m->deny;
    ak.deny_migrate = m->deny;
    ak.has_incarnation = m->has_incarnation;
    ak.incarnation = m->incarnation;
    ak.has_read_offset = m->has_read_offset;
    ak.read_offset = m->read_offset;
    ak.has_max_message_size = m->max_message_size != 0;
    ak.max_message_size = m->max_message_size;
    sm.type_case = BFTNET__SM__STREAM_MIGRATION__TYPE_ACK_MIGRATE;
    sm.ack_migrate = &ak;
    break;
  case MIG_MSG_CONFIRM_START:
    cs.incarnation = m->incarnation;
    sm.type_case = BFTNET__SM__STREAM_MIGRATION__TYPE_CONFIRM_START;
    sm.confirm_start = &cs;
    break;
  case MIG_MSG_CONFIRM:
    cf.id = m->id;
    cf.read_offset = m->read_offset;
    sm.type_case = BFTNET__SM__STREAM_MIGRATION__TYPE_CONFIRM;
    sm.confirm = &cf;
    break;
  default:
    return BFTNET_EINVAL;
  }
  uint8_t tmp[MIG_MSG_MAX];
  size_t n = bftnet__sm__stream_migration__get_packed_size(&sm);
  BN_ASSERT(n <= sizeof(tmp)); /* every message is at most ~60 bytes */
  bftnet__sm__stream_migration__pack(&sm, tmp);
  return lp_append(out, tmp, n);
}

/* A lenient protobuf varint (protobuf accepts non-minimal forms). */
static size_t mig_pb_varint(const uint8_t *p, size_t n, uint64_t *v) {
  uint64_t x = 0;
  for (size_t i = 0; i < n && i < 10; i++) {
    x |= (uint64_t)(p[i] & 0x7fu) << (7 * i);
    if (!(p[i] & 0x80u)) {
      *v = x;
      return i + 1;
    }
  }
  return 0;
}

/* The oneof's members: 1..5 known, 6 and 7 reserved (§11.1). */
#define MIG_ONEOF_LAST 7u

/* Counts the top-level occurrences of the oneof's fields: protobuf-c keeps
 * the last member of a oneof, we require exactly one. */
static int mig_count_oneof(const uint8_t *p, size_t n, unsigned *count) {
  size_t i = 0;
  *count = 0;
  while (i < n) {
    uint64_t tag, v;
    size_t k = mig_pb_varint(p + i, n - i, &tag);
    if (!k) return BFTNET_EPROTO;
    i += k;
    uint64_t field = tag >> 3;
    if (field >= 1 && field <= MIG_ONEOF_LAST) (*count)++;
    switch (tag & 7u) {
    case 0:
      k = mig_pb_varint(p + i, n - i, &v);
      if (!k) return BFTNET_EPROTO;
      i += k;
      break;
    case 1:
      if (n - i < 8) return BFTNET_EPROTO;
      i += 8;
      break;
    case 2:
      k = mig_pb_varint(p + i, n - i, &v);
      if (!k || v > n - i - k) return BFTNET_EPROTO;
      i += k + (size_t)v;
      break;
    case 5:
      if (n - i < 4) return BFTNET_EPROTO;
      i += 4;
      break;
    default:
      return BFTNET_EPROTO;
    }
  }
  return 0;
}

static int mig_msg_from_pb(const Bftnet__Sm__StreamMigration *sm, mig_msg_t *out) {
  mig_msg_t m;
  memset(&m, 0, sizeof(m));
  switch (sm->type_case) {
  case BFTNET__SM__STREAM_MIGRATION__TYPE_LABEL:
    m.type = MIG_MSG_LABEL;
    m.id = sm->label->id;
    m.has_incarnation = sm->label->has_incarnation;
    m.incarnation = sm->label->incarnation;
    m.max_message_size = sm->label->has_max_message_size ? sm->label->max_message_size : 0;
    break;
  case BFTNET__SM__STREAM_MIGRATION__TYPE_MIGRATE:
    m.type = MIG_MSG_MIGRATE;
    m.id = sm->migrate->id;
    m.from = sm->migrate->from;
    m.has_incarnation = sm->migrate->has_incarnation;
    m.incarnation = sm->migrate->incarnation;
    m.has_read_offset = sm->migrate->has_read_offset;
    m.read_offset = sm->migrate->read_offset;
    m.max_message_size = sm->migrate->has_max_message_size ? sm->migrate->max_message_size : 0;
    break;
  case BFTNET__SM__STREAM_MIGRATION__TYPE_ACK_MIGRATE:
    m.type = MIG_MSG_ACK;
    m.deny = sm->ack_migrate->has_deny_migrate && sm->ack_migrate->deny_migrate;
    m.has_incarnation = sm->ack_migrate->has_incarnation;
    m.incarnation = sm->ack_migrate->incarnation;
    m.has_read_offset = sm->ack_migrate->has_read_offset;
    m.read_offset = sm->ack_migrate->read_offset;
    m.max_message_size =
        sm->ack_migrate->has_max_message_size ? sm->ack_migrate->max_message_size : 0;
    break;
  case BFTNET__SM__STREAM_MIGRATION__TYPE_CONFIRM_START:
    m.type = MIG_MSG_CONFIRM_START;
    m.has_incarnation = true;
    m.incarnation = sm->confirm_start->incarnation;
    break;
  case BFTNET__SM__STREAM_MIGRATION__TYPE_CONFIRM:
    m.type = MIG_MSG_CONFIRM;
    m.id = sm->confirm->id;
    m.has_read_offset = true;
    m.read_offset = sm->confirm->read_offset;
    break;
  default: /* exactly one member was counted: 6 or 7, which protobuf-c keeps as unknown */
    m.type = MIG_MSG_RESERVED;
    break;
  }
  *out = m;
  return 0;
}

int mig_msg_decode(const uint8_t *p, size_t n, mig_msg_t *out) {
  const uint8_t *body;
  size_t blen;
  int used = lp_next(p, n, MIG_MSG_MAX, &body, &blen);
  if (used <= 0) return used;
  unsigned count;
  if (mig_count_oneof(body, blen, &count) < 0 || count != 1) return BFTNET_EPROTO;
  pb_arena_t arena;
  pb_arena_init(&arena);
  Bftnet__Sm__StreamMigration *sm = bftnet__sm__stream_migration__unpack(&arena.alloc, blen, body);
  if (!sm) return BFTNET_EPROTO;
  int rc = mig_msg_from_pb(sm, out);
  bftnet__sm__stream_migration__free_unpacked(sm, &arena.alloc);
  return rc < 0 ? rc : used;
}

/* ------------------------------------------------------------- reader */

void mig_reader_init(mig_reader_t *r) { memset(r, 0, sizeof(*r)); }

size_t mig_reader_feed(mig_reader_t *r, const uint8_t *p, size_t n) {
  if (r->err || r->done) return 0;
  size_t take = BN_MIN(n, sizeof(r->buf) - r->len);
  if (take) memcpy(r->buf + r->len, p, take);
  r->len += take;
  return take;
}

int mig_reader_next(mig_reader_t *r, mig_msg_t *out) {
  if (r->err) return r->err;
  if (r->done) return BFTNET_ESTATE; /* one message per carrier */
  int rc = mig_msg_decode(r->buf, r->len, out);
  if (rc < 0) {
    r->err = rc;
    return rc;
  }
  if (rc == 0) {
    /* A full buffer always holds a complete message (length checked first). */
    BN_ASSERT(r->len < sizeof(r->buf));
    return 0;
  }
  r->used = (size_t)rc;
  r->done = true;
  return 1;
}

void mig_reader_rest(const mig_reader_t *r, const uint8_t **p, size_t *n) {
  *p = r->done ? r->buf + r->used : NULL;
  *n = r->done ? r->len - r->used : 0;
}

/* --------------------------------------------------- message sequences */

void mig_seq_init(mig_seq_t *r) {
  r->err = 0;
  r->len = 0;
}

static int seq_fail(mig_seq_t *r, int err) {
  r->err = err;
  r->len = 0;
  return err;
}

int mig_seq_next(mig_seq_t *r, const uint8_t **p, size_t *n, mig_msg_t *out) {
  if (r->err) return r->err;
  if (r->len == 0) { /* decode in place; keep only an incomplete tail */
    int rc = mig_msg_decode(*p, *n, out);
    if (rc < 0) return seq_fail(r, rc);
    if (rc > 0) {
      *p += rc;
      *n -= (size_t)rc;
      return 1;
    }
    /* Incomplete: shorter than the largest message (its length is checked
     * before its body), so it fits. */
    if (*n >= sizeof(r->buf)) return seq_fail(r, BFTNET_EPROTO);
    if (*n) memcpy(r->buf, *p, *n);
    r->len = *n;
    *p += *n;
    *n = 0;
    return 0;
  }
  size_t held = r->len, take = BN_MIN(*n, sizeof(r->buf) - held);
  if (take) memcpy(r->buf + held, *p, take);
  r->len += take;
  int rc = mig_msg_decode(r->buf, r->len, out);
  if (rc < 0) return seq_fail(r, rc);
  if (rc == 0) {
    if (r->len == sizeof(r->buf)) return seq_fail(r, BFTNET_EPROTO); /* cannot happen */
    *p += take;
    *n -= take;
    return 0;
  }
  /* The held bytes alone were incomplete: the message ends in the new ones. */
  size_t from_p = (size_t)rc - held;
  *p += from_p;
  *n -= from_p;
  r->len = 0;
  return 1;
}
