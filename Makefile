# relationd — build, test, install.
PREFIX  ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR ?=
BUILD   ?= build
CC      ?= cc
PYTHON  ?= /usr/bin/python3

PKGS      := jansson hiredis libsystemd rdkafka librabbitmq libmicrohttpd libcurl libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
CMOCKA_LIBS := $(shell pkg-config --libs cmocka)

# Messages and JSON paths are cut at their buffer size on purpose.
WARN    := -Wall -Wextra -Wstrict-prototypes -Wshadow -Werror -Wno-format-truncation
CFLAGS  ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(PKG_CFLAGS) -I. -I$(BUILD)
SANITIZE ?=
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

VERSION := 0.1.0
ALL_CFLAGS += -DRELATIOND_VERSION=\"$(VERSION)\"

# One static archive per layer; a layer includes and calls only the layers
# below it (lib < config < handlers < daemon, ctl; make check-layers).
LIB_SRCS      := $(wildcard lib/*.c)
CONFIG_SRCS   := config/config.c config/expand.c config/reload.c config/secrets.c config/history.c \
                 config/hooks.c
HANDLERS_SRCS := handlers/event.c handlers/trigger.c handlers/store.c handlers/cluster.c \
                 handlers/router.c handlers/segment.c handlers/render.c handlers/keys.c \
                 handlers/resp.c handlers/engine.c handlers/apply.c handlers/read.c \
                 handlers/walk.c handlers/check.c handlers/layout.c handlers/schema.c handlers/edge.c \
                 handlers/backlog.c
DAEMON_SRCS   := daemon/lifecycle.c daemon/load.c daemon/backoff.c daemon/amqp_conn.c daemon/publisher.c \
                 daemon/pipeline.c daemon/kafka_source.c daemon/amqp_source.c \
                 daemon/shared_config.c daemon/metrics.c daemon/http.c daemon/http_read.c \
                 daemon/http_write.c daemon/http_source.c \
                 daemon/kafka_conf.c daemon/probe.c daemon/reload.c daemon/status.c \
                 daemon/hook_http.c daemon/hook_sink.c daemon/hook_deliver.c \
                 daemon/http_ui.c daemon/trigger_feed.c
obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIBLIB      := $(BUILD)/liblib.a
LIBCONFIG   := $(BUILD)/libconfig.a
LIBHANDLERS := $(BUILD)/libhandlers.a
LIBDAEMON   := $(BUILD)/libdaemon.a
# Highest layer first: the linker resolves each archive from the ones after it.
CORE_LIBS   := $(LIBHANDLERS) $(LIBCONFIG) $(LIBLIB)
ALL_LIBS    := $(LIBDAEMON) $(CORE_LIBS)

UNIT_TESTS := $(BUILD)/test_config $(BUILD)/test_event $(BUILD)/test_trigger $(BUILD)/test_cluster \
              $(BUILD)/test_router $(BUILD)/test_history $(BUILD)/test_grow $(BUILD)/test_sha1 \
              $(BUILD)/test_jsonbuf $(BUILD)/test_msgpack $(BUILD)/test_segment $(BUILD)/test_render \
              $(BUILD)/test_keys $(BUILD)/test_resp $(BUILD)/test_ring $(BUILD)/test_hooks \
              $(BUILD)/test_hook_http $(BUILD)/test_edge $(BUILD)/test_trigger_feed $(BUILD)/test_load \
              $(BUILD)/test_backlog $(BUILD)/test_clock \
              $(BUILD)/test_sha1_portable

.SECONDARY:
.DELETE_ON_ERROR:
.PHONY: all clean deps test test-unit test-e2e test-asan test-alerts install uninstall demo bench fuzz soak \
        check-layers

all: $(BUILD)/relationd $(BUILD)/relationctl $(BUILD)/kafka_mock $(BUILD)/publisher_driver \
     $(BUILD)/hook_http_driver $(BUILD)/relationd.so

# The Redis module (module/): redismodule.h comes from the source of Debian's
# redis package, fetched by tools/deps.sh into REDIS_SRC_CACHE and unpacked
# here (never committed). Built without the sanitizers (it runs inside
# redis-server), position-independent, only its entry point exported.
REDIS_SRC_CACHE ?= /var/cache/relationd
MODULE_SRCS := $(wildcard module/*.c)
# lib/sha1.c (the migration's event keys), compiled again for the module,
# portable (SHA1_PORTABLE: no libcrypto inside redis-server)
MODULE_OBJS := $(call obj,$(MODULE_SRCS)) $(BUILD)/obj/module/lib_sha1.o
MODULE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -fPIC -fvisibility=hidden -I. -isystem $(BUILD) \
                 -DSHA1_PORTABLE
$(BUILD)/redismodule.h:
	@mkdir -p $(dir $@)
	@tgz=$$(ls $(REDIS_SRC_CACHE)/redis_*.orig.tar.gz 2>/dev/null | tail -n 1); \
	if [ -z "$$tgz" ]; then echo "no redis source in $(REDIS_SRC_CACHE) for redismodule.h:" \
	  "run make deps (tools/deps.sh) as root" >&2; exit 1; fi; \
	tar -xzf "$$tgz" -O --wildcards 'redis-*/src/redismodule.h' > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/module/%.o: module/%.c | $(BUILD)/redismodule.h
	@mkdir -p $(dir $@)
	$(CC) $(MODULE_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/module/lib_sha1.o: lib/sha1.c | $(BUILD)/redismodule.h
	@mkdir -p $(dir $@)
	$(CC) $(MODULE_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/relationd.so: $(MODULE_OBJS)
	$(CC) -shared $^ -o $@

$(BUILD)/apply_lua.c: handlers/apply.lua tools/embed.sh
	@mkdir -p $(dir $@)
	sh tools/embed.sh apply_lua $< > $@

$(BUILD)/obj/apply_lua.o: $(BUILD)/apply_lua.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The relation card page (daemon/http_ui.c serves it): its files as C strings.
UI_ASSETS := daemon/ui/index.html daemon/ui/card.css daemon/ui/card.js
$(BUILD)/ui_assets.c: $(UI_ASSETS) tools/embed.sh
	@mkdir -p $(dir $@)
	{ sh tools/embed.sh ui_index_html daemon/ui/index.html && \
	  sh tools/embed.sh ui_card_css daemon/ui/card.css && \
	  sh tools/embed.sh ui_card_js daemon/ui/card.js; } > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/ui_assets.o: $(BUILD)/ui_assets.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# -MMD -MP: each object depends on the headers it includes (build/obj/*.d).
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

$(LIBLIB): $(call obj,$(LIB_SRCS))
$(LIBCONFIG): $(call obj,$(CONFIG_SRCS))
$(LIBHANDLERS): $(call obj,$(HANDLERS_SRCS)) $(BUILD)/obj/apply_lua.o
$(LIBDAEMON): $(call obj,$(DAEMON_SRCS)) $(BUILD)/obj/ui_assets.o
$(BUILD)/lib%.a:
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/relationd: $(BUILD)/obj/daemon/main.o $(ALL_LIBS)
	$(CC) $(LDFLAGS) $^ $(PKG_LIBS) -lpthread -lm -o $@

# A Kafka-protocol broker for the tests, on librdkafka's mock cluster.
$(BUILD)/kafka_mock: $(BUILD)/obj/tests/kafka_mock.o
	$(CC) $(LDFLAGS) $^ $(PKG_LIBS) -o $@

# daemon/publisher.c driven from stdin, for tests/e2e/test_publisher.py.
$(BUILD)/publisher_driver: $(BUILD)/obj/tests/publisher_driver.o $(ALL_LIBS)
	$(CC) $(LDFLAGS) $^ $(PKG_LIBS) -lm -o $@

# daemon/hook_http.c driven from stdin, for tests/e2e/test_hook_http.py.
$(BUILD)/hook_http_driver: $(BUILD)/obj/tests/hook_http_driver.o $(ALL_LIBS)
	$(CC) $(LDFLAGS) $^ $(PKG_LIBS) -lm -o $@

# relationctl (ctl/), on the daemon's AMQP connection, publisher and Kafka configuration.
CTL_SRCS := ctl/relationctl.c ctl/read.c ctl/check.c ctl/apply.c ctl/broker.c ctl/lines.c \
            ctl/progress.c ctl/stats_table.c ctl/hooks.c
$(BUILD)/relationctl: $(patsubst %.c,$(BUILD)/obj/%.o,$(CTL_SRCS)) $(ALL_LIBS)
	$(CC) $(LDFLAGS) $^ $(PKG_LIBS) -lm -o $@

$(BUILD)/test_%: $(BUILD)/obj/tests/unit/test_%.o $(CORE_LIBS)
	$(CC) $(LDFLAGS) $(filter %.o,$^) $(filter %.a,$^) $(PKG_LIBS) $(CMOCKA_LIBS) -lm -o $@

# Unit tests of the daemon's layer (daemon/hook_http.c, daemon/trigger_feed.c, daemon/load.c):
# linked with every layer.
$(BUILD)/test_hook_http $(BUILD)/test_trigger_feed $(BUILD)/test_load: $(BUILD)/test_%: $(BUILD)/obj/tests/unit/test_%.o \
                                                   $(ALL_LIBS)
	$(CC) $(LDFLAGS) $(filter %.o,$^) $(ALL_LIBS) $(PKG_LIBS) $(CMOCKA_LIBS) -lm -o $@

# The tests sharing tests/unit/helpers.c (a configuration as the group state, a
# MessagePack writer, SHA-1 in hex).
HELPED_TESTS := trigger sha1 msgpack segment render edge config hooks
$(patsubst %,$(BUILD)/test_%,$(HELPED_TESTS)): $(BUILD)/obj/tests/unit/helpers.o

# Fails when a file includes a header of a higher layer (tools/check-layers.sh).
check-layers:
	sh tools/check-layers.sh .

# test_sha1 again on the module's portable SHA-1 (SHA1_PORTABLE): the same
# vectors, so both builds give the same digests.
PORTABLE_SHA1_OBJS := $(patsubst %,$(BUILD)/obj/portable/%.o,tests/unit/test_sha1 tests/unit/helpers \
                        lib/sha1)
$(BUILD)/obj/portable/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DSHA1_PORTABLE -MMD -MP -c $< -o $@
$(BUILD)/test_sha1_portable: $(PORTABLE_SHA1_OBJS) $(CORE_LIBS)
	$(CC) $(LDFLAGS) $(PORTABLE_SHA1_OBJS) $(CORE_LIBS) $(PKG_LIBS) $(CMOCKA_LIBS) -lm -o $@

test-unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

test-e2e: $(BUILD)/relationctl $(BUILD)/relationd $(BUILD)/kafka_mock $(BUILD)/publisher_driver \
          $(BUILD)/hook_http_driver $(BUILD)/relationd.so
	RELATIONCTL=$(abspath $(BUILD)/relationctl) RELATIOND=$(abspath $(BUILD)/relationd) \
	  RELATIOND_MODULE=$(abspath $(BUILD)/relationd.so) \
	  KAFKA_MOCK=$(abspath $(BUILD)/kafka_mock) PUBLISHER_DRIVER=$(abspath $(BUILD)/publisher_driver) \
	  HOOK_HTTP_DRIVER=$(abspath $(BUILD)/hook_http_driver) $(PYTHON) -m pytest -q tests/e2e

# The Debian packages for building, testing and the demo: installed when
# missing and run as root, else the command to run is printed (tools/deps.sh).
deps:
	@sh tools/deps.sh

# The packages first (this Makefile is read again once they are there), the
# unit tests in a plain build, the alert rules, then unit and end-to-end tests under
# AddressSanitizer and UndefinedBehaviorSanitizer.
test: deps
	$(MAKE) check-layers
	$(MAKE) all
	$(MAKE) test-unit
	$(MAKE) test-alerts
	$(MAKE) test-asan

# The alert rules (config/alerts.yml): valid, and each firing on its series
# (tests/alerts_test.yml); promtool comes with Debian's prometheus package.
test-alerts:
	promtool check rules config/alerts.yml
	promtool test rules tests/alerts_test.yml

test-asan:
	$(MAKE) BUILD=build/asan SANITIZE=address,undefined CFLAGS="-O1 -g" test-unit test-e2e

# The fault soak (tests/e2e/test_soak.py) under the sanitizers, SOAK_SECONDS long.
SOAK_SECONDS ?= 300
soak:
	$(MAKE) BUILD=build/asan SANITIZE=address,undefined CFLAGS="-O1 -g" \
	  build/asan/relationctl build/asan/relationd build/asan/kafka_mock build/asan/relationd.so
	SOAK_SECONDS=$(SOAK_SECONDS) RELATIONCTL=$(abspath build/asan/relationctl) \
	  RELATIOND_MODULE=$(abspath build/asan/relationd.so) \
	  RELATIOND=$(abspath build/asan/relationd) KAFKA_MOCK=$(abspath build/asan/kafka_mock) \
	  $(PYTHON) -m pytest -q -s tests/e2e/test_soak.py

demo: deps
	$(MAKE) all
	RELATIONCTL=$(abspath $(BUILD)/relationctl) RELATIOND=$(abspath $(BUILD)/relationd) \
	  KAFKA_MOCK=$(abspath $(BUILD)/kafka_mock) $(PYTHON) tools/demo.py

# The unit's paths (binaries, documentation) follow PREFIX; the Redis module
# goes to PREFIX/lib/relationd/relationd.so (redis-server's loadmodule). The configuration
# the unit reads, SYSCONFDIR/relationd/relationd.json (the example), and the
# secrets file beside it (environment, root only) are installed only when
# absent: an operator's files are never overwritten. relationd.json is 0644:
# the unit's dynamic user reads it; secrets go in the environment file as
# ${NAME}, which systemd reads as root.
INSTALL_PATHS := -e 's|/usr/local/|$(PREFIX)/|g' -e 's|/etc/relationd/|$(SYSCONFDIR)/relationd/|g'
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/relationd \
	  $(DESTDIR)$(PREFIX)/share/doc/relationd $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0755 $(BUILD)/relationd $(BUILD)/relationctl $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/lib/relationd
	install -m 0644 $(BUILD)/relationd.so $(DESTDIR)$(PREFIX)/lib/relationd/
	install -m 0644 config/relationd.example.json config/relationd.schema.json \
	  config/grafana-dashboard.json config/alerts.yml $(DESTDIR)$(PREFIX)/share/relationd/
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/relationd
	test -e $(DESTDIR)$(SYSCONFDIR)/relationd/relationd.json || \
	  install -m 0644 config/relationd.example.json $(DESTDIR)$(SYSCONFDIR)/relationd/relationd.json
	test -e $(DESTDIR)$(SYSCONFDIR)/relationd/environment || \
	  install -m 0600 debian/environment $(DESTDIR)$(SYSCONFDIR)/relationd/environment
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/relationd/
	install -d $(DESTDIR)$(PREFIX)/share/doc/relationd/man
	install -m 0644 man/relation-card.png $(DESTDIR)$(PREFIX)/share/doc/relationd/man/
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8
	sed $(INSTALL_PATHS) man/relationd.8 > $(DESTDIR)$(PREFIX)/share/man/man8/relationd.8
	sed $(INSTALL_PATHS) man/relationctl.1 > $(DESTDIR)$(PREFIX)/share/man/man1/relationctl.1
	chmod 0644 $(DESTDIR)$(PREFIX)/share/man/man8/relationd.8 $(DESTDIR)$(PREFIX)/share/man/man1/relationctl.1
	sed $(INSTALL_PATHS) systemd/relationd.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/relationd.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/relationd.service

# The configuration in SYSCONFDIR/relationd stays (the operator's).
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/relationd $(DESTDIR)$(PREFIX)/bin/relationctl
	rm -rf $(DESTDIR)$(PREFIX)/lib/relationd
	rm -rf $(DESTDIR)$(PREFIX)/share/relationd $(DESTDIR)$(PREFIX)/share/doc/relationd
	rm -f $(DESTDIR)$(PREFIX)/share/man/man8/relationd.8 $(DESTDIR)$(PREFIX)/share/man/man1/relationctl.1
	rm -f $(DESTDIR)$(PREFIX)/lib/systemd/system/relationd.service

clean:
	rm -rf build

# One table of every figure (build/bench.json too): the current build with the
# function and with the module (its Redis servers load build/relationd.so;
# BENCH_MODULE=0 leaves that column out); BASELINE_RELATIOND and
# BASELINE_RELATIONCTL add a column measured in the same run; BENCH_QUICK=1
# for a smoke test, BENCH_EVENTS to scale (see tests/bench/bench.py).
bench: $(BUILD)/relationctl $(BUILD)/relationd $(BUILD)/relationd.so $(BUILD)/kafka_mock \
       $(BUILD)/bench_subscriber $(BUILD)/bench_publish
	RELATIONCTL=$(abspath $(BUILD)/relationctl) RELATIOND=$(abspath $(BUILD)/relationd) \
	  KAFKA_MOCK=$(abspath $(BUILD)/kafka_mock) BENCH_SUBSCRIBER=$(abspath $(BUILD)/bench_subscriber) \
	  BENCH_PUBLISHER=$(abspath $(BUILD)/bench_publish) \
	  BENCH_JSON=$(abspath $(BUILD)/bench.json) $(PYTHON) tests/bench/bench.py

$(BUILD)/bench_subscriber: tests/bench/bench_subscriber.c
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror $< \
	  $(shell pkg-config --cflags --libs librabbitmq) -o $@

$(BUILD)/bench_publish: tests/bench/bench_publish.c $(ALL_LIBS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $< $(ALL_LIBS) $(PKG_LIBS) -lpthread -lm -o $@

# libFuzzer (needs clang) on the event reader, the configuration loader,
# the trigger rendering and the Redis module's parsing (its configuration
# text, its commands' arguments, stored edge values): FUZZ_SECONDS each, from
# the seeds in tests/fuzz/corpus.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=all -I. -I$(BUILD) $(PKG_CFLAGS) -DRELATIOND_VERSION=\"$(VERSION)\"
# The layers' archives built again by clang with the fuzzer's instrumentation.
FUZZ_BUILD := $(BUILD)/fuzzlib
FUZZ_LIBS := $(FUZZ_BUILD)/libhandlers.a $(FUZZ_BUILD)/libconfig.a $(FUZZ_BUILD)/liblib.a
fuzz:
	@for t in event config trigger module; do mkdir -p $(BUILD)/fuzz/$$t; \
	  cp -n tests/fuzz/corpus/$$t-* $(BUILD)/fuzz/$$t/ 2>/dev/null || true; done
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang WARN= CFLAGS="-g -O1" \
	  SANITIZE=fuzzer-no-link,address,undefined $(FUZZ_LIBS)
	for t in event config trigger; do \
	  clang $(FUZZ_CFLAGS) tests/fuzz/fuzz_$$t.c $(FUZZ_LIBS) $(PKG_LIBS) -lm \
	    -o $(BUILD)/fuzz_$$t || exit 1; done
	$(BUILD)/fuzz_event -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(BUILD)/fuzz/event
	$(BUILD)/fuzz_config -max_total_time=$(FUZZ_SECONDS) -max_len=8192 $(BUILD)/fuzz/config
	$(BUILD)/fuzz_trigger -max_total_time=$(FUZZ_SECONDS) -max_len=2048 $(BUILD)/fuzz/trigger
	clang $(FUZZ_CFLAGS) tests/fuzz/fuzz_module.c module/conf.c module/args.c module/num.c \
	  module/edge.c module/mpack.c -o $(BUILD)/fuzz_module
	$(BUILD)/fuzz_module -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(BUILD)/fuzz/module
