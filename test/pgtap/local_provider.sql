-- pgTAP: the local provider's decisions, without Ray: node slots, command
-- lines, a group that cannot be reconciled, and autoscaling on a report.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pg_ray;
SELECT plan(34);

SELECT ray.create_resource_group('tap-a', 'small', options => '{"object_store_memory_mb": 100, "idle_timeout_seconds": 30}');
SELECT ray.add_worker_group('tap-a', 'cpu', 'CPU', 'small', 1, 3);
SELECT ray.add_worker_group('tap-a', 'gpu', 'GPU', 'gpu.small', 1, 2, gpu_distribution_unit => 0.5);

-- slots and command lines
SELECT lives_ok($$SELECT * FROM ray._local_plan(0)$$, 'the plan runs');
SELECT results_eq($$SELECT kind, coalesce(worker_group, '') FROM ray.node WHERE resource_group = 'tap-a' ORDER BY node_id$$,
				  $$VALUES ('head', ''), ('worker', 'cpu'), ('worker', 'gpu')$$,
				  'a head and min_workers workers per worker group get slots');
SELECT is((SELECT count(DISTINCT port_base)::integer FROM ray.node WHERE resource_group = 'tap-a'), 3,
		  'each node has a port block of its own');
SELECT is((SELECT action FROM ray._local_plan(0) p JOIN ray.node n USING (node_id)
		   WHERE n.resource_group = 'tap-a' AND n.kind = 'head'),
		  'start', 'the head is to be started');
SELECT is((SELECT action FROM ray._local_plan(0) p JOIN ray.node n USING (node_id)
		   WHERE n.resource_group = 'tap-a' AND n.kind = 'worker' AND n.worker_group = 'cpu'),
		  'wait', 'a worker waits until its head runs');

SELECT ok((SELECT argv @> ARRAY['start', '--block', '--head', '--num-cpus=0', '--num-gpus=0',
								'--dashboard-host=127.0.0.1', '--object-store-memory=104857600']
				   AND argv @> ARRAY['--port=' || n.port_base, '--dashboard-port=' || (n.port_base + 1)]
		   FROM ray.node n, ray._local_node_command(n.node_id, 0) WHERE n.resource_group = 'tap-a' AND n.kind = 'head'),
		  'the head schedules and runs nothing, with its dashboard on loopback and its own ports');
SELECT is((SELECT argv[1:2] FROM ray.node n, ray._local_node_command(n.node_id, 0)
		   WHERE n.resource_group = 'tap-a' AND n.kind = 'head'),
		  ARRAY[regexp_replace(current_setting('pg_ray.ray_executable'), 'ray$', 'python3'),
				ray._node_starter()],
		  'nodes start through pg_ray''s node starter, by the python3 beside the ray command');
SELECT ok(ray._node_starter() LIKE '%/extension/pg_ray/pg_ray_node.py', 'the starter is in the extension''s share directory');
SELECT ok((SELECT env @> ARRAY['RAY_AUTH_MODE=token', 'RAY_AUTH_TOKEN=' || s.token]
				   AND NOT EXISTS (SELECT FROM unnest(argv) a WHERE a LIKE '%' || s.token || '%')
		   FROM ray.node n, ray._local_node_command(n.node_id, 0), ray.resource_group_secret s
		   WHERE n.resource_group = 'tap-a' AND n.kind = 'head' AND s.resource_group = 'tap-a'),
		  'the token travels in the environment, never on the command line');
SELECT ok((SELECT argv @> ARRAY['--address=127.0.0.1:' || h.port_base, '--labels=pgray-node=' || w.node_id || ',pgray-worker-group=cpu',
								'--num-cpus=1', '--num-gpus=0']
		   FROM ray.node w, ray.node h, ray._local_node_command(w.node_id, 0)
		   WHERE w.resource_group = 'tap-a' AND w.worker_group = 'cpu' AND h.resource_group = 'tap-a' AND h.kind = 'head'),
		  'a worker joins its head, labelled with its slot');
SELECT ok((SELECT argv @> ARRAY['--num-gpus=1'] AND NOT EXISTS (SELECT FROM unnest(env) e WHERE e LIKE 'CUDA_VISIBLE_DEVICES=%')
		   FROM ray.node w, ray._local_node_command(w.node_id, 0)
		   WHERE w.resource_group = 'tap-a' AND w.worker_group = 'gpu'),
		  'a GPU worker on a host without GPUs has logical GPUs');
SELECT ok((SELECT env @> ARRAY['CUDA_VISIBLE_DEVICES=0']
		   FROM ray.node w, ray._local_node_command(w.node_id, 2)
		   WHERE w.resource_group = 'tap-a' AND w.worker_group = 'gpu'),
		  'on a host with GPUs, the first GPU worker gets the first GPU');

-- a GPU worker group with a unit: one GPU in Ray per node, the same number everywhere
SELECT is(ray._worker_node_gpus('GPU', 4, 0.5), 1, 'a node of a group with a GPU unit has one GPU in Ray');
SELECT is(ray._worker_node_gpus('GPU', 1.5, NULL), 2, 'without a unit, its spec''s GPUs rounded up');
SELECT is((SELECT gpus FROM ray._group_capacity('tap-a')), 2::numeric,
		  'admission counts the GPU group at max_workers times one GPU');

-- disk: a worker's use is recorded; over its disk_gb, the node is replaced with an empty disk
UPDATE ray.node SET pid = 999999, started_at = now() WHERE resource_group = 'tap-a' AND worker_group = 'cpu';
SELECT ok((SELECT measure_disk FROM ray._local_plan(0) p JOIN ray.node n USING (node_id)
		   WHERE n.resource_group = 'tap-a' AND n.worker_group = 'cpu'),
		  'a running worker never measured is to be measured');
SELECT ray._local_node_disk_used(node_id, 5 * 1073741824::bigint) FROM ray.node
WHERE resource_group = 'tap-a' AND worker_group = 'cpu';
SELECT results_eq($$SELECT disk_gb, disk_used_gb, stop_reason IS NULL FROM ray.nodes
					WHERE resource_group = 'tap-a' AND worker_group = 'cpu'$$,
				  $$VALUES (100, 5.000, true)$$, 'ray.nodes shows the use against disk_gb; under it, nothing happens');
SELECT ray._local_node_disk_used(node_id, NULL) FROM ray.node
WHERE resource_group = 'tap-a' AND worker_group = 'cpu';
SELECT results_eq($$SELECT disk_used_gb, stop_reason IS NULL, NOT measure_disk FROM ray.nodes n
					JOIN ray._local_plan(0) p USING (node_id)
					WHERE n.resource_group = 'tap-a' AND n.worker_group = 'cpu'$$,
				  $$VALUES (5.000, true, true)$$,
				  'a measurement that failed keeps the last number, and waits for the interval like any other');
SELECT ray._local_node_disk_used(node_id, 101 * 1073741824::bigint) FROM ray.node
WHERE resource_group = 'tap-a' AND worker_group = 'cpu';
SELECT results_eq($$SELECT stop_reason, restart_after_stop FROM ray.node
					WHERE resource_group = 'tap-a' AND worker_group = 'cpu'$$,
				  $$VALUES ('its disk use of 101.0 GB is over the 100 GB of its worker group (disk_gb)', false)$$,
				  'over it, the node is stopped, to be removed');
SELECT ray._local_reconcile_nodes();
SELECT is((SELECT count(*)::integer FROM ray.node WHERE resource_group = 'tap-a' AND worker_group = 'cpu'
		   AND stop_requested_at IS NULL), 1, 'and the worker group gets a new node in its place');
DELETE FROM ray.node WHERE resource_group = 'tap-a' AND worker_group = 'cpu' AND stop_requested_at IS NULL;
UPDATE ray.node SET pid = NULL, started_at = NULL, stop_requested_at = NULL, stop_reason = NULL,
	restart_after_stop = false, disk_used_bytes = NULL, disk_measured_at = NULL
WHERE resource_group = 'tap-a' AND worker_group = 'cpu';

-- idempotence: a second plan changes nothing
SELECT is((SELECT count(*)::integer FROM ray._local_plan(0) p JOIN ray.node USING (node_id)
		   WHERE resource_group = 'tap-a'), 3, 'planning again adds no slot');

-- a group that cannot get ports records why, and the others go on
SELECT ray.create_resource_group('tap-b');
INSERT INTO ray.node (resource_group, kind, config, port_base, run_dir)
SELECT 'tap-a', 'redis', '{}', b, '/nonexistent'
FROM generate_series(current_setting('pg_ray.port_range_start')::integer,
					 current_setting('pg_ray.port_range_end')::integer - 63, 64) b
WHERE NOT EXISTS (SELECT FROM ray.node n WHERE n.port_base = b);
SELECT lives_ok($$SELECT * FROM ray._local_plan(0)$$, 'the plan runs although one group fails');
SELECT matches((SELECT last_error FROM ray.resource_group WHERE name = 'tap-b'),
			   '^could not manage its nodes: no free block of ports left between \d+ and \d+$',
			   'the failing group says why');
SELECT is((SELECT count(*)::integer FROM ray.node WHERE resource_group = 'tap-a' AND kind = 'redis'
		   AND stop_requested_at IS NULL), 0, 'the other group was reconciled all the same');
SELECT lives_ok($$SELECT * FROM ray._local_plan(0)$$, 'and again');
SELECT is((SELECT count(*)::integer FROM ray.resource_group_event WHERE resource_group = 'tap-b'
		   AND message LIKE 'could not manage its nodes%'), 1, 'the same failure is recorded once');
DELETE FROM ray.node WHERE resource_group = 'tap-a' AND kind = 'redis';

-- autoscaling on Ray's report
UPDATE ray.node SET pid = 1, started_at = now(), ray_state = 'ALIVE', ray_node_id = 'aa' || node_id
WHERE resource_group = 'tap-a';
SELECT ray._group_transition('tap-a', 'READY', 'test', 'tap');
SELECT ray._apply_cluster_status('tap-a', '{"data": {"clusterStatus": {"loadMetricsReport": {
	"resourceDemand": [[{"CPU": 1.0}, 2]], "pgDemand": [], "usageByNode": {}}}}}');
SELECT results_eq($$SELECT name, desired_workers FROM ray.worker_group WHERE resource_group = 'tap-a' ORDER BY name$$,
				  $$VALUES ('cpu', 2), ('gpu', 1)$$,
				  'CPU demand that cannot be placed grows the CPU group by one step, and only it');
SELECT matches((SELECT message FROM ray.resource_group_event WHERE resource_group = 'tap-a'
				AND actor = 'pg_ray autoscaler' ORDER BY event_id DESC LIMIT 1),
			   '^scaling worker group cpu up from 1 to 2 workers: Ray has demand it cannot place \(\{"CPU": 1\.0\} x2\)$',
			   'the decision is recorded with its reason');
SELECT ray._apply_cluster_status('tap-a', '{"data": {"clusterStatus": {"loadMetricsReport": {
	"resourceDemand": [[{"CPU": 1.0}, 2]], "usageByNode": {}}}}}');
SELECT is((SELECT desired_workers FROM ray.worker_group WHERE resource_group = 'tap-a' AND name = 'cpu'), 2,
		  'no second step while a node is starting and within the cool-down');
SELECT ray._apply_cluster_status('tap-a', '{"data": {"clusterStatus": {"loadMetricsReport": {
	"resourceDemand": [[{"GPU": 0.5, "CPU": 1.0}, 1]], "usageByNode": {}}}}}');
SELECT is((SELECT desired_workers FROM ray.worker_group WHERE resource_group = 'tap-a' AND name = 'gpu'), 2,
		  'GPU demand grows the GPU group');
SELECT ray._apply_cluster_status('tap-a', '{"data": {"clusterStatus": {"loadMetricsReport": {
	"resourceDemand": [[{"CPU": 64.0}, 1]], "usageByNode": {}}}}}');
SELECT is((SELECT sum(desired_workers)::integer FROM ray.worker_group WHERE resource_group = 'tap-a'), 4,
		  'demand no node could hold grows nothing');

-- idle nodes go, busy ones stay, never below min_workers
SELECT * FROM ray._local_plan(0);
UPDATE ray.node SET pid = 1, started_at = now(), ray_state = 'ALIVE', ray_node_id = 'aa' || node_id,
	idle_since = now() - interval '1 hour'
WHERE resource_group = 'tap-a';
UPDATE ray.worker_group SET last_scaled_at = NULL WHERE resource_group = 'tap-a';
SELECT ray._apply_cluster_status('tap-a', format('{"data": {"clusterStatus": {"loadMetricsReport": {
	"resourceDemand": [], "usageByNode": {"%s": {"CPU": [1.0, 1.0]}, "%s": {"CPU": [0.0, 1.0]}}}}}}',
	(SELECT ray_node_id FROM ray.node WHERE resource_group = 'tap-a' AND worker_group = 'cpu' ORDER BY node_id LIMIT 1),
	(SELECT ray_node_id FROM ray.node WHERE resource_group = 'tap-a' AND worker_group = 'cpu' ORDER BY node_id DESC LIMIT 1))::jsonb);
SELECT is((SELECT desired_workers FROM ray.worker_group WHERE resource_group = 'tap-a' AND name = 'cpu'), 1,
		  'an idle CPU worker beyond the minimum is let go');
SELECT is((SELECT count(*)::integer FROM ray.node WHERE resource_group = 'tap-a' AND worker_group = 'cpu'
		   AND stop_requested_at IS NOT NULL
		   AND stop_reason LIKE 'idle for % s, longer than the idle timeout of 30 s'
		   AND node_id = (SELECT max(node_id) FROM ray.node WHERE resource_group = 'tap-a' AND worker_group = 'cpu')), 1,
		  'the idle one, not the busy one, with the reason');
SELECT is((SELECT desired_workers FROM ray.worker_group WHERE resource_group = 'tap-a' AND name = 'gpu'), 1,
		  'the GPU group goes back to its minimum too');

SELECT * FROM finish();
ROLLBACK;
