/*
 * sql/local_nodes.sql
 *		The local provider: Ray nodes as processes on this host.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/* Append a note to a resource group's history without changing its state. */
CREATE OR REPLACE FUNCTION ray._group_note(group_name text, why text, actor name DEFAULT 'pg_ray worker')
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	INSERT INTO ray.resource_group_event (resource_group, from_state, to_state, generation, actor, message)
	SELECT name, state, state, generation, actor, why FROM ray.resource_group WHERE name = group_name;
$$;
COMMENT ON FUNCTION ray._group_note(text, text, name) IS
'Record an event of a resource group (a node started or stopped, a scaling decision) that leaves its state as it is.';

/* How a node is called in events and errors. */
CREATE OR REPLACE FUNCTION ray._node_label(n ray.node)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE n.kind
		WHEN 'head' THEN format('head node %s', n.node_id)
		WHEN 'redis' THEN format('Redis %s', n.node_id)
		ELSE format('worker node %s of worker group %s', n.node_id, n.worker_group) END
$$;
COMMENT ON FUNCTION ray._node_label(ray.node) IS
'The name of a node in events and messages: "head node 3", "worker node 7 of worker group cpu".';

/*
 * The object store of a node: the group's option, or 30% of the node's
 * memory as Ray itself would take, kept between 100 MB and 2 GB so that a
 * host running several groups is not filled by their stores.
 */
CREATE OR REPLACE FUNCTION ray._object_store_mb(options jsonb, memory_mb bigint)
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce((options ->> 'object_store_memory_mb')::integer,
					least(greatest(memory_mb * 3 / 10, 100), 2048)::integer)
$$;
COMMENT ON FUNCTION ray._object_store_mb(jsonb, bigint) IS
'Object store size of a node in MB: the object_store_memory_mb option, else 30% of its memory between 100 and 2048.';

/*
 * What a node of a group should run with now.  A node whose recorded config
 * differs is restarted: this is where the documented effects of a change
 * (head spec, worker spec or type, disk, GPU unit, HA) come from.
 */
CREATE OR REPLACE FUNCTION ray._node_desired_config(group_name text, node_kind text, worker_group_name text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group;
	wg ray.worker_group;
	spec ray.node_spec;
BEGIN
	SELECT * INTO rg FROM ray.resource_group WHERE name = group_name;
	IF node_kind = 'redis' THEN
		RETURN '{}';
	END IF;
	IF node_kind = 'head' THEN
		SELECT * INTO spec FROM ray.node_spec WHERE name = rg.head_spec;
		RETURN jsonb_build_object(
			'spec', spec.name, 'num_cpus', 0, 'num_gpus', 0, 'memory_mb', spec.memory_mb,
			'object_store_mb', ray._object_store_mb(rg.options, spec.memory_mb),
			'ha', coalesce((rg.options ->> 'ha')::boolean, false),
			'redis_url', rg.options ->> 'redis_url');
	END IF;
	SELECT * INTO wg FROM ray.worker_group WHERE resource_group = group_name AND name = worker_group_name;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	SELECT * INTO spec FROM ray.node_spec WHERE name = wg.spec;
	RETURN jsonb_build_object(
		'spec', spec.name, 'resource_type', wg.resource_type,
		'num_cpus', spec.num_cpus, 'memory_mb', spec.memory_mb,
		-- with a distribution unit, one GPU in Ray that is a share of a
		-- physical one (see _local_node_command)
		'num_gpus', ray._worker_node_gpus(wg.resource_type, spec.num_gpus, wg.gpu_distribution_unit),
		'gpu_distribution_unit', wg.gpu_distribution_unit,
		'disk_gb', wg.disk_gb,
		'object_store_mb', ray._object_store_mb(rg.options, spec.memory_mb));
END
$$;
COMMENT ON FUNCTION ray._node_desired_config(text, text, text) IS
'The config a head, worker or Redis node of a local group should run with now; NULL for a worker group that is gone.';

/*
 * The first free block of 64 ports in pg_ray.port_range_start ..
 * pg_ray.port_range_end above a given port.  Blocks are recorded on their
 * node, so two nodes never share one and a restarted node keeps its own.
 */
CREATE OR REPLACE FUNCTION ray._allocate_port_base(above integer DEFAULT 0)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	first_port integer := current_setting('pg_ray.port_range_start')::integer;
	last_port integer := current_setting('pg_ray.port_range_end')::integer;
	base integer;
BEGIN
	-- one allocator at a time
	LOCK TABLE ray.node IN SHARE ROW EXCLUSIVE MODE;
	SELECT b INTO base
	FROM generate_series(first_port, last_port - 63, 64) b
	WHERE b > above AND NOT EXISTS (SELECT FROM ray.node n WHERE n.port_base = b)
	ORDER BY b LIMIT 1;
	IF base IS NULL THEN
		RAISE EXCEPTION 'no free block of ports left between % and %', first_port, last_port
			USING ERRCODE = 'configuration_limit_exceeded',
				  DETAIL = 'Each local Ray node takes 64 ports.',
				  HINT = 'Widen pg_ray.port_range_start .. pg_ray.port_range_end, or drop resource groups.';
	END IF;
	RETURN base;
END
$$;
COMMENT ON FUNCTION ray._allocate_port_base(integer) IS
'The first free 64-port block of the local port range above a port, or an error when none is left.';

CREATE OR REPLACE FUNCTION ray._node_starter()
RETURNS text
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'pg_ray_node_starter';
COMMENT ON FUNCTION ray._node_starter() IS
'Where pg_ray''s starter of Ray nodes is installed (share/extension/pg_ray/pg_ray_node.py).';

/* A new slot for a node of a local group; it starts in the next round. */
CREATE OR REPLACE FUNCTION ray._add_node(group_name text, node_kind text, worker_group_name text, why text)
RETURNS ray.node
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
	id bigint := nextval('ray.node_id_seq');
BEGIN
	INSERT INTO ray.node (node_id, resource_group, kind, worker_group, config, port_base, run_dir)
	VALUES (id, group_name, node_kind, worker_group_name,
			ray._node_desired_config(group_name, node_kind, worker_group_name),
			ray._allocate_port_base(),
			format('%s/%s/n%s', rtrim(current_setting('pg_ray.run_directory'), '/'),
				   (SELECT i.id FROM ray.installation i), id))
	RETURNING * INTO n;
	PERFORM ray._group_note(group_name, format('%s added (ports %s-%s): %s', ray._node_label(n),
											   n.port_base, n.port_base + 63, why));
	RETURN n;
END
$$;
COMMENT ON FUNCTION ray._add_node(text, text, text, text) IS
'Add a node slot (ports, run directory, config) to a local group; the worker starts its process.';

/* Ask for a node to stop, for a reason kept in its history. */
CREATE OR REPLACE FUNCTION ray._stop_node(id bigint, why text, restart boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
BEGIN
	UPDATE ray.node SET stop_requested_at = now(), stop_reason = why, restart_after_stop = restart
	WHERE node_id = id AND stop_requested_at IS NULL
	RETURNING * INTO n;
	IF FOUND THEN
		PERFORM ray._group_note(n.resource_group,
			format('%s %s: %s', ray._node_label(n), CASE WHEN restart THEN 'restarts' ELSE 'stops' END, why));
	END IF;
END
$$;
COMMENT ON FUNCTION ray._stop_node(bigint, text, boolean) IS
'Ask the worker to stop a node''s processes (and start it again with its desired config when restart).';

/*
 * Bring the node slots of one local group in line with its desired spec:
 * a head (and a Redis for HA without redis_url), desired_workers nodes per
 * worker group, restarts where the config changed, stops for what was
 * dropped or scaled away.  Level-triggered: it looks at the rows as they
 * are, so running it twice changes nothing the second time.
 */
CREATE OR REPLACE FUNCTION ray._local_reconcile_group(rg ray.resource_group)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	wg ray.worker_group;
	n ray.node;
	id bigint;
	wants_redis boolean;
	active integer;
	desired jsonb;
BEGIN
	IF rg.delete_requested_at IS NOT NULL THEN
		FOR n IN SELECT * FROM ray.node WHERE resource_group = rg.name AND stop_requested_at IS NULL
				 ORDER BY node_id LOOP
			PERFORM ray._stop_node(n.node_id, 'the resource group is dropped');
		END LOOP;
		RETURN;
	END IF;

	-- Redis first: a highly available head keeps its state there
	wants_redis := coalesce((rg.options ->> 'ha')::boolean, false) AND NOT rg.options ? 'redis_url';
	IF wants_redis AND NOT EXISTS (SELECT FROM ray.node WHERE resource_group = rg.name AND kind = 'redis') THEN
		PERFORM ray._add_node(rg.name, 'redis', NULL, 'the head is highly available');
	ELSIF NOT wants_redis THEN
		FOR n IN SELECT * FROM ray.node WHERE resource_group = rg.name AND kind = 'redis'
				 AND stop_requested_at IS NULL LOOP
			PERFORM ray._stop_node(n.node_id, 'the head no longer keeps its state in this Redis');
		END LOOP;
	END IF;

	desired := ray._node_desired_config(rg.name, 'head', NULL);
	SELECT * INTO n FROM ray.node WHERE resource_group = rg.name AND kind = 'head';
	IF NOT FOUND THEN
		PERFORM ray._add_node(rg.name, 'head', NULL, 'the group needs a head');
	ELSIF n.config IS DISTINCT FROM desired AND n.stop_requested_at IS NULL THEN
		PERFORM ray._stop_node(n.node_id, 'its spec changed', true);
		-- a head that keeps no state in Redis comes back as a new cluster
		IF NOT (coalesce((n.config ->> 'ha')::boolean, false) AND (desired ->> 'ha')::boolean) THEN
			FOR id IN SELECT node_id FROM ray.node WHERE resource_group = rg.name AND kind = 'worker'
					  AND stop_requested_at IS NULL ORDER BY node_id LOOP
				PERFORM ray._stop_node(id, 'the head restarts without its state, so the cluster starts anew', true);
			END LOOP;
		END IF;
	END IF;

	-- workers of dropped worker groups, or started with another config
	FOR n IN SELECT * FROM ray.node nd WHERE nd.resource_group = rg.name AND nd.kind = 'worker'
			 AND nd.stop_requested_at IS NULL ORDER BY nd.node_id LOOP
		desired := ray._node_desired_config(rg.name, 'worker', n.worker_group);
		IF desired IS NULL THEN
			PERFORM ray._stop_node(n.node_id, format('worker group %s was dropped', n.worker_group));
		ELSIF n.config IS DISTINCT FROM desired THEN
			PERFORM ray._stop_node(n.node_id, format('worker group %s changed', n.worker_group));
		END IF;
	END LOOP;

	-- as many live slots per worker group as desired
	FOR wg IN SELECT * FROM ray.worker_group WHERE resource_group = rg.name ORDER BY name LOOP
		SELECT count(*) INTO active FROM ray.node
		WHERE resource_group = rg.name AND worker_group = wg.name AND stop_requested_at IS NULL;
		WHILE active < wg.desired_workers LOOP
			PERFORM ray._add_node(rg.name, 'worker', wg.name,
				format('worker group %s wants %s workers', wg.name, wg.desired_workers));
			active := active + 1;
		END LOOP;
		-- too many: not started ones first, then the idlest, then the newest
		FOR n IN SELECT * FROM ray.node
				 WHERE resource_group = rg.name AND worker_group = wg.name AND stop_requested_at IS NULL
				 ORDER BY pid IS NOT NULL, idle_since NULLS LAST, node_id DESC
				 LIMIT greatest(active - wg.desired_workers, 0) LOOP
			PERFORM ray._stop_node(n.node_id,
				format('worker group %s wants %s workers', wg.name, wg.desired_workers));
		END LOOP;
	END LOOP;
END
$$;
COMMENT ON FUNCTION ray._local_reconcile_group(ray.resource_group) IS
'Add, restart and stop the node slots of one local group until they match its desired spec.';

/*
 * Reconcile every local group, each on its own: a group that cannot be
 * reconciled (no ports left, a broken spec) records why in its last_error
 * and history, and the others go on.
 */
CREATE OR REPLACE FUNCTION ray._local_reconcile_nodes()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group;
	failure text;
BEGIN
	-- a group an admin's open change holds is left for a later round: the others go on
	FOR rg IN SELECT * FROM ray.resource_group WHERE provider = 'local' ORDER BY name
			  FOR NO KEY UPDATE SKIP LOCKED LOOP
		BEGIN
			PERFORM ray._local_reconcile_group(rg);
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT;
			failure := format('could not manage its nodes: %s', failure);
			IF rg.last_error IS DISTINCT FROM failure THEN
				UPDATE ray.resource_group SET last_error = failure WHERE name = rg.name;
				PERFORM ray._group_note(rg.name, failure);
			END IF;
		END;
	END LOOP;
END
$$;
COMMENT ON FUNCTION ray._local_reconcile_nodes() IS
'Reconcile the node slots of every local group, each on its own: one that fails records why and does not stop the others.';

/* The password of a group's own Redis, derived from its token so that one secret is kept. */
CREATE OR REPLACE FUNCTION ray._redis_password(group_name text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT encode(sha256(convert_to(s.token || ':redis', 'UTF8')), 'hex')
	FROM ray.resource_group_secret s WHERE s.resource_group = group_name
$$;
COMMENT ON FUNCTION ray._redis_password(text) IS
'The password of the Redis pg_ray runs for a group''s highly available head; for the worker only.';

/*
 * The command line and environment a node starts with.  Every port comes
 * from the node's block:
 *   +0 GCS (head) or Redis, +1 dashboard, +2 Ray client server,
 *   +3 node manager, +4 object manager, +5 metrics export,
 *   +6 dashboard agent HTTP, +7 dashboard agent gRPC, +8 runtime env agent,
 *   +9 dashboard metrics, +10 autoscaler metrics, +16..+63 worker processes.
 * Secrets travel in the environment, which only the server's OS user can
 * read, never on the command line.
 */
CREATE OR REPLACE FUNCTION ray._local_node_command(id bigint, host_gpus integer, OUT argv text[], OUT env text[])
RETURNS record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
	head ray.node;
	redis ray.node;
	rg ray.resource_group;
	token text;
	b integer;
	c jsonb;
	redis_url text;
	redis_address text;
	redis_password text;
	slot_index integer;
BEGIN
	SELECT * INTO n FROM ray.node WHERE node_id = id;
	SELECT count(*) INTO slot_index FROM ray.node o
	WHERE o.resource_group = n.resource_group AND o.worker_group = n.worker_group AND o.node_id < n.node_id;
	SELECT * INTO rg FROM ray.resource_group WHERE name = n.resource_group;
	SELECT s.token INTO token FROM ray.resource_group_secret s WHERE s.resource_group = n.resource_group;
	b := n.port_base;
	c := n.config;

	IF n.kind = 'redis' THEN
		-- Redis rewrites its process title, which takes the password off
		-- the command line; the title keeps the run directory, by which
		-- the worker finds the process again
		argv := ARRAY[current_setting('pg_ray.redis_server'),
			'--port', b::text, '--bind', '127.0.0.1', '--protected-mode', 'yes',
			'--dir', n.run_dir, '--appendonly', 'yes', '--save', '',
			'--logfile', '', '--daemonize', 'no',
			'--proc-title-template', format('{title} {listen-addr} %s/', n.run_dir),
			'--requirepass', ray._redis_password(n.resource_group)];
		env := '{}';
		RETURN;
	END IF;

	-- "ray start" through pg_ray's starter, by the python3 beside the ray
	-- command, which keeps the node's ports on 127.0.0.1 (src/node/)
	argv := ARRAY[regexp_replace(current_setting('pg_ray.ray_executable'), '[^/]*$', 'python3'),
				  ray._node_starter(), 'start', '--block'];
	-- without the drain, a stopped node goes in seconds rather than 30
	env := ARRAY['RAY_AUTH_MODE=token', 'RAY_AUTH_TOKEN=' || token, 'RAY_USAGE_STATS_ENABLED=0',
				 'RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=0'];
	IF n.kind = 'head' THEN
		argv := argv || ARRAY['--head', '--port=' || b,
			'--dashboard-host=127.0.0.1', '--dashboard-port=' || (b + 1),
			'--ray-client-server-port=' || (b + 2), '--include-dashboard=true'];
		env := env || ARRAY['DASHBOARD_METRIC_PORT=' || (b + 9), 'AUTOSCALER_METRIC_PORT=' || (b + 10),
							'RAY_JOB_START_TIMEOUT_SECONDS=120'];
		IF (c ->> 'ha')::boolean THEN
			redis_url := c ->> 'redis_url';
			IF redis_url IS NULL THEN
				SELECT * INTO redis FROM ray.node WHERE resource_group = n.resource_group AND kind = 'redis';
				redis_address := '127.0.0.1:' || redis.port_base;
				redis_password := ray._redis_password(n.resource_group);
			ELSE
				redis_address := substring(redis_url from '^rediss?://(?:[^@/]*@)?([^/?#]+)');
				IF redis_url ~ '^rediss://' THEN
					redis_address := 'rediss://' || redis_address;
				END IF;
				redis_password := substring(redis_url from '^rediss?://[^:@/]*:([^@/]*)@');
			END IF;
			-- the GCS keeps its tables in Redis, under a namespace of this group
			env := env || ARRAY['RAY_REDIS_ADDRESS=' || redis_address,
								'RAY_external_storage_namespace=pgray-' || (SELECT i.id FROM ray.installation i)
									|| '-' || n.resource_group];
			-- Ray hands the password to its GCS server on the command line
			-- whatever way it gets it (docs/security.md says what that means)
			IF redis_password IS NOT NULL THEN
				argv := argv || ARRAY['--redis-password=' || redis_password];
			END IF;
		END IF;
	ELSE
		SELECT * INTO head FROM ray.node WHERE resource_group = n.resource_group AND kind = 'head';
		-- a custom resource (for jobs and tasks to ask for, and for the
		-- autoscaler to know whose demand it is) and a label name the worker group
		argv := argv || ARRAY['--address=127.0.0.1:' || head.port_base,
			'--resources=' || jsonb_build_object('pgray-worker-group:' || n.worker_group, 1000)::text];
		-- Workers of a GPU group share the host's GPUs by the distribution
		-- unit: with a unit of 1/3, three workers in a row get the same GPU.
		-- The GPUs of the host are counted by the worker (host_gpus); with
		-- none, the worker's GPUs are logical and Ray numbers them itself.
		IF (c ->> 'num_gpus')::integer > 0 AND host_gpus > 0 THEN
			env := env || ARRAY['CUDA_VISIBLE_DEVICES=' || (
				SELECT string_agg(((floor(slot_index * (c ->> 'num_gpus')::integer
										  * coalesce((c ->> 'gpu_distribution_unit')::numeric, 1))::integer
								   + k) % host_gpus)::text, ',')
				FROM generate_series(0, (c ->> 'num_gpus')::integer - 1) k)];
		END IF;
	END IF;
	argv := argv || ARRAY['--node-ip-address=127.0.0.1',
		'--node-manager-port=' || (b + 3), '--object-manager-port=' || (b + 4),
		'--metrics-export-port=' || (b + 5), '--dashboard-agent-listen-port=' || (b + 6),
		'--dashboard-agent-grpc-port=' || (b + 7), '--runtime-env-agent-port=' || (b + 8),
		'--min-worker-port=' || (b + 16), '--max-worker-port=' || (b + 63),
		'--num-cpus=' || (c ->> 'num_cpus'), '--num-gpus=' || (c ->> 'num_gpus'),
		'--memory=' || ((c ->> 'memory_mb')::bigint * 1024 * 1024),
		'--object-store-memory=' || ((c ->> 'object_store_mb')::bigint * 1024 * 1024),
		-- Ray opens its temp dir to everyone (0777): a directory under the
		-- node's own, which is its OS user's alone
		'--temp-dir=' || n.run_dir || '/r/',
		'--labels=pgray-node=' || n.node_id
			|| CASE WHEN n.kind = 'worker' THEN ',pgray-worker-group=' || n.worker_group ELSE '' END,
		'--disable-usage-stats', '--log-style=record'];
END
$$;
COMMENT ON FUNCTION ray._local_node_command(bigint, integer) IS
'The command line and environment (with the group''s token) of a local node; for the worker only.';

/*
 * What the worker does with the processes of local groups now, one row per
 * node: start it, check it still runs, or stop it.  Called in each round
 * after the slots were reconciled.
 */
CREATE OR REPLACE FUNCTION ray._local_plan(host_gpus integer)
RETURNS TABLE (action text, node_id bigint, pid integer, run_dir text, port_base integer,
			   elapsed_ms bigint, argv text[], env text[], os_user name, measure_disk boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM ray._local_reconcile_nodes();
	RETURN QUERY
	WITH slot AS (
		SELECT n.*,
			   n.next_start_at <= now()
			   -- Redis before the head, the head before workers; a worker
			   -- waits for the head's GCS by itself, so it starts alongside
			   AND CASE n.kind
				   WHEN 'redis' THEN true
				   WHEN 'head' THEN NOT EXISTS (
					   SELECT FROM ray.node r WHERE r.resource_group = n.resource_group AND r.kind = 'redis'
					   AND (r.pid IS NULL OR r.stop_requested_at IS NOT NULL))
				   ELSE EXISTS (
					   SELECT FROM ray.node h WHERE h.resource_group = n.resource_group AND h.kind = 'head'
					   AND h.pid IS NOT NULL AND h.stop_requested_at IS NULL) END AS startable
		FROM ray.node n
	)
	SELECT CASE WHEN n.stop_requested_at IS NOT NULL THEN 'stop'
				WHEN n.pid IS NOT NULL THEN 'check'
				WHEN n.startable THEN 'start' ELSE 'wait' END,
		   n.node_id, n.pid, n.run_dir, n.port_base,
		   CASE WHEN n.stop_requested_at IS NOT NULL
				THEN (extract(epoch FROM now() - n.stop_requested_at) * 1000)::bigint
				-- a node to start later: when to look again
				WHEN n.pid IS NULL AND NOT n.startable
				THEN greatest((extract(epoch FROM n.next_start_at - now()) * 1000)::bigint, 0) END,
		   cmd.argv, cmd.env,
		   (SELECT g.os_user FROM ray.resource_group g WHERE g.name = n.resource_group),
		   -- a running worker's disk use, every pg_ray.disk_check_interval
		   n.kind = 'worker' AND n.pid IS NOT NULL AND n.stop_requested_at IS NULL
		   AND current_setting('pg_ray.disk_check_interval')::interval > interval '0'
		   AND (n.disk_measured_at IS NULL
				OR n.disk_measured_at <= now() - current_setting('pg_ray.disk_check_interval')::interval)
	FROM slot n
	LEFT JOIN LATERAL ray._local_node_command(n.node_id, host_gpus) cmd
		ON n.pid IS NULL AND n.stop_requested_at IS NULL AND n.startable
	ORDER BY n.node_id;
END
$$;
COMMENT ON FUNCTION ray._local_plan(integer) IS
'The worker''s to-do list for local nodes: start, check or stop each, or wait (elapsed_ms: until when) to start it.';

/* The worker started a node's process, or found it already running. */
CREATE OR REPLACE FUNCTION ray._local_node_started(id bigint, leader_pid integer, adopted boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
BEGIN
	UPDATE ray.node SET pid = leader_pid, started_at = clock_timestamp(), answered_at = NULL,
		ray_node_id = NULL, ray_state = NULL, idle_since = NULL,
		disk_used_bytes = NULL, disk_measured_at = NULL,
		-- why it could not start before is over; why it last exited stays
		last_exit = CASE WHEN last_exit LIKE 'could not start: %' THEN NULL ELSE last_exit END
	WHERE node_id = id
	RETURNING * INTO n;
	PERFORM ray._node_life_began(id, adopted);
	IF n.kind = 'head' THEN
		UPDATE ray.resource_group SET
			dashboard_url = format('http://127.0.0.1:%s', n.port_base + 1),
			client_address = format('ray://127.0.0.1:%s', n.port_base + 2)
		WHERE name = n.resource_group;
	END IF;
	PERFORM ray._group_note(n.resource_group,
		format('%s %s (pid %s)', ray._node_label(n),
			   CASE WHEN adopted THEN 'found running and adopted' ELSE 'started' END, leader_pid));
END
$$;
COMMENT ON FUNCTION ray._local_node_started(bigint, integer, boolean) IS
'Record the pid of a node''s process, started or adopted.';

/*
 * What a worker node's run directory takes on disk (Ray's temp dir: its
 * sessions, logs, spilled objects and runtime environments), as
 * pg_ray_launch counted it (NULL: it could not, and the node is counted
 * again after pg_ray.disk_check_interval).  More than its worker group's disk_gb, and the
 * node is replaced as Kubernetes evicts a pod over its ephemeral storage:
 * stopped and removed, with its run directory (its tasks fail and Ray
 * retries them elsewhere; a driver there is lost and requeued), while the
 * worker group gets a new node, with an empty one, in its place.
 */
CREATE OR REPLACE FUNCTION ray._local_node_disk_used(id bigint, used_bytes bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
	why text;
BEGIN
	UPDATE ray.node SET disk_used_bytes = coalesce(used_bytes, disk_used_bytes), disk_measured_at = now()
	WHERE node_id = id AND kind = 'worker' AND pid IS NOT NULL AND stop_requested_at IS NULL
	RETURNING * INTO n;
	IF NOT FOUND OR used_bytes IS NULL
		OR used_bytes <= coalesce((n.config ->> 'disk_gb')::bigint, 2000) * 1073741824 THEN
		RETURN;
	END IF;
	why := format('its disk use of %s GB is over the %s GB of its worker group (disk_gb)',
				  round(used_bytes / 1073741824.0, 1), n.config ->> 'disk_gb');
	PERFORM ray._stop_node(id, why);
	UPDATE ray.resource_group SET last_error = format('%s: %s', ray._node_label(n), why)
	WHERE name = n.resource_group;
END
$$;
COMMENT ON FUNCTION ray._local_node_disk_used(bigint, bigint) IS
'Record what a worker node''s run directory takes on disk; replace the node if it is over its worker group''s disk_gb.';

/*
 * A node's process ended without being asked to.  It is started again after
 * a backoff that grows with failures in a row; a group whose head keeps
 * failing becomes FAILED, with the reason, and is still retried.  A head
 * without Redis loses the cluster's state, so its workers restart with it.
 */
CREATE OR REPLACE FUNCTION ray._local_node_exited(id bigint, why text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
	rg ray.resource_group;
	w ray.node;
	failures integer;
	delay integer;
BEGIN
	SELECT * INTO n FROM ray.node WHERE node_id = id FOR UPDATE;
	IF NOT FOUND OR n.pid IS NULL THEN
		RETURN;
	END IF;
	-- not waited for: this node's exit is recorded again next round, and other nodes go on
	SELECT * INTO rg FROM ray.resource_group WHERE name = n.resource_group FOR NO KEY UPDATE NOWAIT;
	-- a node that came up (Ray reported it, or it ran for a minute) had
	-- succeeded: its failures in a row start again
	failures := CASE WHEN n.answered_at IS NOT NULL OR n.ray_state = 'ALIVE'
					   OR n.started_at < now() - interval '60 seconds' THEN 1
				ELSE n.start_failures + 1 END;
	delay := least(60, (2 ^ least(failures - 1, 6))::integer) - 1;
	PERFORM ray._node_life_ended(id, ray._node_end_time(n));
	UPDATE ray.node SET pid = NULL, last_exit = why, start_failures = failures,
		next_start_at = now() + make_interval(secs => delay),
		answered_at = NULL, ray_state = 'DEAD'
	WHERE node_id = id;
	PERFORM ray._group_note(n.resource_group,
		format('%s exited: %s; starting it again%s', ray._node_label(n), why,
			   CASE WHEN delay > 0 THEN format(' in %s s', delay) ELSE '' END));
	IF n.kind = 'worker' OR rg.delete_requested_at IS NOT NULL THEN
		RETURN;
	END IF;
	UPDATE ray.resource_group SET unreachable_since = coalesce(unreachable_since, now()),
		last_error = format('%s exited: %s', ray._node_label(n), why)
	WHERE name = n.resource_group;
	IF n.kind = 'head' AND NOT coalesce((n.config ->> 'ha')::boolean, false) THEN
		FOR w IN SELECT * FROM ray.node WHERE resource_group = n.resource_group AND kind = 'worker'
				 AND stop_requested_at IS NULL LOOP
			PERFORM ray._stop_node(w.node_id, 'the head restarts without HA, so the cluster starts anew', true);
		END LOOP;
	END IF;
	-- Job supervisors live on the head: its runs died with it.  Even with
	-- HA, Ray keeps listing them as running until its job manager is asked
	-- to act, so they are given up on now (and stopped should they show up
	-- again) and requeued as new attempts.
	IF n.kind = 'head' THEN
		PERFORM ray._forget_group_runs(n.resource_group,
			format('the head node of resource group "%s" died (%s)', n.resource_group, why));
	END IF;
	IF failures >= 5 AND rg.state <> 'FAILED' THEN
		PERFORM ray._group_transition(n.resource_group, 'FAILED',
			format('%s failed %s times in a row: %s', ray._node_label(n), failures, why), 'pg_ray worker');
		UPDATE ray.resource_group SET last_error = format('%s failed %s times in a row: %s',
			ray._node_label(n), failures, why) WHERE name = n.resource_group;
	ELSIF rg.state IN ('READY', 'UPDATING') THEN
		PERFORM ray._group_transition(n.resource_group, 'DEGRADED',
			format('%s exited: %s', ray._node_label(n), why), 'pg_ray worker');
		UPDATE ray.resource_group SET last_error = format('%s exited: %s', ray._node_label(n), why)
		WHERE name = n.resource_group;
	END IF;
END
$$;
COMMENT ON FUNCTION ray._local_node_exited(bigint, text) IS
'A node''s process ended unasked: record why, schedule its restart with backoff, degrade or fail its group.';

/*
 * The processes of a node asked to stop are all gone: start it again with
 * its new config, or remove its slot.
 */
CREATE OR REPLACE FUNCTION ray._local_node_gone(id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
	desired jsonb;
BEGIN
	SELECT * INTO n FROM ray.node WHERE node_id = id FOR UPDATE;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	PERFORM ray._node_life_ended(id, clock_timestamp());
	desired := ray._node_desired_config(n.resource_group, n.kind, n.worker_group);
	IF n.restart_after_stop AND desired IS NOT NULL
		AND (SELECT delete_requested_at FROM ray.resource_group WHERE name = n.resource_group) IS NULL THEN
		UPDATE ray.node SET pid = NULL, stop_requested_at = NULL, stop_reason = NULL,
			restart_after_stop = false, config = desired, next_start_at = now(),
			answered_at = NULL, ray_node_id = NULL, ray_state = NULL, idle_since = NULL, start_failures = 0
		WHERE node_id = id;
		PERFORM ray._group_note(n.resource_group, format('%s stopped; starting it again', ray._node_label(n)));
	ELSE
		DELETE FROM ray.node WHERE node_id = id;
		PERFORM ray._group_note(n.resource_group, format('%s stopped and removed', ray._node_label(n)));
	END IF;
END
$$;
COMMENT ON FUNCTION ray._local_node_gone(bigint) IS
'A stopped node''s processes are gone: restart it with its desired config, or remove it.';

/*
 * A node the worker could not start (its run directory refused, its
 * program missing): why, where the group's users see it (ray.nodes).  The
 * worker tries again after pg_ray.error_retry_seconds, not at once: what
 * refused it (another OS user's directory in its way) lasts.
 */
CREATE OR REPLACE FUNCTION ray._local_node_not_started(id bigint, why text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	UPDATE ray.node
	SET last_exit = why,
		next_start_at = now() + current_setting('pg_ray.error_retry_seconds')::interval
	WHERE node_id = id;
$$;
COMMENT ON FUNCTION ray._local_node_not_started(bigint, text) IS
'Record why the worker could not start a node, for ray.nodes.';

/* The ports of a node that never ran are taken by something else: move it. */
CREATE OR REPLACE FUNCTION ray._local_ports_busy(id bigint, port integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n ray.node;
BEGIN
	SELECT * INTO n FROM ray.node WHERE node_id = id FOR UPDATE;
	IF n.started_at IS NULL THEN
		UPDATE ray.node SET port_base = ray._allocate_port_base(n.port_base) WHERE node_id = id
		RETURNING * INTO n;
		PERFORM ray._group_note(n.resource_group,
			format('port %s is in use by another program; %s moves to ports %s-%s',
				   port, ray._node_label(n), n.port_base, n.port_base + 63));
	ELSE
		-- a node that ran keeps its ports (workers find the head by them)
		UPDATE ray.node SET next_start_at = now() + interval '2 seconds',
			last_exit = format('port %s is still in use; waiting for it', port)
		WHERE node_id = id;
	END IF;
END
$$;
COMMENT ON FUNCTION ray._local_ports_busy(bigint, integer) IS
'A port of a node is taken: move a never-started node to other ports; a node that ran waits for its own.';
