/*
 * events.c — what the application hears on its on_event callback
 * (bftnet_event_t), on the loop thread: connections, members, and the
 * migration events of each member's streams (two per traffic class, the
 * event says which class), the failed dials to a member; and
 * bftnet_event_name. Labels come from the membership only (a member's node
 * ID), never from unauthenticated peers.
 */
#include <stdio.h>

#include "node_internal.h"

static void emit(bftnet_t *b, const bftnet_event_t *ev) {
  if (!b->cfg.on_event) return;
  node__cmd_cb_depth++; /* blocking calls from inside fail fast (cmd.c) */
  b->cfg.on_event(ev, b->cfg.user);
  node__cmd_cb_depth--;
}

void node__events_member(bftnet_t *b, bftnet_event_type_t type, const mbr_t *m, unsigned cls,
                         bftnet_reason_t reason, int err) {
  if (!b->cfg.on_event) return;
  char peer[BFTNET_PEER_ID_MAX] = "";
  peerid_to_string(&m->peer, peer, sizeof peer);
  net_conn_t *c = type == BFTNET_EV_MEMBER_UP ? disp_cls_conn(&m->d, cls) : NULL;
  bftnet_event_t ev = {.type = type,
                       .conn_id = c ? net_conn_seq(c) : 0,
                       .node_id = m->node_id,
                       .peer_id = peer,
                       .remote_addr = "",
                       .prev_addr = "",
                       .mig_abort = "",
                       .expected_peer_id = "",
                       .reason = reason,
                       .error = err,
                       .cls = (uint8_t)cls};
  emit(b, &ev);
}

void node__events_dial(bftnet_t *b, const mbr_t *m, int err, const maddr_t *addr,
                       const peerid_t *actual, uint32_t failures) {
  if (!b->cfg.on_event) return;
  char want[BFTNET_PEER_ID_MAX] = "", got[BFTNET_PEER_ID_MAX] = "", a[BFTNET_ADDR_MAX] = "";
  peerid_to_string(&m->peer, want, sizeof want);
  if (actual) peerid_to_string(actual, got, sizeof got);
  maddr_format(addr, a, sizeof a);
  bftnet_event_t ev = {.type = actual ? BFTNET_EV_MEMBER_WRONG_PEER : BFTNET_EV_MEMBER_UNREACHABLE,
                       .node_id = m->node_id,
                       .peer_id = actual ? got : want,
                       .expected_peer_id = want,
                       .remote_addr = a,
                       .outbound = 1,
                       .prev_addr = "",
                       .mig_abort = "",
                       .error = err,
                       .dial_failures = failures};
  emit(b, &ev);
}

void node__events_conn(bftnet_t *b, net_conn_t *c, bftnet_event_type_t type, const char *node_id,
                       bftnet_reason_t reason, int err) {
  if (!b->cfg.on_event) return;
  char peer[BFTNET_PEER_ID_MAX] = "", addr[BFTNET_ADDR_MAX] = "";
  if (net_conn_peer(c)->len) peerid_to_string(net_conn_peer(c), peer, sizeof peer);
  net_conn_remote_addr(c, addr, sizeof addr);
  bftnet_event_t ev = {.type = type,
                       .node_id = node_id,
                       .peer_id = peer,
                       .remote_addr = addr,
                       .prev_addr = "",
                       .mig_abort = "",
                       .expected_peer_id = "",
                       .outbound = net_conn_outbound(c),
                       .reason = reason,
                       .error = err,
                       .conn_id = net_conn_seq(c)};
  emit(b, &ev);
}

void node__events_publish_stats(mbr_t *m) {
  if (!m->d.lp) return;
  const mig_peer_stats_t *st = mig_peer_stats(m->d.lp);
  ck_pr_store_64(&m->pub.migrations, st->migrations);
  ck_pr_store_64(&m->pub.detached, st->detached);
  ck_pr_store_64(&m->pub.resumed, st->resumed);
  ck_pr_store_64(&m->pub.retransmitted, st->retransmitted);
  ck_pr_store_64(&m->pub.detach_ns_last, st->detach_ns_last);
  ck_pr_store_64(&m->pub.detach_ns_max, st->detach_ns_max);
  ck_pr_store_64(&m->pub.restarts, st->restarts);
}

void node__events_stream(mbr_t *m, mig_stream_t *ls, const mig_event_t *e, bool outbound,
                         uint64_t lost) {
  bftnet_t *b = m->b;
  node__events_publish_stats(m);
  if (!b->cfg.on_event) return;
  static const bftnet_event_type_t map[] = {[MIG_EV_MIGRATED] = BFTNET_EV_MIGRATED,
                                            [MIG_EV_DETACHED] = BFTNET_EV_DETACHED,
                                            [MIG_EV_RESUMED] = BFTNET_EV_RESUMED,
                                            [MIG_EV_DENIED] = BFTNET_EV_DENIED,
                                            [MIG_EV_ABORTED] = BFTNET_EV_ABORTED,
                                            [MIG_EV_CLOSED] = 0,
                                            [MIG_EV_READ_EOF] = 0};
  if ((size_t)e->type >= BN_ARRAY_LEN(map) || !map[e->type]) return;
  char peer[BFTNET_PEER_ID_MAX] = "", from[BFTNET_ADDR_MAX] = "", to[BFTNET_ADDR_MAX] = "";
  peerid_to_string(&m->peer, peer, sizeof peer);
  if (e->from_addr) snprintf(from, sizeof from, "%s", e->from_addr);
  net_conn_t *tc = e->to ? e->to : mig_stream_conn(ls);
  if (tc) net_conn_remote_addr(tc, to, sizeof to);
  bftnet_event_t ev = {.type = map[e->type],
                       .node_id = m->node_id,
                       .peer_id = peer,
                       .remote_addr = to,
                       .prev_addr = from,
                       .outbound = outbound,
                       .stream_id = e->stream_id,
                       .mig_reason = e->why,
                       .mig_abort = e->reason ? e->reason : "",
                       .expected_peer_id = "",
                       .reason = e->cause,
                       .lost = lost,
                       .detached_ns = e->detached_ns,
                       .retransmitted = e->retransmitted,
                       .cls = (uint8_t)BN_MAX(mig_stream_app(ls), 0),
                       .conn_id = tc ? net_conn_seq(tc) : mig_stream_last_conn(ls)};
  emit(b, &ev);
}

BFTNET_API const char *bftnet_event_name(bftnet_event_type_t type) {
  switch (type) {
  case BFTNET_EV_CONNECTED:
    return "connected";
  case BFTNET_EV_DISCONNECTED:
    return "disconnected";
  case BFTNET_EV_MEMBER_ADDED:
    return "member_added";
  case BFTNET_EV_MEMBER_REMOVED:
    return "member_removed";
  case BFTNET_EV_MEMBER_UP:
    return "member_up";
  case BFTNET_EV_MEMBER_DOWN:
    return "member_down";
  case BFTNET_EV_MIGRATED:
    return "migrated";
  case BFTNET_EV_DETACHED:
    return "detached";
  case BFTNET_EV_RESUMED:
    return "resumed";
  case BFTNET_EV_ABORTED:
    return "aborted";
  case BFTNET_EV_DENIED:
    return "denied";
  case BFTNET_EV_PEER_RESTARTED:
    return "peer_restarted";
  case BFTNET_EV_MEMBER_UNREACHABLE:
    return "member_unreachable";
  case BFTNET_EV_MEMBER_WRONG_PEER:
    return "member_wrong_peer";
  }
  return "unknown";
}
