/* trigger_feed.c — the broadcast of published triggers to the live
 * subscribers (trigger_feed.h): one lock over the subscribers and their
 * queues; a post renders its records outside the lock, then queues them.
 *
 * A subscriber's queue is a ring of shared records (Rec: the text of one
 * server-sent event, refs counted under the lock), none started: the one
 * being read is taken out of it (cur), so that a full queue drops its head.
 * Before a record, the subscriber's note is sent: the count of records
 * dropped since the previous one, or a keepalive comment. */
#include "daemon/trigger_feed.h"
#include "lib/clock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Rec {
    struct Rec *next; /* while a post builds its list */
    int refs;
    size_t len;
    char text[];
} Rec;

struct FeedSub {
    FeedCallback park, wake;
    void *ctx;
    bool parked;
    int64_t parked_at;
    Rec *ring[FEED_QUEUE_MAX]; /* not started */
    size_t head, n, bytes;
    Rec *cur;             /* the record being read, off bytes of it read */
    size_t off;
    unsigned long dropped; /* since the last note */
    char note[64];        /* sent before the next record */
    size_t note_len, note_off;
};

atomic_int trigger_feed_subscribers;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t left = PTHREAD_COND_INITIALIZER; /* a subscriber left */
static FeedSub *subs[FEED_SUBS_MAX];
static bool ended;

static const char READY[] = "event: ready\ndata: {}\n\n";
static const char KEEPALIVE[] = ": keepalive\n\n";

static Rec *rec_new(const char *a, size_t alen, const char *b, size_t blen, const char *c,
                    size_t clen)
{
    Rec *r = malloc(sizeof *r + alen + blen + clen);
    if (!r)
        return NULL;
    r->next = NULL;
    r->refs = 1; /* the maker's */
    r->len = alen + blen + clen;
    memcpy(r->text, a, alen);
    memcpy(r->text + alen, b, blen);
    memcpy(r->text + alen + blen, c, clen);
    return r;
}

/* Under mu: drops a hold on r. */
static void rec_drop(Rec *r)
{
    if (--r->refs == 0)
        free(r);
}

/* Under mu: wakes s if it is parked. */
static void wake(FeedSub *s)
{
    if (s->parked) {
        s->parked = false;
        s->wake(s->ctx);
    }
}

/* Under mu: queues r to s, dropping the oldest records when the queue is
 * full. */
static void enqueue(FeedSub *s, Rec *r)
{
    while (s->n > 0 && (s->n == FEED_QUEUE_MAX || s->bytes + r->len > FEED_QUEUE_BYTES)) {
        Rec *v = s->ring[s->head];
        s->head = (s->head + 1) % FEED_QUEUE_MAX;
        s->n--;
        s->bytes -= v->len;
        s->dropped++;
        rec_drop(v);
    }
    r->refs++;
    s->ring[(s->head + s->n) % FEED_QUEUE_MAX] = r;
    s->n++;
    s->bytes += r->len;
}

FeedSub *trigger_feed_join(FeedCallback park, FeedCallback wake_cb, void *ctx, char *err,
                           size_t errlen)
{
    FeedSub *s = calloc(1, sizeof *s);
    Rec *r = rec_new(READY, sizeof READY - 1, "", 0, "", 0);
    if (!s || !r) {
        free(s);
        free(r);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->park = park;
    s->wake = wake_cb;
    s->ctx = ctx;
    pthread_mutex_lock(&mu);
    int i = 0;
    while (i < FEED_SUBS_MAX && subs[i])
        i++;
    if (ended || i == FEED_SUBS_MAX) {
        pthread_mutex_unlock(&mu);
        if (ended)
            snprintf(err, errlen, "relationd is stopping");
        else
            snprintf(err, errlen, "busy: %d trigger streams open already, retry later",
                     FEED_SUBS_MAX);
        free(s);
        free(r);
        return NULL;
    }
    subs[i] = s;
    enqueue(s, r);
    rec_drop(r);
    atomic_fetch_add(&trigger_feed_subscribers, 1);
    pthread_mutex_unlock(&mu);
    return s;
}

void trigger_feed_leave(FeedSub *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < FEED_SUBS_MAX; i++)
        if (subs[i] == s)
            subs[i] = NULL;
    atomic_fetch_sub(&trigger_feed_subscribers, 1);
    pthread_cond_broadcast(&left);
    for (size_t k = 0; k < s->n; k++)
        rec_drop(s->ring[(s->head + k) % FEED_QUEUE_MAX]);
    if (s->cur)
        rec_drop(s->cur);
    pthread_mutex_unlock(&mu);
    free(s);
}

/* Under mu: copies what it can of text[*off, len) into buf; the count. */
static size_t take(const char *text, size_t len, size_t *off, char *buf, size_t cap)
{
    size_t n = len - *off < cap ? len - *off : cap;
    memcpy(buf, text + *off, n);
    *off += n;
    return n;
}

long trigger_feed_read(FeedSub *s, char *buf, size_t cap)
{
    size_t got = 0;
    pthread_mutex_lock(&mu);
    while (got < cap) {
        if (s->note_off < s->note_len) {
            got += take(s->note, s->note_len, &s->note_off, buf + got, cap - got);
            continue;
        }
        if (s->cur) {
            got += take(s->cur->text, s->cur->len, &s->off, buf + got, cap - got);
            if (s->off == s->cur->len) {
                rec_drop(s->cur);
                s->cur = NULL;
                s->off = 0;
            }
            continue;
        }
        if (s->dropped) { /* between two records */
            s->note_len = (size_t)snprintf(s->note, sizeof s->note,
                                           "event: dropped\ndata: {\"dropped\":%lu}\n\n",
                                           s->dropped);
            s->note_off = 0;
            s->dropped = 0;
            continue;
        }
        if (s->n == 0)
            break;
        s->cur = s->ring[s->head];
        s->head = (s->head + 1) % FEED_QUEUE_MAX;
        s->n--;
        s->bytes -= s->cur->len;
    }
    long ret = (long)got;
    if (got == 0 && ended) {
        ret = -1;
    } else if (got == 0) {
        s->parked = true;
        s->parked_at = clock_now_ms();
        s->park(s->ctx);
    }
    pthread_mutex_unlock(&mu);
    return ret;
}

void trigger_feed_post_all(const TriggerSet *t)
{
    static const char head[] = "event: trigger\ndata: ";
    Rec *first = NULL, **tail = &first;
    size_t made = 0;
    for (size_t i = 0; i < t->n; i++) {
        Rec *r = rec_new(head, sizeof head - 1, t->items[i].body, t->items[i].len, "\n\n", 2);
        if (!r)
            break;
        *tail = r;
        tail = &r->next;
        made++;
    }
    pthread_mutex_lock(&mu);
    for (int k = 0; k < FEED_SUBS_MAX; k++) {
        FeedSub *s = subs[k];
        if (!s)
            continue;
        for (Rec *r = first; r; r = r->next)
            enqueue(s, r);
        s->dropped += t->n - made; /* out of memory */
        wake(s);
    }
    for (Rec *r = first, *next; r; r = next) {
        next = r->next;
        rec_drop(r);
    }
    pthread_mutex_unlock(&mu);
}

void trigger_feed_keepalive(int64_t now)
{
    pthread_mutex_lock(&mu);
    for (int k = 0; k < FEED_SUBS_MAX; k++) {
        FeedSub *s = subs[k];
        if (!s || !s->parked || now - s->parked_at < FEED_KEEPALIVE_MS)
            continue;
        memcpy(s->note, KEEPALIVE, sizeof KEEPALIVE - 1);
        s->note_len = sizeof KEEPALIVE - 1;
        s->note_off = 0;
        wake(s);
    }
    pthread_mutex_unlock(&mu);
}

bool trigger_feed_end(int wait_ms)
{
    /* CLOCK_REALTIME: the condition variable's clock */
    struct timespec until = clock_deadline(CLOCK_REALTIME, wait_ms < 0 ? 0 : wait_ms);
    pthread_mutex_lock(&mu);
    ended = true;
    for (int k = 0; k < FEED_SUBS_MAX; k++)
        if (subs[k])
            wake(subs[k]);
    while (atomic_load(&trigger_feed_subscribers) > 0 &&
           pthread_cond_timedwait(&left, &mu, &until) == 0)
        ;
    bool all = atomic_load(&trigger_feed_subscribers) == 0;
    pthread_mutex_unlock(&mu);
    return all;
}
