/*
 * mig_internal.h — what the wiring files of migration/src share: the node,
 * peer, logical stream and carrier structs, and the functions one file
 * calls in another (mig__<file>_<verb>). Private to migration/.
 *
 * Every entry point (a net callback, a mig_* call, the tick) runs the core,
 * applies the actions it returned (mig__stream_apply) and pumps the streams
 * concerned. Frees of streams, carriers and peers are deferred to the end of
 * the outermost entry point (mig__defer_enter / mig__defer_leave), so a
 * pointer passed into a callback stays valid for that whole callback.
 *
 * The files call each other in one direction only (no circle):
 *   node.c -> io.c -> policy.c -> confirm.c -> stream.c -> defer.c -> carrier.c -> core
 * where core is sm.c -> codec.c (mig_core.h), and a file may also call any
 * file further right. The one reach back up: policy.c opens carriers with
 * io.c's net callbacks, which node.c registered in the node
 * (mig_node_t.carrier_cbs).
 */
#ifndef BFTNET_MIG_INTERNAL_H
#define BFTNET_MIG_INTERNAL_H

#include "mig_core.h"
#include "migration.h"

/* ------------------------------------------------------------ structs */

/* A carrier: one yamux stream under a logical stream (or a plain stream's). */
typedef struct mig_carrier {
  struct mig_carrier *next;
  struct mig_carrier *flush_next;
  mig_peer_t *p;
  uint64_t h;
  net_stream_t *ns;
  net_conn_t *conn;
  mig_stream_t *plain_ls; /* plain stream: its logical stream */
  mig_reader_t *rd;       /* while the first StreamMigration message is expected */
  uint64_t pre_left;      /* credit to absorb: our bytes before L's first byte */
  uint64_t held;          /* credit held while the consumer owes */
  bool dead;              /* reset or gone: net's on_free still to come */
  bool released;          /* the core forgot it: discard its bytes, never credit */
  bool label;             /* we opened it with a Label */
  bool flush_queued;
  bool gone; /* net freed it: unlinked and freed at the next reap */
} mig_carrier_t;

/* A confirmation stream (PROTOCOL.md §11.12) on one connection: ours
 * (outbound: we write our Confirms on it) or the peer's (inbound: we read
 * its Confirms). At most one of each per connection. */
typedef struct mig_ctl {
  struct mig_ctl *next;
  mig_peer_t *p;
  net_conn_t *conn;
  net_stream_t *ns;
  uint64_t epoch; /* the peer's restarts when it began (mig_reg_t.epoch) */
  uint64_t inc;   /* inbound: the incarnation its ConfirmStart named */
  mig_seq_t *rd;  /* inbound: the reader (an incomplete message at most) */
  bn_buf_t out;   /* outbound: Confirms yamux did not take yet */
  bool outbound;
  bool ready;   /* outbound: echoed, ConfirmStart written */
  bool started; /* inbound: ConfirmStart read */
  bool dead;    /* reset, refused or gone: net's on_free still to come */
  bool gone;    /* net freed it: unlinked and freed at the next reap */
} mig_ctl_t;

struct mig_stream {
  mig_stream_t *next;
  mig_peer_t *p;
  mig_sm_t *m;       /* labelled; NULL when plain */
  mig_carrier_t *pc; /* plain: its carrier */
  bool plain;
  mig_stream_cbs_t cbs;
  void *ud;
  bool we_opened;
  bool released, final, na_fallback;
  bool handed_up; /* inbound: the node's on_stream took it (else it frees itself when final) */
  bool refused;   /* ours: the peer answered na to its application protocol */
  int app;        /* its application protocol (mig_node_t.apps); -1 not yet known */
  uint8_t prio;   /* its carriers' priority on a paced connection */
  /* The inner negotiation read from the peer's direction. */
  bool neg_done;
  bool neg_hdr_sent; /* our multistream header is in L already */
  unsigned neg_step;
  unsigned neg_na; /* proposals we answered na */
  bn_buf_t neg;
  uint64_t app_base; /* L offset of our first application byte */
  uint64_t app_written;
  uint64_t plain_sent; /* plain: application bytes handed to net */
  bn_buf_t carry;      /* plain fallback: bytes to write before new ones */
  uint64_t debt;       /* bytes given to on_data, not yet consumed */
  bool want_writable;
  bool in_write;                  /* inside mig_stream_write: no writable callback */
  uint64_t detached_at;           /* 0 while attached */
  uint64_t last_conn;             /* net_conn_seq of the connection it rode last (0: none yet) */
  char cur_addr[BFTNET_ADDR_MAX]; /* the connection it rides (for events): a copy,
                                     the connection may be gone by then */
  bftnet_mig_reason_t why;        /* the reason of the exchange we started */
  bftnet_reason_t cause;          /* while a carrier's end is applied: why (mig_event_t) */
  uint64_t next_try;
};

struct mig_peer {
  mig_peer_t *next;
  mig_node_t *n;
  peerid_t id;
  char id_str[BFTNET_PEER_ID_MAX];
  mig_reg_t mig;
  uint64_t counts_seen[MIG_R_COUNT];
  void *owner;
  bool released;
  bool plain_only;
  mig_stream_t *streams;
  mig_carrier_t *carriers;
  mig_ctl_t *ctls;
  bool conf_due;         /* a Confirm may be due: the flush timer sends it */
  uint64_t ctl_retry_at; /* our confirmation stream was reset: not reopened before */
  maddr_t addrs[BFTNET_MAX_ADDRS];
  size_t naddrs;
  bool addr_changed;
  uint64_t next_probe;
  unsigned probe_idx;
  bool probing;
  struct {
    uint64_t seq;
    unsigned idle;
  } idle[8];
  mig_peer_stats_t st;
  uint32_t peer_max_msg; /* the peer's max_message_size (0: never said) */
  /* The peer is going away: connections up to this creation number are
   * its old ones (io.c, net_peer_going_away); 0: it is not. */
  uint64_t away_seq;
};

struct mig_node {
  net_t *net;
  bn_transport_t *t;
  mig_config_t cfg;
  mig_node_cbs_t cbs;
  void *ud;
  bn_counters_t *ctr;
  uint64_t incarnation;
  uint64_t next_k; /* stream IDs: every peer's registry draws k from here */
  uint64_t next_h;
  mig_peer_t *peers;
  bn_ttimer_t *timer;
  bn_ttimer_t *flush_timer;
  int nest;
  bool reap_needed;
  bool stopping;
  mig_carrier_t *flush_head;
  bool flush_scheduled;
  size_t pre_label;               /* outer multistream bytes on a carrier: header + protocol */
  uint64_t confirm_bytes;         /* a Confirm at once after this many bytes read (§11.12) */
  const char *apps[MIG_MAX_APPS]; /* the application protocols (mig_config_t) */
  unsigned napps;
  const net_stream_cbs_t *carrier_cbs; /* io.c's callbacks for a migratable carrier */
};

static inline uint64_t mig__now(const mig_node_t *n) {
  return bn_now_ns(n->t->seam);
}

static inline void mig__count(mig_node_t *n, bftnet_counter_id_t id, uint64_t v) {
  if (id < BFTNET_COUNTER_COUNT && v) bn_counter_add(n->ctr, id, v);
}

/* ---------------------------------------- carrier.c: the yamux carriers */

/* The live carrier with handle h, or NULL. Inline: called per action and
 * per pump round. */
static inline mig_carrier_t *mig__carrier_find(const mig_peer_t *p, uint64_t h) {
  if (!h) return NULL;
  for (mig_carrier_t *c = p->carriers; c; c = c->next)
    if (c->h == h && !c->gone) return c;
  return NULL;
}
/* A carrier record on conn for p (no net stream yet), or NULL (no memory). */
mig_carrier_t *mig__carrier_new(mig_peer_t *p, net_conn_t *conn);
/* A carrier on conn for p: with a reader for the first StreamMigration
 * message if `reader`, and, when proto is set, an outbound stream proposing
 * it with callbacks cbs. On failure nothing is left behind. */
int mig__carrier_open(mig_peer_t *p, net_conn_t *conn, const char *proto,
                      const net_stream_cbs_t *cbs, bool reader, mig_carrier_t **out);
/* Net is done with car: it leaves the lists at the next reap. */
void mig__carrier_unlink(mig_carrier_t *car);
/* Frees an unlinked carrier (the reap). */
void mig__carrier_destroy(mig_carrier_t *car);
/* Resets car's net stream once (net's on_free follows). */
void mig__carrier_reset(mig_carrier_t *car);
/* Grants k bytes of credit on car; the window update is flushed later
 * (only for an older peer, which confirms with it, §11.11). */
void mig__carrier_credit(mig_carrier_t *car, uint64_t k);
/* Sends the owed window updates (the flush timer, ud: the node). */
void mig__carrier_flush(void *ud);
/* A Confirm to p may be due: the flush timer runs within
 * MIG_CREDIT_FLUSH_MS. */
void mig__carrier_kick(mig_peer_t *p);
/* Writes StreamMigration m on car, behind its multistream prefix. */
void mig__carrier_send_msg(mig_peer_t *p, mig_carrier_t *car, const mig_msg_t *m);
/* Feeds n bytes to a carrier that waits for its first StreamMigration
 * message (car->rd set) and credits the message's bytes (they are not L's).
 * 1: *msg is the message, and *used the bytes of d it took (the rest are
 * L's first bytes); 0: more bytes needed; < 0: a bad message (counted, the
 * carrier reset). */
int mig__carrier_read_msg(mig_carrier_t *car, net_stream_t *s, const uint8_t *d, size_t n,
                          mig_msg_t *msg, size_t *used);
/* Of k bytes of credit the peer granted on car, those left after the bytes
 * we wrote before L's first byte (they confirm L's bytes). */
uint64_t mig__carrier_absorb(mig_carrier_t *car, uint64_t k);
/* Bytes of the outer multistream on a carrier we open (header + protocol),
 * or < 0. */
int mig__carrier_prefix_len(void);

/* A peer in logs: "r1 (12D3KooW...)" when the layer above names it (net's
 * peer_name), else its peer ID. MIG_WHO(p) is a label valid until the end
 * of the enclosing block. */
static inline const char *mig__peer_label(const mig_peer_t *p, char *buf, size_t cap) {
  net_peer_label(p->n->net, &p->id, buf, cap);
  return buf;
}
#define MIG_WHO(p) mig__peer_label((p), (char[NET_PEER_LABEL_MAX]){0}, NET_PEER_LABEL_MAX)

/* ------------------------------------------------ defer.c: deferred frees */

/* Every entry point runs between the two; at the outermost leave, what
 * was released meanwhile is freed. */
void mig__defer_enter(mig_node_t *n);
void mig__defer_leave(mig_node_t *n);
void mig__defer_free_stream(mig_stream_t *ls);
void mig__defer_free_ctl(mig_ctl_t *k);

/* ----------------------------------------- stream.c: the logical streams */

/* The wiring's stream of core stream m (NULL for NULL). */
mig_stream_t *mig__stream_of(const mig_peer_t *p, const mig_sm_t *m);
/* The stream by its current ID, also once final (the core forgets it). */
mig_stream_t *mig__stream_by_id(const mig_peer_t *p, uint64_t id);
mig_stream_t *mig__stream_of_carrier(const mig_peer_t *p, const mig_carrier_t *car);
mig_stream_t *mig__stream_new(mig_peer_t *p, bool we_opened);
/* Remembers the address of the connection it rides (c NULL: detached). */
void mig__stream_set_conn(mig_stream_t *ls, net_conn_t *c);
void mig__stream_emit(mig_stream_t *ls, const mig_event_t *ev);
/* The final event (ABORTED or CLOSED), once. */
void mig__stream_final(mig_stream_t *ls, mig_ev_type_t type, const char *reason);
/* Writes the inner negotiation into L: part of L's bytes (PROTOCOL.md 11.2). */
int mig__stream_write_neg(mig_stream_t *ls);
/* The index of application protocol text[0, len) in the node's list, or -1. */
int mig__stream_app_index(const mig_node_t *n, const char *text, size_t len);
void mig__stream_abort_local(mig_stream_t *ls, const char *why);
/* Carries out the core's actions; data: the bytes a DELIVER refers to. */
void mig__stream_apply(mig_peer_t *p, mig_actions_t *acts, const uint8_t *data);
/* Moves L's bytes onto its carrier as far as credit and the connection allow. */
void mig__stream_pump(mig_stream_t *ls);

/* ------------------------------------ confirm.c: the confirmation streams */

/* Opens our confirmation stream on c unless there is one, or the peer is
 * known not to speak it (the probe that decides p's mode, §11.12). */
void mig__confirm_ensure(mig_peer_t *p, net_conn_t *c);
/* The peer opened one on c (net's protocol handler): 0, or < 0 to reset it. */
int mig__confirm_accept(mig_peer_t *p, net_conn_t *c, net_stream_t *s);
/* L (core stream m) read more or ended: a Confirm goes at once past
 * confirm_bytes, else within MIG_CREDIT_FLUSH_MS. Inline-cheap per read. */
void mig__confirm_note(mig_peer_t *p, const mig_sm_t *m);
/* Writes every Confirm due now, batched per confirmation stream. */
void mig__confirm_flush(mig_peer_t *p);
/* The flush timer (ud: the node): owed window updates, then due Confirms. */
void mig__confirm_timer(void *ud);
/* Resets p's confirmation streams (peer released, node stopping). */
void mig__confirm_reset_all(mig_peer_t *p);

/* ------------------------------------------ policy.c: the leader's policy */

/* The leader's work for one pair; `tick` also closes idle duplicates. */
void mig__policy_run(mig_peer_t *p, uint64_t now, bool tick);

/* ----------------------------------------------- io.c: net's stream events */

extern const net_stream_cbs_t mig__io_carrier_cbs; /* a migratable carrier */
extern const net_stream_cbs_t mig__io_plain_cbs;   /* a plain stream */

#endif /* BFTNET_MIG_INTERNAL_H */
