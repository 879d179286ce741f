/*
 * bench/null-milter.c: a do-nothing milter on libmilter for `npm run bench` scenario (b).
 * It asks for the whole message (headers and body, like tdc-milter) but negotiates every
 * SMFIP_NR_* no-reply flag the MTA offers, so it only answers option negotiation and end-of-body.
 * Usage: null-milter inet:PORT@127.0.0.1   (prints its callback counters on SIGTERM/SIGINT)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libmilter/mfapi.h>

static unsigned long n_conn, n_hdr, n_body, n_eom, nr_flags;

#define NR_ALL (SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA | \
                SMFIP_NR_UNKN | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY)

static sfsistat nm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                             unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                             unsigned long *pf2, unsigned long *pf3) {
  (void)ctx; (void)f0; (void)f2; (void)f3;
  *pf0 = 0; /* no modification actions */
  *pf1 = f1 & (NR_ALL | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_HDR_LEADSPC);
  *pf2 = 0;
  *pf3 = 0;
  nr_flags = *pf1 & NR_ALL;
  return SMFIS_CONTINUE;
}

/* Callbacks for stages with a granted NR flag must answer SMFIS_NOREPLY. */
static sfsistat reply_for(unsigned long flag) { return (nr_flags & flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE; }

static sfsistat nm_connect(SMFICTX *c, char *h, _SOCK_ADDR *a) { (void)c; (void)h; (void)a; n_conn++; return reply_for(SMFIP_NR_CONN); }
static sfsistat nm_helo(SMFICTX *c, char *h) { (void)c; (void)h; return reply_for(SMFIP_NR_HELO); }
static sfsistat nm_mail(SMFICTX *c, char **v) { (void)c; (void)v; return reply_for(SMFIP_NR_MAIL); }
static sfsistat nm_rcpt(SMFICTX *c, char **v) { (void)c; (void)v; return reply_for(SMFIP_NR_RCPT); }
static sfsistat nm_header(SMFICTX *c, char *n, char *v) { (void)c; (void)n; (void)v; n_hdr++; return reply_for(SMFIP_NR_HDR); }
static sfsistat nm_eoh(SMFICTX *c) { (void)c; return reply_for(SMFIP_NR_EOH); }
static sfsistat nm_body(SMFICTX *c, unsigned char *b, size_t l) { (void)c; (void)b; (void)l; n_body++; return reply_for(SMFIP_NR_BODY); }
static sfsistat nm_eom(SMFICTX *c) { (void)c; n_eom++; return SMFIS_CONTINUE; }
static sfsistat nm_abort(SMFICTX *c) { (void)c; return SMFIS_CONTINUE; }
static sfsistat nm_close(SMFICTX *c) { (void)c; return SMFIS_CONTINUE; }

static struct smfiDesc desc = {
  "bench-null", SMFI_VERSION, 0,
  nm_connect, nm_helo, nm_mail, nm_rcpt, nm_header, nm_eoh, nm_body, nm_eom, nm_abort, nm_close,
  NULL, NULL, nm_negotiate,
};

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s inet:PORT@127.0.0.1\n", argv[0]);
    return 2;
  }
  if (smfi_setconn(argv[1]) == MI_FAILURE || smfi_register(desc) == MI_FAILURE) {
    fprintf(stderr, "null-milter: setup failed\n");
    return 1;
  }
  smfi_setbacklog(128);
  if (smfi_opensocket(1) == MI_FAILURE) {
    fprintf(stderr, "null-milter: cannot listen on %s\n", argv[1]);
    return 1;
  }
  fprintf(stdout, "ready\n");
  fflush(stdout);
  int rc = smfi_main();
  fprintf(stdout, "connections=%lu headers=%lu body_chunks=%lu eom=%lu nr_flags=0x%lx\n", n_conn, n_hdr, n_body, n_eom, nr_flags);
  return rc == MI_SUCCESS ? 0 : 1;
}
