/* metrics.c — counters and states behind one mutex (metrics.h). They change
 * once per batch, not per event, so the lock is taken rarely. */
#include "daemon/metrics.h"
#include "lib/jsonbuf.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 256       /* distinct trigger routing keys counted */
#define MAX_COMPONENTS 16

static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long events[SOURCE_COUNT][4];
static unsigned long dead[SOURCE_COUNT];
static long outbox;
static unsigned long keyspace_lost;
static struct {
    char key[160];
    unsigned long n;
} triggers[MAX_KEYS];
static int ntriggers;
/* triggers routed to no queue, by relation and kind */
static const char *const trigger_kinds[] = {"attach", "change", "detach", "threshold"};
#define NKINDS (sizeof trigger_kinds / sizeof trigger_kinds[0])
static struct {
    char relation[80];
    unsigned long n[NKINDS];
} unroutable[MAX_KEYS];
static int nunroutable;
static unsigned long batch_count, batch_le[NBUCKETS];
static double batch_sum;
static struct {
    char who[32], what[32];
    bool up;
    char reason[256]; /* down for a refused configuration: why ("" otherwise) */
} components[MAX_COMPONENTS];
static int ncomponents;
static struct {
    char who[32], what[64];
} waits[MAX_COMPONENTS]; /* not ready yet (what is awaited) */
static int nwaits;
#define MAX_PARTITIONS 1024
static struct {
    char topic[128];
    int partition;
    long long lag;
} lags[MAX_PARTITIONS];
static int nlags;
static struct {
    char component[16];
    int n;           /* connections blocked */
    char reason[128]; /* the latest block's */
} blocked[4];
static int nblocked;
/* action hooks (metrics_hook_*) */
#define MAX_HOOKS 64
#define MAX_HOOK_REASONS 12
static struct {
    char name[65];
    unsigned long delivered;
    long long backlog;
    double last_success; /* unix seconds, 0: none yet */
    struct {
        char reason[32];
        unsigned long n;
    } failures[MAX_HOOK_REASONS];
    int nfailures;
} hooks[MAX_HOOKS];
static int nhooks;

static const char *const source_names[SOURCE_COUNT] = {
    [SOURCE_KAFKA] = "kafka", [SOURCE_AMQP] = "amqp", [SOURCE_HTTP] = "http"};
static const char *const result_names[] = {"applied", "duplicate", "stale", "invalid"};

static int result_index(ApplyStatus r)
{
    switch (r) {
    case APPLY_APPLIED: return 0;
    case APPLY_DUPLICATE: return 1;
    case APPLY_STALE: return 2;
    default: return 3;
    }
}

void metrics_events(SourceId s, ApplyStatus result, unsigned long n)
{
    pthread_mutex_lock(&lock);
    events[s][result_index(result)] += n;
    pthread_mutex_unlock(&lock);
}

void metrics_outbox(long n)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&lock);
    outbox += n;
    pthread_mutex_unlock(&lock);
}

void metrics_amqp_blocked(const char *component, int change, const char *reason)
{
    pthread_mutex_lock(&lock);
    int i = 0;
    while (i < nblocked && strcmp(blocked[i].component, component) != 0)
        i++;
    if (i == nblocked && nblocked < (int)(sizeof blocked / sizeof blocked[0]) &&
        strlen(component) < sizeof blocked[0].component) {
        snprintf(blocked[i].component, sizeof blocked[i].component, "%s", component);
        nblocked++;
    }
    if (i < nblocked) {
        blocked[i].n += change;
        if (change > 0 && reason)
            snprintf(blocked[i].reason, sizeof blocked[i].reason, "%s", reason);
    }
    pthread_mutex_unlock(&lock);
}

/* The hook's row (lock held); NULL when there are too many hooks. */
static int hook_row(const char *name)
{
    int i = 0;
    while (i < nhooks && strcmp(hooks[i].name, name) != 0)
        i++;
    if (i == nhooks) {
        if (nhooks == MAX_HOOKS)
            return -1;
        memset(&hooks[i], 0, sizeof hooks[i]);
        snprintf(hooks[i].name, sizeof hooks[i].name, "%s", name);
        nhooks++;
    }
    return i;
}

void metrics_hook_list(const char *hook)
{
    pthread_mutex_lock(&lock);
    (void)hook_row(hook);
    pthread_mutex_unlock(&lock);
}

void metrics_hook_delivered(const char *hook, unsigned long n, double now_s)
{
    pthread_mutex_lock(&lock);
    int i = hook_row(hook);
    if (i >= 0) {
        hooks[i].delivered += n;
        hooks[i].last_success = now_s;
    }
    pthread_mutex_unlock(&lock);
}

void metrics_hook_failure(const char *hook, const char *reason)
{
    pthread_mutex_lock(&lock);
    int i = hook_row(hook);
    if (i >= 0) {
        int k = 0;
        while (k < hooks[i].nfailures && strcmp(hooks[i].failures[k].reason, reason) != 0)
            k++;
        if (k == hooks[i].nfailures && k < MAX_HOOK_REASONS) {
            snprintf(hooks[i].failures[k].reason, sizeof hooks[i].failures[k].reason, "%s",
                     reason);
            hooks[i].nfailures++;
        }
        if (k < hooks[i].nfailures)
            hooks[i].failures[k].n++;
    }
    pthread_mutex_unlock(&lock);
}

void metrics_hook_backlog(const char *hook, long long len)
{
    pthread_mutex_lock(&lock);
    int i = hook_row(hook);
    if (i >= 0)
        hooks[i].backlog = len;
    pthread_mutex_unlock(&lock);
}

bool metrics_kafka_lag_total(long long *total)
{
    pthread_mutex_lock(&lock);
    *total = 0;
    for (int i = 0; i < nlags; i++)
        *total += lags[i].lag;
    bool known = nlags > 0;
    pthread_mutex_unlock(&lock);
    return known;
}

void metrics_kafka_lags(const MetricLag *v, int n)
{
    pthread_mutex_lock(&lock);
    nlags = 0;
    for (int i = 0; i < n && nlags < MAX_PARTITIONS; i++) {
        if (strlen(v[i].topic) >= sizeof lags[0].topic)
            continue;
        snprintf(lags[nlags].topic, sizeof lags[nlags].topic, "%s", v[i].topic);
        lags[nlags].partition = v[i].partition;
        lags[nlags].lag = v[i].lag;
        nlags++;
    }
    pthread_mutex_unlock(&lock);
}

unsigned long metrics_events_total(void)
{
    unsigned long n = 0;
    pthread_mutex_lock(&lock);
    for (int s = 0; s < SOURCE_COUNT; s++)
        for (int r = 0; r < 4; r++)
            n += events[s][r];
    pthread_mutex_unlock(&lock);
    return n;
}

void metrics_dead_letters(SourceId s, unsigned long n)
{
    pthread_mutex_lock(&lock);
    dead[s] += n;
    pthread_mutex_unlock(&lock);
}

void metrics_trigger(const char *routing_key)
{
    pthread_mutex_lock(&lock);
    int i = 0;
    while (i < ntriggers && strcmp(triggers[i].key, routing_key) != 0)
        i++;
    if (i == ntriggers && ntriggers < MAX_KEYS && strlen(routing_key) < sizeof triggers[0].key) {
        snprintf(triggers[i].key, sizeof triggers[i].key, "%s", routing_key);
        ntriggers++;
    }
    if (i < ntriggers)
        triggers[i].n++;
    pthread_mutex_unlock(&lock);
}

/* relation.<rel>.<direction>.<kind> into its parts (rel is [a-z][a-z0-9_]*). */
static bool parse_trigger_key(const char *key, char rel[80], char dir[16], char kind[16])
{
    return sscanf(key, "relation.%79[a-z0-9_].%15[a-z].%15[a-z]", rel, dir, kind) == 3;
}

/* The relation's row of unroutable counts, added if new (-1: no room).
 * Under the lock. */
static int unroutable_row(const char *relation)
{
    int i = 0;
    while (i < nunroutable && strcmp(unroutable[i].relation, relation) != 0)
        i++;
    if (i == nunroutable) {
        if (nunroutable == MAX_KEYS || strlen(relation) >= sizeof unroutable[0].relation)
            return -1;
        snprintf(unroutable[i].relation, sizeof unroutable[i].relation, "%s", relation);
        nunroutable++;
    }
    return i;
}

void metrics_trigger_unroutable(const char *routing_key)
{
    char rel[80], dir[16], kind[16];
    if (!parse_trigger_key(routing_key, rel, dir, kind))
        return;
    size_t k = 0;
    while (k < NKINDS && strcmp(trigger_kinds[k], kind) != 0)
        k++;
    if (k == NKINDS)
        return;
    pthread_mutex_lock(&lock);
    int i = unroutable_row(rel);
    if (i >= 0)
        unroutable[i].n[k]++;
    pthread_mutex_unlock(&lock);
}

void metrics_triggers_unroutable_list(const char *relation)
{
    pthread_mutex_lock(&lock);
    (void)unroutable_row(relation);
    pthread_mutex_unlock(&lock);
}

void metrics_batch_seconds(double seconds)
{
    pthread_mutex_lock(&lock);
    batch_count++;
    batch_sum += seconds;
    for (size_t i = 0; i < NBUCKETS; i++)
        if (seconds <= buckets[i])
            batch_le[i]++;
    pthread_mutex_unlock(&lock);
}

static void set_component(const char *who, const char *what, bool up, const char *reason)
{
    pthread_mutex_lock(&lock);
    int i = 0;
    while (i < ncomponents &&
           (strcmp(components[i].who, who) != 0 || strcmp(components[i].what, what) != 0))
        i++;
    if (i == ncomponents && ncomponents < MAX_COMPONENTS) {
        snprintf(components[i].who, sizeof components[i].who, "%s", who);
        snprintf(components[i].what, sizeof components[i].what, "%s", what);
        ncomponents++;
    }
    if (i < ncomponents) {
        components[i].up = up;
        snprintf(components[i].reason, sizeof components[i].reason, "%s", reason);
    }
    pthread_mutex_unlock(&lock);
}

void metrics_component(const char *who, const char *what, bool up)
{
    set_component(who, what, up, "");
}

void metrics_component_refused(const char *who, const char *what, const char *reason)
{
    set_component(who, what, false, reason);
}

void metrics_waiting(const char *who, const char *what)
{
    pthread_mutex_lock(&lock);
    int i = 0;
    while (i < nwaits && strcmp(waits[i].who, who) != 0)
        i++;
    if (what && i == nwaits && nwaits < MAX_COMPONENTS) {
        snprintf(waits[i].who, sizeof waits[i].who, "%s", who);
        nwaits++;
    }
    if (what && i < nwaits) {
        snprintf(waits[i].what, sizeof waits[i].what, "%s", what);
    } else if (!what && i < nwaits) {
        waits[i] = waits[nwaits - 1];
        nwaits--;
    }
    pthread_mutex_unlock(&lock);
}

void metrics_keyspace_lost(void)
{
    pthread_mutex_lock(&lock);
    keyspace_lost++;
    pthread_mutex_unlock(&lock);
}

/* A label value: ", \ and newlines escaped (Prometheus text format). */
static void label(JsonBuf *b, const char *v)
{
    jsonbuf_char(b, '"');
    for (const char *c = v; *c; c++) {
        if (*c == '"' || *c == '\\')
            jsonbuf_char(b, '\\');
        if (*c == '\n') {
            jsonbuf_cstr(b, "\\n");
            continue;
        }
        jsonbuf_char(b, *c);
    }
    jsonbuf_char(b, '"');
}

static void number(JsonBuf *b, double v, bool exact)
{
    char s[40];
    snprintf(s, sizeof s, exact ? "%.17g" : "%g", v);
    jsonbuf_cstr(b, s);
}

/* The connection a back-off's component is on, as relationd_connection_up
 * names it (NULL: not a connection). */
static const char *connection_of(const char *what)
{
    static const char *const map[][2] = {
        {"redis", "redis"},           {"hooks exchange", "hooks"},
        {"destination", "hooks"}, /* an amqp or kafka hook's (daemon/hook_sink.c) */
        {"kafka", "kafka"},           {"dead-letter topic", "kafka"},
        {"rabbitmq", "amqp"},         {"dead-letter exchange", "amqp"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], what) == 0)
            return map[i][1];
    return NULL;
}

/* The action hooks' series (lock held). */
static void render_hooks(JsonBuf *b)
{
    jsonbuf_cstr(b, "# HELP relationd_hook_delivered_total Triggers a hook's destination "
                    "took.\n# TYPE relationd_hook_delivered_total counter\n");
    for (int i = 0; i < nhooks; i++) {
        jsonbuf_cstr(b, "relationd_hook_delivered_total{hook=");
        label(b, hooks[i].name);
        jsonbuf_cstr(b, "} ");
        jsonbuf_int(b, (int64_t)hooks[i].delivered);
        jsonbuf_char(b, '\n');
    }
    jsonbuf_cstr(b, "# HELP relationd_hook_failures_total Failed delivery attempts of a hook, "
                    "by reason.\n# TYPE relationd_hook_failures_total counter\n");
    for (int i = 0; i < nhooks; i++)
        for (int k = 0; k < hooks[i].nfailures; k++) {
            jsonbuf_cstr(b, "relationd_hook_failures_total{hook=");
            label(b, hooks[i].name);
            jsonbuf_cstr(b, ",reason=");
            label(b, hooks[i].failures[k].reason);
            jsonbuf_cstr(b, "} ");
            jsonbuf_int(b, (int64_t)hooks[i].failures[k].n);
            jsonbuf_char(b, '\n');
        }
    jsonbuf_cstr(b, "# HELP relationd_hook_backlog Triggers kept in Redis for a hook, not "
                    "delivered yet.\n# TYPE relationd_hook_backlog gauge\n");
    for (int i = 0; i < nhooks; i++) {
        jsonbuf_cstr(b, "relationd_hook_backlog{hook=");
        label(b, hooks[i].name);
        jsonbuf_cstr(b, "} ");
        jsonbuf_int(b, hooks[i].backlog);
        jsonbuf_char(b, '\n');
    }
    jsonbuf_cstr(b, "# HELP relationd_hook_last_success_timestamp_seconds When a hook's "
                    "destination last took a batch (unix seconds; 0: not since the start).\n"
                    "# TYPE relationd_hook_last_success_timestamp_seconds gauge\n");
    for (int i = 0; i < nhooks; i++) {
        jsonbuf_cstr(b, "relationd_hook_last_success_timestamp_seconds{hook=");
        label(b, hooks[i].name);
        jsonbuf_cstr(b, "} ");
        number(b, hooks[i].last_success, true);
        jsonbuf_char(b, '\n');
    }
}

char *metrics_render(void)
{
    JsonBuf b = {0};
    pthread_mutex_lock(&lock);
    jsonbuf_cstr(&b, "# HELP relationd_build_info The running build.\n"
                     "# TYPE relationd_build_info gauge\n"
                     "relationd_build_info{version=\"" RELATIOND_VERSION "\"} 1\n");
    jsonbuf_cstr(&b, "# HELP relationd_events_total Events taken from a source, by result.\n"
                     "# TYPE relationd_events_total counter\n");
    for (int s = 0; s < SOURCE_COUNT; s++)
        for (int r = 0; r < 4; r++) {
            jsonbuf_cstr(&b, "relationd_events_total{source=\"");
            jsonbuf_cstr(&b, source_names[s]);
            jsonbuf_cstr(&b, "\",result=\"");
            jsonbuf_cstr(&b, result_names[r]);
            jsonbuf_cstr(&b, "\"} ");
            jsonbuf_int(&b, (int64_t)events[s][r]);
            jsonbuf_char(&b, '\n');
        }
    jsonbuf_cstr(&b, "# HELP relationd_dead_letters_total Messages sent to the dead letters.\n"
                     "# TYPE relationd_dead_letters_total counter\n");
    for (int s = 0; s < SOURCE_COUNT; s++) {
        jsonbuf_cstr(&b, "relationd_dead_letters_total{source=\"");
        jsonbuf_cstr(&b, source_names[s]);
        jsonbuf_cstr(&b, "\"} ");
        jsonbuf_int(&b, (int64_t)dead[s]);
        jsonbuf_char(&b, '\n');
    }
    jsonbuf_cstr(&b, "# HELP relationd_triggers_published_total Triggers confirmed by the hooks broker.\n"
                     "# TYPE relationd_triggers_published_total counter\n");
    for (int i = 0; i < ntriggers; i++) {
        /* relation.<rel>.<direction>.<kind>: rel is [a-z][a-z0-9_]* */
        char rel[80], dir[16], kind[16];
        if (!parse_trigger_key(triggers[i].key, rel, dir, kind))
            continue;
        jsonbuf_cstr(&b, "relationd_triggers_published_total{relation=");
        label(&b, rel);
        jsonbuf_cstr(&b, ",direction=");
        label(&b, dir);
        jsonbuf_cstr(&b, ",kind=");
        label(&b, kind);
        jsonbuf_cstr(&b, "} ");
        jsonbuf_int(&b, (int64_t)triggers[i].n);
        jsonbuf_char(&b, '\n');
    }
    jsonbuf_cstr(&b, "# HELP relationd_triggers_unroutable_total Triggers the hooks exchange "
                     "routed to no queue (returned by the broker, then confirmed, and "
                     "dropped).\n# TYPE relationd_triggers_unroutable_total counter\n");
    for (int i = 0; i < nunroutable; i++)
        for (size_t k = 0; k < NKINDS; k++) {
            jsonbuf_cstr(&b, "relationd_triggers_unroutable_total{relation=");
            label(&b, unroutable[i].relation);
            jsonbuf_cstr(&b, ",kind=\"");
            jsonbuf_cstr(&b, trigger_kinds[k]);
            jsonbuf_cstr(&b, "\"} ");
            jsonbuf_int(&b, (int64_t)unroutable[i].n[k]);
            jsonbuf_char(&b, '\n');
        }
    jsonbuf_cstr(&b, "# HELP relationd_batch_duration_seconds A batch from its start to its "
                     "acknowledgement.\n# TYPE relationd_batch_duration_seconds histogram\n");
    for (size_t i = 0; i < NBUCKETS; i++) {
        jsonbuf_cstr(&b, "relationd_batch_duration_seconds_bucket{le=\"");
        number(&b, buckets[i], false); /* 0.005, not 0.0050000000000000001 */
        jsonbuf_cstr(&b, "\"} ");
        jsonbuf_int(&b, (int64_t)batch_le[i]);
        jsonbuf_char(&b, '\n');
    }
    jsonbuf_cstr(&b, "relationd_batch_duration_seconds_bucket{le=\"+Inf\"} ");
    jsonbuf_int(&b, (int64_t)batch_count);
    jsonbuf_cstr(&b, "\nrelationd_batch_duration_seconds_sum ");
    number(&b, batch_sum, true);
    jsonbuf_cstr(&b, "\nrelationd_batch_duration_seconds_count ");
    jsonbuf_int(&b, (int64_t)batch_count);
    jsonbuf_cstr(&b, "\n# HELP relationd_outbox_entries Outbox entries this process wrote "
                     "whose triggers are not confirmed and cleared yet.\n"
                     "# TYPE relationd_outbox_entries gauge\nrelationd_outbox_entries ");
    jsonbuf_int(&b, (int64_t)outbox);
    jsonbuf_cstr(&b, "\n# HELP relationd_redis_keyspace_lost_total Times the Redis keyspace "
                     "was found wiped or changed under the daemon (its layout key gone or "
                     "holding another id).\n# TYPE relationd_redis_keyspace_lost_total counter\n"
                     "relationd_redis_keyspace_lost_total ");
    jsonbuf_int(&b, (int64_t)keyspace_lost);
    jsonbuf_cstr(&b, "\n# HELP relationd_kafka_consumer_lag Messages of a partition not "
                     "committed yet.\n# TYPE relationd_kafka_consumer_lag gauge\n");
    for (int i = 0; i < nlags; i++) {
        jsonbuf_cstr(&b, "relationd_kafka_consumer_lag{topic=");
        label(&b, lags[i].topic);
        jsonbuf_cstr(&b, ",partition=\"");
        jsonbuf_int(&b, lags[i].partition);
        jsonbuf_cstr(&b, "\"} ");
        jsonbuf_int(&b, lags[i].lag);
        jsonbuf_char(&b, '\n');
    }
    /* per connection: up when every component on it is up, for every source */
    jsonbuf_cstr(&b, "# HELP relationd_connection_up Whether a connection (redis, hooks, kafka, "
                     "amqp) is up for every source using it (1) or not (0).\n"
                     "# TYPE relationd_connection_up gauge\n");
    for (int i = 0; i < ncomponents; i++) {
        const char *conn = connection_of(components[i].what);
        bool first = conn != NULL, up = true;
        for (int j = 0; j < ncomponents && first; j++) {
            const char *other = connection_of(components[j].what);
            if (other && strcmp(other, conn) == 0) {
                first = j >= i;
                up = up && components[j].up;
            }
        }
        if (!first)
            continue; /* none, or rendered with an earlier component */
        jsonbuf_cstr(&b, "relationd_connection_up{component=\"");
        jsonbuf_cstr(&b, conn);
        jsonbuf_cstr(&b, up ? "\"} 1\n" : "\"} 0\n");
    }
    jsonbuf_cstr(&b, "# HELP relationd_amqp_blocked Whether RabbitMQ blocks a connection "
                     "(hooks, amqp) for a resource alarm (1) or not (0).\n"
                     "# TYPE relationd_amqp_blocked gauge\n");
    for (int i = 0; i < nblocked; i++) {
        jsonbuf_cstr(&b, "relationd_amqp_blocked{component=\"");
        jsonbuf_cstr(&b, blocked[i].component);
        jsonbuf_cstr(&b, blocked[i].n > 0 ? "\"} 1\n" : "\"} 0\n");
    }
    render_hooks(&b);
    jsonbuf_cstr(&b, "# HELP relationd_up Whether a component of a source is reachable "
                     "(1) or down (0).\n# TYPE relationd_up gauge\n");
    for (int i = 0; i < ncomponents; i++) {
        jsonbuf_cstr(&b, "relationd_up{source=");
        label(&b, components[i].who);
        jsonbuf_cstr(&b, ",component=");
        label(&b, components[i].what);
        jsonbuf_cstr(&b, components[i].up ? "} 1\n" : "} 0\n");
    }
    pthread_mutex_unlock(&lock);
    return jsonbuf_take(&b);
}

char *metrics_down_json(bool *all_up)
{
    JsonBuf b = {0};
    bool first = true; /* of the "down" list */
    jsonbuf_cstr(&b, "{\"down\":[");
    pthread_mutex_lock(&lock);
    for (int i = 0; i < ncomponents; i++) {
        if (components[i].up)
            continue;
        jsonbuf_cstr(&b, first ? "{\"source\":" : ",{\"source\":");
        jsonbuf_string(&b, components[i].who, strlen(components[i].who));
        jsonbuf_cstr(&b, ",\"component\":");
        jsonbuf_string(&b, components[i].what, strlen(components[i].what));
        if (components[i].reason[0]) {
            jsonbuf_cstr(&b, ",\"error\":");
            jsonbuf_string(&b, components[i].reason, strlen(components[i].reason));
        }
        jsonbuf_char(&b, '}');
        first = false;
    }
    for (int i = 0; i < nblocked; i++) {
        if (blocked[i].n <= 0)
            continue;
        jsonbuf_cstr(&b, first ? "{\"component\":" : ",{\"component\":");
        jsonbuf_string(&b, blocked[i].component, strlen(blocked[i].component));
        jsonbuf_cstr(&b, ",\"blocked\":");
        jsonbuf_string(&b, blocked[i].reason, strlen(blocked[i].reason));
        jsonbuf_char(&b, '}');
        first = false;
    }
    for (int i = 0; i < nwaits; i++) {
        jsonbuf_cstr(&b, i ? ",{\"source\":" : "],\"waiting\":[{\"source\":");
        jsonbuf_string(&b, waits[i].who, strlen(waits[i].who));
        jsonbuf_cstr(&b, ",\"for\":");
        jsonbuf_string(&b, waits[i].what, strlen(waits[i].what));
        jsonbuf_char(&b, '}');
    }
    *all_up = first && nwaits == 0;
    pthread_mutex_unlock(&lock);
    jsonbuf_cstr(&b, "]}\n");
    return jsonbuf_take(&b);
}
