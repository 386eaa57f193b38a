/*
 * sql/install/seed.sql
 *		The built-in node specs; their insert wakes a worker that waits
 *		for the extension.
 *
 * This file runs once, in a fresh install (the install script); an update
 * script changes what it made with statements of its own in sql/updates/.
 *
 * Copyright (c) 2026, pg_ray developers
 */

INSERT INTO ray.node_spec (name, resource_type, num_cpus, memory_mb, num_gpus, gpu_model, cpu_units, description, builtin)
VALUES
	('small', 'CPU', 1, 4096, 0, NULL, 1, '1 CPU, 4 GiB', true),
	('m.xlarge', 'CPU', 4, 32768, 0, NULL, 4, '4 CPUs, 32 GiB', true),
	('m.2xlarge', 'CPU', 8, 65536, 0, NULL, 8, '8 CPUs, 64 GiB', true),
	('gpu.small', 'GPU', 4, 16384, 1, 'any', 4, '4 CPUs, 16 GiB, 1 GPU', true);
