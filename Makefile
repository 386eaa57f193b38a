# Makefile for pg_ray: the extension library, its SQL script and its tests.
#
# Built with PGXS against the PostgreSQL named by PG_CONFIG (Debian 12's
# PostgreSQL 15 by default).  libcurl and jansson come from pkg-config, libpq
# from pg_config.

MODULE_big = pg_ray
OBJS = \
	src/pg_ray.o \
	src/settings.o \
	src/shmem.o \
	src/wakeup.o \
	src/worker.o \
	src/worker_round.o \
	src/spi_util.o \
	src/schema_version.o \
	src/identity.o \
	src/http.o \
	src/ray_parse.o \
	src/ray_json.o \
	src/ray_text.o \
	src/ray_api.o \
	src/dispatch_schedule.o \
	src/dispatch_send.o \
	src/dispatch_plan.o \
	src/dispatch_answer.o \
	src/dispatch_submit.o \
	src/dispatch_apply.o \
	src/jobs.o \
	src/row_holder.o \
	src/package.o \
	src/batch.o \
	src/run_read.o \
	src/run_secret.o \
	src/publish.o \
	src/purge.o \
	src/metrics_targets.o \
	src/fault.o \
	src/local_launch.o \
	src/local_proc.o \
	src/local_spawn.o \
	src/local_disk.o \
	src/provider_local.o

# The extension's SQL (docs/design.md, "The SQL sources and releases").
# Every version in order; the last is the control file's default_version.
# A released version's install script is frozen in extension/ (0.1's never
# changes again); the newest one's install script, and the update script
# from each earlier version to it, are assembled by scripts/assemble-sql
# from the files in sql/, in the order of these lists.
PG_RAY_VERSIONS = 0.1 0.2
PG_RAY_VERSION = $(lastword $(PG_RAY_VERSIONS))
PG_RAY_EARLIER_VERSIONS = $(filter-out $(PG_RAY_VERSION),$(PG_RAY_VERSIONS))
PG_RAY_FROZEN_SCRIPTS = extension/pg_ray--0.1.sql

# Made once by a fresh install; an update changes them in sql/updates/.
SQL_CREATED_ONCE_FIRST = sql/install/roles.sql
SQL_CREATED_ONCE_TABLES = sql/install/tables.sql
SQL_CREATED_ONCE_LAST = sql/install/policies.sql
SQL_SEED = sql/install/seed.sql
# Run again by every install and update script (CREATE OR REPLACE, GRANT):
# what the tables need first, then the functions by concern, the triggers,
# the views, and the privileges last.
SQL_BEFORE_TABLES = sql/library.sql sql/helpers.sql
SQL_FUNCTIONS = \
	sql/validation.sql \
	sql/state_machine.sql \
	sql/lookups.sql \
	sql/role_names.sql \
	sql/resource_groups.sql \
	sql/external_clusters.sql \
	sql/jobs.sql \
	sql/admission.sql \
	sql/worker_rounds.sql \
	sql/job_lifecycle.sql \
	sql/usage.sql \
	sql/local_nodes.sql \
	sql/metrics.sql \
	sql/cluster_status.sql \
	sql/models.sql \
	sql/batch_plan.sql \
	sql/batch_runs.sql \
	sql/publish.sql \
	sql/history.sql \
	sql/triggers.sql \
	sql/views.sql
SQL_PRIVILEGES = sql/privileges.sql

SQL_INSTALL = $(SQL_CREATED_ONCE_FIRST) $(SQL_BEFORE_TABLES) $(SQL_CREATED_ONCE_TABLES) \
	$(SQL_FUNCTIONS) $(SQL_CREATED_ONCE_LAST) $(SQL_PRIVILEGES) $(SQL_SEED)
SQL_UPDATE = $(SQL_BEFORE_TABLES) $(SQL_FUNCTIONS) $(SQL_PRIVILEGES)
SQL_BUILT = build/sql/pg_ray--$(PG_RAY_VERSION).sql \
	$(foreach v,$(PG_RAY_EARLIER_VERSIONS),build/sql/pg_ray--$(v)--$(PG_RAY_VERSION).sql)

# The control file and scripts are installed as DATA into share/extension
# rather than through EXTENSION, which would want pg_ray.control at the top
# of the tree.
MODULEDIR = extension
DATA = extension/pg_ray.control $(PG_RAY_FROZEN_SCRIPTS)
DATA_built = $(SQL_BUILT)
PGFILEDESC = "pg_ray - Ray resource groups and jobs driven from SQL"

# pg_regress runs in an existing database: the background worker stays
# connected to pg_ray.database_name, so the database cannot be dropped and
# re-created around the tests as pg_regress would otherwise do.
PG_RAY_TEST_DB ?= postgres
REGRESS = setup resource_groups worker_groups jobs usage models batch_inference
REGRESS_OPTS = --use-existing --inputdir=test/regress --outputdir=build/regress

PG_CPPFLAGS = -DPG_RAY_VERSION='"$(PG_RAY_VERSION)"' -DPG_RAY_EARLIER_VERSIONS='"$(PG_RAY_EARLIER_VERSIONS)"' -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
	$(shell pkg-config --cflags libcurl jansson libzip) -I$(shell pg_config --includedir)
# jansson is not linked: ray_json.c loads it (see there why).
SHLIB_LINK = $(shell pkg-config --libs libcurl libzip) -ldl -L$(shell pg_config --libdir) -lpq

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# After PGXS, which sets its own default.
CONTRIB_TESTDB = $(PG_RAY_TEST_DB)

EXTRA_CLEAN = build src/cli/pg_ray src/launcher/pg_ray_launch

build/sql/pg_ray--$(PG_RAY_VERSION).sql: $(SQL_INSTALL) extension/pg_ray.control scripts/assemble-sql
	@mkdir -p build/sql
	scripts/assemble-sql install "$(PG_RAY_VERSIONS)" $(SQL_INSTALL) >$@.tmp && mv $@.tmp $@

build/sql/pg_ray--%--$(PG_RAY_VERSION).sql: $(SQL_UPDATE) $(wildcard sql/updates/*.sql) extension/pg_ray.control \
		scripts/assemble-sql
	@mkdir -p build/sql
	scripts/assemble-sql update $* "$(PG_RAY_VERSIONS)" $(SQL_UPDATE) >$@.tmp && mv $@.tmp $@

# The command-line client, a plain libpq program (src/cli/), installed next
# to PostgreSQL's own programs in $(bindir).  PGXS builds one module here, so
# the client has rules of its own.
CLI_SOURCES = $(wildcard src/cli/*.c)
CLI_HEADERS = $(wildcard src/cli/*.h)
CLI_VERSION_FLAG = -DPG_RAY_VERSION='"$(PG_RAY_VERSION)"'

all: src/cli/pg_ray src/launcher/pg_ray_launch

src/cli/pg_ray: $(CLI_SOURCES) $(CLI_HEADERS)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
		$(CLI_VERSION_FLAG) -I$(shell $(PG_CONFIG) --includedir) $(shell pkg-config --cflags libzip) \
		-o $@ $(CLI_SOURCES) -L$(shell $(PG_CONFIG) --libdir) -lpq $(shell pkg-config --libs libzip)

# The same client under AddressSanitizer and UndefinedBehaviorSanitizer, for
# scripts/test, which runs the client's integration tests with it too.
build/asan/pg_ray: $(CLI_SOURCES) $(CLI_HEADERS)
	mkdir -p build/asan
	$(CC) -std=gnu11 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
		-Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
		$(CLI_VERSION_FLAG) -I$(shell $(PG_CONFIG) --includedir) $(shell pkg-config --cflags libzip) \
		-o $@ $(CLI_SOURCES) -L$(shell $(PG_CONFIG) --libdir) -lpq $(shell pkg-config --libs libzip)

cli-asan: build/asan/pg_ray

# The extension itself under the same sanitizers, built apart from the
# normal objects.  scripts/check-asan installs it in place of the normal
# build, runs the server with the sanitizer's runtime preloaded, and puts
# the normal build back (docs/reliability.md).
ASAN_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
ASAN_OBJS = $(patsubst src/%.o,build/asan/ext/%.o,$(OBJS))

build/asan/ext/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p build/asan/ext
	$(CC) $(CFLAGS) $(CFLAGS_SL) $(CPPFLAGS) $(ASAN_CFLAGS) -c -o $@ $<

build/asan/pg_ray.so: $(ASAN_OBJS)
	$(CC) $(CFLAGS) $(ASAN_CFLAGS) -shared -o $@ $(ASAN_OBJS) $(LDFLAGS) $(LDFLAGS_SL) $(SHLIB_LINK)

# Preloaded after the sanitizer's runtime so that the server can start
# under it (see the file for why).
build/asan/asan_init_first.so: test/sanitizer/asan_init_first.c
	@mkdir -p build/asan
	$(CC) -shared -fPIC -O1 -Wall -Wextra -Werror -o $@ $< -ldl

extension-asan: build/asan/pg_ray.so build/asan/asan_init_first.so

check-asan:
	scripts/check-asan

.PHONY: cli-asan extension-asan check-asan

# No two files of the library, of the client or of the runner may call (or
# import) each other in a loop: scripts/check-call-cycles reads the symbols
# of the objects with nm, and the runner's imports.  The client is built in
# one command (above), so its objects are compiled apart for the check.
CLI_CHECK_OBJS = $(patsubst src/cli/%.c,build/cli-objects/%.o,$(CLI_SOURCES))

build/cli-objects/%.o: src/cli/%.c $(CLI_HEADERS)
	@mkdir -p build/cli-objects
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
		$(CLI_VERSION_FLAG) -I$(shell $(PG_CONFIG) --includedir) $(shell pkg-config --cflags libzip) -c -o $@ $<

check-cycles: $(OBJS) $(CLI_CHECK_OBJS)
	scripts/check-call-cycles --python src/runner/pg_ray_runner $(OBJS) $(CLI_CHECK_OBJS)

.PHONY: check-cycles

install: install-cli install-launcher

install-cli: src/cli/pg_ray
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) src/cli/pg_ray '$(DESTDIR)$(bindir)/pg_ray'

.PHONY: install-cli

# The launcher that runs local groups' Ray nodes as OS users of their own
# (src/launcher/pg_ray_launch.c), in $(pkglibdir).  Only the server's OS
# group may run it, and it needs CAP_SETUID, CAP_SETGID and CAP_CHOWN: make
# install gives it those when run as root without DESTDIR; a package does
# it in its post-installation step (docs/operations.md).
PG_RAY_SERVER_GROUP ?= postgres

src/launcher/pg_ray_launch: src/launcher/pg_ray_launch.c
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -o $@ $<

install-launcher: src/launcher/pg_ray_launch
	$(MKDIR_P) '$(DESTDIR)$(pkglibdir)'
	$(INSTALL_PROGRAM) src/launcher/pg_ray_launch '$(DESTDIR)$(pkglibdir)/pg_ray_launch'
	@if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ]; then \
		chown root:$(PG_RAY_SERVER_GROUP) '$(pkglibdir)/pg_ray_launch' && \
		chmod 0750 '$(pkglibdir)/pg_ray_launch' && \
		setcap cap_setuid,cap_setgid,cap_chown=ep '$(pkglibdir)/pg_ray_launch'; \
	else \
		echo "pg_ray: give $(pkglibdir)/pg_ray_launch to root:$(PG_RAY_SERVER_GROUP), mode 0750, and setcap cap_setuid,cap_setgid,cap_chown=ep (docs/operations.md)"; \
	fi

.PHONY: install-launcher

# Unit tests of the response parsers: plain C, under AddressSanitizer and
# UndefinedBehaviorSanitizer, printing TAP.
build/test_ray_parse: test/unit/test_ray_parse.c test/unit/tap.h src/ray_parse.c src/ray_parse.h src/ray_json.c src/ray_json.h
	mkdir -p build
	$(CC) -std=gnu11 -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all \
		-DRAY_JSON_DIRECT -o $@ test/unit/test_ray_parse.c src/ray_parse.c src/ray_json.c \
		$(shell pkg-config --cflags --libs jansson)

# Unit tests of the client's ignore patterns (.gitignore semantics), likewise.
build/test_ignore: test/unit/test_ignore.c test/unit/tap.h src/cli/ignore.c src/cli/ignore.h
	mkdir -p build
	$(CC) -std=gnu11 -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all \
		-o $@ test/unit/test_ignore.c src/cli/ignore.c

unittest: build/test_ray_parse build/test_ignore
	build/test_ray_parse
	build/test_ignore

.PHONY: unittest

# Fuzzers (test/fuzz/, libFuzzer with clang): one per parser of Ray's
# responses, the client's ignore patterns and its working-directory zip,
# under AddressSanitizer and UndefinedBehaviorSanitizer (and LeakSanitizer).
# "make fuzz" runs each for FUZZ_SECONDS on a copy of its seed corpus;
# "make fuzz FUZZ_SECONDS=5" is the smoke test CI runs.  See
# docs/reliability.md.
FUZZ_CC = clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -std=gnu11 -g -O1 -Wall -Wextra -Werror \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_PARSE_TARGETS = job_info job_list version submit stop logs
FUZZ_TARGETS = $(FUZZ_PARSE_TARGETS) ignore workdir

$(addprefix build/fuzz/fuzz_,$(FUZZ_PARSE_TARGETS)): build/fuzz/fuzz_%: test/fuzz/fuzz_%.c \
		test/fuzz/fuzz_parse.h test/fuzz/fuzz_assert.h src/ray_parse.c src/ray_parse.h src/ray_json.c src/ray_json.h
	mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DRAY_JSON_DIRECT -Isrc -o $@ $< src/ray_parse.c src/ray_json.c \
		$(shell pkg-config --cflags --libs jansson)

build/fuzz/fuzz_ignore: test/fuzz/fuzz_ignore.c test/fuzz/fuzz_assert.h src/cli/ignore.c src/cli/ignore.h
	mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Isrc/cli -o $@ test/fuzz/fuzz_ignore.c src/cli/ignore.c

# Only workdir.c and ignore.c of the client: the harness defines cli_error.
build/fuzz/fuzz_workdir: test/fuzz/fuzz_workdir.c test/fuzz/fuzz_assert.h src/cli/workdir.c src/cli/ignore.c \
		src/cli/ignore.h src/cli/cli.h
	mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Isrc/cli -I$(shell $(PG_CONFIG) --includedir) \
		$(shell pkg-config --cflags libzip) -o $@ test/fuzz/fuzz_workdir.c \
		src/cli/workdir.c src/cli/ignore.c $(shell pkg-config --libs libzip)

fuzz-build: $(addprefix build/fuzz/fuzz_,$(FUZZ_TARGETS))

fuzz: fuzz-build
	test/fuzz/run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

.PHONY: fuzz fuzz-build

# The batch inference runner, zipped by ray._runner_package() into the
# working directory of each run: share/extension/pg_ray/runner/pg_ray_runner.
RUNNER_DIR = $(DESTDIR)$(datadir)/extension/pg_ray/runner/pg_ray_runner

install: install-runner

install-runner:
	$(MKDIR_P) '$(RUNNER_DIR)'
	rm -f '$(RUNNER_DIR)'/*.py
	$(INSTALL_DATA) $(wildcard src/runner/pg_ray_runner/*.py) '$(RUNNER_DIR)/'

.PHONY: install-runner

# The starter of local groups' Ray nodes (src/node/pg_ray_node.py), which
# ray._node_starter() names: share/extension/pg_ray/pg_ray_node.py.
install: install-node-starter

install-node-starter:
	$(MKDIR_P) '$(DESTDIR)$(datadir)/extension/pg_ray'
	$(INSTALL_DATA) src/node/pg_ray_node.py '$(DESTDIR)$(datadir)/extension/pg_ray/pg_ray_node.py'

.PHONY: install-node-starter

# What monitoring needs (monitoring/, docs/operations.md "Monitoring"): the
# queries file of prometheus-postgres-exporter and the Grafana dashboards,
# in share/extension/pg_ray/monitoring.
install: install-monitoring

install-monitoring:
	$(MKDIR_P) '$(DESTDIR)$(datadir)/extension/pg_ray/monitoring'
	$(INSTALL_DATA) $(wildcard monitoring/*.yaml monitoring/*.json) '$(DESTDIR)$(datadir)/extension/pg_ray/monitoring/'

.PHONY: install-monitoring
