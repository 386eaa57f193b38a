/*
 * sql/cluster_status.sql
 *		What Ray reports of a cluster's nodes and demand, and the
 *		autoscaler that follows it.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/*
 * What Ray's node state API (GET /api/v0/nodes?detail=1) says about a local
 * group, or why it could not be asked.  Nodes are matched to their slots by
 * the pgray-node label they were started with.  The group becomes READY once
 * its head answers, every worker group has its minimum of live workers and
 * no node waits to restart with a new spec; it is UPDATING while a change is
 * rolled out and DEGRADED while a worker group is short of its minimum.
 * Returns how many milliseconds until the group is to be observed again.
 */
CREATE OR REPLACE FUNCTION ray._apply_local_nodes(group_name text, nodes jsonb, error text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group;
	head ray.node;
	short text;
	converged boolean;
	alive integer;
	fast integer := 500;
	slow integer := (extract(epoch FROM current_setting('pg_ray.observe_interval')::interval) * 1000)::integer;
BEGIN
	-- not waited for (an admin's open change): the answer is set aside and asked for again
	SELECT * INTO rg FROM ray.resource_group WHERE name = group_name AND provider = 'local' FOR NO KEY UPDATE NOWAIT;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	SELECT * INTO head FROM ray.node WHERE resource_group = group_name AND kind = 'head';
	IF error IS NOT NULL THEN
		-- a head that is still coming up does not answer yet: that is no failure
		IF head.answered_at IS NULL AND head.started_at > now() - interval '2 minutes' THEN
			RETURN fast;
		END IF;
		PERFORM ray._apply_group_check(group_name, NULL, error);
		RETURN fast;
	END IF;

	UPDATE ray.node SET answered_at = now() WHERE node_id = head.node_id;
	-- the newest report of each slot (a restarted node leaves a DEAD entry)
	WITH reported AS (
		SELECT DISTINCT ON (o ->> 'label') o
		FROM (SELECT r || jsonb_build_object('label', r #>> '{labels,pgray-node}') AS o
			  FROM jsonb_array_elements(coalesce(nodes #> '{data,result,result}', '[]')) r) x
		WHERE o ->> 'label' ~ '^[0-9]{1,18}$'
		ORDER BY o ->> 'label', o ->> 'state' = 'ALIVE' DESC, (o ->> 'start_time_ms')::bigint DESC
	)
	UPDATE ray.node n SET
		ray_node_id = CASE WHEN n.started_at IS NULL THEN NULL ELSE r.o ->> 'node_id' END,
		ray_state = CASE WHEN n.pid IS NULL THEN 'DEAD' ELSE r.o ->> 'state' END,
		resources_total = r.o -> 'resources_total',
		observed_at = now()
	FROM reported r
	WHERE n.resource_group = group_name AND n.node_id = (r.o ->> 'label')::bigint;
	UPDATE ray.worker_group w SET live_workers = (
		SELECT count(*) FROM ray.node n
		WHERE n.resource_group = w.resource_group AND n.worker_group = w.name
		  AND n.stop_requested_at IS NULL AND n.pid IS NOT NULL AND n.ray_state = 'ALIVE')
	WHERE w.resource_group = group_name;
	IF rg.unreachable_since IS NOT NULL THEN
		PERFORM ray._apply_group_check(group_name, NULL, NULL);
	END IF;
	IF rg.delete_requested_at IS NOT NULL THEN
		RETURN slow;
	END IF;

	SELECT string_agg(format('worker group %s has %s of its %s workers alive', name, live_workers,
							 min_workers), '; ' ORDER BY name)
	INTO short
	FROM ray.worker_group WHERE resource_group = group_name AND live_workers < min_workers;
	SELECT count(*) INTO alive FROM ray.node
	WHERE resource_group = group_name AND kind = 'worker' AND ray_state = 'ALIVE' AND pid IS NOT NULL;
	converged := short IS NULL AND NOT EXISTS (
		SELECT FROM ray.node n WHERE n.resource_group = group_name
		AND ((n.stop_requested_at IS NOT NULL AND n.restart_after_stop)
			 OR (n.kind <> 'redis' AND n.config IS DISTINCT FROM
				 ray._node_desired_config(group_name, n.kind, n.worker_group))));
	IF converged THEN
		UPDATE ray.resource_group SET observed_generation = generation WHERE name = group_name;
		IF rg.state <> 'READY' THEN
			PERFORM ray._group_transition(group_name, 'READY',
				format('the head answers at %s with %s worker node%s alive', rg.dashboard_url, alive,
					   CASE WHEN alive = 1 THEN '' ELSE 's' END), 'pg_ray worker');
		END IF;
		RETURN slow;
	END IF;
	IF rg.state = 'READY' AND rg.observed_generation < rg.generation THEN
		PERFORM ray._group_transition(group_name, 'UPDATING',
			coalesce(short, 'nodes restart with their new spec'), 'pg_ray worker');
	ELSIF rg.state = 'READY' THEN
		PERFORM ray._group_transition(group_name, 'DEGRADED', short, 'pg_ray worker');
		UPDATE ray.resource_group SET last_error = short WHERE name = group_name;
	END IF;
	RETURN fast;
END
$$;
COMMENT ON FUNCTION ray._apply_local_nodes(text, jsonb, text) IS
'Record what Ray''s node state API says of a local group (or why it could not be asked) and set the group''s state; returns the milliseconds until the next look.';

/*
 * Autoscaling on Ray's logical demand, from GET /api/cluster_status: tasks,
 * actors and placement group bundles that wait because no node has room
 * scale their worker group up, by at most pg_ray.scale_up_step nodes per
 * pg_ray.scale_cooldown; nodes that ran nothing for the group's
 * idle_timeout_seconds are stopped, down to min_workers.  Each bundle is
 * demand for exactly one worker group: the one it asks for by its resource
 * (pgray-worker-group:<name>), else the best fit.  A CPU-only bundle is for
 * the CPU worker groups (a GPU group takes it only when no CPU group could),
 * a bundle that asks for GPUs for the GPU groups, so CPU and GPU groups
 * scale independently.  Every decision is an event with its reason.
 */
CREATE OR REPLACE FUNCTION ray._apply_cluster_status(group_name text, status jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group;
	wg record;
	idle_node ray.node;
	report jsonb := status #> '{data,clusterStatus,loadMetricsReport}';
	idle_timeout integer;
	demand jsonb;
	wanted jsonb;
	add integer;
	stopped integer;
BEGIN
	-- not waited for (an admin's open change): the answer is set aside and asked for again
	SELECT * INTO rg FROM ray.resource_group WHERE name = group_name AND provider = 'local' FOR NO KEY UPDATE NOWAIT;
	IF NOT FOUND OR report IS NULL OR rg.delete_requested_at IS NOT NULL
		OR rg.state NOT IN ('READY', 'DEGRADED', 'UPDATING') THEN
		RETURN;
	END IF;
	idle_timeout := coalesce((rg.options ->> 'idle_timeout_seconds')::integer, 60);

	-- what each node uses now; a node is idle when no CPU, GPU or memory is taken
	UPDATE ray.node n SET
		resources_used = u.usage,
		idle_since = CASE WHEN u.busy THEN NULL ELSE coalesce(n.idle_since, now()) END
	FROM (SELECT key AS ray_node_id, value AS usage,
				 EXISTS (SELECT FROM jsonb_each(value) r
						 WHERE r.key IN ('CPU', 'GPU', 'memory')
						   AND (r.value ->> 0)::numeric > 0) AS busy
		  FROM jsonb_each(coalesce(report -> 'usageByNode', '{}'))) u
	WHERE n.resource_group = group_name AND n.ray_node_id = u.ray_node_id;

	-- waiting tasks and actors, and the bundles of waiting placement groups
	SELECT coalesce(jsonb_agg(jsonb_build_object('bundle', x.bundle, 'count', x.count)), '[]')
	INTO demand
	FROM (SELECT d -> 0 AS bundle, (d ->> 1)::integer AS count
		  FROM jsonb_array_elements(coalesce(report -> 'resourceDemand', '[]')) d
		  UNION ALL
		  SELECT b -> 0, (b ->> 1)::integer * (p ->> 1)::integer
		  FROM jsonb_array_elements(coalesce(report -> 'pgDemand', '[]')) p,
			   jsonb_array_elements(coalesce(p #> '{0,bundles}', '[]')) b) x;

	-- each bundle is for one worker group: the one it names (pgray-worker-group:<name>), else
	-- the best fit, as Ray's autoscaler bin-packs: a group of its kind (GPU bundles need GPU
	-- groups; CPU bundles go to GPU groups only where no CPU group could hold them) that can
	-- still grow, with the smallest nodes that hold it
	SELECT coalesce(jsonb_object_agg(a.worker_group, a.nodes), '{}') INTO wanted
	FROM (SELECT pick.name AS worker_group,
				 sum(d.count * greatest(coalesce((d.bundle ->> 'CPU')::numeric, 0) / nullif(pick.num_cpus, 0),
										coalesce((d.bundle ->> 'GPU')::numeric, 0) / nullif(pick.gpus, 0),
										0.0001)) AS nodes
		  FROM jsonb_to_recordset(demand) AS d(bundle jsonb, count integer)
		  CROSS JOIN LATERAL (
			  SELECT w.name, s.num_cpus, ray._worker_node_gpus(w.resource_type, s.num_gpus, w.gpu_distribution_unit) AS gpus
			  FROM ray.worker_group w JOIN ray.node_spec s ON s.name = w.spec
			  WHERE w.resource_group = group_name
				AND coalesce((d.bundle ->> 'CPU')::numeric, 0) <= s.num_cpus
				AND coalesce((d.bundle ->> 'GPU')::numeric, 0) <= ray._worker_node_gpus(w.resource_type, s.num_gpus, w.gpu_distribution_unit)
				AND coalesce((d.bundle ->> 'memory')::numeric, 0) <= s.memory_mb * 1048576.0
				AND NOT EXISTS (SELECT FROM jsonb_object_keys(d.bundle) k
								WHERE k NOT IN ('CPU', 'GPU', 'memory', 'object_store_memory',
												'pgray-worker-group:' || w.name))
			  ORDER BY (coalesce((d.bundle ->> 'GPU')::numeric, 0) > 0) = (w.resource_type = 'GPU') DESC,
					   w.desired_workers < w.max_workers DESC,
					   s.num_cpus, ray._worker_node_gpus(w.resource_type, s.num_gpus, w.gpu_distribution_unit), s.memory_mb, w.name
			  LIMIT 1) pick
		  GROUP BY pick.name) a;

	FOR wg IN
		SELECT w.*, s.num_cpus AS cpus, s.memory_mb, ray._worker_node_gpus(w.resource_type, s.num_gpus, w.gpu_distribution_unit) AS gpus,
			   -- demand this worker group is the one to serve, in nodes' worth
			   coalesce((wanted ->> w.name)::numeric, 0) AS wanted_nodes,
			   (SELECT string_agg(format('%s x%s', d.bundle, d.count), ', ') FROM jsonb_to_recordset(demand) AS d(bundle jsonb, count integer)) AS demand,
			   (SELECT count(*) FROM ray.node nd WHERE nd.resource_group = w.resource_group
				  AND nd.worker_group = w.name AND nd.stop_requested_at IS NULL
				  AND (nd.pid IS NULL OR nd.ray_state IS DISTINCT FROM 'ALIVE')) AS starting
		FROM ray.worker_group w JOIN ray.node_spec s ON s.name = w.spec
		WHERE w.resource_group = group_name
		ORDER BY w.name
		FOR UPDATE OF w
	LOOP
		IF wg.wanted_nodes > 0 THEN
			-- nodes still starting will take the demand first; and a cool-down between steps
			IF wg.starting > 0 OR wg.desired_workers >= wg.max_workers
				OR wg.last_scaled_at > now() - current_setting('pg_ray.scale_cooldown')::interval THEN
				CONTINUE;
			END IF;
			add := least(ceil(wg.wanted_nodes)::integer, wg.max_workers - wg.desired_workers,
						 current_setting('pg_ray.scale_up_step')::integer);
			UPDATE ray.worker_group SET desired_workers = desired_workers + add, last_scaled_at = now()
			WHERE resource_group = group_name AND name = wg.name;
			PERFORM ray._group_note(group_name,
				format('scaling worker group %s up from %s to %s workers: Ray has demand it cannot place (%s)',
					   wg.name, wg.desired_workers, wg.desired_workers + add, wg.demand),
				'pg_ray autoscaler');
			CONTINUE;
		END IF;

		-- no demand for this group: stop what idled too long, down to its minimum
		stopped := 0;
		FOR idle_node IN SELECT * FROM ray.node
				 WHERE resource_group = group_name AND worker_group = wg.name
				   AND stop_requested_at IS NULL AND ray_state = 'ALIVE'
				   AND idle_since < now() - make_interval(secs => idle_timeout)
				 ORDER BY idle_since, node_id DESC
				 LIMIT greatest(wg.desired_workers - wg.min_workers, 0) LOOP
			PERFORM ray._stop_node(idle_node.node_id, format('idle for %s s, longer than the idle timeout of %s s',
				extract(epoch FROM now() - idle_node.idle_since)::integer, idle_timeout));
			stopped := stopped + 1;
		END LOOP;
		IF stopped > 0 THEN
			UPDATE ray.worker_group SET desired_workers = desired_workers - stopped, last_scaled_at = now()
			WHERE resource_group = group_name AND name = wg.name;
			PERFORM ray._group_note(group_name,
				format('scaling worker group %s down from %s to %s workers: %s node%s idle longer than %s s',
					   wg.name, wg.desired_workers, wg.desired_workers - stopped, stopped,
					   CASE WHEN stopped = 1 THEN ' was' ELSE 's were' END, idle_timeout),
				'pg_ray autoscaler');
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION ray._apply_cluster_status(text, jsonb) IS
'Scale the worker groups of a local group on Ray''s pending demand and idle nodes (GET /api/cluster_status), recording each decision.';

/*
 * What "ray status" prints for a group's cluster: its nodes, the resources
 * in use and the demand Ray cannot place yet, as Ray's autoscaler reports
 * them now.  For those who may use the group.
 */
CREATE OR REPLACE FUNCTION ray._cluster_status_impl(resource_group text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rg ray.resource_group := ray._resource_group(_cluster_status_impl.resource_group, 'none');
	conn record;
	report jsonb;
BEGIN
	IF NOT ray._can_use(rg.name, ray._calling_role()) THEN
		RAISE EXCEPTION 'permission denied for resource group "%"', rg.name
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'A ray_admin can grant it with ray.grant_usage().';
	END IF;
	SELECT * INTO conn FROM ray._group_connection(rg.name);
	IF conn.url IS NULL OR (rg.provider = 'local' AND NOT EXISTS (
			SELECT FROM ray.node WHERE node.resource_group = rg.name AND kind = 'head'
			AND pid IS NOT NULL AND answered_at IS NOT NULL)) THEN
		RAISE EXCEPTION 'resource group "%" has no running head to ask', rg.name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('It is %s.', rg.state),
				  HINT = 'Its nodes are in ray.nodes and its history in ray.resource_group_event.';
	END IF;
	BEGIN
		report := ray._http_cluster_status(conn.url, conn.token, conn.ca_file)::jsonb;
	EXCEPTION WHEN invalid_text_representation THEN
		report := NULL;
	END;
	IF jsonb_typeof(report #> '{data,clusterStatus}') IS DISTINCT FROM 'string' THEN
		RAISE EXCEPTION 'the Ray dashboard of resource group "%" sent no cluster status', rg.name
			USING ERRCODE = 'protocol_violation',
				  DETAIL = 'GET /api/cluster_status?format=1 gave no data.clusterStatus text.';
	END IF;
	RETURN report #>> '{data,clusterStatus}';
END
$$;
COMMENT ON FUNCTION ray._cluster_status_impl(text) IS
'The work of ray.cluster_status, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray.cluster_status(resource_group text)
RETURNS text
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray.cluster_status(text) IS
'What "ray status" prints for a resource group''s cluster: nodes, resources in use, pending demand. For those who may use the group.';
