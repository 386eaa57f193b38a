/*
 * sql/metrics.sql
 *		Where Prometheus finds the metrics of local Ray nodes
 *		(docs/operations.md, "Monitoring").
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/*
 * The Prometheus file_sd targets of the running nodes of local groups (a
 * head's or a worker's metrics export port: the sixth port of its block,
 * on loopback), one target each, labelled so that a dashboard can sum a
 * group's or a worker group's nodes.  The worker writes it to
 * pg_ray.metrics_targets_file (src/metrics_targets.c) when it changes, so
 * it is ordered and formatted the same way each time.
 */
CREATE OR REPLACE FUNCTION ray._metrics_targets()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(jsonb_pretty(jsonb_agg(t ORDER BY n.node_id)), '[]') || E'\n'
	FROM ray.node n
	CROSS JOIN LATERAL (
		SELECT jsonb_build_object(
			'targets', jsonb_build_array(format('127.0.0.1:%s', n.port_base + 5)),
			'labels', jsonb_strip_nulls(jsonb_build_object(
				'resource_group', n.resource_group,
				'node_kind', n.kind,
				'worker_group', n.worker_group,
				'pg_ray_node', n.node_id::text))) AS t) x
	WHERE n.kind IN ('head', 'worker') AND n.pid IS NOT NULL AND n.stop_requested_at IS NULL
$$;
COMMENT ON FUNCTION ray._metrics_targets() IS
'The Prometheus file_sd targets of the running local Ray nodes (their metrics export ports), for pg_ray.metrics_targets_file.';
