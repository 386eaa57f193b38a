/*
 * sql/batch_plan.sql
 *		Batch inference: options, the plan, and queueing a run.
 *
 * This file runs in the install script and again in every update script,
 * so everything in it can be run again: CREATE OR REPLACE, GRANT, REVOKE.
 *
 * Copyright (c) 2026, pg_ray developers
 */

/* Types a model of kind sklearn or onnx can take as input. */
CREATE OR REPLACE FUNCTION ray._is_numeric_type(type_name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT type_name IN ('smallint', 'integer', 'bigint', 'real', 'double precision', 'boolean')
		OR type_name LIKE 'numeric%'
$$;
COMMENT ON FUNCTION ray._is_numeric_type(text) IS
'True for the column types that become numbers in a model''s input matrix.';

/* The options of a batch inference run, checked, with their defaults. */
CREATE OR REPLACE FUNCTION ray._batch_options(options jsonb, model_kind text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	known constant text[] := ARRAY['batch_size', 'concurrency', 'num_cpus', 'num_gpus', 'output',
								   'output_type', 'partitions', 'shard_key', 'max_attempts',
								   'read_concurrency', 'write_concurrency', 'missing_inputs', 'worker_group'];
	io_option text;
	unknown text;
	result jsonb;
BEGIN
	IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
		RAISE EXCEPTION 'batch inference options must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example: {"batch_size": 4096, "concurrency": 2}.';
	END IF;
	SELECT k INTO unknown FROM jsonb_object_keys(options) k WHERE k <> ALL (known) LIMIT 1;
	IF unknown IS NOT NULL THEN
		RAISE EXCEPTION 'unknown batch inference option "%"', unknown
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Options: ' || array_to_string(known, ', ') || '.';
	END IF;
	-- concurrency NULL: up to 2 replicas, as many as the group holds (decided at submission)
	result := jsonb_build_object('batch_size', 4096, 'concurrency', NULL, 'num_cpus', 1, 'num_gpus', 0,
								 'output', 'probability', 'partitions', NULL, 'max_attempts', 3)
		|| options;
	IF jsonb_typeof(result -> 'batch_size') <> 'number' OR (result ->> 'batch_size')::numeric NOT BETWEEN 1 AND 10000000
		OR (result ->> 'batch_size')::numeric % 1 <> 0 THEN
		RAISE EXCEPTION 'batch_size must be a whole number from 1 to 10000000'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT (jsonb_typeof(result -> 'concurrency') = 'null'
			OR (jsonb_typeof(result -> 'concurrency') = 'number'
			 AND (result ->> 'concurrency')::numeric BETWEEN 1 AND 1000
			 AND (result ->> 'concurrency')::numeric % 1 = 0)
			OR (jsonb_typeof(result -> 'concurrency') = 'array' AND jsonb_array_length(result -> 'concurrency') = 2
				AND jsonb_typeof(result -> 'concurrency' -> 0) = 'number' AND jsonb_typeof(result -> 'concurrency' -> 1) = 'number'
				AND (result -> 'concurrency' ->> 0)::numeric >= 1
				AND (result -> 'concurrency' ->> 1)::numeric BETWEEN (result -> 'concurrency' ->> 0)::numeric AND 1000)) THEN
		RAISE EXCEPTION 'concurrency must be a number of model replicas from 1 to 1000, or [min, max]'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('It is %s.', result -> 'concurrency');
	END IF;
	IF jsonb_typeof(result -> 'num_cpus') <> 'number' OR (result ->> 'num_cpus')::numeric < 0 THEN
		RAISE EXCEPTION 'num_cpus must be a number of CPUs per model replica, 0 or more'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF jsonb_typeof(result -> 'num_gpus') <> 'number' OR (result ->> 'num_gpus')::numeric < 0 THEN
		RAISE EXCEPTION 'num_gpus must be a number of GPUs per model replica, 0 or more'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF result ->> 'output' IS NULL OR result ->> 'output' NOT IN ('probability', 'label') THEN
		RAISE EXCEPTION 'output must be "probability" or "label"'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A classifier''s prediction is the probability of its positive class, or with "label" its predicted class.';
	END IF;
	IF result ? 'output_type' AND (jsonb_typeof(result -> 'output_type') <> 'string'
								   OR to_regtype(result ->> 'output_type') IS NULL) THEN
		RAISE EXCEPTION 'output_type "%" is not a type', result ->> 'output_type'
			USING ERRCODE = 'undefined_object',
				  HINT = 'Name a type such as double precision, integer or text.';
	END IF;
	IF jsonb_typeof(result -> 'partitions') NOT IN ('null', 'number')
		OR (result ->> 'partitions')::numeric NOT BETWEEN 1 AND 10000
		OR (result ->> 'partitions')::numeric % 1 <> 0 THEN
		RAISE EXCEPTION 'partitions must be a whole number from 1 to 10000'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF result ? 'shard_key' AND (jsonb_typeof(result -> 'shard_key') <> 'string' OR result ->> 'shard_key' !~ '\S') THEN
		RAISE EXCEPTION 'shard_key must be an expression over the source''s columns'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example: {"shard_key": "user_id", "partitions": 8}.';
	END IF;
	IF jsonb_typeof(result -> 'max_attempts') <> 'number' OR (result ->> 'max_attempts')::numeric NOT BETWEEN 1 AND 100
		OR (result ->> 'max_attempts')::numeric % 1 <> 0 THEN
		RAISE EXCEPTION 'max_attempts must be a whole number from 1 to 100'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOREACH io_option IN ARRAY ARRAY['read_concurrency', 'write_concurrency'] LOOP
		IF result ? io_option AND (jsonb_typeof(result -> io_option) <> 'number'
								   OR (result ->> io_option)::numeric NOT BETWEEN 1 AND 64
								   OR (result ->> io_option)::numeric % 1 <> 0) THEN
			RAISE EXCEPTION '% must be a whole number from 1 to 64', io_option
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'It is how many read or write tasks, each with a connection to PostgreSQL, may run at once.';
		END IF;
	END LOOP;
	IF result ? 'missing_inputs' AND (jsonb_typeof(result -> 'missing_inputs') <> 'string'
									  OR result ->> 'missing_inputs' NOT IN ('model', 'null')) THEN
		RAISE EXCEPTION 'missing_inputs must be "model" or "null"'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Rows with a NULL, NaN or infinite input go to the model as they are ("model", the default), or are scored as NULL without it ("null").';
	END IF;
	IF result ? 'worker_group' AND (jsonb_typeof(result -> 'worker_group') <> 'string'
									OR result ->> 'worker_group' !~ '^[a-z][a-z0-9_-]{0,47}$') THEN
		RAISE EXCEPTION 'worker_group must be the name of a worker group of the resource group'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The model replicas run on that worker group''s nodes alone.';
	END IF;
	IF model_kind = 'vllm' AND (result ->> 'num_gpus')::numeric = 0 THEN
		result := result || '{"num_gpus": 1}';
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION ray._batch_options(jsonb, text) IS
'Check the options of a batch inference run and fill in their defaults.';

/*
 * The CREATE TABLE of a target the run creates: the key columns NOT NULL in
 * the key's order, the output column, and for overwrite and upsert the key
 * as primary key.  Built from names quoted with %I and types written by
 * format_type; the planner shows it, publishing runs the one rebuilt from
 * the stored plan's checked parts (ray._canonical_plan), never stored text.
 */
CREATE OR REPLACE FUNCTION ray._target_create_statement(target_schema text, target_name text, columns jsonb,
														key text[], out_name text, out_type text, mode text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT format('CREATE TABLE %I.%I (%s, %I %s%s)', target_schema, target_name,
		(SELECT string_agg(format('%I %s NOT NULL', e ->> 'name', e ->> 'type'), ', '
						   ORDER BY array_position(key, e ->> 'name'))
		 FROM jsonb_array_elements(columns) e WHERE e ->> 'name' = ANY (key)),
		out_name, out_type,
		CASE WHEN mode IN ('overwrite', 'upsert')
			 THEN format(', PRIMARY KEY (%s)', (SELECT string_agg(quote_ident(k), ', ') FROM unnest(key) k))
			 ELSE '' END)
$$;
COMMENT ON FUNCTION ray._target_create_statement(text, text, jsonb, text[], text, text, text) IS
'The CREATE TABLE of a batch inference target the run creates, from its checked parts.';

/*
 * A list of column names in a stored plan: a JSON array of distinct,
 * non-empty strings that fit in a name.
 */
CREATE OR REPLACE FUNCTION ray._plan_names(names jsonb, what text)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result text[];
BEGIN
	IF jsonb_typeof(names) IS DISTINCT FROM 'array' OR jsonb_array_length(names) = 0
		OR EXISTS (SELECT FROM jsonb_array_elements(names) e
				   WHERE jsonb_typeof(e) <> 'string' OR e #>> '{}' !~ '\S' OR octet_length(e #>> '{}') > 63) THEN
		RAISE EXCEPTION 'invalid batch inference plan: % must be a list of column names', what
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	result := ARRAY(SELECT jsonb_array_elements_text(names));
	IF cardinality(result) <> (SELECT count(DISTINCT n) FROM unnest(result) n) THEN
		RAISE EXCEPTION 'invalid batch inference plan: % names a column twice', what
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION ray._plan_names(jsonb, text) IS
'The column names of a stored batch inference plan''s list, or an error unless they are distinct names.';

/*
 * A stored plan rebuilt from parts that are checked one by one: the names
 * of columns, key, inputs and output; every type through
 * ray._canonical_type, which accepts a type name and nothing else; the
 * target as schema.table, both quoted again; the mode; the CREATE TABLE
 * of a target the run creates, rebuilt; the options checked again
 * (ray._batch_options) for the model's kind as the catalog has it.  The worker builds every statement
 * it runs for a run (the staging table, publishing) from these parts only,
 * so a plan written by anyone but the planner can at worst fail its own
 * job.  A plan the planner made comes back unchanged (its types are
 * written with their schema unless built in, ray._format_type, so they
 * read the same under the worker's search_path as under the caller's).
 */
CREATE OR REPLACE FUNCTION ray._canonical_plan(plan jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	key text[];
	inputs text[];
	column_names text[];
	columns jsonb;
	out_name text;
	out_type text;
	target_parts text[];
	target jsonb;
	mode text;
	options jsonb;
BEGIN
	IF jsonb_typeof(plan) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'invalid batch inference plan: not a JSON object'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	key := ray._plan_names(plan -> 'key', 'key');
	inputs := ray._plan_names(plan -> 'inputs', 'inputs');
	IF jsonb_typeof(plan -> 'columns') IS DISTINCT FROM 'array' OR EXISTS (
		SELECT FROM jsonb_array_elements(plan -> 'columns') e
		WHERE jsonb_typeof(e) <> 'object' OR jsonb_typeof(e -> 'type') IS DISTINCT FROM 'string') THEN
		RAISE EXCEPTION 'invalid batch inference plan: columns must be a list of names and types'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	column_names := ray._plan_names((SELECT coalesce(jsonb_agg(e -> 'name'), '[]') FROM jsonb_array_elements(plan -> 'columns') e),
									'columns');
	IF NOT column_names @> (key || inputs) THEN
		RAISE EXCEPTION 'invalid batch inference plan: the key and the inputs must be among its columns'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	columns := (SELECT jsonb_agg(jsonb_build_object('name', e ->> 'name', 'type', ray._canonical_type(e ->> 'type'))
								 ORDER BY ord)
				FROM jsonb_array_elements(plan -> 'columns') WITH ORDINALITY c(e, ord));
	out_name := (ray._plan_names(jsonb_build_array(plan -> 'output' -> 'name'), 'output'))[1];
	IF out_name = ANY (key) OR jsonb_typeof(plan -> 'output' -> 'type') IS DISTINCT FROM 'string' THEN
		RAISE EXCEPTION 'invalid batch inference plan: the output must be a column of its own with a type'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	out_type := ray._canonical_type(plan -> 'output' ->> 'type');
	mode := plan ->> 'mode';
	IF mode IS NULL OR mode NOT IN ('append', 'overwrite', 'upsert') THEN
		RAISE EXCEPTION 'invalid batch inference plan: unknown mode "%"', coalesce(mode, '')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF jsonb_typeof(plan -> 'target' -> 'name') IS DISTINCT FROM 'string' THEN
		RAISE EXCEPTION 'invalid batch inference plan: the target has no name'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	target_parts := parse_ident(plan -> 'target' ->> 'name');
	-- longer names would be cut by CREATE TABLE: two names, one table
	IF cardinality(target_parts) <> 2 OR octet_length(target_parts[1]) > 63 OR octet_length(target_parts[2]) > 63 THEN
		RAISE EXCEPTION 'invalid batch inference plan: the target must be named schema.table'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	target := jsonb_build_object('name', format('%I.%I', target_parts[1], target_parts[2]),
								 'exists', coalesce(plan -> 'target' -> 'exists', 'false'::jsonb) = 'true'::jsonb);
	IF plan -> 'target' ? 'create_statement' THEN
		target := target || jsonb_build_object('create_statement',
			ray._target_create_statement(target_parts[1], target_parts[2], columns, key, out_name, out_type, mode));
	END IF;
	-- the options again, with the kind of the model as the catalog has it; output_type is
	-- what output.type above says, in the caller's words (their search_path)
	IF jsonb_typeof(plan -> 'options') IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'invalid batch inference plan: its options must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	options := ray._batch_options((plan -> 'options') - 'output_type',
								  (SELECT m.kind FROM ray.model m
								   WHERE m.name = plan -> 'model' ->> 'name'
									 AND m.version::text = plan -> 'model' ->> 'version'))
		|| jsonb_strip_nulls(jsonb_build_object('output_type', plan -> 'options' -> 'output_type'));
	RETURN plan || jsonb_build_object('columns', columns, 'key', to_jsonb(key), 'inputs', to_jsonb(inputs),
									  'output', jsonb_build_object('name', out_name, 'type', out_type),
									  'target', target, 'mode', mode, 'options', options);
END
$$;
COMMENT ON FUNCTION ray._canonical_plan(jsonb) IS
'A stored batch inference plan rebuilt from parts checked one by one, or an error: what the worker builds its statements from.';

/*
 * Plan a run as the calling role: what it reads, with which model, and what
 * it writes where.  Runs with the caller's privileges, so reading the source
 * (LIMIT 0) fails here as it would in the run, and with the caller's
 * search_path (no SET clause), so that names resolve as the caller means
 * them; every name of its own is schema-qualified.
 */
CREATE OR REPLACE FUNCTION ray._plan_batch_inference(source text, model text, target text, key text[],
										  input_columns text[], output_column text, mode text,
										  create_target boolean, options jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	is_query boolean;
	source_oid oid;
	source_kind "char";
	source_name text;
	columns jsonb;
	read_from text;
	select_list text;
	model_name text;
	model_version integer;
	m record;
	opts jsonb;
	inputs text[];
	out_name text := coalesce(output_column, 'prediction');
	out_type text;
	target_oid oid;
	target_schema text;
	target_name text;
	target_parts text[];
	target_columns jsonb;
	create_statement text;
	missing text;
BEGIN
	IF source IS NULL OR source !~ '\S' THEN
		RAISE EXCEPTION 'source must be a table name or a query'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF model IS NULL OR target IS NULL THEN
		RAISE EXCEPTION 'model and target must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF mode IS NULL OR mode NOT IN ('append', 'overwrite', 'upsert') THEN
		RAISE EXCEPTION 'unknown mode "%"', mode
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Modes: append (add the rows), overwrite (replace the target''s rows), upsert (insert or update on the key).';
	END IF;
	IF out_name !~ '\S' OR length(out_name) > 63 THEN
		RAISE EXCEPTION 'invalid output column name "%"', out_name
			USING ERRCODE = 'invalid_name';
	END IF;

	-- the model: name, or name:version
	model_name := split_part(model, ':', 1);
	IF model ~ '^[a-z][a-z0-9_-]*:[0-9]+$' THEN
		model_version := split_part(model, ':', 2)::integer;
	ELSIF model !~ '^[a-z][a-z0-9_-]*$' THEN
		RAISE EXCEPTION 'invalid model "%"', model
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name a registered model, or one of its versions as name:version.';
	END IF;
	SELECT v.name, v.version, v.kind INTO m FROM ray.models v
	WHERE v.name = model_name AND (model_version IS NULL OR v.version = model_version)
	ORDER BY v.version DESC LIMIT 1;
	IF m.name IS NULL THEN
		RAISE EXCEPTION 'model "%" does not exist', model
			USING ERRCODE = 'undefined_object',
				  HINT = 'List your models with SELECT name, version, kind FROM ray.models.';
	END IF;
	opts := ray._batch_options(coalesce(options, '{}'), m.kind);

	-- the source: a query, or a table (or view) by name
	is_query := source ~* '^\s*\(*\s*(select|with|values|table)\M';
	IF is_query THEN
		SELECT jsonb_agg(jsonb_build_object('name', d.column_name, 'type', d.data_type))
		INTO columns FROM ray._describe_query(source) d;
		IF (SELECT count(DISTINCT e ->> 'name') FROM jsonb_array_elements(columns) e) <> jsonb_array_length(columns) THEN
			RAISE EXCEPTION 'source query has two columns of the same name'
				USING ERRCODE = 'duplicate_column',
					  HINT = 'Name every column of the query differently, with AS.';
		END IF;
		read_from := format('(%s) q', source);
	ELSE
		source_oid := to_regclass(source);
		IF source_oid IS NULL THEN
			RAISE EXCEPTION 'relation "%" does not exist', source
				USING ERRCODE = 'undefined_table',
					  HINT = 'A source is a table name, or a query that starts with SELECT, WITH, VALUES or TABLE.';
		END IF;
		SELECT c2.relkind, format('%I.%I', n.nspname, c2.relname) INTO source_kind, source_name
		FROM pg_class c2 JOIN pg_namespace n ON n.oid = c2.relnamespace WHERE c2.oid = source_oid;
		IF (SELECT relpersistence FROM pg_class WHERE oid = source_oid) = 't' THEN
			RAISE EXCEPTION 'source "%" is a temporary table', source
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'The run reads in sessions of its own, which cannot see this session''s temporary tables.';
		END IF;
		SELECT jsonb_agg(jsonb_build_object('name', a.attname, 'type', ray._format_type(a.atttypid, a.atttypmod))
						 ORDER BY a.attnum)
		INTO columns FROM pg_attribute a
		WHERE a.attrelid = source_oid AND a.attnum > 0 AND NOT a.attisdropped;
		read_from := source_name;
		IF key IS NULL THEN
			SELECT array_agg(a.attname ORDER BY array_position(i.indkey::int2[], a.attnum))
			INTO key FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
			WHERE i.indrelid = source_oid AND i.indisprimary;
		END IF;
	END IF;
	IF opts ? 'shard_key' AND NOT is_query THEN
		RAISE EXCEPTION 'shard_key is for query sources'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A table is read in parallel by ranges of its blocks.';
	END IF;

	-- the key carried to the output, and the model's inputs
	IF key IS NULL OR cardinality(key) = 0 THEN
		RAISE EXCEPTION 'batch inference needs a key'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = CASE WHEN is_query THEN 'The source is a query.' ELSE format('Table %s has no primary key.', source) END,
				  HINT = 'Name the columns that identify a row, such as key => ARRAY[''impression_id''].';
	END IF;
	IF array_position(key, NULL) IS NOT NULL OR cardinality(key) <> (SELECT count(DISTINCT k) FROM unnest(key) k) THEN
		RAISE EXCEPTION 'key must name each of its columns once, and no null'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT k INTO missing FROM unnest(key) k
	WHERE NOT EXISTS (SELECT FROM jsonb_array_elements(columns) e WHERE e ->> 'name' = k) LIMIT 1;
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'key column "%" is not a column of the source', missing
			USING ERRCODE = 'undefined_column';
	END IF;
	inputs := coalesce(input_columns,
					   ARRAY(SELECT e ->> 'name' FROM jsonb_array_elements(columns) e
							 WHERE e ->> 'name' <> ALL (key) AND e ->> 'name' <> out_name));
	IF cardinality(inputs) = 0 THEN
		RAISE EXCEPTION 'batch inference needs at least one input column'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The source has no columns besides its key.';
	END IF;
	IF array_position(inputs, NULL) IS NOT NULL
		OR cardinality(inputs) <> (SELECT count(DISTINCT k) FROM unnest(inputs) k) THEN
		RAISE EXCEPTION 'input_columns must name each of its columns once, and no null'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT k INTO missing FROM unnest(inputs) k
	WHERE NOT EXISTS (SELECT FROM jsonb_array_elements(columns) e WHERE e ->> 'name' = k) LIMIT 1;
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'input column "%" is not a column of the source', missing
			USING ERRCODE = 'undefined_column';
	END IF;
	IF m.kind IN ('sklearn', 'onnx') THEN
		SELECT e ->> 'name' || ' (' || (e ->> 'type') || ')' INTO missing
		FROM jsonb_array_elements(columns) e
		WHERE e ->> 'name' = ANY (inputs) AND NOT ray._is_numeric_type(e ->> 'type') LIMIT 1;
		IF missing IS NOT NULL THEN
			RAISE EXCEPTION 'input column % is not numeric', missing
				USING ERRCODE = 'datatype_mismatch',
					  DETAIL = format('A model of kind %s takes numbers.', m.kind),
					  HINT = 'Encode it in a source query, or leave it out with input_columns.';
		END IF;
	END IF;
	IF out_name = ANY (key) THEN
		RAISE EXCEPTION 'output column "%" is also a key column', out_name
			USING ERRCODE = 'duplicate_column';
	END IF;
	-- only the columns the run needs are read, key first
	columns := (SELECT jsonb_agg(e ORDER BY coalesce(array_position(key, e ->> 'name'), 1000 + array_position(inputs, e ->> 'name')))
				FROM jsonb_array_elements(columns) e
				WHERE e ->> 'name' = ANY (key) OR e ->> 'name' = ANY (inputs));
	select_list := (SELECT string_agg(quote_ident(e ->> 'name'), ', ') FROM jsonb_array_elements(columns) e);
	-- the caller must be able to read what the run will read
	EXECUTE format('SELECT %s FROM %s LIMIT 0', select_list, read_from);
	-- the shard key goes into each partition's query as the runner writes
	-- it: it must be one expression there, which reads and hashes
	IF opts ? 'shard_key' THEN
		DECLARE
			shard_query text := format('SELECT %s FROM %s WHERE mod(coalesce(hashtext((%s)::text), 0)::bigint + 2147483648, 2) = 0',
									   select_list, read_from, opts ->> 'shard_key');
		BEGIN
			PERFORM ray._describe_query(shard_query);
			EXECUTE shard_query || ' LIMIT 0';
		EXCEPTION WHEN OTHERS THEN
			RAISE EXCEPTION 'invalid shard_key "%"', opts ->> 'shard_key'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('As an expression over the source''s rows: %s.', SQLERRM),
					  HINT = 'A shard key is one expression over the columns of the source query, such as "user_id".';
		END;
	END IF;

	out_type := coalesce((SELECT ray._format_type(to_regtype(opts ->> 'output_type'), NULL)),
						 CASE WHEN m.kind IN ('http', 'vllm') THEN 'text'
							  WHEN opts ->> 'output' = 'label' THEN 'text'
							  ELSE 'double precision' END);

	-- the target: an existing table that fits, or one to create
	target_parts := parse_ident(target);
	IF cardinality(target_parts) > 2 THEN
		RAISE EXCEPTION 'invalid target "%"', target
			USING ERRCODE = 'invalid_name', HINT = 'Name a table as table or schema.table.';
	END IF;
	target_oid := to_regclass(target);
	IF target_oid IS NOT NULL THEN
		SELECT n.nspname, c2.relname INTO target_schema, target_name
		FROM pg_class c2 JOIN pg_namespace n ON n.oid = c2.relnamespace WHERE c2.oid = target_oid;
		IF (SELECT relkind FROM pg_class WHERE oid = target_oid) NOT IN ('r', 'p') THEN
			RAISE EXCEPTION '"%" is not a table', target
				USING ERRCODE = 'wrong_object_type';
		END IF;
		IF target_oid = source_oid THEN
			RAISE EXCEPTION 'target "%" is the source', target
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Write the predictions into a table of their own and join them to the source.';
		END IF;
		IF NOT has_table_privilege(target_oid, 'INSERT')
			OR (mode = 'overwrite' AND NOT has_table_privilege(target_oid, 'DELETE'))
			OR (mode = 'upsert' AND NOT has_table_privilege(target_oid, 'UPDATE')) THEN
			RAISE EXCEPTION 'permission denied for table %', target_name
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = CASE mode WHEN 'append' THEN 'Mode append needs INSERT on the target.'
										 WHEN 'overwrite' THEN 'Mode overwrite needs INSERT and DELETE on the target.'
										 ELSE 'Mode upsert needs INSERT and UPDATE on the target.' END;
		END IF;
		SELECT jsonb_object_agg(a.attname, ray._format_type(a.atttypid, a.atttypmod)) INTO target_columns
		FROM pg_attribute a WHERE a.attrelid = target_oid AND a.attnum > 0 AND NOT a.attisdropped;
		SELECT k INTO missing FROM unnest(key || out_name) k WHERE NOT target_columns ? k LIMIT 1;
		IF missing IS NOT NULL THEN
			RAISE EXCEPTION 'target "%" has no column "%"', target, missing
				USING ERRCODE = 'undefined_column',
					  DETAIL = format('The run writes the key (%s) and the output column %s.',
									  array_to_string(key, ', '), out_name);
		END IF;
		SELECT a.attname INTO missing FROM pg_attribute a
		WHERE a.attrelid = target_oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull
		  AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = ''
		  AND a.attname <> ALL (key || out_name) LIMIT 1;
		IF missing IS NOT NULL THEN
			RAISE EXCEPTION 'target column "%" is NOT NULL without a default', missing
				USING ERRCODE = 'not_null_violation',
					  DETAIL = 'The run writes only the key and the output column.';
		END IF;
		IF mode = 'upsert' AND NOT EXISTS (
			SELECT FROM pg_index i
			WHERE i.indrelid = target_oid AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
			  AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
				   WHERE a.attrelid = target_oid AND a.attnum = ANY (i.indkey))
				  = (SELECT array_agg(k ORDER BY k) FROM unnest(key) k)) THEN
			RAISE EXCEPTION 'target "%" has no unique index on the key', target
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('Mode upsert updates the rows whose key (%s) is already there.', array_to_string(key, ', ')),
					  HINT = 'Add a primary key or unique constraint on the key columns, or use mode append or overwrite.';
		END IF;
		-- the target's types win: COPY converts the run's output into them
		out_type := target_columns ->> out_name;
	ELSE
		IF NOT coalesce(create_target, true) THEN
			RAISE EXCEPTION 'relation "%" does not exist', target
				USING ERRCODE = 'undefined_table',
					  HINT = 'Create it, or let the run create it with create_target => true.';
		END IF;
		target_schema := CASE WHEN cardinality(target_parts) = 2 THEN target_parts[1] ELSE current_schema() END;
		target_name := target_parts[cardinality(target_parts)];
		IF target_schema IS NULL OR to_regnamespace(quote_ident(target_schema)) IS NULL THEN
			RAISE EXCEPTION 'schema "%" does not exist', coalesce(target_schema, '')
				USING ERRCODE = 'invalid_schema_name';
		END IF;
		IF NOT has_schema_privilege(quote_ident(target_schema), 'CREATE') THEN
			RAISE EXCEPTION 'permission denied for schema %', target_schema
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = format('The run would create table %s there.', target_name);
		END IF;
		create_statement := ray._target_create_statement(target_schema, target_name, columns, key,
														  out_name, out_type, mode);
	END IF;

	RETURN jsonb_build_object(
		'source', jsonb_strip_nulls(jsonb_build_object(
			'table', CASE WHEN NOT is_query AND source_kind IN ('r', 'm') THEN source_name END,
			'query', CASE WHEN is_query THEN source
						  WHEN source_kind NOT IN ('r', 'm') THEN 'SELECT * FROM ' || source_name END,
			'select_list', select_list,
			'shard_key', opts ->> 'shard_key',
			-- names in a query resolve in the run as they did here
			'search_path', (SELECT string_agg(quote_ident(s), ', ') FROM unnest(current_schemas(false)) s))),
		'columns', columns,
		'key', to_jsonb(key),
		'inputs', to_jsonb(inputs),
		'output', jsonb_build_object('name', out_name, 'type', out_type),
		'target', jsonb_strip_nulls(jsonb_build_object(
			'name', format('%I.%I', target_schema, target_name),
			'exists', target_oid IS NOT NULL,
			'create_statement', create_statement)),
		'mode', mode,
		'model', jsonb_build_object('name', m.name, 'version', m.version, 'kind', m.kind),
		'options', opts - 'shard_key');
END
$$;
COMMENT ON FUNCTION ray._plan_batch_inference(text, text, text, text[], text[], text, text, boolean, jsonb) IS
'Plan a batch inference run as the calling role: source, model, key, inputs, output and target, checked.';

CREATE OR REPLACE FUNCTION ray.batch_inference_plan(
	resource_group text,
	source text,
	model text,
	target text,
	key text[] DEFAULT NULL,
	input_columns text[] DEFAULT NULL,
	output_column text DEFAULT 'prediction',
	mode text DEFAULT 'append',
	create_target boolean DEFAULT true,
	options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE sql
AS $$
	SELECT ray._plan_batch_inference(source, model, target, key, input_columns, output_column,
									 mode, create_target, options)
$$;
COMMENT ON FUNCTION ray.batch_inference_plan(text, text, text, text, text[], text[], text, text, boolean, jsonb) IS
'What ray.batch_inference would do with these arguments, without doing it: columns read, model, options and the target (with the CREATE TABLE it would run).';

/* Queue a planned run as a job of the caller; returns its id. */
CREATE OR REPLACE FUNCTION ray._submit_batch_inference_impl(resource_group text, run_plan jsonb,
															 priority integer DEFAULT 0)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- the target's advisory lock below is one anyone can take: wait for it a bounded time
SET lock_timeout = '10s'
AS $$
DECLARE
	caller_oid oid := ray._calling_role();
	caller name := ray._caller();
	rg ray.resource_group := ray._resource_group(_submit_batch_inference_impl.resource_group, 'share');
	target_name text;
	group_cpus numeric;
	node_cpus numeric;
	group_gpus numeric;
	node_gpus numeric;
	replica_gpus numeric;
	replica_cpus numeric;
	replicas numeric;
	worker_group_name text;
	runner bytea;
	busy record;
	id bigint;
BEGIN
	-- what it stores is rebuilt from checked parts: the plan is the caller's to write
	run_plan := ray._canonical_plan(run_plan);
	target_name := run_plan -> 'target' ->> 'name';
	IF NOT ray._can_use(rg.name, caller_oid) THEN
		RAISE EXCEPTION 'permission denied for resource group "%"', rg.name
			USING ERRCODE = 'insufficient_privilege',
				  HINT = format('A ray_admin can grant it with SELECT ray.grant_usage(%L, %L).', rg.name, caller);
	END IF;
	-- the plan was made by the caller; the model must be theirs to run (an admin's too)
	PERFORM ray._check_may_run_model(run_plan -> 'model' ->> 'name', (run_plan -> 'model' ->> 'version')::integer,
									 caller_oid);
	-- which registration of that name and version: one dropped and registered again is another model
	run_plan := jsonb_set(run_plan, '{model}', (run_plan -> 'model') || (
		SELECT jsonb_build_object('owner', m.owner, 'registered_at', m.created_at) FROM ray.model m
		WHERE m.name = run_plan -> 'model' ->> 'name' AND m.version = (run_plan -> 'model' ->> 'version')::integer));
	-- replicas asked to run on one worker group fit its nodes alone
	worker_group_name := run_plan -> 'options' ->> 'worker_group';
	PERFORM ray._check_job_worker_group(rg.name, worker_group_name);
	IF (run_plan -> 'options' ->> 'num_gpus')::numeric > 0 AND NOT EXISTS (
		SELECT FROM ray.worker_group w WHERE w.resource_group = rg.name AND w.resource_type = 'GPU'
										AND w.name = coalesce(worker_group_name, w.name)) THEN
		RAISE EXCEPTION 'resource group "%" has no GPU workers', rg.name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Model %s (%s) asks for %s GPUs per replica.', run_plan -> 'model' ->> 'name',
								  run_plan -> 'model' ->> 'kind', run_plan -> 'options' ->> 'num_gpus'),
				  HINT = 'Add a GPU worker group with ray.add_worker_group, or run it on a group that has one.';
	END IF;

	-- Replicas the group can never hold would wait in Ray forever.
	SELECT sum(w.max_workers * s.num_cpus), max(s.num_cpus),
		   sum(w.max_workers * ray._worker_node_gpus(w.resource_type, s.num_gpus, w.gpu_distribution_unit)),
		   max(ray._worker_node_gpus(w.resource_type, s.num_gpus, w.gpu_distribution_unit))
	INTO group_cpus, node_cpus, group_gpus, node_gpus
	FROM ray.worker_group w JOIN ray.node_spec s ON s.name = w.spec
	WHERE w.resource_group = rg.name AND w.name = coalesce(worker_group_name, w.name);
	replica_cpus := (run_plan -> 'options' ->> 'num_cpus')::numeric;
	replica_gpus := (run_plan -> 'options' ->> 'num_gpus')::numeric;
	IF jsonb_typeof(run_plan -> 'options' -> 'concurrency') = 'null' THEN
		run_plan := jsonb_set(run_plan, '{options,concurrency}', to_jsonb(
			CASE WHEN group_cpus IS NULL OR replica_cpus = 0 THEN 2
				 ELSE greatest(1, least(2, floor(group_cpus / replica_cpus)))::integer END));
	END IF;
	replicas := CASE WHEN jsonb_typeof(run_plan -> 'options' -> 'concurrency') = 'array'
					 THEN (run_plan -> 'options' -> 'concurrency' ->> 0)::numeric
					 ELSE (run_plan -> 'options' ->> 'concurrency')::numeric END;
	IF node_cpus IS NOT NULL AND replica_cpus > node_cpus THEN
		RAISE EXCEPTION 'a model replica needs % CPUs, more than any node of resource group "%" has', replica_cpus, rg.name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Its largest worker nodes have %s CPUs.', node_cpus),
				  HINT = 'Lower num_cpus, or add a worker group of a larger spec.';
	END IF;
	IF node_gpus IS NOT NULL AND replica_gpus > node_gpus THEN
		RAISE EXCEPTION 'a model replica needs % GPUs, more than any node of resource group "%" has', replica_gpus, rg.name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Its worker nodes have at most %s GPUs in Ray each (a node of a group with a GPU distribution unit has one, a share of a physical GPU).', node_gpus),
				  HINT = 'Lower num_gpus: replicas share a GPU with fractions such as 0.5.';
	END IF;
	IF group_cpus IS NOT NULL AND replicas * replica_cpus > group_cpus THEN
		RAISE EXCEPTION 'the model replicas need % CPUs, more than resource group "%" can have', replicas * replica_cpus, rg.name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('concurrency %s times num_cpus %s; its worker groups have at most %s CPUs in all.',
								  replicas, replica_cpus, group_cpus),
				  HINT = 'Lower concurrency or num_cpus, or raise max_workers.';
	END IF;
	IF group_gpus IS NOT NULL AND replicas * replica_gpus > group_gpus THEN
		RAISE EXCEPTION 'the model replicas need % GPUs, more than resource group "%" can have', replicas * replica_gpus, rg.name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('concurrency %s times num_gpus %s; its worker groups have at most %s GPUs in all.',
								  replicas, replica_gpus, group_gpus),
				  HINT = 'Lower concurrency or num_gpus, or raise max_workers of a GPU worker group.';
	END IF;

	-- One unfinished run per target: a nightly schedule that fires again
	-- while last night's run is still going gets that run, not a second
	-- copy of its rows.
	PERFORM pg_advisory_xact_lock(hashtext('pg_ray batch target ' || target_name));
	SELECT j.job_id, j.owner_oid = caller_oid AS own, b.plan = run_plan AS same INTO busy
	FROM ray.batch_run b JOIN ray.job j ON j.job_id = b.job_id
	WHERE b.target = target_name AND j.state NOT IN ('SUCCEEDED', 'FAILED', 'STOPPED')
	ORDER BY j.job_id LIMIT 1;
	IF busy.job_id IS NOT NULL THEN
		IF busy.same AND busy.own THEN
			RAISE NOTICE 'job % is already scoring into %; returning it instead of starting another', busy.job_id, target_name
				USING HINT = format('Wait for it with SELECT ray.wait_job(%s).', busy.job_id);
			RETURN busy.job_id;
		END IF;
		RAISE EXCEPTION 'target % is being written by another batch inference run', target_name
			USING ERRCODE = 'object_in_use',
				  DETAIL = CASE WHEN busy.own THEN format('Job %s, with other arguments, has not finished.', busy.job_id)
								ELSE 'A run of another role has not finished.' END,
				  HINT = 'Wait for it to finish, or write into another table.';
	END IF;

	PERFORM ray._check_priority(_submit_batch_inference_impl.priority, rg.name, caller_oid);
	PERFORM ray._check_queued_quota(rg.name, caller_oid);

	runner := ray._runner_package();
	-- for admission, a run asks for what its replicas need when there are fewest of them
	INSERT INTO ray.job (owner, resource_group, kind, entrypoint, runtime_env, metadata,
						 max_attempts, retry_on_failure, target_table, owner_oid,
						 priority, cpus_asked, gpus_asked, worker_group)
	VALUES (caller, rg.name, 'batch_inference', 'python -m pg_ray_runner',
			'{"env_vars": {"RAY_DATA_DISABLE_PROGRESS_BARS": "1"}}',
			jsonb_build_object('pg_ray_model', format('%s:%s', run_plan -> 'model' ->> 'name', run_plan -> 'model' ->> 'version')),
			(run_plan -> 'options' ->> 'max_attempts')::integer, false, target_name, caller_oid,
			_submit_batch_inference_impl.priority, replicas * replica_cpus,
			replicas * (run_plan -> 'options' ->> 'num_gpus')::numeric, worker_group_name)
	RETURNING job_id INTO id;
	INSERT INTO ray.job_package (job_id, package, content)
	VALUES (id, '_ray_pkg_' || left(encode(sha256(runner), 'hex'), 40) || '.zip', runner);
	INSERT INTO ray.batch_run (job_id, target, plan) VALUES (id, target_name, run_plan);
	INSERT INTO ray.job_event (job_id, from_state, to_state, attempt, actor, message)
	VALUES (id, NULL, 'QUEUED', 0, caller,
			format('batch inference of %s with model %s:%s into %s (%s)',
				   coalesce(run_plan -> 'source' ->> 'table', 'a query'), run_plan -> 'model' ->> 'name',
				   run_plan -> 'model' ->> 'version', target_name, run_plan ->> 'mode'));
	RETURN id;
END
$$;
COMMENT ON FUNCTION ray._submit_batch_inference_impl(text, jsonb, integer) IS
'The work of ray._submit_batch_inference, as the extension''s owner, for the caller that pg_ray_api recorded.';

CREATE OR REPLACE FUNCTION ray._submit_batch_inference(resource_group text, run_plan jsonb,
														priority integer DEFAULT 0)
RETURNS bigint
LANGUAGE C
AS 'MODULE_PATHNAME', 'pg_ray_api';
COMMENT ON FUNCTION ray._submit_batch_inference(text, jsonb, integer) IS
'Queue a batch inference run planned by ray._plan_batch_inference as a job of the caller.';

CREATE OR REPLACE FUNCTION ray.batch_inference(
	resource_group text,
	source text,
	model text,
	target text,
	key text[] DEFAULT NULL,
	input_columns text[] DEFAULT NULL,
	output_column text DEFAULT 'prediction',
	mode text DEFAULT 'append',
	create_target boolean DEFAULT true,
	options jsonb DEFAULT '{}',
	priority integer DEFAULT 0)
RETURNS bigint
LANGUAGE sql
AS $$
	SELECT ray._submit_batch_inference(resource_group,
		ray._plan_batch_inference(source, model, target, key, input_columns, output_column,
								  mode, create_target, options),
		priority)
$$;
COMMENT ON FUNCTION ray.batch_inference(text, text, text, text, text[], text[], text, text, boolean, jsonb, integer) IS
'Score a table or query with a registered model on a resource group; the results are published into target exactly once when the run succeeds. Returns the job id.';
