/* fuzz_migration.c — arbitrary event sequences into both roles' registries:
 * decoded StreamMigration messages (through mig_reader), carrier data, FIN,
 * RST, loss, credit, writes, closes, migrations, ticks and incarnations; and
 * the confirmations: the peer's mode, Confirms (any ID, any offset), and the
 * reader's side (a due Confirm taken as sent).
 * Properties: no crash or sanitizer report; the retransmit window never
 * exceeds its bound; a live stream's offsets stay ordered
 * (w_base <= w_confirmed <= w_written, confirmed <= sent). */
#include <stdlib.h>

#include "mig_core.h"

#define FZ_CHECK(c) ((c) ? (void)0 : abort())
#define FZ_WIN      4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz {
  const uint8_t *p;
  size_t n;
} fz_t;

static uint8_t fz_u8(fz_t *f) {
  if (!f->n) return 0;
  f->n--;
  return *f->p++;
}
static uint64_t fz_u16(fz_t *f) {
  return (uint64_t)fz_u8(f) << 8 | fz_u8(f);
}

static void fz_check(const mig_reg_t *p) {
  for (size_t i = 0; i < MIG_MAX_STREAMS; i++) {
    const mig_sm_t *s = p->streams[i];
    if (!s || s->state == MIG_S_ABORTED || s->state == MIG_S_CLOSED) continue;
    FZ_CHECK(mig_sm_window(s) <= FZ_WIN);
    FZ_CHECK(s->w_base <= s->w_written && s->w_confirmed <= s->w_written);
    FZ_CHECK(s->w_confirmed <= s->w_sent_max);
  }
}

static mig_sm_t *fz_stream(mig_reg_t *p, uint8_t k) {
  mig_sm_t *live[MIG_MAX_STREAMS];
  size_t n = 0;
  for (size_t i = 0; i < MIG_MAX_STREAMS; i++)
    if (p->streams[i]) live[n++] = p->streams[i];
  return n ? live[k % n] : NULL;
}

static void fz_msg(fz_t *f, mig_reg_t *p, uint64_t h, uint64_t now, mig_actions_t *acts) {
  mig_reader_t r;
  mig_reader_init(&r);
  size_t len = fz_u8(f) % 24;
  len = BN_MIN(len, f->n);
  mig_reader_feed(&r, f->p, len);
  f->p += len;
  f->n -= len;
  mig_msg_t m;
  if (mig_reader_next(&r, &m) == 1) (void)mig_reg_on_msg(p, h, &m, now, acts, NULL);
}

/* The confirmation events (op 15), or freeing a final stream. */
static void fz_confirm(fz_t *f, mig_reg_t *p, mig_sm_t *s, mig_actions_t *acts) {
  uint8_t k = fz_u8(f);
  uint64_t off;
  switch (k % 5) {
  case 0:
    (void)mig_reg_set_mode(p, (mig_mode_t)(fz_u8(f) % 4), acts);
    break;
  case 1:
    (void)mig_reg_on_confirm(p, s && k & 8 ? s->id : fz_u8(f), fz_u16(f), acts);
    break;
  case 2:
    if (s && mig_sm_confirm_due(s, fz_u8(f), &off)) {
      FZ_CHECK(off <= s->r_delivered && off > s->r_reported);
      FZ_CHECK(!s->r_hold && !s->pend.h && !s->uncertain);
      FZ_CHECK(mig_sm_confirm_sent(p, s, off, acts) == 0);
    }
    break;
  case 3:
    if (s) (void)mig_reg_on_confirm(p, s->id, s->w_sent_max + (k >> 4), acts);
    break;
  default:
    if (s) (void)mig_reg_sm_free(p, s);
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mig_actions_t acts;
  static uint8_t zeros[512];
  mig_reg_t peers[2];
  peerid_t a = {.len = 4, .bytes = {1, 2, 3, 4}}, b = {.len = 4, .bytes = {1, 2, 3, 5}};
  mig_reg_config_t cfg = {
      .self = a, .peer = b, .incarnation = 1, .detach_timeout = 50, .window_max = FZ_WIN};
  FZ_CHECK(mig_reg_init(&peers[0], &cfg) == 0);
  cfg.self = b;
  cfg.peer = a;
  cfg.incarnation = 2;
  FZ_CHECK(mig_reg_init(&peers[1], &cfg) == 0);
  fz_t f = {data, size};
  uint64_t now = 0;
  while (f.n) {
    uint8_t op = fz_u8(&f);
    mig_reg_t *p = &peers[op >> 7];
    uint64_t h = 1 + fz_u8(&f) % 16;
    mig_sm_t *s = fz_stream(p, fz_u8(&f));
    mig_actions_clear(&acts);
    mig_chunk_t c;
    switch (op & 0x0f) {
    case 0:
      fz_msg(&f, p, h, now, &acts);
      break;
    case 1:
      (void)mig_reg_on_data(p, h, (size_t)fz_u16(&f), &acts);
      break;
    case 2:
      (void)mig_reg_on_fin(p, h, &acts);
      break;
    case 3:
      (void)mig_reg_on_rst(p, h, &acts);
      break;
    case 4:
      (void)mig_reg_on_lost(p, h, now, &acts);
      break;
    case 5:
      (void)mig_reg_on_credit(p, h, fz_u16(&f), &acts);
      break;
    case 6:
      if (s) (void)mig_sm_write(p, s, zeros, fz_u8(&f) * 2u);
      break;
    case 7:
      if (s) (void)mig_sm_close(p, s, &acts);
      break;
    case 8:
      if (s) (void)mig_sm_migrate(p, s, h, &acts);
      break;
    case 9:
      now += fz_u8(&f);
      (void)mig_reg_tick(p, now, &acts);
      break;
    case 10:
      (void)mig_reg_on_incarnation(p, fz_u8(&f) % 3, now, &acts);
      break;
    case 11:
      if (s) (void)mig_sm_pull(p, s, fz_u16(&f), &c, &acts);
      break;
    case 12:
      if (s) (void)mig_sm_on_echo(p, s, &acts);
      break;
    case 13:
      if (s) (void)mig_sm_on_na(p, s, &acts);
      break;
    case 14: {
      mig_sm_t *o;
      (void)mig_reg_open(p, h, &acts, &o);
    } break;
    default:
      fz_confirm(&f, p, s, &acts);
      break;
    }
    FZ_CHECK(acts.n <= MIG_MAX_ACTIONS);
    fz_check(&peers[0]);
    fz_check(&peers[1]);
  }
  mig_reg_free(&peers[0]);
  mig_reg_free(&peers[1]);
  return 0;
}
