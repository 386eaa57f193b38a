-- pgTAP: the worker feeds Ray at the pace Ray takes jobs.  A group has at
-- most 50 jobs in SUBMITTING at once; the rest wait in QUEUED, in order
-- (found by bench/load.py, where thousands in flight exhausted the
-- worker's descriptors).
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pg_ray;
SELECT plan(5);

SELECT ray.create_resource_group('tap-burst');
SELECT ray.create_resource_group('tap-other');
-- as if the worker had found them ready
UPDATE ray.resource_group SET state = 'READY' WHERE name IN ('tap-burst', 'tap-other');
SELECT count(ray.submit_job('tap-burst', 'true')) FROM generate_series(1, 120);
SELECT count(ray.submit_job('tap-other', 'true')) FROM generate_series(1, 3);

SELECT ray._begin_attempts();
SELECT is((SELECT count(*)::integer FROM ray.job WHERE resource_group = 'tap-burst' AND state = 'SUBMITTING'), 50,
		  'a burst of 120 jobs: 50 begin');
SELECT is((SELECT max(job_id) FILTER (WHERE state = 'SUBMITTING') < min(job_id) FILTER (WHERE state = 'QUEUED')
		   FROM ray.job WHERE resource_group = 'tap-burst'), true, 'the first 50, in order');
SELECT is((SELECT count(*)::integer FROM ray.job WHERE resource_group = 'tap-other' AND state = 'SUBMITTING'), 3,
		  'another group is not held back by the burst');
SELECT ray._begin_attempts();
SELECT is((SELECT count(*)::integer FROM ray.job WHERE resource_group = 'tap-burst' AND state = 'SUBMITTING'), 50,
		  'no more begin while 50 are being submitted');
SELECT count(ray._job_transition(job_id, 'PENDING', 'test: Ray took it', 'test'))
FROM (SELECT job_id FROM ray.job WHERE resource_group = 'tap-burst' AND state = 'SUBMITTING'
	  ORDER BY job_id LIMIT 20) j;
SELECT ray._begin_attempts();
SELECT is((SELECT count(*)::integer FROM ray.job WHERE resource_group = 'tap-burst' AND state = 'SUBMITTING'), 50,
		  'as Ray takes 20, 20 more begin');

SELECT * FROM finish();
ROLLBACK;
